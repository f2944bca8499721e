//! Test harness: the shared one (`test-support`: an app on a pre-bound port
//! with a fresh database and a pinned clock, helpers that read like user
//! actions, the emulator, mails), plus what only this binary has.

pub use test_support::*;

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
