//! Mailboxes under a long `Retry-After`, shared by every instance: a run
//! skips a mailbox until its time has come instead of asking Graph again.

use jiff::Timestamp;

use crate::{Result, Store, from_millis, to_millis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxThrottle {
    /// The mailbox's lease name (`mailbox:{client}:{key}`).
    pub mailbox: String,
    pub until: Timestamp,
    /// What Graph answered, for the run's log and the overview.
    pub reason: String,
}

impl Store {
    /// Records that `mailbox` is to be left alone until `until` (a later
    /// instant already recorded is kept).
    pub async fn put_mailbox_throttle(
        &self,
        client_id: &str,
        mailbox: &str,
        until: Timestamp,
        reason: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO mailbox_throttles (mailbox, client_id, until, reason) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (mailbox) DO UPDATE SET until = excluded.until, reason = excluded.reason \
             WHERE excluded.until > mailbox_throttles.until",
        )
        .bind(mailbox)
        .bind(client_id)
        .bind(to_millis(until))
        .bind(reason)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The throttle on `mailbox` still in force at `now`.
    pub async fn mailbox_throttle(
        &self,
        mailbox: &str,
        now: Timestamp,
    ) -> Result<Option<MailboxThrottle>> {
        let row: Option<(String, i64, String)> = sqlx::query_as(
            "SELECT mailbox, until, reason FROM mailbox_throttles WHERE mailbox = $1 AND until > $2",
        )
        .bind(mailbox)
        .bind(to_millis(now))
        .fetch_optional(self.pool())
        .await?;
        row.map(|(mailbox, until, reason)| {
            Ok(MailboxThrottle {
                mailbox,
                until: from_millis(until)?,
                reason,
            })
        })
        .transpose()
    }
}
