//! Isolation between clients, proven for every endpoint: each operation of
//! the OpenAPI document is called with five credentials — the owning
//! client's API token, another client's token, a UI session of the other
//! client (cookie and CSRF token), no credentials, and that session's cookie
//! without its CSRF token — and must give the answer [`ROUTES`] names: never
//! another client's data, never a change without the right credentials. An
//! operation of the document that [`ROUTES`] does not list fails the test.
//!
//! Client A is the app's `default` client (its token is `TestApp::token`);
//! client B (`other`) gets an API token and an admin who signs in at
//! `/ui/login`. A's importer points at an unreachable loopback port, so
//! the owner's calls that would ask Microsoft fail fast instead of leaving
//! the machine.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use domain::document::{DocumentMetadata, DocumentSource};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use store::documents::DocumentRecord;
use store::ledger::{LedgerEntry, LedgerState};
use web::caller::{CSRF_HEADER, SESSION_COOKIE};

use crate::support::{TestApp, graph_importer_body, json as body_json};

/// In A's importer name, job description, mail subject and document: any
/// answer to client B that contains it shows A's data.
const MARKER: &str = "only-for-client-a-7d1f";
const OTHER_CLIENT: &str = "other";
const OTHER_HOST: &str = "other.example";
const OTHER_EMAIL: &str = "admin@other.example";
const OTHER_PASSWORD: &str = "correct horse battery staple";
/// Nothing listens there: Microsoft's endpoints of A's importer.
const UNREACHABLE: &str = "http://127.0.0.1:1";
const DOCUMENT_ID: &str = "0196a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
const MAIL_SOURCE_KEY: &str = "AAMkAD-isolation-1";

/// Who calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cred {
    /// A's API token.
    Owner,
    /// B's API token.
    OtherToken,
    /// B's UI session: cookie and `X-CSRF-Token`.
    OtherSession,
    /// Nothing.
    Anonymous,
    /// B's session cookie without its CSRF token.
    SessionWithoutCsrf,
}

/// Everyone but the owner.
const OTHERS: [Cred; 4] = [
    Cred::OtherToken,
    Cred::OtherSession,
    Cred::Anonymous,
    Cred::SessionWithoutCsrf,
];

/// Whose an operation is, and so what everyone but the owner gets.
#[derive(Clone, Copy, Debug)]
enum Access {
    /// Documented with `security(())`: there is no caller, so every
    /// credential gets this status (and nothing of A's).
    Public(u16),
    /// The caller's own client (a collection, creating something, a script
    /// run), with no id of A's in the path: B gets this status for its own
    /// client and none of A's data; no credentials get 401, a cookie
    /// without the CSRF token gets 403 on a change.
    OwnClient(u16),
    /// Names one of A's resources: B gets 404, exactly as for an id that
    /// does not exist; no credentials get 401, a cookie without the CSRF
    /// token gets 403 on a change.
    OwnedByA,
}

/// The request body an operation is sent with (the same for everyone).
#[derive(Clone, Copy, Debug)]
enum Body {
    Empty,
    Importer,
    Job,
    ScriptParams,
    ConfirmForm,
    AlertSettings,
}

/// Which of A's data the owner's answer must show (so that its absence
/// from B's answers means something).
#[derive(Clone, Copy, Debug)]
enum AData {
    Importer,
    Job,
    Execution,
    Document,
    Mail,
    Marker,
}

struct Route {
    method: &'static str,
    /// As the OpenAPI document spells it.
    path: &'static str,
    access: Access,
    body: Body,
    /// What the owner may get. The owner's calls run last, reads first and
    /// deletions at the very end, so none is skipped. Calls that would ask
    /// the mailbox answer with the documented refusal of an importer
    /// without a grant (409, or 302/422 for the sign-in's start).
    owner: &'static [u16],
    owner_sees: Option<AData>,
}

const fn route(
    method: &'static str,
    path: &'static str,
    access: Access,
    body: Body,
    owner: &'static [u16],
    owner_sees: Option<AData>,
) -> Route {
    Route {
        method,
        path,
        access,
        body,
        owner,
        owner_sees,
    }
}

/// Every operation of `/api/v2/openapi.json`, and what it answers.
#[rustfmt::skip]
const ROUTES: &[Route] = &[
    // operations
    route("GET", "/healthz", Access::Public(200), Body::Empty, &[200], None),
    route("GET", "/metrics", Access::Public(200), Body::Empty, &[200], None),
    // importers
    route("GET", "/api/v2/importers/email", Access::OwnClient(200), Body::Empty, &[200], Some(AData::Importer)),
    route("POST", "/api/v2/importers/email", Access::OwnClient(201), Body::Importer, &[201], None),
    route("GET", "/api/v2/importers/email/{id}", Access::OwnedByA, Body::Empty, &[200], Some(AData::Importer)),
    route("PUT", "/api/v2/importers/email/{id}", Access::OwnedByA, Body::Importer, &[200], None),
    route("DELETE", "/api/v2/importers/email/{id}", Access::OwnedByA, Body::Empty, &[204], None),
    route("GET", "/api/v2/importers/email/{id}/status", Access::OwnedByA, Body::Empty, &[200], None),
    route("GET", "/api/v2/importers/email/{id}/folders", Access::OwnedByA, Body::Empty, &[409], None),
    route("POST", "/api/v2/importers/email/{id}/test", Access::OwnedByA, Body::Empty, &[200], None),
    route("POST", "/api/v2/importers/email/{id}/dry-run", Access::OwnedByA, Body::Empty, &[409, 422, 503], None),
    route("GET", "/api/v2/importers/email/{id}/runs", Access::OwnedByA, Body::Empty, &[200], None),
    route("GET", "/api/v2/importers/email/{id}/mails", Access::OwnedByA, Body::Empty, &[200], Some(AData::Mail)),
    route("POST", "/api/v2/importers/email/{id}/mails/{mail_id}/reprocess", Access::OwnedByA, Body::Empty, &[409, 422, 503], None),
    // authorization at Microsoft; `end` without a `state` and `confirm`
    // with a forged token are refused whoever calls
    route("GET", "/api/v2/importers/email/{id}/authenticate", Access::OwnedByA, Body::Empty, &[302, 422], None),
    route("GET", "/api/v2/importers/email/authenticate/end", Access::Public(400), Body::Empty, &[400], None),
    route("POST", "/api/v2/importers/email/authenticate/confirm", Access::Public(400), Body::ConfirmForm, &[400], None),
    // jobs
    route("GET", "/api/v2/jobs", Access::OwnClient(200), Body::Empty, &[200], Some(AData::Job)),
    route("POST", "/api/v2/jobs", Access::OwnClient(201), Body::Job, &[201], None),
    route("GET", "/api/v2/jobs/{id}", Access::OwnedByA, Body::Empty, &[200], Some(AData::Job)),
    route("PUT", "/api/v2/jobs/{id}", Access::OwnedByA, Body::Job, &[200], None),
    route("DELETE", "/api/v2/jobs/{id}", Access::OwnedByA, Body::Empty, &[204], None),
    route("GET", "/api/v2/jobs/{id}/next-runs", Access::OwnedByA, Body::Empty, &[200], None),
    // scripts and their executions
    route("GET", "/api/v2/scripts", Access::OwnClient(200), Body::Empty, &[200], None),
    route("POST", "/api/v2/scripts/{name}/run", Access::OwnClient(201), Body::ScriptParams, &[201], None),
    route("GET", "/api/v2/executions", Access::OwnClient(200), Body::Empty, &[200], Some(AData::Execution)),
    route("GET", "/api/v2/executions/{id}", Access::OwnedByA, Body::Empty, &[200], Some(AData::Execution)),
    // documents
    route("GET", "/api/v2/documents", Access::OwnClient(200), Body::Empty, &[200], Some(AData::Document)),
    route("GET", "/api/v2/documents/{id}", Access::OwnedByA, Body::Empty, &[200], Some(AData::Document)),
    route("GET", "/api/v2/documents/{id}/files/{file}", Access::OwnedByA, Body::Empty, &[200], Some(AData::Marker)),
    // the audit log (A's shows the creation of its importer)
    route("GET", "/api/v2/audit", Access::OwnClient(200), Body::Empty, &[200], Some(AData::Importer)),
    // alerts: each client's own settings; a test alert without targets is 409
    route("GET", "/api/v2/alerts", Access::OwnClient(200), Body::Empty, &[200], None),
    route("GET", "/api/v2/alerts/settings", Access::OwnClient(200), Body::Empty, &[200], None),
    route("PUT", "/api/v2/alerts/settings", Access::OwnClient(200), Body::AlertSettings, &[200], None),
    route("POST", "/api/v2/alerts/test", Access::OwnClient(409), Body::Empty, &[409], None),
    // the overview (every importer's health)
    route("GET", "/api/v2/overview", Access::OwnClient(200), Body::Empty, &[200], Some(AData::Importer)),
];

/// What the OpenAPI document says of one operation.
struct Documented {
    /// The response status codes it declares (`"200"`, `"404"`, …).
    statuses: BTreeSet<String>,
    /// `security: [{}]`: no credentials needed.
    public: bool,
}

/// Client A's data, made through its API where the API makes it.
struct ClientA {
    importer: String,
    job: String,
    execution: String,
    document: String,
    mail: String,
    /// Every job of A: the one above and the ones a new client gets.
    job_ids: Vec<String>,
}

impl ClientA {
    fn shows(&self, data: AData) -> &str {
        match data {
            AData::Importer => self.importer.as_str(),
            AData::Job => self.job.as_str(),
            AData::Execution => self.execution.as_str(),
            AData::Document => self.document.as_str(),
            AData::Mail => self.mail.as_str(),
            AData::Marker => MARKER,
        }
    }

    /// What no answer to anyone but A may contain.
    fn secrets(&self) -> Vec<&str> {
        let mut secrets = vec![
            MARKER,
            self.importer.as_str(),
            self.execution.as_str(),
            self.document.as_str(),
            self.mail.as_str(),
        ];
        secrets.extend(self.job_ids.iter().map(String::as_str));
        secrets
    }
}

/// Client B's credentials.
struct ClientB {
    token: String,
    /// `mf_session=…`, as the browser sends it back.
    cookie: String,
    csrf: String,
}

enum RequestBody {
    Empty,
    Json(Value),
    Form(Vec<(&'static str, &'static str)>),
}

/// A delegated importer whose Microsoft endpoints nobody answers.
fn importer_body(name: &str) -> Value {
    let mut body = graph_importer_body(name);
    body["endpoints"] = json!({ "authority": UNREACHABLE, "graph": UNREACHABLE });
    body
}

fn job_body(description: &str) -> Value {
    json!({
        "script": "purge-documents",
        "cron": "0 3 * * *",
        "timezone": "UTC",
        "params": { "retention_days": 90 },
        "description": description,
    })
}

/// The body sent to an operation, by anyone. It carries nothing of A's, so
/// B's own creations cannot echo A's marker.
fn request_body(body: Body) -> RequestBody {
    match body {
        Body::Empty => RequestBody::Empty,
        Body::Importer => RequestBody::Json(importer_body("Receipts")),
        Body::Job => RequestBody::Json(job_body("nightly purge")),
        Body::ScriptParams => RequestBody::Json(json!({ "retention_days": 30 })),
        Body::ConfirmForm => RequestBody::Form(vec![("token", "forged-confirmation-token")]),
        Body::AlertSettings => RequestBody::Json(json!({ "failing_runs": 5 })),
    }
}

/// The path of `template` with A's ids in its parameters.
fn fill(template: &str, a: &ClientA) -> String {
    let owner_of_id = if template.starts_with("/api/v2/importers/email/") {
        Some(a.importer.as_str())
    } else if template.starts_with("/api/v2/jobs/") {
        Some(a.job.as_str())
    } else if template.starts_with("/api/v2/executions/") {
        Some(a.execution.as_str())
    } else if template.starts_with("/api/v2/documents/") {
        Some(a.document.as_str())
    } else {
        None
    };
    let mut path = template
        .replace("{mail_id}", &a.mail)
        .replace("{file}", sinks::document::MESSAGE_FILE)
        .replace("{name}", "purge-documents");
    if path.contains("{id}") {
        let id = owner_of_id.unwrap_or_else(|| {
            panic!("{template}: which resource does `{{id}}` name? Teach fill() this path")
        });
        path = path.replace("{id}", id);
    }
    assert!(
        !path.contains('{'),
        "{template}: a path parameter fill() does not know yet: add it"
    );
    path
}

fn is_safe(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// What `cred` (anyone but the owner) must get from `route` on A's ids.
fn expected_status(route: &Route, cred: Cred) -> u16 {
    match (route.access, cred) {
        (Access::Public(status), _) => status,
        (_, Cred::Anonymous) => 401,
        (_, Cred::SessionWithoutCsrf) if !is_safe(route.method) => 403,
        (Access::OwnClient(status), _) => status,
        (Access::OwnedByA, _) => 404,
    }
}

fn excerpt(text: &str) -> String {
    text.chars().take(300).collect()
}

async fn send(
    app: &TestApp,
    b: &ClientB,
    cred: Cred,
    method: &str,
    path: &str,
    body: &RequestBody,
) -> (u16, String) {
    let verb = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut request = app.http.request(verb, app.url(path));
    request = match cred {
        Cred::Owner => request.bearer_auth(&app.token),
        Cred::OtherToken => request.bearer_auth(&b.token),
        Cred::OtherSession => request
            .header(reqwest::header::COOKIE, &b.cookie)
            .header(CSRF_HEADER, &b.csrf),
        Cred::Anonymous => request,
        Cred::SessionWithoutCsrf => request.header(reqwest::header::COOKIE, &b.cookie),
    };
    request = match body {
        RequestBody::Empty => request,
        RequestBody::Json(value) => request.json(value),
        RequestBody::Form(pairs) => request.form(pairs),
    };
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path} as {cred:?}: {e}"));
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("{method} {path} as {cred:?}: reading the body: {e}"));
    (status, text)
}

/// Every operation of the OpenAPI document, keyed by (METHOD, path).
async fn documented_operations(app: &TestApp) -> BTreeMap<(String, String), Documented> {
    let response = app.get("/api/v2/openapi.json").await;
    assert_eq!(response.status(), 200, "the OpenAPI document");
    let document = body_json(response).await;
    let paths = document["paths"]
        .as_object()
        .expect("`paths` in the document");
    let mut operations = BTreeMap::new();
    for (path, item) in paths {
        for method in [
            "get", "put", "post", "delete", "options", "head", "patch", "trace",
        ] {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let statuses: BTreeSet<String> = operation["responses"]
                .as_object()
                .map(|responses| responses.keys().cloned().collect())
                .unwrap_or_default();
            let public = operation
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|requirements| {
                    requirements
                        .iter()
                        .all(|r| r.as_object().is_some_and(|o| o.is_empty()))
                });
            operations.insert(
                (method.to_ascii_uppercase(), path.clone()),
                Documented { statuses, public },
            );
        }
    }
    operations
}

/// ROUTES and the document list the same operations, and agree on which
/// are public.
fn check_the_table_lists_every_operation(operations: &BTreeMap<(String, String), Documented>) {
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(
        table.len(),
        ROUTES.len(),
        "an operation is listed twice in ROUTES"
    );
    let documented: BTreeSet<(String, String)> = operations.keys().cloned().collect();
    let missing: Vec<String> = documented
        .difference(&table)
        .map(|(method, path)| format!("  {method} {path}"))
        .collect();
    let stale: Vec<String> = table
        .difference(&documented)
        .map(|(method, path)| format!("  {method} {path}"))
        .collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "ROUTES in tests/it/isolation.rs must list exactly the operations of /api/v2/openapi.json.\n\
         Documented, but not in ROUTES (add each, with what its owner and other clients get):\n{}\n\
         In ROUTES, but not documented (remove them):\n{}",
        missing.join("\n"),
        stale.join("\n")
    );
    let mismatched: Vec<String> = ROUTES
        .iter()
        .filter(|r| {
            operations[&(r.method.to_owned(), r.path.to_owned())].public
                != matches!(r.access, Access::Public(_))
        })
        .map(|r| format!("  {} {}", r.method, r.path))
        .collect();
    assert!(
        mismatched.is_empty(),
        "ROUTES and the document disagree on which operations need no credentials (`security(())`):\n{}",
        mismatched.join("\n")
    );
}

async fn created_id(response: reqwest::Response, what: &str) -> String {
    let status = response.status();
    let body = body_json(response).await;
    assert_eq!(status, 201, "creating {what}: {body}");
    body["id"].as_str().expect("id").to_owned()
}

/// The execution `id`, polled with `token` until it has ended.
async fn finished_execution(app: &TestApp, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = app
            .http
            .get(app.url(&format!("/api/v2/executions/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET the execution");
        assert_eq!(response.status(), 200, "the execution {id}");
        let execution = body_json(response).await;
        if execution["status"] != "running" {
            return execution;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not end within 60 s: {execution}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A's importer, job and finished run through the API; a document (with
/// its `message.eml` in the spool) and a mail in Error through the store,
/// as an import would leave them.
async fn client_a_data(app: &TestApp) -> ClientA {
    let now = app.clock_now();
    let created = app
        .post_json(
            "/api/v2/importers/email",
            &importer_body(&format!("Invoices {MARKER}")),
        )
        .await;
    let importer = created_id(created, "A's importer").await;
    let created = app.post_json("/api/v2/jobs", &job_body(MARKER)).await;
    let job = created_id(created, "A's job").await;
    let run = app
        .post_json(
            "/api/v2/scripts/purge-documents/run",
            &json!({ "retention_days": 30 }),
        )
        .await;
    let execution = created_id(run, "A's run").await;
    // ended, so that A's executions no longer change by themselves
    finished_execution(app, &app.token, &execution).await;

    let folder = app
        .dir
        .path()
        .join("documents")
        .join(store::clients::DEFAULT_CLIENT)
        .join(&importer)
        .join(DOCUMENT_ID);
    std::fs::create_dir_all(&folder).expect("document folder");
    std::fs::write(
        folder.join(sinks::document::MESSAGE_FILE),
        format!(
            "From: billing@fabrikam.example\r\nSubject: Invoice {MARKER}\r\n\r\nThe invoice of client A.\r\n"
        ),
    )
    .expect("message.eml");
    let inserted = app
        .store
        .insert_document(&DocumentRecord {
            id: DOCUMENT_ID.to_owned(),
            client_id: app.client_id.clone(),
            importer_id: importer.clone(),
            sink: "filesystem".to_owned(),
            location: folder.display().to_string(),
            metadata: DocumentMetadata {
                document_id: DOCUMENT_ID.to_owned(),
                client: store::clients::DEFAULT_CLIENT.to_owned(),
                importer_id: importer.clone(),
                source: DocumentSource {
                    protocol: "graph_delegated".to_owned(),
                    mailbox: "invoices@contoso.com".to_owned(),
                    message_id: "AAMkAD-invoice-1".to_owned(),
                    internet_message_id: Some("<invoice-1@fabrikam.example>".to_owned()),
                },
                subject: Some(format!("Invoice {MARKER}")),
                from: Some("billing@fabrikam.example".to_owned()),
                to: vec!["invoices@contoso.com".to_owned()],
                received_at: Some(now),
                imported_at: now,
                attachments: Vec::new(),
                smime: None,
            },
        })
        .await
        .expect("A's document");
    assert!(inserted, "A's document is new");

    let mail = LedgerEntry::new_mail_id();
    app.store
        .record_ledger(&LedgerEntry {
            importer_id: importer.clone(),
            source_key: MAIL_SOURCE_KEY.to_owned(),
            mail_id: mail.clone(),
            internet_message_id: Some("<newsletter-1@fabrikam.example>".to_owned()),
            mime_sha256: None,
            content_sha256: None,
            document_id: None,
            state: LedgerState::MovedToError,
            reason: Some("rule:subject_block: the subject matches `*newsletter*`".to_owned()),
            subject: Some(format!("Newsletter {MARKER}")),
            sender: Some("news@fabrikam.example".to_owned()),
            received_at: Some(now),
            attempts: 0,
            last_error: None,
            created_at: now,
            updated_at: now,
        })
        .await
        .expect("A's mail in Error");

    let jobs = body_json(app.get("/api/v2/jobs").await).await;
    let job_ids: Vec<String> = jobs
        .as_array()
        .expect("A's jobs")
        .iter()
        .map(|j| j["id"].as_str().expect("job id").to_owned())
        .collect();
    assert!(job_ids.contains(&job), "{jobs}");
    ClientA {
        importer,
        job,
        execution,
        document: DOCUMENT_ID.to_owned(),
        mail,
        job_ids,
    }
}

/// Signs `email` in at `/ui/login` on `host` (which names the client) and
/// returns the session cookie (`mf_session=…`) and what `/ui/session`
/// says of it (`client`, `csrf_token`).
async fn sign_in(app: &TestApp, host: &str, email: &str, password: &str) -> (String, Value) {
    let response = app
        .http
        .post(app.url("/ui/login"))
        .header(reqwest::header::HOST, host)
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .expect("POST /ui/login");
    assert_eq!(response.status(), 303, "{email} signs in at {host}");
    let cookie = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .expect("ASCII")
        .split(';')
        .next()
        .expect("name=value")
        .trim()
        .to_owned();
    assert!(
        cookie.starts_with(&format!("{SESSION_COOKIE}=")),
        "{cookie}"
    );
    let session = app
        .http
        .get(app.url("/ui/session"))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .expect("GET /ui/session");
    assert_eq!(session.status(), 200, "the new session");
    (cookie, body_json(session).await)
}

/// Client B with an API token and an admin signed in at the UI.
async fn client_b(app: &TestApp) -> ClientB {
    let now = app.clock_now();
    let client = app
        .store
        .create_client(OTHER_CLIENT, &[OTHER_HOST.to_owned()], now)
        .await
        .expect("client B");
    let (_, token) = app
        .store
        .create_api_token(&client.id, "B's token", None, now)
        .await
        .expect("B's token");
    app.store
        .create_user(
            &client.id,
            OTHER_EMAIL,
            &SecretString::from(OTHER_PASSWORD),
            now,
        )
        .await
        .expect("B's admin");
    let (cookie, session) = sign_in(app, OTHER_HOST, OTHER_EMAIL, OTHER_PASSWORD).await;
    assert_eq!(session["client"], OTHER_CLIENT, "{session}");
    ClientB {
        token: token.expose_secret().to_owned(),
        cookie,
        csrf: session["csrf_token"]
            .as_str()
            .expect("csrf_token")
            .to_owned(),
    }
}

/// A's data as A reads it: (path, status, body) of each.
async fn snapshot(app: &TestApp, a: &ClientA) -> Vec<(String, u16, String)> {
    let paths = [
        "/api/v2/importers/email".to_owned(),
        format!("/api/v2/importers/email/{}", a.importer),
        format!("/api/v2/importers/email/{}/status", a.importer),
        format!("/api/v2/importers/email/{}/runs", a.importer),
        format!("/api/v2/importers/email/{}/mails", a.importer),
        "/api/v2/jobs".to_owned(),
        format!("/api/v2/jobs/{}", a.job),
        "/api/v2/executions".to_owned(),
        "/api/v2/documents".to_owned(),
        format!("/api/v2/documents/{}", a.document),
        format!(
            "/api/v2/documents/{}/files/{}",
            a.document,
            sinks::document::MESSAGE_FILE
        ),
        "/api/v2/audit".to_owned(),
    ];
    let mut seen = Vec::new();
    for path in paths {
        let response = app.get(&path).await;
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        seen.push((path, status, text));
    }
    seen
}

fn differences(before: &[(String, u16, String)], after: &[(String, u16, String)]) -> Vec<String> {
    before
        .iter()
        .zip(after)
        .filter(|(b, a)| b != a)
        .map(|(b, a)| {
            format!(
                "{}: {} {} → {} {}",
                b.0,
                b.1,
                excerpt(&b.2),
                a.1,
                excerpt(&a.2)
            )
        })
        .collect()
}

#[tokio::test]
async fn every_operation_answers_only_its_owner_and_changes_nothing_for_anyone_else() {
    let app = TestApp::spawn().await;
    let operations = documented_operations(&app).await;
    check_the_table_lists_every_operation(&operations);

    let a = client_a_data(&app).await;
    let b = client_b(&app).await;
    let before = snapshot(&app, &a).await;
    let mut failures: Vec<String> = Vec::new();

    // Everyone but the owner, on A's ids.
    for route in ROUTES {
        let path = fill(route.path, &a);
        let body = request_body(route.body);
        let documented = &operations[&(route.method.to_owned(), route.path.to_owned())];
        for cred in OTHERS {
            let call = format!("{} {} as {cred:?}", route.method, route.path);
            let expected = expected_status(route, cred);
            let (status, text) = send(&app, &b, cred, route.method, &path, &body).await;
            if status != expected {
                failures.push(format!(
                    "{call}: {status} instead of {expected}: {}",
                    excerpt(&text)
                ));
            }
            if !documented.statuses.contains(&status.to_string()) {
                failures.push(format!(
                    "{call}: {status} is not among the documented {:?}",
                    documented.statuses
                ));
            }
            for secret in a.secrets() {
                if text.contains(secret) {
                    failures.push(format!(
                        "{call}: the answer shows client A's `{secret}`: {}",
                        excerpt(&text)
                    ));
                }
            }
        }
        if !is_safe(route.method) {
            let now = snapshot(&app, &a).await;
            for difference in differences(&before, &now) {
                failures.push(format!(
                    "{} {} by others changed A's data: {difference}",
                    route.method, route.path
                ));
            }
        }
    }

    // Filters naming A's ids select nothing of A's.
    for path in [
        format!("/api/v2/documents?importer_id={}", a.importer),
        format!("/api/v2/executions?job_id={}", a.job),
    ] {
        for cred in [Cred::OtherToken, Cred::OtherSession] {
            let (status, text) = send(&app, &b, cred, "GET", &path, &RequestBody::Empty).await;
            if status != 200 || serde_json::from_str::<Value>(&text).ok() != Some(json!([])) {
                failures.push(format!(
                    "GET {path} as {cred:?}: {status} {} instead of 200 []",
                    excerpt(&text)
                ));
            }
        }
    }

    // The overview of one of A's importers is no importer of B's.
    let path = format!("/api/v2/overview?importer_id={}", a.importer);
    for cred in [Cred::OtherToken, Cred::OtherSession] {
        let (status, text) = send(&app, &b, cred, "GET", &path, &RequestBody::Empty).await;
        if status != 404 || text.contains(MARKER) {
            failures.push(format!(
                "GET {path} as {cred:?}: {status} {} instead of 404",
                excerpt(&text)
            ));
        }
    }

    // B may run import-emails for its own client only: naming A's importer
    // makes a failed run of B's, and A's importer is not worked.
    let (status, text) = send(
        &app,
        &b,
        Cred::OtherToken,
        "POST",
        "/api/v2/scripts/import-emails/run",
        &RequestBody::Json(json!({ "importer_id": a.importer.as_str() })),
    )
    .await;
    if status == 201 {
        let id = serde_json::from_str::<Value>(&text).expect("JSON")["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let run = finished_execution(&app, &b.token, &id).await;
        if run["status"] != "failed" {
            failures.push(format!(
                "B's import-emails run naming A's importer did not fail: {run}"
            ));
        }
    } else {
        failures.push(format!(
            "B's import-emails run naming A's importer: {status} instead of 201 (its own, failing run): {}",
            excerpt(&text)
        ));
    }

    let after = snapshot(&app, &a).await;
    for difference in differences(&before, &after) {
        failures.push(format!("A's data changed without A: {difference}"));
    }

    // The owner, last: reads first, then changes, deletions at the end.
    let mut owner_calls: Vec<&Route> = ROUTES.iter().collect();
    owner_calls.sort_by_key(|r| match r.method {
        "GET" | "HEAD" | "OPTIONS" => 0,
        "DELETE" => 2,
        _ => 1,
    });
    for route in owner_calls {
        let path = fill(route.path, &a);
        let call = format!("{} {} as {:?}", route.method, route.path, Cred::Owner);
        let documented = &operations[&(route.method.to_owned(), route.path.to_owned())];
        let (status, text) = send(
            &app,
            &b,
            Cred::Owner,
            route.method,
            &path,
            &request_body(route.body),
        )
        .await;
        if !route.owner.contains(&status) {
            failures.push(format!(
                "{call}: {status} instead of one of {:?}: {}",
                route.owner,
                excerpt(&text)
            ));
        }
        if !documented.statuses.contains(&status.to_string()) {
            failures.push(format!(
                "{call}: {status} is not among the documented {:?}",
                documented.statuses
            ));
        }
        if let Some(data) = route.owner_sees {
            let shown = a.shows(data);
            if !text.contains(shown) {
                failures.push(format!(
                    "{call}: the owner's answer does not show its {data:?} `{shown}`: {}",
                    excerpt(&text)
                ));
            }
        }
    }

    assert!(
        failures.is_empty(),
        "{} isolation failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!(
        "isolation: {} routes × {} credentials checked",
        ROUTES.len(),
        OTHERS.len() + 1
    );
}
