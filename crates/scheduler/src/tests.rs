//! The scheduler driven step by step with a manual clock, on a real SQLite
//! store: overlap, missed runs, daylight-saving changes, shutdown.

use std::sync::Arc;
use std::time::Duration;

use domain::clock::{Clock, ManualClock};
use domain::schedule::CronSchedule;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};
use store::Store;
use store::executions::{Execution, ExecutionFilter, ExecutionStatus, TriggerKind};
use store::jobs::{Job, JobSpec};
use test_support::{Db, fresh_store};
use tokio::sync::Semaphore;

use crate::ScriptRegistry;
use crate::runner::{Runner, RunnerConfig, StartError};
use crate::schedule_loop::{Scheduler, SchedulerConfig};
use crate::script::{ParamKind, ParamSpec, Script, ScriptContext, ScriptError, ScriptFuture};

fn t(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

/// Returns at once.
struct Noop;

impl Script for Noop {
    fn name(&self) -> &'static str {
        "noop"
    }
    fn description(&self) -> &'static str {
        "does nothing"
    }
    fn run<'a>(&'a self, ctx: &'a ScriptContext) -> ScriptFuture<'a> {
        Box::pin(async move {
            ctx.log.line("nothing to do");
            Ok(())
        })
    }
}

/// Runs until the test lets it finish (one permit per run).
struct Gate(Arc<Semaphore>);

impl Script for Gate {
    fn name(&self) -> &'static str {
        "gate"
    }
    fn description(&self) -> &'static str {
        "waits for the test"
    }
    fn run<'a>(&'a self, ctx: &'a ScriptContext) -> ScriptFuture<'a> {
        Box::pin(async move {
            let permit = self
                .0
                .acquire()
                .await
                .map_err(|e| ScriptError::new(e.to_string()))?;
            permit.forget();
            ctx.log.line("let through");
            Ok(())
        })
    }
}

/// Stops when asked to, a little later (finishing its unit of work).
struct Cooperative;

impl Script for Cooperative {
    fn name(&self) -> &'static str {
        "cooperative"
    }
    fn description(&self) -> &'static str {
        "stops between units of work"
    }
    fn run<'a>(&'a self, ctx: &'a ScriptContext) -> ScriptFuture<'a> {
        Box::pin(async move {
            ctx.log.line("working");
            ctx.cancel.cancelled().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            ctx.log
                .line("asked to stop: finished the current unit and stopped");
            Ok(())
        })
    }
}

/// Never ends and ignores cancellation.
struct Stubborn;

impl Script for Stubborn {
    fn name(&self) -> &'static str {
        "stubborn"
    }
    fn description(&self) -> &'static str {
        "never ends"
    }
    fn run<'a>(&'a self, _ctx: &'a ScriptContext) -> ScriptFuture<'a> {
        Box::pin(std::future::pending())
    }
}

struct Panics;

impl Script for Panics {
    fn name(&self) -> &'static str {
        "panics"
    }
    fn description(&self) -> &'static str {
        "has a bug"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![ParamSpec {
            name: "depth",
            kind: ParamKind::Integer,
            required: false,
            description: "how deep",
            minimum: None,
            maximum: None,
        }]
    }
    fn run<'a>(&'a self, _ctx: &'a ScriptContext) -> ScriptFuture<'a> {
        Box::pin(async move { Err(ScriptError::new(a_bug())) })
    }
}

fn a_bug() -> String {
    panic!("index out of bounds")
}

struct Env {
    store: Store,
    clock: Arc<ManualClock>,
    client_id: String,
    gate: Arc<Semaphore>,
    // Holds the database file for the test's life.
    _dir: tempfile::TempDir,
}

impl Env {
    async fn new(now: &str) -> Self {
        let (store, dir) = fresh_store(Db::Sqlite).await;
        let now = t(now);
        let client = store.create_client("acme", &[], now).await.expect("client");
        Self {
            store,
            clock: Arc::new(ManualClock::new(now)),
            client_id: client.id,
            gate: Arc::new(Semaphore::new(0)),
            _dir: dir,
        }
    }

    fn registry(&self) -> ScriptRegistry {
        let mut registry = ScriptRegistry::default();
        registry.register(Arc::new(Noop));
        registry.register(Arc::new(Gate(self.gate.clone())));
        registry.register(Arc::new(Cooperative));
        registry.register(Arc::new(Stubborn));
        registry.register(Arc::new(Panics));
        registry
    }

    /// One instance. The lease outlives any jump of the manual clock, so
    /// only the end of a run frees a job.
    fn runner(&self, owner: &str) -> Runner {
        let config = RunnerConfig {
            lease_ttl: SignedDuration::from_hours(24 * 30),
            ..RunnerConfig::default()
        };
        let clock: Arc<dyn Clock> = self.clock.clone();
        Runner::with_owner(
            self.store.clone(),
            clock,
            self.registry(),
            config,
            owner.to_owned(),
        )
    }

    fn scheduler(&self, owner: &str) -> Scheduler {
        Scheduler::new(self.runner(owner), SchedulerConfig::default())
    }

    async fn job(&self, script: &str, cron: &str, tz: &str, params: Value) -> Job {
        let Value::Object(params) = params else {
            panic!("params must be an object")
        };
        // Only the test's job: the client's default jobs would add runs.
        for job in self.store.list_jobs(&self.client_id).await.expect("jobs") {
            self.store
                .delete_job(&self.client_id, &job.id)
                .await
                .expect("delete");
        }
        let spec = JobSpec {
            script: script.to_owned(),
            schedule: CronSchedule::parse(cron, tz).expect("schedule"),
            enabled: true,
            params,
            description: String::new(),
        };
        self.store
            .create_job(&self.client_id, &spec, self.clock.now())
            .await
            .expect("job")
    }

    async fn executions(&self) -> Vec<Execution> {
        let mut all = self
            .store
            .list_executions(
                &self.client_id,
                &ExecutionFilter {
                    limit: 1000,
                    ..ExecutionFilter::default()
                },
            )
            .await
            .expect("executions");
        all.reverse();
        all
    }

    async fn slots(&self) -> Vec<String> {
        self.executions()
            .await
            .iter()
            .map(|e| e.scheduled_for.map(|t| t.to_string()).unwrap_or_default())
            .collect()
    }
}

async fn finish_all(handles: Vec<tokio::task::JoinHandle<Execution>>) -> Vec<Execution> {
    let mut done = Vec::new();
    for handle in handles {
        done.push(handle.await.expect("run task"));
    }
    done
}

#[tokio::test]
async fn a_job_never_overlaps_its_previous_run() {
    let env = Env::new("2026-06-01T10:00:30Z").await;
    let job = env.job("gate", "* * * * *", "UTC", json!({})).await;
    let (a, b) = (env.scheduler("instance-a"), env.scheduler("instance-b"));

    env.clock.set(t("2026-06-01T10:01:00Z"));
    let first = a.tick().await.expect("tick");
    assert_eq!(first.len(), 1);
    assert!(
        b.tick().await.expect("tick").is_empty(),
        "the slot is taken"
    );

    // Three more slots pass while the first run is still going: on neither
    // instance does a second run start.
    env.clock.set(t("2026-06-01T10:04:10Z"));
    assert!(a.tick().await.expect("tick").is_empty());
    assert!(b.tick().await.expect("tick").is_empty());
    let running = env.executions().await;
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].status, ExecutionStatus::Running);
    let job_now = env
        .store
        .job(&env.client_id, &job.id)
        .await
        .expect("job")
        .expect("job");
    assert!(job_now.is_leased(env.clock.now()));

    env.gate.add_permits(1);
    let ended = finish_all(first).await;
    assert_eq!(ended[0].status, ExecutionStatus::Succeeded);
    assert_eq!(ended[0].log, ["let through"]);

    // Then the job runs once for the latest missed slot, not once per slot.
    let catch_up = b.tick().await.expect("tick");
    assert_eq!(catch_up.len(), 1);
    assert!(a.tick().await.expect("tick").is_empty());
    env.gate.add_permits(1);
    finish_all(catch_up).await;
    assert_eq!(
        env.slots().await,
        ["2026-06-01T10:01:00Z", "2026-06-01T10:04:00Z"]
    );
    let owners: Vec<Option<String>> = env
        .executions()
        .await
        .into_iter()
        .map(|e| e.owner)
        .collect();
    assert_eq!(
        owners,
        [Some("instance-a".to_owned()), Some("instance-b".to_owned())]
    );
}

#[tokio::test]
async fn runs_missed_while_down_run_once_at_start_up() {
    let env = Env::new("2026-06-01T10:05:00Z").await;
    let job = env.job("noop", "0 * * * *", "UTC", json!({})).await;
    assert_eq!(job.next_run_at, Some(t("2026-06-01T11:00:00Z")));

    // mailferry was down from 10:05 to 15:30: five slots were missed.
    env.clock.set(t("2026-06-01T15:30:00Z"));
    let scheduler = env.scheduler("after-restart");
    let started = finish_all(scheduler.tick().await.expect("tick")).await;
    assert_eq!(started.len(), 1, "one run for the whole downtime");
    assert_eq!(started[0].scheduled_for, Some(t("2026-06-01T15:00:00Z")));
    assert_eq!(started[0].started_at, t("2026-06-01T15:30:00Z"));
    assert!(
        scheduler.tick().await.expect("tick").is_empty(),
        "and only one"
    );
    let job = env
        .store
        .job(&env.client_id, &job.id)
        .await
        .expect("job")
        .expect("job");
    assert_eq!(job.next_run_at, Some(t("2026-06-01T16:00:00Z")));

    env.clock.set(t("2026-06-01T15:59:59Z"));
    assert!(scheduler.tick().await.expect("tick").is_empty());
    env.clock.set(t("2026-06-01T16:00:00Z"));
    finish_all(scheduler.tick().await.expect("tick")).await;
    assert_eq!(
        env.slots().await,
        ["2026-06-01T15:00:00Z", "2026-06-01T16:00:00Z"]
    );
}

/// Steps the clock by 10 minutes from `from` to `to`, ticking each time and
/// letting every run end before the next step.
async fn step_through(env: &Env, scheduler: &Scheduler, from: &str, to: &str) {
    let (mut now, end) = (t(from), t(to));
    while now <= end {
        env.clock.set(now);
        finish_all(scheduler.tick().await.expect("tick")).await;
        now = now.checked_add(SignedDuration::from_mins(10)).expect("ts");
    }
}

#[tokio::test]
async fn a_fixed_time_job_runs_once_a_day_across_both_daylight_saving_changes() {
    // Autumn: 02:30 happens twice in Berlin on 2026-10-25 (CEST, then CET).
    let env = Env::new("2026-10-24T12:00:00Z").await;
    env.job("noop", "30 2 * * *", "Europe/Berlin", json!({}))
        .await;
    let scheduler = env.scheduler("a");
    step_through(
        &env,
        &scheduler,
        "2026-10-24T12:00:00Z",
        "2026-10-26T12:00:00Z",
    )
    .await;
    assert_eq!(
        env.slots().await,
        ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"],
        "once at the first 02:30 (CEST), then 02:30 CET the next day"
    );

    // Spring: 02:30 does not exist on 2026-03-29; it runs at 03:00 CEST.
    let env = Env::new("2026-03-28T12:00:00Z").await;
    env.job("noop", "30 2 * * *", "Europe/Berlin", json!({}))
        .await;
    let scheduler = env.scheduler("a");
    step_through(
        &env,
        &scheduler,
        "2026-03-28T12:00:00Z",
        "2026-03-30T12:00:00Z",
    )
    .await;
    assert_eq!(
        env.slots().await,
        ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]
    );
}

#[tokio::test]
async fn shutdown_lets_a_cooperative_script_finish_and_refuses_new_runs() {
    let env = Env::new("2026-06-01T10:00:00Z").await;
    let runner = env.runner("a");
    let started = runner
        .start(
            &env.client_id,
            "cooperative",
            Map::new(),
            TriggerKind::Manual,
        )
        .await
        .expect("start");
    assert_eq!(started.execution.status, ExecutionStatus::Running);
    let report = runner.shutdown(Duration::from_secs(30)).await;
    assert!(report.finished_in_time);
    assert_eq!(report.abandoned, 0);
    let ended = env
        .store
        .execution(&env.client_id, &started.execution.id)
        .await
        .expect("get")
        .expect("execution");
    assert_eq!(ended.status, ExecutionStatus::Succeeded);
    assert_eq!(
        ended.log,
        [
            "working",
            "asked to stop: finished the current unit and stopped"
        ]
    );
    assert!(ended.finished_at.is_some());
    assert!(matches!(
        runner
            .start(&env.client_id, "noop", Map::new(), TriggerKind::Manual)
            .await,
        Err(StartError::ShuttingDown)
    ));
}

#[tokio::test]
async fn shutdown_gives_up_after_the_grace_period_and_frees_the_job() {
    let env = Env::new("2026-06-01T10:00:00Z").await;
    let job = env.job("stubborn", "* * * * *", "UTC", json!({})).await;
    env.clock.set(t("2026-06-01T10:01:00Z"));
    let config = SchedulerConfig {
        grace: Duration::from_millis(300),
        ..SchedulerConfig::default()
    };
    let scheduler = Scheduler::new(env.runner("a"), config);
    let stop = tokio_util::sync::CancellationToken::new();
    let serving = tokio::spawn(scheduler.run(stop.clone()));
    // The loop's first pass starts the due job; wait until it is recorded.
    let mut waited = 0;
    while env.executions().await.is_empty() {
        waited += 1;
        assert!(waited < 500, "the scheduler loop never started the due job");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    let report = serving.await.expect("scheduler task");
    assert!(!report.finished_in_time);
    assert_eq!(report.abandoned, 1);
    let runs = env.executions().await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, ExecutionStatus::Failed);
    let error = runs[0].error.clone().unwrap_or_default();
    assert!(
        error.contains("shut down before the script finished"),
        "{error}"
    );
    let job = env
        .store
        .job(&env.client_id, &job.id)
        .await
        .expect("job")
        .expect("job");
    assert_eq!(
        job.lease_owner, None,
        "the next start may run the job again"
    );
}

#[tokio::test]
async fn a_job_whose_script_is_not_in_this_build_records_why_it_failed() {
    // A new client's default jobs name scripts this test build lacks.
    let env = Env::new("2026-06-01T10:00:00Z").await;
    env.clock.set(t("2026-06-01T10:05:00Z"));
    let done = finish_all(env.scheduler("a").tick().await.expect("tick")).await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].script, "import-emails");
    assert_eq!(done[0].status, ExecutionStatus::Failed);
    let error = done[0].error.clone().unwrap_or_default();
    assert!(
        error.contains("script `import-emails` is not available in this build"),
        "{error}"
    );
    assert_eq!(done[0].log, [format!("failed: {error}")]);
}

#[tokio::test]
async fn a_crashing_script_is_recorded_as_failed() {
    let env = Env::new("2026-06-01T10:00:00Z").await;
    let runner = env.runner("a");
    let done = runner
        .run(&env.client_id, "panics", Map::new(), TriggerKind::Cli)
        .await
        .expect("run");
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.trigger, TriggerKind::Cli);
    assert_eq!(
        done.error.as_deref(),
        Some("the script crashed: index out of bounds")
    );
}

#[tokio::test]
async fn unknown_scripts_and_bad_parameters_are_refused_before_anything_runs() {
    let env = Env::new("2026-06-01T10:00:00Z").await;
    let runner = env.runner("a");
    let err = runner
        .start(
            &env.client_id,
            "import-emails",
            Map::new(),
            TriggerKind::Manual,
        )
        .await
        .expect_err("unknown");
    assert!(
        err.to_string()
            .contains("there is no script `import-emails` in this build; scripts: cooperative, gate, noop, panics, stubborn"),
        "{err}"
    );
    let Value::Object(bad) = json!({"depth": "deep", "colour": "red"}) else {
        unreachable!()
    };
    let Err(StartError::InvalidParams(errors)) = runner
        .start(&env.client_id, "panics", bad, TriggerKind::Manual)
        .await
    else {
        panic!("bad parameters must be refused")
    };
    let fields: Vec<&str> = errors.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["params.colour", "params.depth"]);
    assert!(env.executions().await.is_empty(), "nothing was recorded");
}
