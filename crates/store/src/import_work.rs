//! An `import-emails` run's work, spread over instances: the run's owner
//! queues one unit per mailbox ([`Store::queue_import_work`]); every
//! instance claims open units ([`Store::claim_import_work`]) within its own
//! import budget, renews its claim while it works, and records the unit's
//! log and failures when done; the owner waits for every unit and writes
//! the run's log from them. A unit whose holder died is taken over once its
//! claim lapses (or at once on the holder's own host, see `import::lease`).

use jiff::Timestamp;

use crate::{Result, Store, StoreError, from_millis, to_millis};

/// One unit of a run's work: the importers of one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportWork {
    pub execution_id: String,
    /// The mailbox lease's name.
    pub unit: String,
    pub client_id: String,
    pub importer_ids: Vec<String>,
    pub claimed_by: Option<String>,
    pub claim_until: Option<Timestamp>,
    pub done_at: Option<Timestamp>,
    pub log: Vec<String>,
    pub failures: Vec<String>,
    /// Importers whose mailbox could be opened.
    pub worked: u64,
}

type Row = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    String,
    String,
    i64,
);

const SELECT: &str = "SELECT execution_id, unit, client_id, importer_ids, claimed_by, claim_until, \
     done_at, log, failures, worked FROM import_work";

fn from_row(
    (execution_id, unit, client_id, ids, claimed_by, claim_until, done_at, log, failures, worked): Row,
) -> Result<ImportWork> {
    let list = |what: &str, raw: &str| {
        serde_json::from_str::<Vec<String>>(raw).map_err(|e| {
            StoreError::Corrupt(format!("import work {execution_id}/{unit} {what}: {e}"))
        })
    };
    Ok(ImportWork {
        importer_ids: list("importer_ids", &ids)?,
        log: list("log", &log)?,
        failures: list("failures", &failures)?,
        claim_until: claim_until.map(from_millis).transpose()?,
        done_at: done_at.map(from_millis).transpose()?,
        worked: u64::try_from(worked).unwrap_or(0),
        execution_id,
        unit,
        client_id,
        claimed_by,
    })
}

fn json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

impl Store {
    /// Queues `units` (mailbox, its importers) as the work of
    /// `execution_id`. Open units of the client's earlier runs that no live
    /// claim holds are dropped: this run covers their mailboxes afresh.
    pub async fn queue_import_work(
        &self,
        execution_id: &str,
        client_id: &str,
        units: &[(String, Vec<String>)],
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "DELETE FROM import_work WHERE client_id = $1 AND execution_id <> $2 \
             AND (done_at IS NOT NULL OR claimed_by IS NULL OR claim_until < $3)",
        )
        .bind(client_id)
        .bind(execution_id)
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await?;
        for (unit, importers) in units {
            sqlx::query(
                "INSERT INTO import_work (execution_id, unit, client_id, importer_ids, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(execution_id)
            .bind(unit)
            .bind(client_id)
            .bind(json(importers))
            .bind(to_millis(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Open units (not done) that `owner` might claim: unclaimed ones and
    /// ones whose claim lapsed, plus claimed ones when `include_claimed`
    /// (for a caller that can tell a dead holder on its own host). Only the
    /// run `execution_id`'s when given; oldest first.
    pub async fn open_import_work(
        &self,
        execution_id: Option<&str>,
        include_claimed: bool,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<ImportWork>> {
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE done_at IS NULL \
             AND ($1 OR claimed_by IS NULL OR claim_until < $2) \
             AND ($3 = '' OR execution_id = $3) \
             ORDER BY created_at, unit LIMIT $4"
        )))
        .bind(include_claimed)
        .bind(to_millis(now))
        .bind(execution_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// Claims `work` for `owner` until `until`, if it is still as it was
    /// read (same holder, not done): two instances cannot both win.
    pub async fn claim_import_work(
        &self,
        work: &ImportWork,
        owner: &str,
        until: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE import_work SET claimed_by = $1, claim_until = $2 \
             WHERE execution_id = $3 AND unit = $4 AND done_at IS NULL \
             AND COALESCE(claimed_by, '') = $5",
        )
        .bind(owner)
        .bind(to_millis(until))
        .bind(&work.execution_id)
        .bind(&work.unit)
        .bind(work.claimed_by.as_deref().unwrap_or(""))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Extends `owner`'s claim; false when it lost the unit meanwhile.
    pub async fn renew_import_work(
        &self,
        execution_id: &str,
        unit: &str,
        owner: &str,
        until: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE import_work SET claim_until = $1 \
             WHERE execution_id = $2 AND unit = $3 AND claimed_by = $4 AND done_at IS NULL",
        )
        .bind(to_millis(until))
        .bind(execution_id)
        .bind(unit)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the unit as done by `owner`, with what its importers logged.
    pub async fn finish_import_work(
        &self,
        work: &ImportWork,
        owner: &str,
        log: &[String],
        failures: &[String],
        worked: u64,
        now: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE import_work SET done_at = $1, log = $2, failures = $3, worked = $4 \
             WHERE execution_id = $5 AND unit = $6 AND claimed_by = $7 AND done_at IS NULL",
        )
        .bind(to_millis(now))
        .bind(json(log))
        .bind(json(failures))
        .bind(i64::try_from(worked).unwrap_or(i64::MAX))
        .bind(&work.execution_id)
        .bind(&work.unit)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every unit of the run `execution_id`, in queue order.
    pub async fn import_work_of(&self, execution_id: &str) -> Result<Vec<ImportWork>> {
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE execution_id = $1 ORDER BY created_at, unit"
        )))
        .bind(execution_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// The run's units done at or after `since` (all done ones without it),
    /// and how many are still open: what its owner polls, reading each
    /// finished unit about once however many units the run has.
    pub async fn import_work_progress(
        &self,
        execution_id: &str,
        since: Option<Timestamp>,
    ) -> Result<(Vec<ImportWork>, u64)> {
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE execution_id = $1 AND done_at IS NOT NULL AND done_at >= $2 \
             ORDER BY done_at, unit"
        )))
        .bind(execution_id)
        .bind(since.map_or(i64::MIN, to_millis))
        .fetch_all(self.pool())
        .await?;
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM import_work WHERE execution_id = $1 AND done_at IS NULL",
        )
        .bind(execution_id)
        .fetch_one(self.pool())
        .await?;
        Ok((
            rows.into_iter().map(from_row).collect::<Result<_>>()?,
            u64::try_from(open).unwrap_or(0),
        ))
    }

    /// Drops the run's units once its owner has read them.
    pub async fn delete_import_work(&self, execution_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM import_work WHERE execution_id = $1")
            .bind(execution_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
