//! The import ledger: what mailferry did with each mail of an importer, so
//! that a run after a crash (or with a changed message id) neither loses
//! nor repeats anything.
//!
//! A row is keyed by the mailbox's id for the mail (`source_key`: the Graph
//! immutable id, or `uidvalidity:uid` for IMAP) and carries the ids that
//! survive a move: the `Message-ID` and the SHA-256 of the MIME.

use jiff::Timestamp;

use crate::{Result, Store, StoreError, from_millis, to_millis};

/// How far a mail got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerState {
    /// Its document is stored; the move to Exported may not have happened.
    Stored,
    /// Document stored and mail moved to Exported: done.
    Moved,
    /// Decided not importable (the reason is recorded); the move to Error
    /// may not have happened.
    ToError,
    /// Moved to the Error folder: done.
    MovedToError,
}

impl LedgerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Moved => "moved",
            Self::ToError => "to_error",
            Self::MovedToError => "moved_to_error",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "stored" => Self::Stored,
            "moved" => Self::Moved,
            "to_error" => Self::ToError,
            "moved_to_error" => Self::MovedToError,
            other => return Err(StoreError::Corrupt(format!("ledger state `{other}`"))),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub importer_id: String,
    pub source_key: String,
    pub internet_message_id: Option<String>,
    pub mime_sha256: Option<String>,
    pub document_id: Option<String>,
    pub state: LedgerState,
    /// Why the mail went to Error (`code: detail`).
    pub reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

type LedgerRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    i64,
    i64,
);

const SELECT: &str = "SELECT importer_id, source_key, internet_message_id, mime_sha256, document_id, state, reason, created_at, updated_at FROM import_ledger";

fn entry_from_row(
    (
        importer_id,
        source_key,
        internet_message_id,
        mime_sha256,
        document_id,
        state,
        reason,
        created_at,
        updated_at,
    ): LedgerRow,
) -> Result<LedgerEntry> {
    Ok(LedgerEntry {
        importer_id,
        source_key,
        internet_message_id,
        mime_sha256,
        document_id,
        state: LedgerState::parse(&state)?,
        reason,
        created_at: from_millis(created_at)?,
        updated_at: from_millis(updated_at)?,
    })
}

impl Store {
    /// Records (or advances) what happened to a mail. An existing row keeps
    /// its `created_at`; every other field takes the new value.
    pub async fn record_ledger(&self, entry: &LedgerEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO import_ledger (importer_id, source_key, internet_message_id, mime_sha256, document_id, state, reason, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (importer_id, source_key) DO UPDATE SET \
               internet_message_id = excluded.internet_message_id, mime_sha256 = excluded.mime_sha256, \
               document_id = excluded.document_id, state = excluded.state, reason = excluded.reason, \
               updated_at = excluded.updated_at",
        )
        .bind(&entry.importer_id)
        .bind(&entry.source_key)
        .bind(&entry.internet_message_id)
        .bind(&entry.mime_sha256)
        .bind(&entry.document_id)
        .bind(entry.state.as_str())
        .bind(&entry.reason)
        .bind(to_millis(entry.created_at))
        .bind(to_millis(entry.updated_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Moves a mail's row to `state` (after its move succeeded).
    pub async fn set_ledger_state(
        &self,
        importer_id: &str,
        source_key: &str,
        state: LedgerState,
        now: Timestamp,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE import_ledger SET state = $1, updated_at = $2 WHERE importer_id = $3 AND source_key = $4",
        )
        .bind(state.as_str())
        .bind(to_millis(now))
        .bind(importer_id)
        .bind(source_key)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("ledger entry"));
        }
        Ok(())
    }

    pub async fn ledger_entry(
        &self,
        importer_id: &str,
        source_key: &str,
    ) -> Result<Option<LedgerEntry>> {
        let row: Option<LedgerRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE importer_id = $1 AND source_key = $2"
        )))
        .bind(importer_id)
        .bind(source_key)
        .fetch_optional(self.pool())
        .await?;
        row.map(entry_from_row).transpose()
    }

    /// A row for the same mail under another source key: same `Message-ID`,
    /// or (for a mail without one) the same MIME. The oldest wins.
    pub async fn ledger_entry_for_mail(
        &self,
        importer_id: &str,
        internet_message_id: Option<&str>,
        mime_sha256: &str,
    ) -> Result<Option<LedgerEntry>> {
        let row: Option<LedgerRow> = match internet_message_id {
            Some(id) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT} WHERE importer_id = $1 AND internet_message_id = $2 ORDER BY created_at, source_key LIMIT 1"
                )))
                .bind(importer_id)
                .bind(id)
                .fetch_optional(self.pool())
                .await?
            }
            None => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT} WHERE importer_id = $1 AND mime_sha256 = $2 AND internet_message_id IS NULL ORDER BY created_at, source_key LIMIT 1"
                )))
                .bind(importer_id)
                .bind(mime_sha256)
                .fetch_optional(self.pool())
                .await?
            }
        };
        row.map(entry_from_row).transpose()
    }

    /// An importer's rows whose move is not confirmed (`stored`, `to_error`),
    /// most recently changed first: a crash a run ago is checked before
    /// rows that stayed unfinished for long.
    pub async fn unfinished_ledger_entries(
        &self,
        importer_id: &str,
        limit: i64,
    ) -> Result<Vec<LedgerEntry>> {
        let rows: Vec<LedgerRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE importer_id = $1 AND state IN ('stored', 'to_error') \
             ORDER BY updated_at DESC, source_key LIMIT $2"
        )))
        .bind(importer_id)
        .bind(limit.max(0))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(entry_from_row).collect()
    }

    /// Moves a row from `from` to `to` only if it is still in `from`, so a
    /// concurrent change (another run finishing the same mail) is never
    /// overwritten. Returns whether the row changed.
    pub async fn advance_ledger_state(
        &self,
        importer_id: &str,
        source_key: &str,
        from: LedgerState,
        to: LedgerState,
        now: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE import_ledger SET state = $1, updated_at = $2 \
             WHERE importer_id = $3 AND source_key = $4 AND state = $5",
        )
        .bind(to.as_str())
        .bind(to_millis(now))
        .bind(importer_id)
        .bind(source_key)
        .bind(from.as_str())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every row of an importer, oldest first.
    pub async fn ledger_entries(&self, importer_id: &str) -> Result<Vec<LedgerEntry>> {
        let rows: Vec<LedgerRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE importer_id = $1 ORDER BY created_at, source_key"
        )))
        .bind(importer_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(entry_from_row).collect()
    }
}

/// What an importer's ledger says in sum (the importer status's `last_import`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerActivity {
    /// When a mail of the importer last changed state.
    pub last_at: Timestamp,
    /// Mails with a document (moved to Exported, or about to be).
    pub imported: i64,
    /// Mails decided not importable (moved to Error, or about to be).
    pub to_error: i64,
    /// Mails whose move is not confirmed yet (a run was interrupted).
    pub unfinished: i64,
}

impl Store {
    /// Totals of an importer's ledger; `None` before its first mail.
    pub async fn ledger_activity(&self, importer_id: &str) -> Result<Option<LedgerActivity>> {
        let row: (Option<i64>, Option<i64>, Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT MAX(updated_at), \
               SUM(CASE WHEN state IN ('stored', 'moved') THEN 1 ELSE 0 END), \
               SUM(CASE WHEN state IN ('to_error', 'moved_to_error') THEN 1 ELSE 0 END), \
               SUM(CASE WHEN state IN ('stored', 'to_error') THEN 1 ELSE 0 END) \
             FROM import_ledger WHERE importer_id = $1",
        )
        .bind(importer_id)
        .fetch_one(self.pool())
        .await?;
        let (Some(last), imported, to_error, unfinished) = row else {
            return Ok(None);
        };
        Ok(Some(LedgerActivity {
            last_at: from_millis(last)?,
            imported: imported.unwrap_or(0),
            to_error: to_error.unwrap_or(0),
            unfinished: unfinished.unwrap_or(0),
        }))
    }
}
