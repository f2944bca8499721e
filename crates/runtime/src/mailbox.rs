//! An importer's mailbox: the one place that decides which adapter an
//! importer gets. Every caller (import, dry run, reprocessing, connection
//! test, folder picker) goes through [`Connector::mailbox`].

use std::sync::{Arc, Mutex};

use domain::importer::Protocol;
use domain::mailbox::{
    FolderTree, Mailbox, MailboxError, MessageLocation, MessagePage, PageCursor,
};
use microsoft::graph::{GraphConfig, GraphMailbox};
use sinks::SinkError;
use store::importers::ImporterRecord;

use crate::Connector;
use crate::tokens::ImporterTokens;

/// Why an importer cannot be worked with at all.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "IMAP import is not available yet in this build; the importer was skipped and its mail left as it is"
    )]
    ImapNotAvailable,
    #[error("the importer's sink cannot be used: {0}")]
    Sink(SinkError),
    #[error("the HTTP client could not be built: {0}; check the system's TLS configuration")]
    Http(String),
    #[error("{0}")]
    Store(#[from] store::StoreError),
}

/// The mailbox of an importer, whatever its protocol.
#[derive(Debug)]
pub enum ImporterMailbox {
    Graph(GraphMailbox),
}

impl ImporterMailbox {
    /// The Graph adapter, for what only Graph has (its configuration and
    /// request statistics in the connection test).
    pub fn as_graph(&self) -> Option<&GraphMailbox> {
        match self {
            Self::Graph(g) => Some(g),
        }
    }
}

/// How a request made by an admin waiting in the UI is retried: within
/// seconds, not the minutes a background run may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// A scheduled or manual run.
    Background,
    /// The connection test, the folder picker, reprocessing.
    Interactive,
}

impl Connector {
    /// The mailbox of `record`. Tokens are asked for lazily, on the first
    /// request, so a run that stops early asks for none.
    pub async fn mailbox(
        &self,
        record: &ImporterRecord,
        patience: Patience,
    ) -> Result<ImporterMailbox, ConnectError> {
        match record.settings.protocol {
            Protocol::Imap => Err(ConnectError::ImapNotAvailable),
            Protocol::GraphDelegated | Protocol::GraphClientCredentials => {
                let Some(mut config) = GraphConfig::for_importer(&record.settings) else {
                    return Err(ConnectError::ImapNotAvailable);
                };
                config.clock = self.clock.clone();
                // Names the own mailbox in messages, and gives each account
                // its own request gate.
                if record.settings.protocol == Protocol::GraphDelegated {
                    config.account = self.store.grant(&record.id).await?.and_then(|g| g.account);
                }
                if patience == Patience::Interactive {
                    config.retry.max_attempts = 3;
                    config.retry.max_retry_after = std::time::Duration::from_secs(10);
                }
                let source = ImporterTokens {
                    tokens: self.tokens.clone(),
                    store: self.store.clone(),
                    clock: self.clock.clone(),
                    record: record.clone(),
                    last: Mutex::new(None),
                };
                Ok(ImporterMailbox::Graph(GraphMailbox::new(
                    self.http.clone(),
                    config,
                    Arc::new(source),
                )))
            }
        }
    }
}

impl Mailbox for ImporterMailbox {
    async fn folder_tree(&self, include_hidden: bool) -> Result<FolderTree, MailboxError> {
        match self {
            Self::Graph(g) => g.folder_tree(include_hidden).await,
        }
    }

    async fn list_messages(
        &self,
        folder_id: &str,
        cursor: Option<&PageCursor>,
    ) -> Result<MessagePage, MailboxError> {
        match self {
            Self::Graph(g) => g.list_messages(folder_id, cursor).await,
        }
    }

    async fn fetch_mime(&self, message_id: &str) -> Result<Vec<u8>, MailboxError> {
        match self {
            Self::Graph(g) => g.fetch_mime(message_id).await,
        }
    }

    async fn move_message(
        &self,
        message_id: &str,
        destination_folder_id: &str,
    ) -> Result<String, MailboxError> {
        match self {
            Self::Graph(g) => g.move_message(message_id, destination_folder_id).await,
        }
    }

    async fn mark_error_reason(
        &self,
        message_id: &str,
        reason_code: Option<&str>,
    ) -> Result<(), MailboxError> {
        match self {
            Self::Graph(g) => g.mark_error_reason(message_id, reason_code).await,
        }
    }

    async fn locate_message(&self, message_id: &str) -> Result<MessageLocation, MailboxError> {
        match self {
            Self::Graph(g) => g.locate_message(message_id).await,
        }
    }
}
