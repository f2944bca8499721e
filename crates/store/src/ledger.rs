//! The import ledger: what mailferry did with each mail of an importer, so
//! that a run after a crash (or with a changed message id) neither loses
//! nor repeats anything, and so that an admin can see every mail's fate.
//!
//! A row is keyed by the mailbox's id for the mail (`source_key`: the Graph
//! immutable id, or `uidvalidity:uid:folder` for IMAP) and carries the ids that
//! survive a move: the `Message-ID`, the SHA-256 of the MIME and the
//! fingerprint of the mail's content (which tells two different mails with
//! one `Message-ID` apart). `mail_id` is the row's own id for the API.

use jiff::Timestamp;

use crate::{Result, Store, StoreError, from_millis, new_id, to_millis};

/// How far a mail got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerState {
    /// Seen in the Inbox but not decided yet: a transient failure left it
    /// there (`attempts` counts the runs), or an admin asked to reprocess it.
    Pending,
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
            Self::Pending => "pending",
            Self::Stored => "stored",
            Self::Moved => "moved",
            Self::ToError => "to_error",
            Self::MovedToError => "moved_to_error",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => Self::Pending,
            "stored" => Self::Stored,
            "moved" => Self::Moved,
            "to_error" => Self::ToError,
            "moved_to_error" => Self::MovedToError,
            other => return Err(StoreError::Corrupt(format!("ledger state `{other}`"))),
        })
    }

    /// Where the mail is headed, as the admin names it.
    pub fn fate(self) -> MailFate {
        match self {
            Self::Pending => MailFate::Pending,
            Self::Stored | Self::Moved => MailFate::Exported,
            Self::ToError | Self::MovedToError => MailFate::Error,
        }
    }
}

/// A mail's fate as the API's `state` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailFate {
    /// Still in the Inbox, to be decided by the next run.
    Pending,
    /// A document, and the mail in Exported (or on its way).
    Exported,
    /// In Error (or on its way), with the reason.
    Error,
}

impl MailFate {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Exported => "exported",
            Self::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "exported" => Some(Self::Exported),
            "error" => Some(Self::Error),
            _ => None,
        }
    }

    fn states(self) -> &'static str {
        match self {
            Self::Pending => "('pending')",
            Self::Exported => "('stored', 'moved')",
            Self::Error => "('to_error', 'moved_to_error')",
        }
    }
}

/// Which of an importer's mails to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailFilter {
    pub fate: Option<MailFate>,
    /// Only the mail that made this document.
    pub document_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub importer_id: String,
    pub source_key: String,
    /// The row's own id (the API's `mail_id`). Kept when a row is recorded
    /// again; a new row gets a fresh one from [`LedgerEntry::new_mail_id`].
    pub mail_id: String,
    pub internet_message_id: Option<String>,
    pub mime_sha256: Option<String>,
    /// Fingerprint of the mail's content; `None` on rows from before it
    /// existed (those compare by `mime_sha256`).
    pub content_sha256: Option<String>,
    pub document_id: Option<String>,
    pub state: LedgerState,
    /// Why the mail went to Error (`code: detail`).
    pub reason: Option<String>,
    pub subject: Option<String>,
    pub sender: Option<String>,
    pub received_at: Option<Timestamp>,
    /// Runs in which a transient failure left the mail undecided.
    pub attempts: u32,
    /// The last of those failures.
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl LedgerEntry {
    pub fn new_mail_id() -> String {
        new_id()
    }

    /// The reason split into its code and plain-words detail.
    pub fn reason_parts(&self) -> Option<(&str, &str)> {
        self.reason
            .as_deref()
            .map(|r| r.split_once(": ").unwrap_or((r, "")))
    }
}

#[derive(sqlx::FromRow)]
struct LedgerRow {
    importer_id: String,
    source_key: String,
    mail_id: Option<String>,
    internet_message_id: Option<String>,
    mime_sha256: Option<String>,
    content_sha256: Option<String>,
    document_id: Option<String>,
    state: String,
    reason: Option<String>,
    subject: Option<String>,
    sender: Option<String>,
    received_at: Option<i64>,
    attempts: i64,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

const SELECT: &str = "SELECT importer_id, source_key, mail_id, internet_message_id, mime_sha256, content_sha256, document_id, state, reason, subject, sender, received_at, attempts, last_error, created_at, updated_at FROM import_ledger";

fn entry_from_row(r: LedgerRow) -> Result<LedgerEntry> {
    Ok(LedgerEntry {
        mail_id: r
            .mail_id
            .ok_or_else(|| StoreError::Corrupt("ledger row without mail_id".to_owned()))?,
        importer_id: r.importer_id,
        source_key: r.source_key,
        internet_message_id: r.internet_message_id,
        mime_sha256: r.mime_sha256,
        content_sha256: r.content_sha256,
        document_id: r.document_id,
        state: LedgerState::parse(&r.state)?,
        reason: r.reason,
        subject: r.subject,
        sender: r.sender,
        received_at: r.received_at.map(from_millis).transpose()?,
        attempts: u32::try_from(r.attempts.max(0)).unwrap_or(u32::MAX),
        last_error: r.last_error,
        created_at: from_millis(r.created_at)?,
        updated_at: from_millis(r.updated_at)?,
    })
}

impl Store {
    /// Records (or advances) what happened to a mail. An existing row keeps
    /// its `created_at` and `mail_id`; every other field takes the new value.
    pub async fn record_ledger(&self, entry: &LedgerEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO import_ledger (importer_id, source_key, mail_id, internet_message_id, mime_sha256, content_sha256, document_id, state, reason, subject, sender, received_at, attempts, last_error, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             ON CONFLICT (importer_id, source_key) DO UPDATE SET \
               internet_message_id = excluded.internet_message_id, mime_sha256 = excluded.mime_sha256, \
               content_sha256 = excluded.content_sha256, document_id = excluded.document_id, \
               state = excluded.state, reason = excluded.reason, subject = excluded.subject, \
               sender = excluded.sender, received_at = excluded.received_at, \
               attempts = excluded.attempts, last_error = excluded.last_error, \
               updated_at = excluded.updated_at",
        )
        .bind(&entry.importer_id)
        .bind(&entry.source_key)
        .bind(&entry.mail_id)
        .bind(&entry.internet_message_id)
        .bind(&entry.mime_sha256)
        .bind(&entry.content_sha256)
        .bind(&entry.document_id)
        .bind(entry.state.as_str())
        .bind(&entry.reason)
        .bind(&entry.subject)
        .bind(&entry.sender)
        .bind(entry.received_at.map(to_millis))
        .bind(i64::from(entry.attempts))
        .bind(&entry.last_error)
        .bind(to_millis(entry.created_at))
        .bind(to_millis(entry.updated_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Counts one more run in which a transient failure left the mail
    /// undecided, and returns how many there were. A row that was decided
    /// before (a mail an admin moved back) starts counting again at 1; a
    /// row with a document or on its way to Error is never reopened here
    /// (0: nothing counted).
    pub async fn record_attempt(&self, entry: &LedgerEntry, error: &str) -> Result<u32> {
        let counted: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO import_ledger (importer_id, source_key, mail_id, internet_message_id, mime_sha256, content_sha256, state, subject, sender, received_at, attempts, last_error, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, 1, $10, $11, $11) \
             ON CONFLICT (importer_id, source_key) DO UPDATE SET \
               attempts = CASE WHEN import_ledger.state = 'pending' THEN import_ledger.attempts + 1 ELSE 1 END, \
               state = 'pending', document_id = NULL, reason = NULL, last_error = excluded.last_error, \
               internet_message_id = COALESCE(excluded.internet_message_id, import_ledger.internet_message_id), \
               mime_sha256 = COALESCE(excluded.mime_sha256, import_ledger.mime_sha256), \
               content_sha256 = COALESCE(excluded.content_sha256, import_ledger.content_sha256), \
               subject = COALESCE(excluded.subject, import_ledger.subject), \
               sender = COALESCE(excluded.sender, import_ledger.sender), \
               received_at = COALESCE(excluded.received_at, import_ledger.received_at), \
               updated_at = excluded.updated_at \
             WHERE import_ledger.state IN ('pending', 'moved_to_error') \
             RETURNING attempts",
        )
        .bind(&entry.importer_id)
        .bind(&entry.source_key)
        .bind(&entry.mail_id)
        .bind(&entry.internet_message_id)
        .bind(&entry.mime_sha256)
        .bind(&entry.content_sha256)
        .bind(&entry.subject)
        .bind(&entry.sender)
        .bind(entry.received_at.map(to_millis))
        .bind(error)
        .bind(to_millis(entry.updated_at))
        .fetch_optional(self.pool())
        .await?;
        Ok(counted.map_or(0, |(n,)| u32::try_from(n.max(0)).unwrap_or(u32::MAX)))
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
        self.one_ledger_entry(importer_id, "source_key", source_key)
            .await
    }

    /// One mail of an importer by its `mail_id`.
    pub async fn ledger_entry_by_mail_id(
        &self,
        importer_id: &str,
        mail_id: &str,
    ) -> Result<Option<LedgerEntry>> {
        self.one_ledger_entry(importer_id, "mail_id", mail_id).await
    }

    /// The row of `importer_id` whose unique `column` is `value`.
    async fn one_ledger_entry(
        &self,
        importer_id: &str,
        column: &'static str,
        value: &str,
    ) -> Result<Option<LedgerEntry>> {
        let row: Option<LedgerRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE importer_id = $1 AND {column} = $2"
        )))
        .bind(importer_id)
        .bind(value)
        .fetch_optional(self.pool())
        .await?;
        row.map(entry_from_row).transpose()
    }

    /// Rows that may be the same mail under another source key: the same
    /// `Message-ID`, or (for a mail without one) the same content or MIME.
    /// Oldest first; whether one *is* the same mail is the caller's call.
    pub async fn ledger_entries_for_mail(
        &self,
        importer_id: &str,
        internet_message_id: Option<&str>,
        content_sha256: &str,
        mime_sha256: &str,
    ) -> Result<Vec<LedgerEntry>> {
        let rows: Vec<LedgerRow> = match internet_message_id {
            Some(id) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT} WHERE importer_id = $1 AND internet_message_id = $2 ORDER BY created_at, source_key"
                )))
                .bind(importer_id)
                .bind(id)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT} WHERE importer_id = $1 AND internet_message_id IS NULL \
                     AND (content_sha256 = $2 OR mime_sha256 = $3) ORDER BY created_at, source_key"
                )))
                .bind(importer_id)
                .bind(content_sha256)
                .bind(mime_sha256)
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.into_iter().map(entry_from_row).collect()
    }

    /// An importer's mails, newest first, optionally of one fate or the
    /// one that made a document.
    pub async fn ledger_mails(
        &self,
        importer_id: &str,
        filter: &MailFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<LedgerEntry>> {
        let fate = filter
            .fate
            .map(|f| format!(" AND state IN {}", f.states()))
            .unwrap_or_default();
        let rows: Vec<LedgerRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE importer_id = $1{fate} AND ($2 IS NULL OR document_id = $2) \
             ORDER BY updated_at DESC, source_key LIMIT $3 OFFSET $4"
        )))
        .bind(importer_id)
        .bind(&filter.document_id)
        .bind(limit.max(0))
        .bind(offset.max(0))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(entry_from_row).collect()
    }

    /// Marks a mail in Error to be decided afresh (reprocessing), only if it
    /// is still in Error; returns whether it was.
    pub async fn reopen_ledger_entry(
        &self,
        importer_id: &str,
        mail_id: &str,
        note: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE import_ledger SET state = 'pending', attempts = 0, reason = NULL, \
             last_error = $1, updated_at = $2 \
             WHERE importer_id = $3 AND mail_id = $4 AND state = 'moved_to_error'",
        )
        .bind(note)
        .bind(to_millis(now))
        .bind(importer_id)
        .bind(mail_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
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
