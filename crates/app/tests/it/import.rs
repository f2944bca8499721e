//! The import against the Microsoft emulator: the corpus lands where the
//! rules say with every byte intact, the dry run predicts the real run,
//! bad folder settings stop a run before any mail is touched, fail points
//! and repeated SIGKILLs of `mailferry run import-emails` lose and
//! duplicate nothing, throttling and server errors only slow it down, and
//! the webhook sink delivers each document once.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::clock::{Clock, SystemClock};
use import::corpus::{self, Expected};
use msemu::{EmulatorHandle, FaultKind, FaultRule, demo};
use scheduler::{Runner, RunnerConfig};
use serde_json::{Value, json};
use store::Store;
use store::executions::{Execution, ExecutionStatus, TriggerKind};
use store::ledger::LedgerState;

use test_support::Db;
use test_support::dovecot::Dovecot;

use crate::support::{
    TestApp, data_dir_store, empty_demo_emulator, json as body_json, mailferry_bin,
};

/// An app-only importer on Alice's mailbox with the corpus's rules.
fn importer_body(emu: &EmulatorHandle, folders: Value, sink: Option<Value>) -> Value {
    let mut body = json!({
        "name": "Corpus",
        "protocol": "graph_client_credentials",
        "client_id": demo::DAEMON_CLIENT_ID,
        "client_secret": demo::DAEMON_CLIENT_SECRET,
        "tenant_id": demo::TENANT_ID,
        "mailbox": demo::ALICE,
        "folders": folders,
        "endpoints": { "authority": emu.base_url(), "graph": emu.base_url() },
        "attachments": corpus::attachment_rules_json(),
        "rules": corpus::import_rules_json(),
    });
    if let Some(sink) = sink {
        body["sink"] = sink;
    }
    body
}

fn default_folders() -> Value {
    json!({ "inbox": "Inbox", "exported": "Exported", "error": "Error" })
}

/// Runs `import-emails` in this process, as the scheduler would.
async fn run_import(
    store: &Store,
    clock: Arc<dyn Clock>,
    data_dir: &Path,
    client_id: &str,
    params: Value,
) -> Execution {
    let runner = Runner::new(
        store.clone(),
        clock.clone(),
        crate::support::scripts(store, clock, data_dir),
        RunnerConfig::default(),
    );
    let Value::Object(params) = params else {
        panic!("params are an object")
    };
    runner
        .run(client_id, "import-emails", params, TriggerKind::Manual)
        .await
        .expect("the run starts")
}

/// A mail's key in the emulator: its Message-ID, else its subject.
fn key_of(imid: Option<&str>, subject: &str) -> String {
    imid.map_or_else(|| format!("subject:{subject}"), str::to_owned)
}

/// Where each mail of Alice's mailbox is: key → folder paths (one per copy).
/// A mail server the crash tests run against, so that one behaviour suite
/// covers both protocols: the Microsoft emulator (Graph) and Dovecot (IMAP).
/// Mails are delivered and found through the server's own means (the
/// emulator's admin API, `doveadm`), never through mailferry's clients.
trait MailServer {
    fn name(&self) -> &'static str;
    /// Key (Message-ID, else `subject:…`) → the folders (`Inbox`,
    /// `Exported`, `Error`, …) holding a copy.
    fn places(&self) -> HashMap<String, Vec<String>>;
    fn deliver(&self, raw: &[u8]);
    /// An importer of this server's test mailbox, with the corpus's rules.
    fn importer_body(&self, folders: Value) -> Value;
    /// Slower answers, so SIGKILLs land mid-import; `full_speed` undoes it.
    fn slow_down(&self) {}
    fn full_speed(&self) {}

    fn inbox_count(&self) -> usize {
        self.places()
            .values()
            .flatten()
            .filter(|f| *f == "Inbox")
            .count()
    }
}

impl MailServer for EmulatorHandle {
    fn name(&self) -> &'static str {
        "Graph"
    }

    fn places(&self) -> HashMap<String, Vec<String>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for m in self.messages(demo::ALICE).expect("messages") {
            out.entry(key_of(m.internet_message_id.as_deref(), &m.subject))
                .or_default()
                .push(m.folder_path);
        }
        out
    }

    fn deliver(&self, raw: &[u8]) {
        self.add_message(demo::ALICE, "Inbox", raw).expect("add");
    }

    fn importer_body(&self, folders: Value) -> Value {
        importer_body(self, folders, None)
    }

    fn slow_down(&self) {
        let rule = |kind: FaultKind, rate: Option<f64>| FaultRule {
            kind,
            count: None,
            rate,
            path_prefix: "/v1.0/".into(),
            method: None,
            id: 0,
        };
        // Mails are worked several at a time: the latency of one Graph
        // request must make a run last long enough to be killed.
        self.add_fault(rule(FaultKind::Latency { ms: 50 }, None));
        // Storms: throttling, server errors and dropped connections on a
        // few requests, so kills also land mid-retry.
        self.add_fault(rule(FaultKind::Throttle { retry_after: 0.2 }, Some(0.03)));
        self.add_fault(rule(
            FaultKind::Status {
                status: 503,
                retry_after: None,
            },
            Some(0.02),
        ));
        self.add_fault(rule(FaultKind::Drop, Some(0.01)));
    }

    fn full_speed(&self) {
        self.clear_faults();
    }
}

/// A mailbox of its own on the test Dovecot.
struct DovecotMailbox {
    dovecot: Dovecot,
    user: String,
    password: String,
}

impl DovecotMailbox {
    fn new() -> Self {
        let dovecot = Dovecot::from_env();
        let (user, password) = dovecot.new_user();
        Self {
            dovecot,
            user,
            password,
        }
    }
}

impl MailServer for DovecotMailbox {
    fn name(&self) -> &'static str {
        "IMAP"
    }

    fn places(&self) -> HashMap<String, Vec<String>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for (folder, shown) in [
            ("INBOX", "Inbox"),
            ("Exported", "Exported"),
            ("Error", "Error"),
        ] {
            for m in self.dovecot.mails(&self.user, folder) {
                out.entry(m.message_id).or_default().push(shown.to_owned());
            }
        }
        out
    }

    fn deliver(&self, raw: &[u8]) {
        self.dovecot.save(&self.user, "INBOX", raw);
    }

    fn importer_body(&self, folders: Value) -> Value {
        let mut folders = folders;
        if folders["inbox"] == "Inbox" {
            folders["inbox"] = json!("INBOX");
        }
        json!({
            "name": "Corpus over IMAP",
            "protocol": "imap",
            "host": self.dovecot.host,
            "port": self.dovecot.imaps_port,
            "security": "tls",
            "tls_ca_pem": self.dovecot.ca_pem,
            "username": self.user,
            "password": self.password,
            "folders": folders,
            "attachments": corpus::attachment_rules_json(),
            "rules": corpus::import_rules_json(),
        })
    }
}

fn sha(bytes: &[u8]) -> String {
    sinks::sha256_hex(bytes)
}

/// The `Message-ID` the emulator derives from a raw mail (as Graph shows it).
fn imid_of(raw: &[u8]) -> Option<String> {
    import::analyze(raw, &corpus::attachment_rules(), &corpus::import_rules())
        .facts
        .internet_message_id
}

/// Folder names of the spool for one importer, without temp folders.
fn spool_documents(data_dir: &Path, client: &str, importer_id: &str) -> (Vec<String>, Vec<String>) {
    let dir = data_dir.join("documents").join(client).join(importer_id);
    let (mut docs, mut temps) = (Vec::new(), Vec::new());
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                temps.push(name);
            } else {
                docs.push(name);
            }
        }
    }
    (docs, temps)
}

#[tokio::test]
async fn the_corpus_lands_where_the_rules_say_and_the_dry_run_predicted_it() {
    let app = TestApp::spawn().await;
    let emu = empty_demo_emulator().await;
    // Exchange holds only mails with a header section: the corpus's
    // "not MIME at all" file is refused by the emulator as by Microsoft
    // (the crate's own tests cover it against an in-memory mailbox).
    let mut mails: Vec<_> = corpus::corpus()
        .into_iter()
        .filter(|m| m.name != "not_mime")
        .collect();
    mails.push(corpus::large_mail());
    for m in &mails {
        emu.add_message(demo::ALICE, "Inbox", &m.raw)
            .unwrap_or_else(|e| panic!("{}: the emulator takes it: {e}", m.name));
    }
    let created = app
        .post_json(
            "/api/v2/importers/email",
            &importer_body(&emu, default_folders(), None),
        )
        .await;
    assert_eq!(created.status(), 201);
    let importer_id = body_json(created).await["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // The dry run, through the API: a prediction per mail, nothing touched.
    let response = app
        .post_json(
            &format!("/api/v2/importers/email/{importer_id}/dry-run"),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let predictions = body_json(response).await;
    let predictions = predictions.as_array().expect("a list");
    assert_eq!(predictions.len(), mails.len());
    assert_eq!(emu.inbox_count(), mails.len(), "the dry run moved nothing");
    assert!(
        app.store
            .ledger_entries(&importer_id)
            .await
            .expect("ledger")
            .is_empty(),
        "the dry run recorded nothing"
    );
    let predicted: HashMap<String, &Value> = predictions
        .iter()
        .map(|p| {
            (
                key_of(
                    p["internet_message_id"].as_str(),
                    p["subject"].as_str().unwrap_or(""),
                ),
                p,
            )
        })
        .collect();

    // The dry run as a script parameter also touches nothing.
    let dry = run_import(
        &app.store,
        app.clock.clone(),
        app.dir.path(),
        &app.client_id,
        json!({"importer_id": importer_id, "dry_run": true}),
    )
    .await;
    assert_eq!(dry.status, ExecutionStatus::Succeeded, "{:?}", dry.log);
    assert!(
        dry.log
            .iter()
            .any(|l| l.contains("would error") && l.contains("no_importable_attachment")),
        "{:?}",
        dry.log
    );
    assert_eq!(emu.inbox_count(), mails.len());
    let status_path = format!("/api/v2/importers/email/{importer_id}/status");
    let runs_path = format!("/api/v2/importers/email/{importer_id}/runs");
    let status = body_json(app.get(&status_path).await).await;
    assert!(
        status["last_import"].is_null(),
        "a dry run records no run: {status}"
    );
    assert_eq!(body_json(app.get(&runs_path).await).await, json!([]));

    let started = Instant::now();
    let run = run_import(
        &app.store,
        app.clock.clone(),
        app.dir.path(),
        &app.client_id,
        json!({}),
    )
    .await;
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.log);
    eprintln!(
        "corpus of {} mails imported in {:?}",
        mails.len(),
        started.elapsed()
    );
    let imports = mails
        .iter()
        .filter(|m| matches!(m.expected, Expected::Import(_)))
        .count();
    let errors = mails.len() - imports;
    assert!(
        run.log.iter().any(
            |l| l.contains(&format!("imported {imports}, to Error {errors}"))
                && l.contains("left for retry 0")
        ),
        "{:?}",
        run.log
    );
    // The run is recorded as data: typed counts, linked to the execution.
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    for m in &mails {
        if let Expected::Error(code) = &m.expected {
            *by_reason.entry(code.to_string()).or_default() += 1;
        }
    }
    let runs = body_json(app.get(&runs_path).await).await;
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
    let recorded = &runs[0];
    assert_eq!(recorded["execution_id"], json!(run.id), "{recorded}");
    assert_eq!(recorded["status"], "succeeded");
    assert_eq!(recorded["imported"], json!(imports));
    assert_eq!(recorded["to_error"], json!(errors));
    assert_eq!(recorded["to_error_by_reason"], json!(by_reason));
    assert_eq!(recorded["left_for_retry"], 0);
    assert_eq!(recorded["stopped_early"], false);
    assert_eq!(recorded["error"], Value::Null);
    assert!(recorded["bytes"].as_u64().expect("bytes") > 0, "{recorded}");
    let summary = recorded["summary"].as_str().expect("summary");
    assert!(
        run.log
            .iter()
            .any(|l| l.ends_with(&format!("): {summary}"))),
        "the summary is the log's line: {summary} in {:?}",
        run.log
    );
    let status = body_json(app.get(&status_path).await).await;
    let last = &status["last_import"];
    assert_eq!(last["execution_id"], json!(run.id), "{status}");
    assert_eq!(last["imported"], json!(imports), "{status}");
    assert_eq!(last["to_error"], json!(errors), "{status}");
    assert_eq!(last["to_error_by_reason"], json!(by_reason), "{status}");
    assert_eq!(last["left_for_retry"], 0, "{status}");
    assert_eq!(last["dry_run"], false, "{status}");

    let where_now = emu.places();
    let docs = app
        .store
        .list_documents(&app.client_id, Some(&importer_id), 1000, 0)
        .await
        .expect("documents");
    assert_eq!(docs.len(), imports);
    let ledger = app
        .store
        .ledger_entries(&importer_id)
        .await
        .expect("ledger");
    for mail in &mails {
        let key = imid_of(&mail.raw).unwrap_or_else(|| panic!("{}: has a Message-ID", mail.name));
        let folders = where_now
            .get(&key)
            .unwrap_or_else(|| panic!("{}: still in the mailbox", mail.name));
        assert_eq!(folders.len(), 1, "{}: exactly one copy", mail.name);
        let prediction = predicted
            .get(&key)
            .unwrap_or_else(|| panic!("{}: predicted", mail.name));
        match &mail.expected {
            Expected::Import(files) => {
                assert_eq!(folders[0], "Exported", "{}", mail.name);
                assert_eq!(prediction["outcome"], "import", "{}", mail.name);
                let doc = docs
                    .iter()
                    .find(|d| {
                        std::fs::read(Path::new(&d.location).join("message.eml"))
                            .is_ok_and(|eml| eml == mail.raw)
                    })
                    .unwrap_or_else(|| panic!("{}: a document with the original bytes", mail.name));
                let names: Vec<&str> = doc
                    .metadata
                    .attachments
                    .iter()
                    .map(|a| a.file.trim_start_matches("attachments/"))
                    .collect();
                let want: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
                assert_eq!(names, want, "{}", mail.name);
                let predicted_files: Vec<&str> = prediction["attachments"]
                    .as_array()
                    .expect("attachments")
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                assert_eq!(
                    predicted_files, want,
                    "{}: the dry run named the files",
                    mail.name
                );
                for (a, file) in doc.metadata.attachments.iter().zip(files) {
                    let on_disk =
                        std::fs::read(Path::new(&doc.location).join(&a.file)).expect("file");
                    assert!(
                        file.matches(&on_disk),
                        "{}: {} has the source bytes",
                        mail.name,
                        a.file
                    );
                    assert_eq!(a.sha256, file.sha256, "{}: {}", mail.name, a.file);
                    assert_eq!(a.size, file.size);
                }
                let written: domain::document::DocumentMetadata = serde_json::from_slice(
                    &std::fs::read(Path::new(&doc.location).join("metadata.json"))
                        .expect("metadata.json"),
                )
                .expect("metadata JSON");
                assert_eq!(
                    written, doc.metadata,
                    "{}: metadata.json = the table",
                    mail.name
                );
            }
            Expected::Error(code) => {
                assert_eq!(folders[0], "Error", "{}", mail.name);
                assert_eq!(prediction["outcome"], "error", "{}", mail.name);
                assert_eq!(prediction["reason"], code.as_str(), "{}", mail.name);
                let raw_sha = sha(&mail.raw);
                let entry = ledger
                    .iter()
                    .find(|l| l.mime_sha256.as_deref() == Some(raw_sha.as_str()))
                    .unwrap_or_else(|| panic!("{}: a ledger row", mail.name));
                assert_eq!(entry.state, LedgerState::MovedToError);
                assert!(
                    entry
                        .reason
                        .as_deref()
                        .is_some_and(|r| r.starts_with(&format!("{code}: "))),
                    "{}: {:?}",
                    mail.name,
                    entry.reason
                );
            }
        }
    }
    let (spooled, temps) = spool_documents(app.dir.path(), "default", &importer_id);
    assert_eq!((spooled.len(), temps.len()), (imports, 0));

    // The documents API lists them newest first and shows one with its location.
    let listed = body_json(
        app.get(&format!(
            "/api/v2/documents?importer_id={importer_id}&limit=1000"
        ))
        .await,
    )
    .await;
    assert_eq!(listed.as_array().expect("list").len(), imports);
    let first = &listed[0];
    let one = body_json(
        app.get(&format!(
            "/api/v2/documents/{}",
            first["document_id"].as_str().expect("id")
        ))
        .await,
    )
    .await;
    assert_eq!(one["sink"], "filesystem");
    assert!(
        one["location"]
            .as_str()
            .expect("location")
            .ends_with(first["document_id"].as_str().expect("id"))
    );
    assert_eq!(one["attachments"], first["attachments"]);
    assert_eq!(app.get("/api/v2/documents?limit=0").await.status(), 422);
    assert_eq!(app.get("/api/v2/documents/nope").await.status(), 404);
    let other = app.token_for_new_client("other").await;
    let foreign = app
        .http
        .get(app.url("/api/v2/documents"))
        .bearer_auth(&other)
        .send()
        .await
        .expect("GET");
    assert_eq!(
        body_json(foreign).await,
        json!([]),
        "another client sees none"
    );

    // A second run finds nothing new.
    let again = run_import(
        &app.store,
        app.clock.clone(),
        app.dir.path(),
        &app.client_id,
        json!({ "importer_id": importer_id }),
    )
    .await;
    assert_eq!(again.status, ExecutionStatus::Succeeded, "{:?}", again.log);
    assert!(
        again
            .log
            .iter()
            .any(|l| l.contains("imported 0, to Error 0, left for retry 0")),
        "{:?}",
        again.log
    );
    assert_eq!(
        app.store
            .count_documents(&importer_id)
            .await
            .expect("count") as usize,
        imports
    );

    // The importer status shows the last run and the totals.
    let status = body_json(
        app.get(&format!("/api/v2/importers/email/{importer_id}/status"))
            .await,
    )
    .await;
    let last = &status["last_import"];
    assert_eq!(last["execution_id"], json!(again.id), "{status}");
    assert_eq!(last["status"], "succeeded");
    assert_eq!(last["summary"], "imported 0, to Error 0, left for retry 0");
    assert_eq!(last["imported_total"], json!(imports));
    assert_eq!(last["to_error_total"], json!(errors));
    assert_eq!(last["unfinished"], 0);
    // The typed counts are the last run's; the totals, all runs'.
    assert_eq!(last["imported"], 0, "{status}");
    assert_eq!(last["to_error"], 0, "{status}");
    assert_eq!(last["to_error_by_reason"], json!({}), "{status}");
    assert_eq!(last["error"], Value::Null, "{status}");
    let runs = body_json(app.get(&runs_path).await).await;
    let listed: Vec<&Value> = runs
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| &r["execution_id"])
        .collect();
    assert_eq!(listed, [&json!(again.id), &json!(run.id)], "newest first");
    assert_eq!(runs[1]["imported"], json!(imports));
    let newest = body_json(app.get(&format!("{runs_path}?limit=1")).await).await;
    assert_eq!(newest, json!([runs[0].clone()]));
    let older = body_json(app.get(&format!("{runs_path}?limit=1&offset=1")).await).await;
    assert_eq!(older, json!([runs[1].clone()]));
    assert_eq!(app.get(&format!("{runs_path}?limit=0")).await.status(), 422);
    assert_eq!(app.get(&format!("{runs_path}?state=x")).await.status(), 422);
    assert_eq!(
        app.get("/api/v2/importers/email/nope/runs").await.status(),
        404
    );

    // The import's metrics are exposed to Prometheus.
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    for name in [
        "mailferry_import_mails_total",
        "mailferry_import_bytes_total",
        "mailferry_import_mail_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
}

#[tokio::test]
async fn ambiguous_or_missing_folders_stop_the_run_before_any_mail_is_touched() {
    let app = TestApp::spawn().await;
    let emu = empty_demo_emulator().await;
    for n in 0..3 {
        emu.add_message(demo::ALICE, "Inbox", &corpus::numbered_mail(n, Some(500)).1)
            .expect("add");
    }
    // A second `Exported`, under Archive.
    emu.add_message(
        demo::ALICE,
        "Archive/Exported",
        &corpus::numbered_mail(99, None).1,
    )
    .expect("add");
    let before = emu.places();
    for (folders, needles) in [
        (default_folders(), vec!["Exported", "Archive/Exported"]),
        (
            json!({ "inbox": "Inbox", "exported": "Exported", "error": "Fehler" }),
            vec!["Fehler"],
        ),
    ] {
        let created = app
            .post_json(
                "/api/v2/importers/email",
                &importer_body(&emu, folders, None),
            )
            .await;
        let id = body_json(created).await["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let run = run_import(
            &app.store,
            app.clock.clone(),
            app.dir.path(),
            &app.client_id,
            json!({ "importer_id": id }),
        )
        .await;
        assert_eq!(run.status, ExecutionStatus::Failed);
        let error = run.error.clone().unwrap_or_default();
        for needle in &needles {
            assert!(error.contains(needle), "{needle} in: {error}");
        }
        assert!(error.contains("no mail was touched"), "{error}");
        // The importer's failure is recorded as its last run, with the fix.
        let status = body_json(
            app.get(&format!("/api/v2/importers/email/{id}/status"))
                .await,
        )
        .await;
        let last = &status["last_import"];
        assert_eq!(last["execution_id"], json!(run.id), "{status}");
        assert_eq!(last["status"], "failed", "{status}");
        assert_eq!(last["imported"], 0, "{status}");
        assert_eq!(last["imported_total"], 0, "{status}");
        let recorded = last["error"].as_str().expect("the run's error");
        assert!(error.contains(recorded), "{recorded} in: {error}");
        for needle in &needles {
            assert!(recorded.contains(needle), "{needle} in: {recorded}");
        }
        assert_eq!(last["summary"], json!(format!("failed: {recorded}")));
        let runs = body_json(app.get(&format!("/api/v2/importers/email/{id}/runs")).await).await;
        assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
        assert_eq!(runs[0]["status"], "failed");
        assert_eq!(runs[0]["error"], json!(recorded));
        let dry = app
            .post_json(&format!("/api/v2/importers/email/{id}/dry-run"), &json!({}))
            .await;
        assert_eq!(dry.status(), 422);
        let detail = body_json(dry).await["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(detail.contains(needles[0]), "{detail}");
        assert_eq!(emu.places(), before, "no mail moved");
        assert!(
            app.store
                .ledger_entries(&id)
                .await
                .expect("ledger")
                .is_empty()
        );
        assert_eq!(app.store.count_documents(&id).await.expect("count"), 0);
        app.delete(&format!("/api/v2/importers/email/{id}")).await;
    }
}

#[tokio::test]
async fn throttling_and_server_errors_slow_the_import_but_lose_nothing() {
    let app = TestApp::spawn().await;
    let emu = empty_demo_emulator().await;
    let mails: Vec<(String, Vec<u8>, bool)> = (0..24)
        .map(|n| {
            let importable = n % 4 != 0;
            let (imid, raw) = corpus::numbered_mail(n, importable.then_some(2_000));
            (imid, raw, importable)
        })
        .collect();
    for (_, raw, _) in &mails {
        emu.add_message(demo::ALICE, "Inbox", raw).expect("add");
    }
    let created = app
        .post_json(
            "/api/v2/importers/email",
            &importer_body(&emu, default_folders(), None),
        )
        .await;
    let importer_id = body_json(created).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let fault =
        |kind: FaultKind, count: Option<u32>, rate: Option<f64>, method: Option<&str>| FaultRule {
            kind,
            count,
            rate,
            path_prefix: "/v1.0/".into(),
            method: method.map(str::to_owned),
            id: 0,
        };
    // 429 storms with fractional Retry-After on the first reads and the
    // first moves, 5xx on moves, and a steady 10 % of 503s on reads. The
    // first terminal rule wins per request, so the first read and the first
    // move fail at most five of their six attempts for certain; a read
    // failing six times in a row at 10 % (1 in a million) would be left for
    // the next run, which the loop below allows.
    emu.add_fault(fault(
        FaultKind::Throttle { retry_after: 0.15 },
        Some(2),
        None,
        None,
    ));
    emu.add_fault(fault(
        FaultKind::Throttle { retry_after: 0.25 },
        Some(3),
        None,
        Some("POST"),
    ));
    emu.add_fault(fault(
        FaultKind::Status {
            status: 500,
            retry_after: None,
        },
        Some(2),
        None,
        Some("POST"),
    ));
    emu.add_fault(fault(
        FaultKind::Status {
            status: 503,
            retry_after: Some(0.1),
        },
        None,
        Some(0.1),
        Some("GET"),
    ));
    let mut runs = 0;
    while emu.inbox_count() > 0 && runs < 4 {
        let run = run_import(
            &app.store,
            app.clock.clone(),
            app.dir.path(),
            &app.client_id,
            json!({}),
        )
        .await;
        assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.log);
        runs += 1;
    }
    assert!(
        emu.counters().faults_fired >= 7,
        "faults fired: {:?}",
        emu.counters().faults_fired
    );
    assert_eq!(
        emu.inbox_count(),
        0,
        "every mail handled within {runs} runs"
    );
    emu.clear_faults();
    check_nothing_lost_nothing_twice(
        Installation {
            emu: &emu,
            store: &app.store,
            client_id: &app.client_id,
            importer_id: &importer_id,
            data_dir: app.dir.path(),
        },
        &mails,
        false,
    )
    .await;
}

/// Where one importer's mails and documents are: the emulated mailbox, the
/// store and the data directory's spool.
#[derive(Clone, Copy)]
struct Installation<'a> {
    emu: &'a dyn MailServer,
    store: &'a Store,
    client_id: &'a str,
    importer_id: &'a str,
    data_dir: &'a Path,
}

/// Every source mail is in exactly one folder (the one its content calls
/// for, or still the Inbox when `inbox_allowed`), every Exported mail has
/// exactly one document (row and spool folder), every Error mail a ledger
/// reason, and no document exists twice or without its mail in Exported.
/// Every document of the importer: every page, since the first alone
/// would leave the oldest out.
async fn all_documents(
    store: &Store,
    client_id: &str,
    importer_id: &str,
) -> Vec<store::documents::DocumentRecord> {
    let mut docs = Vec::new();
    loop {
        let offset = u32::try_from(docs.len()).expect("few");
        let page = store
            .list_documents(client_id, Some(importer_id), 1000, offset)
            .await
            .expect("documents");
        let last = page.len() < 1000;
        docs.extend(page);
        if last {
            break;
        }
    }
    docs
}

/// How many documents each mail (by Message-ID) has.
fn documents_per_mail(docs: &[store::documents::DocumentRecord]) -> BTreeMap<String, usize> {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for d in docs {
        let imid = d.metadata.source.internet_message_id.clone();
        *count.entry(imid.unwrap_or_default()).or_default() += 1;
    }
    count
}

async fn check_nothing_lost_nothing_twice(
    at: Installation<'_>,
    mails: &[(String, Vec<u8>, bool)],
    inbox_allowed: bool,
) {
    let Installation {
        emu,
        store,
        client_id,
        importer_id,
        data_dir,
    } = at;
    let where_now = emu.places();
    let docs = all_documents(store, client_id, importer_id).await;
    let doc_count = documents_per_mail(&docs);
    let ledger = store.ledger_entries(importer_id).await.expect("ledger");
    let mut exported = 0;
    for (imid, _, importable) in mails {
        let folders = where_now.get(imid).unwrap_or_else(|| panic!("{imid} lost"));
        assert_eq!(folders.len(), 1, "{imid} in exactly one place: {folders:?}");
        let docs_for = doc_count.get(imid).copied().unwrap_or(0);
        match folders[0].as_str() {
            "Inbox" => {
                assert!(inbox_allowed, "{imid} still in the Inbox");
            }
            "Exported" => {
                assert!(importable, "{imid} exported but has no attachment");
                assert_eq!(docs_for, 1, "{imid}: exactly one document");
                exported += 1;
            }
            "Error" => {
                assert!(!importable, "{imid} importable but in Error");
                let entry = ledger
                    .iter()
                    .find(|l| l.internet_message_id.as_deref() == Some(imid.as_str()))
                    .unwrap_or_else(|| panic!("{imid}: in Error with a ledger row"));
                assert!(
                    entry
                        .reason
                        .as_deref()
                        .is_some_and(|r| r.starts_with("no_importable_attachment: ")),
                    "{imid}: {:?}",
                    entry.reason
                );
            }
            other => panic!("{imid} in {other}"),
        }
        if folders[0] != "Exported" {
            assert!(docs_for <= 1, "{imid}: {docs_for} documents");
        }
    }
    assert!(
        doc_count.values().all(|n| *n == 1),
        "no document twice: {doc_count:?}"
    );
    // A document may precede its move only while the mail is still in the Inbox.
    let documents_without_export = docs.len() - exported;
    if !inbox_allowed {
        assert_eq!(
            documents_without_export, 0,
            "every document's mail is in Exported"
        );
    }
    if data_dir.join("documents").exists() {
        let (spooled, temps) = spool_documents(data_dir, "default", importer_id);
        for d in &docs {
            assert!(spooled.contains(&d.id), "{}: its spool folder exists", d.id);
        }
        if !inbox_allowed {
            assert_eq!(spooled.len(), docs.len(), "spool folders = document rows");
            assert!(temps.is_empty(), "no half-written document left: {temps:?}");
        }
        // Mid-way, a crash between the spool and the table leaves a folder
        // without its row; its mail is still in the Inbox, and the next run
        // records the same document id.
    }
}

/// A data directory with a SQLite database, a master key and one importer,
/// for `mailferry run` child processes.
struct ChildSetup {
    dir: tempfile::TempDir,
    client_id: String,
    importer_id: String,
    /// PostgreSQL instead of the data directory's SQLite file.
    database_url: Option<String>,
}

impl ChildSetup {
    async fn new(server: &dyn MailServer) -> Self {
        Self::on_database(server, None).await
    }

    async fn on_database(server: &dyn MailServer, database_url: Option<String>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = match &database_url {
            Some(url) => test_support::open_store(url, dir.path()).await,
            None => Self::open(dir.path()).await,
        };
        let now = SystemClock.now();
        let client = store.ensure_default_client(now).await.expect("client");
        let input: domain::importer::ImporterInput =
            serde_json::from_value(server.importer_body(default_folders())).expect("input");
        let importer = store
            .create_importer(&client.id, &input.validate(None).expect("valid"), now)
            .await
            .expect("importer");
        store.close().await;
        Self {
            dir,
            client_id: client.id,
            importer_id: importer.id,
            database_url,
        }
    }

    /// Every mail in exactly one place with at most one document
    /// ([`check_nothing_lost_nothing_twice`]), read from this setup's store.
    async fn check(
        &self,
        server: &dyn MailServer,
        mails: &[(String, Vec<u8>, bool)],
        inbox_allowed: bool,
    ) {
        let store = self.store().await;
        check_nothing_lost_nothing_twice(
            Installation {
                emu: server,
                store: &store,
                client_id: &self.client_id,
                importer_id: &self.importer_id,
                data_dir: &self.data_dir(),
            },
            mails,
            inbox_allowed,
        )
        .await;
        store.close().await;
    }

    /// The store the child processes use.
    async fn store(&self) -> Store {
        match &self.database_url {
            Some(url) => test_support::open_store(url, self.dir.path()).await,
            None => Self::open(self.dir.path()).await,
        }
    }

    async fn open(dir: &Path) -> Store {
        data_dir_store(dir).await
    }

    fn command(&self, failpoint: Option<&str>) -> Command {
        let mut cmd = Command::new(mailferry_bin());
        cmd.args(["run", "import-emails", "--importer", &self.importer_id])
            .env("MAILFERRY_DATA_DIR", self.dir.path())
            .env("RUST_LOG", "warn")
            .env_remove("MAILFERRY_MASTER_KEY_FILE")
            .env_remove("MAILFERRY_CONFIG")
            .env_remove("MAILFERRY_NOW")
            .env_remove(import::failpoint::ENV)
            .stdin(Stdio::null());
        if let Some(fp) = failpoint {
            cmd.env(import::failpoint::ENV, fp);
        }
        match &self.database_url {
            Some(url) => cmd.env("MAILFERRY_DATABASE_URL", url),
            None => cmd.env_remove("MAILFERRY_DATABASE_URL"),
        };
        cmd
    }

    /// Runs to the end; returns (success, stdout + stderr).
    async fn run(&self, failpoint: Option<&str>) -> (bool, String) {
        let mut cmd = self.command(failpoint);
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .expect("join")
            .expect("mailferry runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

#[tokio::test]
async fn a_crash_at_every_step_loses_nothing_and_stores_nothing_twice() {
    crash_at_every_step(&empty_demo_emulator().await).await;
}

#[tokio::test]
async fn a_crash_at_every_step_loses_nothing_and_stores_nothing_twice_over_imap() {
    crash_at_every_step(&DovecotMailbox::new()).await;
}

async fn crash_at_every_step(emu: &dyn MailServer) {
    let setup = ChildSetup::new(emu).await;
    let mut mails: Vec<(String, Vec<u8>, bool)> = Vec::new();
    let mut n = 0;
    for step in import::failpoint::STEPS {
        // Three importable mails and three for Error per step: the second
        // pass of every step is reached.
        for k in 0..6 {
            let importable = k % 2 == 0;
            let (imid, raw) = corpus::numbered_mail(n, importable.then_some(1_000));
            emu.deliver(&raw);
            mails.push((imid, raw, importable));
            n += 1;
        }
        let (ok, out) = setup.run(Some(&format!("{step}:2"))).await;
        let server = emu.name();
        assert!(!ok, "{server} {step}: the run aborted: {out}");
        assert!(
            out.contains(&format!("aborting at {step} #2")),
            "{step}: the fail point fired: {out}"
        );
        let (ok, out) = setup.run(None).await;
        assert!(ok, "{step}: the next run finished: {out}");
        assert!(out.contains("left for retry 0"), "{step}: {out}");
        setup.check(emu, &mails, false).await;
        let store = ChildSetup::open(setup.dir.path()).await;
        // A crash right after a move leaves the row unconfirmed while the
        // mail is out of the Inbox: the next run confirms it by asking the
        // server where the mail is, so the status counts nothing unfinished.
        // (Mails worked alongside the crashed one may add more.)
        if matches!(step, "after_move" | "after_error_move") {
            let confirmed: u32 = out
                .split("moves of an earlier run confirmed ")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            assert!(confirmed >= 1, "{step}: {out}");
        }
        let activity = store
            .ledger_activity(&setup.importer_id)
            .await
            .expect("activity")
            .expect("rows");
        assert_eq!(activity.unfinished, 0, "{step}: {activity:?}");
        for row in store
            .ledger_entries(&setup.importer_id)
            .await
            .expect("ledger")
        {
            let importable = mails
                .iter()
                .find(|(imid, _, _)| row.internet_message_id.as_deref() == Some(imid.as_str()))
                .map(|(_, _, importable)| *importable)
                .unwrap_or_else(|| panic!("{step}: a row for an unknown mail: {row:?}"));
            let want = if importable {
                LedgerState::Moved
            } else {
                LedgerState::MovedToError
            };
            assert_eq!(row.state, want, "{step}: {row:?}");
        }
        store.close().await;
    }
    // A run after all that changes nothing.
    let (ok, out) = setup.run(None).await;
    assert!(
        ok && out.contains("imported 0, to Error 0, left for retry 0"),
        "{out}"
    );
}

/// `mailferry run import-emails --dry-run` says what each Inbox mail would
/// become and why, and touches nothing.
#[tokio::test]
async fn the_cli_dry_run_lists_each_mail_and_touches_nothing() {
    let emu = empty_demo_emulator().await;
    let setup = ChildSetup::new(&emu).await;
    for n in 0..4 {
        let (_, raw) = corpus::numbered_mail(n, (n % 2 == 0).then_some(1_000));
        emu.add_message(demo::ALICE, "Inbox", &raw).expect("add");
    }
    let mut cmd = setup.command(None);
    cmd.arg("--dry-run");
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("mailferry runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches("would import").count(), 2, "{text}");
    assert_eq!(text.matches("would error").count(), 2, "{text}");
    assert!(text.contains("no_importable_attachment"), "{text}");
    assert_eq!(emu.inbox_count(), 4, "nothing moved");
    let store = ChildSetup::open(setup.dir.path()).await;
    assert_eq!(
        store
            .count_documents(&setup.importer_id)
            .await
            .expect("count"),
        0
    );
    store.close().await;
}

/// A small deterministic sequence of delays from 50 to 600 ms.
fn delays() -> impl Iterator<Item = Duration> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    std::iter::from_fn(move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Some(Duration::from_millis(50 + x % 551))
    })
}

#[tokio::test]
async fn repeated_sigkills_lose_nothing_and_duplicate_nothing() {
    repeated_sigkills(&empty_demo_emulator().await, 300, Db::Sqlite).await;
}

#[tokio::test]
async fn repeated_sigkills_lose_nothing_and_duplicate_nothing_over_imap() {
    // IMAP on loopback is fast: more mails keep the kills mid-import.
    repeated_sigkills(&DovecotMailbox::new(), 2000, Db::Sqlite).await;
}

#[tokio::test]
async fn repeated_sigkills_lose_nothing_and_duplicate_nothing_on_postgres() {
    repeated_sigkills(&empty_demo_emulator().await, 300, Db::Postgres).await;
}

#[tokio::test]
async fn repeated_sigkills_lose_nothing_and_duplicate_nothing_over_imap_on_postgres() {
    repeated_sigkills(&DovecotMailbox::new(), 2000, Db::Postgres).await;
}

/// Kills per run of the SIGKILL loop: 20 in the suite; `bench/crash_loop.sh`
/// sets `MAILFERRY_CRASH_KILLS=1000`.
fn kills_wanted() -> usize {
    std::env::var("MAILFERRY_CRASH_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(20)
}

/// What the SIGKILL loop counts: mails in no folder (lost), mails in two
/// folders or with two documents (duplicated), and documents half there
/// (a row without its spool folder, or a spool folder without its row
/// after the final run, or a temporary folder left behind).
#[derive(Debug, Default)]
struct Census {
    lost: usize,
    duplicated: usize,
    partial: usize,
}

async fn census(at: &Installation<'_>, mails: &[(String, Vec<u8>, bool)]) -> Census {
    let places = at.emu.places();
    let docs = all_documents(at.store, at.client_id, at.importer_id).await;
    let per_mail = documents_per_mail(&docs);
    let mut c = Census::default();
    for (imid, _, _) in mails {
        match places.get(imid).map_or(0, Vec::len) {
            0 => c.lost += 1,
            1 => {}
            _ => c.duplicated += 1,
        }
        if per_mail.get(imid).copied().unwrap_or(0) > 1 {
            c.duplicated += 1;
        }
    }
    let (spooled, temps) = spool_documents(at.data_dir, "default", at.importer_id);
    let rows: std::collections::HashSet<&str> = docs.iter().map(|d| d.id.as_str()).collect();
    c.partial += temps.len();
    c.partial += docs.iter().filter(|d| !spooled.contains(&d.id)).count();
    c.partial += spooled
        .iter()
        .filter(|s| !rows.contains(s.as_str()))
        .count();
    c
}

async fn repeated_sigkills(emu: &dyn MailServer, batch: usize, db: Db) {
    let kills_wanted = kills_wanted();
    let (db_name, database_url) = match db {
        Db::Sqlite => ("SQLite", None),
        Db::Postgres => {
            let dir = tempfile::tempdir().expect("tempdir");
            (
                "PostgreSQL",
                Some(test_support::fresh_database(Db::Postgres, dir.path()).await),
            )
        }
    };
    let setup = ChildSetup::on_database(emu, database_url).await;
    // Mails come in batches: a new one whenever the Inbox empties, so a
    // loop of a thousand kills always has mail to be killed over.
    let mut mails: Vec<(String, Vec<u8>, bool)> = Vec::new();
    let deliver_batch = |mails: &mut Vec<(String, Vec<u8>, bool)>| {
        let first = mails.len();
        for n in first..first + batch {
            let importable = n % 10 != 3;
            let (imid, raw) =
                corpus::numbered_mail(n, importable.then_some(3_000 + (n % 1000) * 7));
            emu.deliver(&raw);
            mails.push((imid, raw, importable));
        }
    };
    deliver_batch(&mut mails);
    // A little slower than loopback, so the kills land mid-import rather
    // than after it finished; with throttling, server errors and dropped
    // connections where the server can be told to.
    emu.slow_down();
    let started = Instant::now();
    let mut kills = 0;
    let mut runs = 0;
    let mut delays = delays();
    while kills < kills_wanted {
        assert!(
            runs < kills_wanted * 4 + 20,
            "only {kills} kills in {runs} runs"
        );
        let delay = delays.next().expect("endless");
        let mut child = setup
            .command(None)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mailferry");
        runs += 1;
        tokio::time::sleep(delay).await;
        if child.try_wait().expect("try_wait").is_none() {
            // std's kill is SIGKILL on Unix: no cleanup of any kind.
            child.kill().expect("SIGKILL");
            kills += 1;
        }
        child.wait().expect("reaped");
        if emu.inbox_count() == 0 {
            deliver_batch(&mut mails);
        }
    }
    let inbox_after_kills = emu.inbox_count();
    setup.check(emu, &mails, true).await;
    emu.full_speed();
    let (ok, out) = setup.run(None).await;
    assert!(ok, "the final run finished: {out}");
    let store = setup.store().await;
    let at = Installation {
        emu,
        store: &store,
        client_id: &setup.client_id,
        importer_id: &setup.importer_id,
        data_dir: &setup.data_dir(),
    };
    let c = census(&at, &mails).await;
    eprintln!(
        "crash loop ({}, {db_name}): kills={kills} runs={runs} mails={} lost={} duplicated={} partial={} ({inbox_after_kills} in the Inbox before the final run) in {:?}",
        emu.name(),
        mails.len(),
        c.lost,
        c.duplicated,
        c.partial,
        started.elapsed()
    );
    assert_eq!((c.lost, c.duplicated, c.partial), (0, 0, 0), "{c:?}");
    assert!(
        kills >= kills_wanted,
        "{kills} kills (the Inbox emptied first: make the mails slower)"
    );
    check_nothing_lost_nothing_twice(at, &mails, false).await;
    let importable = mails.iter().filter(|m| m.2).count();
    assert_eq!(
        store
            .count_documents(&setup.importer_id)
            .await
            .expect("count") as usize,
        importable
    );
    store.close().await;
}

/// The IMAP server restarts in the middle of a run (every connection it
/// had is cut): the run stops or leaves mails for later, and the next run
/// imports the rest; nothing is lost, nothing is stored twice.
#[tokio::test]
async fn an_imap_server_restart_mid_run_loses_nothing() {
    let server = DovecotMailbox::new();
    let setup = ChildSetup::new(&server).await;
    let mails: Vec<(String, Vec<u8>, bool)> = (0..400)
        .map(|n| {
            let importable = n % 7 != 3;
            let (imid, raw) = corpus::numbered_mail(n, importable.then_some(20_000));
            (imid, raw, importable)
        })
        .collect();
    for (_, raw, _) in &mails {
        server.deliver(raw);
    }
    let child = setup
        .command(None)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mailferry");
    // Once the run is under way, the server goes away and comes back.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.inbox_count() == mails.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.dovecot.ctl("restart");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("the run ends");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        server.inbox_count() > 0,
        "the restart came after the run had finished: {text}"
    );
    let (ok, out) = setup.run(None).await;
    assert!(ok, "the next run finished: {out}");
    setup.check(&server, &mails, false).await;
}

/// PostgreSQL crashes (every connection cut) in the middle of a run and
/// comes back: the run ends with an error instead of hanging, and the next
/// run imports the rest; nothing is lost, nothing is stored twice.
#[tokio::test]
async fn a_postgres_restart_mid_run_loses_nothing() {
    let pg = test_support::postgres::PrivatePostgres::start();
    let emu = empty_demo_emulator().await;
    let setup = ChildSetup::on_database(&emu, Some(pg.url())).await;
    let mails: Vec<(String, Vec<u8>, bool)> = (0..300)
        .map(|n| {
            let importable = n % 7 != 3;
            let (imid, raw) = corpus::numbered_mail(n, importable.then_some(5_000));
            (imid, raw, importable)
        })
        .collect();
    for (_, raw, _) in &mails {
        emu.deliver(raw);
    }
    emu.slow_down();
    let child = setup
        .command(None)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mailferry");
    let deadline = Instant::now() + Duration::from_secs(30);
    while emu.inbox_count() == mails.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pg.stop_immediately();
    let stopped = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .expect("the run ends when its database is gone, it does not hang")
    .expect("join")
    .expect("the run ends");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        emu.inbox_count() > 0,
        "the crash came after the run had finished: {text}"
    );
    assert!(
        !out.status.success(),
        "a run that lost its database says so: {text}"
    );
    eprintln!(
        "PostgreSQL restart: the run ended {:?} after the crash, {} mails still in the Inbox; it said: {text}",
        stopped.elapsed(),
        emu.inbox_count()
    );
    pg.start_again();
    emu.full_speed();
    let (ok, out) = setup.run(None).await;
    assert!(ok, "the next run finished: {out}");
    setup.check(&emu, &mails, false).await;
    let store = setup.store().await;
    let importable = mails.iter().filter(|m| m.2).count();
    assert_eq!(
        store
            .count_documents(&setup.importer_id)
            .await
            .expect("count") as usize,
        importable
    );
    store.close().await;
    emu.shutdown().await;
}

/// A run waiting out a long `Retry-After` (two minutes) stops within
/// seconds of SIGTERM, leaving its mail in the Inbox for the next run.
#[tokio::test]
async fn sigterm_ends_a_long_retry_after_wait_at_once() {
    let emu = empty_demo_emulator().await;
    let setup = ChildSetup::new(&emu).await;
    let mails: Vec<(String, Vec<u8>, bool)> = (0..5)
        .map(|n| {
            let (imid, raw) = corpus::numbered_mail(n, Some(2_000));
            (imid, raw, true)
        })
        .collect();
    for (_, raw, _) in &mails {
        emu.deliver(raw);
    }
    emu.add_fault(FaultRule::graph(FaultKind::Throttle { retry_after: 120.0 }));
    let child = setup
        .command(None)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mailferry");
    // Into the wait: the first Graph request has been throttled.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let asked = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("the run ends");
    let took = asked.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        took < Duration::from_secs(5),
        "it took {took:?} to stop: {text}"
    );
    assert!(text.contains("interrupted"), "{text}");
    assert_eq!(
        emu.inbox_count(),
        mails.len(),
        "every mail stays in the Inbox"
    );
    emu.clear_faults();
    let (ok, out) = setup.run(None).await;
    assert!(ok, "{out}");
    setup.check(&emu, &mails, false).await;
    eprintln!("SIGTERM during a 120 s Retry-After: stopped in {took:?}");
}

/// (Idempotency-Key, answered 2xx, body)
type Delivery = (String, bool, Vec<u8>);

/// A webhook receiver: answers 500 while `failing`, else 200, and records
/// every request's Idempotency-Key and body.
#[derive(Clone, Default)]
struct Receiver {
    failing: Arc<std::sync::atomic::AtomicBool>,
    requests: Arc<Mutex<Vec<Delivery>>>,
}

async fn receive(
    axum::extract::State(r): axum::extract::State<Receiver>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let failing = r.failing.load(std::sync::atomic::Ordering::SeqCst);
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    r.requests
        .lock()
        .expect("lock")
        .push((key, !failing, body.to_vec()));
    if failing {
        axum::http::StatusCode::INTERNAL_SERVER_ERROR
    } else {
        axum::http::StatusCode::OK
    }
}

#[tokio::test]
async fn the_webhook_sink_gets_each_document_once_and_refusals_leave_mail_in_the_inbox() {
    let app = TestApp::spawn().await;
    let emu = empty_demo_emulator().await;
    let receiver = Receiver::default();
    receiver
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/inbound?token=abc",
        listener.local_addr().expect("addr")
    );
    let router = axum::Router::new()
        .route("/inbound", axum::routing::post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let mails: Vec<(String, Vec<u8>, bool)> = (0..6)
        .map(|n| {
            let importable = n != 5;
            let (imid, raw) = corpus::numbered_mail(n, importable.then_some(1_500));
            (imid, raw, importable)
        })
        .collect();
    for (_, raw, _) in &mails {
        emu.add_message(demo::ALICE, "Inbox", raw).expect("add");
    }
    let sink = json!({ "kind": "webhook", "url": url, "timeout_secs": 5, "attempts": 2 });
    let created = app
        .post_json(
            "/api/v2/importers/email",
            &importer_body(&emu, default_folders(), Some(sink)),
        )
        .await;
    assert_eq!(created.status(), 201);
    let importer_id = body_json(created).await["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let run = run_import(
        &app.store,
        app.clock.clone(),
        app.dir.path(),
        &app.client_id,
        json!({}),
    )
    .await;
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.log);
    // The receiver is down: the first mail waits, and the run stops rather
    // than try (and count against) every other mail.
    assert!(
        run.log.iter().any(|l| l.contains("imported 0, to Error 0")
            && l.contains("left for retry 1")
            && l.contains("stopped early: the sink is unavailable")),
        "{:?}",
        run.log
    );
    assert_eq!(
        emu.inbox_count(),
        6,
        "refused documents leave their mail in the Inbox"
    );
    assert_eq!(
        app.store
            .count_documents(&importer_id)
            .await
            .expect("count"),
        0
    );
    assert_eq!(
        receiver.requests.lock().expect("lock").len(),
        2,
        "two attempts for the first document, none for the others"
    );

    receiver
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let run = run_import(
        &app.store,
        app.clock.clone(),
        app.dir.path(),
        &app.client_id,
        json!({}),
    )
    .await;
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.log);
    let third = run_import(
        &app.store,
        app.clock.clone(),
        app.dir.path(),
        &app.client_id,
        json!({}),
    )
    .await;
    assert_eq!(third.status, ExecutionStatus::Succeeded);
    check_nothing_lost_nothing_twice(
        Installation {
            emu: &emu,
            store: &app.store,
            client_id: &app.client_id,
            importer_id: &importer_id,
            data_dir: app.dir.path(),
        },
        &mails,
        false,
    )
    .await;

    let docs = app
        .store
        .list_documents(&app.client_id, Some(&importer_id), 1000, 0)
        .await
        .expect("docs");
    assert_eq!(docs.len(), 5);
    let requests = receiver.requests.lock().expect("lock").clone();
    let accepted: Vec<&Delivery> = requests.iter().filter(|r| r.1).collect();
    assert_eq!(accepted.len(), 5, "each document delivered once");
    for d in &docs {
        assert_eq!(d.sink, "webhook");
        assert!(
            !d.location.contains("token="),
            "no query in the location: {}",
            d.location
        );
        let delivered: Vec<_> = accepted.iter().filter(|r| r.0 == d.id).collect();
        assert_eq!(delivered.len(), 1, "Idempotency-Key = document_id, once");
        let (imid, raw, _) = mails
            .iter()
            .find(|m| Some(&m.0) == d.metadata.source.internet_message_id.as_ref())
            .expect("source mail");
        let body = &delivered[0].2;
        assert!(
            body.windows(raw.len()).any(|w| w == raw.as_slice()),
            "{imid}: message.eml sent whole"
        );
        let attachment = import::analyze(raw, &corpus::attachment_rules(), &corpus::import_rules());
        let import::Decision::Import { attachments } = attachment.decision else {
            panic!("{imid} is importable")
        };
        assert!(
            body.windows(attachments[0].bytes.len())
                .any(|w| *w == *attachments[0].bytes),
            "{imid}: the attachment's bytes"
        );
        assert!(String::from_utf8_lossy(body).contains(&d.metadata.attachments[0].sha256));
    }
}
