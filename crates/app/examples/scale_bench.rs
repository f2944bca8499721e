//! Scale benchmarks of issue #14, against the Microsoft emulator running in
//! this process (so `mailferry` processes reach it over loopback) and a
//! PostgreSQL named by `MAILFERRY_TEST_POSTGRES_URL` (a fresh database per
//! case). The `mailferry` binary under test is `MAILFERRY_BIN`.
//!
//! - `spread [IMPORTERS] [MAILS_EACH] [LATENCY_MS] [INSTANCES...]` (default
//!   1000 10 20, instances 1 2 3): IMPORTERS app-only importers, one shared
//!   mailbox each, MAILS_EACH mails of ~5 KB (a PDF) in each Inbox, LATENCY_MS
//!   added to every Graph request; for each instance count, that many
//!   `mailferry serve` processes on one fresh database, and the
//!   `import-emails` job switched to every 2 seconds: the time until every
//!   mail is a document, mails/s, and how the mailboxes spread over the
//!   instances.
//! - `idle [IMPORTERS] [WINDOW_S]` (default 1000 60): one `mailferry serve`
//!   with IMPORTERS app-only importers and empty Inboxes; CPU % and RSS over
//!   a window without any import run, then over a window with one
//!   `import-emails` run in it.
//! - `refresh [GRANTS] [LATENCY_MS]` (default 10000 50): GRANTS delegated
//!   importers whose grants hold a real refresh token of the emulator (signed
//!   in through its authorize and token endpoints) and no access token, so
//!   every one is due; LATENCY_MS added to every token request; the wall time
//!   of `mailferry run refresh-tokens`, refreshes/s and the token requests in
//!   flight (rate x latency). Then the peer `bench/msal_refresh_peer.py`
//!   (Microsoft's msal, 32 threads) on as many fresh refresh tokens of its
//!   own, when BENCH_PYTHON names a Python with msal. Both over https (msal
//!   takes no other authority): mailferry trusts the emulator's CA through
//!   SSL_CERT_FILE. `BENCH_RUN_LOG=FILE` keeps the run's log.
//!
//! CPU and RSS of a process come from /proc/PID/stat and /proc/PID/status.
//! Everything runs on one machine: the emulator (this process), PostgreSQL
//! and the instances share its cores.
//!
//! `bench/scale.sh` builds and runs it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark: a failed setup step ends it with its message, like a test"
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::schedule::CronSchedule;
use jiff::Timestamp;
use msemu::{
    Emulator, EmulatorHandle, FaultKind, FaultRule, Options, Seed, SeedFolder, SeedSharedMailbox,
    demo,
};
use store::Store;
use store::jobs::JobSpec;
use test_support::{Db, fresh_database, key_file, open_store};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u64| -> u64 {
        args.get(i)
            .map(|s| {
                s.parse()
                    .unwrap_or_else(|_| panic!("`{s}` is not a number"))
            })
            .unwrap_or(default)
    };
    match args.first().map(String::as_str) {
        Some("spread") => {
            let importers = usize::try_from(number(1, 1_000))?;
            let mails_each = usize::try_from(number(2, 10))?;
            let latency = number(3, 20);
            let mut counts: Vec<usize> = args
                .iter()
                .skip(4)
                .map(|s| s.parse().expect("an instance count"))
                .collect();
            if counts.is_empty() {
                counts = vec![1, 2, 3];
            }
            spread(importers, mails_each, latency, &counts).await
        }
        Some("idle") => {
            let importers = usize::try_from(number(1, 1_000))?;
            idle(importers, Duration::from_secs(number(2, 60))).await
        }
        Some("refresh") => {
            let grants = usize::try_from(number(1, 10_000))?;
            refresh(grants, number(2, 50)).await
        }
        _ => Err("usage: scale_bench spread|idle|refresh [ARGS…] (see the file's header)".into()),
    }
}

// --- spread: import work over 1, 2, 3 instances ------------------------------

async fn spread(
    importers: usize,
    mails_each: usize,
    latency_ms: u64,
    counts: &[usize],
) -> Result<(), BoxError> {
    let (_, sample) = import::corpus::numbered_mail(0, Some(5_000));
    println!(
        "{importers} importers (one shared mailbox each) x {mails_each} mails of {:.1} KB (a 5 KB PDF) = {} mails; +{latency_ms} ms per Graph request; import_concurrency default ({} per instance on this machine)",
        sample.len() as f64 / 1000.0,
        importers * mails_each,
        runtime::default_import_concurrency(),
    );
    let mut rates = Vec::new();
    for &instances in counts {
        let rate = spread_case(importers, mails_each, latency_ms, instances).await?;
        rates.push((instances, rate));
    }
    if let Some(&(base_n, base)) = rates.first() {
        for &(n, rate) in &rates[1..] {
            println!("{n} instances / {base_n}: {:.2}x the mails/s", rate / base);
        }
    }
    Ok(())
}

async fn spread_case(
    importers: usize,
    mails_each: usize,
    latency_ms: u64,
    instances: usize,
) -> Result<f64, BoxError> {
    let dir = tempfile::tempdir()?;
    let url = fresh_database(Db::Postgres, dir.path()).await;
    let store = open_store(&url, dir.path()).await;
    let client = store.ensure_default_client(Timestamp::now()).await?;
    set_job(&store, &client.id, "import-emails", None).await?;
    let emu = mailbox_emulator(importers, Options::default()).await?;
    let setup = Instant::now();
    for n in 0..importers {
        for m in 0..mails_each {
            let (_, raw) = import::corpus::numbered_mail(n * mails_each + m, Some(5_000));
            emu.add_message(&shared_mailbox(n), "Inbox", &raw)?;
        }
    }
    create_app_only_importers(&store, &client.id, &emu, importers).await?;
    add_latency(&emu, "/v1.0/", latency_ms);
    let total = importers * mails_each;
    let mut running: Vec<Instance> = (0..instances)
        .map(|_| Instance::serve(&url, dir.path(), &[]))
        .collect();
    println!(
        "== {instances} instance(s): set up in {:.1} s; import-emails every 2 s from now",
        setup.elapsed().as_secs_f64()
    );
    let cpu_before: Vec<f64> = running.iter().map(|i| cpu_seconds(i.pid())).collect();
    let requests_before = emu.counters().requests_total;
    let machine_before = Machine::now();
    let enabled_at = Timestamp::now();
    let started = Instant::now();
    set_job(&store, &client.id, "import-emails", Some("*/2 * * * * *")).await?;
    let deadline = started + Duration::from_secs(30 * 60);
    let mut last_report = Instant::now();
    loop {
        let done = count(&store, "SELECT COUNT(*) FROM documents").await?;
        if done >= total as i64 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {done} of {total} mails imported after 30 minutes").into());
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            println!(
                "   … {done} of {total} after {:.0} s",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = started.elapsed().as_secs_f64();
    let finished_at = Timestamp::now();
    let machine = Machine::now().since(&machine_before);
    let cpu: Vec<f64> = running
        .iter()
        .zip(&cpu_before)
        .map(|(i, before)| cpu_seconds(i.pid()) - before)
        .collect();
    let peaks: Vec<f64> = running
        .iter()
        .map(|i| status_mb(i.pid(), "VmHWM"))
        .collect();
    let requests = emu.counters().requests_total - requests_before;
    set_job(&store, &client.id, "import-emails", None).await?;
    // The first run's own start: the time the trigger (a 2-second slot)
    // took is not the import's.
    let first_start: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(started_at) FROM executions WHERE script = 'import-emails' AND started_at >= $1",
    )
    .bind(enabled_at.as_millisecond())
    .fetch_one(store.pool())
    .await?;
    let runs = count(
        &store,
        &format!(
            "SELECT COUNT(*) FROM executions WHERE script = 'import-emails' AND started_at >= {}",
            enabled_at.as_millisecond()
        ),
    )
    .await?;
    let in_inbox: usize = (0..importers)
        .map(|n| {
            emu.messages(&shared_mailbox(n))
                .map(|ms| ms.iter().filter(|m| m.folder_path == "Inbox").count())
                .unwrap_or(usize::MAX)
        })
        .sum();
    // Measured from the first run's start: an instance notices a job
    // enabled by another process within its scheduler's poll (10 s).
    let seconds = first_start.map_or(took, |ms| {
        (finished_at.as_millisecond() - ms) as f64 / 1000.0
    });
    let rate = total as f64 / seconds;
    println!(
        "{instances} instance(s): {total} mails in {seconds:.1} s from the first run's start = {rate:.1} mails/s ({took:.1} s from enabling the job); {in_inbox} left in the Inboxes; {:.2} Graph+token requests/mail; {runs} import-emails run(s) started",
        requests as f64 / total as f64,
    );
    println!("   {machine}");
    for (n, instance) in running.iter().enumerate() {
        println!(
            "   instance {n}: {} mailbox shares, CPU {:.1} s, peak RSS {:.0} MB",
            instance.count_lines("worked a mailbox's share"),
            cpu[n],
            peaks[n],
        );
    }
    for instance in &mut running {
        instance.stop();
    }
    store.close().await;
    emu.shutdown().await;
    Ok(rate)
}

// --- idle: one serve, 1,000 importers, nothing to import --------------------

async fn idle(importers: usize, window: Duration) -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let url = fresh_database(Db::Postgres, dir.path()).await;
    let store = open_store(&url, dir.path()).await;
    let client = store.ensure_default_client(Timestamp::now()).await?;
    // No import run until the second window; refresh-tokens keeps its
    // default schedule (every 50 minutes).
    set_job(&store, &client.id, "import-emails", None).await?;
    let emu = mailbox_emulator(importers, Options::default()).await?;
    create_app_only_importers(&store, &client.id, &emu, importers).await?;
    add_latency(&emu, "/v1.0/", 20);
    let mut instance = Instance::serve(&url, dir.path(), &[]);
    let pid = instance.pid();
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!(
        "one `mailferry serve`, {importers} app-only importers with empty Inboxes (+20 ms per Graph request), {}-second windows after 5 s of settling; RSS at start {:.1} MB",
        window.as_secs(),
        status_mb(pid, "VmRSS")
    );

    let quiet = Window::measure(pid, window).await;
    let runs = executions_between(&store, quiet.from, quiet.to).await?;
    quiet.print("no import run", &runs);

    // A first run, as after every start: it learns each mailbox's
    // well-known folders and app-only token, which every later run reuses.
    let at = Timestamp::now() + jiff::SignedDuration::from_secs(2);
    set_job(&store, &client.id, "import-emails", Some(&once_at(at))).await?;
    let first_cpu = cpu_seconds(pid);
    let first = Instant::now();
    while count(
        &store,
        "SELECT COUNT(*) FROM executions WHERE script = 'import-emails' AND status <> 'running'",
    )
    .await?
        < 1
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "first import-emails run after the start: {:.1} s, CPU {:.2} s (learns folders and tokens)",
        first.elapsed().as_secs_f64(),
        cpu_seconds(pid) - first_cpu
    );

    // One run of import-emails 5 s into the second window: every run after
    // the first, each five minutes.
    let at = Timestamp::now() + jiff::SignedDuration::from_secs(5);
    set_job(&store, &client.id, "import-emails", Some(&once_at(at))).await?;
    let (graph_before, db_before) = (emu.counters().requests_total, database_work(&store).await?);
    let busy = Window::measure(pid, window).await;
    let (graph_after, db_after) = (emu.counters().requests_total, database_work(&store).await?);
    let runs = executions_between(&store, busy.from, busy.to).await?;
    busy.print("a later import run", &runs);
    let per_mailbox = |n: i64| n as f64 / importers as f64;
    println!(
        "   per mailbox: {:.1} Graph/identity requests, {:.1} database transactions, {:.1} rows written",
        per_mailbox(i64::try_from(graph_after - graph_before).unwrap_or(i64::MAX)),
        per_mailbox(db_after.0 - db_before.0),
        per_mailbox(db_after.1 - db_before.1),
    );
    let run_cpu = busy.cpu_seconds - quiet.cpu_seconds / quiet.seconds * busy.seconds;
    println!(
        "   → one run over {importers} empty mailboxes costs ≈ {run_cpu:.2} CPU s; with the default job (every 5 minutes) that averages {:.2} % of one core",
        (quiet.cpu_seconds / quiet.seconds * 300.0 + run_cpu) / 300.0 * 100.0
    );
    instance.stop();
    store.close().await;
    emu.shutdown().await;
    Ok(())
}

/// CPU and memory of one process over a window.
struct Window {
    from: Timestamp,
    to: Timestamp,
    seconds: f64,
    cpu_seconds: f64,
    rss_max_mb: f64,
    rss_end_mb: f64,
    hwm_mb: f64,
}

impl Window {
    async fn measure(pid: u32, length: Duration) -> Self {
        let from = Timestamp::now();
        let started = Instant::now();
        let cpu = cpu_seconds(pid);
        let mut rss_max: f64 = 0.0;
        while started.elapsed() < length {
            rss_max = rss_max.max(status_mb(pid, "VmRSS"));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let cpu_seconds = cpu_seconds(pid) - cpu;
        let rss_end = status_mb(pid, "VmRSS");
        Window {
            from,
            to: Timestamp::now(),
            seconds: started.elapsed().as_secs_f64(),
            cpu_seconds,
            rss_max_mb: rss_max.max(rss_end),
            rss_end_mb: rss_end,
            hwm_mb: status_mb(pid, "VmHWM"),
        }
    }

    fn print(&self, what: &str, runs: &[String]) {
        println!(
            "{what:<22} {:.1} s: CPU {:.2} s = {:.2} % of one core; RSS {:.1} MB at the end, {:.1} MB at most in the window; VmHWM {:.1} MB",
            self.seconds,
            self.cpu_seconds,
            self.cpu_seconds / self.seconds * 100.0,
            self.rss_end_mb,
            self.rss_max_mb,
            self.hwm_mb,
        );
        if runs.is_empty() {
            println!("   runs in the window: none");
        }
        for run in runs {
            println!("   run in the window: {run}");
        }
    }
}

/// PostgreSQL's committed transactions and rows written so far (this
/// benchmark's own queries included: a few per window).
async fn database_work(store: &Store) -> Result<(i64, i64), BoxError> {
    Ok(sqlx::query_as(
        "SELECT sum(xact_commit)::bigint, sum(tup_inserted + tup_updated + tup_deleted)::bigint FROM pg_stat_database",
    )
    .fetch_one(store.pool())
    .await?)
}

async fn executions_between(
    store: &Store,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<String>, BoxError> {
    let rows: Vec<(String, String, i64, Option<i64>, String)> = sqlx::query_as(
        "SELECT script, status, started_at, finished_at, log FROM executions WHERE started_at >= $1 AND started_at <= $2 ORDER BY started_at",
    )
    .bind(from.as_millisecond())
    .bind(to.as_millisecond())
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(script, status, started, finished, log)| {
            let lines: Vec<String> = serde_json::from_str(&log).unwrap_or_default();
            format!(
                "{script} {status} in {}: {}",
                finished.map_or("?".to_owned(), |f| format!(
                    "{:.2} s",
                    (f - started) as f64 / 1000.0
                )),
                lines.last().cloned().unwrap_or_default()
            )
        })
        .collect())
}

// --- refresh: refresh-tokens over 10,000 grants ---------------------------

const GRAPH: &str = "https://graph.microsoft.com";

async fn refresh(grants: usize, latency_ms: u64) -> Result<(), BoxError> {
    let python = std::env::var("BENCH_PYTHON").ok().filter(|p| !p.is_empty());
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    // https for the peer: msal takes only an https authority.
    let https = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let options = Options {
        auto_consent: true,
        ..Options::default()
    };
    let emu = Emulator::start(Seed::demo(), options, http, Some(https)).await?;
    let signing_in = Instant::now();
    let wanted = if python.is_some() { 2 * grants } else { grants };
    let mut tokens = sign_in_many(&emu.base_url(), wanted).await?;
    println!(
        "{wanted} refresh tokens from real sign-ins (authorize with login_hint + code redemption, auto-consent) in {:.1} s",
        signing_in.elapsed().as_secs_f64()
    );
    let peer_tokens = tokens.split_off(grants);

    let dir = tempfile::tempdir()?;
    let url = fresh_database(Db::Postgres, dir.path()).await;
    let store = open_store(&url, dir.path()).await;
    let client = store.ensure_default_client(Timestamp::now()).await?;
    let setup = Instant::now();
    // Both tools over https, as against Microsoft: mailferry trusts the
    // emulator's CA through SSL_CERT_FILE (rustls-native-certs reads it).
    let tls_base = emu.https_base_url().expect("https listener");
    let ca = emu.ca_pem_path().expect("CA file").to_path_buf();
    let tls_port: u16 = tls_base.rsplit(':').next().unwrap().parse()?;
    create_delegated_importers(&store, &client.id, &tls_base, tokens).await?;
    println!(
        "{grants} delegated importers with authorized grants (refresh token, no access token: all due) in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    let token_path = format!("/{}/oauth2/v2.0/token", demo::TENANT_ID);
    add_latency(&emu, &token_path, latency_ms);

    let hits_before = emu.counters().endpoints.get("token").copied().unwrap_or(0);
    let watch = ConnectionWatch::start(tls_port);
    let started = Instant::now();
    // Waited for off the runtime: the emulator answers on its threads.
    let mut run = Command::new(mailferry_bin());
    run.args(["run", "refresh-tokens"])
        .env("MAILFERRY_DATABASE_URL", &url)
        .env("MAILFERRY_MASTER_KEY_FILE", key_file(dir.path()))
        .env("MAILFERRY_DATA_DIR", dir.path().join("data"))
        .env("SSL_CERT_FILE", &ca)
        .env_remove("MAILFERRY_NOW")
        .stdin(Stdio::null());
    let machine_before = Machine::now();
    let watched = tokio::task::spawn_blocking(move || run_watched(run)).await??;
    let took = started.elapsed().as_secs_f64();
    let machine = Machine::now().since(&machine_before);
    let max_connections = watch.stop();
    let output = &watched.output;
    let requests = emu.counters().endpoints.get("token").copied().unwrap_or(0) - hits_before;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let headline = stdout.lines().next().unwrap_or_default().to_owned();
    let summary = stdout
        .lines()
        .find(|l| l.contains("summary:"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    let refreshed = count(
        &store,
        "SELECT COUNT(*) FROM oauth_grants WHERE access_token_sealed IS NOT NULL AND state = 'authorized'",
    )
    .await?;
    if let Some(path) = std::env::var_os("BENCH_RUN_LOG") {
        std::fs::write(path, &output.stderr)?;
    }
    if !output.status.success() {
        // What went wrong, without the ten thousand lines of what went right.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let trouble: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.contains(": refreshed;") && !l.contains(" INFO "))
            .collect();
        println!(
            "   the run failed; its log lines other than INFO ({} of them):",
            trouble.len()
        );
        for line in trouble.iter().take(20) {
            println!("   | {line}");
        }
    }
    println!("`mailferry run refresh-tokens`: {headline}");
    println!("   {summary}");
    let rate = refreshed as f64 / took;
    println!(
        "mailferry refresh-tokens  {grants} grants, +{latency_ms} ms per token request, https: {took:.2} s wall (process start to exit), {refreshed} refreshed = {rate:.0} refreshes/s; {requests} token requests over at most {max_connections} connection(s) (HTTP/2 multiplexes); {:.1} requests in flight on average (Little's law: rate x latency; the script allows 32)",
        rate * latency_ms as f64 / 1000.0,
    );
    println!(
        "   the mailferry process: CPU {:.1} s, peak RSS {:.0} MB; {machine}",
        watched.cpu_seconds, watched.peak_rss_mb
    );
    store.close().await;

    if let Some(python) = python {
        let file = dir.path().join("peer-refresh-tokens.txt");
        std::fs::write(&file, peer_tokens.join("\n"))?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/msal_refresh_peer.py");
        let hits_before = emu.counters().endpoints.get("token").copied().unwrap_or(0);
        let watch = ConnectionWatch::start(tls_port);
        let mut peer = Command::new(&python);
        peer.arg(script)
            .arg(&file)
            .env("PEER_BASE", &tls_base)
            .env("PEER_TENANT", demo::TENANT_ID)
            .env("PEER_CLIENT_ID", demo::CLIENT_ID)
            .env("PEER_CLIENT_SECRET", demo::CLIENT_SECRET)
            .env("PEER_THREADS", "32")
            .env("REQUESTS_CA_BUNDLE", &ca)
            .env("SSL_CERT_FILE", &ca)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("ALL_PROXY");
        let machine_before = Machine::now();
        let output = tokio::task::spawn_blocking(move || peer.output()).await??;
        let machine = Machine::now().since(&machine_before);
        let max_connections = watch.stop();
        let requests = emu.counters().endpoints.get("token").copied().unwrap_or(0) - hits_before;
        if !output.status.success() {
            return Err(format!(
                "the peer failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        let line: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        let seconds = line["seconds"].as_f64().unwrap_or(f64::NAN);
        let ok = line["refreshed"].as_u64().unwrap_or(0);
        let peer_rate = ok as f64 / seconds;
        println!(
            "msal peer (32 threads)    {grants} refresh tokens, same latency, https: {seconds:.2} s = {peer_rate:.0} refreshes/s, {} failed; {requests} token requests; CPU {:.1} s, peak RSS {:.0} MB; at most {max_connections} connections (HTTP/1.1, one per request in flight); {:.1} requests in flight on average",
            line["failed"],
            line["cpu_seconds"].as_f64().unwrap_or(f64::NAN),
            line["peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
            peer_rate * latency_ms as f64 / 1000.0,
        );
        println!("   {machine}");
        println!("mailferry / msal: {:.2}x the refreshes/s", rate / peer_rate);
    }
    emu.shutdown().await;
    Ok(())
}

/// A finished process's output, and its CPU and peak RSS as last seen
/// in /proc while it ran (sampled every 10 ms).
struct Watched {
    output: std::process::Output,
    cpu_seconds: f64,
    peak_rss_mb: f64,
}

fn run_watched(mut command: Command) -> std::io::Result<Watched> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let (mut cpu, mut peak) = (0.0_f64, 0.0_f64);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let now = cpu_seconds(pid);
        if now > cpu {
            cpu = now;
        }
        let hwm = status_mb(pid, "VmHWM");
        if hwm > peak {
            peak = hwm;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Watched {
        output: std::process::Output {
            status,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        },
        cpu_seconds: cpu,
        peak_rss_mb: peak,
    })
}

/// `n` refresh tokens of Alice for the demo's delegated app, each from a
/// sign-in of its own (authorize with `login_hint`, which the emulator's
/// auto-consent answers with a code at once, then the code's redemption).
async fn sign_in_many(base: &str, n: usize) -> Result<Vec<String>, BoxError> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let scope = format!("offline_access {GRAPH}/User.Read {GRAPH}/Mail.ReadWrite");
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (http, scope, base, next) =
            (http.clone(), scope.clone(), base.to_owned(), next.clone());
        tasks.spawn(async move {
            let mut out = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                out.push(sign_in(&http, &base, &scope).await?);
            }
            Ok::<_, BoxError>(out)
        });
    }
    let mut tokens = Vec::with_capacity(n);
    while let Some(done) = tasks.join_next().await {
        tokens.extend(done??);
    }
    Ok(tokens)
}

async fn sign_in(http: &reqwest::Client, base: &str, scope: &str) -> Result<String, BoxError> {
    let verifier = "a-plain-pkce-verifier-that-is-long-enough-for-the-rules-0123";
    let mut url = url::Url::parse(&format!("{base}/{}/oauth2/v2.0/authorize", demo::TENANT_ID))?;
    url.query_pairs_mut()
        .append_pair("client_id", demo::CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", demo::REDIRECT_URI)
        .append_pair("scope", scope)
        .append_pair("state", "s")
        .append_pair("login_hint", demo::ALICE)
        .append_pair("code_challenge", verifier)
        .append_pair("code_challenge_method", "plain");
    let resp = http.get(url.as_str()).send().await?;
    let location = resp
        .headers()
        .get("location")
        .ok_or("authorize did not redirect")?
        .to_str()?;
    let code = url::Url::parse(location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or("no code in the redirect")?;
    let body: serde_json::Value = http
        .post(format!("{base}/{}/oauth2/v2.0/token", demo::TENANT_ID))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", demo::CLIENT_ID),
            ("client_secret", demo::CLIENT_SECRET),
            ("code", &code),
            ("redirect_uri", demo::REDIRECT_URI),
            ("code_verifier", verifier),
            ("scope", scope),
        ])
        .send()
        .await?
        .json()
        .await?;
    body["refresh_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no refresh token: {body}").into())
}

async fn create_delegated_importers(
    store: &Store,
    client_id: &str,
    base: &str,
    tokens: Vec<String>,
) -> Result<(), BoxError> {
    let tokens = Arc::new(tokens);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (store, client_id, base) = (store.clone(), client_id.to_owned(), base.to_owned());
        let (tokens, next) = (tokens.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(token) = tokens.get(n) else {
                    return Ok::<_, BoxError>(());
                };
                let input: domain::importer::ImporterInput =
                    serde_json::from_value(serde_json::json!({
                        "name": format!("Grant {n}"),
                        "protocol": "graph_delegated",
                        "client_id": demo::CLIENT_ID,
                        "client_secret": demo::CLIENT_SECRET,
                        "tenant_id": demo::TENANT_ID,
                        "mailbox": "",
                        "folders": {"inbox": "Inbox", "exported": "Exported", "error": "Error"},
                        "cloud": "global",
                        "endpoints": {"authority": base, "graph": base},
                    }))?;
                let valid = input
                    .validate(None)
                    .map_err(|e| format!("importer settings: {e}"))?;
                let now = Timestamp::now();
                let record = store.create_importer(&client_id, &valid, now).await?;
                store
                    .put_grant(&store::grants::Grant {
                        importer_id: record.id,
                        state: store::grants::GrantState::Authorized,
                        account: Some(demo::ALICE.into()),
                        scopes: vec!["User.Read".into(), "Mail.ReadWrite".into()],
                        access_token: None,
                        access_token_expires_at: None,
                        refresh_token: Some(secrecy::SecretString::from(token.clone())),
                        refresh_token_issued_at: Some(now),
                        last_refresh_at: Some(now),
                        last_error: None,
                        consecutive_failures: 0,
                        version: 1,
                        updated_at: now,
                    })
                    .await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Samples, every 10 ms, how many established TCP connections the
/// listener on `port` holds (/proc/net/tcp), keeping the most: with
/// HTTP/1.1, one per request in flight.
struct ConnectionWatch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<usize>,
}

impl ConnectionWatch {
    fn start(port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let local = format!(":{port:04X}");
            let mut most = 0;
            while !flag.load(Ordering::Relaxed) {
                let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
                let open = table
                    .lines()
                    .skip(1)
                    .filter(|l| {
                        let f: Vec<&str> = l.split_whitespace().collect();
                        f.len() > 3 && f[1].ends_with(&local) && f[3] == "01"
                    })
                    .count();
                most = most.max(open);
                std::thread::sleep(Duration::from_millis(10));
            }
            most
        });
        Self { stop, thread }
    }

    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

// --- shared ----------------------------------------------------------------

fn mailferry_bin() -> PathBuf {
    std::env::var_os("MAILFERRY_BIN")
        .map(PathBuf::from)
        .expect("MAILFERRY_BIN names the mailferry binary to measure (bench/scale.sh sets it)")
}

fn shared_mailbox(n: usize) -> String {
    format!("box{n:05}@contoso.example")
}

/// The demo tenant without its sample mails, plus `n` shared mailboxes with
/// `Exported` and `Error` folders.
async fn mailbox_emulator(n: usize, options: Options) -> Result<EmulatorHandle, BoxError> {
    let mut seed = Seed::demo();
    for user in &mut seed.tenants[0].users {
        for folder in &mut user.folders {
            folder.messages.clear();
        }
    }
    seed.tenants[0].shared_mailboxes.clear();
    for i in 0..n {
        seed.tenants[0].shared_mailboxes.push(SeedSharedMailbox {
            id: None,
            user_principal_name: shared_mailbox(i),
            display_name: format!("Box {i}"),
            full_access: Vec::new(),
            folders: ["Exported", "Error"]
                .map(|name| SeedFolder {
                    display_name: name.to_owned(),
                    ..SeedFolder::default()
                })
                .to_vec(),
        });
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(Emulator::start(seed, options, listener, None).await?)
}

/// `n` app-only importers of the demo's daemon app, importer `i` on
/// shared mailbox `i`, importing PDFs into the spool.
async fn create_app_only_importers(
    store: &Store,
    client_id: &str,
    emu: &EmulatorHandle,
    n: usize,
) -> Result<(), BoxError> {
    let now = Timestamp::now();
    for i in 0..n {
        let input: domain::importer::ImporterInput = serde_json::from_value(serde_json::json!({
            "name": format!("Box {i}"),
            "protocol": "graph_client_credentials",
            "client_id": demo::DAEMON_CLIENT_ID,
            "client_secret": demo::DAEMON_CLIENT_SECRET,
            "tenant_id": demo::TENANT_ID,
            "mailbox": shared_mailbox(i),
            "folders": {"inbox": "Inbox", "exported": "Exported", "error": "Error"},
            "endpoints": {"authority": emu.base_url(), "graph": emu.base_url()},
            "attachments": {"allowed_types": ["application/pdf"]},
        }))?;
        let valid = input
            .validate(None)
            .map_err(|e| format!("importer settings: {e}"))?;
        store.create_importer(client_id, &valid, now).await?;
    }
    Ok(())
}

fn add_latency(emu: &EmulatorHandle, path_prefix: &str, ms: u64) {
    if ms > 0 {
        emu.add_fault(FaultRule {
            kind: FaultKind::Latency { ms },
            count: None,
            rate: None,
            path_prefix: path_prefix.to_owned(),
            method: None,
            id: 0,
        });
    }
}

/// Sets the default client's job running `script` to `cron` (UTC), or
/// disables it (`None`).
/// A cron expression that fires once, at `at` (to the second, UTC).
fn once_at(at: Timestamp) -> String {
    let utc = at.to_zoned(jiff::tz::TimeZone::UTC);
    format!("{} {} {} * * *", utc.second(), utc.minute(), utc.hour())
}

async fn set_job(
    store: &Store,
    client_id: &str,
    script: &str,
    cron: Option<&str>,
) -> Result<(), BoxError> {
    let job = store
        .list_jobs(client_id)
        .await?
        .into_iter()
        .find(|j| j.script == script)
        .ok_or_else(|| format!("no {script} job"))?;
    let spec = JobSpec {
        script: script.to_owned(),
        schedule: CronSchedule::parse(cron.unwrap_or(&job.cron), "UTC")?,
        enabled: cron.is_some(),
        params: job.params.clone(),
        description: job.description.clone(),
    };
    store
        .update_job(client_id, &job.id, &spec, Timestamp::now())
        .await?;
    Ok(())
}

async fn count(store: &Store, sql: &str) -> Result<i64, BoxError> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(store.pool())
        .await?)
}

/// A `mailferry serve` process on the database at `url`, listening on a
/// free loopback port; its JSON log is kept.
struct Instance {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Instance {
    fn serve(url: &str, dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(mailferry_bin())
            .args(["--log-format", "json", "serve"])
            .envs(env.iter().copied())
            .env("MAILFERRY_DATABASE_URL", url)
            .env("MAILFERRY_MASTER_KEY_FILE", key_file(dir))
            .env("MAILFERRY_DATA_DIR", dir.join("data"))
            .env("MAILFERRY_LISTEN", "127.0.0.1:0")
            .env_remove("MAILFERRY_NOW")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mailferry serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        loop {
            let line = lines
                .next()
                .expect("serve exited before its scheduler started")
                .expect("read");
            if line.contains("scheduler started") {
                break;
            }
        }
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().expect("log").push(line);
            }
        });
        Self { child, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn count_lines(&self, needle: &str) -> usize {
        self.log
            .lock()
            .expect("log")
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// SIGTERM by PID, then waits for it to end.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // Only when the bench failed midway: stop it by PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User + system CPU seconds of process `pid` (/proc/PID/stat, Linux).
fn cpu_seconds(pid: u32) -> f64 {
    stat_ticks(pid, &[11, 12]) / clock_ticks()
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A `kB` field of /proc/PID/status (VmRSS, VmHWM) in MB.
fn status_mb(pid: u32, field: &str) -> f64 {
    let status: BTreeMap<String, String> = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect();
    status
        .get(field)
        .and_then(|v| v.trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU use of everything on the machine, sampled at one instant.
#[derive(Debug, Clone, Copy)]
struct Machine {
    /// Non-idle and all jiffies of every core (/proc/stat).
    busy: f64,
    total: f64,
    /// CPU seconds of this process (the emulator) and of the private
    /// PostgreSQL (postmaster, its live backends, and the reaped ones).
    emulator: f64,
    postgres: f64,
    at: Instant,
}

impl Machine {
    fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let jiffies: Vec<f64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        let total: f64 = jiffies.iter().sum();
        // idle and iowait
        let idle = jiffies.get(3).copied().unwrap_or(0.0) + jiffies.get(4).copied().unwrap_or(0.0);
        Machine {
            busy: total - idle,
            total,
            emulator: cpu_seconds(std::process::id()),
            postgres: postgres_cpu(),
            at: Instant::now(),
        }
    }

    /// What happened since `before`, as one line.
    fn since(&self, before: &Machine) -> String {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let busy = (self.busy - before.busy) / (self.total - before.total).max(1.0) * 100.0;
        let seconds = self.at.duration_since(before.at).as_secs_f64();
        format!(
            "machine: {busy:.0} % of {cores} cores busy (everything, other users included); emulator (this process) {:.1} CPU s, PostgreSQL {:.1} CPU s over {seconds:.1} s",
            self.emulator - before.emulator,
            self.postgres - before.postgres,
        )
    }
}

/// CPU seconds of the PostgreSQL in `$MAILFERRY_PG_DIR` (scripts/peers.sh):
/// the postmaster with its reaped children, plus its live children.
fn postgres_cpu() -> f64 {
    let Some(dir) = std::env::var_os("MAILFERRY_PG_DIR") else {
        return f64::NAN;
    };
    let pid: Option<u32> = std::fs::read_to_string(Path::new(&dir).join("data/postmaster.pid"))
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()));
    let Some(pid) = pid else {
        return f64::NAN;
    };
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    std::iter::once(pid)
        .chain(children.split_whitespace().filter_map(|c| c.parse().ok()))
        .map(cpu_with_children)
        .sum()
}

/// utime + stime + cutime + cstime of `pid`, in seconds.
fn cpu_with_children(pid: u32) -> f64 {
    stat_ticks(pid, &[11, 12, 13, 14]) / clock_ticks()
}

fn stat_ticks(pid: u32, fields_after_name: &[usize]) -> f64 {
    let mut stat = String::new();
    if let Ok(mut f) = std::fs::File::open(format!("/proc/{pid}/stat")) {
        let _ = f.read_to_string(&mut stat);
    }
    // Fields after the command name (which may hold spaces) start at ")";
    // utime, stime, cutime, cstime are fields 14 to 17, i.e. 11 to 14 after it.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    fields_after_name
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum()
}
