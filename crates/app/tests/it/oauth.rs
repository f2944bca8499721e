//! Microsoft authorization end to end, against the in-process Microsoft
//! emulator (msemu): sign-in with state + PKCE, the callback, refresh with
//! rotation, Microsoft's refusals with their fixes, the signed-in account
//! (a switch needs confirming, a mailbox it cannot open is `mailbox_denied`),
//! client credentials, and one Azure app registration shared by two clients.

use jiff::{SignedDuration, Timestamp};
use msemu::{EmulatorHandle, Seed, demo};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::support::{Db, TestApp, json, location, mailferry_bin, run_script, start_emulator};

const CALLBACK: &str = "/api/v2/importers/email/authenticate/end";
const CONFIRM: &str = "/api/v2/importers/email/authenticate/confirm";

/// The demo tenant, whose mailferry app also accepts `redirect_uris`.
async fn emulator(redirect_uris: &[String], tweak: impl FnOnce(&mut Seed)) -> EmulatorHandle {
    let mut seed = Seed::demo();
    seed.tenants[0].apps[0]
        .redirect_uris
        .extend(redirect_uris.iter().cloned());
    tweak(&mut seed);
    let options = msemu::Options {
        auto_consent: true,
        ..msemu::Options::default()
    };
    start_emulator(seed, options).await
}

fn importer_body(emu: &EmulatorHandle, name: &str, mailbox: Option<&str>) -> Value {
    json!({
        "name": name,
        "protocol": "graph_delegated",
        "client_id": demo::CLIENT_ID,
        "client_secret": demo::CLIENT_SECRET,
        "tenant_id": demo::TENANT_ID,
        "mailbox": mailbox.unwrap_or(""),
        "folders": { "inbox": "Inbox", "exported": "Exported", "error": "Error" },
        "cloud": "global",
        "endpoints": { "authority": emu.base_url(), "graph": emu.base_url() },
    })
}

async fn create_importer_as(app: &TestApp, token: &str, body: &Value) -> String {
    let response = app
        .http
        .post(app.url("/api/v2/importers/email"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("POST importer");
    assert_eq!(response.status(), StatusCode::CREATED);
    json(response).await["id"].as_str().expect("id").to_owned()
}

/// Press Authenticate and follow the redirects like a browser; with the
/// emulator's auto-consent, `login_hint` signs that user in. Returns the
/// callback URL Microsoft sent the browser to.
async fn authorize_at_microsoft(app: &TestApp, token: &str, importer: &str, user: &str) -> String {
    let start = app
        .http
        .get(app.url(&format!(
            "/api/v2/importers/email/{importer}/authenticate?login_hint={user}"
        )))
        .bearer_auth(token)
        .send()
        .await
        .expect("authenticate");
    assert_eq!(
        start.status(),
        StatusCode::FOUND,
        "authenticate redirects to Microsoft"
    );
    let authorize = location(&start);
    let at_microsoft = app.http.get(&authorize).send().await.expect("authorize");
    assert!(
        at_microsoft.status().is_redirection(),
        "the emulator redirects back with a code: {}",
        at_microsoft.text().await.unwrap_or_default()
    );
    location(&at_microsoft)
}

/// The callback, as the browser would open it (no API token).
async fn callback(app: &TestApp, url: &str) -> (StatusCode, String) {
    let response = app.http.get(url).send().await.expect("callback");
    (response.status(), response.text().await.expect("page"))
}

async fn sign_in(app: &TestApp, token: &str, importer: &str, user: &str) -> (StatusCode, String) {
    let url = authorize_at_microsoft(app, token, importer, user).await;
    callback(app, &url).await
}

/// The confirmation token in a "Confirm the account change" page's form.
fn confirmation_token(page: &str) -> String {
    let (_, rest) = page
        .split_once("name=\"token\" value=\"")
        .unwrap_or_else(|| panic!("no confirmation form: {page}"));
    rest.split('"').next().expect("value").to_owned()
}

async fn grant_version(app: &TestApp, importer: &str) -> i64 {
    let grant = app.store.grant(importer).await.expect("read");
    grant.expect("grant").version
}

/// Presses "Switch to …", as the browser would post the form (no API token).
async fn confirm_switch(app: &TestApp, token: &str) -> (StatusCode, String) {
    let response = app
        .http
        .post(app.url(CONFIRM))
        .form(&[("token", token)])
        .send()
        .await
        .expect("confirm");
    (response.status(), response.text().await.expect("page"))
}

async fn status_of(app: &TestApp, token: &str, importer: &str) -> Value {
    let response = app
        .http
        .get(app.url(&format!("/api/v2/importers/email/{importer}/status")))
        .bearer_auth(token)
        .send()
        .await
        .expect("status");
    assert_eq!(response.status(), StatusCode::OK);
    json(response).await
}

/// Runs `refresh-tokens` in-process for the default client.
async fn run_refresh_tokens(app: &TestApp) -> (Result<(), String>, Vec<String>) {
    run_script(app, &grants::RefreshTokens::new()).await
}

/// Moves both clocks: mailferry's (pinned) and the emulator's.
fn advance(app: &TestApp, emu: &EmulatorHandle, by: SignedDuration) {
    app.clock.advance(by);
    emu.advance_clock(by);
}

/// A refresh-token grant sent straight to the emulator, as an attacker
/// holding an old token would.
async fn redeem_refresh_token(
    app: &TestApp,
    emu: &EmulatorHandle,
    refresh_token: &str,
) -> (StatusCode, Value) {
    let response = app
        .http
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            emu.base_url(),
            demo::TENANT_ID
        ))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", demo::CLIENT_ID),
            ("client_secret", demo::CLIENT_SECRET),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .expect("token request");
    (response.status(), response.json().await.expect("JSON"))
}

async fn graph_me(app: &TestApp, emu: &EmulatorHandle, token: &str) -> StatusCode {
    app.http
        .get(format!("{}/v1.0/me", emu.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET /me")
        .status()
}

#[tokio::test]
async fn sign_in_then_refresh_rotates_and_the_old_refresh_token_dies() {
    full_flow(Db::Sqlite).await;
}

#[tokio::test]
async fn sign_in_then_refresh_rotates_on_postgres_too() {
    full_flow(Db::Postgres).await;
}

async fn full_flow(db: Db) {
    let app = TestApp::spawn_with(db, "2026-03-29T00:30:00Z".parse().expect("ts")).await;
    let emu = emulator(&[app.url(CALLBACK)], |_| {}).await;
    let id = create_importer_as(&app, &app.token, &importer_body(&emu, "Invoices", None)).await;
    assert_eq!(
        status_of(&app, &app.token, &id).await["auth"]["state"],
        "unauthenticated"
    );

    let (code, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert!(page.contains("mailferry is authorized"), "{page}");
    assert!(page.contains(demo::ALICE), "{page}");
    let status = status_of(&app, &app.token, &id).await;
    assert_eq!(status["auth"]["state"], "authorized");
    assert_eq!(status["auth"]["account"], demo::ALICE);
    assert_eq!(status["auth"]["last_error"], Value::Null);
    // Emulator tokens live 75 minutes, counted from mailferry's clock.
    assert_eq!(
        status["auth"]["access_token_expires_at"],
        "2026-03-29T01:45:00Z"
    );
    assert!(status["last_import"].is_null());
    let first = app.store.grant(&id).await.expect("grant").expect("stored");
    let old_access = first.access_token.clone().expect("access token");
    let old_refresh = first.refresh_token.clone().expect("refresh token");
    assert!(
        first.scopes.iter().any(|s| s == "Mail.ReadWrite"),
        "{:?}",
        first.scopes
    );

    // Not due yet: nothing happens.
    let (result, lines) = run_refresh_tokens(&app).await;
    result.expect("refresh-tokens succeeds");
    assert!(lines.iter().any(|l| l.contains("not due")), "{lines:?}");

    // The access token expires (both clocks move past it).
    advance(&app, &emu, SignedDuration::from_mins(76));
    assert_eq!(
        graph_me(&app, &emu, old_access.expose_secret()).await,
        StatusCode::UNAUTHORIZED
    );
    let (result, lines) = run_refresh_tokens(&app).await;
    result.expect("refresh-tokens succeeds");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Invoices") && l.contains("refreshed")),
        "{lines:?}"
    );

    let second = app.store.grant(&id).await.expect("grant").expect("stored");
    let new_refresh = second.refresh_token.clone().expect("refresh token");
    assert_ne!(
        new_refresh.expose_secret(),
        old_refresh.expose_secret(),
        "rotated"
    );
    assert!(second.version > first.version);
    assert_eq!(second.last_refresh_at, Some(app.clock_now()));
    assert_eq!(
        second.access_token_expires_at,
        Some(
            app.clock_now()
                .checked_add(SignedDuration::from_mins(75))
                .expect("ts")
        )
    );
    let new_access = second.access_token.clone().expect("access token");
    assert_eq!(
        graph_me(&app, &emu, new_access.expose_secret()).await,
        StatusCode::OK
    );

    // The old refresh token no longer works at Microsoft (strict rotation);
    // the stored new one does.
    let (code, body) = redeem_refresh_token(&app, &emu, old_refresh.expose_secret()).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    let status = status_of(&app, &app.token, &id).await;
    assert_eq!(status["auth"]["state"], "authorized");
    assert_eq!(
        status["auth"]["last_refresh_at"],
        app.clock_now().to_string()
    );
    emu.shutdown().await;
}

/// A delegated app with a certificate instead of a secret: the code
/// exchange and every refresh carry a client assertion the emulator checks
/// against the uploaded certificate (made by the `openssl` tool).
#[tokio::test]
async fn a_delegated_app_signs_in_and_refreshes_with_a_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "k.pem",
            "-out",
            "c.pem",
            "-days",
            "30",
            "-subj",
            "/CN=mailferry delegated",
        ])
        .current_dir(dir.path())
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).expect("pem");
    let (key, cert) = (read("k.pem"), read("c.pem"));
    let app = TestApp::spawn().await;
    // An assertion carries mailferry's time, checked against Microsoft's.
    app.clock.set(Timestamp::now());
    let pem = cert.clone();
    let emu = emulator(&[app.url(CALLBACK)], move |seed| {
        seed.tenants[0].apps[0]
            .certificates
            .push(msemu::SeedCertificate { pem });
    })
    .await;
    let mut body = importer_body(&emu, "Certified", None);
    let body_map = body.as_object_mut().expect("object");
    body_map.remove("client_secret");
    body_map.insert("client_certificate_pem".into(), json!(cert));
    body_map.insert("client_private_key_pem".into(), json!(key));
    let id = create_importer_as(&app, &app.token, &body).await;

    let (code, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert!(page.contains("mailferry is authorized"), "{page}");

    advance(&app, &emu, SignedDuration::from_mins(76));
    let (result, lines) = run_refresh_tokens(&app).await;
    result.expect("refresh-tokens succeeds");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Certified") && l.contains("refreshed")),
        "{lines:?}"
    );
    assert_eq!(
        status_of(&app, &app.token, &id).await["auth"]["state"],
        "authorized"
    );
}

#[tokio::test]
async fn overlapping_refreshes_never_lose_the_rotated_token() {
    overlapping_refreshes(Db::Sqlite).await;
}

#[tokio::test]
async fn overlapping_refreshes_never_lose_the_rotated_token_on_postgres() {
    overlapping_refreshes(Db::Postgres).await;
}

async fn overlapping_refreshes(db: Db) {
    let app = TestApp::spawn_with(db, "2026-03-29T00:30:00Z".parse().expect("ts")).await;
    let emu = emulator(&[app.url(CALLBACK)], |_| {}).await;
    let id = create_importer_as(&app, &app.token, &importer_body(&emu, "Invoices", None)).await;
    let (code, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    advance(&app, &emu, SignedDuration::from_mins(70));

    let (a, b) = tokio::join!(run_refresh_tokens(&app), run_refresh_tokens(&app));
    a.0.expect("first run succeeds");
    b.0.expect("second run succeeds");
    let all: Vec<String> = a.1.into_iter().chain(b.1).collect();
    assert_eq!(
        all.iter()
            .filter(|l| l.contains("Invoices") && l.contains(": refreshed;"))
            .count(),
        1,
        "exactly one run spends the refresh token: {all:?}"
    );
    // Whatever the interleaving, the stored refresh token is the newest one:
    // Microsoft (strict rotation) accepts it.
    let grant = app.store.grant(&id).await.expect("grant").expect("stored");
    assert_eq!(grant.consecutive_failures, 0);
    let rt = grant.refresh_token.expect("refresh token");
    let (code, body) = redeem_refresh_token(&app, &emu, rt.expose_secret()).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_revoked_grant_becomes_reauth_required_with_the_reason() {
    let app = TestApp::spawn().await;
    let emu = emulator(&[app.url(CALLBACK)], |_| {}).await;
    let id = create_importer_as(&app, &app.token, &importer_body(&emu, "Invoices", None)).await;
    let (code, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    assert_eq!(code, StatusCode::OK, "{page}");

    emu.revoke_refresh_tokens(demo::ALICE).expect("revoke");
    advance(&app, &emu, SignedDuration::from_mins(70));
    let (result, lines) = run_refresh_tokens(&app).await;
    let err = result.expect_err("the run fails so the admin notices");
    assert!(err.contains("could not be refreshed"), "{err}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("reauth_required") && l.contains("AADSTS50173")),
        "{lines:?}"
    );

    let status = status_of(&app, &app.token, &id).await;
    assert_eq!(status["auth"]["state"], "reauth_required");
    let reason = status["auth"]["last_error"].as_str().expect("reason");
    assert!(reason.contains("AADSTS50173"), "{reason}");
    assert!(reason.contains("revoked"), "Microsoft's words: {reason}");
    assert!(
        reason.contains("press Authenticate and sign in again"),
        "the fix: {reason}"
    );
    let importer = json(app.get(&format!("/api/v2/importers/email/{id}")).await).await;
    assert_eq!(importer["authentication_required"], true);

    // Signing in again heals it.
    let (code, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert_eq!(
        status_of(&app, &app.token, &id).await["auth"]["state"],
        "authorized"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_wrong_client_secret_shows_microsofts_message_and_the_fix() {
    let app = TestApp::spawn().await;
    let emu = emulator(&[app.url(CALLBACK)], |_| {}).await;
    let mut body = importer_body(&emu, "Invoices", None);
    body["client_secret"] = json!("the-secret-ID-not-its-value");
    let id = create_importer_as(&app, &app.token, &body).await;
    let (code, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("AADSTS7000215"), "{page}");
    assert!(
        page.contains("Invalid client secret provided"),
        "Microsoft's message: {page}"
    );
    assert!(
        page.contains("Certificates &#38; secrets"),
        "the fix: {page}"
    );
    assert!(
        page.contains("Value (not its Secret ID)"),
        "the fix: {page}"
    );
    assert_eq!(
        status_of(&app, &app.token, &id).await["auth"]["state"],
        "unauthenticated"
    );
    assert!(
        app.store.grant(&id).await.expect("read").is_none(),
        "nothing stored"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn missing_consent_for_a_shared_mailbox_says_who_must_consent() {
    let app = TestApp::spawn().await;
    let emu = emulator(&[app.url(CALLBACK)], |_| {}).await;
    let body = importer_body(&emu, "Invoices", None);
    let id = create_importer_as(&app, &app.token, &body).await;
    let (code, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    assert_eq!(code, StatusCode::OK, "{page}");

    // Point the importer at the shared mailbox: the grant survives the save
    // (the save asks for authentication), but alice never consented to
    // Mail.ReadWrite.Shared.
    let mut shared = body.clone();
    shared["mailbox"] = json!(demo::SHARED);
    shared
        .as_object_mut()
        .expect("object")
        .remove("client_secret");
    let saved = app
        .put_json(&format!("/api/v2/importers/email/{id}"), &shared)
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    assert_eq!(json(saved).await["authentication_required"], true);

    advance(&app, &emu, SignedDuration::from_mins(70));
    let (result, _) = run_refresh_tokens(&app).await;
    result.expect_err("refresh refused");
    let status = status_of(&app, &app.token, &id).await;
    assert_eq!(status["auth"]["state"], "reauth_required");
    let reason = status["auth"]["last_error"].as_str().expect("reason");
    assert!(reason.contains("AADSTS65001"), "{reason}");
    assert!(
        reason.contains("has not consented"),
        "Microsoft's words: {reason}"
    );
    assert!(
        reason.contains("Mail.ReadWrite.Shared"),
        "which permission: {reason}"
    );
    assert!(
        reason.contains("tenant administrator grant admin consent"),
        "who consents: {reason}"
    );

    // Signing in again asks for the shared permission; alice has full access.
    let (code, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert!(!page.contains("cannot open"), "{page}");
    let grant = app.store.grant(&id).await.expect("read").expect("grant");
    assert!(
        grant.scopes.iter().any(|s| s == "Mail.ReadWrite.Shared"),
        "{:?}",
        grant.scopes
    );
    emu.shutdown().await;
}

/// A shared mailbox the signed-in account has no Full Access to: the grant
/// is kept (its tokens are fine and kept fresh) but reported as
/// `mailbox_denied` with the fix, never as `authorized`.
#[tokio::test]
async fn the_wrong_account_is_named_plainly() {
    let app = TestApp::spawn().await;
    let emu = emulator(&[app.url(CALLBACK)], |_| {}).await;
    let id = create_importer_as(
        &app,
        &app.token,
        &importer_body(&emu, "Invoices", Some(demo::SHARED)),
    )
    .await;
    // bob has no access to the shared mailbox.
    let (code, page) = sign_in(&app, &app.token, &id, demo::BOB).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert!(page.contains("cannot open the mailbox"), "{page}");
    assert!(!page.contains("mailferry is authorized"), "{page}");
    assert!(
        page.contains(&format!(
            "{} cannot open the mailbox {}",
            demo::BOB,
            demo::SHARED
        )),
        "{page}"
    );
    let status = status_of(&app, &app.token, &id).await;
    assert_eq!(status["auth"]["state"], "mailbox_denied");
    assert_eq!(status["auth"]["account"], demo::BOB);
    let reason = status["auth"]["last_error"].as_str().expect("reason");
    assert!(
        reason.contains("ErrorAccessDenied"),
        "Graph's answer: {reason}"
    );
    assert!(
        reason.contains(&format!(
            "Fix: sign in (press Authenticate) as a user with Full Access to {}",
            demo::SHARED
        )),
        "the fix: {reason}"
    );
    let importer = json(app.get(&format!("/api/v2/importers/email/{id}")).await).await;
    assert_eq!(importer["authentication_required"], true);

    // Its tokens are valid: handed out on demand (the connection test needs
    // one to say what is wrong), refreshed by the script, and the grant
    // stays denied with its reason.
    let record = app
        .store
        .importer(&app.client_id, &id)
        .await
        .expect("read")
        .expect("importer");
    let tokens = grants::AccessTokens::new(microsoft::entra::HttpClient::new().expect("http"));
    let token = tokens
        .for_importer(&app.store, app.clock.as_ref(), &record)
        .await
        .expect("a token for a denied mailbox");
    assert_eq!(
        graph_me(&app, &emu, token.expose_secret()).await,
        StatusCode::OK
    );
    advance(&app, &emu, SignedDuration::from_mins(70));
    let (result, lines) = run_refresh_tokens(&app).await;
    result.expect("refresh-tokens succeeds");
    assert!(
        lines.iter().any(|l| l.contains(": refreshed;")),
        "{lines:?}"
    );
    let status = status_of(&app, &app.token, &id).await;
    assert_eq!(status["auth"]["state"], "mailbox_denied", "{status}");
    assert_eq!(status["auth"]["last_error"], reason);
    assert_eq!(
        status["auth"]["last_refresh_at"],
        app.clock_now().to_string()
    );

    // alice has Full Access. The mailbox is fixed by the settings, so
    // another account is simply stored: nothing to confirm.
    let (code, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert!(page.contains("mailferry is authorized"), "{page}");
    let status = status_of(&app, &app.token, &id).await;
    assert_eq!(status["auth"]["state"], "authorized");
    assert_eq!(status["auth"]["account"], demo::ALICE);
    assert_eq!(status["auth"]["last_error"], Value::Null);
    emu.shutdown().await;
}

/// An importer of its user's own mailbox reads whoever signs in: another
/// account replaces the authorized one only after a second click.
#[tokio::test]
async fn another_account_takes_over_an_own_mailbox_only_when_confirmed() {
    let app = TestApp::spawn().await;
    let emu = emulator(&[app.url(CALLBACK)], |_| {}).await;
    let body = importer_body(&emu, "Invoices", None);
    let id = create_importer_as(&app, &app.token, &body).await;
    let (code, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    let alice_version = grant_version(&app, &id).await;

    // The same account again is stored at once, as always.
    let (code, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert!(page.contains("mailferry is authorized"), "{page}");
    assert!(grant_version(&app, &id).await > alice_version);
    let alice_version = grant_version(&app, &id).await;

    // The browser was signed in as bob.
    let (code, page) = sign_in(&app, &app.token, &id, demo::BOB).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert!(
        page.contains("<h1>Confirm the account change</h1>"),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "This importer was authorized as {}; you signed in as {}. mailferry would read {}&#39;s mailbox from now on.",
            demo::ALICE,
            demo::BOB,
            demo::BOB
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!("<form method=\"post\" action=\"{CONFIRM}\">")),
        "{page}"
    );
    assert!(page.contains(&format!("Switch to {}", demo::BOB)), "{page}");
    assert!(
        page.contains(&format!(
            "href=\"/ui/#/importers/{id}\">Keep {}</a>",
            demo::ALICE
        )),
        "{page}"
    );
    let token = confirmation_token(&page);
    // Nothing changed yet.
    let status = status_of(&app, &app.token, &id).await;
    assert_eq!(status["auth"]["state"], "authorized");
    assert_eq!(status["auth"]["account"], demo::ALICE);
    assert_eq!(grant_version(&app, &id).await, alice_version);

    // The second click switches.
    let (code, page) = confirm_switch(&app, &token).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert!(page.contains("mailferry is authorized"), "{page}");
    assert!(page.contains(demo::BOB), "{page}");
    let status = status_of(&app, &app.token, &id).await;
    assert_eq!(status["auth"]["state"], "authorized");
    assert_eq!(status["auth"]["account"], demo::BOB);
    let bob_version = grant_version(&app, &id).await;
    assert!(bob_version > alice_version);
    let grant = app.store.grant(&id).await.expect("read").expect("grant");
    let bobs_token = grant.access_token.expect("access token");
    assert_eq!(
        graph_me(&app, &emu, bobs_token.expose_secret()).await,
        StatusCode::OK
    );

    // Once only: a repeated post changes nothing.
    let (code, page) = confirm_switch(&app, &token).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("already used"), "{page}");
    assert_eq!(grant_version(&app, &id).await, bob_version);
    // Nor does a forged token, or none.
    let (code, page) = confirm_switch(&app, &format!("{token}x")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("confirmation is unknown"), "{page}");
    let (code, page) = confirm_switch(&app, "").await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("no confirmation token"), "{page}");

    // Too late: 10 minutes to decide.
    let (_, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    let late = confirmation_token(&page);
    app.clock.advance(SignedDuration::from_mins(11));
    let (code, page) = confirm_switch(&app, &late).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("expired"), "{page}");

    // The importer was pointed at a shared mailbox meanwhile: the question
    // no longer applies.
    let (_, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    let stale = confirmation_token(&page);
    let mut shared = body.clone();
    shared["mailbox"] = json!(demo::SHARED);
    shared
        .as_object_mut()
        .expect("object")
        .remove("client_secret");
    let saved = app
        .put_json(&format!("/api/v2/importers/email/{id}"), &shared)
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let (code, page) = confirm_switch(&app, &stale).await;
    assert_eq!(code, StatusCode::CONFLICT, "{page}");
    assert!(
        page.contains(&format!("now reads the mailbox {}", demo::SHARED)),
        "{page}"
    );
    let status = status_of(&app, &app.token, &id).await;
    assert_eq!(status["auth"]["account"], demo::BOB);
    assert_eq!(grant_version(&app, &id).await, bob_version);
    emu.shutdown().await;
}

/// Moving from the user's own mailbox to a shared one keeps the grant, but
/// the save asks for authentication: the grant lacks Mail.ReadWrite.Shared.
#[tokio::test]
async fn moving_to_a_shared_mailbox_asks_for_the_shared_permission() {
    let app = TestApp::spawn().await;
    let emu = emulator(&[app.url(CALLBACK)], |_| {}).await;
    let body = importer_body(&emu, "Invoices", None);
    let id = create_importer_as(&app, &app.token, &body).await;
    let (code, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    assert_eq!(code, StatusCode::OK, "{page}");

    let mut shared = body.clone();
    shared["mailbox"] = json!(demo::SHARED);
    shared
        .as_object_mut()
        .expect("object")
        .remove("client_secret");
    let saved = app
        .put_json(&format!("/api/v2/importers/email/{id}"), &shared)
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let saved = json(saved).await;
    assert_eq!(saved["authentication_required"], true, "{saved}");
    let notice = saved["authentication_notice"].as_str().expect("notice");
    assert!(
        notice.contains(&format!(
            "the shared mailbox {} needs the permission Mail.ReadWrite.Shared",
            demo::SHARED
        )),
        "{notice}"
    );
    assert!(notice.contains("press Authenticate"), "{notice}");
    assert!(
        app.store.grant(&id).await.expect("read").is_some(),
        "the grant is kept"
    );
    let view = json(app.get(&format!("/api/v2/importers/email/{id}")).await).await;
    assert_eq!(view["authentication_required"], true);

    // Signing in again for the shared mailbox grants it.
    let (code, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    let view = json(app.get(&format!("/api/v2/importers/email/{id}")).await).await;
    assert_eq!(view["authentication_required"], false);
    let saved = json(
        app.put_json(&format!("/api/v2/importers/email/{id}"), &shared)
            .await,
    )
    .await;
    assert_eq!(saved["authentication_required"], false, "{saved}");
    assert!(saved.get("authentication_notice").is_none(), "{saved}");
    emu.shutdown().await;
}

#[tokio::test]
async fn an_unknown_tenant_is_reported_before_leaving_for_microsoft() {
    let app = TestApp::spawn().await;
    let emu = emulator(&[app.url(CALLBACK)], |_| {}).await;
    let mut body = importer_body(&emu, "Invoices", None);
    body["tenant_id"] = json!("nowhere.example");
    let id = create_importer_as(&app, &app.token, &body).await;
    let response = app
        .get(&format!("/api/v2/importers/email/{id}/authenticate"))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem = json(response).await;
    let detail = problem["detail"].as_str().expect("detail");
    assert!(detail.contains("AADSTS90002"), "{detail}");
    assert!(
        detail.contains("Tenant 'nowhere.example' not found"),
        "Microsoft's words: {detail}"
    );
    assert!(detail.contains("check the tenant id"), "the fix: {detail}");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_redirect_uri_mismatch_shows_the_exact_uri_to_register() {
    let app = TestApp::spawn().await;
    // The app registration lacks this installation's redirect URI.
    let emu = emulator(&[], |_| {}).await;
    let id = create_importer_as(&app, &app.token, &importer_body(&emu, "Invoices", None)).await;
    let start = app
        .get(&format!("/api/v2/importers/email/{id}/authenticate"))
        .await;
    assert_eq!(start.status(), StatusCode::FOUND);
    // Microsoft shows its own page and never comes back to us…
    let page = app
        .http
        .get(location(&start))
        .send()
        .await
        .expect("authorize");
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    let page = page.text().await.expect("page");
    assert!(page.contains("AADSTS50011"), "{page}");
    let expected = app.url(CALLBACK);
    assert!(page.contains(&expected), "Microsoft names the URI: {page}");
    // …so the importer always shows the exact URI to register.
    let importer = json(app.get(&format!("/api/v2/importers/email/{id}")).await).await;
    assert_eq!(importer["redirect_uri"], expected);
    let fix = microsoft::entra::Diagnosis::RedirectUriMismatch.fix(&microsoft::entra::FixContext {
        certificate: false,
        redirect_uri: &expected,
        client_id: demo::CLIENT_ID,
        tenant: demo::TENANT_ID,
        permissions: &[],
    });
    assert!(fix.ends_with(&expected), "{fix}");
    emu.shutdown().await;
}

#[tokio::test]
async fn tampered_replayed_and_expired_states_are_refused() {
    let app = TestApp::spawn().await;
    let emu = emulator(&[app.url(CALLBACK)], |_| {}).await;
    let id = create_importer_as(&app, &app.token, &importer_body(&emu, "Invoices", None)).await;

    // Tampered: a state mailferry never issued.
    let url = authorize_at_microsoft(&app, &app.token, &id, demo::ALICE).await;
    let mut tampered = reqwest::Url::parse(&url).expect("url");
    let pairs: Vec<(String, String)> = tampered
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                format!("{v}x")
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);
    let (code, page) = callback(&app, tampered.as_str()).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(page.contains("the `state` is unknown"), "{page}");
    let (code, page) = callback(&app, &app.url(&format!("{CALLBACK}?code=abc"))).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(page.contains("no `state`"), "{page}");
    assert!(
        app.store.grant(&id).await.expect("read").is_none(),
        "nothing stored"
    );

    // Valid once, then a replay changes nothing.
    let (code, page) = callback(&app, &url).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    let version = app
        .store
        .grant(&id)
        .await
        .expect("read")
        .expect("grant")
        .version;
    let (code, page) = callback(&app, &url).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(page.contains("already used"), "{page}");
    assert_eq!(
        app.store
            .grant(&id)
            .await
            .expect("read")
            .expect("grant")
            .version,
        version
    );

    // Expired: finished 11 minutes after Authenticate.
    let other = create_importer_as(&app, &app.token, &importer_body(&emu, "Second", None)).await;
    let url = authorize_at_microsoft(&app, &app.token, &other, demo::ALICE).await;
    app.clock.advance(SignedDuration::from_mins(11));
    let (code, page) = callback(&app, &url).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(page.contains("expired"), "{page}");
    assert!(
        app.store.grant(&other).await.expect("read").is_none(),
        "nothing stored"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn microsofts_refusal_on_the_callback_is_shown_with_the_fix() {
    let app = TestApp::spawn().await;
    let emu = emulator(&[app.url(CALLBACK)], |_| {}).await;
    let id = create_importer_as(&app, &app.token, &importer_body(&emu, "Invoices", None)).await;
    let url = authorize_at_microsoft(&app, &app.token, &id, demo::ALICE).await;
    let state = reqwest::Url::parse(&url)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    // What Microsoft sends when the user declines consent.
    let mut refused = reqwest::Url::parse(&app.url(CALLBACK)).expect("url");
    refused
        .query_pairs_mut()
        .append_pair("error", "access_denied")
        .append_pair("error_description", "AADSTS65004: User declined to consent to access the app.\r\nTrace ID: 1\r\nCorrelation ID: 2\r\nTimestamp: 2026-03-29 00:30:00Z")
        .append_pair("state", &state);
    let (code, page) = callback(&app, refused.as_str()).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(page.contains("access_denied"), "{page}");
    assert!(page.contains("AADSTS65004"), "{page}");
    assert!(
        page.contains("User declined to consent to access the app."),
        "{page}"
    );
    assert!(!page.contains("Trace ID"), "the trailer is dropped: {page}");
    assert!(page.contains("grant admin consent"), "the fix: {page}");
    assert!(app.store.grant(&id).await.expect("read").is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn pkce_is_verified_by_microsoft() {
    crate::support::install_crypto();
    let app = TestApp::spawn().await;
    let emu = emulator(&[app.url(CALLBACK)], |_| {}).await;
    let id = create_importer_as(&app, &app.token, &importer_body(&emu, "Invoices", None)).await;
    let record = app
        .store
        .importer(&app.client_id, &id)
        .await
        .expect("read")
        .expect("importer");
    let graph = record.settings.graph().expect("graph");
    let http = microsoft::entra::HttpClient::new().expect("http");
    let access = domain::importer::DelegatedAccess::Graph {
        shared_mailbox: false,
    };
    let identity = microsoft::entra::IdentityClient::new(
        http,
        &graph.app,
        Some(secrecy::SecretString::from(demo::CLIENT_SECRET)),
    );
    let redirect = app.url(CALLBACK);
    let request = identity
        .authorize_url(&redirect, access, Some(demo::ALICE))
        .expect("url");
    assert!(
        request.url.contains("code_challenge_method=S256"),
        "{}",
        request.url
    );
    assert!(
        request.url.contains("prompt=select_account"),
        "{}",
        request.url
    );
    assert!(
        request
            .url
            .contains("https%3A%2F%2Fgraph.microsoft.com%2FMail.ReadWrite"),
        "{}",
        request.url
    );
    let back = app.http.get(&request.url).send().await.expect("authorize");
    let code = reqwest::Url::parse(&location(&back))
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let wrong = secrecy::SecretString::from("a-verifier-that-does-not-match-the-challenge-at-all");
    let err = identity
        .exchange_code(&code, &wrong, &redirect, access, app.clock_now())
        .await
        .expect_err("a wrong verifier is refused");
    assert_eq!(
        err.microsoft().and_then(|m| m.aadsts()),
        Some(501481),
        "{err}"
    );
    let tokens = identity
        .exchange_code(
            &code,
            &request.pkce_verifier,
            &redirect,
            access,
            app.clock_now(),
        )
        .await
        .expect("the right verifier works");
    assert!(tokens.refresh_token.is_some());
    emu.shutdown().await;
}

#[tokio::test]
async fn client_credentials_are_cached_and_renewed_after_expiry() {
    let app = TestApp::spawn().await;
    let emu = emulator(&[], |_| {}).await;
    let mut body = importer_body(&emu, "Daemon", Some(demo::ALICE));
    body["protocol"] = json!("graph_client_credentials");
    body["client_id"] = json!(demo::DAEMON_CLIENT_ID);
    body["client_secret"] = json!(demo::DAEMON_CLIENT_SECRET);
    let id = create_importer_as(&app, &app.token, &body).await;
    assert_eq!(
        status_of(&app, &app.token, &id).await["auth"]["state"],
        "not_applicable"
    );
    let record = app
        .store
        .importer(&app.client_id, &id)
        .await
        .expect("read")
        .expect("importer");
    let tokens = grants::AccessTokens::new(microsoft::entra::HttpClient::new().expect("http"));
    let token_requests = || emu.counters().endpoints.get("token").copied().unwrap_or(0);

    let first = tokens
        .for_importer(&app.store, app.clock.as_ref(), &record)
        .await
        .expect("token");
    assert_eq!(token_requests(), 1);
    let me = app
        .http
        .get(format!(
            "{}/v1.0/users/{}/mailFolders/inbox",
            emu.base_url(),
            demo::ALICE
        ))
        .bearer_auth(first.expose_secret())
        .send()
        .await
        .expect("graph");
    assert_eq!(
        me.status(),
        StatusCode::OK,
        "an app-only token Graph accepts"
    );

    let again = tokens
        .for_importer(&app.store, app.clock.as_ref(), &record)
        .await
        .expect("token");
    assert_eq!(again.expose_secret(), first.expose_secret(), "cached");
    assert_eq!(token_requests(), 1, "no second request");

    // 71 minutes later the 75-minute token is within the 5-minute margin.
    advance(&app, &emu, SignedDuration::from_mins(71));
    let renewed = tokens
        .for_importer(&app.store, app.clock.as_ref(), &record)
        .await
        .expect("token");
    assert_eq!(token_requests(), 2, "renewed");
    assert_ne!(renewed.expose_secret(), first.expose_secret());
    emu.shutdown().await;
}

#[tokio::test]
async fn two_clients_share_one_app_registration_through_the_central_redirect_uri() {
    // Users reach mailferry as 127.0.0.1; Microsoft returns to one central
    // host name for every client.
    let app = TestApp::spawn_with_central_redirect(|base| {
        format!("{}{CALLBACK}", base.replace("127.0.0.1", "localhost"))
    })
    .await;
    let central = app.url(CALLBACK).replace("127.0.0.1", "localhost");
    let emu = emulator(std::slice::from_ref(&central), |_| {}).await;
    let other_token = app.token_for_new_client("second").await;

    let a = create_importer_as(&app, &app.token, &importer_body(&emu, "Client A", None)).await;
    let b = create_importer_as(&app, &other_token, &importer_body(&emu, "Client B", None)).await;
    let view = json(app.get(&format!("/api/v2/importers/email/{a}")).await).await;
    assert_eq!(view["redirect_uri"], central.as_str());

    let url_a = authorize_at_microsoft(&app, &app.token, &a, demo::ALICE).await;
    let url_b = authorize_at_microsoft(&app, &other_token, &b, demo::BOB).await;
    assert!(
        url_a.starts_with(&central) && url_b.starts_with(&central),
        "{url_a} {url_b}"
    );
    // Finish in the other order: the state, not the order or host, routes them.
    let (code, page) = callback(&app, &url_b).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert!(
        page.contains("Client B") && page.contains(demo::BOB),
        "{page}"
    );
    let (code, page) = callback(&app, &url_a).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert!(
        page.contains("Client A") && page.contains(demo::ALICE),
        "{page}"
    );

    assert_eq!(
        status_of(&app, &app.token, &a).await["auth"]["account"],
        demo::ALICE
    );
    assert_eq!(
        status_of(&app, &other_token, &b).await["auth"]["account"],
        demo::BOB
    );
    // Each client still sees only its own importer.
    let cross = app
        .http
        .get(app.url(&format!("/api/v2/importers/email/{b}/status")))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("status");
    assert_eq!(cross.status(), StatusCode::NOT_FOUND);
    emu.shutdown().await;
}

/// Runs `mailferry run refresh-tokens --importer ID` with `TZ` and a pinned clock.
async fn run_cli(app: &TestApp, importer: &str, tz: &str, now: Timestamp) -> (bool, String) {
    let dir = app.dir.path();
    let output = tokio::process::Command::new(mailferry_bin())
        .args(["run", "refresh-tokens", "--importer", importer])
        .env("TZ", tz)
        .env("MAILFERRY_NOW", now.to_string())
        .env("MAILFERRY_DATA_DIR", dir)
        .env(
            "MAILFERRY_DATABASE_URL",
            format!("sqlite://{}", dir.join("mailferry.db").display()),
        )
        .env("MAILFERRY_MASTER_KEY_FILE", dir.join("master.key"))
        .env("MAILFERRY_LOG_FORMAT", "json")
        .output()
        .await
        .expect("run mailferry");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[tokio::test]
async fn the_refresh_decision_is_the_same_in_berlin_and_in_utc() {
    let app = TestApp::spawn().await;
    let emu = emulator(&[app.url(CALLBACK)], |_| {}).await;
    // Signed in at 00:30Z on the night Berlin moves from UTC+1 to UTC+2;
    // both access tokens expire at 01:45Z.
    let berlin = create_importer_as(&app, &app.token, &importer_body(&emu, "Berlin", None)).await;
    let utc = create_importer_as(&app, &app.token, &importer_body(&emu, "Utc", None)).await;
    for id in [&berlin, &utc] {
        let (code, page) = sign_in(&app, &app.token, id, demo::ALICE).await;
        assert_eq!(code, StatusCode::OK, "{page}");
    }
    let probe = |t: &str| -> Timestamp { t.parse().expect("instant") };

    // 16 minutes before expiry: neither refreshes (a local-time reading
    // would be one or two hours off and refresh too late or too early).
    let at = probe("2026-03-29T01:29:00Z");
    let (ok_b, out_b) = run_cli(&app, &berlin, "Europe/Berlin", at).await;
    let (ok_u, out_u) = run_cli(&app, &utc, "UTC", at).await;
    assert!(ok_b && ok_u, "{out_b}\n{out_u}");
    assert!(
        out_b.contains("Berlin") && out_b.contains("not due"),
        "{out_b}"
    );
    assert!(
        out_u.contains("Utc") && out_u.contains("not due"),
        "{out_u}"
    );

    // 14 minutes before expiry: both refresh, at that instant.
    let at = probe("2026-03-29T01:31:00Z");
    let (ok_b, out_b) = run_cli(&app, &berlin, "Europe/Berlin", at).await;
    let (ok_u, out_u) = run_cli(&app, &utc, "UTC", at).await;
    assert!(ok_b && ok_u, "{out_b}\n{out_u}");
    assert!(out_b.contains(": refreshed;"), "{out_b}");
    assert!(out_u.contains(": refreshed;"), "{out_u}");
    for id in [&berlin, &utc] {
        let grant = app.store.grant(id).await.expect("read").expect("grant");
        assert_eq!(grant.last_refresh_at, Some(at));
        assert_eq!(
            grant.access_token_expires_at,
            Some(probe("2026-03-29T02:46:00Z"))
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn transient_failures_are_retried_then_counted_without_losing_the_grant() {
    let app = TestApp::spawn().await;
    let emu = emulator(&[app.url(CALLBACK)], |_| {}).await;
    let id = create_importer_as(&app, &app.token, &importer_body(&emu, "Invoices", None)).await;
    let (code, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    advance(&app, &emu, SignedDuration::from_mins(70));
    let token_path = format!("/{}/oauth2/v2.0/token", demo::TENANT_ID);
    let token_requests = || emu.counters().endpoints.get("token").copied().unwrap_or(0);

    // One 503 and one 429: retried within the run, then refreshed.
    for kind in [
        msemu::FaultKind::Status {
            status: 503,
            retry_after: None,
        },
        msemu::FaultKind::Throttle { retry_after: 0.2 },
    ] {
        emu.add_fault(msemu::FaultRule {
            kind,
            count: Some(1),
            rate: None,
            path_prefix: token_path.clone(),
            method: None,
            id: 0,
        });
    }
    let before = token_requests();
    let (result, lines) = run_refresh_tokens(&app).await;
    result.expect("refreshed after retries");
    assert!(
        lines.iter().any(|l| l.contains(": refreshed;")),
        "{lines:?}"
    );
    assert_eq!(token_requests() - before, 3, "two failures, one success");

    // Microsoft down for good: bounded attempts, counted, state kept.
    advance(&app, &emu, SignedDuration::from_mins(70));
    emu.add_fault(msemu::FaultRule {
        kind: msemu::FaultKind::Status {
            status: 500,
            retry_after: None,
        },
        count: None,
        rate: None,
        path_prefix: token_path.clone(),
        method: None,
        id: 0,
    });
    let before = token_requests();
    for _ in 0..3 {
        let (result, lines) = run_refresh_tokens(&app).await;
        result.expect_err("the run reports the failure");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("failed, will retry on the next run")),
            "{lines:?}"
        );
    }
    assert_eq!(token_requests() - before, 12, "4 attempts per run");
    let status = status_of(&app, &app.token, &id).await;
    assert_eq!(
        status["auth"]["state"], "authorized",
        "a busy Microsoft is no reason to sign in again"
    );
    assert_eq!(status["auth"]["consecutive_failures"], 3);
    let warnings = status["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.contains("the last 3 token refreshes failed"))),
        "{warnings:?}"
    );

    // Back up: the stored refresh token still works, failures reset.
    emu.clear_faults();
    let (result, _) = run_refresh_tokens(&app).await;
    result.expect("refreshed");
    let status = status_of(&app, &app.token, &id).await;
    assert_eq!(status["auth"]["consecutive_failures"], 0);
    assert_eq!(status["warnings"], json!([]));
    emu.shutdown().await;
}

#[tokio::test]
async fn an_idle_refresh_token_is_refreshed_and_warned_about() {
    let app = TestApp::spawn().await;
    let emu = emulator(&[app.url(CALLBACK)], |_| {}).await;
    let id = create_importer_as(&app, &app.token, &importer_body(&emu, "Invoices", None)).await;
    let (code, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    // 61 days without any refresh (e.g. the job was disabled).
    app.clock.advance(SignedDuration::from_hours(61 * 24));
    let status = status_of(&app, &app.token, &id).await;
    let warnings = status["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.contains("not been used for 61 days"))),
        "{warnings:?}"
    );
    let (result, _) = run_refresh_tokens(&app).await;
    result.expect("refreshed");
    assert_eq!(
        status_of(&app, &app.token, &id).await["warnings"],
        json!([])
    );
    emu.shutdown().await;
}

/// The Mail connection test (and every Graph call) refreshes an expired
/// delegated token on demand instead of failing until the next job run.
#[tokio::test]
async fn the_connection_test_refreshes_an_expired_token_on_demand() {
    let app = TestApp::spawn_with(Db::Sqlite, "2026-03-29T00:30:00Z".parse().expect("ts")).await;
    let emu = emulator(&[app.url(CALLBACK)], |_| {}).await;
    let id = create_importer_as(&app, &app.token, &importer_body(&emu, "Invoices", None)).await;
    let (code, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    let before = app.store.grant(&id).await.expect("grant").expect("stored");

    advance(&app, &emu, SignedDuration::from_mins(76));
    let report: Value = app
        .post_json(
            &format!("/api/v2/importers/email/{id}/test"),
            &serde_json::json!({}),
        )
        .await
        .json()
        .await
        .expect("json");
    let token_check = &report["checks"][0];
    assert_eq!(token_check["id"], "token", "{report}");
    assert_eq!(token_check["ok"], true, "{report}");
    let after = app.store.grant(&id).await.expect("grant").expect("stored");
    assert!(after.version > before.version, "the grant was refreshed");
    assert!(after.access_token_expires_at > before.access_token_expires_at);
    assert_eq!(report["ok"], true, "{report}");
}

/// A webhook receiver for alerts: records each JSON body.
async fn alert_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/alerts", listener.local_addr().expect("addr"));
    let router = axum::Router::new().route(
        "/alerts",
        axum::routing::post({
            let seen = seen.clone();
            move |axum::Json(body): axum::Json<Value>| {
                let seen = seen.clone();
                async move {
                    seen.lock().expect("lock").push(body);
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, seen)
}

/// The alert check: a revoked grant → `refresh-tokens` → one
/// e-mail at a real SMTP server and one webhook call naming the importer
/// and the fix; a second run sends nothing; signing in again sends
/// "resolved"; "Send test alert" reaches both.
#[tokio::test]
async fn a_revoked_grant_alerts_by_mail_and_webhook_once_then_resolved() {
    let app = TestApp::spawn().await;
    let emu = emulator(&[app.url(CALLBACK)], |_| {}).await;
    let smtp = test_support::smtp::SmtpServer::start();
    let (hook, calls) = alert_receiver().await;

    let bad = app
        .put_json(
            "/api/v2/alerts/settings",
            &json!({"webhook_url": "mailto:x", "emails": ["ops"], "failing_runs": 0}),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = json(bad).await.to_string();
    for field in ["webhook_url", "emails[0]", "smtp", "failing_runs"] {
        assert!(text.contains(field), "{field}: {text}");
    }
    let saved = app
        .put_json(
            "/api/v2/alerts/settings",
            &json!({
                "webhook_url": hook,
                "emails": ["ops@example.test"],
                "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "starttls",
                         "tls_ca_pem": smtp.ca_pem, "username": smtp.user, "password": smtp.password,
                         "from": "mailferry <alerts@example.test>"},
            }),
        )
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let view = json(saved).await;
    assert_eq!(view["smtp"]["password_set"], true);
    assert!(
        !view.to_string().contains("smtp-secret"),
        "write-only: {view}"
    );

    let id = create_importer_as(&app, &app.token, &importer_body(&emu, "Invoices", None)).await;
    let (code, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    let quiet = crate::support::run_named(&app, "refresh-tokens", json!({})).await;
    assert!(
        smtp.messages().is_empty() && calls.lock().expect("lock").is_empty(),
        "{:?}",
        quiet.log
    );

    emu.revoke_refresh_tokens(demo::ALICE).expect("revoke");
    advance(&app, &emu, SignedDuration::from_mins(70));
    let run = crate::support::run_named(&app, "refresh-tokens", json!({})).await;
    assert!(
        run.log.iter().any(|l| l.contains("alert (Raised) sent")),
        "{:?}",
        run.log
    );
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "one e-mail: {:?}", run.log);
    assert!(mails[0].contains("To: ops@example.test"), "{}", mails[0]);
    assert!(
        mails[0].contains("Invoices") && mails[0].contains("press Authenticate"),
        "{}",
        mails[0]
    );
    assert!(
        mails[0].contains("Subject: [mailferry] Action needed"),
        "{}",
        mails[0]
    );
    {
        let calls = calls.lock().expect("lock");
        assert_eq!(calls.len(), 1, "one webhook call");
        assert_eq!(calls[0]["event"], "raised");
        assert_eq!(calls[0]["importer"]["name"], "Invoices");
        assert_eq!(calls[0]["severity"], "critical");
        assert!(
            calls[0]["fix"]
                .as_str()
                .expect("fix")
                .contains("press Authenticate")
        );
    }

    // Still broken: no second alert (a reminder only after a day).
    let again = crate::support::run_named(&app, "refresh-tokens", json!({})).await;
    assert!(
        !again.log.iter().any(|l| l.contains("alert (")),
        "{:?}",
        again.log
    );
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(calls.lock().expect("lock").len(), 1);

    // Signed in again: "resolved", once.
    let (code, page) = sign_in(&app, &app.token, &id, demo::ALICE).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    crate::support::run_named(&app, "refresh-tokens", json!({})).await;
    let mails = smtp.messages();
    assert_eq!(mails.len(), 2);
    assert!(
        mails[1].contains("Subject: [mailferry] Resolved"),
        "{}",
        mails[1]
    );
    assert_eq!(calls.lock().expect("lock")[1]["event"], "resolved");
    crate::support::run_named(&app, "refresh-tokens", json!({})).await;
    assert_eq!(smtp.messages().len(), 2, "resolved is said once");
    let alerts = json(app.get("/api/v2/alerts").await).await;
    assert_eq!(alerts.as_array().expect("list").len(), 1);
    assert!(alerts[0]["resolved_at"].is_string(), "{alerts}");

    // "Send test alert" reaches both targets.
    let test = app.post_json("/api/v2/alerts/test", &json!({})).await;
    assert_eq!(test.status(), StatusCode::OK);
    let delivered = json(test).await.to_string();
    assert!(
        delivered.contains("webhook") && delivered.contains("e-mail"),
        "{delivered}"
    );
    assert_eq!(smtp.messages().len(), 3);
    assert_eq!(calls.lock().expect("lock")[2]["event"], "test");
    emu.shutdown().await;
}
