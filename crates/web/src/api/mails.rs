//! `/api/v2/importers/email/{id}/mails`: every mail an importer has seen
//! and its fate (the import ledger), newest first, and reprocessing a mail
//! in Error once its cause is fixed.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use domain::validation::ValidationErrors;
use import::reprocess::ReprocessError;
use serde::Serialize;
use store::ledger::{LedgerEntry, MailFate, MailFilter};
use utoipa::ToSchema;

use super::import_runs::{importer_mailbox, run_problem};
use super::paging::Paging;
use crate::AppState;
use crate::caller::Caller;
use crate::problem::Problem;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/importers/email/{id}/mails", get(list_mails))
        .route(
            "/api/v2/importers/email/{id}/mails/{mail_id}/reprocess",
            post(reprocess_mail),
        )
}

/// Why a mail went to Error.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailReason {
    /// `no_importable_attachment`, `unparsable`, `rule:sender_allow`,
    /// `rule:subject_block`, `unstorable`, `too_large`, `sink_rejected`,
    /// `retries_exhausted`.
    #[schema(example = "no_importable_attachment")]
    pub code: String,
    /// The reason in plain words, with the fix.
    pub detail: String,
}

/// One mail of an importer and its fate.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailView {
    pub mail_id: String,
    /// The `Message-ID` header.
    pub internet_message_id: Option<String>,
    pub subject: Option<String>,
    /// The sender's address.
    pub from: Option<String>,
    pub received_at: Option<String>,
    /// `exported` (a document; in Exported or on its way), `error` (in
    /// Error or on its way, with the reason) or `pending` (in the Inbox,
    /// decided by the next run).
    #[schema(example = "error")]
    pub state: String,
    pub reason: Option<MailReason>,
    pub document_id: Option<String>,
    /// When the mail was last decided or tried.
    pub decided_at: String,
    /// Runs in which a transient failure left the mail in the Inbox.
    pub attempts: u32,
    /// The last such failure.
    pub last_error: Option<String>,
}

impl From<LedgerEntry> for MailView {
    fn from(e: LedgerEntry) -> Self {
        Self {
            reason: e.reason_parts().map(|(code, detail)| MailReason {
                code: code.to_owned(),
                detail: detail.to_owned(),
            }),
            mail_id: e.mail_id,
            internet_message_id: e.internet_message_id,
            subject: e.subject,
            from: e.sender,
            received_at: e.received_at.map(|t| t.to_string()),
            state: e.state.fate().as_str().to_owned(),
            document_id: e.document_id,
            decided_at: e.updated_at.to_string(),
            attempts: e.attempts,
            last_error: e.last_error,
        }
    }
}

async fn importer(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<store::importers::ImporterRecord, Problem> {
    state
        .store
        .importer(&caller.client_id, id)
        .await?
        .ok_or_else(|| Problem::not_found("importer"))
}

/// The importer's mails and their fate, newest first.
#[utoipa::path(get, path = "/api/v2/importers/email/{id}/mails", tag = "import",
    params(
        ("id" = String, Path),
        ("state" = Option<String>, Query, description = "only mails in this state: `error`, `exported` or `pending`"),
        ("document_id" = Option<String>, Query, description = "only the mail that made this document"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "at most this many (1–1000, default 100)"),
        ("offset" = Option<u32>, Query, description = "skip this many (paging)"),
    ),
    responses((status = 200, body = [MailView]), (status = 404, body = Problem),
        (status = 422, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem)))]
pub async fn list_mails(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(mut query): Query<HashMap<String, String>>,
) -> Result<axum::Json<Vec<MailView>>, Problem> {
    let mut errors = ValidationErrors::default();
    let paging = Paging::take(&mut query, &mut errors);
    let mut filter = MailFilter::default();
    for (key, value) in query {
        match key.as_str() {
            "state" => match MailFate::parse(&value) {
                Some(fate) => filter.fate = Some(fate),
                None => errors.add(
                    "state",
                    format!("`{value}` is not a state: use error, exported or pending"),
                ),
            },
            "document_id" => filter.document_id = Some(value),
            other => errors.add(
                other,
                "unknown filter: use state, document_id, limit or offset".to_owned(),
            ),
        }
    }
    errors.into_result(())?;
    let record = importer(&state, &caller, &id).await?;
    let mails = state
        .store
        .ledger_mails(
            &record.id,
            &filter,
            i64::from(paging.limit),
            i64::from(paging.offset),
        )
        .await?;
    Ok(axum::Json(mails.into_iter().map(MailView::from).collect()))
}

/// Moves a mail from Error back to the Inbox (removing mailferry's reason
/// mark) so that the next run decides it afresh with the importer's
/// current rules.
#[utoipa::path(post, path = "/api/v2/importers/email/{id}/mails/{mail_id}/reprocess", tag = "import",
    params(("id" = String, Path), ("mail_id" = String, Path)),
    responses((status = 202, body = MailView, description = "the mail is back in the Inbox, `pending`; the next import decides it"),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "the mail is not in Error, or the importer cannot reach its mailbox"),
        (status = 422, body = Problem, description = "the folder settings are ambiguous or name a missing folder"),
        (status = 503, body = Problem, description = "the mailbox is busy or unreachable: try again"),
        (status = 401, body = Problem)))]
pub async fn reprocess_mail(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, mail_id)): Path<(String, String)>,
) -> Result<(StatusCode, axum::Json<MailView>), Problem> {
    let record = importer(&state, &caller, &id).await?;
    let Some(known) = state
        .store
        .ledger_entry_by_mail_id(&record.id, &mail_id)
        .await?
    else {
        return Err(Problem::not_found("mail"));
    };
    // People know a mail by its subject and sender, not its id.
    let mail = format!(
        "{} from {}",
        known
            .subject
            .as_deref()
            .map_or("(no subject)".to_owned(), |s| format!("“{s}”")),
        known.sender.as_deref().unwrap_or("(unknown sender)")
    );
    let mailbox = importer_mailbox(&state, &record).await?;
    let entry = import::reprocess::reprocess(
        &state.store,
        state.clock.as_ref(),
        &mailbox,
        &record,
        &mail_id,
    )
    .await
    .map_err(|e| match e {
        ReprocessError::NotFound => Problem::not_found("mail"),
        ReprocessError::NotInError(_) | ReprocessError::NotInErrorFolder => {
            Problem::new(StatusCode::CONFLICT, format!("{mail}: {e}"))
        }
        ReprocessError::Run(run) => run_problem(run),
    })?;
    tracing::info!(importer = %record.id, mail_id, "{mail} of importer “{}” reprocessed: back in the Inbox", record.settings.name);
    Ok((StatusCode::ACCEPTED, axum::Json(MailView::from(entry))))
}
