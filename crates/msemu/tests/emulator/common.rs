//! Test helpers: an emulator per test, token acquisition through the real endpoints, and
//! small request helpers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use msemu::{EmulatorHandle, Options, Seed, demo};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const GRAPH: &str = "https://graph.microsoft.com/";

pub struct Env {
    pub emu: Option<EmulatorHandle>,
    pub base: String,
    pub http: reqwest::Client,
}

pub use test_support::install_crypto;

pub fn client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub async fn start_with(seed: Seed, options: Options) -> Env {
    let emu = test_support::start_emulator(seed, options).await;
    Env {
        base: emu.base_url(),
        emu: Some(emu),
        http: client(),
    }
}

/// The demo seed with auto-consent on (most tests don't exercise the pages).
pub async fn start() -> Env {
    start_with(
        Seed::demo(),
        Options {
            auto_consent: true,
            ..Options::default()
        },
    )
    .await
}

/// Tokens from a successful token response.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: Option<String>,
    pub body: Value,
}

pub fn pkce_pair() -> (String, String) {
    let verifier = "ThisIsntRandomButItNeedsToBe43CharactersLong-1234".to_string();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location)
        .expect("location url")
        .query_pairs()
        .into_owned()
        .collect()
}

impl Env {
    pub fn emu(&self) -> &EmulatorHandle {
        self.emu.as_ref().expect("running")
    }

    pub async fn stop(mut self) {
        if let Some(e) = self.emu.take() {
            e.shutdown().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn authorize_url(&self, user: &str, scope: &str, challenge: &str) -> String {
        let mut u =
            url::Url::parse(&self.url(&format!("/{}/oauth2/v2.0/authorize", demo::TENANT_ID)))
                .expect("url");
        u.query_pairs_mut()
            .append_pair("client_id", demo::CLIENT_ID)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", demo::REDIRECT_URI)
            .append_pair("scope", scope)
            .append_pair("state", "st4te")
            .append_pair("login_hint", user)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("nonce", "n0nce");
        u.to_string()
    }

    /// Runs /authorize (auto-consent) and returns the code.
    pub async fn code_for(&self, user: &str, scope: &str, challenge: &str) -> String {
        let resp = self
            .http
            .get(self.authorize_url(user, scope, challenge))
            .send()
            .await
            .expect("authorize");
        assert_eq!(
            resp.status(),
            302,
            "{}",
            resp.text().await.unwrap_or_default()
        );
        let loc = resp.headers()["location"]
            .to_str()
            .expect("loc")
            .to_string();
        let q = query_of(&loc);
        assert_eq!(q.get("state").map(String::as_str), Some("st4te"));
        q["code"].clone()
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/{}/oauth2/v2.0/token", demo::TENANT_ID)))
            .form(form)
            .send()
            .await
            .expect("token request")
    }

    pub async fn redeem(&self, code: &str, verifier: &str, scope: &str) -> reqwest::Response {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("client_id", demo::CLIENT_ID),
            ("client_secret", demo::CLIENT_SECRET),
            ("code", code),
            ("redirect_uri", demo::REDIRECT_URI),
            ("code_verifier", verifier),
            ("scope", scope),
        ])
        .await
    }

    /// A delegated token set for `user` with `scope` (space-separated).
    pub async fn user_tokens(&self, user: &str, scope: &str) -> Tokens {
        let (verifier, challenge) = pkce_pair();
        let code = self.code_for(user, scope, &challenge).await;
        let resp = self.redeem(&code, &verifier, scope).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("json");
        Tokens {
            access: body["access_token"].as_str().expect("at").to_string(),
            refresh: body["refresh_token"].as_str().map(str::to_string),
            body,
        }
    }

    /// Alice with the importer's usual scopes.
    pub async fn alice(&self) -> String {
        self.user_tokens(
            demo::ALICE,
            &format!(
                "offline_access openid profile {GRAPH}Mail.ReadWrite {GRAPH}Mail.ReadWrite.Shared {GRAPH}User.Read"
            ),
        )
        .await
        .access
    }

    pub async fn app_token(&self) -> String {
        let resp = self
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", demo::DAEMON_CLIENT_ID),
                ("client_secret", demo::DAEMON_CLIENT_SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .await;
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.expect("json");
        v["access_token"].as_str().expect("at").to_string()
    }

    pub async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("get")
    }

    pub async fn get_json(&self, token: &str, path: &str) -> Value {
        let resp = self.get(token, path).await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("admin post")
    }
}

/// Percent-encodes an id for a path segment, as clients must.
pub fn enc(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A simple RFC 5322 message.
pub fn mime(subject: &str, date: &str) -> String {
    format!(
        "From: Sender <sender@example.org>\r\nTo: alice@contoso.example\r\nSubject: {subject}\r\n\
         Date: {date}\r\nMessage-ID: <{}@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nBody of {subject}\r\n",
        subject.replace(' ', "-")
    )
}

/// Asserts Graph's error shape and returns the code.
pub async fn graph_error(
    resp: reqwest::Response,
    status: u16,
) -> (String, reqwest::header::HeaderMap) {
    assert_eq!(resp.status().as_u16(), status);
    let headers = resp.headers().clone();
    assert!(headers.contains_key("request-id"));
    let v: Value = resp.json().await.expect("json");
    let inner = &v["error"]["innerError"];
    assert!(inner["request-id"].is_string(), "{v}");
    let date = inner["date"].as_str().expect("date");
    assert!(!date.ends_with('Z') && date.len() == 19, "{date}");
    assert!(v["error"]["message"].is_string());
    (
        v["error"]["code"].as_str().expect("code").to_string(),
        headers,
    )
}

/// Asserts Entra's token-endpoint error shape and returns (error, code, suberror).
pub async fn aad_error(resp: reqwest::Response, status: u16) -> (String, u64, Option<String>) {
    assert_eq!(resp.status().as_u16(), status);
    let v: Value = resp.json().await.expect("json");
    let desc = v["error_description"].as_str().expect("description");
    let code = v["error_codes"][0].as_u64().expect("code");
    assert!(desc.starts_with(&format!("AADSTS{code}: ")), "{desc}");
    assert!(
        desc.contains("\r\nTrace ID: ")
            && desc.contains("\r\nCorrelation ID: ")
            && desc.contains("\r\nTimestamp: "),
        "{desc}"
    );
    let ts = v["timestamp"].as_str().expect("timestamp");
    assert!(
        ts.len() == 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b' ',
        "{ts}"
    );
    assert!(v["trace_id"].is_string() && v["correlation_id"].is_string());
    assert_eq!(
        v["error_uri"].as_str(),
        Some(format!("https://login.microsoftonline.com/error?code={code}").as_str())
    );
    (
        v["error"].as_str().expect("error").to_string(),
        code,
        v["suberror"].as_str().map(str::to_string),
    )
}
