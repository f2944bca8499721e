//! The admin UI in real headless Chromium (Debian's package), driven by
//! playwright-core from the scripts of `crates/app/tests/ui/`: `admin_ui.mjs`
//! (sign-in, importer form, jobs, scripts), `seed_flow.mjs` (Authenticate
//! against the emulator's sign-in pages) and `mails_ui.mjs` (mails in Error,
//! Reprocess, a document's mail).

use std::process::Command;

use secrecy::SecretString;

use crate::support::{TestApp, TestMail, empty_demo_emulator, start_emulator};

const UI_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui");
const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// The admin `admin@example.com` of the app's client, with [`ADMIN_PASSWORD`].
async fn admin(app: &TestApp) -> store::clients::User {
    app.store
        .create_user(
            &app.client_id,
            "admin@example.com",
            &SecretString::from(ADMIN_PASSWORD),
            app.clock_now(),
        )
        .await
        .expect("user")
}

/// Runs one of `tests/ui/*.mjs` in headless Chromium and returns what it
/// printed; fails the test with its output when the script fails. Set
/// `MAILFERRY_KEEP_SCREENSHOTS=DIR` to keep the screenshots.
async fn run_in_chromium(script: &str, envs: &[(&str, String)], shots: &std::path::Path) -> String {
    assert!(
        std::path::Path::new(&format!("{UI_DIR}/node_modules/playwright-core")).exists(),
        "playwright-core is not installed: run scripts/install-test-deps.sh (npm ci in {UI_DIR})"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Chromium is not installed: run scripts/install-test-deps.sh (apt-get install chromium)"
    );
    std::fs::create_dir_all(shots).expect("screenshot dir");
    let mut cmd = Command::new("node");
    cmd.arg(format!("{UI_DIR}/{script}"))
        .env("SCREENSHOT_DIR", shots);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run node"))
        .await
        .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Ok(keep) = std::env::var("MAILFERRY_KEEP_SCREENSHOTS") {
        let _ = std::fs::create_dir_all(&keep);
        for entry in std::fs::read_dir(shots).expect("read").flatten() {
            let _ = std::fs::copy(
                entry.path(),
                std::path::Path::new(&keep).join(entry.file_name()),
            );
        }
    }
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    stdout
}

#[tokio::test]
async fn an_admin_signs_in_and_configures_an_importer_in_the_browser() {
    let app = TestApp::spawn().await;
    admin(&app).await;
    let shots = app.dir.path().join("screenshots");
    // Receives the test alert the admin sends from the Alerts page.
    let alerts = std::sync::Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook = format!("http://{}/alerts", listener.local_addr().expect("addr"));
    let seen = alerts.clone();
    let router = axum::Router::new().route(
        "/alerts",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let seen = seen.clone();
            async move {
                seen.lock().expect("lock").push(body);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    let stdout = run_in_chromium(
        "admin_ui.mjs",
        &[
            ("BASE_URL", app.base_url.clone()),
            ("EMAIL", "admin@example.com".into()),
            ("PASSWORD", ADMIN_PASSWORD.into()),
            ("ALERT_WEBHOOK", hook),
        ],
        &shots,
    )
    .await;
    assert!(stdout.contains("ui: all steps passed"), "{stdout}");
    {
        let alerts = alerts.lock().expect("lock");
        assert_eq!(alerts.len(), 1, "one test alert: {alerts:?}");
        assert_eq!(alerts[0]["event"], "test");
    }

    // what the browser did went through the API and is in the store
    let importers = app
        .store
        .list_importers(&app.client_id)
        .await
        .expect("list");
    assert_eq!(importers.len(), 1);
    assert_eq!(importers[0].settings.name, "Invoices");
    assert_eq!(
        importers[0].settings.folders.exported.to_string(),
        "Inbox/Exported"
    );
    // what the form does not show is not lost by saving it again
    assert_eq!(
        importers[0].settings.rules.sender_allow,
        ["*@contoso.com", "billing@fabrikam.com"]
    );
    assert_eq!(
        importers[0].settings.attachments.allowed_extensions,
        ["pdf", "xml"]
    );
    assert!(
        matches!(&importers[0].settings.sink, domain::sink::SinkSettings::Webhook { url, .. } if url == "https://dms.example.com/inbox"),
        "{:?}",
        importers[0].settings.sink
    );
    // the ZIP password typed once survived the second save, sealed
    let keys = app
        .store
        .content_keys(&app.client_id, &importers[0].id)
        .await
        .expect("keys");
    let (sender, password) = keys
        .zip_password_for(Some("billing@supplier.example"))
        .expect("a password for the supplier");
    assert_eq!(sender, "*@supplier.example");
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(password),
        "zip-secret-UI"
    );
    assert_eq!(
        importers[0].settings.smime.on_bad_signature,
        domain::content::OnBadSignature::Import
    );
}

#[tokio::test]
async fn a_session_cookie_without_the_csrf_token_cannot_change_anything() {
    let app = TestApp::spawn().await;
    let user = admin(&app).await;
    let cookie = app
        .store
        .create_session(&user.id, &app.client_id, app.clock_now())
        .await
        .expect("session");
    let cookie = format!(
        "mf_session={}",
        secrecy::ExposeSecret::expose_secret(&cookie)
    );
    let body = crate::support::graph_importer_body("x");
    let post = |csrf: Option<&str>| {
        let mut req = app
            .http
            .post(app.url("/api/v2/importers/email"))
            .header("cookie", &cookie)
            .json(&body);
        if let Some(csrf) = csrf {
            req = req.header("x-csrf-token", csrf);
        }
        req.send()
    };
    assert_eq!(post(None).await.expect("post").status(), 403);
    assert_eq!(post(Some("forged")).await.expect("post").status(), 403);
    assert!(
        app.store
            .list_importers(&app.client_id)
            .await
            .expect("q")
            .is_empty()
    );
    let session: serde_json::Value = app
        .http
        .get(app.url("/ui/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json");
    let csrf = session["csrf_token"].as_str().expect("csrf").to_owned();
    assert_eq!(post(Some(&csrf)).await.expect("post").status(), 201);
    // reading needs no CSRF token
    let list = app
        .http
        .get(app.url("/api/v2/importers/email"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(list.status(), 200);
}

/// The seed manual's story: Authenticate → Microsoft's own sign-in and
/// consent pages (the emulator's real HTML forms) → back to mailferry,
/// authorized → Mail connection test → folder picker.
#[tokio::test]
async fn the_seed_flow_authenticate_sign_in_and_test_the_connection() {
    let app = TestApp::spawn().await;
    admin(&app).await;
    let mut seed = msemu::Seed::demo();
    seed.tenants[0].apps[0]
        .redirect_uris
        .push(app.url("/api/v2/importers/email/authenticate/end"));
    let emu = start_emulator(seed, msemu::Options::default()).await;
    let created = app
        .post_json(
            "/api/v2/importers/email",
            &serde_json::json!({
                "name": "Invoices",
                "protocol": "graph_delegated",
                "client_id": msemu::demo::CLIENT_ID,
                "client_secret": msemu::demo::CLIENT_SECRET,
                "tenant_id": msemu::demo::TENANT_ID,
                "folders": { "inbox": "Inbox", "exported": "Exported", "error": "Error" },
                "endpoints": { "authority": emu.base_url(), "graph": emu.base_url() },
            }),
        )
        .await;
    assert_eq!(created.status(), 201);
    let id = crate::support::json(created).await["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let stdout = run_in_chromium(
        "seed_flow.mjs",
        &[
            ("BASE_URL", app.base_url.clone()),
            ("EMAIL", "admin@example.com".into()),
            ("PASSWORD", ADMIN_PASSWORD.into()),
            ("IMPORTER_ID", id.clone()),
            ("MS_USER", msemu::demo::ALICE.into()),
            ("MS_PASSWORD", msemu::demo::ALICE_PASSWORD.into()),
        ],
        &app.dir.path().join("seed-screenshots"),
    )
    .await;
    assert!(stdout.contains("seed: all steps passed"), "{stdout}");
    let grant = app
        .store
        .grant(&id)
        .await
        .expect("q")
        .expect("the grant was stored");
    assert_eq!(grant.account.as_deref(), Some(msemu::demo::ALICE));
    emu.shutdown().await;
}

/// Password guessing at the sign-in form is cut off after five failures
/// for an account, even with the right password, until the window passes.
#[tokio::test]
async fn repeated_failed_sign_ins_lock_the_account_for_a_while() {
    let app = TestApp::spawn().await;
    admin(&app).await;
    let sign_in = |password: &'static str| {
        app.http
            .post(app.url("/ui/login"))
            .form(&[("email", "admin@example.com"), ("password", password)])
            .send()
    };
    for _ in 0..5 {
        assert_eq!(sign_in("a wrong guess!").await.expect("post").status(), 401);
    }
    let refused = sign_in("correct horse battery staple").await.expect("post");
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().get("set-cookie").is_none());
    assert!(
        refused
            .text()
            .await
            .expect("body")
            .contains("try again in 15 minute(s)")
    );

    app.clock.advance(jiff::SignedDuration::from_mins(16));
    let accepted = sign_in("correct horse battery staple").await.expect("post");
    assert_eq!(accepted.status(), 303);
    assert!(accepted.headers().get("set-cookie").is_some());
}

/// `POST /api/v2/scripts/import-emails/run` for one importer on `base`,
/// then the execution, polled until it has ended.
async fn run_import_emails(app: &TestApp, base: &str, importer_id: &str) -> serde_json::Value {
    let started = app
        .http
        .post(format!("{base}/api/v2/scripts/import-emails/run"))
        .bearer_auth(&app.token)
        .json(&serde_json::json!({ "importer_id": importer_id }))
        .send()
        .await
        .expect("POST");
    assert_eq!(started.status(), 201, "the run starts");
    let id = crate::support::json(started).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let execution = crate::support::json(
            app.http
                .get(format!("{base}/api/v2/executions/{id}"))
                .bearer_auth(&app.token)
                .send()
                .await
                .expect("GET"),
        )
        .await;
        if execution["status"] != "running" {
            return execution;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not end within 60 s: {execution}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The importer's mails (`GET …/mails`) with this query.
async fn mails(app: &TestApp, importer_id: &str, query: &str) -> Vec<serde_json::Value> {
    let response = app
        .get(&format!(
            "/api/v2/importers/email/{importer_id}/mails?{query}"
        ))
        .await;
    assert_eq!(response.status(), 200);
    crate::support::json(response)
        .await
        .as_array()
        .expect("a list")
        .clone()
}

/// The subject of the newsletter: markup in it must be shown, not rendered.
const NEWSLETTER_SUBJECT: &str = "Fabrikam <b>Newsletter</b> & March invoice";

/// A newsletter (stopped by the importer's `*newsletter*` rule) with a PDF,
/// and a delivery note without any attachment (nothing to import).
fn error_mails() -> (Vec<u8>, Vec<u8>) {
    let newsletter = TestMail::new(NEWSLETTER_SUBJECT)
        .to(Some("Alice Example"), "alice@contoso.example")
        .message_id("<newsletter-3@fabrikam.example>")
        .text("Our news, and the March invoice attached.")
        .attach(
            "application/pdf",
            "invoice-march.pdf",
            b"%PDF-1.4\r\n% the March invoice of Fabrikam\r\n%%EOF",
        )
        .build();
    let note = TestMail::new("Delivery note 12")
        .from(Some("Contoso Logistics"), "logistics@contoso.com")
        .to(Some("Alice Example"), "alice@contoso.example")
        .date("2026-03-02T10:00:00Z")
        .message_id("<note-12@contoso.com>")
        .text("Delivered today, no paperwork attached.")
        .build();
    (newsletter, note)
}

/// The story in the browser: an importer's page lists its mails in
/// Error with their reasons; after the admin fixes the rule in the form and
/// presses Reprocess, the next import makes a document, and the Documents
/// page links that document to its mail. A Reprocess of a mail that is no
/// longer in Error shows the API's refusal.
#[tokio::test]
async fn an_admin_reprocesses_a_mail_in_error_and_follows_a_document_to_its_mail() {
    let app = TestApp::spawn().await;
    admin(&app).await;
    let base_url = app.base_url.clone();

    // the demo tenant with Alice's folders emptied, then the two mails
    let emu = empty_demo_emulator().await;
    let (newsletter, note) = error_mails();
    emu.add_message(msemu::demo::ALICE, "Inbox", &newsletter)
        .expect("add");
    emu.add_message(msemu::demo::ALICE, "Inbox", &note)
        .expect("add");

    let created = app
        .post_json(
            "/api/v2/importers/email",
            &serde_json::json!({
                "name": "Invoices",
                "protocol": "graph_client_credentials",
                "client_id": msemu::demo::DAEMON_CLIENT_ID,
                "client_secret": msemu::demo::DAEMON_CLIENT_SECRET,
                "tenant_id": msemu::demo::TENANT_ID,
                "mailbox": msemu::demo::ALICE,
                "folders": { "inbox": "Inbox", "exported": "Exported", "error": "Error" },
                "endpoints": { "authority": emu.base_url(), "graph": emu.base_url() },
                "rules": { "subject_block": ["*newsletter*"] },
            }),
        )
        .await;
    assert_eq!(created.status(), 201);
    let id = crate::support::json(created).await["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let run = run_import_emails(&app, &base_url, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let mut codes: Vec<String> = mails(&app, &id, "state=error")
        .await
        .iter()
        .map(|m| m["reason"]["code"].as_str().expect("a reason").to_owned())
        .collect();
    codes.sort();
    assert_eq!(codes, ["no_importable_attachment", "rule:subject_block"]);

    let started = std::time::Instant::now();
    let stdout = run_in_chromium(
        "mails_ui.mjs",
        &[
            ("BASE_URL", base_url.clone()),
            ("EMAIL", "admin@example.com".into()),
            ("PASSWORD", ADMIN_PASSWORD.into()),
            ("IMPORTER_ID", id.clone()),
            ("NEWSLETTER_SUBJECT", NEWSLETTER_SUBJECT.into()),
            ("NOTE_SUBJECT", "Delivery note 12".into()),
        ],
        &app.dir.path().join("mails-screenshots"),
    )
    .await;
    assert!(stdout.contains("mails: all steps passed"), "{stdout}");
    eprintln!("mails_ui.mjs took {:?}", started.elapsed());

    // what the browser did went through the API: the rule is gone, the
    // newsletter is a document, the note is in Error again
    let importers = app.store.list_importers(&app.client_id).await.expect("q");
    assert!(importers[0].settings.rules.subject_block.is_empty());
    let exported = mails(&app, &id, "state=exported").await;
    assert_eq!(exported.len(), 1, "{exported:?}");
    assert_eq!(exported[0]["subject"], NEWSLETTER_SUBJECT);
    let document_id = exported[0]["document_id"].as_str().expect("a document");
    let documents = crate::support::json(app.get("/api/v2/documents").await).await;
    assert_eq!(documents.as_array().expect("list").len(), 1, "{documents}");
    assert_eq!(documents[0]["document_id"], document_id);
    let errors = mails(&app, &id, "state=error").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["subject"], "Delivery note 12");
    let mut places: Vec<(String, String)> = emu
        .messages(msemu::demo::ALICE)
        .expect("messages")
        .into_iter()
        .map(|m| (m.subject, m.folder_path))
        .collect();
    places.sort();
    assert_eq!(
        places,
        [
            ("Delivery note 12".to_owned(), "Error".to_owned()),
            (NEWSLETTER_SUBJECT.to_owned(), "Exported".to_owned()),
        ]
    );
    emu.shutdown().await;
}

/// A 4×4 red PNG: the scan whose preview must show as an image.
const SCAN_PNG: [u8; 73] = [
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 4, 0, 0, 0, 4, 8, 2, 0,
    0, 0, 38, 147, 9, 41, 0, 0, 0, 16, 73, 68, 65, 84, 120, 156, 99, 248, 207, 192, 0, 71, 12, 196,
    113, 0, 174, 147, 15, 241, 208, 95, 35, 158, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];
const INVOICE_PDF: &[u8] = b"%PDF-1.4\r\n% invoice 4711 of Fabrikam\r\n%%EOF\r\n";

/// An app-only importer of `mailbox` on the emulator.
async fn app_only_importer(
    app: &TestApp,
    emu: &msemu::EmulatorHandle,
    name: &str,
    mailbox: &str,
) -> String {
    let created = app
        .post_json(
            "/api/v2/importers/email",
            &serde_json::json!({
                "name": name,
                "protocol": "graph_client_credentials",
                "client_id": msemu::demo::DAEMON_CLIENT_ID,
                "client_secret": msemu::demo::DAEMON_CLIENT_SECRET,
                "tenant_id": msemu::demo::TENANT_ID,
                "mailbox": mailbox,
                "folders": { "inbox": "Inbox", "exported": "Exported", "error": "Error" },
                "endpoints": { "authority": emu.base_url(), "graph": emu.base_url() },
                "rules": { "subject_block": ["*newsletter*"] },
            }),
        )
        .await;
    assert_eq!(created.status(), 201);
    crate::support::json(created).await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// A delegated importer with a stored grant.
async fn delegated_importer(app: &TestApp, name: &str, grant: store::grants::Grant) -> String {
    let created = app
        .post_json(
            "/api/v2/importers/email",
            &crate::support::graph_importer_body(name),
        )
        .await;
    assert_eq!(created.status(), 201);
    let id = crate::support::json(created).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.store
        .put_grant(&store::grants::Grant {
            importer_id: id.clone(),
            ..grant
        })
        .await
        .expect("grant");
    id
}

/// The admin's daily view (issue 15) in the browser: the overview's badges
/// for a healthy, a re-authentication-required and a throttled importer
/// (a real 429 from the emulator, recorded by the run), countdowns that
/// tick, the importer page's health, runs and dry run, document search,
/// preview and a download compared byte for byte, scripts run from their
/// parameter form, jobs added and deleted, executions filtered, the phone
/// layout, and axe-core on every page. The clock is the real one, so the
/// browser's countdowns agree with the server.
#[tokio::test]
async fn the_admins_daily_view_overview_documents_scripts_and_jobs_in_the_browser() {
    let app = TestApp::spawn_with(test_support::Db::Sqlite, jiff::Timestamp::now()).await;
    admin(&app).await;
    let now = app.clock_now();
    let emu = empty_demo_emulator().await;
    let invoice = TestMail::new("Invoice 4711")
        .message_id("<invoice-4711@fabrikam.example>")
        .attach("application/pdf", "invoice-4711.pdf", INVOICE_PDF)
        .build();
    let scan = TestMail::new("Scanned delivery note")
        .from(Some("Office Scanner"), "scanner@contoso.com")
        .date("2026-03-10T08:00:00Z")
        .message_id("<scan-1@contoso.com>")
        .attach("image/png", "scan.png", &SCAN_PNG)
        .build();
    emu.add_message(msemu::demo::ALICE, "Inbox", &invoice)
        .expect("add");
    emu.add_message(msemu::demo::ALICE, "Inbox", &scan)
        .expect("add");
    let invoices = app_only_importer(&app, &emu, "Invoices", msemu::demo::ALICE).await;
    let run = run_import_emails(&app, &app.base_url, &invoices).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    // What the next run would find: one to import, one the rule stops.
    let next = TestMail::new("Invoice 4712")
        .message_id("<invoice-4712@fabrikam.example>")
        .attach("application/pdf", "invoice-4712.pdf", b"%PDF-1.4\r\n%%EOF")
        .build();
    let newsletter = TestMail::new("Fabrikam newsletter")
        .message_id("<news-9@fabrikam.example>")
        .build();
    emu.add_message(msemu::demo::ALICE, "Inbox", &next)
        .expect("add");
    emu.add_message(msemu::demo::ALICE, "Inbox", &newsletter)
        .expect("add");

    // Bob's mailbox answers 429 with a Retry-After of 15 minutes, longer
    // than a run waits: the run fails for now, and records the throttle.
    emu.add_fault(msemu::FaultRule::mailbox(
        msemu::FaultKind::Throttle { retry_after: 900.0 },
        msemu::demo::BOB,
    ));
    let throttled = app_only_importer(&app, &emu, "Bob's receipts", msemu::demo::BOB).await;
    let run = run_import_emails(&app, &app.base_url, &throttled).await;
    assert_eq!(run["status"], "failed", "{run}");

    let grant = store::grants::Grant {
        importer_id: String::new(),
        state: store::grants::GrantState::ReauthRequired,
        account: Some("carol@contoso.com".into()),
        scopes: vec!["Mail.ReadWrite".into()],
        access_token: None,
        access_token_expires_at: None,
        refresh_token: None,
        refresh_token_issued_at: None,
        last_refresh_at: None,
        last_error: Some(
            "AADSTS700082: The refresh token has expired due to inactivity; press Authenticate"
                .into(),
        ),
        consecutive_failures: 1,
        version: 1,
        updated_at: now,
    };
    let revoked = delegated_importer(&app, "Shared mailbox", grant.clone()).await;
    // Signed in 85 days ago and never refreshed since: the refresh token
    // has five days left, which the page warns about.
    let idle_since = now - jiff::SignedDuration::from_hours(85 * 24);
    let idle = delegated_importer(
        &app,
        "Dave's mailbox",
        store::grants::Grant {
            state: store::grants::GrantState::Authorized,
            account: Some("dave@contoso.com".into()),
            access_token: Some(secrecy::SecretString::from("at")),
            access_token_expires_at: Some(now + jiff::SignedDuration::from_mins(30)),
            refresh_token: Some(secrecy::SecretString::from("rt")),
            refresh_token_issued_at: Some(idle_since),
            last_refresh_at: Some(idle_since),
            last_error: None,
            consecutive_failures: 0,
            ..grant
        },
    )
    .await;

    let original = app.dir.path().join("invoice-4711.pdf");
    std::fs::write(&original, INVOICE_PDF).expect("write");
    let shots = std::env::var("SCREENSHOT_DIR").map_or_else(
        |_| app.dir.path().join("daily-screenshots"),
        std::path::PathBuf::from,
    );
    let started = std::time::Instant::now();
    let stdout = run_in_chromium(
        "daily_view.mjs",
        &[
            ("BASE_URL", app.base_url.clone()),
            ("EMAIL", "admin@example.com".into()),
            ("PASSWORD", ADMIN_PASSWORD.into()),
            ("HEALTHY_ID", invoices.clone()),
            ("THROTTLED_ID", throttled.clone()),
            ("REVOKED_ID", revoked.clone()),
            ("IDLE_ID", idle.clone()),
            ("ORIGINAL_PDF", original.display().to_string()),
            (
                "AXE_PATH",
                format!("{UI_DIR}/node_modules/axe-core/axe.min.js"),
            ),
        ],
        &shots,
    )
    .await;
    eprintln!("daily_view.mjs took {:?}", started.elapsed());
    assert!(stdout.contains("daily: all steps passed"), "{stdout}");

    // What the browser did went through the API: the job it added is gone
    // again, and purge-documents ran with the form's parameter.
    let jobs = crate::support::json(app.get("/api/v2/jobs").await).await;
    assert!(
        !jobs.to_string().contains("0 3 * * 1"),
        "the added job was deleted: {jobs}"
    );
    let purges =
        crate::support::json(app.get("/api/v2/executions?script=purge-documents").await).await;
    assert_eq!(purges.as_array().expect("list").len(), 1, "{purges}");
    assert_eq!(purges[0]["params"]["retention_days"], 3650, "{purges}");
    assert_eq!(purges[0]["trigger"], "manual");
    emu.shutdown().await;
}

/// The real `mailferry demo` in Chromium: its first import (after
/// Authenticate at the emulated Microsoft) fills Exported and Error, and the
/// importer page shows each Error mail's reason in plain words.
#[tokio::test]
async fn the_demos_first_import_shows_exported_and_error_mails_with_reasons() {
    crate::support::install_crypto();
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, printed, _log) =
        crate::cli::spawn_demo(dir.path(), "127.0.0.1:0", "127.0.0.1:0");
    let field = |label: &str| crate::cli::printed_field(&printed, label);
    let stdout = run_in_chromium(
        "demo_ui.mjs",
        &[
            ("BASE_URL", field("Service:")),
            ("EMAIL", "admin@demo.example".into()),
            ("PASSWORD", "mailferry-demo-password".into()),
            ("IMPORTER_ID", field("Demo importer:")),
            ("MS_USER", msemu::demo::ALICE.into()),
            ("MS_PASSWORD", msemu::demo::ALICE_PASSWORD.into()),
        ],
        &dir.path().join("demo-screenshots"),
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(stdout.contains("demo: ok"), "{stdout}");
}
