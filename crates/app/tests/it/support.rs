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
