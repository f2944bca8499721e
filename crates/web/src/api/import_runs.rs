//! The import as the admin sees it from an importer: the dry run
//! (`POST …/{id}/dry-run`: what each Inbox mail would become and why,
//! touching nothing) and the `last_import` of the importer status.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use import::pipeline::{DryRun, ImportError, Prediction};
use runtime::ImporterMailbox;
use runtime::mailbox::Patience;
use serde::Serialize;
use store::Store;
use store::executions::ExecutionFilter;
use utoipa::ToSchema;

use crate::AppState;
use crate::caller::Caller;
use crate::problem::Problem;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v2/importers/email/{id}/dry-run", post(dry_run))
}

/// What one Inbox mail would become.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunItem {
    /// The mailbox's id of the message.
    pub message_id: String,
    /// The `Message-ID` header.
    pub internet_message_id: Option<String>,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub received_at: Option<String>,
    /// `import`, `error`, `already_imported`, `already_error` or `retry`.
    #[schema(example = "import")]
    pub outcome: String,
    /// The reason code for `error` (`no_importable_attachment`,
    /// `unparsable`, `rule:sender_allow`, `rule:subject_block`), the ledger's
    /// reason for `already_error`, or why a `retry`.
    pub reason: Option<String>,
    /// The reason in plain words.
    pub detail: Option<String>,
    /// The files the document would have (`attachments/…` names).
    pub attachments: Vec<String>,
    /// Parts that would be left out, with why.
    pub skipped: Vec<String>,
}

impl From<Prediction> for DryRunItem {
    fn from(p: Prediction) -> Self {
        Self {
            message_id: p.message_id,
            internet_message_id: p.internet_message_id,
            subject: p.subject,
            from: p.from,
            received_at: p.received_at.map(|t| t.to_string()),
            outcome: p.outcome.as_str().to_owned(),
            reason: p.reason,
            detail: p.detail,
            attachments: p.attachments,
            skipped: p.skipped,
        }
    }
}

/// The importer's mailbox, for the requests an admin makes from the API.
pub(crate) async fn importer_mailbox(
    state: &AppState,
    record: &store::importers::ImporterRecord,
) -> Result<ImporterMailbox, Problem> {
    state
        .connector
        .mailbox(record, Patience::Interactive)
        .await
        .map_err(|e| Problem::new(StatusCode::CONFLICT, e.to_string()))
}

/// A run's failure as the API answers it.
pub(crate) fn run_problem(e: ImportError) -> Problem {
    match e {
        ImportError::Folders(_) => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        ImportError::Mailbox(m) if m.is_transient() => {
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, m.to_string())
        }
        ImportError::Mailbox(m) => Problem::new(StatusCode::CONFLICT, m.to_string()),
        ImportError::Busy(_) => Problem::new(StatusCode::CONFLICT, e.to_string()),
        ImportError::Store(s) => s.into(),
    }
}

/// What each mail of the importer's Inbox would become and why, oldest
/// first; nothing is moved, stored or recorded.
#[utoipa::path(post, path = "/api/v2/importers/email/{id}/dry-run", tag = "import", params(("id" = String, Path)),
    responses((status = 200, body = [DryRunItem]),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "the importer cannot be run: IMAP, not authorized, or no permission"),
        (status = 422, body = Problem, description = "the folder settings are ambiguous or name a missing folder"),
        (status = 503, body = Problem, description = "Microsoft is busy or unreachable: try again")))]
pub async fn dry_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<DryRunItem>>, Problem> {
    let record = state
        .store
        .importer(&caller.client_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found("importer"))?;
    let mailbox = importer_mailbox(&state, &record).await?;
    let predictions = DryRun {
        store: &state.store,
        mailbox: &mailbox,
        importer: &record,
    }
    .run()
    .await
    .map_err(run_problem)?;
    Ok(axum::Json(
        predictions.into_iter().map(DryRunItem::from).collect(),
    ))
}

/// The importer status's `last_import`: the newest `import-emails`
/// execution that covered the importer (with its summary line for it), and
/// the ledger's totals. `None` until the importer's first run.
pub async fn last_import(
    store: &Store,
    client_id: &str,
    importer_id: &str,
) -> Result<Option<serde_json::Value>, store::StoreError> {
    let executions = store
        .list_executions(
            client_id,
            &ExecutionFilter {
                script: Some(runtime::import_emails::NAME.to_owned()),
                limit: 50,
                ..ExecutionFilter::default()
            },
        )
        .await?;
    let execution = executions.into_iter().find(|e| {
        e.params
            .get("importer_id")
            .and_then(serde_json::Value::as_str)
            .is_none_or(|only| only == importer_id)
    });
    let activity = store.ledger_activity(importer_id).await?;
    if execution.is_none() && activity.is_none() {
        return Ok(None);
    }
    let marker = format!("({importer_id}): ");
    let summary = execution.as_ref().and_then(|e| {
        e.log
            .iter()
            .rev()
            .filter_map(|l| l.split_once(&marker).map(|(_, rest)| rest))
            .find(|rest| rest.starts_with("imported ") || rest.starts_with("failed: "))
            .map(str::to_owned)
    });
    Ok(Some(serde_json::json!({
        "execution_id": execution.as_ref().map(|e| e.id.clone()),
        "status": execution.as_ref().map(|e| e.status.as_str()),
        "dry_run": execution.as_ref().map(|e| e.params.get("dry_run").and_then(serde_json::Value::as_bool).unwrap_or(false)),
        "started_at": execution.as_ref().map(|e| e.started_at.to_string()),
        "finished_at": execution.as_ref().and_then(|e| e.finished_at.map(|t| t.to_string())),
        "summary": summary,
        "last_mail_at": activity.as_ref().map(|a| a.last_at.to_string()),
        "imported_total": activity.as_ref().map_or(0, |a| a.imported),
        "to_error_total": activity.as_ref().map_or(0, |a| a.to_error),
        "unfinished": activity.as_ref().map_or(0, |a| a.unfinished),
    })))
}
