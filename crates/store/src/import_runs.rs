//! Import runs: what each importer's part of an `import-emails` execution
//! did, one row per importer and execution, written when the importer's
//! work ends (succeeded or failed; dry runs write none). The importer
//! status's `last_import` and the importer's recent runs are read from
//! here, not from execution logs.
//!
//! `execution_id` links a row to its execution; executions are pruned
//! sooner than these rows, so the link may outlive its target. Each
//! importer keeps its newest [`KEEP_PER_IMPORTER`] rows.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::{Result, Store, StoreError, from_millis, new_id, to_millis};

/// How many runs an importer keeps; recording one more drops the oldest.
pub const KEEP_PER_IMPORTER: u32 = 1000;

/// How an importer's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// The Inbox was worked (mails left for retry are not a failure; a
    /// run stopped by a shutdown has `stopped_early`).
    Succeeded,
    /// The importer could not be worked: `error` says why and what to do.
    Failed,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    fn parse(raw: &str) -> Result<Self> {
        match raw {
            "succeeded" => Ok(Self::Succeeded),
            "failed" => Ok(Self::Failed),
            other => Err(StoreError::Corrupt(format!("import run outcome `{other}`"))),
        }
    }
}

/// Why an importer's run failed, as far as its health is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A folder setting is ambiguous or names a missing folder.
    Folders,
    /// The mailbox refused the account or app (permission, unlicensed, unknown).
    MailboxDenied,
    /// Throttling, server errors, the network: the next run may pass.
    Transient,
    /// Anything else (settings, sink, tokens, another run busy).
    Other,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Folders => "folders",
            Self::MailboxDenied => "mailbox_denied",
            Self::Transient => "transient",
            Self::Other => "other",
        }
    }

    fn parse(raw: &str) -> Result<Self> {
        match raw {
            "folders" => Ok(Self::Folders),
            "mailbox_denied" => Ok(Self::MailboxDenied),
            "transient" => Ok(Self::Transient),
            "other" => Ok(Self::Other),
            other => Err(StoreError::Corrupt(format!(
                "import run failure kind `{other}`"
            ))),
        }
    }
}

/// One importer's part of one `import-emails` execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRunRecord {
    /// The row's own id ([`ImportRunRecord::new_id`]).
    pub id: String,
    pub execution_id: String,
    pub client_id: String,
    pub importer_id: String,
    /// When the importer's work began and ended (not the execution's).
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub outcome: RunOutcome,
    /// New documents.
    pub imported: u64,
    /// Mails whose document an interrupted run had stored: moved on, no new document.
    pub completed: u64,
    /// Moves an interrupted run made but did not record, found done.
    pub moves_confirmed: u64,
    /// Mails moved to Error, by reason code (`no_importable_attachment`, …).
    pub to_error_by_reason: BTreeMap<String, u64>,
    /// Mails left in the Inbox for the next run.
    pub left_for_retry: u64,
    /// Bytes of the mails worked.
    pub bytes: u64,
    /// The run stopped between mails because mailferry was shutting down.
    pub stopped_early: bool,
    /// Why the importer could not be worked, with the fix (`Failed` only).
    pub error: Option<String>,
    /// What kind of failure `error` is (`Failed` only; `None` for runs
    /// recorded before kinds were).
    pub failure_kind: Option<FailureKind>,
    /// Microsoft throttled the mailbox during the run until this instant
    /// (its `Retry-After`), when that was still ahead as the run ended.
    pub throttled_until: Option<Timestamp>,
}

impl ImportRunRecord {
    pub fn new_id() -> String {
        new_id()
    }

    /// Mails moved to Error, all reasons together.
    pub fn to_error(&self) -> u64 {
        self.to_error_by_reason.values().sum()
    }
}

// sqlx's Any driver cannot decode SQLite booleans, so `stopped_early` is
// read as an integer on both backends.
const SELECT: &str = "SELECT id, execution_id, client_id, importer_id, started_at, finished_at, \
     outcome, imported, completed, moves_confirmed, to_error_by_reason, left_for_retry, bytes, \
     CAST(CASE WHEN stopped_early THEN 1 ELSE 0 END AS BIGINT) AS stopped_early, error, \
     failure_kind, throttled_until FROM import_runs";

#[derive(sqlx::FromRow)]
struct ImportRunRow {
    id: String,
    execution_id: String,
    client_id: String,
    importer_id: String,
    started_at: i64,
    finished_at: i64,
    outcome: String,
    imported: i64,
    completed: i64,
    moves_confirmed: i64,
    to_error_by_reason: String,
    left_for_retry: i64,
    bytes: i64,
    stopped_early: i64,
    error: Option<String>,
    failure_kind: Option<String>,
    throttled_until: Option<i64>,
}

fn count_from_db(id: &str, column: &str, n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("import run {id}: {column} is {n}")))
}

/// Counts beyond `i64::MAX` do not happen; they are stored as the maximum.
fn count_to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl TryFrom<ImportRunRow> for ImportRunRecord {
    type Error = StoreError;

    fn try_from(r: ImportRunRow) -> Result<Self> {
        let by_reason: BTreeMap<String, u64> = serde_json::from_str(&r.to_error_by_reason)
            .map_err(|e| StoreError::Corrupt(format!("import run {} reasons: {e}", r.id)))?;
        Ok(Self {
            execution_id: r.execution_id,
            client_id: r.client_id,
            importer_id: r.importer_id,
            started_at: from_millis(r.started_at)?,
            finished_at: from_millis(r.finished_at)?,
            outcome: RunOutcome::parse(&r.outcome)?,
            imported: count_from_db(&r.id, "imported", r.imported)?,
            completed: count_from_db(&r.id, "completed", r.completed)?,
            moves_confirmed: count_from_db(&r.id, "moves_confirmed", r.moves_confirmed)?,
            to_error_by_reason: by_reason,
            left_for_retry: count_from_db(&r.id, "left_for_retry", r.left_for_retry)?,
            bytes: count_from_db(&r.id, "bytes", r.bytes)?,
            stopped_early: r.stopped_early != 0,
            error: r.error,
            failure_kind: r
                .failure_kind
                .as_deref()
                .map(FailureKind::parse)
                .transpose()?,
            throttled_until: r.throttled_until.map(from_millis).transpose()?,
            id: r.id,
        })
    }
}

impl Store {
    /// Records an importer's run and drops that importer's runs beyond
    /// [`KEEP_PER_IMPORTER`]. `false` (nothing recorded) when the importer
    /// is not the client's (it was deleted while it ran). A second row for
    /// the same execution and importer is a [`StoreError::Conflict`].
    pub async fn record_import_run(&self, run: &ImportRunRecord) -> Result<bool> {
        let by_reason = serde_json::to_string(&run.to_error_by_reason)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO import_runs (id, execution_id, client_id, importer_id, started_at, \
             finished_at, outcome, imported, completed, moves_confirmed, to_error, \
             to_error_by_reason, left_for_retry, bytes, stopped_early, error, failure_kind, throttled_until) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18 \
             WHERE EXISTS (SELECT 1 FROM importers WHERE id = $4 AND client_id = $3)",
        )
        .bind(&run.id)
        .bind(&run.execution_id)
        .bind(&run.client_id)
        .bind(&run.importer_id)
        .bind(to_millis(run.started_at))
        .bind(to_millis(run.finished_at))
        .bind(run.outcome.as_str())
        .bind(count_to_db(run.imported))
        .bind(count_to_db(run.completed))
        .bind(count_to_db(run.moves_confirmed))
        .bind(count_to_db(run.to_error()))
        .bind(by_reason)
        .bind(count_to_db(run.left_for_retry))
        .bind(count_to_db(run.bytes))
        .bind(run.stopped_early)
        .bind(&run.error)
        .bind(run.failure_kind.map(FailureKind::as_str))
        .bind(run.throttled_until.map(to_millis))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            crate::clients::unique_violation_as_conflict(e, || {
                format!(
                    "execution {} already recorded a run of importer {}",
                    run.execution_id, run.importer_id
                )
            })
        })?
        .rows_affected();
        if inserted > 0 {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM import_runs WHERE importer_id = $1 AND id NOT IN \
                 (SELECT id FROM import_runs WHERE importer_id = $1 \
                  ORDER BY started_at DESC, id DESC LIMIT {KEEP_PER_IMPORTER})"
            )))
            .bind(&run.importer_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(inserted > 0)
    }

    /// The importer's newest run; `None` before its first.
    pub async fn latest_import_run(
        &self,
        client_id: &str,
        importer_id: &str,
    ) -> Result<Option<ImportRunRecord>> {
        Ok(self
            .import_runs(client_id, importer_id, 1, 0)
            .await?
            .into_iter()
            .next())
    }

    /// The importer's runs, newest first (`limit` is kept within
    /// 1..=[`KEEP_PER_IMPORTER`]).
    pub async fn import_runs(
        &self,
        client_id: &str,
        importer_id: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<ImportRunRecord>> {
        let rows: Vec<ImportRunRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE client_id = $1 AND importer_id = $2 \
             ORDER BY started_at DESC, id DESC LIMIT $3 OFFSET $4"
        )))
        .bind(client_id)
        .bind(importer_id)
        .bind(i64::from(limit.clamp(1, KEEP_PER_IMPORTER)))
        .bind(i64::from(offset))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(ImportRunRecord::try_from).collect()
    }
}
