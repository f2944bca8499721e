//! The seed manual's whole story with a **delegated** grant, through to
//! imported documents, on the shipped binary: `mailferry serve` (the real
//! script registry and scheduler) against the Microsoft emulator. An admin
//! creates a `graph_delegated` importer for the signed-in user's own
//! mailbox, presses Authenticate, signs in at the emulator's login page as
//! alice, accepts the consent page, comes back to "mailferry is
//! authorized", runs the Mail connection test and then `import-emails`
//! through the API, as the UI does. The documents, the spool and the
//! mailbox (read through the emulator's admin API and Graph) must then
//! agree byte for byte; a second run imports nothing.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use import::corpus;
use msemu::{EmulatorHandle, Seed, demo};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestMail, install_crypto, location, mailferry_bin, start_emulator};

const CALLBACK: &str = "/api/v2/importers/email/authenticate/end";

/// `mailferry serve` on a data directory and a port it picks itself;
/// stopped (SIGTERM by PID) on drop.
struct Served {
    child: Child,
    base_url: String,
    log: Arc<Mutex<String>>,
}

/// The environment of a `mailferry` child: this data directory and
/// nothing inherited that could point it elsewhere.
fn mailferry_command(data_dir: &Path) -> Command {
    let mut cmd = Command::new(mailferry_bin());
    cmd.env("MAILFERRY_DATA_DIR", data_dir)
        .env("RUST_LOG", "info")
        .env_remove("MAILFERRY_DATABASE_URL")
        .env_remove("MAILFERRY_MASTER_KEY_FILE")
        .env_remove("MAILFERRY_CONFIG")
        .env_remove("MAILFERRY_NOW")
        .env_remove("MAILFERRY_PUBLIC_URL")
        .env_remove("MAILFERRY_OAUTH_REDIRECT_URL")
        .env_remove("MAILFERRY_LISTEN")
        .env_remove(import::failpoint::ENV)
        .stdin(Stdio::null());
    cmd
}

impl Served {
    fn start(data_dir: &Path) -> Self {
        let mut child = mailferry_command(data_dir)
            .args(["--log-format", "json", "serve"])
            .env("MAILFERRY_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mailferry serve");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let base_url = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| {
                    panic!(
                        "serve exited before listening: {}",
                        log.lock().expect("log")
                    )
                })
                .expect("read stderr");
            {
                let mut log = log.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if event["message"] == "mailferry is serving" {
                break event["public_url"].as_str().expect("public_url").to_owned();
            }
        };
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut log = sink.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        Self {
            child,
            base_url,
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The last lines the server logged, for failure messages.
    fn log_tail(&self) -> String {
        let log = self.log.lock().expect("log");
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// The admin's API client: bearer token, no redirects followed.
struct Api<'a> {
    server: &'a Served,
    http: reqwest::Client,
    token: String,
}

impl Api<'_> {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.server.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET")
    }

    async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.http
            .request(method, self.server.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    async fn ok_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.expect("JSON")
    }

    /// `POST /api/v2/scripts/import-emails/run` for one importer, then
    /// polls the execution (as the UI's Scripts page does) until it ends.
    async fn run_import(&self, importer_id: &str) -> Value {
        let started = self
            .send_json(
                reqwest::Method::POST,
                "/api/v2/scripts/import-emails/run",
                &json!({ "importer_id": importer_id }),
            )
            .await;
        assert_eq!(started.status(), StatusCode::CREATED, "the run starts");
        let location = started
            .headers()
            .get(reqwest::header::LOCATION)
            .expect("Location")
            .to_str()
            .expect("ascii")
            .to_owned();
        let execution: Value = started.json().await.expect("JSON");
        assert_eq!(execution["script"], "import-emails");
        assert_eq!(execution["trigger"], "manual");
        assert_eq!(
            location,
            format!(
                "/api/v2/executions/{}",
                execution["id"].as_str().expect("id")
            )
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = self.ok_json(&location).await;
            if now["status"] != "running" {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "the run did not finish within 60 s: {now}\n{}",
                self.server.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The `value` of the hidden `flow` field of an emulator sign-in page.
fn flow_of(page: &str) -> String {
    let marker = "name=\"flow\" value=\"";
    let start = page
        .find(marker)
        .unwrap_or_else(|| panic!("a sign-in form: {page}"))
        + marker.len();
    let end = start + page[start..].find('"').expect("closing quote");
    page[start..end].to_owned()
}

/// A mail with a PDF and a text file attached; only the PDF is importable.
fn mixed_mail() -> (String, Vec<u8>, Vec<u8>) {
    let pdf = b"%PDF-1.4\r\n% invoice 77 from Fabrikam\r\n%%EOF".to_vec();
    let imid = "<mixed-77@fabrikam.example>";
    let raw = TestMail::new("Invoice 77 and delivery notes")
        .to(Some("Alice Example"), "alice@contoso.example")
        .message_id(imid)
        .text("Invoice 77 and the delivery notes.")
        .attach("application/pdf", "invoice-77.pdf", &pdf)
        .attach("text/plain", "delivery-notes.txt", b"Delivered on 1 March.")
        .build();
    (imid.to_owned(), raw, pdf)
}

/// A mail whose only attachment is a text file: not importable.
fn notes_only_mail() -> (String, Vec<u8>) {
    let imid = "<notes-78@fabrikam.example>";
    let raw = TestMail::new("Delivery notes 78")
        .to(Some("Alice Example"), "alice@contoso.example")
        .date("2026-03-02T10:00:00Z")
        .message_id(imid)
        .text("The delivery notes.")
        .attach("text/plain", "notes-78.txt", b"Delivered on 2 March.")
        .build();
    (imid.to_owned(), raw)
}

/// What a mail should become.
enum Want {
    /// A document with exactly these attachments (file name, expected
    /// bytes; `None`: the bytes the emulator holds for that attachment).
    Document(Vec<(&'static str, Option<Vec<u8>>)>),
    /// The Error folder, no document.
    Error,
}

struct Mail {
    imid: String,
    raw: Vec<u8>,
    subject: String,
    from: &'static str,
    want: Want,
}

/// Alice's mailbox as the emulator's admin API reports it: Message-ID →
/// (folder path, Graph id) per copy.
async fn mailbox_by_imid(
    http: &reqwest::Client,
    emu: &EmulatorHandle,
) -> BTreeMap<String, Vec<(String, String)>> {
    let messages: Vec<Value> = http
        .get(format!(
            "{}/_emulator/mailboxes/{}/messages",
            emu.base_url(),
            demo::ALICE
        ))
        .send()
        .await
        .expect("admin API")
        .json()
        .await
        .expect("JSON");
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for m in messages {
        out.entry(
            m["internet_message_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
        .or_default()
        .push((
            m["folder_path"].as_str().expect("folder_path").to_owned(),
            m["id"].as_str().expect("id").to_owned(),
        ));
    }
    out
}

/// A Graph URL of alice's mailbox with every segment percent-encoded
/// (emulator ids contain `/`, `+` and `=`).
fn graph_url(emu: &EmulatorHandle, segments: &[&str]) -> reqwest::Url {
    let mut url = reqwest::Url::parse(&emu.base_url()).expect("emulator URL");
    url.path_segments_mut()
        .expect("a base")
        .extend(["v1.0", "users", demo::ALICE])
        .extend(segments);
    url
}

async fn graph_bytes(http: &reqwest::Client, token: &str, url: reqwest::Url) -> Vec<u8> {
    let response = http
        .get(url.clone())
        .bearer_auth(token)
        .send()
        .await
        .expect("Graph");
    assert_eq!(response.status(), StatusCode::OK, "GET {url}");
    response.bytes().await.expect("body").to_vec()
}

/// The spool's document folders of one importer (temp folders start with `.`).
fn spool_folders(data_dir: &Path, importer_id: &str) -> (Vec<String>, Vec<String>) {
    let dir = data_dir.join("documents").join("default").join(importer_id);
    let (mut docs, mut temps) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            temps.push(name);
        } else {
            docs.push(name);
        }
    }
    docs.sort();
    (docs, temps)
}

fn log_of(execution: &Value) -> Vec<String> {
    execution["log"]
        .as_array()
        .expect("log")
        .iter()
        .map(|l| l.as_str().expect("line").to_owned())
        .collect()
}

#[tokio::test]
async fn a_delegated_grant_imports_the_signed_in_users_mailbox_end_to_end() {
    install_crypto();
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir: PathBuf = dir.path().join("data");

    // The admin's API token, made with the CLI on the data directory the
    // service then serves.
    let out = mailferry_command(&data_dir)
        .args(["token", "create", "--client", "default"])
        .output()
        .expect("mailferry token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    assert!(token.starts_with("mf_"), "{token}");
    let server = Served::start(&data_dir);
    let redirect_uri = server.url(CALLBACK);

    // Microsoft: the demo tenant, whose mailferry app registration lists
    // this service's redirect URI. Nobody has consented yet, so alice sees
    // the consent page. Her Inbox: the demo's three invoices with a PDF
    // each, plus an invoice with a larger PDF, a PDF with a text file
    // beside it, a mail without attachment and one with only a text file.
    let mut seed = Seed::demo();
    let tenant = &mut seed.tenants[0];
    tenant.apps[0].redirect_uris.push(redirect_uri.clone());
    assert!(tenant.apps[0].user_consents.is_empty() && !tenant.apps[0].admin_consent);
    let inbox = tenant.users[0]
        .folders
        .iter()
        .find(|f| f.display_name == "Inbox")
        .expect("alice's Inbox");
    let mut mails: Vec<Mail> = inbox
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let n = i + 1;
            Mail {
                imid: format!("<invoice-{n}-inbox@supplier.example>"),
                raw: m.mime.clone().expect("text MIME").into_bytes(),
                subject: format!("Invoice {n}"),
                from: [
                    "billing1@supplier.example",
                    "billing2@supplier.example",
                    "billing3@supplier.example",
                ][i],
                want: Want::Document(vec![(
                    ["invoice-1.pdf", "invoice-2.pdf", "invoice-3.pdf"][i],
                    None,
                )]),
            }
        })
        .collect();
    assert_eq!(mails.len(), 3, "the demo Inbox holds three invoices");
    for mail in &mails {
        assert!(
            String::from_utf8_lossy(&mail.raw).contains(&format!("Message-ID: {}", mail.imid)),
            "the demo seed's invoices are numbered 1 to 3"
        );
    }
    let (imid, raw) = corpus::numbered_mail(1, Some(40_000));
    mails.push(Mail {
        imid,
        raw,
        subject: "Invoice 1".into(),
        from: "billing@fabrikam.example",
        want: Want::Document(vec![(
            "invoice-000001.pdf",
            Some(corpus::file_bytes("pdf", 40_000, 1_001)),
        )]),
    });
    let (imid, raw, pdf) = mixed_mail();
    mails.push(Mail {
        imid,
        raw,
        subject: "Invoice 77 and delivery notes".into(),
        from: "billing@fabrikam.example",
        want: Want::Document(vec![("invoice-77.pdf", Some(pdf))]),
    });
    let (imid, raw) = corpus::numbered_mail(2, None);
    mails.push(Mail {
        imid,
        raw,
        subject: "Invoice 2".into(),
        from: "billing@fabrikam.example",
        want: Want::Error,
    });
    let (imid, raw) = notes_only_mail();
    mails.push(Mail {
        imid,
        raw,
        subject: "Delivery notes 78".into(),
        from: "billing@fabrikam.example",
        want: Want::Error,
    });
    let emu = start_emulator(seed, msemu::Options::default()).await;
    for mail in &mails[3..] {
        emu.add_message(demo::ALICE, "Inbox", &mail.raw)
            .expect("the emulator takes the mail");
    }
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client");
    let api = Api {
        server: &server,
        http: browser.clone(),
        token,
    };
    let before = mailbox_by_imid(&browser, &emu).await;
    assert_eq!(before.len(), mails.len());
    for mail in &mails {
        let copies = before.get(&mail.imid).expect("in the mailbox");
        assert_eq!(copies.len(), 1);
        assert_eq!(copies[0].0, "Inbox", "{}", mail.imid);
    }

    // The service's default jobs would import on their own every five
    // minutes; switch them off so the runs below are the only ones.
    let jobs = api.ok_json("/api/v2/jobs").await;
    let jobs = jobs.as_array().expect("jobs");
    assert!(
        jobs.iter().any(|j| j["script"] == "import-emails"),
        "a new client has the import job: {jobs:?}"
    );
    for job in jobs {
        let mut body = job.clone();
        body["enabled"] = json!(false);
        let path = format!("/api/v2/jobs/{}", job["id"].as_str().expect("id"));
        let saved = api.send_json(reqwest::Method::PUT, &path, &body).await;
        assert_eq!(saved.status(), StatusCode::OK, "{path}");
        assert_eq!(saved.json::<Value>().await.expect("JSON")["enabled"], false);
    }

    // The importer: delegated, the signing-in user's own mailbox.
    let created = api
        .send_json(
            reqwest::Method::POST,
            "/api/v2/importers/email",
            &json!({
                "name": "Alice's invoices",
                "protocol": "graph_delegated",
                "client_id": demo::CLIENT_ID,
                "client_secret": demo::CLIENT_SECRET,
                "tenant_id": demo::DOMAIN,
                "mailbox": "",
                "folders": { "inbox": "Inbox", "exported": "Exported", "error": "Error" },
                "cloud": "global",
                "endpoints": { "authority": emu.base_url(), "graph": emu.base_url() },
                "attachments": { "allowed_types": ["application/pdf", "image/*"], "include_inline": false },
            }),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let importer: Value = created.json().await.expect("JSON");
    let importer_id = importer["id"].as_str().expect("id").to_owned();
    assert_eq!(importer["redirect_uri"], redirect_uri.as_str());
    assert_eq!(importer["authentication_required"], true);
    let status_path = format!("/api/v2/importers/email/{importer_id}/status");
    assert_eq!(
        api.ok_json(&status_path).await["auth"]["state"],
        "unauthenticated"
    );

    // Before anyone signs in, a run fails, says what to do, and touches nothing.
    let refused = api.run_import(&importer_id).await;
    assert_eq!(refused["status"], "failed", "{refused}");
    let error = refused["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("not authorized yet") && error.contains("press Authenticate"),
        "{error}"
    );
    assert_eq!(
        mailbox_by_imid(&browser, &emu).await,
        before,
        "no mail moved"
    );

    // Authenticate: to Microsoft's sign-in, with PKCE, the account picker
    // and the scopes for one's own mailbox.
    let start = api
        .get(&format!(
            "/api/v2/importers/email/{importer_id}/authenticate"
        ))
        .await;
    assert_eq!(start.status(), StatusCode::FOUND);
    let authorize = reqwest::Url::parse(&location(&start)).expect("authorize URL");
    assert!(
        authorize.as_str().starts_with(&format!(
            "{}/{}/oauth2/v2.0/authorize?",
            emu.base_url(),
            demo::DOMAIN
        )),
        "{authorize}"
    );
    let query: BTreeMap<String, String> = authorize.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], demo::CLIENT_ID);
    assert_eq!(query["redirect_uri"], redirect_uri);
    assert_eq!(query["prompt"], "select_account");
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(!query["state"].is_empty());
    let scopes: Vec<&str> = query["scope"].split(' ').collect();
    assert!(scopes.contains(&"offline_access"), "{scopes:?}");
    assert!(
        scopes.iter().any(|s| s.ends_with("/Mail.ReadWrite")),
        "{scopes:?}"
    );
    assert!(
        !scopes.iter().any(|s| s.ends_with("Mail.ReadWrite.Shared")),
        "no shared-mailbox permission for one's own mailbox: {scopes:?}"
    );

    // At Microsoft: no one is signed in, so the login page; alice signs in.
    let login = browser.get(authorize).send().await.expect("authorize");
    assert_eq!(login.status(), StatusCode::OK);
    let page = login.text().await.expect("page");
    assert!(
        page.contains("Sign in") && page.contains("mailferry"),
        "{page}"
    );
    let consent = browser
        .post(format!(
            "{}/{}/oauth2/v2.0/login",
            emu.base_url(),
            demo::DOMAIN
        ))
        .form(&[
            ("flow", flow_of(&page).as_str()),
            ("login", demo::ALICE),
            ("passwd", demo::ALICE_PASSWORD),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(consent.status(), StatusCode::OK);
    let page = consent.text().await.expect("page");
    assert!(page.contains("Permissions requested"), "{page}");
    assert!(page.contains(demo::ALICE), "{page}");
    assert!(page.contains("<li>Mail.ReadWrite</li>"), "{page}");
    let back = browser
        .post(format!(
            "{}/{}/oauth2/v2.0/consent",
            emu.base_url(),
            demo::DOMAIN
        ))
        .form(&[("flow", flow_of(&page).as_str()), ("decision", "accept")])
        .send()
        .await
        .expect("consent");
    assert_eq!(back.status(), StatusCode::FOUND, "{:?}", back.text().await);
    let callback = location(&back);
    assert!(callback.starts_with(&redirect_uri), "{callback}");

    // Back at mailferry (the browser carries no API token).
    let end = browser.get(&callback).send().await.expect("callback");
    assert_eq!(end.status(), StatusCode::OK);
    let page = end.text().await.expect("page");
    assert!(page.contains("mailferry is authorized"), "{page}");
    assert!(page.contains(demo::ALICE), "{page}");
    let status = api.ok_json(&status_path).await;
    assert_eq!(status["auth"]["state"], "authorized", "{status}");
    assert_eq!(status["auth"]["account"], demo::ALICE, "{status}");
    assert_eq!(
        api.ok_json(&format!("/api/v2/importers/email/{importer_id}"))
            .await["authentication_required"],
        false
    );

    // The Mail connection test passes every check.
    let report: Value = api
        .send_json(
            reqwest::Method::POST,
            &format!("/api/v2/importers/email/{importer_id}/test"),
            &json!({}),
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(report["ok"], true, "{report}");

    // The import, through the API.
    let run = api.run_import(&importer_id).await;
    assert_eq!(run["status"], "succeeded", "{run}\n{}", server.log_tail());
    let log = log_of(&run);
    assert!(
        log.iter().any(|l| l
            .ends_with("imported 5, to Error 2 (no_importable_attachment: 2), left for retry 0")),
        "{log:?}"
    );
    let elapsed_after_first_run = started.elapsed();

    // Only one token was ever asked of Microsoft: the code redemption. The
    // import ran on the delegated grant (no app-only token, no refresh).
    assert_eq!(emu.counters().endpoints.get("token").copied(), Some(1));

    // The mailbox, by the emulator's admin API: every mail once, importable
    // ones in Exported, the others in Error, the Inbox empty.
    let after = mailbox_by_imid(&browser, &emu).await;
    assert_eq!(after.len(), mails.len(), "{after:?}");
    for mail in &mails {
        let copies = after
            .get(&mail.imid)
            .unwrap_or_else(|| panic!("{} is lost", mail.imid));
        assert_eq!(copies.len(), 1, "{}: {copies:?}", mail.imid);
        let want = match mail.want {
            Want::Document(_) => "Exported",
            Want::Error => "Error",
        };
        assert_eq!(copies[0].0, want, "{}", mail.imid);
    }
    let folders: Vec<Value> = browser
        .get(format!(
            "{}/_emulator/mailboxes/{}/folders",
            emu.base_url(),
            demo::ALICE
        ))
        .send()
        .await
        .expect("admin API")
        .json()
        .await
        .expect("JSON");
    let total = |path: &str| {
        folders
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("folder {path}: {folders:?}"))["total"]
            .as_u64()
    };
    assert_eq!(total("Inbox"), Some(0), "the Inbox is empty");
    assert_eq!(total("Exported"), Some(5));
    assert_eq!(total("Error"), Some(2));

    // What the emulator holds, read over Graph with the daemon app's
    // app-only token (independent of mailferry).
    let graph_token: Value = browser
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            emu.base_url(),
            demo::TENANT_ID
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", demo::DAEMON_CLIENT_ID),
            ("client_secret", demo::DAEMON_CLIENT_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("JSON");
    let graph_token = graph_token["access_token"]
        .as_str()
        .expect("app-only token")
        .to_owned();

    // The documents, by the API, and their spool folders.
    let documents = api
        .ok_json(&format!("/api/v2/documents?importer_id={importer_id}"))
        .await;
    let documents = documents.as_array().expect("documents");
    assert_eq!(documents.len(), 5, "{documents:?}");
    let spool_root = data_dir
        .join("documents")
        .join("default")
        .join(&importer_id);
    for mail in &mails {
        let found: Vec<&Value> = documents
            .iter()
            .filter(|d| d["source"]["internet_message_id"] == mail.imid.as_str())
            .collect();
        let Want::Document(files) = &mail.want else {
            assert!(found.is_empty(), "{}: no document", mail.imid);
            continue;
        };
        assert_eq!(found.len(), 1, "{}: one document", mail.imid);
        let doc = found[0];
        let id = doc["document_id"].as_str().expect("document_id");
        assert_eq!(doc["importer_id"], importer_id.as_str());
        assert_eq!(doc["client"], "default");
        assert_eq!(doc["source"]["protocol"], "graph_delegated");
        assert_eq!(
            doc["source"]["mailbox"], "me",
            "the signed-in user's own mailbox"
        );
        assert_eq!(doc["subject"], mail.subject.as_str());
        assert_eq!(doc["from"], mail.from);
        assert_eq!(doc["sink"], "filesystem");
        let folder = PathBuf::from(doc["location"].as_str().expect("location"));
        assert_eq!(folder, spool_root.join(id), "{}", mail.imid);

        // message.eml: the original bytes, as the emulator holds them.
        let eml = std::fs::read(folder.join("message.eml")).expect("message.eml");
        assert!(
            eml == mail.raw,
            "{}: message.eml is the source MIME",
            mail.imid
        );
        let graph_id = &after[&mail.imid][0].1;
        let held = graph_bytes(
            &browser,
            &graph_token,
            graph_url(&emu, &["messages", graph_id, "$value"]),
        )
        .await;
        assert!(
            eml == held,
            "{}: message.eml is what Exchange holds",
            mail.imid
        );

        // The attachments: exactly the importable ones, with their bytes.
        let attachments = doc["attachments"].as_array().expect("attachments");
        let names: Vec<&str> = attachments
            .iter()
            .map(|a| a["file"].as_str().expect("file"))
            .collect();
        let want_names: Vec<String> = files
            .iter()
            .map(|(n, _)| format!("attachments/{n}"))
            .collect();
        assert_eq!(names, want_names, "{}", mail.imid);
        let listed: Value = browser
            .get(graph_url(&emu, &["messages", graph_id, "attachments"]))
            .bearer_auth(&graph_token)
            .send()
            .await
            .expect("Graph")
            .json()
            .await
            .expect("JSON");
        for (a, (name, bytes)) in attachments.iter().zip(files) {
            let at_microsoft = listed["value"]
                .as_array()
                .expect("attachments at Graph")
                .iter()
                .find(|g| g["name"] == *name)
                .unwrap_or_else(|| panic!("{}: {name} at Graph: {listed}", mail.imid));
            let held = graph_bytes(
                &browser,
                &graph_token,
                graph_url(
                    &emu,
                    &[
                        "messages",
                        graph_id,
                        "attachments",
                        at_microsoft["id"].as_str().expect("attachment id"),
                        "$value",
                    ],
                ),
            )
            .await;
            let expected = bytes.clone().unwrap_or_else(|| held.clone());
            assert!(
                held == expected,
                "{}: {name}: the emulator holds the expected bytes",
                mail.imid
            );
            if bytes.is_none() {
                // A demo invoice: a real PDF naming its number.
                let text = String::from_utf8_lossy(&expected);
                assert!(
                    text.starts_with("%PDF-1.4") && text.contains(&format!("({})", mail.subject)),
                    "{}: {name}",
                    mail.imid
                );
            }
            let on_disk =
                std::fs::read(folder.join("attachments").join(name)).expect("attachment file");
            assert!(
                on_disk == expected,
                "{}: {name} has the source bytes",
                mail.imid
            );
            assert_eq!(a["filename"], *name);
            assert_eq!(a["content_type"], "application/pdf");
            assert_eq!(a["size"], json!(expected.len()));
            assert_eq!(a["sha256"], sinks::sha256_hex(&expected).as_str());

            // Downloaded through the API: the same bytes, saved as a file
            // unless shown inline (a PDF may be).
            let file = a["file"].as_str().expect("file");
            let download = api
                .get(&format!("/api/v2/documents/{id}/files/{file}"))
                .await;
            assert_eq!(download.status(), StatusCode::OK, "{file}");
            let header = |r: &reqwest::Response, h: &str| {
                r.headers()
                    .get(h)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            assert_eq!(header(&download, "content-type"), "application/pdf");
            assert!(
                header(&download, "content-disposition").starts_with("attachment;"),
                "{}",
                header(&download, "content-disposition")
            );
            assert_eq!(header(&download, "x-content-type-options"), "nosniff");
            let downloaded = download.bytes().await.expect("bytes");
            assert!(
                downloaded[..] == expected[..],
                "{}: {file} downloaded",
                mail.imid
            );
            let shown = api
                .get(&format!("/api/v2/documents/{id}/files/{file}?inline=true"))
                .await;
            assert!(header(&shown, "content-disposition").starts_with("inline;"));
        }
        let eml_download = api
            .get(&format!("/api/v2/documents/{id}/files/message.eml"))
            .await;
        assert_eq!(eml_download.status(), StatusCode::OK);
        assert!(eml_download.bytes().await.expect("bytes")[..] == eml[..]);
        for (bad, why) in [
            (
                "attachments/nothing.pdf",
                "a file the document does not have",
            ),
            ("metadata.json", "not one of its files"),
            (
                "attachments/..%2F..%2Fmetadata.json",
                "a way out of the folder",
            ),
        ] {
            let response = api
                .get(&format!("/api/v2/documents/{id}/files/{bad}"))
                .await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{why}: {bad}");
        }
        let in_folder: Vec<String> = std::fs::read_dir(folder.join("attachments"))
            .expect("attachments/")
            .flatten()
            .map(|e| format!("attachments/{}", e.file_name().to_string_lossy()))
            .collect();
        assert_eq!(
            in_folder, want_names,
            "{}: no other file (the text file stays out)",
            mail.imid
        );

        // metadata.json is the API's document, without sink and location.
        let written: Value = serde_json::from_slice(
            &std::fs::read(folder.join("metadata.json")).expect("metadata.json"),
        )
        .expect("metadata JSON");
        let mut listed_doc = doc.clone();
        let fields = listed_doc.as_object_mut().expect("object");
        fields.remove("sink");
        fields.remove("location");
        assert_eq!(
            written, listed_doc,
            "{}: metadata.json = the API",
            mail.imid
        );
    }
    let (spooled, temps) = spool_folders(&data_dir, &importer_id);
    assert_eq!(
        spooled.len(),
        5,
        "one spool folder per document: {spooled:?}"
    );
    assert!(temps.is_empty(), "no half-written document: {temps:?}");

    let status = api.ok_json(&status_path).await;
    let last = &status["last_import"];
    assert_eq!(last["execution_id"], run["id"], "{status}");
    assert_eq!(last["status"], "succeeded", "{status}");
    assert_eq!(last["imported_total"], 5, "{status}");
    assert_eq!(last["to_error_total"], 2, "{status}");
    assert_eq!(last["unfinished"], 0, "{status}");
    assert_eq!(status["auth"]["state"], "authorized");

    // A second run finds nothing new and changes nothing.
    let again = api.run_import(&importer_id).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    let log = log_of(&again);
    assert!(
        log.iter()
            .any(|l| l.ends_with("imported 0, to Error 0, left for retry 0")),
        "{log:?}"
    );
    assert_eq!(
        mailbox_by_imid(&browser, &emu).await,
        after,
        "no mail moved"
    );
    let documents_again = api
        .ok_json(&format!("/api/v2/documents?importer_id={importer_id}"))
        .await;
    assert_eq!(documents_again.as_array().expect("documents").len(), 5);
    assert_eq!(
        spool_folders(&data_dir, &importer_id),
        (spooled, Vec::new())
    );
    let status = api.ok_json(&status_path).await;
    assert_eq!(status["last_import"]["execution_id"], again["id"]);
    assert_eq!(status["last_import"]["imported_total"], 5);

    eprintln!(
        "delegated import: signed in and imported in {elapsed_after_first_run:?}, {:?} in all",
        started.elapsed()
    );
    emu.shutdown().await;
    drop(server);
}
