//! Three `mailferry serve` processes on one PostgreSQL run a fast job (every
//! 2 seconds): every due slot runs exactly once, also after one of them is
//! killed with SIGKILL midway; the others stop gracefully on SIGTERM.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use domain::schedule::CronSchedule;
use jiff::{SignedDuration, Timestamp};
use store::Store;
use store::jobs::JobSpec;

use crate::support::{Db, ServeInstance as Instance, fresh_database, key_file, open_store};

const EVERY_TWO_SECONDS: &str = "*/2 * * * * *";

#[derive(Debug)]
struct Run {
    slot: Timestamp,
    owner: String,
    status: String,
    error: Option<String>,
}

/// An `import-emails` job of `client` every 2 seconds.
async fn import_every_two_seconds(store: &Store, client: &str, now: Timestamp) {
    store
        .create_job(
            client,
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
}

/// Every Graph request of `emu` takes `ms` longer.
fn graph_latency(emu: &msemu::EmulatorHandle, ms: u64) {
    emu.add_fault(msemu::FaultRule::graph(msemu::FaultKind::Latency { ms }));
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
// Multi-threaded: the emulator in this process must keep answering while
// the test blocks waiting for an instance to stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_instance_killed_mid_import_loses_nothing_while_two_others_carry_on() {
    use msemu::demo;

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
    graph_latency(&emu, 60);
    import_every_two_seconds(&store, &client.id, now).await;
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
    let shares_before: usize = instances
        .iter()
        .map(|i| i.log_text().matches("worked a mailbox's share").count())
        .sum();
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
    // The survivors finished the victim's mailbox: through a run of their
    // own, or by taking over the victim's run's share (whose log line may
    // trail the last move a little).
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let survivors: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT owner FROM executions WHERE script = 'import-emails' AND started_at > $1",
        )
        .bind(killed_at.as_millisecond())
        .fetch_all(store.pool())
        .await
        .expect("owners");
        assert!(
            survivors.iter().all(|(o,)| *o != victim.name),
            "{survivors:?}"
        );
        let shares: usize = instances
            .iter()
            .map(|i| i.log_text().matches("worked a mailbox's share").count())
            .sum();
        if !survivors.is_empty() || shares > shares_before {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no survivor took the work over"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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

/// The end-to-end check of spread-out work: three `serve` instances
/// on one PostgreSQL, documents in a real S3 bucket, 60 importers (one
/// mailbox each) with a few mails each, and one instance SIGKILLed while it
/// works: every mail ends in one place with one document and one object
/// set, every importer was worked, and both survivors did part of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_sixty_mailboxes_into_s3_and_survive_a_kill() {
    use msemu::Options;
    use msemu::{SeedFolder, SeedSharedMailbox};

    const MAILBOXES: usize = 60;
    const MAILS_EACH: usize = 3;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = fresh_database(Db::Postgres, dir.path()).await;
    let key_file = key_file(dir.path());
    let store = open_store(&url, dir.path()).await;
    let now = Timestamp::now();
    let client = store.ensure_default_client(now).await.expect("client");
    let mailbox = |n: usize| format!("box{n:02}@contoso.example");
    let mut seed = crate::support::empty_demo_seed();
    for n in 0..MAILBOXES {
        seed.tenants[0].shared_mailboxes.push(SeedSharedMailbox {
            id: None,
            user_principal_name: mailbox(n),
            display_name: format!("Box {n}"),
            full_access: Vec::new(),
            folders: ["Exported", "Error"]
                .map(|name| SeedFolder {
                    display_name: name.to_owned(),
                    ..SeedFolder::default()
                })
                .to_vec(),
        });
    }
    let emu = crate::support::start_emulator(seed, Options::default()).await;
    let s3 = test_support::s3::S3Server::from_env();
    let bucket = s3.new_bucket().await;
    let mut mails: Vec<(String, String, bool)> = Vec::new();
    let mut importers = Vec::new();
    for n in 0..MAILBOXES {
        let body = crate::support::app_only_importer_body(
            &emu,
            &serde_json::json!({
                "name": format!("Box {n}"),
                "mailbox": mailbox(n),
                "sink": s3.sink_body(&bucket, "shared/"),
            }),
        );
        let input: domain::importer::ImporterInput = serde_json::from_value(body).expect("input");
        importers.push(
            store
                .create_importer(&client.id, &input.validate(None).expect("valid"), now)
                .await
                .expect("importer"),
        );
        for m in 0..MAILS_EACH {
            let k = n * MAILS_EACH + m;
            let importable = k % 7 != 3;
            let (imid, raw) = import::corpus::numbered_mail(k, importable.then_some(3_000));
            emu.add_message(&mailbox(n), "Inbox", &raw)
                .expect("deliver");
            mails.push((mailbox(n), imid, importable));
        }
    }
    graph_latency(&emu, 40);
    import_every_two_seconds(&store, &client.id, now).await;
    let data = dir.path().join("data");
    let started = std::time::Instant::now();
    let mut instances: Vec<Instance> = (0..3)
        .map(|_| {
            Instance::start_with(
                &url,
                &key_file,
                &data,
                &[("MAILFERRY_IMPORT_CONCURRENCY", "3")],
            )
        })
        .collect();
    let in_inbox = |emu: &msemu::EmulatorHandle| -> usize {
        (0..MAILBOXES)
            .map(|n| {
                emu.messages(&mailbox(n))
                    .expect("messages")
                    .iter()
                    .filter(|m| m.folder_path == "Inbox")
                    .count()
            })
            .sum()
    };
    let shares = |instance: &Instance| {
        instance
            .log_text()
            .matches("worked a mailbox's share")
            .count()
    };

    // Kill an instance while it holds a mailbox, once a sixth of the work is done.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let victim = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no import got under way"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        if in_inbox(&emu) > mails.len() * 5 / 6 {
            continue;
        }
        let held: Vec<(String,)> = sqlx::query_as(
            "SELECT claimed_by FROM import_work WHERE done_at IS NULL AND claimed_by IS NOT NULL",
        )
        .fetch_all(store.pool())
        .await
        .expect("import work");
        let holder = held.iter().find_map(|(owner,)| {
            let pid: u32 = owner.split('|').nth(1)?.parse().ok()?;
            instances.iter().position(|i| i.child.id() == pid)
        });
        if let Some(i) = holder {
            break instances.remove(i);
        }
    };
    let mut victim = victim;
    victim.child.kill().expect("SIGKILL");
    victim.child.wait().expect("reap");
    let left = in_inbox(&emu);
    assert!(left > 0, "the import had finished before the kill");
    let before: Vec<usize> = instances.iter().map(shares).collect();
    let killed_at = std::time::Instant::now();
    let started_to_kill = killed_at.duration_since(started);

    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while in_inbox(&emu) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the survivors did not finish: {} mails left",
            in_inbox(&emu)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let finished_in = killed_at.elapsed();

    // Every mail in exactly one place; one document each, and its objects.
    for (mb, imid, importable) in &mails {
        let places: Vec<String> = emu
            .messages(mb)
            .expect("messages")
            .into_iter()
            .filter(|m| m.internet_message_id.as_deref() == Some(imid.as_str()))
            .map(|m| m.folder_path)
            .collect();
        let expected = if *importable { "Exported" } else { "Error" };
        assert_eq!(places, [expected], "{mb} {imid}");
    }
    let objects = s3.objects(&bucket).await;
    let mut documents = 0;
    for (importer, n) in importers.iter().zip(0..) {
        let docs = store
            .list_documents(&client.id, Some(&importer.id), 100, 0)
            .await
            .expect("documents");
        let importable = mails
            .iter()
            .filter(|(mb, _, ok)| *ok && *mb == mailbox(n))
            .count();
        assert_eq!(
            docs.len(),
            importable,
            "{}: one document per importable mail",
            mailbox(n)
        );
        for doc in &docs {
            let base = doc
                .location
                .strip_prefix(&format!("s3://{bucket}/"))
                .expect("s3 location");
            assert!(
                objects.contains_key(&format!("{base}metadata.json")),
                "{base}"
            );
            assert!(
                objects.contains_key(&format!("{base}message.eml")),
                "{base}"
            );
        }
        documents += docs.len();
        let runs = store
            .import_runs(&client.id, &importer.id, 10, 0)
            .await
            .expect("runs");
        assert!(!runs.is_empty(), "{}: never worked", mailbox(n));
    }
    let metadata_objects = objects
        .keys()
        .filter(|k| k.ends_with("/metadata.json"))
        .count();
    assert_eq!(
        metadata_objects, documents,
        "one complete object set per document"
    );

    // Both survivors took part after the kill.
    let after: Vec<usize> = instances.iter().map(shares).collect();
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert!(
            a > b,
            "survivor {i} did no share after the kill: {before:?} → {after:?}"
        );
    }
    println!(
        "shared run: {} mails, {documents} documents in S3; killed {} {started_to_kill:?} after the start, holding a mailbox with {left} mails left; the survivors finished {finished_in:?} later; survivors' shares {before:?} → {after:?}, the victim's {}",
        mails.len(),
        victim.name,
        shares(&victim)
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
