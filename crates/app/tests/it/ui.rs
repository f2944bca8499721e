//! The admin UI in real headless Chromium (Debian's package), driven by
//! playwright-core from `crates/app/tests/ui/admin_ui.mjs`.

use std::process::Command;

use secrecy::SecretString;

use crate::support::TestApp;

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
    let stdout = run_in_chromium(
        "admin_ui.mjs",
        &[
            ("BASE_URL", app.base_url.clone()),
            ("EMAIL", "admin@example.com".into()),
            ("PASSWORD", ADMIN_PASSWORD.into()),
        ],
        &shots,
    )
    .await;
    assert!(stdout.contains("ui: all steps passed"), "{stdout}");

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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let emu = msemu::Emulator::start(seed, msemu::Options::default(), listener, None)
        .await
        .expect("emulator");
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
