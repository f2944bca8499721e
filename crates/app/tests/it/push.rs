//! Push instead of polling (Graph change notifications): an importer's run
//! subscribes its Inbox through the emulator, which validates the hook and
//! posts a `created` notification for each new mail; mailferry imports it
//! within seconds, checks `clientState`, answers lifecycle events, and
//! renews the subscription before it expires. Without push, polling imports
//! (every other import test).

use std::time::{Duration, Instant};

use msemu::{Options, demo};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// Runs `import-emails` through the API (the app's own runner and
/// connector, as "Run now" does) and waits for it; its log.
async fn run_now(app: &TestApp) -> Vec<String> {
    let started = app
        .post_json("/api/v2/scripts/import-emails/run", &json!({}))
        .await;
    assert_eq!(started.status(), StatusCode::CREATED);
    let path = location(&started);
    for _ in 0..200 {
        let execution = json(app.get(&path).await).await;
        if execution["status"] != "running" {
            assert_eq!(execution["status"], "succeeded", "{execution}");
            return execution["log"]
                .as_array()
                .expect("log")
                .iter()
                .map(|l| l.as_str().unwrap_or_default().to_owned())
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the run did not end");
}

async fn push_runs(app: &TestApp) -> usize {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM executions WHERE trigger_kind = 'push'")
            .fetch_all(app.store.pool())
            .await
            .expect("executions");
    rows.len()
}

/// Waits until no run is going on.
async fn settled(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let running: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM executions WHERE status = 'running'")
                .fetch_all(app.store.pool())
                .await
                .expect("executions");
        if running.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "runs never ended: {running:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn folder_of(emu: &msemu::EmulatorHandle, imid: &str) -> Option<String> {
    emu.messages(demo::ALICE)
        .expect("messages")
        .into_iter()
        .find(|m| m.internet_message_id.as_deref() == Some(imid))
        .map(|m| m.folder_path)
}

/// Delivers mail `n` and waits until it leaves the Inbox; how long that took.
async fn delivered_and_imported(emu: &msemu::EmulatorHandle, n: usize) -> Duration {
    let (imid, raw) = import::corpus::numbered_mail(n, Some(1_000));
    emu.add_message(demo::ALICE, "Inbox", &raw)
        .expect("deliver");
    let started = Instant::now();
    while folder_of(emu, &imid).as_deref() != Some("Exported") {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "mail {n} was not imported through push: in {:?}",
            folder_of(emu, &imid)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_mail_is_imported_within_seconds_through_a_graph_notification() {
    let emu = start_emulator(
        empty_demo_seed(),
        Options {
            allow_http_notification_urls: true,
            ..Options::default()
        },
    )
    .await;
    let app = TestApp::spawn_with_push().await;
    let created = app
        .post_json(
            "/api/v2/importers/email",
            &app_only_importer_body(&emu, &json!({})),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);

    // The first run subscribes the Inbox (Graph validated the hook first).
    let log = run_now(&app).await;
    assert!(
        log.iter()
            .any(|l| l.contains("push: subscribed to new mail in the Inbox")),
        "{log:?}"
    );
    let subscriptions = emu.subscriptions();
    assert_eq!(subscriptions.len(), 1);
    let (subscription, _, first_expiry, _) = subscriptions[0].clone();
    let again = run_now(&app).await;
    assert!(
        !again.iter().any(|l| l.contains("push:")),
        "nothing to do: {again:?}"
    );

    // A new mail: imported by a push-started run, long before any poll.
    let took = delivered_and_imported(&emu, 1).await;
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(push_runs(&app).await >= 1);
    println!("push: a new mail was exported {took:?} after it arrived");

    // The hook answers Graph's validation and ignores what is not ours.
    let echoed = app
        .http
        .post(app.url("/hooks/graph?validationToken=Validation%3A%20abc%2Bdef"))
        .header("content-type", "text/plain")
        .send()
        .await
        .expect("validation");
    assert_eq!(echoed.status(), StatusCode::OK);
    assert!(
        echoed.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    assert_eq!(echoed.text().await.expect("text"), "Validation: abc+def");
    let before = push_runs(&app).await;
    for forged in [
        json!({"value": [{"subscriptionId": subscription, "clientState": "guessed", "changeType": "created"}]}),
        json!({"value": [{"subscriptionId": "not-ours", "clientState": "x", "changeType": "created"}]}),
    ] {
        let r = app.post_json("/hooks/graph", &forged).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let r = app
        .http
        .post(app.url("/hooks/graph"))
        .body("not json")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        push_runs(&app).await,
        before,
        "forged notifications start nothing"
    );

    // reauthorizationRequired pauses the subscription until mailferry
    // reauthorizes it; then push works again.
    emu.lifecycle_event(&subscription, "reauthorizationRequired")
        .await
        .expect("lifecycle");
    let deadline = Instant::now() + Duration::from_secs(10);
    while emu.subscriptions().iter().any(|s| s.3) {
        assert!(Instant::now() < deadline, "never reauthorized");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    delivered_and_imported(&emu, 2).await;

    // subscriptionRemoved: forgotten, and the run it starts subscribes afresh.
    emu.lifecycle_event(&subscription, "subscriptionRemoved")
        .await
        .expect("lifecycle");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = emu.subscriptions();
        if now.len() == 1 && now[0].0 != subscription {
            break;
        }
        assert!(Instant::now() < deadline, "not subscribed again: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    delivered_and_imported(&emu, 3).await;

    // Renewal: past half its life, the next run moves the expiry on (once
    // the push runs still finishing have ended, or one of them renews it).
    settled(&app).await;
    let current = emu.subscriptions()[0].clone();
    app.clock.advance(jiff::SignedDuration::from_hours(40));
    let log = run_now(&app).await;
    assert!(
        log.iter().any(|l| l.contains("push: subscription renewed")),
        "{log:?}"
    );
    let renewed = emu.subscriptions()[0].clone();
    assert_eq!(renewed.0, current.0, "the same subscription");
    assert!(
        renewed.2 > current.2 && renewed.2 > first_expiry,
        "{renewed:?} vs {current:?}"
    );

    let summary: Value = json(app.get("/api/v2/importers/email").await).await;
    assert_eq!(summary.as_array().expect("list").len(), 1);

    // Deleting the importer ends its subscription at Graph.
    settled(&app).await;
    let id = summary[0]["id"].as_str().expect("id");
    let deleted = app.delete(&format!("/api/v2/importers/email/{id}")).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(emu.subscriptions(), vec![], "Graph no longer posts for it");
    emu.shutdown().await;
}

/// IMAP push against a real Dovecot and a real `mailferry serve`: the
/// instance watches the importer's INBOX with IDLE, and a mail delivered
/// there is imported within seconds by a push-started run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_mail_is_imported_within_seconds_through_imap_idle_and_by_polling_with_push_off() {
    use test_support::dovecot::Dovecot;

    let dovecot = Dovecot::from_env();
    let (user, password) = dovecot.new_user();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = data_dir_store(dir.path()).await;
    let now = jiff::Timestamp::now();
    let client = store.ensure_default_client(now).await.expect("client");
    let input: domain::importer::ImporterInput = serde_json::from_value(json!({
        "name": "Dovecot push",
        "protocol": "imap",
        "host": dovecot.host,
        "port": dovecot.imaps_port,
        "security": "tls",
        "tls_ca_pem": dovecot.ca_pem,
        "username": user,
        "password": password,
        "folders": { "inbox": "INBOX", "exported": "Exported", "error": "Error" },
        "attachments": { "allowed_types": ["application/pdf"] },
    }))
    .expect("input");
    store
        .create_importer(&client.id, &input.validate(None).expect("valid"), now)
        .await
        .expect("importer");

    let mut serve = ServeInstance::start_with(
        &format!("sqlite://{}", sqlite_file(dir.path()).display()),
        &key_file(dir.path()),
        dir.path(),
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !serve
        .log_text()
        .contains("watching the IMAP Inbox for new mail")
    {
        assert!(Instant::now() < deadline, "the Inbox was never watched");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // EXAMINE and IDLE follow the log line.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (imid, raw) = import::corpus::numbered_mail(7, Some(1_000));
    dovecot.save(&user, "INBOX", &raw);
    let arrived = Instant::now();
    while !dovecot.mails(&user, "INBOX").is_empty() {
        assert!(
            arrived.elapsed() < Duration::from_secs(15),
            "the mail was not imported through IDLE"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = arrived.elapsed();
    let exported = dovecot.mails(&user, "Exported");
    assert_eq!(exported.len(), 1);
    assert_eq!(exported[0].message_id, imid);
    let triggers: Vec<(String,)> =
        sqlx::query_as("SELECT trigger_kind FROM executions WHERE script = 'import-emails'")
            .fetch_all(store.pool())
            .await
            .expect("executions");
    assert!(
        triggers.iter().any(|(t,)| t == "push"),
        "imported by a push run: {triggers:?}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    println!("IMAP IDLE: a new mail was exported {took:?} after it was delivered");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &serve.child.id().to_string()])
        .status();
    let _ = serve.child.wait();

    // Push off: nothing watches the Inbox, and the scheduled run (polling)
    // still imports the mail.
    store
        .create_job(
            &client.id,
            &store::jobs::JobSpec {
                script: "import-emails".into(),
                schedule: domain::schedule::CronSchedule::parse("*/2 * * * * *", "UTC")
                    .expect("cron"),
                enabled: true,
                params: serde_json::Map::new(),
                description: "polls every 2 seconds".into(),
            },
            jiff::Timestamp::now(),
        )
        .await
        .expect("job");
    let mut serve = ServeInstance::start_with(
        &format!("sqlite://{}", sqlite_file(dir.path()).display()),
        &key_file(dir.path()),
        dir.path(),
        &[("MAILFERRY_IMAP_IDLE", "false")],
    );
    let (second, raw) = import::corpus::numbered_mail(8, Some(1_000));
    dovecot.save(&user, "INBOX", &raw);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dovecot.mails(&user, "INBOX").is_empty() {
        assert!(Instant::now() < deadline, "polling did not import the mail");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        dovecot
            .mails(&user, "Exported")
            .iter()
            .any(|m| m.message_id == second)
    );
    assert!(
        !serve.log_text().contains("watching the IMAP Inbox"),
        "push is off"
    );
    let triggers: Vec<(String,)> = sqlx::query_as(
        "SELECT trigger_kind FROM executions WHERE script = 'import-emails' ORDER BY started_at",
    )
    .fetch_all(store.pool())
    .await
    .expect("executions");
    assert_eq!(
        triggers.last().map(|(t,)| t.as_str()),
        Some("scheduled"),
        "imported by the scheduled run: {triggers:?}"
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &serve.child.id().to_string()])
        .status();
    let _ = serve.child.wait();
    store.close().await;
}
