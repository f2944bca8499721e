//! `GET /api/v2/overview` (every importer's health, problems first) and the
//! search parameters of `GET /api/v2/documents` and `GET /api/v2/executions`.

use domain::document::{DocumentMetadata, DocumentSource};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use store::documents::DocumentRecord;
use store::grants::{Grant, GrantState};
use store::import_runs::{FailureKind, ImportRunRecord, RunOutcome};

use crate::support::{Db, TestApp, graph_importer_body, json as body_json};

async fn create(app: &TestApp, body: Value) -> String {
    let created = app.post_json("/api/v2/importers/email", &body).await;
    assert_eq!(created.status(), 201);
    body_json(created).await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

fn app_only(name: &str) -> Value {
    json!({
        "name": name, "protocol": "graph_client_credentials",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "client_secret": "Azure-Secret-Value~0001",
        "tenant_id": "contoso.onmicrosoft.com", "mailbox": format!("{}@contoso.com", name.to_lowercase()),
        "folders": { "inbox": "Inbox", "exported": "Exported", "error": "Error" },
    })
}

fn grant(importer_id: &str, state: GrantState, now: Timestamp) -> Grant {
    Grant {
        importer_id: importer_id.to_owned(),
        state,
        account: Some("alice@contoso.com".into()),
        scopes: vec!["Mail.ReadWrite".into()],
        access_token: Some(secrecy::SecretString::from("at")),
        access_token_expires_at: Some(now + SignedDuration::from_mins(40)),
        refresh_token: Some(secrecy::SecretString::from("rt")),
        refresh_token_issued_at: Some(now - SignedDuration::from_hours(24)),
        last_refresh_at: Some(now - SignedDuration::from_hours(24)),
        last_error: (state == GrantState::ReauthRequired)
            .then(|| "AADSTS700082: the refresh token expired; press Authenticate".into()),
        consecutive_failures: 0,
        version: 1,
        updated_at: now,
    }
}

fn run(app: &TestApp, importer_id: &str, minutes_ago: i64) -> ImportRunRecord {
    let at = app.clock_now() - SignedDuration::from_mins(minutes_ago);
    ImportRunRecord {
        id: ImportRunRecord::new_id(),
        execution_id: format!("exec-{}", ImportRunRecord::new_id()),
        client_id: app.client_id.clone(),
        importer_id: importer_id.to_owned(),
        started_at: at,
        finished_at: at + SignedDuration::from_secs(3),
        outcome: RunOutcome::Succeeded,
        imported: 12,
        completed: 0,
        moves_confirmed: 0,
        to_error_by_reason: [("no_importable_attachment".to_owned(), 1)].into(),
        left_for_retry: 0,
        bytes: 1000,
        stopped_early: false,
        error: None,
        failure_kind: None,
        throttled_until: None,
    }
}

fn failed(base: ImportRunRecord, kind: FailureKind, error: &str) -> ImportRunRecord {
    ImportRunRecord {
        outcome: RunOutcome::Failed,
        imported: 0,
        to_error_by_reason: Default::default(),
        error: Some(error.to_owned()),
        failure_kind: Some(kind),
        ..base
    }
}

#[tokio::test]
async fn the_overview_names_each_importers_state_and_puts_problems_first() {
    let app = TestApp::spawn().await;
    let now = app.clock_now();
    assert_eq!(
        body_json(app.get("/api/v2/overview").await).await,
        json!([])
    );

    let healthy = create(&app, app_only("Healthy")).await;
    app.store
        .record_import_run(&run(&app, &healthy, 4))
        .await
        .expect("run");
    let unauthenticated = create(&app, graph_importer_body("Nobody signed in")).await;
    let revoked = create(&app, graph_importer_body("Revoked")).await;
    app.store
        .put_grant(&grant(&revoked, GrantState::ReauthRequired, now))
        .await
        .expect("grant");
    let authorized = create(&app, graph_importer_body("Authorized")).await;
    app.store
        .put_grant(&grant(&authorized, GrantState::Authorized, now))
        .await
        .expect("grant");
    let folders = create(&app, app_only("Folders")).await;
    app.store
        .record_import_run(&failed(
            run(&app, &folders, 2),
            FailureKind::Folders,
            "the folder `Exported` is ambiguous: Inbox/Exported, Archive/Exported; no mail was touched",
        ))
        .await
        .expect("run");
    let failing = create(&app, app_only("Failing")).await;
    for minutes_ago in [15, 10, 5] {
        app.store
            .record_import_run(&failed(
                run(&app, &failing, minutes_ago),
                FailureKind::Other,
                "the sink refused",
            ))
            .await
            .expect("run");
    }
    let throttled = create(&app, app_only("Throttled")).await;
    app.store
        .record_import_run(&ImportRunRecord {
            throttled_until: Some(now + SignedDuration::from_mins(10)),
            ..failed(
                run(&app, &throttled, 1),
                FailureKind::Transient,
                "Microsoft Graph asked to wait 600.0 s",
            )
        })
        .await
        .expect("run");
    // A throttle that is over is no longer shown.
    let recovered = create(&app, app_only("Recovered")).await;
    app.store
        .record_import_run(&ImportRunRecord {
            throttled_until: Some(now - SignedDuration::from_mins(1)),
            ..run(&app, &recovered, 3)
        })
        .await
        .expect("run");

    let started = std::time::Instant::now();
    let response = app.get("/api/v2/overview").await;
    eprintln!("overview of 8 importers took {:?}", started.elapsed());
    assert_eq!(response.status(), 200);
    let entries = body_json(response).await;
    let states: Vec<(&str, &str)> = entries
        .as_array()
        .expect("list")
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("Revoked", "reauth_required"),
            ("Folders", "folder_problem"),
            ("Failing", "failing"),
            ("Nobody signed in", "unauthenticated"),
            ("Throttled", "throttled"),
            ("Authorized", "healthy"),
            ("Healthy", "healthy"),
            ("Recovered", "healthy"),
        ]
    );
    let entry = |id: &str| {
        entries
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["importer_id"] == id)
            .unwrap()
            .clone()
    };
    let e = entry(&revoked);
    assert!(
        e["state_detail"].as_str().unwrap().contains("AADSTS700082"),
        "{e}"
    );
    assert_eq!(
        e["refresh_token_expires_at"],
        Value::Null,
        "a refused grant has none to keep"
    );
    assert_eq!(
        e["problems"][0]["key"],
        format!("reauth_required:{revoked}")
    );
    let e = entry(&folders);
    assert!(
        e["state_detail"].as_str().unwrap().contains("ambiguous"),
        "{e}"
    );
    let e = entry(&failing);
    assert_eq!(e["failing_runs"], 3);
    assert!(
        e["state_detail"]
            .as_str()
            .unwrap()
            .contains("the sink refused"),
        "{e}"
    );
    assert_eq!(
        e["problems"][0]["key"],
        format!("failing:{failing}"),
        "3 runs: the alert threshold"
    );
    let e = entry(&throttled);
    assert_eq!(
        e["throttled_until"],
        (now + SignedDuration::from_mins(10)).to_string()
    );
    assert_eq!(entry(&recovered)["throttled_until"], Value::Null);
    let e = entry(&healthy);
    assert_eq!(e["state_detail"], Value::Null);
    assert_eq!(e["last_run"]["imported"], 12);
    assert_eq!(e["last_run"]["to_error"], 1);
    assert_eq!(e["delegated"], false);
    // The default import-emails job (every five minutes) runs it next.
    let next: Timestamp = e["next_run_at"].as_str().unwrap().parse().unwrap();
    assert!(
        next > now && next <= now + SignedDuration::from_mins(5),
        "{next}"
    );
    let e = entry(&authorized);
    assert_eq!(
        e["access_token_expires_at"],
        (now + SignedDuration::from_mins(40)).to_string()
    );
    assert_eq!(
        e["refresh_token_expires_at"],
        (now - SignedDuration::from_hours(24) + SignedDuration::from_hours(90 * 24)).to_string(),
        "Microsoft's 90 days from the last use"
    );
    assert_eq!(entry(&unauthenticated)["account"], Value::Null);

    // One importer, as its page asks; a bad parameter and a foreign id are refused.
    let one = body_json(
        app.get(&format!("/api/v2/overview?importer_id={throttled}"))
            .await,
    )
    .await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["state"], "throttled");
    let bad = app.get("/api/v2/overview?importer=x").await;
    assert_eq!(bad.status(), 422);
    assert_eq!(body_json(bad).await["errors"][0]["field"], "importer");
    assert_eq!(
        app.get("/api/v2/overview?importer_id=nope").await.status(),
        404
    );

    // With no import-emails job enabled, nothing says when it runs next.
    for job in body_json(app.get("/api/v2/jobs").await)
        .await
        .as_array()
        .unwrap()
    {
        if job["script"] == "import-emails" {
            let mut body = job.clone();
            body["enabled"] = json!(false);
            let put = app
                .http
                .put(app.url(&format!("/api/v2/jobs/{}", job["id"].as_str().unwrap())))
                .bearer_auth(&app.token)
                .json(&body)
                .send()
                .await
                .expect("put");
            assert_eq!(put.status(), 200);
        }
    }
    let e = body_json(
        app.get(&format!("/api/v2/overview?importer_id={healthy}"))
            .await,
    )
    .await;
    assert_eq!(e[0]["next_run_at"], Value::Null);
}

fn document(
    app: &TestApp,
    importer_id: &str,
    n: u32,
    subject: &str,
    from: &str,
    received: &str,
) -> DocumentRecord {
    let id = format!("0196a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a{n:02}");
    DocumentRecord {
        id: id.clone(),
        client_id: app.client_id.clone(),
        importer_id: importer_id.to_owned(),
        sink: "filesystem".to_owned(),
        location: format!("/nowhere/{id}"),
        metadata: DocumentMetadata {
            document_id: id,
            client: store::clients::DEFAULT_CLIENT.to_owned(),
            importer_id: importer_id.to_owned(),
            source: DocumentSource {
                protocol: "graph_client_credentials".to_owned(),
                mailbox: "invoices@contoso.com".to_owned(),
                message_id: format!("AAMkAD-{n}"),
                internet_message_id: None,
            },
            subject: Some(subject.to_owned()),
            from: Some(from.to_owned()),
            to: vec!["invoices@contoso.com".to_owned()],
            received_at: Some(received.parse().expect("ts")),
            imported_at: app.clock_now() + SignedDuration::from_secs(i64::from(n)),
            attachments: Vec::new(),
            smime: None,
        },
    }
}

async fn subjects(app: &TestApp, query: &str) -> Vec<String> {
    let response = app.get(&format!("/api/v2/documents?{query}")).await;
    assert_eq!(response.status(), 200, "{query}");
    body_json(response)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["subject"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn documents_are_searched_by_subject_sender_dates_and_importer_on_sqlite() {
    documents_are_searched(Db::Sqlite).await;
}

/// PostgreSQL's LIKE is case-sensitive and its string literals differ from
/// SQLite's: the same search must find the same documents.
#[tokio::test]
async fn documents_are_searched_by_subject_sender_dates_and_importer_on_postgresql() {
    documents_are_searched(Db::Postgres).await;
}

async fn documents_are_searched(db: Db) {
    let app = TestApp::spawn_with(db, "2026-03-29T00:30:00Z".parse().expect("ts")).await;
    let a = create(&app, app_only("Invoices")).await;
    let b = create(&app, app_only("Receipts")).await;
    for doc in [
        document(
            &app,
            &a,
            1,
            "Invoice 4711",
            "Fabrikam Billing <billing@fabrikam.example>",
            "2026-03-02T09:00:00Z",
        ),
        document(
            &app,
            &a,
            2,
            "100% discount_offer",
            "Contoso Sales <sales@contoso.com>",
            "2026-03-05T23:30:00Z",
        ),
        document(
            &app,
            &b,
            3,
            "Receipt 12",
            "shop@contoso.com",
            "2026-03-10T08:00:00Z",
        ),
    ] {
        assert!(app.store.insert_document(&doc).await.expect("insert"));
    }
    assert_eq!(subjects(&app, "").await.len(), 3);
    assert_eq!(subjects(&app, "subject=INVOICE").await, ["Invoice 4711"]);
    // LIKE's own characters are taken literally.
    assert_eq!(
        subjects(&app, "subject=100%25").await,
        ["100% discount_offer"]
    );
    assert_eq!(subjects(&app, "subject=4_11").await, Vec::<String>::new());
    assert_eq!(subjects(&app, "subject=t_o").await, ["100% discount_offer"]);
    assert_eq!(
        subjects(&app, "sender=CONTOSO").await,
        ["Receipt 12", "100% discount_offer"]
    );
    assert_eq!(
        subjects(&app, "sender=billing%40fabrikam").await,
        ["Invoice 4711"]
    );
    assert_eq!(
        subjects(&app, &format!("importer_id={b}")).await,
        ["Receipt 12"]
    );
    assert_eq!(
        subjects(&app, &format!("sender=contoso&importer_id={a}")).await,
        ["100% discount_offer"]
    );
    // A date is a UTC day; `until` a date includes that day.
    assert_eq!(
        subjects(&app, "since=2026-03-05").await,
        ["Receipt 12", "100% discount_offer"]
    );
    assert_eq!(
        subjects(&app, "until=2026-03-05").await,
        ["100% discount_offer", "Invoice 4711"]
    );
    assert_eq!(
        subjects(
            &app,
            "since=2026-03-05T23:45:00Z&until=2026-03-10T08:00:00Z"
        )
        .await,
        Vec::<String>::new(),
        "an instant `until` is exclusive"
    );
    assert_eq!(
        subjects(&app, "since=&subject=").await.len(),
        3,
        "empty fields are no filter"
    );

    for (query, field, words) in [
        ("since=yesterday", "since", "neither a date"),
        ("until=2026-13-01", "until", "neither a date"),
        (
            "since=2026-03-10&until=2026-03-01",
            "until",
            "must be after since",
        ),
        ("from=x", "from", "unknown filter"),
    ] {
        let response = app.get(&format!("/api/v2/documents?{query}")).await;
        assert_eq!(response.status(), 422, "{query}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{query}"
        );
        let problem = body_json(response).await;
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(words),
            "{query}: {problem}"
        );
    }
}

#[tokio::test]
async fn executions_are_filtered_by_status() {
    let app = TestApp::spawn().await;
    // purge-documents without its required parameter fails; with it, it succeeds.
    for params in [json!({}), json!({ "retention_days": 30 })] {
        let started = app
            .post_json("/api/v2/scripts/purge-documents/run", &params)
            .await;
        if started.status() == 201 {
            let id = body_json(started).await["id"].as_str().unwrap().to_owned();
            for _ in 0..100 {
                let e = body_json(app.get(&format!("/api/v2/executions/{id}")).await).await;
                if e["status"] != "running" {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    let all = body_json(app.get("/api/v2/executions").await).await;
    assert!(!all.as_array().unwrap().is_empty());
    for status in ["succeeded", "failed", "running"] {
        let listed = body_json(
            app.get(&format!("/api/v2/executions?status={status}"))
                .await,
        )
        .await;
        let expected = all
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["status"] == status)
            .count();
        assert_eq!(
            listed.as_array().unwrap().len(),
            expected,
            "{status}: {listed}"
        );
        assert!(
            listed
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["status"] == status)
        );
    }
    assert_eq!(
        body_json(app.get("/api/v2/executions?status=succeeded").await)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let bad = app.get("/api/v2/executions?status=done").await;
    assert_eq!(bad.status(), 422);
    let problem = body_json(bad).await;
    assert_eq!(problem["errors"][0]["field"], "status");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("running, succeeded or failed")
    );
}

/// The log target alone: validated with the field named, enough for "Send
/// test alert", and an importer's problem is alerted there once.
#[tokio::test]
async fn alerts_to_the_server_log_alone_are_sent_and_tested() {
    let app = TestApp::spawn().await;
    let none = app.post_json("/api/v2/alerts/test", &json!({})).await;
    assert_eq!(none.status(), 409);
    let why = body_json(none).await.to_string();
    assert!(why.contains("`log: true`"), "{why}");

    let bad = app
        .put_json("/api/v2/alerts/settings", &json!({"log": "yes"}))
        .await;
    assert_eq!(bad.status(), 422);
    let problem = body_json(bad).await;
    assert_eq!(problem["errors"][0]["field"], "log", "{problem}");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("boolean")),
        "{problem}"
    );

    let saved = app
        .put_json("/api/v2/alerts/settings", &json!({"log": true}))
        .await;
    assert_eq!(saved.status(), 200);
    let view = body_json(saved).await;
    assert_eq!(view["log"], true, "{view}");
    assert_eq!(
        body_json(app.get("/api/v2/alerts/settings").await).await["log"],
        true
    );
    let test = app.post_json("/api/v2/alerts/test", &json!({})).await;
    assert_eq!(test.status(), 200);
    assert_eq!(
        body_json(test).await,
        json!({"delivered": ["the server log"], "failed": []})
    );

    let revoked = create(&app, graph_importer_body("Revoked")).await;
    let now = app.clock_now();
    app.store
        .put_grant(&grant(&revoked, GrantState::ReauthRequired, now))
        .await
        .expect("grant");
    let lines = runtime::alerts::check(&app.store, &app.client_id, now)
        .await
        .expect("check");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(
            "alert (Raised) sent to the server log: importer “Revoked” needs re-authentication"
        ),
        "{lines:?}"
    );
    let alerts = body_json(app.get("/api/v2/alerts").await).await;
    assert!(alerts[0]["last_sent_at"].is_string(), "{alerts}");
    let again = runtime::alerts::check(&app.store, &app.client_id, now)
        .await
        .expect("check");
    assert!(again.is_empty(), "once per problem: {again:?}");

    // Turned off, with no other target: nothing is alerted.
    let off = app
        .put_json("/api/v2/alerts/settings", &json!({"log": false}))
        .await;
    assert_eq!(body_json(off).await["log"], false);
    assert_eq!(
        app.post_json("/api/v2/alerts/test", &json!({}))
            .await
            .status(),
        409
    );
}
