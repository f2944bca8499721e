//! Test harness: the shared one (`test-support`: an app on a pre-bound port
//! with a fresh database and a pinned clock, helpers that read like user
//! actions, the emulator, mails), plus what only this binary has.

pub use test_support::*;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// The `mailferry` binary built for these tests.
pub fn mailferry_bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_mailferry"))
}

/// The `Location` of a redirect.
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .expect("Location header")
        .to_str()
        .expect("ascii")
        .to_owned()
}

/// Runs `script` in-process for the app's default client, as a job would;
/// returns its result and its log lines.
pub async fn run_script(
    app: &TestApp,
    script: &dyn scheduler::Script,
) -> (Result<(), String>, Vec<String>) {
    let log = scheduler::ExecutionLog::default();
    let ctx = scheduler::ScriptContext {
        store: app.store.clone(),
        clock: app.clock.clone(),
        client_id: app.client_id.clone(),
        // Unique: a run of import-emails records its summary per execution.
        execution_id: format!("in-process-{}", jiff::Timestamp::now().as_nanosecond()),
        params: serde_json::Map::new(),
        log: log.clone(),
        cancel: tokio_util::sync::CancellationToken::new(),
    };
    let result = script.run(&ctx).await.map_err(|e| e.to_string());
    (result, log.lines())
}

/// Runs `import-emails` for every importer of the app's default client, in
/// this process, as the scheduler (or `mailferry run import-emails`) does.
pub async fn run_import_emails(app: &TestApp) -> store::executions::Execution {
    run_named(app, "import-emails", serde_json::json!({})).await
}

/// Runs the script `name` with `params` for the app's default client, in
/// this process, as a job (or `mailferry run`) does.
pub async fn run_named(
    app: &TestApp,
    name: &str,
    params: serde_json::Value,
) -> store::executions::Execution {
    let runner = scheduler::Runner::new(
        app.store.clone(),
        app.clock.clone(),
        scripts(&app.store, app.clock.clone(), app.dir.path()),
        scheduler::RunnerConfig::default(),
    );
    let params = params.as_object().cloned().unwrap_or_default();
    runner
        .run(
            &app.client_id,
            name,
            params,
            store::executions::TriggerKind::Manual,
        )
        .await
        .expect("the run starts")
}

/// [`run_import_emails`], which must succeed; its log.
pub async fn run_import_ok(app: &TestApp) -> Vec<String> {
    let run = run_import_emails(app).await;
    assert_eq!(
        run.status,
        store::executions::ExecutionStatus::Succeeded,
        "{:?} {:?}",
        run.error,
        run.log
    );
    run.log
}

/// An app-only importer on Alice's mailbox of `emu` that imports PDFs;
/// `extra`'s fields are added (or replace the defaults).
pub fn app_only_importer_body(
    emu: &msemu::EmulatorHandle,
    extra: &serde_json::Value,
) -> serde_json::Value {
    use msemu::demo;
    let mut body = serde_json::json!({
        "name": "Invoices",
        "protocol": "graph_client_credentials",
        "client_id": demo::DAEMON_CLIENT_ID,
        "client_secret": demo::DAEMON_CLIENT_SECRET,
        "tenant_id": demo::TENANT_ID,
        "mailbox": demo::ALICE,
        "folders": { "inbox": "Inbox", "exported": "Exported", "error": "Error" },
        "endpoints": { "authority": emu.base_url(), "graph": emu.base_url() },
        "attachments": { "allowed_types": ["application/pdf"] },
    });
    for (k, v) in extra.as_object().expect("extra is an object") {
        body[k] = v.clone();
    }
    body
}

/// A `mailferry serve` process with JSON logs, started once its scheduler
/// runs; its stderr is kept. Killed (by its PID) if a test drops it early.
pub struct ServeInstance {
    pub child: std::process::Child,
    /// Its scheduler's name, as written to `executions.owner`.
    pub name: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl ServeInstance {
    pub fn start(
        database_url: &str,
        key_file: &std::path::Path,
        data_dir: &std::path::Path,
    ) -> Self {
        Self::start_with(database_url, key_file, data_dir, &[])
    }

    pub fn start_with(
        database_url: &str,
        key_file: &std::path::Path,
        data_dir: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Self {
        let mut child = Command::new(mailferry_bin())
            .args(["--log-format", "json", "serve"])
            .envs(env.iter().copied())
            .env("MAILFERRY_DATABASE_URL", database_url)
            .env("MAILFERRY_MASTER_KEY_FILE", key_file)
            .env("MAILFERRY_DATA_DIR", data_dir)
            .env("MAILFERRY_LISTEN", "127.0.0.1:0")
            .env_remove("MAILFERRY_NOW")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mailferry serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let name = loop {
            let line = lines
                .next()
                .expect("serve exited before its scheduler started")
                .expect("read");
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                && event["message"] == "scheduler started"
            {
                break event["instance"].as_str().expect("instance").to_owned();
            }
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        // Keep draining stderr so the process never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().expect("log").push(line);
            }
        });
        Self { child, name, log }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }
}

impl Drop for ServeInstance {
    fn drop(&mut self) {
        // Only if a test failed midway: stop by PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
