//! The `mailferry` binary as an admin runs it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};

use crate::support::{graph_importer_body, mailferry_bin};

/// A `mailferry serve` process on a port it chose itself, stopped by PID on drop.
struct ServeProcess {
    child: Child,
    base_url: String,
    /// Every log line it wrote (JSON), for tests that read its logs.
    log: std::sync::Arc<std::sync::Mutex<String>>,
    stopped: bool,
}

impl ServeProcess {
    fn start(data_dir: &std::path::Path, envs: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(mailferry_bin());
        cmd.args(["--log-format", "json", "serve"])
            .env("MAILFERRY_DATA_DIR", data_dir)
            .env("MAILFERRY_LISTEN", "127.0.0.1:0")
            .env_remove("MAILFERRY_DATABASE_URL")
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn mailferry serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let base_url = loop {
            let line = lines
                .next()
                .expect("serve exited before listening")
                .expect("read");
            log.lock().expect("log").push_str(&line);
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if event["message"] == "mailferry is serving" {
                break event["public_url"].as_str().expect("public_url").to_owned();
            }
        };
        // keep draining stderr so the process never blocks on a full pipe
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
            stopped: false,
        }
    }

    /// Stops the process (SIGTERM) and returns everything it logged.
    fn stop(mut self) -> String {
        self.terminate();
        // the drain thread sees EOF right after the process ends
        std::thread::sleep(std::time::Duration::from_millis(200));
        self.log.lock().expect("log").clone()
    }
}

impl ServeProcess {
    /// SIGTERM by PID (the server shuts down gracefully), once.
    fn terminate(&mut self) {
        if !self.stopped {
            let _ = Command::new("kill")
                .arg(self.child.id().to_string())
                .status();
            let _ = self.child.wait();
            self.stopped = true;
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.terminate();
    }
}

fn mailferry(
    data_dir: &std::path::Path,
    args: &[&str],
    envs: &[(&str, &str)],
    stdin: &str,
) -> std::process::Output {
    let mut cmd = Command::new(mailferry_bin());
    cmd.args(args)
        .env("MAILFERRY_DATA_DIR", data_dir)
        .env_remove("MAILFERRY_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn mailferry");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "mailferry failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

#[tokio::test]
async fn a_first_start_creates_the_key_and_the_default_client_and_serves() {
    crate::support::install_crypto();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = ServeProcess::start(&data, &[]);
    let health = reqwest::get(format!("{}/healthz", server.base_url))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);

    let key = data.join("master.key");
    assert_eq!(
        std::fs::metadata(&key)
            .expect("key file")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let clients = stdout(&mailferry(&data, &["client", "list"], &[], ""));
    assert!(clients.starts_with("default\t"), "{clients}");

    let token = stdout(&mailferry(
        &data,
        &["token", "create", "--client", "default"],
        &[],
        "",
    ))
    .trim()
    .to_owned();
    assert!(token.starts_with("mf_"));
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{}/api/v2/importers/email", server.base_url))
        .bearer_auth(&token)
        .json(&graph_importer_body("Invoices"))
        .send()
        .await
        .expect("POST");
    assert_eq!(created.status(), 201);

    // A token with an expiry, listed (never shown again), then revoked:
    // the API refuses it at once.
    let made = mailferry(
        &data,
        &[
            "token",
            "create",
            "--label",
            "ci",
            "--expires-in-days",
            "30",
        ],
        &[],
        "",
    );
    let short_lived = stdout(&made).trim().to_owned();
    let said = String::from_utf8_lossy(&made.stderr).into_owned();
    assert!(said.contains("valid until"), "{said}");
    let list = stdout(&mailferry(&data, &["token", "list"], &[], ""));
    let line = list
        .lines()
        .find(|l| l.contains("\tci\t"))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        line.contains("valid until") && !line.contains(&short_lived),
        "{line}"
    );
    let id = line.split('\t').next().expect("id");
    let importers = format!("{}/api/v2/importers/email", server.base_url);
    let status = |token: String| {
        let http = http.clone();
        let url = importers.clone();
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("GET")
                .status()
        }
    };
    assert_eq!(status(short_lived.clone()).await, 200);
    let revoked = stdout(&mailferry(&data, &["token", "revoke", id], &[], ""));
    assert!(revoked.contains("revoked"), "{revoked}");
    assert_eq!(status(short_lived).await, 401);
    assert_eq!(status(token).await, 200, "the other token still works");
    let again = mailferry(&data, &["token", "revoke", id], &[], "");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("token list"));
}

#[tokio::test]
async fn clients_users_and_tokens_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let out = stdout(&mailferry(
        data,
        &["client", "add", "acme", "--host", "acme.example.com"],
        &[],
        "",
    ));
    assert!(out.contains("client acme added"), "{out}");
    let dup = mailferry(data, &["client", "add", "acme"], &[], "");
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));

    let out = stdout(&mailferry(
        data,
        &["user", "add", "admin@acme.example.com", "--client", "acme"],
        &[],
        "a long enough password\n",
    ));
    assert!(
        out.contains("user admin@acme.example.com added to client acme"),
        "{out}"
    );
    let short = mailferry(
        data,
        &["user", "add", "x@acme.example.com", "--client", "acme"],
        &[],
        "short\n",
    );
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));
    let unknown = mailferry(data, &["token", "create", "--client", "nope"], &[], "");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("there is no client `nope`"));

    // the password is stored only as an argon2id hash
    let db = std::fs::read(data.join("mailferry.db")).expect("db");
    assert!(!db.windows(22).any(|w| w == b"a long enough password"));

    // what the command line changed is in the client's audit log
    let store = crate::support::data_dir_store(data).await;
    let acme = store
        .client_by_name("acme")
        .await
        .expect("query")
        .expect("acme");
    let events = store.audit_events(&acme.id, 10, 0).await.expect("audit");
    let actions: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [("cli", "user.created"), ("cli", "client.created")]
    );
}

#[test]
fn bad_configuration_is_named_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("mailferry.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:8080\"\ndatabse_url = \"sqlite://x\"\n",
    )
    .expect("write");
    let out = mailferry(
        dir.path(),
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "client",
            "list",
        ],
        &[],
        "",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("databse_url"), "{err}");
    assert!(
        !dir.path().join("mailferry.db").exists(),
        "nothing was created"
    );
}

#[test]
fn key_rotation_keeps_every_secret_readable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    stdout(&mailferry(data, &["client", "list"], &[], ""));
    let out = stdout(&mailferry(data, &["keys", "rotate"], &[], ""));
    assert!(out.contains("0 secrets re-sealed"), "{out}");
    let keys = std::fs::read_to_string(data.join("master.key")).expect("keys");
    assert_eq!(keys.lines().count(), 2);
}

/// A missing or wrong master key file stops mailferry at start with the
/// file named, and writes nothing: no new key file, no change to the
/// database; the right file makes everything readable again.
#[tokio::test]
async fn a_missing_or_wrong_master_key_stops_the_start_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    stdout(&mailferry(&data, &["client", "list"], &[], ""));
    // One sealed secret: an importer's client secret.
    {
        let store = crate::support::data_dir_store(&data).await;
        let client = store
            .client_by_name("default")
            .await
            .expect("query")
            .expect("default client");
        let input: domain::importer::ImporterInput =
            serde_json::from_value(graph_importer_body("Invoices")).expect("input");
        store
            .create_importer(
                &client.id,
                &input.validate(None).expect("valid"),
                jiff::Timestamp::now(),
            )
            .await
            .expect("created");
        store.close().await;
    }
    let key = data.join("master.key");
    let kept = dir.path().join("master.key.backup");
    std::fs::rename(&key, &kept).expect("move the key away");
    let db_before = std::fs::read(data.join("mailferry.db")).expect("db");

    let out = mailferry(&data, &["client", "list"], &[], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("master.key is missing")
            && err.contains("1 sealed secrets")
            && err.contains("Nothing was written"),
        "{err}"
    );
    assert!(!key.exists(), "no new key file replaces the lost one");

    // Another installation's key file: refused the same way.
    let elsewhere = dir.path().join("elsewhere");
    stdout(&mailferry(&elsewhere, &["client", "list"], &[], ""));
    std::fs::copy(elsewhere.join("master.key"), &key).expect("wrong key in place");
    let out = mailferry(&data, &["client", "list"], &[], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not open the database's secrets") && err.contains("master.key"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(data.join("mailferry.db")).expect("db"),
        db_before,
        "the database is untouched"
    );

    // The right file again: it starts, and the secret opens.
    std::fs::copy(&kept, &key).expect("restore");
    stdout(&mailferry(&data, &["client", "list"], &[], ""));
}

/// The same scenario under three time zones stores the same instants and
/// reaches the same decisions: nothing reads the local zone.
#[tokio::test]
async fn behaviour_does_not_depend_on_the_process_time_zone() {
    crate::support::install_crypto();
    let mut outcomes = Vec::new();
    for tz in ["UTC", "Europe/Berlin", "America/Los_Angeles"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let envs = [("TZ", tz), ("MAILFERRY_NOW", "2026-05-02T00:30:00Z")];
        let token = stdout(&mailferry(&data, &["token", "create"], &envs, ""))
            .trim()
            .to_owned();
        let server = ServeProcess::start(&data, &envs);
        let mut body = graph_importer_body("Invoices");
        body["client_secret_expires_at"] = "2026-05-31T02:00:00+02:00".into();
        let http = reqwest::Client::new();
        let mut created: serde_json::Value = http
            .post(format!("{}/api/v2/importers/email", server.base_url))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .expect("POST")
            .json()
            .await
            .expect("json");
        let id = created["id"].as_str().expect("id").to_owned();
        drop(server);
        created.as_object_mut().expect("object").remove("id");
        created
            .as_object_mut()
            .expect("object")
            .remove("redirect_uri");

        sqlx::any::install_default_drivers();
        let pool =
            sqlx::AnyPool::connect(&format!("sqlite://{}", data.join("mailferry.db").display()))
                .await
                .expect("db");
        let stored: (i64, i64, String) =
            sqlx::query_as("SELECT created_at, updated_at, settings FROM importers WHERE id = $1")
                .bind(&id)
                .fetch_one(&pool)
                .await
                .expect("row");
        pool.close().await;
        outcomes.push((tz, created, stored));
    }
    let (_, first_view, first_row) = &outcomes[0];
    assert_eq!(first_view["created_at"], "2026-05-02T00:30:00Z");
    assert_eq!(
        first_view["client_secret_expires_at"],
        "2026-05-31T00:00:00Z"
    );
    assert_eq!(first_row.0, 1_777_681_800_000);
    let warning = first_view["warnings"][0]
        .as_str()
        .expect("the secret-expiry decision");
    assert!(warning.contains("in 28 days"), "{warning}");
    for (tz, view, row) in &outcomes[1..] {
        assert_eq!(view, first_view, "API answer differs under TZ={tz}");
        assert_eq!(row, first_row, "stored values differ under TZ={tz}");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `mailferry demo` (the README's run command) serves, seeds an importer
/// pointing at the built-in emulator, and lets the demo admin sign in.
#[tokio::test]
async fn the_demo_serves_an_importer_against_the_built_in_emulator() {
    crate::support::install_crypto();
    let dir = tempfile::tempdir().expect("tempdir");
    let (port, emulator_port) = (free_port(), free_port());
    let (mut child, printed, _) = spawn_demo(
        dir.path(),
        &format!("127.0.0.1:{port}"),
        &format!("127.0.0.1:{emulator_port}"),
    );
    let field = |label: &str| printed_field(&printed, label);
    let (token, importer) = (field("API token:"), field("Demo importer:"));
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    let result = async {
        let view: serde_json::Value = http
            .get(format!("{base}/api/v2/importers/email/{importer}"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("json");
        assert_eq!(
            view["endpoints"]["graph"],
            format!("http://127.0.0.1:{emulator_port}")
        );
        assert_eq!(view["authentication_required"], true);
        // Authenticate goes to the emulated Microsoft, which knows the demo app
        let auth = http
            .get(format!(
                "{base}/api/v2/importers/email/{importer}/authenticate"
            ))
            .bearer_auth(&token)
            .send()
            .await
            .expect("authenticate");
        assert_eq!(auth.status(), 302);
        let location = auth.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(
            location.starts_with(&format!("http://127.0.0.1:{emulator_port}/")),
            "{location}"
        );
        let sign_in_page = http.get(&location).send().await.expect("emulator");
        assert_eq!(
            sign_in_page.status(),
            200,
            "the emulator accepts the demo's redirect URI"
        );
        // the printed admin can sign in to the UI
        let login = http
            .post(format!("{base}/ui/login"))
            .form(&[
                ("email", "admin@demo.example"),
                ("password", "mailferry-demo-password"),
            ])
            .send()
            .await
            .expect("login");
        assert_eq!(login.status(), 303);
    }
    .await;
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    result
}

/// The server log (stderr) of a child, as it arrives.
pub(crate) type LogSoFar = std::sync::Arc<std::sync::Mutex<String>>;

/// Starts `mailferry demo` on `listen` with its emulator on `emulator`
/// (the variables, as a user sets them) and reads its printout up to the
/// emulator's address; its log keeps arriving in the third value.
pub(crate) fn spawn_demo(
    data: &std::path::Path,
    listen: &str,
    emulator: &str,
) -> (Child, String, LogSoFar) {
    let mut child = Command::new(mailferry_bin())
        .arg("demo")
        .env("MAILFERRY_DATA_DIR", data)
        .env("MAILFERRY_LISTEN", listen)
        .env("MAILFERRY_EMULATOR_LISTEN", emulator)
        .env_remove("MAILFERRY_DATABASE_URL")
        .env_remove("MAILFERRY_PUBLIC_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mailferry demo");
    let log = LogSoFar::default();
    let stderr = child.stderr.take().expect("stderr");
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = sink.lock().expect("lock");
            log.push_str(&line);
            log.push('\n');
        }
    });
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut printed = String::new();
    while !printed.contains("Demo importer:") || !printed.contains("Emulated Microsoft:") {
        let line = lines
            .next()
            .expect("demo exited before it was ready")
            .expect("read");
        printed.push_str(&line);
        printed.push('\n');
    }
    // Keep reading, so the demo's later lines never hit a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, printed, log)
}

/// The first word after `label` in the demo's printout.
pub(crate) fn printed_field(printed: &str, label: &str) -> String {
    printed
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("`{label}` in {printed}"))
}

/// With `:0` for both addresses (the README says it picks a free port),
/// the printout names the ports bound, and Microsoft's sign-in accepts the
/// redirect URI with the service's real port.
#[tokio::test]
async fn the_demo_on_free_ports_signs_in_with_the_port_it_bound() {
    crate::support::install_crypto();
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, printed, log) = spawn_demo(dir.path(), "127.0.0.1:0", "127.0.0.1:0");
    let base = printed_field(&printed, "Service:");
    let emulator = printed_field(&printed, "Emulated Microsoft:");
    let (token, importer) = (
        printed_field(&printed, "API token:"),
        printed_field(&printed, "Demo importer:"),
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let result = async {
        assert!(
            !base.ends_with(":0") && !emulator.ends_with(":0"),
            "{printed}"
        );
        let auth = http
            .get(format!(
                "{base}/api/v2/importers/email/{importer}/authenticate"
            ))
            .bearer_auth(&token)
            .send()
            .await
            .expect("authenticate");
        assert_eq!(auth.status(), 302);
        let location = auth.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(location.starts_with(&emulator), "{location}");
        assert!(
            location.contains(&url_encoded(&format!(
                "{base}/api/v2/importers/email/authenticate/end"
            ))),
            "{location}"
        );
        let sign_in_page = http.get(&location).send().await.expect("emulator");
        assert_eq!(
            sign_in_page.status(),
            200,
            "the emulator accepts the redirect URI with the bound port"
        );
        // The demo's alerts go to the server log, and only there.
        let settings: serde_json::Value = http
            .get(format!("{base}/api/v2/alerts/settings"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("settings")
            .json()
            .await
            .expect("json");
        assert_eq!(settings["log"], true, "{settings}");
        assert!(settings["webhook_url"].is_null() && settings["smtp"].is_null());
        let test = http
            .post(format!("{base}/api/v2/alerts/test"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("test alert");
        assert_eq!(test.status(), 200);
        let test: serde_json::Value = test.json().await.expect("json");
        assert_eq!(
            test["delivered"],
            serde_json::json!(["the server log"]),
            "{test}"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !log.lock().expect("lock").contains("[mailferry] Test alert") {
            assert!(
                std::time::Instant::now() < deadline,
                "no alert line in the demo's log: {}",
                log.lock().expect("lock")
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let text = log.lock().expect("lock").clone();
        let line = text
            .lines()
            .find(|l| l.contains("[mailferry] Test alert"))
            .expect("line");
        assert!(
            line.contains("WARN") && line.contains("mailferry::alert"),
            "{line}"
        );
    }
    .await;
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    result
}

fn url_encoded(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Secrets never reach the logs: not the client secret of an importer, not
/// the API token, not the admin's session, even at debug level.
#[tokio::test]
async fn secrets_never_reach_the_logs_even_at_debug_level() {
    crate::support::install_crypto();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let token = stdout(&mailferry(&data, &["token", "create"], &[], ""))
        .trim()
        .to_owned();
    stdout(&mailferry(
        &data,
        &["user", "add", "admin@example.com"],
        &[],
        "Admin-Password-Canary-77\n",
    ));
    let server = ServeProcess::start(&data, &[("RUST_LOG", "debug")]);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut body = graph_importer_body("Invoices");
    body["client_secret"] = "Client-Secret-Canary-42".into();
    let created = http
        .post(format!("{}/api/v2/importers/email", server.base_url))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .expect("POST");
    assert_eq!(created.status(), 201);
    let login = http
        .post(format!("{}/ui/login", server.base_url))
        .form(&[
            ("email", "admin@example.com"),
            ("password", "Admin-Password-Canary-77"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("cookie")
        .to_owned();
    let session = cookie.split_once('=').expect("name=value").1.to_owned();
    let listed = http
        .get(format!("{}/api/v2/importers/email", server.base_url))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("GET");
    assert_eq!(listed.status(), 200);

    let log = server.stop();
    assert!(
        log.contains("importer created"),
        "the log was captured: {log}"
    );
    for secret in [
        "Client-Secret-Canary-42",
        "Admin-Password-Canary-77",
        token.as_str(),
        session.as_str(),
    ] {
        assert!(!log.contains(secret), "a secret reached the log: {secret}");
    }
}
