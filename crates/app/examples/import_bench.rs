//! Import throughput against the in-process Microsoft emulator: N mails of
//! about 120 KB (a ~88 KB PDF, base64-encoded) in Alice's Inbox, imported by
//! the `import-emails` script into the filesystem spool of a SQLite
//! installation, as `mailferry run import-emails` would. Prints mails/s and
//! MB/s of MIME. The emulator runs in the same process and shares the CPU,
//! as Dovecot did in the testbed's IMAP figures (which are IMAP peers, not
//! Graph: compare orders of magnitude, not digits).
//!
//! `cargo run --release -p mailferry --example import_bench -- [MAILS]` (or `bench/import.sh`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark: a failed setup step ends it with its message, like a test"
)]

use std::sync::Arc;
use std::time::Instant;

use domain::clock::{Clock, SystemClock};
use msemu::{Emulator, Options, Seed, demo};
use scheduler::{Runner, RunnerConfig};
use store::executions::{ExecutionStatus, TriggerKind};
use store::{Keyring, Store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mails: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000);
    let mut seed = Seed::demo();
    for user in &mut seed.tenants[0].users {
        for folder in &mut user.folders {
            folder.messages.clear();
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let emu = Emulator::start(seed, Options::default(), listener, None).await?;
    let mut mime_bytes = 0usize;
    for n in 0..mails {
        let (_, raw) = import::corpus::numbered_mail(n, Some(88_000));
        mime_bytes += raw.len();
        emu.add_message(demo::ALICE, "Inbox", &raw)?;
    }

    let dir = tempfile::tempdir()?;
    let store = Store::connect(
        &format!("sqlite://{}", dir.path().join("mailferry.db").display()),
        Keyring::load_or_create(&dir.path().join("master.key"))?,
    )
    .await?;
    let now = SystemClock.now();
    let client = store.ensure_default_client(now).await?;
    let input: domain::importer::ImporterInput = serde_json::from_value(serde_json::json!({
        "name": "Bench", "protocol": "graph_client_credentials",
        "client_id": demo::DAEMON_CLIENT_ID, "client_secret": demo::DAEMON_CLIENT_SECRET,
        "tenant_id": demo::TENANT_ID, "mailbox": demo::ALICE,
        "folders": {"inbox": "Inbox", "exported": "Exported", "error": "Error"},
        "endpoints": {"authority": emu.base_url(), "graph": emu.base_url()},
        "attachments": import::corpus::attachment_rules_json(),
        "rules": import::corpus::import_rules_json(),
    }))?;
    let valid = input
        .validate(None)
        .map_err(|e| format!("importer settings: {e}"))?;
    store.create_importer(&client.id, &valid, now).await?;

    let clock: Arc<dyn domain::clock::Clock> = Arc::new(SystemClock);
    let connector = runtime::Connector::new(store.clone(), clock.clone(), dir.path())?;
    let runner = Runner::new(
        store.clone(),
        clock,
        mailferry::registry(&connector),
        RunnerConfig::default(),
    );
    let started = Instant::now();
    let execution = runner
        .run(
            &client.id,
            "import-emails",
            serde_json::Map::new(),
            TriggerKind::Manual,
        )
        .await?;
    let took = started.elapsed().as_secs_f64();
    if execution.status != ExecutionStatus::Succeeded {
        return Err(format!("the import failed: {:?}", execution.error).into());
    }
    let summary = execution
        .log
        .iter()
        .rev()
        .find(|l| l.contains(": imported "))
        .cloned()
        .unwrap_or_default();
    let mb = mime_bytes as f64 / 1_000_000.0;
    println!("{summary}");
    println!(
        "{mails} mails, {mb:.1} MB of MIME (avg {:.0} KB) in {took:.2} s: {:.0} mails/s, {:.1} MB/s",
        mime_bytes as f64 / mails as f64 / 1000.0,
        mails as f64 / took,
        mb / took
    );
    emu.shutdown().await;
    Ok(())
}
