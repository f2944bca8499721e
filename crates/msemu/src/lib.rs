//! msemu: a local, stateful emulator of the Microsoft identity platform (v2.0) and the mail
//! part of Microsoft Graph v1.0, strict where Microsoft is lenient so client bugs surface in
//! tests. See `README.md` in this crate for the seed format, admin API and fault injection.
//!
//! ```no_run
//! # async fn demo() -> Result<(), msemu::Error> {
//! let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let emu = msemu::Emulator::start(msemu::Seed::demo(), msemu::Options::default(), http, None).await?;
//! println!("Graph at {}/v1.0", emu.base_url());
//! emu.shutdown().await;
//! # Ok(()) }
//! ```

mod admin;
mod clock;
mod context;
mod counters;
mod entra;
mod faults;
mod graph;
mod ids;
mod json;
mod mime;
mod seed;
mod server;
mod state;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::SignedDuration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use admin::{FolderInfo, MessageInfo, NewMessage};
pub use counters::{MailboxCounters, Snapshot as Counters};
pub use faults::{FaultKind, FaultRule};
pub use seed::{
    Seed, SeedApp, SeedCertificate, SeedFolder, SeedMessage, SeedSecret, SeedSharedMailbox,
    SeedTenant, SeedUser, demo,
};

/// Errors starting or running the emulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading seed file {path}: {source}")]
    SeedFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing seed file {path}: {source}")]
    SeedJson {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("invalid seed: {0}")]
    Seed(#[from] state::StateError),
    #[error("TLS setup: {0}")]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Key(#[from] entra::keys::KeyError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("admin operation failed: {0}")]
    Admin(String),
}

/// Behaviour switches.
#[derive(Debug, Clone)]
pub struct Options {
    /// An authorize request whose `login_hint` names a seeded user redirects at once with a
    /// code, consenting on the user's behalf (for scripts and benchmarks).
    pub auto_consent: bool,
    /// Access-token lifetime (Entra: 60–90 minutes).
    pub access_token_lifetime: Duration,
    /// Refresh tokens expire after this long unused (Entra: 90 days).
    pub refresh_token_inactivity: Duration,
    /// Concurrent requests allowed per (app, mailbox); Outlook allows 4.
    pub concurrency_limit: u64,
    /// Where to write the generated CA certificate (PEM) when serving https. Defaults to a
    /// file in the system temp directory.
    pub ca_pem_path: Option<PathBuf>,
    /// Names and addresses the https certificate is valid for.
    pub tls_hosts: Vec<String>,
    /// For [`run`]: also serve https on this address.
    pub https_listen: Option<SocketAddr>,
    /// Longest lifetime of a change-notification subscription, in minutes
    /// (Graph: 10,070 for messages).
    pub subscription_max_minutes: i64,
    /// Accept `http://` notification URLs on loopback (Graph takes only
    /// https): for tests of a service that listens without TLS.
    pub allow_http_notification_urls: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            auto_consent: false,
            access_token_lifetime: Duration::from_secs(75 * 60),
            refresh_token_inactivity: Duration::from_secs(90 * 24 * 3600),
            concurrency_limit: 4,
            ca_pem_path: None,
            tls_hosts: vec!["127.0.0.1".into(), "localhost".into(), "::1".into()],
            https_listen: None,
            subscription_max_minutes: graph::subscriptions::DEFAULT_MAX_MINUTES,
            allow_http_notification_urls: false,
        }
    }
}

/// Entry point; see [`Emulator::start`].
pub struct Emulator;

/// A running emulator. Dropping it without [`EmulatorHandle::shutdown`] leaves the server
/// tasks running until the runtime ends.
pub struct EmulatorHandle {
    ctx: context::Shared,
    http_addr: SocketAddr,
    https_addr: Option<SocketAddr>,
    ca_pem: Option<String>,
    ca_pem_path: Option<PathBuf>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Emulator {
    /// Starts serving on the given (already bound) listeners. With an https listener a CA and
    /// server certificate are generated and the CA written to [`EmulatorHandle::ca_pem_path`].
    pub async fn start(
        seed: Seed,
        options: Options,
        http: TcpListener,
        https: Option<TcpListener>,
    ) -> Result<EmulatorHandle, Error> {
        let clock = clock::Clock::default();
        let mut world = state::State::from_seed(&seed, clock.now())?;
        world.lifetimes.access_token = to_signed(options.access_token_lifetime);
        world.lifetimes.refresh_token_inactivity = to_signed(options.refresh_token_inactivity);
        let ctx = Arc::new(context::Ctx {
            state: Mutex::new(world),
            clock,
            options: options.clone(),
            keys: entra::keys::SigningKey::load()?,
            faults: faults::Faults::default(),
            counters: Arc::new(counters::Counters::default()),
        });
        let router = axum::Router::new()
            .merge(admin::router())
            .merge(entra::router())
            .merge(graph::router())
            .with_state(Arc::clone(&ctx));
        let (stop, rx) = watch::channel(false);
        let http_addr = http.local_addr()?;
        // The notifier posts with reqwest (built without a default provider).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut tasks = vec![
            tokio::spawn(server::serve(http, router.clone(), None, rx.clone())),
            tokio::spawn(graph::subscriptions::notify_loop(
                Arc::clone(&ctx),
                rx.clone(),
            )),
        ];
        let (mut https_addr, mut ca_pem, mut ca_pem_path) = (None, None, None);
        if let Some(listener) = https {
            let material = tls::generate(&options.tls_hosts)?;
            let path = options.ca_pem_path.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!(
                    "msemu-ca-{}-{}.pem",
                    std::process::id(),
                    ids::new_token("", 6)
                ))
            });
            std::fs::write(&path, &material.ca_pem)?;
            https_addr = Some(listener.local_addr()?);
            ca_pem = Some(material.ca_pem);
            ca_pem_path = Some(path);
            tasks.push(tokio::spawn(server::serve(
                listener,
                router,
                Some(material.acceptor),
                rx,
            )));
        }
        tracing::info!(%http_addr, https_addr = ?https_addr, "msemu listening");
        Ok(EmulatorHandle {
            ctx,
            http_addr,
            https_addr,
            ca_pem,
            ca_pem_path,
            stop,
            tasks: Mutex::new(tasks),
        })
    }
}

fn to_signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

impl EmulatorHandle {
    /// `http://127.0.0.1:PORT`; Graph is at `{base_url}/v1.0`, the authority at
    /// `{base_url}/{tenant}`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// `https://127.0.0.1:PORT` when serving https.
    pub fn https_base_url(&self) -> Option<String> {
        self.https_addr.map(|a| format!("https://{a}"))
    }

    /// The generated CA certificate (PEM file) clients must trust for https.
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.ca_pem_path.as_deref()
    }

    /// The generated CA certificate as PEM text.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Moves the emulator's clock (e.g. past token expiry); returns the new time.
    pub fn advance_clock(&self, by: SignedDuration) -> jiff::Timestamp {
        self.ctx.clock.advance(by)
    }

    /// Adds a fault rule; returns its id.
    pub fn add_fault(&self, rule: FaultRule) -> u64 {
        self.ctx.faults.add(rule)
    }

    /// Removes all fault rules.
    pub fn clear_faults(&self) {
        self.ctx.faults.clear()
    }

    /// Request counters and per-mailbox concurrency high-water marks.
    pub fn counters(&self) -> Counters {
        self.ctx.counters.snapshot()
    }

    /// Adds a message (raw MIME) to `folder` (a path, created if missing) of a mailbox.
    pub fn add_message(
        &self,
        mailbox: &str,
        folder: &str,
        mime: &[u8],
    ) -> Result<MessageInfo, Error> {
        let req = NewMessage {
            folder: folder.to_string(),
            message: SeedMessage {
                mime: None,
                mime_base64: Some(base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    mime,
                )),
                received: None,
                is_read: false,
            },
        };
        admin::add_message_to(&self.ctx, mailbox, &req).map_err(|e| Error::Admin(e.message))
    }

    /// Every message of a mailbox with its folder path.
    pub fn messages(&self, mailbox: &str) -> Result<Vec<MessageInfo>, Error> {
        admin::messages_of(&self.ctx, mailbox).map_err(|e| Error::Admin(e.message))
    }

    /// Every folder of a mailbox with its path.
    pub fn folders(&self, mailbox: &str) -> Result<Vec<FolderInfo>, Error> {
        admin::folders_of(&self.ctx, mailbox).map_err(|e| Error::Admin(e.message))
    }

    /// Revokes a user's refresh tokens (their next use fails with AADSTS50173).
    /// The change-notification subscriptions: (id, mailbox id, expiry, paused).
    pub fn subscriptions(&self) -> Vec<(String, String, jiff::Timestamp, bool)> {
        self.ctx
            .lock()
            .subscriptions
            .values()
            .map(|s| (s.id.clone(), s.mailbox_id.clone(), s.expires, s.paused))
            .collect()
    }

    /// Sends the lifecycle event `event` for subscription `id`, as Graph
    /// would (`reauthorizationRequired` also pauses its notifications,
    /// `subscriptionRemoved` deletes it).
    pub async fn lifecycle_event(&self, id: &str, event: &str) -> Result<(), String> {
        graph::subscriptions::lifecycle_event(&self.ctx, id, event).await
    }

    pub fn revoke_refresh_tokens(&self, upn: &str) -> Result<(), Error> {
        admin::revoke_refresh_tokens(&self.ctx, upn)
            .map(|_| ())
            .map_err(|e| Error::Admin(e.message))
    }

    /// Stops serving, closes open connections and removes the generated CA file.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
        if let Some(p) = &self.ca_pem_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Loads a seed from a JSON file.
pub fn load_seed(path: &Path) -> Result<Seed, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::SeedFile {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::SeedJson {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs the emulator until ctrl-c: on `listen` (http) and, if set, `options.https_listen`,
/// with the seed from `state_file` or [`Seed::demo`].
pub async fn run(
    listen: SocketAddr,
    state_file: Option<&Path>,
    options: Options,
) -> Result<(), Error> {
    let seed = match state_file {
        Some(p) => load_seed(p)?,
        None => Seed::demo(),
    };
    let http = TcpListener::bind(listen).await?;
    let https = match options.https_listen {
        Some(a) => Some(TcpListener::bind(a).await?),
        None => None,
    };
    let emu = Emulator::start(seed, options, http, https).await?;
    tracing::info!(
        base_url = %emu.base_url(),
        https_base_url = ?emu.https_base_url(),
        ca_pem = ?emu.ca_pem_path(),
        "msemu ready; press ctrl-c to stop"
    );
    tokio::signal::ctrl_c().await?;
    emu.shutdown().await;
    Ok(())
}
