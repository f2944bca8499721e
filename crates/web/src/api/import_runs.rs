//! The import as the admin sees it from an importer: the dry run
//! (`POST …/{id}/dry-run`: what each Inbox mail would become and why,
//! touching nothing), the importer's recorded runs (`GET …/{id}/runs`) and
//! the `last_import` of the importer status, both read from the import
//! runs `import-emails` records (`store::import_runs`).

use std::collections::{BTreeMap, HashMap};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use domain::validation::ValidationErrors;
use import::pipeline::{DryRun, ImportError, Prediction, SummaryCounts};
use runtime::ImporterMailbox;
use runtime::mailbox::Patience;
use serde::Serialize;
use store::Store;
use store::import_runs::{ImportRunRecord, RunOutcome};
use utoipa::ToSchema;

use super::paging::Paging;
use crate::AppState;
use crate::caller::Caller;
use crate::problem::Problem;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/importers/email/{id}/dry-run", post(dry_run))
        .route("/api/v2/importers/email/{id}/runs", get(list_runs))
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
        ImportError::Busy(_) | ImportError::LeaseLost | ImportError::Sink(_) => {
            Problem::new(StatusCode::CONFLICT, e.to_string())
        }
        ImportError::Store(s) => s.into(),
        ImportError::Parser(_) => Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
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

/// How an importer's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The Inbox was worked; mails left for retry are taken by the next run.
    Succeeded,
    /// The importer could not be worked (folders ambiguous or missing, not
    /// authorized, another run busy, …); `error` says why and what to do.
    Failed,
}

impl From<RunOutcome> for RunStatus {
    fn from(outcome: RunOutcome) -> Self {
        match outcome {
            RunOutcome::Succeeded => Self::Succeeded,
            RunOutcome::Failed => Self::Failed,
        }
    }
}

/// The run's summary line, as `import-emails` logs it: the counts, or
/// `failed: ` and the error.
fn summary_line(run: &ImportRunRecord) -> String {
    match (&run.outcome, &run.error) {
        (RunOutcome::Failed, Some(error)) => format!("failed: {error}"),
        _ => SummaryCounts {
            imported: run.imported,
            completed_from_earlier_run: run.completed,
            moves_confirmed: run.moves_confirmed,
            to_error: &run.to_error_by_reason,
            left_for_retry: run.left_for_retry,
            stopped_early: run.stopped_early,
            stopped_because: None,
        }
        .line(),
    }
}

/// What one importer's part of an `import-emails` execution did (dry runs
/// are not recorded). A failed run's counts are 0: what it did before
/// failing shows in the importer's mails and `last_import`'s totals.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportRunView {
    /// The execution (`GET /api/v2/executions/{id}` has its log while it is
    /// kept; runs are kept longer).
    pub execution_id: String,
    pub status: RunStatus,
    /// When the importer's work began and ended.
    pub started_at: String,
    pub finished_at: String,
    /// New documents.
    pub imported: u64,
    /// Mails whose document an interrupted run had stored: moved on, no new document.
    pub completed: u64,
    /// Moves an interrupted run made but did not record, found done.
    pub moves_confirmed: u64,
    /// Mails moved to Error.
    pub to_error: u64,
    /// Mails moved to Error by reason code (`no_importable_attachment`,
    /// `unparsable`, `rule:sender_allow`, `too_large`, …).
    pub to_error_by_reason: BTreeMap<String, u64>,
    /// Mails left in the Inbox for the next run (transient failures).
    pub left_for_retry: u64,
    /// Bytes of the mails worked.
    pub bytes: u64,
    /// The run stopped between mails because mailferry was shutting down.
    pub stopped_early: bool,
    /// Why the importer could not be worked, with the fix (`failed` only).
    pub error: Option<String>,
    /// The run in one line, as the execution log has it.
    #[schema(example = "imported 3, to Error 1 (unparsable: 1), left for retry 0")]
    pub summary: String,
}

impl From<ImportRunRecord> for ImportRunView {
    fn from(run: ImportRunRecord) -> Self {
        Self {
            summary: summary_line(&run),
            to_error: run.to_error(),
            execution_id: run.execution_id,
            status: run.outcome.into(),
            started_at: run.started_at.to_string(),
            finished_at: run.finished_at.to_string(),
            imported: run.imported,
            completed: run.completed,
            moves_confirmed: run.moves_confirmed,
            to_error_by_reason: run.to_error_by_reason,
            left_for_retry: run.left_for_retry,
            bytes: run.bytes,
            stopped_early: run.stopped_early,
            error: run.error,
        }
    }
}

/// The importer's last recorded run and its ledger's totals. The run's
/// fields are `null` while the ledger has mails but no run is recorded
/// (they were imported before runs were recorded).
#[derive(Debug, Serialize, ToSchema)]
pub struct LastImport {
    /// The `import-emails` execution of the last run.
    pub execution_id: Option<String>,
    /// How the importer's last run ended.
    pub status: Option<RunStatus>,
    /// Always `false` when a run is shown: dry runs are not recorded.
    #[schema(deprecated)]
    pub dry_run: Option<bool>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// The last run in one line: `imported 3, to Error 1 (unparsable: 1),
    /// left for retry 0`, or `failed: ` and the error.
    pub summary: Option<String>,
    /// New documents of the last run.
    pub imported: Option<u64>,
    /// Mails the last run moved to Error.
    pub to_error: Option<u64>,
    /// The same by reason code.
    pub to_error_by_reason: Option<BTreeMap<String, u64>>,
    /// Mails the last run left in the Inbox for the next.
    pub left_for_retry: Option<u64>,
    /// Why the last run failed, with the fix.
    pub error: Option<String>,
    /// When a mail of the importer last changed state (the ledger).
    pub last_mail_at: Option<String>,
    /// Mails with a document, all runs together.
    pub imported_total: i64,
    /// Mails decided not importable, all runs together.
    pub to_error_total: i64,
    /// Mails whose move is not confirmed yet (a run was interrupted).
    pub unfinished: i64,
}

/// The importer status's `last_import`: the importer's newest recorded run
/// and its ledger's totals. `None` until the importer's first run.
pub async fn last_import(
    store: &Store,
    client_id: &str,
    importer_id: &str,
) -> Result<Option<LastImport>, store::StoreError> {
    let run = store.latest_import_run(client_id, importer_id).await?;
    let activity = store.ledger_activity(importer_id).await?;
    if run.is_none() && activity.is_none() {
        return Ok(None);
    }
    let run = run.map(ImportRunView::from);
    let run = run.as_ref();
    Ok(Some(LastImport {
        execution_id: run.map(|r| r.execution_id.clone()),
        status: run.map(|r| r.status),
        dry_run: run.map(|_| false),
        started_at: run.map(|r| r.started_at.clone()),
        finished_at: run.map(|r| r.finished_at.clone()),
        summary: run.map(|r| r.summary.clone()),
        imported: run.map(|r| r.imported),
        to_error: run.map(|r| r.to_error),
        to_error_by_reason: run.map(|r| r.to_error_by_reason.clone()),
        left_for_retry: run.map(|r| r.left_for_retry),
        error: run.and_then(|r| r.error.clone()),
        last_mail_at: activity.as_ref().map(|a| a.last_at.to_string()),
        imported_total: activity.as_ref().map_or(0, |a| a.imported),
        to_error_total: activity.as_ref().map_or(0, |a| a.to_error),
        unfinished: activity.as_ref().map_or(0, |a| a.unfinished),
    }))
}

/// The importer's recorded runs, newest first: one per `import-emails`
/// execution that worked it (dry runs are not recorded).
#[utoipa::path(get, path = "/api/v2/importers/email/{id}/runs", tag = "import",
    params(
        ("id" = String, Path),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "at most this many (1–1000, default 100)"),
        ("offset" = Option<u32>, Query, description = "skip this many (paging)"),
    ),
    responses((status = 200, body = [ImportRunView]), (status = 404, body = Problem),
        (status = 422, body = Problem, description = "`limit` or `offset` is not a valid number, or another parameter is given")))]
pub async fn list_runs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(mut query): Query<HashMap<String, String>>,
) -> Result<axum::Json<Vec<ImportRunView>>, Problem> {
    let mut errors = ValidationErrors::default();
    let paging = Paging::take(&mut query, &mut errors);
    for other in query.keys() {
        errors.add(other, "unknown parameter: use limit or offset".to_owned());
    }
    errors.into_result(())?;
    state
        .store
        .importer(&caller.client_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found("importer"))?;
    let runs = state
        .store
        .import_runs(&caller.client_id, &id, paging.limit, paging.offset)
        .await?;
    Ok(axum::Json(
        runs.into_iter().map(ImportRunView::from).collect(),
    ))
}
