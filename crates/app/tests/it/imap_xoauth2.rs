//! IMAP with XOAUTH2 end to end: the admin presses Authenticate, signs in at
//! the Microsoft emulator, and mailferry logs in to a real Dovecot with the
//! Exchange Online token. Dovecot checks each token itself with its
//! `oauth2` passdb (signature with the emulator's key, issuer, audience
//! `https://outlook.office.com`, and that its `upn` is the user logging in),
//! so a token for another user or another resource is refused by the server,
//! not by mailferry's own reading of it.

use jiff::{SignedDuration, Timestamp};
use msemu::{EmulatorHandle, Seed, demo};
use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::dovecot::Dovecot;

use crate::support::{Db, TestApp, json as body_json, location, run_script, start_emulator};

const CALLBACK: &str = "/api/v2/importers/email/authenticate/end";

async fn emulator(app: &TestApp) -> EmulatorHandle {
    let mut seed = Seed::demo();
    seed.tenants[0].apps[0]
        .redirect_uris
        .push(app.url(CALLBACK));
    let options = msemu::Options {
        auto_consent: true,
        ..msemu::Options::default()
    };
    start_emulator(seed, options).await
}

fn importer_body(dovecot: &Dovecot, emu: &EmulatorHandle) -> Value {
    json!({
        "name": "Exchange Online over IMAP",
        "protocol": "imap",
        "host": dovecot.host,
        "port": dovecot.imaps_port,
        "security": "tls",
        "tls_ca_pem": dovecot.ca_pem,
        "username": demo::ALICE,
        "auth": "xoauth2",
        "client_id": demo::CLIENT_ID,
        "client_secret": demo::CLIENT_SECRET,
        "tenant_id": demo::TENANT_ID,
        "endpoints": { "authority": emu.base_url() },
        "folders": { "inbox": "INBOX", "exported": "Exported", "error": "Error" },
    })
}

/// Presses Authenticate (with `login_hint`, or the importer's default) and
/// follows the redirects like a browser; the emulator's auto-consent signs
/// the hinted user in. Returns the authorize URL and the callback's page.
async fn sign_in(
    app: &TestApp,
    importer: &str,
    user: Option<&str>,
) -> (String, StatusCode, String) {
    let hint = user.map(|u| format!("?login_hint={u}")).unwrap_or_default();
    let start = app
        .get(&format!(
            "/api/v2/importers/email/{importer}/authenticate{hint}"
        ))
        .await;
    assert_eq!(start.status(), StatusCode::FOUND, "redirects to Microsoft");
    let authorize = location(&start);
    let at_microsoft = app.http.get(&authorize).send().await.expect("authorize");
    assert!(
        at_microsoft.status().is_redirection(),
        "the emulator redirects back with a code: {}",
        at_microsoft.text().await.unwrap_or_default()
    );
    let back = app
        .http
        .get(location(&at_microsoft))
        .send()
        .await
        .expect("callback");
    let status = back.status();
    (authorize, status, back.text().await.expect("page"))
}

async fn import(app: &TestApp) -> (Result<(), String>, Vec<String>) {
    let connector = test_support::connector(&app.store, app.clock.clone(), app.dir.path());
    run_script(app, &runtime::ImportEmails::new(connector)).await
}

async fn auth_state(app: &TestApp, importer: &str) -> Value {
    body_json(
        app.get(&format!("/api/v2/importers/email/{importer}/status"))
            .await,
    )
    .await["auth"]
        .clone()
}

#[tokio::test]
async fn xoauth2_signs_in_at_microsoft_and_imports_from_dovecot() {
    let dovecot = Dovecot::from_env();
    // Dovecot checks token lifetimes against the real time, as Exchange does.
    let app = TestApp::spawn_with(Db::Sqlite, Timestamp::now()).await;
    let emu = emulator(&app).await;
    let created = app
        .post_json("/api/v2/importers/email", &importer_body(&dovecot, &emu))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created = body_json(created).await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["auth"], "xoauth2");
    assert_eq!(created["authentication_required"], true, "{created:#}");
    assert!(created.get("password_set").is_none(), "{created:#}");

    // Alice's mailbox outlives the test (Dovecot runs for the whole suite):
    // mails of its own, numbered apart from any earlier run's.
    let n = usize::try_from(Timestamp::now().as_second() % 1_000_000).expect("small");
    let (_, first) = import::corpus::numbered_mail(n, Some(3_000));
    dovecot.save(demo::ALICE, "INBOX", &first);
    let inbox_before = dovecot.mails(demo::ALICE, "INBOX").len();

    // Nobody signed in yet: the run says what to do and touches nothing.
    let (result, log) = import(&app).await;
    let failure = result.expect_err("not authorized yet");
    assert!(failure.contains("Authenticate"), "{failure}\n{log:#?}");
    assert_eq!(dovecot.mails(demo::ALICE, "INBOX").len(), inbox_before);

    // Bob signs in for Alice's mailbox: Dovecot refuses his token for her,
    // and the sign-in page says so instead of "authorized".
    let (_, status, page) = sign_in(&app, &id, Some(demo::BOB)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("cannot open the mailbox"), "{page}");
    assert!(page.contains(demo::ALICE), "{page}");
    assert_eq!(auth_state(&app, &id).await["state"], "mailbox_denied");

    // Alice signs in (the importer's username is the default login hint);
    // the scopes are Exchange Online's IMAP scope, never Graph's.
    let (authorize, status, page) = sign_in(&app, &id, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("mailferry is authorized"), "{page}");
    let url = reqwest::Url::parse(&authorize).expect("authorize URL");
    let query = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    assert_eq!(
        query("scope"),
        "offline_access https://outlook.office.com/IMAP.AccessAsUser.All"
    );
    assert_eq!(query("login_hint"), demo::ALICE);
    let auth = auth_state(&app, &id).await;
    assert_eq!(auth["state"], "authorized", "{auth:#}");
    assert_eq!(auth["account"], demo::ALICE, "{auth:#}");
    let grant = app.store.grant(&id).await.expect("read").expect("grant");
    assert_eq!(grant.scopes, ["IMAP.AccessAsUser.All"]);

    // The Mail connection test logs in with the token.
    let test = body_json(
        app.post_json(&format!("/api/v2/importers/email/{id}/test"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(test["ok"], true, "{test:#}");

    let (result, log) = import(&app).await;
    result.unwrap_or_else(|e| panic!("{e}\n{log:#?}"));
    assert!(log.iter().any(|l| l.contains("imported 1,")), "{log:#?}");
    assert!(dovecot.mails(demo::ALICE, "INBOX").is_empty());
    let exported = dovecot.mails(demo::ALICE, "Exported").len();
    assert!(exported >= 1);

    // Ten minutes before the token expires it is renewed by refresh-tokens
    // (for Exchange Online, with the rotated refresh token), and the next
    // run logs in with the new one.
    let version = grant.version;
    let old_token = grant.access_token.clone().expect("access token");
    let expires_at = grant.access_token_expires_at.expect("expiry");
    app.clock
        .advance(app.clock_now().duration_until(expires_at) - SignedDuration::from_mins(10));
    let (result, log) = run_script(&app, &grants::RefreshTokens::new()).await;
    result.unwrap_or_else(|e| panic!("{e}\n{log:#?}"));
    let renewed = app.store.grant(&id).await.expect("read").expect("grant");
    assert!(renewed.version > version, "{log:#?}");
    assert_ne!(
        secrecy::ExposeSecret::expose_secret(&renewed.access_token.clone().expect("token")),
        secrecy::ExposeSecret::expose_secret(&old_token)
    );
    let (_, second) = import::corpus::numbered_mail(n + 1, Some(3_000));
    dovecot.save(demo::ALICE, "INBOX", &second);
    let (result, log) = import(&app).await;
    result.unwrap_or_else(|e| panic!("{e}\n{log:#?}"));
    assert!(dovecot.mails(demo::ALICE, "INBOX").is_empty(), "{log:#?}");
    assert_eq!(dovecot.mails(demo::ALICE, "Exported").len(), exported + 1);
    emu.shutdown().await;
}
