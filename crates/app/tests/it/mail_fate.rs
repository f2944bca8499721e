//! What becomes of each mail, end to end against the Microsoft emulator:
//! a document's identity is its Message-ID *and* its content (two mails
//! sharing a Message-ID make two documents, the same mail again makes none),
//! a mail over `max_mail_bytes` goes to Error without being downloaded, a
//! webhook's refusal and a transient failure repeated over `max_attempts`
//! runs go to Error with their reason, the reason is shown on the mail as an
//! Outlook category, and `…/mails` + `…/reprocess` let an admin see every
//! fate and have a mail decided again once the cause is fixed.
//!
//! The emulator's admin API can add and list messages but not move or
//! categorise them, so what a user does in Outlook (moving a mail back,
//! setting a category) is done here through Graph itself with an app-only
//! token of the emulator — independent of mailferry's Graph client.

use std::path::Path;
use std::sync::{Arc, Mutex};

use msemu::{EmulatorHandle, FaultKind, FaultRule, MessageInfo, demo};
use serde_json::{Value, json};

use crate::support::{TestApp, empty_demo_emulator, invoice_mail, json as body_json};

// ---------------------------------------------------------------- harness

/// An app-only importer on Alice's mailbox that imports PDFs; `extra`'s
/// fields are added (rules, sink, limits).
fn importer_body(emu: &EmulatorHandle, extra: &Value) -> Value {
    let mut body = crate::support::app_only_importer_body(emu, extra);
    if extra.get("name").is_none() {
        body["name"] = json!("Mail fate");
    }
    body
}

async fn create_importer(app: &TestApp, body: &Value) -> String {
    let created = app.post_json("/api/v2/importers/email", body).await;
    assert_eq!(created.status(), 201, "importer created");
    body_json(created).await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// `PUT` needs the whole importer: `body` without `client_secret` keeps the stored one.
async fn replace_importer(app: &TestApp, id: &str, body: &Value) {
    let mut body = body.clone();
    body.as_object_mut()
        .expect("object")
        .remove("client_secret");
    let response = app
        .put_json(&format!("/api/v2/importers/email/{id}"), &body)
        .await;
    let status = response.status();
    assert_eq!(
        status,
        200,
        "PUT: {}",
        response.text().await.unwrap_or_default()
    );
}

/// Runs `import-emails` for every importer of the client, in this process,
/// as the scheduler (or `mailferry run import-emails`) does; returns its log.
async fn run_import(app: &TestApp) -> Vec<String> {
    crate::support::run_import_ok(app).await
}

/// The run's summary line for the importer.
fn summary(log: &[String]) -> &str {
    log.iter()
        .find(|l| l.contains("imported ") && l.contains(", left for retry "))
        .unwrap_or_else(|| panic!("a summary line in {log:#?}"))
}

/// `GET …/mails?state=…`.
async fn mails(app: &TestApp, importer_id: &str, state: &str) -> Vec<Value> {
    let response = app
        .get(&format!(
            "/api/v2/importers/email/{importer_id}/mails?state={state}"
        ))
        .await;
    assert_eq!(response.status(), 200);
    body_json(response)
        .await
        .as_array()
        .expect("a list")
        .clone()
}

async fn reprocess(app: &TestApp, importer_id: &str, mail_id: &str) -> reqwest::Response {
    app.post_json(
        &format!("/api/v2/importers/email/{importer_id}/mails/{mail_id}/reprocess"),
        &json!({}),
    )
    .await
}

/// `GET /api/v2/documents?importer_id=…`.
async fn documents(app: &TestApp, importer_id: &str) -> Vec<Value> {
    let response = app
        .get(&format!(
            "/api/v2/documents?importer_id={importer_id}&limit=1000"
        ))
        .await;
    assert_eq!(response.status(), 200);
    body_json(response)
        .await
        .as_array()
        .expect("a list")
        .clone()
}

/// A message of Alice's mailbox by its immutable id (kept through moves).
fn message(emu: &EmulatorHandle, immutable_id: &str) -> MessageInfo {
    emu.messages(demo::ALICE)
        .expect("messages")
        .into_iter()
        .find(|m| m.immutable_id == immutable_id)
        .unwrap_or_else(|| panic!("message {immutable_id} is still in the mailbox"))
}

fn mailferry_categories(m: &MessageInfo) -> Vec<&str> {
    m.categories
        .iter()
        .map(String::as_str)
        .filter(|c| c.starts_with("mailferry: "))
        .collect()
}

/// Percent-encodes one URL path segment as mailferry's Graph client does
/// (everything but RFC 3986's unreserved characters, upper-case hex).
fn segment(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The exact path of a message's `$value` (raw MIME) as mailferry requests
/// it: a fault rule with this `path_prefix` concerns that message's download
/// and nothing else.
fn mime_download_path(immutable_id: &str) -> String {
    format!(
        "/v1.0/users/{}/messages/{}/$value",
        segment(demo::ALICE),
        segment(immutable_id)
    )
}

fn status_fault(path_prefix: String, status: u16, count: Option<u32>) -> FaultRule {
    FaultRule {
        kind: FaultKind::Status {
            status,
            retry_after: Some(0.02),
        },
        count,
        rate: None,
        path_prefix,
        method: Some("GET".to_owned()),
        id: 0,
    }
}

/// What a user does in Outlook, done through Graph with the daemon app's token.
struct Outlook {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Outlook {
    async fn connect(emu: &EmulatorHandle) -> Self {
        let http = reqwest::Client::new();
        let form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
            segment(demo::DAEMON_CLIENT_ID),
            segment(demo::DAEMON_CLIENT_SECRET),
            segment("https://graph.microsoft.com/.default")
        );
        let response = http
            .post(format!(
                "{}/{}/oauth2/v2.0/token",
                emu.base_url(),
                demo::TENANT_ID
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .expect("token request");
        assert_eq!(response.status(), 200, "app-only token");
        let token = body_json(response).await["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        Self {
            base: emu.base_url(),
            token,
            http,
        }
    }

    fn message_url(&self, immutable_id: &str) -> String {
        format!(
            "{}/v1.0/users/{}/messages/{}",
            self.base,
            segment(demo::ALICE),
            segment(immutable_id)
        )
    }

    /// Moves a message to a folder (by id), as dragging it in Outlook does.
    async fn move_to(&self, emu: &EmulatorHandle, immutable_id: &str, folder_path: &str) {
        let folder = emu
            .folders(demo::ALICE)
            .expect("folders")
            .into_iter()
            .find(|f| f.path == folder_path)
            .unwrap_or_else(|| panic!("folder {folder_path}"));
        let response = self
            .http
            .post(format!("{}/move", self.message_url(immutable_id)))
            .bearer_auth(&self.token)
            .header("Prefer", "IdType=\"ImmutableId\"")
            .json(&json!({ "destinationId": folder.id }))
            .send()
            .await
            .expect("move");
        assert_eq!(response.status(), 201, "moved to {folder_path}");
        assert_eq!(message(emu, immutable_id).folder_path, folder_path);
    }

    async fn set_categories(&self, immutable_id: &str, categories: &[&str]) {
        let response = self
            .http
            .patch(self.message_url(immutable_id))
            .bearer_auth(&self.token)
            .header("Prefer", "IdType=\"ImmutableId\"")
            .json(&json!({ "categories": categories }))
            .send()
            .await
            .expect("patch");
        assert_eq!(response.status(), 200, "categories set");
    }
}

// ------------------------------------------------------------------ mails

fn pdf(len: usize, seed: u64) -> Vec<u8> {
    import::corpus::file_bytes("pdf", len, seed)
}

/// The document whose `message.eml` holds exactly `raw`.
fn document_of<'a>(docs: &'a [Value], raw: &[u8]) -> &'a Value {
    docs.iter()
        .find(|d| {
            std::fs::read(Path::new(d["location"].as_str().expect("location")).join("message.eml"))
                .is_ok_and(|eml| eml == raw)
        })
        .expect("a document holding the mail's original bytes")
}

/// The bytes of a document's only attachment, read from the spool.
fn only_attachment(doc: &Value) -> Vec<u8> {
    let attachments = doc["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1, "{doc}");
    let file = attachments[0]["file"].as_str().expect("file");
    std::fs::read(Path::new(doc["location"].as_str().expect("location")).join(file))
        .expect("attachment on disk")
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn two_mails_sharing_a_message_id_make_two_documents_and_the_same_mail_again_makes_none() {
    let app = TestApp::spawn().await;
    let emu = empty_demo_emulator().await;
    // An ERP that reuses one Message-ID: same sender, subject, date and
    // text, only the PDF differs.
    let (pdf1, pdf2) = (pdf(4_000, 1), pdf(4_000, 2));
    let raw1 = invoice_mail("<INV-REUSED@erp.fabrikam.example>", "Invoice", &pdf1);
    let raw2 = invoice_mail("<INV-REUSED@erp.fabrikam.example>", "Invoice", &pdf2);
    let first = emu.add_message(demo::ALICE, "Inbox", &raw1).expect("add");
    let second = emu.add_message(demo::ALICE, "Inbox", &raw2).expect("add");
    let importer_id = create_importer(&app, &importer_body(&emu, &json!({}))).await;

    let log = run_import(&app).await;
    assert!(
        summary(&log).contains("imported 2, to Error 0, left for retry 0"),
        "{log:#?}"
    );
    let docs = documents(&app, &importer_id).await;
    assert_eq!(docs.len(), 2, "{docs:#?}");
    let (doc1, doc2) = (document_of(&docs, &raw1), document_of(&docs, &raw2));
    assert_ne!(doc1["document_id"], doc2["document_id"], "two documents");
    assert_eq!(
        doc1["source"]["internet_message_id"], doc2["source"]["internet_message_id"],
        "one Message-ID"
    );
    assert!(
        only_attachment(doc1) == pdf1,
        "the first document holds the first PDF, byte for byte"
    );
    assert!(
        only_attachment(doc2) == pdf2,
        "the second document holds the second PDF, byte for byte"
    );
    for m in [&first, &second] {
        assert_eq!(message(&emu, &m.immutable_id).folder_path, "Exported");
    }
    let exported = mails(&app, &importer_id, "exported").await;
    let mut listed: Vec<&str> = exported
        .iter()
        .map(|m| m["document_id"].as_str().expect("document_id"))
        .collect();
    listed.sort_unstable();
    let mut want = vec![
        doc1["document_id"].as_str().expect("id"),
        doc2["document_id"].as_str().expect("id"),
    ];
    want.sort_unstable();
    assert_eq!(listed, want, "the ledger names both documents");

    // A user drags the first mail back from Exported to the Inbox.
    let outlook = Outlook::connect(&emu).await;
    outlook.move_to(&emu, &first.immutable_id, "Inbox").await;
    let log = run_import(&app).await;
    let line = summary(&log);
    assert!(
        line.contains("imported 0, to Error 0, left for retry 0")
            && line.contains("completed from an earlier run 1"),
        "{log:#?}"
    );
    assert_eq!(
        message(&emu, &first.immutable_id).folder_path,
        "Exported",
        "moved to Exported again"
    );

    // The same mail delivered again (a new Graph id, the same bytes) is
    // the same mail too.
    let again = emu.add_message(demo::ALICE, "Inbox", &raw1).expect("add");
    let log = run_import(&app).await;
    let line = summary(&log);
    assert!(
        line.contains("imported 0, to Error 0, left for retry 0")
            && line.contains("completed from an earlier run 1"),
        "{log:#?}"
    );
    assert_eq!(message(&emu, &again.immutable_id).folder_path, "Exported");

    let after = documents(&app, &importer_id).await;
    let mut ids: Vec<&str> = after
        .iter()
        .map(|d| d["document_id"].as_str().expect("id"))
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, want, "no new document");
}

#[tokio::test]
async fn an_oversized_mail_goes_to_error_as_too_large_without_being_downloaded() {
    let app = TestApp::spawn().await;
    let emu = empty_demo_emulator().await;
    let big_pdf = pdf(36_000, 7);
    let big_raw = invoice_mail("<big-scan@erp.fabrikam.example>", "Big scan", &big_pdf);
    assert!(
        (45_000..60_000).contains(&big_raw.len()),
        "{}",
        big_raw.len()
    );
    let small_raw = invoice_mail(
        "<small@erp.fabrikam.example>",
        "Small invoice",
        &pdf(2_000, 8),
    );
    let big = emu
        .add_message(demo::ALICE, "Inbox", &big_raw)
        .expect("add");
    let small = emu
        .add_message(demo::ALICE, "Inbox", &small_raw)
        .expect("add");
    let body = importer_body(&emu, &json!({ "max_mail_bytes": 20_000 }));
    let importer_id = create_importer(&app, &body).await;

    // The emulator keeps no log of requests; a fault rule on exactly the
    // big mail's `$value` path is the tripwire: it fires (and is counted)
    // only if that download is requested.
    emu.add_fault(status_fault(
        mime_download_path(&big.immutable_id),
        503,
        None,
    ));
    let log = run_import(&app).await;
    assert_eq!(
        emu.counters().faults_fired,
        0,
        "the emulator saw a `$value` request for the oversized mail: {log:#?}"
    );
    assert!(
        summary(&log).contains("imported 1, to Error 1 (too_large: 1), left for retry 0"),
        "{log:#?}"
    );
    assert_eq!(message(&emu, &small.immutable_id).folder_path, "Exported");
    let big_now = message(&emu, &big.immutable_id);
    assert_eq!(big_now.folder_path, "Error");
    assert_eq!(mailferry_categories(&big_now), ["mailferry: too_large"]);
    let errors = mails(&app, &importer_id, "error").await;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["reason"]["code"], "too_large");
    let detail = errors[0]["reason"]["detail"].as_str().expect("detail");
    assert!(
        detail.contains(&big_raw.len().to_string()) && detail.contains("20000"),
        "the detail names the size and the limit: {detail}"
    );
    assert_eq!(errors[0]["document_id"], Value::Null);

    // The tripwire is on the path mailferry really uses: with the limit
    // raised and the mail reprocessed, its download trips it once (then
    // succeeds on the client's retry) and the mail is imported whole.
    emu.clear_faults();
    emu.add_fault(status_fault(
        mime_download_path(&big.immutable_id),
        503,
        Some(1),
    ));
    let mut raised = body.clone();
    raised["max_mail_bytes"] = json!(200_000);
    replace_importer(&app, &importer_id, &raised).await;
    let mail_id = errors[0]["mail_id"].as_str().expect("mail_id");
    assert_eq!(reprocess(&app, &importer_id, mail_id).await.status(), 202);
    let log = run_import(&app).await;
    assert_eq!(emu.counters().faults_fired, 1, "{log:#?}");
    assert!(
        summary(&log).contains("imported 1, to Error 0, left for retry 0"),
        "{log:#?}"
    );
    let docs = documents(&app, &importer_id).await;
    assert!(only_attachment(document_of(&docs, &big_raw)) == big_pdf);
    let big_now = message(&emu, &big.immutable_id);
    assert_eq!(big_now.folder_path, "Exported");
    assert!(mailferry_categories(&big_now).is_empty(), "{big_now:?}");
}

/// (Idempotency-Key, body length) of each request the receiver got.
type Requests = Arc<Mutex<Vec<(String, usize)>>>;

async fn refuse(
    axum::extract::State(requests): axum::extract::State<Requests>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> (axum::http::StatusCode, &'static str) {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    requests.lock().expect("lock").push((key, body.len()));
    (
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "invoice refused:\n  field `vat_id` is missing",
    )
}

#[tokio::test]
async fn a_webhook_answering_422_sends_the_mail_to_error_as_sink_rejected_after_one_post() {
    let app = TestApp::spawn().await;
    let emu = empty_demo_emulator().await;
    let requests: Requests = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(refuse))
        .with_state(requests.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let raw = invoice_mail(
        "<refused@erp.fabrikam.example>",
        "Invoice 4711",
        &pdf(3_000, 11),
    );
    let mail = emu.add_message(demo::ALICE, "Inbox", &raw).expect("add");
    let sink = json!({ "kind": "webhook", "url": url, "timeout_secs": 5, "attempts": 3 });
    let importer_id = create_importer(&app, &importer_body(&emu, &json!({ "sink": sink }))).await;

    let log = run_import(&app).await;
    assert!(
        summary(&log).contains("imported 0, to Error 1 (sink_rejected: 1), left for retry 0"),
        "{log:#?}"
    );
    {
        let got = requests.lock().expect("lock");
        assert_eq!(got.len(), 1, "a refusal is final: one POST, no retry");
        assert!(!got[0].0.is_empty() && got[0].1 > raw.len(), "{got:?}");
    }
    let errors = mails(&app, &importer_id, "error").await;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["reason"]["code"], "sink_rejected");
    let detail = errors[0]["reason"]["detail"].as_str().expect("detail");
    assert!(
        detail.contains("422") && detail.contains("field `vat_id` is missing"),
        "the detail has the status and the receiver's words: {detail}"
    );
    assert_eq!(errors[0]["subject"], "Invoice 4711");
    let now = message(&emu, &mail.immutable_id);
    assert_eq!(now.folder_path, "Error");
    assert_eq!(mailferry_categories(&now), ["mailferry: sink_rejected"]);
    assert!(
        documents(&app, &importer_id).await.is_empty(),
        "no document"
    );
}

#[tokio::test]
async fn a_download_failing_in_max_attempts_runs_goes_to_error_as_retries_exhausted() {
    let app = TestApp::spawn().await;
    let emu = empty_demo_emulator().await;
    let failing_raw = invoice_mail(
        "<flaky@erp.fabrikam.example>",
        "Invoice 503",
        &pdf(3_000, 21),
    );
    let healthy_raw = invoice_mail(
        "<fine@erp.fabrikam.example>",
        "Invoice 200",
        &pdf(3_000, 22),
    );
    let failing = emu
        .add_message(demo::ALICE, "Inbox", &failing_raw)
        .expect("add");
    let healthy = emu
        .add_message(demo::ALICE, "Inbox", &healthy_raw)
        .expect("add");
    let importer_id =
        create_importer(&app, &importer_body(&emu, &json!({ "max_attempts": 2 }))).await;
    // Every download of this one message answers 503; nothing else fails.
    emu.add_fault(status_fault(
        mime_download_path(&failing.immutable_id),
        503,
        None,
    ));

    let log = run_import(&app).await;
    assert!(
        summary(&log).contains("imported 1, to Error 0, left for retry 1"),
        "{log:#?}"
    );
    assert!(emu.counters().faults_fired >= 1);
    assert_eq!(message(&emu, &healthy.immutable_id).folder_path, "Exported");
    assert_eq!(message(&emu, &failing.immutable_id).folder_path, "Inbox");
    let pending = mails(&app, &importer_id, "pending").await;
    assert_eq!(pending.len(), 1, "{pending:#?}");
    assert_eq!(pending[0]["attempts"], 1);
    let last_error = pending[0]["last_error"].as_str().expect("last_error");
    assert!(last_error.contains("503"), "{last_error}");
    assert_eq!(pending[0]["reason"], Value::Null);

    let log = run_import(&app).await;
    assert!(
        summary(&log).contains("imported 0, to Error 1 (retries_exhausted: 1), left for retry 0"),
        "{log:#?}"
    );
    assert!(mails(&app, &importer_id, "pending").await.is_empty());
    let errors = mails(&app, &importer_id, "error").await;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["reason"]["code"], "retries_exhausted");
    assert_eq!(errors[0]["attempts"], 2);
    let detail = errors[0]["reason"]["detail"].as_str().expect("detail");
    assert!(
        detail.contains("2 runs") && detail.contains("503"),
        "the detail names the runs and the last error: {detail}"
    );
    let now = message(&emu, &failing.immutable_id);
    assert_eq!(now.folder_path, "Error");
    assert_eq!(mailferry_categories(&now), ["mailferry: retries_exhausted"]);
    assert_eq!(documents(&app, &importer_id).await.len(), 1);
}

/// An importer that blocks newsletters, and its mails sent to Error by the
/// rule in a first run.
struct Newsletters {
    app: TestApp,
    emu: EmulatorHandle,
    outlook: Outlook,
    importer_id: String,
    /// The importer's body without `rules`, for the admin's `PUT`.
    without_rule: Value,
    /// (the emulator's message, its raw MIME, its PDF)
    mails: Vec<(MessageInfo, Vec<u8>, Vec<u8>)>,
}

impl Newsletters {
    /// `subjects` each get a mail with a PDF; the first also has the
    /// user's own category `Red`. After the first run all are in Error.
    async fn in_error(subjects: &[&str]) -> Self {
        let app = TestApp::spawn().await;
        let emu = empty_demo_emulator().await;
        let outlook = Outlook::connect(&emu).await;
        let mut mails = Vec::new();
        for (n, subject) in subjects.iter().enumerate() {
            let pdf = pdf(3_000, 30 + n as u64);
            let raw = invoice_mail(&format!("<news-{n}@news.fabrikam.example>"), subject, &pdf);
            let m = emu.add_message(demo::ALICE, "Inbox", &raw).expect("add");
            mails.push((m, raw, pdf));
        }
        outlook
            .set_categories(&mails[0].0.immutable_id, &["Red"])
            .await;
        let with_rule = importer_body(
            &emu,
            &json!({ "rules": { "subject_block": ["*newsletter*"] } }),
        );
        let importer_id = create_importer(&app, &with_rule).await;
        let log = run_import(&app).await;
        assert!(
            summary(&log).contains(&format!(
                "imported 0, to Error {n} (rule:subject_block: {n}), left for retry 0",
                n = subjects.len()
            )),
            "{log:#?}"
        );
        for (m, _, _) in &mails {
            let now = message(&emu, &m.immutable_id);
            assert_eq!(now.folder_path, "Error", "{}", m.subject);
            assert_eq!(
                mailferry_categories(&now),
                ["mailferry: rule:subject_block"],
                "{}",
                m.subject
            );
        }
        assert_eq!(
            message(&emu, &mails[0].0.immutable_id).categories,
            ["Red", "mailferry: rule:subject_block"],
            "the reason is added beside the user's category"
        );
        let mut without_rule = with_rule.clone();
        without_rule
            .as_object_mut()
            .expect("object")
            .remove("rules");
        Self {
            app,
            emu,
            outlook,
            importer_id,
            without_rule,
            mails,
        }
    }

    /// The admin drops the rule: `PUT` of the whole importer without it.
    async fn drop_the_rule(&self) {
        replace_importer(&self.app, &self.importer_id, &self.without_rule).await;
    }

    /// After a run: each mail in Exported with one document holding its PDF,
    /// and the ledger naming that document.
    async fn assert_exported(&self) {
        assert!(
            mails(&self.app, &self.importer_id, "error")
                .await
                .is_empty()
        );
        let exported = mails(&self.app, &self.importer_id, "exported").await;
        assert_eq!(exported.len(), self.mails.len(), "{exported:#?}");
        let docs = documents(&self.app, &self.importer_id).await;
        assert_eq!(docs.len(), self.mails.len());
        for (m, raw, pdf) in &self.mails {
            let doc = document_of(&docs, raw);
            assert!(only_attachment(doc) == *pdf, "{}", m.subject);
            assert!(
                exported
                    .iter()
                    .any(|e| e["document_id"] == doc["document_id"]),
                "{}: the ledger names its document",
                m.subject
            );
            assert_eq!(
                message(&self.emu, &m.immutable_id).folder_path,
                "Exported",
                "{}",
                m.subject
            );
        }
    }
}

#[tokio::test]
async fn reprocessing_a_mail_stopped_by_a_rule_that_was_dropped_imports_it() {
    let t = Newsletters::in_error(&["Weekly newsletter"]).await;
    let (weekly, _, _) = &t.mails[0];
    let errors = mails(&t.app, &t.importer_id, "error").await;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["reason"]["code"], "rule:subject_block");
    assert_eq!(errors[0]["subject"], "Weekly newsletter");
    let mail_id = errors[0]["mail_id"].as_str().expect("mail_id").to_owned();

    t.drop_the_rule().await;
    let response = reprocess(&t.app, &t.importer_id, &mail_id).await;
    assert_eq!(response.status(), 202);
    let view = body_json(response).await;
    assert_eq!(view["state"], "pending", "{view}");
    assert_eq!(view["mail_id"], mail_id.as_str());
    assert_eq!(view["reason"], Value::Null);
    let back = message(&t.emu, &weekly.immutable_id);
    assert_eq!(back.folder_path, "Inbox");
    assert_eq!(
        back.categories,
        ["Red"],
        "mailferry's category is removed, the user's kept"
    );
    assert_eq!(mails(&t.app, &t.importer_id, "pending").await.len(), 1);

    let again = reprocess(&t.app, &t.importer_id, &mail_id).await;
    assert_eq!(
        again.status(),
        409,
        "only a mail in Error can be reprocessed"
    );
    let why = body_json(again).await["detail"]
        .as_str()
        .expect("detail")
        .to_owned();
    assert!(
        why.starts_with("“Weekly newsletter” from ") && why.contains("is not in Error"),
        "the mail is named by subject and sender: {why}"
    );
    assert_eq!(message(&t.emu, &weekly.immutable_id).folder_path, "Inbox");

    let log = run_import(&t.app).await;
    assert!(
        summary(&log).contains("imported 1, to Error 0, left for retry 0"),
        "{log:#?}"
    );
    t.assert_exported().await;
    assert_eq!(message(&t.emu, &weekly.immutable_id).categories, ["Red"]);
    let exported = reprocess(&t.app, &t.importer_id, &mail_id).await;
    assert_eq!(
        exported.status(),
        409,
        "an exported mail cannot be reprocessed"
    );
}

#[tokio::test]
async fn a_mail_moved_back_from_error_by_hand_is_decided_afresh_and_loses_its_error_category() {
    let t = Newsletters::in_error(&["Weekly newsletter", "Monthly newsletter"]).await;
    t.drop_the_rule().await;
    // Without the API: the user drags both mails from Error to the Inbox in Outlook.
    for (m, _, _) in &t.mails {
        t.outlook.move_to(&t.emu, &m.immutable_id, "Inbox").await;
    }

    let log = run_import(&t.app).await;
    assert!(
        summary(&log).contains("imported 2, to Error 0, left for retry 0"),
        "decided afresh with the rule dropped: {log:#?}"
    );
    t.assert_exported().await;
    for (m, _, _) in &t.mails {
        let now = message(&t.emu, &m.immutable_id);
        assert!(
            mailferry_categories(&now).is_empty(),
            "{}: an exported mail still carries mailferry's Error reason: {:?}",
            m.subject,
            now.categories
        );
    }
    assert_eq!(
        message(&t.emu, &t.mails[0].0.immutable_id).categories,
        ["Red"]
    );
}
