//! Runs a script and records it as an execution: status, UTC start and end,
//! log lines, and a heartbeat (plus the job's lease for scheduled runs)
//! while it runs. Every run is a task on one tracker, so shutdown can wait
//! for them all, up to a grace period.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use domain::clock::Clock;
use domain::validation::ValidationErrors;
use futures_util::FutureExt;
use jiff::SignedDuration;
use serde_json::{Map, Value};
use store::executions::{Execution, ExecutionStatus, NewExecution, TriggerKind};
use store::{Store, StoreError};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::params;
use crate::script::{ExecutionLog, Script, ScriptContext, ScriptRegistry};

#[derive(Debug, Clone, Copy)]
pub struct RunnerConfig {
    /// How long a job's lease lasts without a heartbeat: a crashed
    /// instance's job is taken over this long after its last heartbeat, and
    /// a running execution without a heartbeat for this long is marked failed.
    pub lease_ttl: SignedDuration,
    /// How often a running script's execution and lease are renewed (and its
    /// log so far saved).
    pub heartbeat_every: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            lease_ttl: SignedDuration::from_secs(60),
            heartbeat_every: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("there is no script `{name}` in this build; scripts: {}", known.join(", "))]
    UnknownScript {
        name: String,
        known: Vec<&'static str>,
    },
    #[error("invalid parameters: {0}")]
    InvalidParams(ValidationErrors),
    #[error("mailferry is shutting down and starts no new runs; try again once it is back")]
    ShuttingDown,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A run that has started: its execution as recorded (`running`) and the
/// task that ends with the execution as finished.
#[derive(Debug)]
pub struct Started {
    pub execution: Execution,
    pub handle: JoinHandle<Execution>,
}

/// What [`Runner::shutdown`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Every run ended within the grace period.
    pub finished_in_time: bool,
    /// Runs still going at the end of the grace period, recorded as failed.
    pub abandoned: u64,
}

/// Runs scripts for one instance of mailferry. Cheap to clone.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: Arc<dyn Clock>,
    registry: ScriptRegistry,
    owner: String,
    config: RunnerConfig,
    tracker: TaskTracker,
    stop: CancellationToken,
    /// Poked when jobs change or a scheduled run ends, so the scheduler
    /// loop looks again at once instead of at its next poll.
    wake: Notify,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("owner", &self.inner.owner)
            .field("scripts", &self.inner.registry.names())
            .finish_non_exhaustive()
    }
}

/// A name for this process, unique across instances and restarts; it is
/// written to leases and executions (`owner`).
pub fn instance_name() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("pid{}-{}", std::process::id(), &random[..8])
}

impl Runner {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        registry: ScriptRegistry,
        config: RunnerConfig,
    ) -> Self {
        Self::with_owner(store, clock, registry, config, instance_name())
    }

    /// As [`Runner::new`], with a chosen instance name (tests run several
    /// "instances" in one process).
    pub fn with_owner(
        store: Store,
        clock: Arc<dyn Clock>,
        registry: ScriptRegistry,
        config: RunnerConfig,
        owner: String,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                clock,
                registry,
                owner,
                config,
                tracker: TaskTracker::new(),
                stop: CancellationToken::new(),
                wake: Notify::new(),
            }),
        }
    }

    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    pub fn registry(&self) -> &ScriptRegistry {
        &self.inner.registry
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    pub fn config(&self) -> RunnerConfig {
        self.inner.config
    }

    /// Tells the scheduler loop to look at the jobs again now.
    pub fn jobs_changed(&self) {
        self.inner.wake.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.inner.wake.notified().await;
    }

    pub fn is_stopping(&self) -> bool {
        self.inner.stop.is_cancelled()
    }

    /// The script named `name`, with `params` checked against it.
    pub fn check(
        &self,
        name: &str,
        params: &Map<String, Value>,
    ) -> Result<Arc<dyn Script>, StartError> {
        let script = self
            .inner
            .registry
            .get(name)
            .ok_or_else(|| StartError::UnknownScript {
                name: name.to_owned(),
                known: self.inner.registry.names(),
            })?;
        params::check(script.as_ref(), params).map_err(StartError::InvalidParams)?;
        Ok(script)
    }

    /// Starts a manual or CLI run in the background and returns its
    /// execution (`running`) at once. Nothing is recorded when the script
    /// is unknown or the parameters are wrong.
    pub async fn start(
        &self,
        client_id: &str,
        script: &str,
        params: Map<String, Value>,
        trigger: TriggerKind,
    ) -> Result<Started, StartError> {
        let checked = self.check(script, &params)?;
        if self.is_stopping() {
            return Err(StartError::ShuttingDown);
        }
        let execution = self
            .inner
            .store
            .start_execution(&NewExecution {
                client_id: client_id.to_owned(),
                script: script.to_owned(),
                job_id: None,
                trigger,
                params,
                scheduled_for: None,
                owner: self.inner.owner.clone(),
                started_at: self.inner.clock.now(),
            })
            .await?;
        let handle = self.spawn(Ok(checked), execution.clone());
        Ok(Started { execution, handle })
    }

    /// Runs to the end and returns the finished execution (`mailferry run`).
    pub async fn run(
        &self,
        client_id: &str,
        script: &str,
        params: Map<String, Value>,
        trigger: TriggerKind,
    ) -> Result<Execution, StartError> {
        let started = self.start(client_id, script, params, trigger).await?;
        let id = started.execution.id.clone();
        match started.handle.await {
            Ok(execution) => Ok(execution),
            // The task only ends without a value if the runtime is going down.
            Err(_) => Ok(self
                .inner
                .store
                .execution(client_id, &id)
                .await?
                .unwrap_or(started.execution)),
        }
    }

    /// Runs an execution already recorded as `running` (a claimed job slot).
    /// `script` is `Err(reason)` when the run cannot start; it is then
    /// recorded as failed with that reason.
    pub(crate) fn spawn(
        &self,
        script: Result<Arc<dyn Script>, String>,
        execution: Execution,
    ) -> JoinHandle<Execution> {
        let inner = self.inner.clone();
        self.inner.tracker.spawn(drive(inner, script, execution))
    }

    /// Stops starting runs, asks running scripts to stop (their
    /// `ctx.cancel`), and waits up to `grace` for them. Runs still going
    /// then are recorded as failed and their job leases released, so that
    /// another instance (or the next start) runs the jobs again.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        self.inner.stop.cancel();
        self.inner.tracker.close();
        let finished_in_time = tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_ok();
        let mut abandoned = 0;
        if !finished_in_time {
            let message = format!(
                "mailferry shut down before the script finished (it had {} s to finish after being asked to stop)",
                grace.as_secs()
            );
            match self
                .inner
                .store
                .abandon_executions_of(&self.inner.owner, self.inner.clock.now(), &message)
                .await
            {
                Ok(n) => abandoned = n,
                Err(e) => tracing::error!(error = %e, "could not record the interrupted runs"),
            }
        }
        ShutdownReport {
            finished_in_time,
            abandoned,
        }
    }
}

async fn drive(
    inner: Arc<Inner>,
    script: Result<Arc<dyn Script>, String>,
    mut execution: Execution,
) -> Execution {
    let log = ExecutionLog::default();
    let job_id = execution.job_id.clone();
    let outcome = match script {
        Err(reason) => Err(reason),
        Ok(script) => {
            let ctx = ScriptContext {
                store: inner.store.clone(),
                clock: inner.clock.clone(),
                client_id: execution.client_id.clone(),
                execution_id: execution.id.clone(),
                params: execution.params.clone(),
                log: log.clone(),
                cancel: inner.stop.child_token(),
            };
            run_with_heartbeat(&inner, script.as_ref(), &ctx, &execution).await
        }
    };
    let (status, error) = match outcome {
        Ok(()) => (ExecutionStatus::Succeeded, None),
        Err(reason) => {
            log.line(format!("failed: {reason}"));
            (ExecutionStatus::Failed, Some(reason))
        }
    };
    let now = inner.clock.now();
    let lines = log.lines();
    match inner
        .store
        .finish_execution(&execution.id, status, now, &lines, error.as_deref())
        .await
    {
        Ok(true) => {
            execution.status = status;
            execution.finished_at = Some(now);
            execution.heartbeat_at = Some(now);
            execution.error = error;
        }
        // Ended elsewhere meanwhile (declared dead, or abandoned at shutdown).
        Ok(false) => {
            if let Ok(Some(stored)) = inner
                .store
                .execution(&execution.client_id, &execution.id)
                .await
            {
                execution = stored;
            }
        }
        Err(e) => {
            tracing::error!(execution = %execution.id, error = %e, "could not record the end of a run")
        }
    }
    execution.log = lines;
    if let Some(job_id) = job_id {
        if let Err(e) = inner.store.release_job_lease(&job_id, &inner.owner).await {
            // The lease then simply expires.
            tracing::warn!(job = %job_id, error = %e, "could not release the job's lease");
        }
        inner.wake.notify_one();
    }
    tracing::info!(execution = %execution.id, script = %execution.script, status = execution.status.as_str(), "run ended");
    metrics::counter!(
        "mailferry_script_runs_total",
        "script" => execution.script.clone(),
        "status" => execution.status.as_str()
    )
    .increment(1);
    execution
}

async fn run_with_heartbeat(
    inner: &Inner,
    script: &dyn Script,
    ctx: &ScriptContext,
    execution: &Execution,
) -> Result<(), String> {
    let run = AssertUnwindSafe(script.run(ctx)).catch_unwind();
    tokio::pin!(run);
    let mut beat = tokio::time::interval(inner.config.heartbeat_every);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick completes at once; the execution was just written.
    beat.tick().await;
    let mut lease_lost = false;
    loop {
        tokio::select! {
            result = &mut run => {
                return match result {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e.0),
                    Err(panic) => Err(format!("the script crashed: {}", panic_message(&panic))),
                };
            }
            _ = beat.tick() => {
                let now = inner.clock.now();
                if let Err(e) = inner.store.execution_heartbeat(&execution.id, now, &ctx.log.lines()).await {
                    tracing::warn!(execution = %execution.id, error = %e, "heartbeat failed");
                }
                if let Some(job_id) = &execution.job_id
                    && !lease_lost
                {
                    let until = now.checked_add(inner.config.lease_ttl).unwrap_or(now);
                    match inner.store.renew_job_lease(job_id, &inner.owner, until).await {
                        Ok(true) => {}
                        Ok(false) => {
                            lease_lost = true;
                            ctx.log.line(
                                "warning: this run lost the job's lease (the database was out of reach for longer \
                                 than the lease lasts); another instance may start the job's next run",
                            );
                        }
                        Err(e) => tracing::warn!(job = %job_id, error = %e, "lease renewal failed"),
                    }
                }
            }
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}
