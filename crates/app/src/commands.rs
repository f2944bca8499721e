//! What each subcommand does.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use domain::clock::{Clock, ManualClock, SystemClock};
use secrecy::{ExposeSecret, SecretString};
use store::{Keyring, Store};

use crate::cli::{Cli, ClientCommand, Command, KeysCommand, TokenCommand, UserCommand};
#[cfg(feature = "demo")]
use crate::demo;
use crate::settings::Settings;
use crate::telemetry;

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(&cli.settings)?;
    telemetry::init(settings.log_format);
    let clock = clock_from_env()?;
    match cli.command {
        Command::Serve => serve(settings, clock, None).await?,
        Command::Run(args) => return crate::scripts::run(settings, clock, args).await,
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo::run(settings, clock, &args).await?,
        #[cfg(feature = "demo")]
        // The emulator's own default address differs from the service's.
        Command::Msemu(args) => demo::run_emulator(cli.settings.listen.as_deref(), &args).await?,
        Command::Client(cmd) => client(settings, clock, cmd).await?,
        Command::User(cmd) => user(settings, clock, cmd).await?,
        Command::Token(cmd) => token(settings, clock, cmd).await?,
        Command::Keys(KeysCommand::Rotate) => rotate_keys(settings).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `MAILFERRY_NOW=2026-03-29T00:30:00Z` pins the clock: for reproducible
/// demos and for tests that prove behaviour does not depend on `TZ`.
fn clock_from_env() -> anyhow::Result<Arc<dyn Clock>> {
    match std::env::var("MAILFERRY_NOW") {
        Ok(raw) => {
            let now = domain::importer::parse_instant(&raw)
                .map_err(|m| anyhow::anyhow!("MAILFERRY_NOW: {m}"))?;
            tracing::warn!(%now, "the clock is pinned by MAILFERRY_NOW");
            Ok(Arc::new(ManualClock::new(now)))
        }
        Err(_) => Ok(Arc::new(SystemClock)),
    }
}

/// Opens the database (migrating it) with the master key, and makes sure
/// client `default` exists.
pub async fn open_store(settings: &Settings, clock: &dyn Clock) -> anyhow::Result<Store> {
    if settings.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                settings.data_dir.display()
            )
        })?;
    }
    let key_file = &settings.master_key_file;
    // A missing key file is created only for a database without secrets:
    // a fresh key would make every sealed secret unreadable.
    let (keyring, new_key) = if key_file.exists() {
        (Keyring::load(key_file)?, None)
    } else {
        let (ring, new) = Keyring::generate()?;
        (ring, Some(new))
    };
    let store = Store::connect(&settings.database_url, keyring)
        .await
        .with_context(|| {
            format!(
                "opening the database {}",
                store::redact_url(&settings.database_url)
            )
        })?;
    let census = store.sealed_census().await?;
    match (new_key, census.unopenable) {
        (Some(_), _) if census.values > 0 => anyhow::bail!(
            "the master key file {} is missing, but the database holds {} sealed secrets: restore the file from your backup, or set MAILFERRY_MASTER_KEY_FILE to where it is. Nothing was written",
            key_file.display(),
            census.values
        ),
        (Some(new), _) => new.write(key_file)?,
        (None, Some(id)) => anyhow::bail!(
            "the master key file {} does not open the database's secrets (one is sealed with key `{id}`, which it does not hold): it is not the file this database was set up with. Restore the right file, or set MAILFERRY_MASTER_KEY_FILE to it. Nothing was written",
            key_file.display()
        ),
        (None, None) => {}
    }
    store.ensure_default_client(clock.now()).await?;
    Ok(store)
}

/// Runs once the service is ready, with its state (the demo seeds its
/// importer with it).
pub type OnReady = Box<
    dyn FnOnce(
            web::AppState,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>
        + Send,
>;

/// Serves until a shutdown signal. `on_ready` runs once the listener is
/// bound and the store open (the demo uses it to seed its importer).
pub async fn serve(
    settings: Settings,
    clock: Arc<dyn Clock>,
    on_ready: Option<OnReady>,
) -> anyhow::Result<()> {
    let listener = bind(&settings).await?;
    serve_on(listener, settings, clock, on_ready).await
}

/// Binds the service's address (`MAILFERRY_LISTEN`).
pub async fn bind(settings: &Settings) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}: is another process using it? Set MAILFERRY_LISTEN",
                settings.listen
            )
        })
}

/// The base URL users and Microsoft reach the service under. Port 0 means
/// "any free port": the public URL then names the port actually bound.
pub fn public_url(settings: &Settings, bound: std::net::SocketAddr) -> String {
    if settings.listen.ends_with(":0")
        && settings.public_url == format!("http://{}", settings.listen)
    {
        format!("http://{bound}")
    } else {
        settings.public_url.clone()
    }
}

/// Serves on a listener already bound (the demo binds first, so the
/// emulator learns the redirect URI with the real port).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    settings: Settings,
    clock: Arc<dyn Clock>,
    on_ready: Option<OnReady>,
) -> anyhow::Result<()> {
    let store = open_store(&settings, clock.as_ref()).await?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let public_url = public_url(&settings, bound);
    tracing::info!(listen = %bound, public_url = %public_url, database = %store::redact_url(&settings.database_url), "mailferry is serving");
    let connector = runtime::Connector::new(store.clone(), clock.clone(), &settings.data_dir)
        .context("building the HTTP clients for Microsoft")?
        .with_import_concurrency(settings.import_concurrency)
        .with_notifications(
            settings
                .graph_notifications
                .then(|| runtime::push::NotificationUrls::under(&public_url)),
        );
    let state = mailferry::app_state(
        store,
        clock,
        web::WebConfig {
            public_url,
            oauth_redirect_url: settings.oauth_redirect_url.clone(),
        },
        connector,
        scheduler::RunnerConfig::default(),
    );
    let runner = state.runner.clone();
    if let Some(on_ready) = on_ready {
        on_ready(state.clone()).await?;
    }
    // The scheduler stops with the web server; it then waits for running
    // scripts up to its grace period.
    let stop = tokio_util::sync::CancellationToken::new();
    let scheduler = scheduler::Scheduler::new(runner, scheduler::SchedulerConfig::default());
    let scheduler = tokio::spawn(scheduler.run(stop.clone()));
    // Every instance helps with the import runs any instance started, so a
    // slot's mailboxes are spread over all of them.
    let helper = runtime::ImportEmails::new(state.connector.clone());
    let helping = tokio::spawn({
        let (store, clock, stop) = (state.store.clone(), state.clock.clone(), stop.clone());
        async move { helper.help_until(store, clock, stop).await }
    });
    // IMAP push: new mail in a watched Inbox wakes its importer's import.
    let watching = settings.imap_idle.then(|| {
        let push_state = state.clone();
        let wake: runtime::idle::Wake = std::sync::Arc::new(move |client, importer| {
            push_state.pushes.wake(&push_state, client, importer);
        });
        let (connector, stop) = (state.connector.clone(), stop.clone());
        tokio::spawn(async move { connector.watch_imap_inboxes(wake, stop).await })
    });
    let web_stop = stop.clone();
    let served = web::serve(listener, state, async move {
        shutdown_signal().await;
        web_stop.cancel();
    })
    .await;
    stop.cancel();
    if scheduler.await.is_err() {
        tracing::error!("the scheduler stopped abnormally");
    }
    if helping.await.is_err() {
        tracing::error!("the shared import work stopped abnormally");
    }
    if let Some(watching) = watching
        && watching.await.is_err()
    {
        tracing::error!("the IMAP Inbox watch stopped abnormally");
    }
    served.context("the web server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}

async fn client_named(store: &Store, name: &str) -> anyhow::Result<store::clients::Client> {
    match store.client_by_name(name).await? {
        Some(c) => Ok(c),
        None => bail!(
            "there is no client `{name}`: list them with `mailferry client list`, add one with `mailferry client add {name}`"
        ),
    }
}

async fn client(
    settings: Settings,
    clock: Arc<dyn Clock>,
    cmd: ClientCommand,
) -> anyhow::Result<()> {
    let store = open_store(&settings, clock.as_ref()).await?;
    match cmd {
        ClientCommand::Add { name, hosts } => {
            let c = store.create_client(&name, &hosts, clock.now()).await?;
            cli_audit(
                &store,
                &c.id,
                "client.created",
                None,
                &format!("`{}`, hosts: {}", c.name, display_hosts(&c.hosts)),
                clock.now(),
            )
            .await;
            println!(
                "client {} added (id {}), hosts: {}",
                c.name,
                c.id,
                display_hosts(&c.hosts)
            );
        }
        ClientCommand::List => {
            for c in store.list_clients().await? {
                println!("{}\t{}\t{}", c.name, c.id, display_hosts(&c.hosts));
            }
        }
    }
    Ok(())
}

/// Records a change made on the command line (by whoever runs it).
async fn cli_audit(
    store: &Store,
    client_id: &str,
    action: &str,
    target: Option<&str>,
    detail: &str,
    now: jiff::Timestamp,
) {
    let event = store::audit::NewAuditEvent {
        client_id,
        actor: "cli",
        action,
        target,
        detail,
    };
    // The change is made: failing to record it must not hide its result
    // (a new token is shown only once).
    if let Err(e) = store.record_audit(event, now).await {
        tracing::error!(error = %e, action, "the audit log could not record a change");
    }
}

fn display_hosts(hosts: &[String]) -> String {
    if hosts.is_empty() {
        "(any host)".into()
    } else {
        hosts.join(", ")
    }
}

async fn user(settings: Settings, clock: Arc<dyn Clock>, cmd: UserCommand) -> anyhow::Result<()> {
    let UserCommand::Add { email, client } = cmd;
    let store = open_store(&settings, clock.as_ref()).await?;
    let client = client_named(&store, &client).await?;
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the password from standard input")?;
    let password = SecretString::from(input.trim_end_matches(['\r', '\n']).to_owned());
    if password.expose_secret().chars().count() < 12 {
        bail!("the password (read from standard input) must have at least 12 characters");
    }
    let user = store
        .create_user(&client.id, &email, &password, clock.now())
        .await?;
    cli_audit(
        &store,
        &client.id,
        "user.created",
        Some(&user.id),
        &user.email,
        clock.now(),
    )
    .await;
    println!("user {} added to client {}", user.email, client.name);
    Ok(())
}

async fn token(settings: Settings, clock: Arc<dyn Clock>, cmd: TokenCommand) -> anyhow::Result<()> {
    let store = open_store(&settings, clock.as_ref()).await?;
    let now = clock.now();
    match cmd {
        TokenCommand::Create {
            client,
            label,
            expires_in_days,
        } => {
            let client = client_named(&store, &client).await?;
            let expires_at = expires_in_days
                .map(|days| now.checked_add(jiff::SignedDuration::from_hours(24 * i64::from(days))))
                .transpose()?;
            let (owner, token) = store
                .create_api_token(&client.id, &label, expires_at, now)
                .await?;
            cli_audit(
                &store,
                &client.id,
                "token.created",
                Some(&owner.token_id),
                &format!("`{label}`"),
                now,
            )
            .await;
            eprintln!(
                "API token {} for client {}{} (shown once; only its hash is stored):",
                owner.token_id,
                client.name,
                expires_at.map_or_else(String::new, |t| format!(", valid until {t}"))
            );
            println!("{}", token.expose_secret());
        }
        TokenCommand::List { client } => {
            let client = client_named(&store, &client).await?;
            for t in store.list_api_tokens(&client.id).await? {
                let state = match (t.revoked_at, t.expires_at) {
                    (Some(at), _) => format!("revoked {at}"),
                    (None, Some(at)) if at <= now => format!("expired {at}"),
                    (None, Some(at)) => format!("valid until {at}"),
                    (None, None) => "valid, no expiry".to_owned(),
                };
                println!(
                    "{}\t{}\tcreated {}\tlast used {}\t{state}",
                    t.id,
                    t.label,
                    t.created_at,
                    t.last_used_at
                        .map_or_else(|| "never".to_owned(), |u| u.to_string())
                );
            }
        }
        TokenCommand::Revoke { client, id } => {
            let client = client_named(&store, &client).await?;
            if !store.revoke_api_token(&client.id, &id, now).await? {
                bail!(
                    "client {} has no API token {id} that is not revoked already: `mailferry token list --client {}` shows them",
                    client.name,
                    client.name
                );
            }
            cli_audit(&store, &client.id, "token.revoked", Some(&id), "", now).await;
            println!("API token {id} of client {} revoked", client.name);
        }
    }
    Ok(())
}

async fn rotate_keys(settings: Settings) -> anyhow::Result<()> {
    let clock = SystemClock;
    // Open first with the current keys: a broken database must not leave a new key behind unused.
    open_store(&settings, &clock).await?.close().await;
    let id = Keyring::append_new_key(&settings.master_key_file)?;
    let store = open_store(&settings, &clock).await?;
    let count = store.reseal_all().await?;
    println!(
        "new master key {id} added to {}; {count} secrets re-sealed with it. Back the file up; older key lines can now be removed.",
        settings.master_key_file.display()
    );
    Ok(())
}
