//! The identity platform: authorize pages and redirects, token grants and their errors.

use jiff::{SignedDuration, Timestamp};
use msemu::{Options, Seed, SeedSecret, demo};
use serde_json::Value;

use crate::common::{self, GRAPH, aad_error, pkce_pair, query_of};

const SCOPE: &str = "offline_access openid profile https://graph.microsoft.com/Mail.ReadWrite https://graph.microsoft.com/User.Read";

#[tokio::test]
async fn auth_code_pkce_refresh_rotation_and_response_shape() {
    let env = common::start().await;
    let (verifier, challenge) = pkce_pair();
    let code = env.code_for(demo::ALICE, SCOPE, &challenge).await;

    let wrong = env
        .redeem(
            &code,
            "not-the-verifier-but-long-enough-to-look-right",
            SCOPE,
        )
        .await;
    assert_eq!(aad_error(wrong, 400).await.1, 501481);

    let resp = env.redeem(&code, &verifier, SCOPE).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert!(
        body["expires_in"].is_i64() && body["ext_expires_in"].is_i64(),
        "{body}"
    );
    assert_eq!(body["scope"], "Mail.ReadWrite User.Read profile openid");
    assert!(body["id_token"].is_string());
    let rt = body["refresh_token"].as_str().expect("rt").to_string();

    let reused = env.redeem(&code, &verifier, SCOPE).await;
    assert_eq!(
        aad_error(reused, 400).await,
        ("invalid_grant".into(), 54005, None)
    );

    let refresh = |rt: String| {
        let env = &env;
        async move {
            env.token(&[
                ("grant_type", "refresh_token"),
                ("client_id", demo::CLIENT_ID),
                ("client_secret", demo::CLIENT_SECRET),
                ("refresh_token", &rt),
                (
                    "scope",
                    "https://graph.microsoft.com/Mail.ReadWrite offline_access",
                ),
            ])
            .await
        }
    };
    let r1 = refresh(rt.clone()).await;
    assert_eq!(r1.status(), 200);
    let r1: Value = r1.json().await.expect("json");
    let rt2 = r1["refresh_token"].as_str().expect("rotated").to_string();
    assert_ne!(rt, rt2);
    assert_eq!(r1["scope"], "Mail.ReadWrite");

    // Strict rotation: the old refresh token is dead once exchanged.
    assert_eq!(aad_error(refresh(rt).await, 400).await.1, 70008);
    assert_eq!(refresh(rt2).await.status(), 200);
    env.stop().await;
}

#[tokio::test]
async fn plain_pkce_redirect_mismatch_and_code_expiry() {
    let env = common::start().await;
    let mut u = url::Url::parse(&env.authorize_url(demo::ALICE, SCOPE, "x")).expect("url");
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k != "code_challenge" && k != "code_challenge_method")
        .collect();
    u.query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair(
            "code_challenge",
            "plain-verifier-plain-verifier-plain-verifier-1",
        )
        .append_pair("code_challenge_method", "plain");
    let resp = env.http.get(u.as_str()).send().await.expect("authorize");
    let code = query_of(resp.headers()["location"].to_str().expect("loc"))["code"].clone();

    let mismatch = env
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", demo::CLIENT_ID),
            ("client_secret", demo::CLIENT_SECRET),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:8080/other"),
            (
                "code_verifier",
                "plain-verifier-plain-verifier-plain-verifier-1",
            ),
        ])
        .await;
    assert_eq!(aad_error(mismatch, 400).await.1, 50011);
    let ok = env
        .redeem(
            &code,
            "plain-verifier-plain-verifier-plain-verifier-1",
            SCOPE,
        )
        .await;
    assert_eq!(ok.status(), 200);

    let (verifier, challenge) = pkce_pair();
    let code = env.code_for(demo::ALICE, SCOPE, &challenge).await;
    env.emu().advance_clock(SignedDuration::from_mins(11));
    let expired = env.redeem(&code, &verifier, SCOPE).await;
    assert_eq!(aad_error(expired, 400).await.1, 70008);
    env.stop().await;
}

async fn assert_error_page(env: &common::Env, url: &str, code: &str) {
    let resp = env.http.get(url).send().await.expect("authorize");
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/html")
    );
    let html = resp.text().await.expect("html");
    assert!(html.contains(&format!("AADSTS{code}")), "{html}");
}

#[tokio::test]
async fn authorize_errors_that_must_not_redirect_show_a_page() {
    let env = common::start().await;
    let good = env.authorize_url(demo::ALICE, SCOPE, "c");
    assert_error_page(
        &env,
        &good.replace("api%2Fv2%2Fimporters", "api%2Fv3%2Fimporters"),
        "50011",
    )
    .await;
    assert_error_page(
        &env,
        &good.replace(demo::CLIENT_ID, "11111111-2222-3333-4444-555555555555"),
        "700016",
    )
    .await;
    assert_error_page(
        &env,
        &good.replace(demo::TENANT_ID, "fabrikam.example"),
        "90002",
    )
    .await;

    // An unconfigured scope is the client's problem: redirect with error + state.
    let resp = env
        .http
        .get(env.authorize_url(demo::ALICE, &format!("{GRAPH}Directory.ReadWrite.All"), "c"))
        .send()
        .await
        .expect("authorize");
    assert_eq!(resp.status(), 302);
    let q = query_of(resp.headers()["location"].to_str().expect("loc"));
    assert_eq!(q["error"], "invalid_scope");
    assert!(q["error_description"].starts_with("AADSTS70011"));
    assert_eq!(q["state"], "st4te");
    env.stop().await;
}

fn form_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("field") + marker.len();
    html[start..].split('"').next().expect("value").to_string()
}

#[tokio::test]
async fn login_consent_and_account_picker_pages() {
    let env = common::start_with(Seed::demo(), Options::default()).await;
    let (_, challenge) = pkce_pair();
    let url = env.authorize_url(demo::ALICE, SCOPE, &challenge);
    let html = env
        .http
        .get(&url)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(
        html.contains("<form") && html.contains("name=\"passwd\""),
        "{html}"
    );
    let flow = form_field(&html, "flow");
    let login = env.url(&format!("/{}/oauth2/v2.0/login", demo::TENANT_ID));

    let bad = env
        .http
        .post(&login)
        .form(&[
            ("flow", flow.as_str()),
            ("login", demo::ALICE),
            ("passwd", "nope"),
        ])
        .send()
        .await
        .expect("post")
        .text()
        .await
        .expect("html");
    assert!(bad.contains("AADSTS50126"), "{bad}");
    let flow = form_field(&bad, "flow");

    let resp = env
        .http
        .post(&login)
        .form(&[
            ("flow", flow.as_str()),
            ("login", demo::ALICE),
            ("passwd", demo::ALICE_PASSWORD),
        ])
        .send()
        .await
        .expect("post");
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("c")
        .to_string();
    let consent = resp.text().await.expect("html");
    assert!(
        consent.contains("Mail.ReadWrite") && consent.contains("value=\"accept\""),
        "{consent}"
    );
    let consent_url = env.url(&format!("/{}/oauth2/v2.0/consent", demo::TENANT_ID));
    let cancel = env
        .http
        .post(&consent_url)
        .form(&[
            ("flow", form_field(&consent, "flow").as_str()),
            ("decision", "cancel"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(cancel.status(), 302);
    let q = query_of(cancel.headers()["location"].to_str().expect("loc"));
    assert_eq!(
        (q["error"].as_str(), q["state"].as_str()),
        ("access_denied", "st4te")
    );

    // Signed in (cookie) but still no consent: the consent page again, then accept.
    let consent = env
        .http
        .get(&url)
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    let accept = env
        .http
        .post(&consent_url)
        .form(&[
            ("flow", form_field(&consent, "flow").as_str()),
            ("decision", "accept"),
        ])
        .send()
        .await
        .expect("post");
    let q = query_of(accept.headers()["location"].to_str().expect("loc"));
    assert!(q.contains_key("code"));

    // prompt=select_account shows the picker; picking the signed-in account yields a code.
    let picker = env
        .http
        .get(format!("{url}&prompt=select_account"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(
        picker.contains(demo::ALICE) && picker.contains("Use another account"),
        "{picker}"
    );
    let picked = env
        .http
        .post(env.url(&format!("/{}/oauth2/v2.0/select_account", demo::TENANT_ID)))
        .header("cookie", &cookie)
        .form(&[
            ("flow", form_field(&picker, "flow").as_str()),
            ("account", demo::ALICE),
        ])
        .send()
        .await
        .expect("post");
    assert!(query_of(picked.headers()["location"].to_str().expect("loc")).contains_key("code"));

    // prompt=none without a session cannot sign in silently.
    let none = env
        .http
        .get(format!("{url}&prompt=none"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        query_of(none.headers()["location"].to_str().expect("loc"))["error"],
        "login_required"
    );
    env.stop().await;
}

#[tokio::test]
async fn client_authentication_errors() {
    let mut seed = Seed::demo();
    seed.tenants[0].apps[1].secrets.push(SeedSecret {
        value: "expired-secret".into(),
        expires: Some(Timestamp::from_second(1_600_000_000).expect("ts")),
    });
    let env = common::start_with(seed, Options::default()).await;
    let cc = |id: &'static str, secret: Option<&'static str>| {
        let env = &env;
        async move {
            let mut form = vec![
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("scope", "https://graph.microsoft.com/.default"),
            ];
            if let Some(s) = secret {
                form.push(("client_secret", s));
            }
            env.token(&form).await
        }
    };
    assert_eq!(
        aad_error(cc(demo::DAEMON_CLIENT_ID, Some("wrong")).await, 401).await,
        ("invalid_client".into(), 7000215, None)
    );
    assert_eq!(
        aad_error(
            cc(demo::DAEMON_CLIENT_ID, Some("expired-secret")).await,
            401
        )
        .await
        .1,
        7000222
    );
    assert_eq!(
        aad_error(cc(demo::DAEMON_CLIENT_ID, None).await, 401)
            .await
            .1,
        7000218
    );
    assert_eq!(
        aad_error(
            cc("11111111-2222-3333-4444-555555555555", Some("x")).await,
            400
        )
        .await
        .1,
        700016
    );

    // HTTP Basic client authentication (RFC 6749 §2.3.1).
    let basic = env
        .http
        .post(env.url(&format!("/{}/oauth2/v2.0/token", demo::DOMAIN)))
        .basic_auth(demo::DAEMON_CLIENT_ID, Some(demo::DAEMON_CLIENT_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(basic.status(), 200);
    let v: Value = basic.json().await.expect("json");
    assert!(v.get("refresh_token").is_none() && v["expires_in"].is_i64());

    let unknown_tenant = env
        .http
        .post(env.url("/fabrikam.example/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", demo::DAEMON_CLIENT_ID),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(aad_error(unknown_tenant, 400).await.1, 90002);

    let not_default = env
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", demo::DAEMON_CLIENT_ID),
            ("client_secret", demo::DAEMON_CLIENT_SECRET),
            ("scope", "https://graph.microsoft.com/Mail.Read"),
        ])
        .await;
    assert_eq!(aad_error(not_default, 400).await.0, "invalid_scope");
    env.stop().await;
}

async fn refresh_with(env: &common::Env, rt: &str, scope: &str) -> reqwest::Response {
    env.token(&[
        ("grant_type", "refresh_token"),
        ("client_id", demo::CLIENT_ID),
        ("client_secret", demo::CLIENT_SECRET),
        ("refresh_token", rt),
        ("scope", scope),
    ])
    .await
}

#[tokio::test]
async fn refresh_token_revocation_inactivity_and_consent() {
    let env = common::start().await;
    let t = env
        .user_tokens(
            demo::ALICE,
            &format!("offline_access {GRAPH}Mail.ReadWrite"),
        )
        .await;
    let rt = t.refresh.expect("rt");
    let missing = refresh_with(&env, &rt, &format!("{GRAPH}Mail.ReadWrite.Shared")).await;
    assert_eq!(
        aad_error(missing, 400).await,
        (
            "invalid_grant".into(),
            65001,
            Some("consent_required".into())
        )
    );

    env.emu()
        .revoke_refresh_tokens(demo::ALICE)
        .expect("revoke");
    let revoked = refresh_with(&env, &rt, &format!("{GRAPH}Mail.ReadWrite")).await;
    assert_eq!(aad_error(revoked, 400).await.1, 50173);

    let t = env
        .user_tokens(
            demo::ALICE,
            &format!("offline_access {GRAPH}Mail.ReadWrite"),
        )
        .await;
    env.emu().advance_clock(SignedDuration::from_hours(91 * 24));
    let stale = refresh_with(
        &env,
        t.refresh.as_deref().expect("rt"),
        &format!("{GRAPH}Mail.ReadWrite"),
    )
    .await;
    let v = aad_error(stale, 400).await;
    assert_eq!(v.1, 700082);

    // Without offline_access there is no refresh token at all.
    let t = env
        .user_tokens(demo::ALICE, &format!("{GRAPH}Mail.ReadWrite"))
        .await;
    assert!(t.refresh.is_none());
    env.stop().await;
}

#[tokio::test]
async fn discovery_documents_and_lifetimes() {
    let env = common::start().await;
    let conf: Value = env
        .http
        .get(env.url(&format!(
            "/{}/v2.0/.well-known/openid-configuration",
            demo::DOMAIN
        )))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(
        conf["token_endpoint"],
        env.url(&format!("/{}/oauth2/v2.0/token", demo::TENANT_ID))
    );
    assert_eq!(
        conf["issuer"],
        env.url(&format!("/{}/v2.0", demo::TENANT_ID))
    );
    let jwks: Value = env
        .http
        .get(conf["jwks_uri"].as_str().expect("jwks"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    let unknown = env
        .http
        .get(env.url("/nope.example/v2.0/.well-known/openid-configuration"))
        .send()
        .await
        .expect("get");
    assert_eq!(aad_error(unknown, 400).await.1, 90002);
    let inst: Value = env
        .http
        .get(env.url("/common/discovery/instance"))
        .query(&[
            ("api-version", "1.1"),
            (
                "authorization_endpoint",
                &env.url(&format!("/{}/oauth2/v2.0/authorize", demo::TENANT_ID)),
            ),
        ])
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(
        inst["tenant_discovery_endpoint"],
        env.url(&format!(
            "/{}/v2.0/.well-known/openid-configuration",
            demo::TENANT_ID
        ))
    );

    let set = env
        .http
        .put(env.url("/_emulator/token-lifetimes"))
        .json(&serde_json::json!({"access_token": 120}))
        .send()
        .await
        .expect("put");
    assert_eq!(set.status(), 200);
    let t = env
        .user_tokens(demo::ALICE, &format!("{GRAPH}Mail.ReadWrite"))
        .await;
    assert_eq!(t.body["expires_in"], 120);
    env.stop().await;
}

/// The claims of a JWT, unverified.
fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims")
}

/// IMAP over OAuth: tokens for Exchange Online's scopes are for Exchange Online (its
/// audience, short names in `scp`, full URIs in the response's `scope`), never for Graph;
/// refresh tokens switch resources only within what the user consented to.
#[tokio::test]
async fn exchange_online_tokens_for_imap() {
    const IMAP: &str = "https://outlook.office.com/IMAP.AccessAsUser.All";
    let env = common::start().await;
    let t = env
        .user_tokens(demo::ALICE, &format!("{IMAP} offline_access"))
        .await;
    assert_eq!(t.body["scope"], IMAP);
    let c = jwt_claims(&t.access);
    assert_eq!(c["aud"], "https://outlook.office.com");
    assert_eq!(c["scp"], "IMAP.AccessAsUser.All");
    assert_eq!(c["upn"], demo::ALICE);
    assert_eq!(
        c["iss"],
        format!("https://sts.windows.net/{}/", demo::TENANT_ID)
    );
    let at_graph = env.get(&t.access, "/v1.0/me/mailFolders").await;
    assert_eq!(
        common::graph_error(at_graph, 401).await.0,
        "InvalidAuthenticationToken"
    );

    // Refreshing keeps the resource; Graph scopes the user never consented to are refused.
    let rt = t.refresh.expect("refresh token");
    let resp = env
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", demo::CLIENT_ID),
            ("client_secret", demo::CLIENT_SECRET),
            ("refresh_token", &rt),
        ])
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        jwt_claims(body["access_token"].as_str().expect("at"))["aud"],
        "https://outlook.office.com"
    );
    let rt = body["refresh_token"].as_str().expect("rotated").to_string();
    let resp = env
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", demo::CLIENT_ID),
            ("client_secret", demo::CLIENT_SECRET),
            ("refresh_token", &rt),
            ("scope", &format!("{GRAPH}Mail.Read")),
        ])
        .await;
    assert_eq!(
        aad_error(resp, 400).await,
        (
            "invalid_grant".into(),
            65001,
            Some("consent_required".into())
        )
    );

    // A Graph grant refreshed for the (consented) IMAP scope gives an Exchange Online token.
    let g = env
        .user_tokens(
            demo::ALICE,
            &format!("{GRAPH}Mail.ReadWrite offline_access"),
        )
        .await;
    assert_eq!(
        jwt_claims(&g.access)["aud"],
        "00000003-0000-0000-c000-000000000000"
    );
    let resp = env
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", demo::CLIENT_ID),
            ("client_secret", demo::CLIENT_SECRET),
            ("refresh_token", g.refresh.as_deref().expect("rt")),
            ("scope", &format!("{IMAP} offline_access")),
        ])
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    let c = jwt_claims(body["access_token"].as_str().expect("at"));
    assert_eq!(
        (c["aud"].as_str(), c["scp"].as_str()),
        (
            Some("https://outlook.office.com"),
            Some("IMAP.AccessAsUser.All")
        )
    );

    // The resource's other spelling is its audience; Graph's .default leaves IMAP out.
    let o = env
        .user_tokens(
            demo::ALICE,
            "https://outlook.office365.com/IMAP.AccessAsUser.All",
        )
        .await;
    assert_eq!(
        jwt_claims(&o.access)["aud"],
        "https://outlook.office365.com"
    );
    let d = env
        .user_tokens(demo::ALICE, &format!("{GRAPH}.default"))
        .await;
    let scp = jwt_claims(&d.access)["scp"]
        .as_str()
        .expect("scp")
        .to_string();
    assert!(
        scp.contains("Mail.ReadWrite") && !scp.contains("IMAP"),
        "{scp}"
    );

    // A permission the app is not configured for is refused at /authorize.
    let (_, challenge) = pkce_pair();
    let resp = env
        .http
        .get(env.authorize_url(
            demo::ALICE,
            "https://outlook.office.com/POP.AccessAsUser.All",
            &challenge,
        ))
        .send()
        .await
        .expect("authorize");
    assert_eq!(resp.status(), 302);
    let q = query_of(resp.headers()["location"].to_str().expect("location"));
    assert_eq!(q["error"], "invalid_scope");

    // App-only Exchange Online tokens are not emulated.
    let resp = env
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", demo::DAEMON_CLIENT_ID),
            ("client_secret", demo::DAEMON_CLIENT_SECRET),
            ("scope", "https://outlook.office365.com/.default"),
        ])
        .await;
    assert_eq!(aad_error(resp, 400).await.1, 500011);
    env.stop().await;
}
