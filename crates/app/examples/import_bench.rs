//! Import throughput against the in-process Microsoft emulator: N mails of
//! about 120 KB (a ~88 KB PDF, base64-encoded) in Alice's Inbox, imported by
//! the `import-emails` script into the filesystem spool of a SQLite
//! installation, as `mailferry run import-emails` would, with LATENCY_MS
//! added to every Graph request. Then, in the same run and on the same mails
//! in Bob's Inbox, the peer: `bench/graph_sdk_peer.py` on Microsoft's
//! msgraph-sdk (list, `$value` to a file, move; 4 in flight), when
//! BENCH_PYTHON names a Python with msgraph-sdk.
//!
//! Prints, for each: mails/s, MB/s, Graph requests per mail, the most
//! requests in flight at once, CPU seconds and peak RSS, and the limit
//! Graph's 4 concurrent requests allow: `4 / (latency × requests per mail)`.
//! The emulator runs inside this process: mailferry's CPU and RSS include
//! it, and the emulator's own share is printed from the peer's run.
//!
//! `cargo run --release -p mailferry --example import_bench -- [MAILS] [LATENCY_MS]`
//! (or `bench/import.sh`).

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
    let arg = |n: usize, default: u64| -> Result<u64, Box<dyn std::error::Error>> {
        Ok(std::env::args()
            .nth(n)
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let mails = usize::try_from(arg(1, 1_000)?)?;
    let latency_ms = arg(2, 0)?;
    let mut seed = Seed::demo();
    let users = &mut seed.tenants[0].users;
    for user in users.iter_mut() {
        for folder in &mut user.folders {
            folder.messages.clear();
        }
    }
    // Bob gets Alice's (now empty) folders: the peer's mailbox.
    let folders = users[0].folders.clone();
    users[1].folders = folders;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let emu = Emulator::start(seed, Options::default(), listener, None).await?;
    let mut mime_bytes = 0usize;
    for n in 0..mails {
        let (_, raw) = import::corpus::numbered_mail(n, Some(88_000));
        mime_bytes += raw.len();
        emu.add_message(demo::ALICE, "Inbox", &raw)?;
        emu.add_message(demo::BOB, "Inbox", &raw)?;
    }
    if latency_ms > 0 {
        emu.add_fault(msemu::FaultRule::graph(msemu::FaultKind::Latency {
            ms: latency_ms,
        }));
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
    let cpu_before = cpu_seconds();
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
    let cpu = cpu_seconds() - cpu_before;
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
    let counters = emu.counters();
    let alice = counters
        .mailboxes
        .get(demo::ALICE)
        .cloned()
        .unwrap_or_default();
    println!("{summary}");
    if std::env::var_os("BENCH_LOG").is_some() {
        for line in execution
            .log
            .iter()
            .take(12)
            .chain(execution.log.iter().rev().take(8).rev())
        {
            println!("  log: {line}");
        }
    }
    println!(
        "{mails} mails, {mb:.1} MB of MIME (avg {:.0} KB), {latency_ms} ms added to each Graph request",
        mime_bytes as f64 / mails as f64 / 1000.0
    );
    let mailferry = Figures {
        mails,
        seconds: took,
        cpu_seconds: cpu,
        peak_rss_mb: peak_rss_mb(),
        requests: alice.requests,
        max_in_flight: alice.max_in_flight,
        busy_seconds: alice.busy_seconds,
        seconds_at_in_flight: at_in_flight(&alice.seconds_at_in_flight),
    };
    mailferry.print("mailferry (+ emulator)", mb, latency_ms);
    // Every mail accounted for: one document each, the Inbox empty, the
    // Exported folder holding them all, and no 429 for going over 4.
    let total = |name: &str| -> Result<usize, Box<dyn std::error::Error>> {
        Ok(emu
            .folders(demo::ALICE)?
            .iter()
            .find(|f| f.display_name == name)
            .map_or(0, |f| f.total))
    };
    let importer_id = store
        .list_importers(&client.id)
        .await?
        .first()
        .map(|i| i.id.clone())
        .ok_or("the bench importer is missing")?;
    let documents = usize::try_from(store.count_documents(&importer_id).await?)?;
    let (inbox, exported) = (total("Inbox")?, total("Exported")?);
    let lost = mails.saturating_sub(documents.min(exported));
    let duplicated = documents.saturating_sub(mails);
    println!(
        "{:<24} documents {documents}, Inbox {inbox}, Exported {exported}: lost {lost}, duplicated {duplicated}; 429s {} (over 4 in flight), faults {}",
        "", alice.concurrency_throttled, counters.faults_fired,
    );
    if lost > 0 || duplicated > 0 || inbox > 0 || alice.concurrency_throttled > 0 {
        return Err(
            "mails were lost, doubled or left, or Graph refused requests: see the line above"
                .into(),
        );
    }

    if let Ok(python) = std::env::var("BENCH_PYTHON")
        && !python.is_empty()
    {
        let peer = peer(&emu, &python, mails)?;
        let bob = emu
            .counters()
            .mailboxes
            .get(demo::BOB)
            .cloned()
            .unwrap_or_default();
        let peer = Figures {
            requests: bob.requests,
            max_in_flight: bob.max_in_flight,
            busy_seconds: bob.busy_seconds,
            seconds_at_in_flight: at_in_flight(&bob.seconds_at_in_flight),
            ..peer
        };
        peer.print("msgraph-sdk peer", mb, latency_ms);
        println!(
            "mailferry / msgraph-sdk: {:.2}x",
            peer.seconds / mailferry.seconds
        );
    }
    emu.shutdown().await;
    Ok(())
}

/// Seconds with 0, 1, 2, 3 and 4 (or more) requests in flight.
fn at_in_flight(seconds: &[f64]) -> [f64; 5] {
    let mut out = [0.0; 5];
    for (n, s) in seconds.iter().enumerate() {
        out[n.min(4)] += s;
    }
    out
}

/// One tool's run.
#[derive(Debug, Clone, Copy)]
struct Figures {
    mails: usize,
    seconds: f64,
    cpu_seconds: f64,
    peak_rss_mb: f64,
    requests: u64,
    max_in_flight: u64,
    /// Seconds the mailbox's requests were in flight, summed.
    busy_seconds: f64,
    /// Seconds with 0, 1, 2, … requests in flight.
    seconds_at_in_flight: [f64; 5],
}

impl Figures {
    fn print(&self, tool: &str, mb: f64, latency_ms: u64) {
        let per_mail = self.requests as f64 / self.mails as f64;
        let rate = self.mails as f64 / self.seconds;
        let limit = (latency_ms > 0).then(|| 4.0 / (latency_ms as f64 / 1000.0 * per_mail));
        println!(
            "{tool:<24} {:>7.2} s {rate:>7.1} mails/s {:>6.1} MB/s  {per_mail:.2} requests/mail, at most {} in flight, CPU {:.1} s, peak RSS {:.0} MB{}",
            self.seconds,
            mb / self.seconds,
            self.max_in_flight,
            self.cpu_seconds,
            self.peak_rss_mb,
            limit.map_or(String::new(), |l| format!(
                ", limit {l:.1} mails/s ({:.0} % of it)",
                rate / l * 100.0
            )),
        );
        // Where the limit is lost: requests slower than the added latency
        // (the emulator's own time), or slots left unused by the client.
        println!(
            "{:<24} {:.1} ms per request as the emulator saw it; its 4 slots busy {:.0} % of the run",
            "",
            self.busy_seconds / self.requests.max(1) as f64 * 1000.0,
            self.busy_seconds / (4.0 * self.seconds) * 100.0,
        );
        let [none, one, two, three, four] = self.seconds_at_in_flight;
        println!(
            "{:<24} seconds with 0/1/2/3/4 requests in flight: {none:.2} / {one:.2} / {two:.2} / {three:.2} / {four:.2}",
            "",
        );
    }
}

/// Runs bench/graph_sdk_peer.py on Bob's Inbox; the emulator's CPU while
/// it serves the peer is this process's.
fn peer(
    emu: &msemu::EmulatorHandle,
    python: &str,
    mails: usize,
) -> Result<Figures, Box<dyn std::error::Error>> {
    let folders = emu.folders(demo::BOB)?;
    let id_of = |name: &str| {
        folders
            .iter()
            .find(|f| f.display_name == name)
            .map(|f| f.id.clone())
            .ok_or_else(|| format!("Bob has no {name} folder"))
    };
    let token = app_token(&emu.base_url())?;
    let out = tempfile::tempdir()?;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/graph_sdk_peer.py");
    let emulator_cpu = cpu_seconds();
    let output = std::process::Command::new(python)
        .arg(script)
        .args([
            emu.base_url(),
            demo::BOB.to_owned(),
            id_of("Inbox")?,
            id_of("Exported")?,
            out.path().display().to_string(),
        ])
        .env("PEER_TOKEN", token)
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "the peer failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let emulator_cpu = cpu_seconds() - emulator_cpu;
    let line: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let number = |k: &str| line[k].as_f64().unwrap_or(f64::NAN);
    let moved = line["mails"].as_u64().unwrap_or(0);
    if usize::try_from(moved)? != mails {
        return Err(format!("the peer moved {moved} mails, not {mails}").into());
    }
    println!("(the emulator spent {emulator_cpu:.1} s of CPU serving the peer)");
    Ok(Figures {
        mails,
        seconds: number("seconds"),
        cpu_seconds: number("cpu_seconds"),
        peak_rss_mb: number("peak_rss_mb"),
        requests: 0,
        max_in_flight: 0,
        busy_seconds: 0.0,
        seconds_at_in_flight: [0.0; 5],
    })
}

/// An app-only token of the daemon app, as the peer's own login would get.
fn app_token(base: &str) -> Result<String, Box<dyn std::error::Error>> {
    let url = format!("{base}/{}/oauth2/v2.0/token", demo::TENANT_ID);
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
        demo::DAEMON_CLIENT_ID,
        demo::DAEMON_CLIENT_SECRET.replace('~', "%7E")
    );
    let output = std::process::Command::new("curl")
        .args(["-sS", "-X", "POST", "--data", &body, &url])
        .output()?;
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    answer["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no token: {answer}").into())
}

/// User + system CPU of this process, from /proc (Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ")".
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of stat; the rest after ")"
    // starts at field 3.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

/// The peak resident set of this process, from /proc (Linux).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
