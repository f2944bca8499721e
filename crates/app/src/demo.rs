//! `mailferry demo` and `mailferry msemu`: the Microsoft emulator, alone or
//! next to the service with a seeded mailbox and a ready importer, so a
//! newcomer sees the whole flow without an Azure tenant.

use std::sync::Arc;

use anyhow::Context;
use domain::clock::Clock;
use domain::importer::ImporterInput;
use msemu::demo as seed;
use secrecy::{ExposeSecret, SecretString};

use crate::cli::{DemoArgs, MsemuArgs};

mod mails;
use crate::commands::{self, OnReady};
use crate::settings::Settings;

const DEMO_IMPORTER: &str = "Demo mailbox (emulated Microsoft 365)";
/// The demo's admin; the demo serves loopback only, so a fixed password is fine.
const DEMO_ADMIN: &str = "admin@demo.example";
const DEMO_ADMIN_PASSWORD: &str = "mailferry-demo-password";

pub async fn run_emulator(listen: Option<&str>, args: &MsemuArgs) -> anyhow::Result<()> {
    let listen = listen.unwrap_or("127.0.0.1:8081");
    let listen = listen.parse().with_context(|| {
        format!("--listen: `{listen}` is not an address: write IP:PORT, e.g. 127.0.0.1:8081")
    })?;
    let options = msemu::Options {
        auto_consent: args.auto_consent,
        access_token_lifetime: std::time::Duration::from_secs(args.access_token_lifetime),
        https_listen: args.https_listen,
        ca_pem_path: args.ca_pem.clone(),
        ..msemu::Options::default()
    };
    msemu::run(listen, args.state.as_deref(), options)
        .await
        .context("the Microsoft emulator failed")
}

pub async fn run(settings: Settings, clock: Arc<dyn Clock>, args: &DemoArgs) -> anyhow::Result<()> {
    // Bound first, so that with `MAILFERRY_LISTEN=…:0` the redirect URI the
    // emulator accepts names the port actually bound.
    let service = commands::bind(&settings).await?;
    let bound = service.local_addr().context("reading the bound address")?;
    let redirect_uri = format!(
        "{}/api/v2/importers/email/authenticate/end",
        commands::public_url(&settings, bound)
    );
    let mut demo_seed = msemu::Seed::demo();
    let alice_inbox = demo_seed
        .tenants
        .iter_mut()
        .flat_map(|t| t.users.iter_mut())
        .filter(|u| u.user_principal_name == seed::ALICE)
        .flat_map(|u| u.folders.iter_mut())
        .find(|f| f.display_name == "Inbox");
    if let Some(inbox) = alice_inbox {
        inbox
            .messages
            .extend(mails::mails().into_iter().map(|m| msemu::SeedMessage {
                mime: Some(m.mime),
                ..msemu::SeedMessage::default()
            }));
    }
    for app in demo_seed.tenants.iter_mut().flat_map(|t| t.apps.iter_mut()) {
        if app.client_id == seed::CLIENT_ID && !app.redirect_uris.contains(&redirect_uri) {
            app.redirect_uris.push(redirect_uri.clone());
        }
    }
    let listener = tokio::net::TcpListener::bind(args.emulator_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} for the emulator: set MAILFERRY_EMULATOR_LISTEN or --emulator-listen",
                args.emulator_listen
            )
        })?;
    let emulator = msemu::Emulator::start(demo_seed, msemu::Options::default(), listener, None)
        .await
        .context("starting the Microsoft emulator")?;
    let emulator_url = emulator.base_url();
    let on_ready: OnReady =
        Box::new(move |state: web::AppState| Box::pin(prepare(state, emulator_url)));
    let result = commands::serve_on(service, settings, clock, Some(on_ready)).await;
    emulator.shutdown().await;
    result
}

/// Creates the demo importer (once) and prints how to use it.
async fn prepare(state: web::AppState, emulator_url: String) -> anyhow::Result<()> {
    let now = state.clock.now();
    let client = state.store.ensure_default_client(now).await?;
    let existing = state.store.list_importers(&client.id).await?;
    let importer = match existing
        .into_iter()
        .find(|i| i.settings.name == DEMO_IMPORTER)
    {
        Some(importer) => importer,
        None => {
            let input: ImporterInput = serde_json::from_value(serde_json::json!({
                "name": DEMO_IMPORTER,
                "protocol": "graph_delegated",
                "client_id": seed::CLIENT_ID,
                "client_secret": seed::CLIENT_SECRET,
                "tenant_id": seed::TENANT_ID,
                "mailbox": "",
                "folders": { "inbox": "Inbox", "exported": "Exported", "error": "Error" },
                "endpoints": { "authority": emulator_url, "graph": emulator_url },
                "attachments": { "allowed_types": mails::allowed_types() },
                "rules": mails::importer_rules()
            }))?;
            let valid = input
                .validate(None)
                .map_err(|e| anyhow::anyhow!("demo importer: {e}"))?;
            let importer = state.store.create_importer(&client.id, &valid, now).await?;
            // Alerts to the server log (no network), so the demo shows them
            // at work; set once with the importer, so an admin's own
            // settings survive a restart of the demo.
            let (mut alerts, _) = state.store.alert_settings(&client.id).await?;
            if !alerts.has_target() {
                alerts.log = true;
                state
                    .store
                    .put_alert_settings(&client.id, &alerts, None, now)
                    .await?;
            }
            importer
        }
    };
    match state
        .store
        .create_user(
            &client.id,
            DEMO_ADMIN,
            &SecretString::from(DEMO_ADMIN_PASSWORD),
            now,
        )
        .await
    {
        Ok(_) | Err(store::StoreError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let (_, token) = state
        .store
        .create_api_token(&client.id, "demo", None, now)
        .await?;
    let base = &state.config.public_url;
    let extra = mails::mails();
    let demo_total = extra.len();
    let demo_imports = extra
        .iter()
        .filter(|m| m.fate == mails::Fate::Import)
        .count();
    println!(
        "\nmailferry demo is running.\n\
         \n  Admin UI:           {base}/ui/  (sign in as {admin}, password {admin_password})\
         \n  Service:            {base}  (health: {base}/healthz)\
         \n  API token:          {token}\
         \n  Demo importer:      {id}\
         \n  Emulated Microsoft: {emulator_url}  (user {alice}, password {password})\
         \n\nTry: open the importer in the UI ({base}/ui/#/importers/{id}), press Authenticate and\
         \nsign in at the emulated Microsoft as {alice}; then run the Mail connection test.\
         \nThen import: Scripts → import-emails → Run now (or wait: the job runs every 5\
         \nminutes). {imports} of the Inbox's {total} mails become documents ({base}/ui/#/documents),\
         \n{errors} go to Error with their reason (the importer's page → Mails in Error, with\
         \nReprocess once you changed a rule). Alerts (a grant to renew, imports failing,\
         \n…) are written to this server's log as `WARN mailferry::alert` lines; the Alerts\
         \npage ({base}/ui/#/alerts) sends a test alert and sets webhook and e-mail targets.\
         \nThe API:\
         \n  curl -H 'Authorization: Bearer {token}' {base}/api/v2/importers/email\n",
        imports = demo_imports + 3,
        total = demo_total + 3,
        errors = demo_total - demo_imports,
        token = token.expose_secret(),
        id = importer.id,
        alice = seed::ALICE,
        password = seed::ALICE_PASSWORD,
        admin = DEMO_ADMIN,
        admin_password = DEMO_ADMIN_PASSWORD,
    );
    Ok(())
}
