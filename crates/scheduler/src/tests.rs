//! The scheduler driven step by step with a manual clock, on a real SQLite
//! store: overlap, missed runs, daylight-saving changes, shutdown, and the
//! `purge-documents` script.

use std::sync::Arc;
use std::time::Duration;

use domain::clock::{Clock, ManualClock};
use domain::schedule::CronSchedule;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};
use store::executions::{Execution, ExecutionFilter, ExecutionStatus, TriggerKind};
use store::jobs::{Job, JobSpec};
use store::{Keyring, Store};
use tokio::sync::Semaphore;

use crate::purge_documents::PurgeDocuments;
use crate::runner::{RunError, Runner, RunnerConfig};
use crate::schedule_loop::{Scheduler, SchedulerConfig};
use crate::script::{ParamKind, ParamSpec, Script, ScriptContext, ScriptError, ScriptFuture};
use crate::{ScriptRegistry, params};

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
    dir: tempfile::TempDir,
}

impl Env {
    async fn new(now: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("mf.db").display());
        let keyring = Keyring::load_or_create(&dir.path().join("master.key")).expect("key");
        let store = Store::connect(&url, keyring).await.expect("store");
        let now = t(now);
        let client = store.create_client("acme", &[], now).await.expect("client");
        Self {
            store,
            clock: Arc::new(ManualClock::new(now)),
            client_id: client.id,
            gate: Arc::new(Semaphore::new(0)),
            dir,
        }
    }

    fn registry(&self) -> ScriptRegistry {
        let mut registry = ScriptRegistry::default();
        registry.register(Arc::new(Noop));
        registry.register(Arc::new(Gate(self.gate.clone())));
        registry.register(Arc::new(Cooperative));
        registry.register(Arc::new(Stubborn));
        registry.register(Arc::new(Panics));
        registry.register(Arc::new(PurgeDocuments::new(self.dir.path())));
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
        Err(RunError::ShuttingDown)
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
            .contains("there is no script `import-emails` in this build; scripts: cooperative, gate, noop, panics, purge-documents, stubborn"),
        "{err}"
    );
    let Value::Object(bad) = json!({"depth": "deep", "colour": "red"}) else {
        unreachable!()
    };
    let Err(RunError::InvalidParams(errors)) = runner
        .start(&env.client_id, "panics", bad, TriggerKind::Manual)
        .await
    else {
        panic!("bad parameters must be refused")
    };
    let fields: Vec<&str> = errors.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["params.colour", "params.depth"]);
    assert!(env.executions().await.is_empty(), "nothing was recorded");
}

#[test]
fn command_line_parameters_are_typed_by_the_script() {
    let purge = PurgeDocuments::new("/data");
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let typed = params::from_pairs(&purge, &pairs(&[("retention_days", "30")])).expect("ok");
    assert_eq!(typed["retention_days"], json!(30));
    let err = params::from_pairs(&purge, &pairs(&[("retention_days", "a month")]))
        .expect_err("not a number");
    assert_eq!(
        err.to_string(),
        "params.retention_days: `a month` is not an integer"
    );
    let err = params::from_pairs(&purge, &pairs(&[("importer_id", "x")])).expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "params.importer_id: `purge-documents` has no parameter `importer_id`: it takes retention_days; \
         params.retention_days: is required: keep documents this many days (1–36500); older ones are deleted"
    );
}

#[test]
fn integer_parameters_outside_their_bounds_are_refused_before_any_run() {
    let purge = PurgeDocuments::new("/data");
    for bad in [0, -1, 36_501] {
        let err = params::check(
            &purge,
            json!({ "retention_days": bad }).as_object().expect("map"),
        )
        .expect_err("out of range");
        assert!(err.mentions("params.retention_days"), "{err}");
        assert!(
            err.to_string().contains("out of range: use 1–36500"),
            "{err}"
        );
    }
    params::check(
        &purge,
        json!({ "retention_days": 1 }).as_object().expect("map"),
    )
    .expect("in range");
    params::check(
        &purge,
        json!({ "retention_days": 36_500 })
            .as_object()
            .expect("map"),
    )
    .expect("in range");
}

async fn add_document(
    env: &Env,
    client_id: &str,
    id: &str,
    imported_at: &str,
) -> std::path::PathBuf {
    let folder = env
        .dir
        .path()
        .join("documents")
        .join(client_id)
        .join("importer-1")
        .join(id);
    std::fs::create_dir_all(folder.join("attachments")).expect("mkdir");
    std::fs::write(folder.join("message.eml"), b"Subject: hi\r\n\r\nhi").expect("write");
    sqlx::query(
        "INSERT INTO documents (id, client_id, importer_id, imported_at, sink, location, metadata) \
         VALUES ($1, $2, 'importer-1', $3, 'filesystem', $4, '{}')",
    )
    .bind(id)
    .bind(client_id)
    .bind(t(imported_at).as_millisecond())
    .bind(folder.display().to_string())
    .execute(env.store.pool())
    .await
    .expect("insert document");
    folder
}

async fn document_ids(env: &Env) -> Vec<String> {
    sqlx::query_scalar("SELECT id FROM documents ORDER BY id")
        .fetch_all(env.store.pool())
        .await
        .expect("documents")
}

#[tokio::test]
async fn purge_documents_deletes_only_old_documents_of_its_client() {
    let env = Env::new("2026-06-30T12:00:00Z").await;
    let other = env
        .store
        .create_client("other", &[], env.clock.now())
        .await
        .expect("other");
    let old = add_document(&env, &env.client_id, "d1-old", "2026-05-01T00:00:00Z").await;
    let recent = add_document(&env, &env.client_id, "d2-recent", "2026-06-20T00:00:00Z").await;
    let others = add_document(&env, &other.id, "d3-other-old", "2026-05-01T00:00:00Z").await;
    let runner = env.runner("a");

    // Off by default: without a retention it refuses, and nothing is touched.
    let refused = runner
        .run(
            &env.client_id,
            "purge-documents",
            Map::new(),
            TriggerKind::Manual,
        )
        .await;
    assert!(
        matches!(&refused, Err(RunError::InvalidParams(e)) if e.mentions("params.retention_days")),
        "{refused:?}"
    );
    let Value::Object(zero) = json!({"retention_days": 0}) else {
        unreachable!()
    };
    // Out of bounds: refused before any run starts, nothing deleted.
    let refused = runner
        .run(&env.client_id, "purge-documents", zero, TriggerKind::Manual)
        .await;
    assert!(
        matches!(&refused, Err(RunError::InvalidParams(e)) if e.mentions("params.retention_days")),
        "{refused:?}"
    );
    assert_eq!(document_ids(&env).await.len(), 3);

    let Value::Object(thirty) = json!({"retention_days": 30}) else {
        unreachable!()
    };
    let done = runner
        .run(
            &env.client_id,
            "purge-documents",
            thirty,
            TriggerKind::Manual,
        )
        .await
        .expect("run");
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{:?}", done.log);
    assert_eq!(
        done.log,
        [
            "deleting documents imported before 2026-05-31T12:00:00Z (older than 30 days)",
            "1 documents deleted"
        ]
    );
    assert!(!old.exists());
    assert!(recent.join("message.eml").exists());
    assert!(
        others.join("message.eml").exists(),
        "other clients are untouched"
    );
    assert_eq!(document_ids(&env).await, ["d2-recent", "d3-other-old"]);
}

#[tokio::test]
async fn purge_documents_never_deletes_outside_the_spool() {
    let env = Env::new("2026-06-30T12:00:00Z").await;
    let outside = env.dir.path().join("elsewhere");
    std::fs::create_dir_all(&outside).expect("mkdir");
    sqlx::query(
        "INSERT INTO documents (id, client_id, importer_id, imported_at, sink, location, metadata) \
         VALUES ('d1', $1, 'importer-1', 0, 'filesystem', $2, '{}')",
    )
    .bind(&env.client_id)
    .bind(format!(
        "{}/documents/../elsewhere",
        env.dir.path().display()
    ))
    .execute(env.store.pool())
    .await
    .expect("insert");
    let Value::Object(params) = json!({"retention_days": 1}) else {
        unreachable!()
    };
    let done = env
        .runner("a")
        .run(
            &env.client_id,
            "purge-documents",
            params,
            TriggerKind::Manual,
        )
        .await
        .expect("run");
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert!(outside.exists());
    assert_eq!(
        document_ids(&env).await,
        ["d1"],
        "the row stays for a human to look at"
    );
    assert!(
        done.log
            .iter()
            .any(|l| l.contains("is outside the document spool")),
        "{:?}",
        done.log
    );
}
