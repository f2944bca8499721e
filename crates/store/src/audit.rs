//! The audit log: who changed which importer, job or client setting and
//! when, sign-ins and their failures, and Microsoft authorizations. Rows
//! name what changed, never a secret's value.

use jiff::{SignedDuration, Timestamp};

use crate::{Result, Store, from_millis, new_id, to_millis};

/// How long audit events are kept unless configured otherwise.
pub const DEFAULT_AUDIT_RETENTION: SignedDuration = SignedDuration::from_hours(365 * 24);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: String,
    pub client_id: String,
    pub at: Timestamp,
    /// `user:ID`, `token:ID`, `cli`, or the address a failed sign-in gave.
    pub actor: String,
    /// The user's e-mail or the token's label, when the actor is one.
    pub actor_name: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub detail: String,
}

/// One event to record.
#[derive(Debug, Clone, Copy)]
pub struct NewAuditEvent<'a> {
    pub client_id: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub detail: &'a str,
}

type Row = (
    String,
    String,
    i64,
    String,
    Option<String>,
    String,
    Option<String>,
    String,
);

impl Store {
    pub async fn record_audit(&self, event: NewAuditEvent<'_>, at: Timestamp) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_events (id, client_id, at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new_id())
        .bind(event.client_id)
        .bind(to_millis(at))
        .bind(event.actor)
        .bind(event.action)
        .bind(event.target)
        .bind(event.detail)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The client's events, newest first, with the actor's name resolved.
    pub async fn audit_events(
        &self,
        client_id: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<AuditEvent>> {
        // The actor's name comes from the user or token it names, if both
        // still exist (a deleted user keeps its id in the log).
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT a.id, a.client_id, a.at, a.actor, \
                    COALESCE(u.email, t.label), a.action, a.target, a.detail \
             FROM audit_events a \
             LEFT JOIN users u ON a.actor = 'user:' || u.id AND u.client_id = a.client_id \
             LEFT JOIN api_tokens t ON a.actor = 'token:' || t.id AND t.client_id = a.client_id \
             WHERE a.client_id = $1 ORDER BY a.at DESC, a.id DESC LIMIT $2 OFFSET $3",
        )
        .bind(client_id)
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(
                |(id, client_id, at, actor, actor_name, action, target, detail)| {
                    Ok(AuditEvent {
                        id,
                        client_id,
                        at: from_millis(at)?,
                        actor,
                        actor_name,
                        action,
                        target,
                        detail,
                    })
                },
            )
            .collect()
    }

    /// Deletes events older than `keep`; returns how many.
    pub async fn prune_audit(&self, keep: SignedDuration, now: Timestamp) -> Result<u64> {
        let cutoff = now.checked_sub(keep).unwrap_or(now);
        let done = sqlx::query("DELETE FROM audit_events WHERE at < $1")
            .bind(to_millis(cutoff))
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}
