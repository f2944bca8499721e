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
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new master key and re-seal every secret with it.
    Rotate,
}
