//! Named leases: "only one instance does this for a while" (e.g. pruning
//! old executions). A lease is held until `until_at`; an expired lease, or
//! one the same owner holds, can be taken.
//!
//! Job runs do not use this table: their lease lives on the job row, so the
//! claim and the advance of `next_run_at` are one statement (see `jobs`).

use jiff::Timestamp;

use crate::{Result, Store, to_millis};

impl Store {
    /// Takes (or renews) the lease `name` for `owner` until `until`; `false`
    /// when another owner holds a live lease.
    pub async fn try_acquire_lease(
        &self,
        name: &str,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        // The conflict branch only updates when the lease is free or ours;
        // otherwise no row is returned. Both backends evaluate the WHERE on
        // the current row under the row lock, so two takers cannot both win.
        let taken: Option<String> = sqlx::query_scalar(
            "INSERT INTO leases (name, owner, until_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_at = excluded.until_at \
             WHERE leases.until_at < $4 OR leases.owner = excluded.owner RETURNING name",
        )
        .bind(name)
        .bind(owner)
        .bind(to_millis(until))
        .bind(to_millis(now))
        .fetch_optional(self.pool())
        .await?;
        Ok(taken.is_some())
    }

    /// Gives the lease up early (only if `owner` holds it).
    pub async fn release_lease(&self, name: &str, owner: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(owner)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The owner of a live lease, if any.
    pub async fn lease_owner(&self, name: &str, now: Timestamp) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT owner FROM leases WHERE name = $1 AND until_at >= $2")
                .bind(name)
                .bind(to_millis(now))
                .fetch_optional(self.pool())
                .await?,
        )
    }
}
