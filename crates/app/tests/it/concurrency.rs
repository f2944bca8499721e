//! Many mailboxes in one run: importers of different mailboxes are worked
//! side by side, so one throttled for minutes holds up no other; two
//! importers of one mailbox never work it at once.

use std::time::{Duration, Instant};

use msemu::{EmulatorHandle, FaultKind, FaultRule, demo};
use scheduler::{Runner, RunnerConfig};
use serde_json::json;
use store::executions::TriggerKind;

use crate::support::{
    TestApp, app_only_importer_body, empty_demo_emulator, invoice_mail, json as body_json,
};

async fn create(app: &TestApp, body: &serde_json::Value) -> String {
    let created = app.post_json("/api/v2/importers/email", body).await;
    assert_eq!(created.status(), 201);
    body_json(created).await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

fn deliver(emu: &EmulatorHandle, mailbox: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|n| {
            let imid = format!("<{n}-{mailbox}>");
            emu.add_message(
                mailbox,
                "Inbox",
                &invoice_mail(&imid, "Invoice", b"%PDF-1.4 x"),
            )
            .expect("deliver");
            imid
        })
        .collect()
}

fn in_folder(emu: &EmulatorHandle, mailbox: &str, folder: &str) -> usize {
    emu.messages(mailbox)
        .expect("messages")
        .iter()
        .filter(|m| m.folder_path == folder)
        .count()
}

#[tokio::test]
async fn a_mailbox_throttled_for_minutes_holds_up_no_other() {
    let emu = empty_demo_emulator().await;
    let app = TestApp::spawn().await;
    create(
        &app,
        &app_only_importer_body(&emu, &json!({ "name": "Alice" })),
    )
    .await;
    create(
        &app,
        &app_only_importer_body(&emu, &json!({ "name": "Bob", "mailbox": demo::BOB })),
    )
    .await;
    deliver(&emu, demo::ALICE, 3);
    deliver(&emu, demo::BOB, 3);
    // Bob's mailbox gets the folders Alice's demo mailbox has.
    for folder in ["Exported", "Error"] {
        let made = reqwest::Client::new()
            .post(format!(
                "{}/_emulator/mailboxes/{}/folders",
                emu.base_url(),
                demo::BOB
            ))
            .json(&json!({ "path": folder }))
            .send()
            .await
            .expect("emulator");
        assert!(made.status().is_success(), "{}", made.status());
    }
    // Alice's mailbox answers 429 with a Retry-After of two minutes.
    emu.add_fault(FaultRule::mailbox(
        FaultKind::Throttle { retry_after: 120.0 },
        demo::ALICE,
    ));
    let runner = Runner::new(
        app.store.clone(),
        app.clock.clone(),
        crate::support::scripts(&app.store, app.clock.clone(), app.dir.path()),
        RunnerConfig::default(),
    );
    let started = Instant::now();
    let run = {
        let runner = runner.clone();
        let client = app.client_id.clone();
        tokio::spawn(async move {
            runner
                .run(
                    &client,
                    "import-emails",
                    serde_json::Map::new(),
                    TriggerKind::Manual,
                )
                .await
        })
    };
    while in_folder(&emu, demo::BOB, "Exported") < 3 {
        if started.elapsed() > Duration::from_secs(20) {
            runner.shutdown(Duration::from_secs(10)).await;
            let log = run.await.expect("join").expect("run").log;
            panic!("Bob's mail waited for Alice's throttled mailbox: {log:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bob_done = started.elapsed();
    assert_eq!(
        in_folder(&emu, demo::ALICE, "Inbox"),
        3,
        "Alice's mailbox is still waiting"
    );
    // Shutdown ends Alice's wait at once; her mail stays for the next run.
    runner.shutdown(Duration::from_secs(10)).await;
    let execution = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the run ends at shutdown")
        .expect("join")
        .expect("the run started");
    assert!(
        execution
            .log
            .iter()
            .any(|l| l.contains("Bob") && l.contains("imported 3")),
        "{:?}",
        execution.log
    );
    assert_eq!(in_folder(&emu, demo::ALICE, "Inbox"), 3);
    eprintln!(
        "Bob's 3 mails were exported {bob_done:?} after the start, while Alice's mailbox waited out a 120 s Retry-After"
    );
}

#[tokio::test]
async fn two_importers_of_one_mailbox_never_work_it_at_once() {
    let emu = empty_demo_emulator().await;
    let app = TestApp::spawn().await;
    let first = create(
        &app,
        &app_only_importer_body(&emu, &json!({ "name": "First" })),
    )
    .await;
    let second = create(
        &app,
        &app_only_importer_body(&emu, &json!({ "name": "Second" })),
    )
    .await;
    let mails = deliver(&emu, demo::ALICE, 20);
    emu.add_fault(FaultRule::graph(FaultKind::Latency { ms: 30 }));
    let run = crate::support::run_import_ok(&app).await;
    assert_eq!(
        in_folder(&emu, demo::ALICE, "Exported"),
        mails.len(),
        "{run:?}"
    );
    let documents = |id: String| {
        let store = app.store.clone();
        async move { store.count_documents(&id).await.expect("count") }
    };
    let (a, b) = (documents(first).await, documents(second).await);
    assert_eq!(
        a + b,
        mails.len() as i64,
        "each mail imported once, by one importer: {a} + {b}"
    );
    // The one that ran second found the Inbox empty.
    assert!(a == 0 || b == 0, "{a} + {b}: both worked the mailbox");
}

#[tokio::test]
async fn a_run_that_finds_its_mailbox_busy_skips_it_and_records_no_failure() {
    let emu = empty_demo_emulator().await;
    let app = TestApp::spawn().await;
    let id = create(&app, &app_only_importer_body(&emu, &json!({}))).await;
    let mails = deliver(&emu, demo::ALICE, 2);
    // Another live run of this process holds the mailbox.
    let record = app
        .store
        .importer(&app.client_id, &id)
        .await
        .expect("read")
        .expect("importer");
    let lease = import::lease::lease_name(&app.store, &record)
        .await
        .expect("lease name");
    let holder = import::lease::owner_name();
    let now = jiff::Timestamp::now();
    assert!(
        app.store
            .try_acquire_lease(
                &lease,
                &holder,
                now + jiff::SignedDuration::from_mins(5),
                now
            )
            .await
            .expect("lease")
    );

    let run = crate::support::run_named(&app, "import-emails", json!({ "importer_id": id })).await;
    assert_eq!(
        run.status,
        store::executions::ExecutionStatus::Succeeded,
        "a busy mailbox is not a failure: {:?} {:?}",
        run.error,
        run.log
    );
    assert!(
        run.log
            .iter()
            .any(|l| l.contains("skipped: another run is importing")),
        "{:?}",
        run.log
    );
    assert_eq!(
        in_folder(&emu, demo::ALICE, "Inbox"),
        mails.len(),
        "no mail touched"
    );
    let status = body_json(
        app.get(&format!("/api/v2/importers/email/{id}/status"))
            .await,
    )
    .await;
    assert!(
        status["last_import"].is_null(),
        "no run recorded (it would count towards failing runs): {status}"
    );

    // Once the holder is done, the next run imports.
    app.store
        .release_lease(&lease, &holder)
        .await
        .expect("release");
    crate::support::run_import_ok(&app).await;
    assert_eq!(in_folder(&emu, demo::ALICE, "Exported"), mails.len());
}

#[tokio::test]
async fn a_retry_after_longer_than_a_run_waits_is_kept_for_every_instance() {
    let emu = empty_demo_emulator().await;
    let app = TestApp::spawn().await;
    create(
        &app,
        &app_only_importer_body(&emu, &json!({ "name": "Alice" })),
    )
    .await;
    let mails = deliver(&emu, demo::ALICE, 2);
    // Ten minutes: longer than a background run waits (five).
    emu.add_fault(FaultRule::mailbox(
        FaultKind::Throttle { retry_after: 600.0 },
        demo::ALICE,
    ));
    let first = crate::support::run_import_emails(&app).await;
    assert!(
        first
            .log
            .iter()
            .any(|l| l.contains("Microsoft Graph throttles this mailbox")),
        "{:?}",
        first.log
    );
    let asked = emu.counters().faults_fired;
    assert!(asked > 0);

    // A run elsewhere (a new runner: another instance's view) within the
    // ten minutes leaves the mailbox alone, and that is no failure.
    app.clock.advance(jiff::SignedDuration::from_mins(5));
    let second = crate::support::run_import_ok(&app).await;
    assert!(
        second
            .iter()
            .any(|l| l.contains("skipped: Microsoft Graph asked to leave this mailbox alone until")),
        "{second:?}"
    );
    assert_eq!(
        emu.counters().faults_fired,
        asked,
        "no request reached the throttled mailbox"
    );
    assert_eq!(in_folder(&emu, demo::ALICE, "Inbox"), mails.len());

    // Its time come, the next run imports.
    emu.clear_faults();
    app.clock.advance(jiff::SignedDuration::from_mins(6));
    crate::support::run_import_ok(&app).await;
    assert_eq!(in_folder(&emu, demo::ALICE, "Exported"), mails.len());
}
