//! The admin UI in real headless Chromium (Debian's package), driven by
//! playwright-core from `crates/app/tests/ui/admin_ui.mjs`.

use std::process::Command;

use secrecy::SecretString;

use crate::support::TestApp;

const UI_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui");

#[tokio::test]
async fn an_admin_signs_in_and_configures_an_importer_in_the_browser() {
    let app = TestApp::spawn().await;
    let password = "correct horse battery staple";
    app.store
        .create_user(
            &app.client_id,
            "admin@example.com",
            &SecretString::from(password.to_owned()),
            app.clock_now(),
        )
        .await
        .expect("user");
    assert!(
        std::path::Path::new(&format!("{UI_DIR}/node_modules/playwright-core")).exists(),
        "playwright-core is not installed: run scripts/install-test-deps.sh (npm ci in {UI_DIR})"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Chromium is not installed: run scripts/install-test-deps.sh (apt-get install chromium)"
    );
    let shots = app.dir.path().join("screenshots");
    std::fs::create_dir_all(&shots).expect("dir");
    let base_url = app.base_url.clone();
    let shots_dir = shots.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(format!("{UI_DIR}/admin_ui.mjs"))
            .env("BASE_URL", base_url)
            .env("EMAIL", "admin@example.com")
            .env("PASSWORD", password)
            .env("SCREENSHOT_DIR", shots_dir)
            .output()
            .expect("run node")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the UI run failed:\n{stdout}\n{stderr}"
    );
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
    if let Ok(keep) = std::env::var("MAILFERRY_KEEP_SCREENSHOTS") {
        let _ = std::fs::create_dir_all(&keep);
        for entry in std::fs::read_dir(&shots).expect("read").flatten() {
            let _ = std::fs::copy(
                entry.path(),
                std::path::Path::new(&keep).join(entry.file_name()),
            );
        }
    }
}

#[tokio::test]
async fn a_session_cookie_without_the_csrf_token_cannot_change_anything() {
    let app = TestApp::spawn().await;
    let user = app
        .store
        .create_user(
            &app.client_id,
            "admin@example.com",
            &SecretString::from("correct horse battery".to_owned()),
            app.clock_now(),
        )
        .await
        .expect("user");
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
