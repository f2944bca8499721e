//! Cron jobs of a client (which script runs when, with which parameters),
//! and the claim that makes each due run happen exactly once however many
//! instances share the database.
//!
//! A job's `next_run_at` is the next cron slot it owes. An instance claims a
//! due slot with one compare-and-set `UPDATE` (the slot it saw must still be
//! `next_run_at` and no live lease may be held), which in the same
//! transaction advances `next_run_at`, takes the job's lease and inserts the
//! execution row. `UNIQUE (job_id, scheduled_for)` on executions is the
//! second guard. While the run lasts, the lease is renewed (heartbeat); it
//! is released when the run ends, and an instance that dies leaves a lease
//! that expires and is then taken over.

use domain::schedule::{CronSchedule, ScheduleError};
use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::clients::unique_violation_as_conflict;
use crate::executions::{Execution, ExecutionStatus, NewExecution};
use crate::{Result, Store, StoreError, from_millis, new_id, to_millis};

/// The jobs every new client starts with (enabled, UTC, editable).
pub const DEFAULT_JOBS: [(&str, &str, &str); 2] = [
    (
        "refresh-tokens",
        "*/50 * * * *",
        "Refresh Microsoft tokens ahead of their expiry",
    ),
    (
        "import-emails",
        "*/5 * * * *",
        "Import new mail of every importer",
    ),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub client_id: String,
    pub script: String,
    pub cron: String,
    /// IANA name.
    pub timezone: String,
    pub enabled: bool,
    pub params: Map<String, Value>,
    pub description: String,
    /// The next slot the job owes; `None` while disabled.
    pub next_run_at: Option<Timestamp>,
    /// When the job last started a run.
    pub last_run_at: Option<Timestamp>,
    /// The instance running the job right now, if its lease is live.
    pub lease_owner: Option<String>,
    pub lease_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Job {
    pub fn schedule(&self) -> Result<CronSchedule, ScheduleError> {
        CronSchedule::parse(&self.cron, &self.timezone)
    }

    /// Whether an instance holds the job's lease at `now` (a run is going on).
    pub fn is_leased(&self, now: Timestamp) -> bool {
        self.lease_until.is_some_and(|until| until >= now)
    }
}

/// What an admin sets on a job.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub script: String,
    pub schedule: CronSchedule,
    pub enabled: bool,
    pub params: Map<String, Value>,
    pub description: String,
}

impl JobSpec {
    /// The first slot after `now`, or `None` for a disabled job (re-enabling
    /// schedules from the moment of the change, so it owes nothing for the
    /// time it was off).
    fn next_run_at(&self, now: Timestamp) -> Option<Timestamp> {
        if self.enabled {
            self.schedule.next_run(now).map(|z| z.timestamp())
        } else {
            None
        }
    }
}

/// A due slot an instance wants to run.
#[derive(Debug, Clone)]
pub struct JobClaim<'a> {
    pub job_id: &'a str,
    /// `next_run_at` as the instance read it: the compare of compare-and-set.
    pub seen_next_run_at: Timestamp,
    /// The slot this run is for (the latest one due; see the missed-run policy).
    pub slot: Timestamp,
    /// The job's next slot after this run.
    pub following: Option<Timestamp>,
    pub owner: &'a str,
    pub lease_until: Timestamp,
    pub now: Timestamp,
    /// The execution recorded for the run, in the same transaction.
    pub execution: NewExecution,
}

// sqlx's Any driver cannot decode SQLite booleans, so `enabled` is read
// as an integer on both backends.
const JOB_COLUMNS: &str = "id, client_id, script, cron, timezone, \
     CAST(CASE WHEN enabled THEN 1 ELSE 0 END AS BIGINT) AS enabled, params, description, \
     next_run_at, last_run_at, lease_owner, lease_until, created_at, updated_at";

type JobRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    i64,
    i64,
);

fn opt_millis(ms: Option<i64>) -> Result<Option<Timestamp>> {
    ms.map(from_millis).transpose()
}

fn job_from_row(row: JobRow) -> Result<Job> {
    let (
        id,
        client_id,
        script,
        cron,
        timezone,
        enabled,
        params,
        description,
        next_run_at,
        last_run_at,
        lease_owner,
        lease_until,
        created_at,
        updated_at,
    ) = row;
    Ok(Job {
        params: params_from_json(&params)?,
        id,
        client_id,
        script,
        cron,
        timezone,
        enabled: enabled != 0,
        description,
        next_run_at: opt_millis(next_run_at)?,
        last_run_at: opt_millis(last_run_at)?,
        lease_owner,
        lease_until: opt_millis(lease_until)?,
        created_at: from_millis(created_at)?,
        updated_at: from_millis(updated_at)?,
    })
}

pub(crate) fn params_from_json(raw: &str) -> Result<Map<String, Value>> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("params: {e}")))
}

pub(crate) fn params_to_json(params: &Map<String, Value>) -> String {
    Value::Object(params.clone()).to_string()
}

impl Store {
    pub async fn create_job(&self, client_id: &str, spec: &JobSpec, now: Timestamp) -> Result<Job> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO jobs (id, client_id, script, cron, timezone, enabled, params, description, \
             next_run_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(&id)
        .bind(client_id)
        .bind(&spec.script)
        .bind(spec.schedule.expression())
        .bind(spec.schedule.timezone_name())
        .bind(spec.enabled)
        .bind(params_to_json(&spec.params))
        .bind(&spec.description)
        .bind(spec.next_run_at(now).map(to_millis))
        .bind(to_millis(now))
        .execute(self.pool())
        .await?;
        self.job(client_id, &id)
            .await?
            .ok_or(StoreError::NotFound("job"))
    }

    /// The jobs a new client starts with: [`DEFAULT_JOBS`].
    pub async fn create_default_jobs(&self, client_id: &str, now: Timestamp) -> Result<Vec<Job>> {
        let mut jobs = Vec::new();
        for (script, cron, description) in DEFAULT_JOBS {
            let schedule = CronSchedule::parse(cron, "UTC")
                .map_err(|e| StoreError::Corrupt(format!("default job {script}: {e}")))?;
            let spec = JobSpec {
                script: script.to_owned(),
                schedule,
                enabled: true,
                params: Map::new(),
                description: description.to_owned(),
            };
            jobs.push(self.create_job(client_id, &spec, now).await?);
        }
        Ok(jobs)
    }

    pub async fn list_jobs(&self, client_id: &str) -> Result<Vec<Job>> {
        let rows: Vec<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE client_id = $1 ORDER BY created_at, id"
        )))
        .bind(client_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(job_from_row).collect()
    }

    pub async fn job(&self, client_id: &str, id: &str) -> Result<Option<Job>> {
        let row: Option<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE client_id = $1 AND id = $2"
        )))
        .bind(client_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(job_from_row).transpose()
    }

    /// Replaces what an admin sets; the job is then scheduled from `now`.
    /// A run in progress keeps its lease and finishes.
    pub async fn update_job(
        &self,
        client_id: &str,
        id: &str,
        spec: &JobSpec,
        now: Timestamp,
    ) -> Result<Job> {
        let updated = sqlx::query(
            "UPDATE jobs SET script = $1, cron = $2, timezone = $3, enabled = $4, params = $5, \
             description = $6, next_run_at = $7, updated_at = $8 WHERE client_id = $9 AND id = $10",
        )
        .bind(&spec.script)
        .bind(spec.schedule.expression())
        .bind(spec.schedule.timezone_name())
        .bind(spec.enabled)
        .bind(params_to_json(&spec.params))
        .bind(&spec.description)
        .bind(spec.next_run_at(now).map(to_millis))
        .bind(to_millis(now))
        .bind(client_id)
        .bind(id)
        .execute(self.pool())
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound("job"));
        }
        self.job(client_id, id)
            .await?
            .ok_or(StoreError::NotFound("job"))
    }

    /// Deletes the job; its executions stay (with their `job_id`) until pruned.
    pub async fn delete_job(&self, client_id: &str, id: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM jobs WHERE client_id = $1 AND id = $2")
            .bind(client_id)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    /// Enabled jobs of every client whose next slot has come and whose lease
    /// is free at `now`, oldest slot first.
    pub async fn due_jobs(&self, now: Timestamp) -> Result<Vec<Job>> {
        let rows: Vec<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE enabled = TRUE AND next_run_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1) ORDER BY next_run_at, id"
        )))
        .bind(to_millis(now))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(job_from_row).collect()
    }

    /// The earliest slot any enabled job owes (the scheduler sleeps until then).
    pub async fn next_due_at(&self) -> Result<Option<Timestamp>> {
        let next: Option<i64> =
            sqlx::query_scalar("SELECT MIN(next_run_at) FROM jobs WHERE enabled = TRUE")
                .fetch_one(self.pool())
                .await?;
        opt_millis(next)
    }

    /// Claims a due slot: `Some(execution)` for the one instance that wins,
    /// `None` for every other (the slot moved on, the job changed, or a live
    /// lease is held). Executions a dead instance left `running` for this job
    /// are marked failed in the same step.
    pub async fn claim_job_run(&self, claim: &JobClaim<'_>) -> Result<Option<Execution>> {
        let mut tx = self.pool().begin().await?;
        let now = to_millis(claim.now);
        // The predicate is on the row itself, so PostgreSQL re-checks it on
        // the row version a concurrent winner wrote, and the loser matches 0 rows.
        let won: Option<String> = sqlx::query_scalar(
            "UPDATE jobs SET lease_owner = $1, lease_until = $2, next_run_at = $3, last_run_at = $4 \
             WHERE id = $5 AND enabled = TRUE AND next_run_at = $6 \
             AND (lease_until IS NULL OR lease_until < $4) RETURNING id",
        )
        .bind(claim.owner)
        .bind(to_millis(claim.lease_until))
        .bind(claim.following.map(to_millis))
        .bind(now)
        .bind(claim.job_id)
        .bind(to_millis(claim.seen_next_run_at))
        .fetch_optional(&mut *tx)
        .await?;
        if won.is_none() {
            tx.rollback().await?;
            return Ok(None);
        }
        // The lease was free, so no live instance is running this job.
        sqlx::query(
            "UPDATE executions SET status = $1, finished_at = $2, error = $3 \
             WHERE job_id = $4 AND status = $5",
        )
        .bind(ExecutionStatus::Failed.as_str())
        .bind(now)
        .bind(
            "the instance running this stopped (it crashed or lost the database) before the \
             script finished; its lease expired and another instance took the job over",
        )
        .bind(claim.job_id)
        .bind(ExecutionStatus::Running.as_str())
        .execute(&mut *tx)
        .await?;
        let execution = claim.execution.to_execution();
        match crate::executions::insert_execution(&mut tx, &execution).await {
            Ok(()) => {}
            Err(e) => {
                tx.rollback().await?;
                return Err(unique_violation_as_conflict(e, || {
                    format!(
                        "job {} already has an execution for the slot {}",
                        claim.job_id, claim.slot
                    )
                }));
            }
        }
        tx.commit().await?;
        Ok(Some(execution))
    }

    /// Extends the lease of a run in progress; `false` if the lease is no
    /// longer this owner's (it expired and another instance took over).
    pub async fn renew_job_lease(
        &self,
        job_id: &str,
        owner: &str,
        until: Timestamp,
    ) -> Result<bool> {
        let renewed =
            sqlx::query("UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3")
                .bind(to_millis(until))
                .bind(job_id)
                .bind(owner)
                .execute(self.pool())
                .await?;
        Ok(renewed.rows_affected() > 0)
    }

    pub async fn release_job_lease(&self, job_id: &str, owner: &str) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2",
        )
        .bind(job_id)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
