//! The scheduler that runs inside `mailferry serve`: it finds jobs whose
//! cron slot has come, claims each slot in the database (one instance wins,
//! see `store::jobs`), and runs the script through the [`Runner`].
//!
//! Policies:
//! - **No overlap**: a job's lease is held while it runs, so its next slot
//!   does not start until the run ends (on any instance).
//! - **Missed runs** (downtime, or slots that came while a long run was
//!   going): the job runs **once**, for the latest missed slot, as soon as
//!   the scheduler sees it; it never replays every missed slot.
//! - **Time** comes from the [`Clock`](domain::clock::Clock): [`Scheduler::tick`]
//!   does one pass at the clock's "now", so tests step a manual clock.

use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use store::StoreError;
use store::executions::{Execution, NewExecution, Retention, TriggerKind};
use store::jobs::{Job, JobClaim};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::params;
use crate::runner::Runner;

#[derive(Debug, Clone, Copy)]
pub struct SchedulerConfig {
    /// The longest the loop sleeps before looking again: how soon a job
    /// created or changed through another instance is noticed.
    pub poll_every: Duration,
    /// How long shutdown waits for running scripts.
    pub grace: Duration,
    pub retention: Retention,
    /// How often old executions and audit events are pruned (by one
    /// instance at a time).
    pub prune_every: SignedDuration,
    /// How long audit events are kept.
    pub audit_retention: SignedDuration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            poll_every: Duration::from_secs(10),
            grace: Duration::from_secs(30),
            retention: Retention::default(),
            prune_every: SignedDuration::from_hours(1),
            audit_retention: store::audit::DEFAULT_AUDIT_RETENTION,
        }
    }
}

/// How long to wait before looking again at a job that is due but cannot
/// be claimed yet (its previous run is still going somewhere).
const BUSY_RETRY: Duration = Duration::from_millis(500);

const PRUNE_LEASE: &str = "prune-executions";

pub struct Scheduler {
    runner: Runner,
    config: SchedulerConfig,
    last_prune: Mutex<Option<Timestamp>>,
}

impl Scheduler {
    pub fn new(runner: Runner, config: SchedulerConfig) -> Self {
        Self {
            runner,
            config,
            last_prune: Mutex::new(None),
        }
    }

    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// One pass at the clock's "now": marks runs of dead instances failed,
    /// starts every due job whose slot this instance wins, and prunes old
    /// executions when it is time. Returns the started runs.
    pub async fn tick(&self) -> Result<Vec<JoinHandle<Execution>>, StoreError> {
        let store = self.runner.store();
        let now = self.runner.clock().now();
        let stale_before = now
            .checked_sub(self.runner.config().lease_ttl)
            .unwrap_or(now);
        let dead = store.fail_stale_executions(stale_before, now).await?;
        if dead > 0 {
            tracing::warn!(
                count = dead,
                "marked runs of an unresponsive instance as failed"
            );
        }
        let mut started = Vec::new();
        if self.runner.is_stopping() {
            return Ok(started);
        }
        for job in store.due_jobs(now).await? {
            match self.start_due(&job, now).await {
                Ok(Some(handle)) => started.push(handle),
                Ok(None) => {}
                Err(e) => tracing::warn!(job = %job.id, error = %e, "could not start a due job"),
            }
        }
        self.maybe_prune(now).await;
        Ok(started)
    }

    async fn start_due(
        &self,
        job: &Job,
        now: Timestamp,
    ) -> Result<Option<JoinHandle<Execution>>, StoreError> {
        let Some(seen) = job.next_run_at else {
            return Ok(None);
        };
        // The slot to run and the one after it. A stored schedule that no
        // longer parses gets one failed run saying so, and stops.
        let (slot, following, mut problem) = match job.schedule() {
            Ok(schedule) => {
                let before_seen = seen
                    .checked_sub(SignedDuration::from_millis(1))
                    .unwrap_or(seen);
                let slot = schedule
                    .due_after_downtime(Some(before_seen), now)
                    .unwrap_or(seen);
                let following = schedule.next_run(slot.max(now)).map(|z| z.timestamp());
                (slot, following, None)
            }
            Err(e) => (
                seen,
                None,
                Some(format!(
                    "the job's schedule is no longer valid ({e}); fix it with PUT /api/v2/jobs/{}",
                    job.id
                )),
            ),
        };
        let script = self.runner.registry().get(&job.script);
        if problem.is_none() {
            problem = match &script {
                None => Some(format!(
                    "script `{}` is not available in this build (scripts: {})",
                    job.script,
                    self.runner.registry().names().join(", ")
                )),
                Some(s) => params::check(s.as_ref(), &job.params).err().map(|e| {
                    format!("the job's parameters do not fit the script: {e}; fix them with PUT /api/v2/jobs/{}", job.id)
                }),
            };
        }
        let owner = self.runner.owner().to_owned();
        let claim = JobClaim {
            job_id: &job.id,
            seen_next_run_at: seen,
            slot,
            following,
            owner: &owner,
            lease_until: now
                .checked_add(self.runner.config().lease_ttl)
                .unwrap_or(now),
            now,
            execution: NewExecution {
                client_id: job.client_id.clone(),
                script: job.script.clone(),
                job_id: Some(job.id.clone()),
                trigger: TriggerKind::Scheduled,
                params: job.params.clone(),
                scheduled_for: Some(slot),
                owner: owner.clone(),
                started_at: now,
            },
        };
        let execution = match self.runner.store().claim_job_run(&claim).await {
            Ok(Some(execution)) => execution,
            // Another instance won this slot, or the job changed meanwhile.
            Ok(None) => return Ok(None),
            Err(StoreError::Conflict(message)) => {
                tracing::warn!(job = %job.id, %slot, %message, "slot already ran; skipped");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        tracing::info!(job = %job.id, script = %job.script, %slot, execution = %execution.id, "starting a scheduled run");
        let script = match (problem, script) {
            (None, Some(script)) => Ok(script),
            (Some(problem), _) => Err(problem),
            (None, None) => Err(format!("script `{}` is not available", job.script)),
        };
        Ok(Some(self.runner.spawn(script, execution)))
    }

    async fn maybe_prune(&self, now: Timestamp) {
        {
            let last = self.last_prune.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| now.duration_since(at) < self.config.prune_every) {
                return;
            }
        }
        *self.last_prune.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
        let store = self.runner.store();
        let until = now.checked_add(self.config.prune_every).unwrap_or(now);
        // One instance prunes per period; the lease is simply left to expire.
        match store
            .try_acquire_lease(PRUNE_LEASE, self.runner.owner(), until, now)
            .await
        {
            Ok(true) => {
                match store.prune_executions(self.config.retention, now).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(count = n, "pruned old executions"),
                    Err(e) => tracing::warn!(error = %e, "pruning executions failed"),
                }
                match store.prune_audit(self.config.audit_retention, now).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(count = n, "pruned audit events older than the retention")
                    }
                    Err(e) => tracing::warn!(error = %e, "pruning the audit log failed"),
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "pruning executions failed"),
        }
    }

    /// How long to sleep before the next pass.
    async fn pause(&self) -> Duration {
        let now = self.runner.clock().now();
        match self.runner.store().next_due_at().await {
            Ok(Some(due)) if due > now => {
                let wait = now.duration_until(due);
                Duration::try_from(wait)
                    .unwrap_or(self.config.poll_every)
                    .min(self.config.poll_every)
            }
            Ok(Some(_)) => BUSY_RETRY,
            Ok(None) => self.config.poll_every,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the jobs; retrying");
                self.config.poll_every
            }
        }
    }

    /// Runs passes until `shutdown` is cancelled, then waits for running
    /// scripts up to the grace period (see [`Runner::shutdown`]).
    pub async fn run(self, shutdown: CancellationToken) -> crate::runner::ShutdownReport {
        tracing::info!(instance = %self.runner.owner(), "scheduler started");
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "scheduler pass failed; retrying");
            }
            let pause = self.pause().await;
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
                () = self.runner.woken() => {}
            }
        }
        tracing::info!(
            grace_seconds = self.config.grace.as_secs(),
            "scheduler stopping; waiting for running scripts"
        );
        let report = self.runner.shutdown(self.config.grace).await;
        if report.finished_in_time {
            tracing::info!("every running script finished");
        } else {
            tracing::warn!(
                abandoned = report.abandoned,
                "scripts still running at the end of the grace period were recorded as failed"
            );
        }
        report
    }
}
