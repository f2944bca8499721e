//! Executions: one row per run of a script (scheduled, manual or from the
//! CLI) with its trigger, status, UTC start and end, and log lines.
//!
//! A running execution carries a heartbeat; one whose heartbeat stopped (its
//! instance died) is marked failed by whichever instance notices. Old
//! executions are pruned by [`Retention`].

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};

use crate::jobs::{params_from_json, params_to_json};
use crate::{Result, Store, StoreError, from_millis, new_id, to_millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
}

impl ExecutionStatus {
    pub const ALL: [Self; 3] = [Self::Running, Self::Succeeded, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    fn parse(raw: &str) -> Result<Self> {
        match raw {
            "running" => Ok(Self::Running),
            "succeeded" => Ok(Self::Succeeded),
            "failed" => Ok(Self::Failed),
            other => Err(StoreError::Corrupt(format!("execution status `{other}`"))),
        }
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    /// A job's cron slot came.
    Scheduled,
    /// `POST /api/v2/scripts/{name}/run`.
    Manual,
    /// `mailferry run`.
    Cli,
    /// A change notification (Graph) or IMAP IDLE said new mail arrived.
    Push,
}

impl TriggerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Manual => "manual",
            Self::Cli => "cli",
            Self::Push => "push",
        }
    }

    fn parse(raw: &str) -> Result<Self> {
        match raw {
            "scheduled" => Ok(Self::Scheduled),
            "manual" => Ok(Self::Manual),
            "cli" => Ok(Self::Cli),
            "push" => Ok(Self::Push),
            other => Err(StoreError::Corrupt(format!("execution trigger `{other}`"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub id: String,
    pub client_id: String,
    pub script: String,
    pub job_id: Option<String>,
    pub trigger: TriggerKind,
    pub status: ExecutionStatus,
    pub params: Map<String, Value>,
    /// The cron slot of a scheduled run.
    pub scheduled_for: Option<Timestamp>,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub heartbeat_at: Option<Timestamp>,
    pub log: Vec<String>,
    /// Why the run failed, in plain words.
    pub error: Option<String>,
    /// The instance that ran it.
    pub owner: Option<String>,
}

/// A run about to start.
#[derive(Debug, Clone)]
pub struct NewExecution {
    pub client_id: String,
    pub script: String,
    pub job_id: Option<String>,
    pub trigger: TriggerKind,
    pub params: Map<String, Value>,
    pub scheduled_for: Option<Timestamp>,
    pub owner: String,
    pub started_at: Timestamp,
}

impl NewExecution {
    pub(crate) fn to_execution(&self) -> Execution {
        Execution {
            id: new_id(),
            client_id: self.client_id.clone(),
            script: self.script.clone(),
            job_id: self.job_id.clone(),
            trigger: self.trigger,
            status: ExecutionStatus::Running,
            params: self.params.clone(),
            scheduled_for: self.scheduled_for,
            started_at: self.started_at,
            finished_at: None,
            heartbeat_at: Some(self.started_at),
            log: Vec::new(),
            error: None,
            owner: Some(self.owner.clone()),
        }
    }
}

/// Filters of the executions list; newest first.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub job_id: Option<String>,
    pub script: Option<String>,
    pub status: Option<ExecutionStatus>,
    pub limit: u32,
}

/// How many executions are kept: a finished execution is deleted once it is
/// older than `max_age`, or once its client has `keep_per_client` newer ones.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub keep_per_client: u32,
    pub max_age: SignedDuration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            keep_per_client: 1000,
            max_age: SignedDuration::from_hours(30 * 24),
        }
    }
}

const EXECUTION_COLUMNS: &str = "id, client_id, script, job_id, trigger_kind, status, params, \
     scheduled_for, started_at, finished_at, heartbeat_at, log, error, owner";

type ExecutionRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    Option<i64>,
    i64,
    Option<i64>,
    Option<i64>,
    String,
    Option<String>,
    Option<String>,
);

fn execution_from_row(row: ExecutionRow) -> Result<Execution> {
    let (
        id,
        client_id,
        script,
        job_id,
        trigger,
        status,
        params,
        scheduled_for,
        started_at,
        finished_at,
        heartbeat_at,
        log,
        error,
        owner,
    ) = row;
    Ok(Execution {
        id,
        client_id,
        script,
        job_id,
        trigger: TriggerKind::parse(&trigger)?,
        status: ExecutionStatus::parse(&status)?,
        params: params_from_json(&params)?,
        scheduled_for: scheduled_for.map(from_millis).transpose()?,
        started_at: from_millis(started_at)?,
        finished_at: finished_at.map(from_millis).transpose()?,
        heartbeat_at: heartbeat_at.map(from_millis).transpose()?,
        log: serde_json::from_str(&log)
            .map_err(|e| StoreError::Corrupt(format!("execution log: {e}")))?,
        error,
        owner,
    })
}

fn log_to_json(log: &[String]) -> String {
    serde_json::to_string(log).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) async fn insert_execution(
    conn: &mut sqlx::AnyConnection,
    e: &Execution,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO executions (id, client_id, script, job_id, trigger_kind, status, params, \
         scheduled_for, started_at, finished_at, heartbeat_at, log, error, owner) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&e.id)
    .bind(&e.client_id)
    .bind(&e.script)
    .bind(&e.job_id)
    .bind(e.trigger.as_str())
    .bind(e.status.as_str())
    .bind(params_to_json(&e.params))
    .bind(e.scheduled_for.map(to_millis))
    .bind(to_millis(e.started_at))
    .bind(e.finished_at.map(to_millis))
    .bind(e.heartbeat_at.map(to_millis))
    .bind(log_to_json(&e.log))
    .bind(&e.error)
    .bind(&e.owner)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Records a run that starts now (status `running`). Scheduled runs are
    /// recorded by [`Store::claim_job_run`] instead.
    pub async fn start_execution(&self, new: &NewExecution) -> Result<Execution> {
        let execution = new.to_execution();
        let mut conn = self.pool().acquire().await?;
        insert_execution(&mut conn, &execution).await.map_err(|e| {
            crate::clients::unique_violation_as_conflict(e, || {
                "this job already has an execution for that slot".to_owned()
            })
        })?;
        Ok(execution)
    }

    /// Records a run that failed before it could start (e.g. its script is
    /// not in this build): inserted already finished.
    pub async fn record_failed_execution(
        &self,
        new: &NewExecution,
        error: &str,
    ) -> Result<Execution> {
        let mut execution = new.to_execution();
        execution.status = ExecutionStatus::Failed;
        execution.finished_at = Some(new.started_at);
        execution.error = Some(error.to_owned());
        execution.log = vec![format!("failed: {error}")];
        let mut conn = self.pool().acquire().await?;
        insert_execution(&mut conn, &execution).await?;
        Ok(execution)
    }

    /// Marks a running execution alive and saves its log so far; `false` if
    /// it is no longer running (another instance declared it dead).
    pub async fn execution_heartbeat(
        &self,
        id: &str,
        now: Timestamp,
        log: &[String],
    ) -> Result<bool> {
        let updated = sqlx::query(
            "UPDATE executions SET heartbeat_at = $1, log = $2 WHERE id = $3 AND status = $4",
        )
        .bind(to_millis(now))
        .bind(log_to_json(log))
        .bind(id)
        .bind(ExecutionStatus::Running.as_str())
        .execute(self.pool())
        .await?;
        Ok(updated.rows_affected() > 0)
    }

    /// Ends a running execution; the first end wins (`false` if it had
    /// already been ended, e.g. marked failed after its instance vanished).
    pub async fn finish_execution(
        &self,
        id: &str,
        status: ExecutionStatus,
        now: Timestamp,
        log: &[String],
        error: Option<&str>,
    ) -> Result<bool> {
        let updated = sqlx::query(
            "UPDATE executions SET status = $1, finished_at = $2, heartbeat_at = $2, log = $3, \
             error = $4 WHERE id = $5 AND status = $6",
        )
        .bind(status.as_str())
        .bind(to_millis(now))
        .bind(log_to_json(log))
        .bind(error)
        .bind(id)
        .bind(ExecutionStatus::Running.as_str())
        .execute(self.pool())
        .await?;
        Ok(updated.rows_affected() > 0)
    }

    pub async fn execution(&self, client_id: &str, id: &str) -> Result<Option<Execution>> {
        let row: Option<ExecutionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE client_id = $1 AND id = $2"
        )))
        .bind(client_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(execution_from_row).transpose()
    }

    /// The client's executions, newest first.
    pub async fn list_executions(
        &self,
        client_id: &str,
        filter: &ExecutionFilter,
    ) -> Result<Vec<Execution>> {
        let mut sql = format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE client_id = $1");
        let mut n = 1;
        if filter.job_id.is_some() {
            n += 1;
            sql.push_str(&format!(" AND job_id = ${n}"));
        }
        if filter.script.is_some() {
            n += 1;
            sql.push_str(&format!(" AND script = ${n}"));
        }
        if filter.status.is_some() {
            n += 1;
            sql.push_str(&format!(" AND status = ${n}"));
        }
        sql.push_str(&format!(
            " ORDER BY started_at DESC, id DESC LIMIT {}",
            filter.limit
        ));
        let mut query = sqlx::query_as::<_, ExecutionRow>(sqlx::AssertSqlSafe(sql)).bind(client_id);
        if let Some(job_id) = &filter.job_id {
            query = query.bind(job_id);
        }
        if let Some(script) = &filter.script {
            query = query.bind(script);
        }
        if let Some(status) = filter.status {
            query = query.bind(status.as_str());
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.into_iter().map(execution_from_row).collect()
    }

    /// Marks failed every running execution whose heartbeat is older than
    /// `heartbeat_before`: its instance died. Returns how many.
    pub async fn fail_stale_executions(
        &self,
        heartbeat_before: Timestamp,
        now: Timestamp,
    ) -> Result<u64> {
        let updated = sqlx::query(
            "UPDATE executions SET status = $1, finished_at = $2, error = $3 \
             WHERE status = $4 AND heartbeat_at < $5",
        )
        .bind(ExecutionStatus::Failed.as_str())
        .bind(to_millis(now))
        .bind(
            "the instance running this stopped sending heartbeats (it crashed or lost the \
             database) before the script finished",
        )
        .bind(ExecutionStatus::Running.as_str())
        .bind(to_millis(heartbeat_before))
        .execute(self.pool())
        .await?;
        Ok(updated.rows_affected())
    }

    /// Ends every execution `owner` still has running with `error` (an
    /// instance that shuts down before its scripts finished), and releases
    /// its job leases.
    pub async fn abandon_executions_of(
        &self,
        owner: &str,
        now: Timestamp,
        error: &str,
    ) -> Result<u64> {
        let updated = sqlx::query(
            "UPDATE executions SET status = $1, finished_at = $2, error = $3 \
             WHERE owner = $4 AND status = $5",
        )
        .bind(ExecutionStatus::Failed.as_str())
        .bind(to_millis(now))
        .bind(error)
        .bind(owner)
        .bind(ExecutionStatus::Running.as_str())
        .execute(self.pool())
        .await?;
        sqlx::query(
            "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
        )
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(updated.rows_affected())
    }

    /// Deletes finished executions beyond `retention`. Returns how many.
    pub async fn prune_executions(&self, retention: Retention, now: Timestamp) -> Result<u64> {
        let cutoff = now.checked_sub(retention.max_age).unwrap_or(now);
        let mut deleted =
            sqlx::query("DELETE FROM executions WHERE status <> $1 AND started_at < $2")
                .bind(ExecutionStatus::Running.as_str())
                .bind(to_millis(cutoff))
                .execute(self.pool())
                .await?
                .rows_affected();
        let clients: Vec<String> = sqlx::query_scalar(
            "SELECT client_id FROM executions GROUP BY client_id HAVING COUNT(*) > $1",
        )
        .bind(i64::from(retention.keep_per_client))
        .fetch_all(self.pool())
        .await?;
        for client_id in clients {
            deleted += sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM executions WHERE client_id = $1 AND status <> $2 AND id NOT IN \
                 (SELECT id FROM executions WHERE client_id = $1 \
                  ORDER BY started_at DESC, id DESC LIMIT {})",
                retention.keep_per_client
            )))
            .bind(&client_id)
            .bind(ExecutionStatus::Running.as_str())
            .execute(self.pool())
            .await?
            .rows_affected();
        }
        Ok(deleted)
    }
}
