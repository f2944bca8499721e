//! The `mailferry` command line.

use clap::{Parser, Subcommand};

use crate::settings::SettingsArgs;

#[derive(Debug, Parser)]
#[command(
    name = "mailferry",
    version,
    about = "Imports e-mail from Microsoft 365 and IMAP mailboxes into documents"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: SettingsArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server and the scheduler.
    Serve,
    /// `serve` plus the built-in Microsoft emulator with a seeded mailbox and a
    /// ready importer: the whole flow without an Azure tenant.
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
    /// Run the Microsoft emulator (identity platform + Graph mail) alone, on
    /// `--listen` (default 127.0.0.1:8081).
    #[cfg(feature = "demo")]
    Msemu(MsemuArgs),
    /// Run a script once now, e.g. `mailferry run purge-documents --param retention_days=90`;
    /// prints a summary and exits non-zero when it failed.
    Run(RunArgs),
    /// Manage clients (the tenants of this installation).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage admin users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage the master key that seals secrets.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The script (`GET /api/v2/scripts` lists them).
    pub script: String,
    /// Only this importer (given to the script as `importer_id`).
    #[arg(long)]
    pub importer: Option<String>,
    /// Only this client [default: every client, one run each].
    #[arg(long)]
    pub client: Option<String>,
    /// A script parameter as `key=value` (repeatable).
    #[arg(long = "param", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Say what the script would do and touch nothing (given as `dry_run=true`;
    /// `import-emails` lists what each Inbox mail would become and why).
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_param(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("`{raw}` is not key=value")),
    }
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Add a client answering the given host names.
    Add {
        name: String,
        /// Host name this client answers (repeatable).
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
    /// List clients.
    List,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an admin; the password is read from standard input.
    Add {
        email: String,
        #[arg(long, default_value = "default")]
        client: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it (it is stored only as a hash: keep it).
    Create {
        #[arg(long, default_value = "default")]
        client: String,
        /// What the token is for.
        #[arg(long, default_value = "cli")]
        label: String,
        /// The token stops working after this many days [default: never].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in_days: Option<u32>,
    },
    /// List the client's API tokens: id, label, use, expiry, revocation (never the token).
    List {
        #[arg(long, default_value = "default")]
        client: String,
    },
    /// Revoke an API token by its id (from `token list`): it stops working at once.
    Revoke {
        #[arg(long, default_value = "default")]
        client: String,
        /// The token's id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new master key and re-seal every secret with it.
    Rotate,
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where the emulated Microsoft 365 listens (`:0` picks a free port).
    #[arg(
        long,
        env = "MAILFERRY_EMULATOR_LISTEN",
        default_value = "127.0.0.1:8081"
    )]
    pub emulator_listen: std::net::SocketAddr,
}

#[derive(Debug, clap::Args)]
pub struct MsemuArgs {
    /// Also serve https here, with a generated self-signed certificate.
    #[arg(long)]
    pub https_listen: Option<std::net::SocketAddr>,
    /// Seed file (JSON) with tenants, apps, users and mailboxes [default: the demo seed].
    #[arg(long)]
    pub state: Option<std::path::PathBuf>,
    /// An authorize request with the `login_hint` of a seeded user redirects at once with a code.
    #[arg(long)]
    pub auto_consent: bool,
    /// Access-token lifetime in seconds.
    #[arg(long, default_value_t = 75 * 60)]
    pub access_token_lifetime: u64,
    /// Where to write the CA certificate of the https listener (PEM).
    #[arg(long)]
    pub ca_pem: Option<std::path::PathBuf>,
}
