//! Three `mailferry serve` processes on one PostgreSQL run a fast job (every
//! 2 seconds): every due slot runs exactly once, also after one of them is
//! killed with SIGKILL midway; the others stop gracefully on SIGTERM.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::schedule::CronSchedule;
use jiff::{SignedDuration, Timestamp};
use store::Store;
use store::jobs::JobSpec;

use crate::support::{Db, fresh_database, key_file, mailferry_bin, open_store};

const EVERY_TWO_SECONDS: &str = "*/2 * * * * *";

struct Instance {
    child: Child,
    /// Its scheduler's name, as written to `executions.owner`.
    name: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Instance {
    fn start(database_url: &str, key_file: &std::path::Path, data_dir: &std::path::Path) -> Self {
        let mut child = Command::new(mailferry_bin())
            .args(["--log-format", "json", "serve"])
            .env("MAILFERRY_DATABASE_URL", database_url)
            .env("MAILFERRY_MASTER_KEY_FILE", key_file)
            .env("MAILFERRY_DATA_DIR", data_dir)
            .env("MAILFERRY_LISTEN", "127.0.0.1:0")
            .env_remove("MAILFERRY_NOW")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mailferry serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let name = loop {
            let line = lines
                .next()
                .expect("serve exited before its scheduler started")
                .expect("read");
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                && event["message"] == "scheduler started"
            {
                break event["instance"].as_str().expect("instance").to_owned();
            }
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        // Keep draining stderr so the process never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().expect("log").push(line);
            }
        });
        Self { child, name, log }
    }

    fn log_text(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // Only if a test failed midway: stop by PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Run {
    slot: Timestamp,
    owner: String,
    status: String,
    error: Option<String>,
}

async fn runs_of(store: &Store, job_id: &str) -> Vec<Run> {
    let rows: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(
        "SELECT scheduled_for, owner, status, error FROM executions WHERE job_id = $1 ORDER BY scheduled_for",
    )
    .bind(job_id)
    .fetch_all(store.pool())
    .await
    .expect("executions");
    rows.into_iter()
        .map(|(slot, owner, status, error)| Run {
            slot: Timestamp::from_millisecond(slot).expect("slot"),
            owner,
            status,
            error,
        })
        .collect()
}

#[tokio::test]
async fn three_instances_run_every_due_slot_exactly_once_even_when_one_is_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = fresh_database(Db::Postgres, dir.path()).await;
    let key_file = key_file(dir.path());
    let store = open_store(&url, dir.path()).await;
    let now = Timestamp::now();
    let client = store.ensure_default_client(now).await.expect("client");
    let mut params = serde_json::Map::new();
    params.insert("retention_days".into(), 30.into());
    let job = store
        .create_job(
            &client.id,
            &JobSpec {
                script: "purge-documents".into(),
                schedule: CronSchedule::parse(EVERY_TWO_SECONDS, "UTC").expect("cron"),
                enabled: true,
                params,
                description: "fast job for the multi-instance test".into(),
            },
            now,
        )
        .await
        .expect("job");

    // Three instances: separate data directories, one database, one key.
    let mut instances: Vec<Instance> = (0..3)
        .map(|i| {
            let data = dir.path().join(format!("instance-{i}"));
            Instance::start(&url, &key_file, &data)
        })
        .collect();
    let started = Timestamp::now();
    tokio::time::sleep(Duration::from_secs(20)).await;

    // SIGKILL the first, by PID: no goodbye, whatever it was doing.
    let killed = instances.remove(0);
    let killed_at = Timestamp::now();
    let mut killed = killed;
    killed.child.kill().expect("SIGKILL");
    killed.child.wait().expect("reap");
    tokio::time::sleep(Duration::from_secs(20)).await;
    let ended = Timestamp::now();

    // The survivors stop gracefully on SIGTERM.
    for instance in &mut instances {
        let status = Command::new("kill")
            .args(["-TERM", &instance.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
    }
    for instance in &mut instances {
        let status = instance.child.wait().expect("wait");
        assert!(
            status.success(),
            "instance {} did not stop cleanly: {status}\n{}",
            instance.name,
            instance.log_text()
        );
        assert!(
            instance
                .log_text()
                .contains("every running script finished"),
            "{}",
            instance.log_text()
        );
    }

    let runs = runs_of(&store, &job.id).await;
    let mut per_slot: BTreeMap<Timestamp, Vec<&Run>> = BTreeMap::new();
    for run in &runs {
        per_slot.entry(run.slot).or_default().push(run);
    }
    let doubled: Vec<_> = per_slot.iter().filter(|(_, r)| r.len() > 1).collect();
    assert!(doubled.is_empty(), "slots run more than once: {doubled:?}");

    // A run the killed instance left unfinished is failed by the instance
    // that took its lease over; only then may slots after it be skipped
    // (the job's lease blocks them until it expires). Anything else must
    // have succeeded.
    let orphan = runs.iter().find(|r| r.status != "succeeded");
    if let Some(orphan) = orphan {
        assert_eq!(
            orphan.owner, killed.name,
            "only the killed instance may leave a run unfinished: {runs:?}"
        );
        assert_eq!(
            runs.iter().filter(|r| r.status != "succeeded").count(),
            1,
            "{runs:?}"
        );
        let error = orphan.error.clone().unwrap_or_default();
        assert!(
            error.contains("took the job over") || error.contains("stopped sending heartbeats"),
            "{error}"
        );
    }

    // Every slot from start-up to the end ran: both before and after the kill.
    let schedule = CronSchedule::parse(EVERY_TWO_SECONDS, "UTC").expect("cron");
    let margin = SignedDuration::from_secs(2);
    let from = started.checked_add(margin).expect("ts");
    let to = ended.checked_sub(margin).expect("ts");
    let mut missing = Vec::new();
    let mut expected = 0;
    for slot in schedule.next_runs(from, 100) {
        let slot = slot.timestamp();
        if slot > to {
            break;
        }
        expected += 1;
        // The orphan's lease (60 s) blocked the job until it expired.
        let excused = orphan.is_some_and(|o| {
            slot > o.slot
                && slot
                    <= o.slot
                        .checked_add(SignedDuration::from_secs(62))
                        .expect("ts")
        });
        if !per_slot.contains_key(&slot) && !excused {
            missing.push(slot.to_string());
        }
    }
    assert!(
        expected >= 15,
        "the test ran too few slots ({expected}) to mean anything"
    );
    assert!(
        missing.is_empty(),
        "due slots that never ran: {missing:?}\nruns: {runs:?}"
    );

    // The killed instance ran nothing after its death; the survivors carried on.
    let after_kill: Vec<&Run> = runs.iter().filter(|r| r.slot > killed_at).collect();
    assert!(!after_kill.is_empty());
    assert!(after_kill.iter().all(|r| r.owner != killed.name));
    let owners: std::collections::BTreeSet<&str> = runs.iter().map(|r| r.owner.as_str()).collect();
    println!(
        "{} slots ran between {started} and {ended}; owners: {owners:?}; killed {} at {killed_at}",
        runs.len(),
        killed.name
    );
    store.close().await;
}

/// The crash loop's serve variant: three instances share one PostgreSQL
/// and one document spool and import through a job every 2 seconds; the
/// one importing is SIGKILLed mid-import, the two others carry the import
/// to the end. Every mail ends in exactly one place, with one document.
#[tokio::test]
async fn a_serve_instance_killed_mid_import_loses_nothing_while_two_others_carry_on() {
    use msemu::{FaultKind, FaultRule, demo};

    let dir = tempfile::tempdir().expect("tempdir");
    let url = fresh_database(Db::Postgres, dir.path()).await;
    let key_file = key_file(dir.path());
    let store = open_store(&url, dir.path()).await;
    let now = Timestamp::now();
    let client = store.ensure_default_client(now).await.expect("client");
    let emu = crate::support::empty_demo_emulator().await;
    let input: domain::importer::ImporterInput = serde_json::from_value(
        crate::support::app_only_importer_body(&emu, &serde_json::json!({ "name": "Shared" })),
    )
    .expect("input");
    let importer = store
        .create_importer(&client.id, &input.validate(None).expect("valid"), now)
        .await
        .expect("importer");
    let mails: Vec<(String, bool)> = (0..250)
        .map(|n| {
            let importable = n % 9 != 4;
            let (imid, raw) = import::corpus::numbered_mail(n, importable.then_some(4_000));
            emu.add_message(demo::ALICE, "Inbox", &raw)
                .expect("deliver");
            (imid, importable)
        })
        .collect();
    // Slow enough that the import spans several seconds.
    emu.add_fault(FaultRule {
        kind: FaultKind::Latency { ms: 60 },
        count: None,
        rate: None,
        path_prefix: "/v1.0/".into(),
        method: None,
        id: 0,
    });
    store
        .create_job(
            &client.id,
            &JobSpec {
                script: "import-emails".into(),
                schedule: CronSchedule::parse(EVERY_TWO_SECONDS, "UTC").expect("cron"),
                enabled: true,
                params: serde_json::Map::new(),
                description: "imports every 2 seconds".into(),
            },
            now,
        )
        .await
        .expect("job");
    // One spool for all three, as one shared volume would be.
    let data = dir.path().join("shared-data");
    let mut instances: Vec<Instance> = (0..3)
        .map(|_| Instance::start(&url, &key_file, &data))
        .collect();
    let inbox = |emu: &msemu::EmulatorHandle| {
        emu.messages(demo::ALICE)
            .expect("messages")
            .iter()
            .filter(|m| m.folder_path == "Inbox")
            .count()
    };
    // Kill the instance whose run is importing, once it has moved some mail.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let victim = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no import got under way"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        if inbox(&emu) > mails.len() - 20 {
            continue;
        }
        let running: Option<(String,)> = sqlx::query_as(
            "SELECT owner FROM executions WHERE script = 'import-emails' AND status = 'running' LIMIT 1",
        )
        .fetch_optional(store.pool())
        .await
        .expect("executions");
        if let Some((owner,)) = running
            && let Some(i) = instances.iter().position(|x| x.name == owner)
        {
            break instances.remove(i);
        }
    };
    let mut victim = victim;
    victim.child.kill().expect("SIGKILL");
    victim.child.wait().expect("reap");
    let killed_at = Timestamp::now();
    let left = inbox(&emu);
    assert!(left > 0, "the import had finished before the kill");

    let deadline = std::time::Instant::now() + Duration::from_secs(150);
    while inbox(&emu) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the survivors did not finish the import: {} left",
            inbox(&emu)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let finished_in = Timestamp::now().duration_since(killed_at);

    let places = emu.messages(demo::ALICE).expect("messages");
    let mut where_is: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in &places {
        where_is
            .entry(m.internet_message_id.clone().unwrap_or_default())
            .or_default()
            .push(m.folder_path.clone());
    }
    for (imid, importable) in &mails {
        let folders = where_is.get(imid).unwrap_or_else(|| panic!("{imid} lost"));
        let expected = if *importable { "Exported" } else { "Error" };
        assert_eq!(folders, &[expected.to_owned()], "{imid}");
    }
    let importable = mails.iter().filter(|m| m.1).count();
    assert_eq!(
        store.count_documents(&importer.id).await.expect("count") as usize,
        importable,
        "one document per importable mail"
    );
    let survivors: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT owner FROM executions WHERE script = 'import-emails' AND started_at > $1",
    )
    .bind(killed_at.as_millisecond())
    .fetch_all(store.pool())
    .await
    .expect("owners");
    assert!(
        survivors.iter().all(|(o,)| *o != victim.name) && !survivors.is_empty(),
        "{survivors:?}"
    );
    println!(
        "serve crash: killed {} with {left} mails in the Inbox; the survivors finished {finished_in:?} later",
        victim.name
    );
    for instance in &mut instances {
        let _ = Command::new("kill")
            .args(["-TERM", &instance.child.id().to_string()])
            .status();
        let _ = instance.child.wait();
    }
    store.close().await;
    emu.shutdown().await;
}
