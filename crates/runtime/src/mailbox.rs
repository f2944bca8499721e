//! An importer's mailbox: the one place that decides which adapter an
//! importer gets. Every caller (import, dry run, reprocessing, connection
//! test, folder picker) goes through [`Connector::mailbox`].

use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

use domain::importer::{ImapLogin, ImapSecurity, Protocol};
use domain::mailbox::{
    FolderTree, LocateHint, Mailbox, MailboxError, MessageLocation, MessagePage, PageCursor,
    StaticToken,
};
use imap::{Credential, ImapConfig, ImapMailbox, Security};
use microsoft::graph::{GraphConfig, GraphMailbox};
use secrecy::SecretString;
use sinks::SinkError;
use store::importers::ImporterRecord;

use crate::Connector;
use crate::tokens::ImporterTokens;

/// Why an importer cannot be worked with at all.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the importer has no password: enter the IMAP password and save")]
    NoPassword,
    #[error(
        "the importer's settings are inconsistent ({0}): open the importer, check its fields and save it again"
    )]
    Settings(String),
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
    /// Boxed: it holds its connection's state inline.
    Imap(Box<ImapMailbox>),
}

impl ImporterMailbox {
    /// Until when Microsoft asked to leave the mailbox alone (a Graph
    /// `Retry-After` longer than a run waits), and what it answered; IMAP
    /// servers tell no such thing.
    pub fn throttled_until(&self) -> Option<(jiff::Timestamp, String)> {
        self.as_graph().and_then(|g| g.stats().throttled_until())
    }

    /// The Graph adapter, for what only Graph has (its configuration and
    /// request statistics in the connection test).
    pub fn as_graph(&self) -> Option<&GraphMailbox> {
        match self {
            Self::Graph(g) => Some(g),
            Self::Imap(_) => None,
        }
    }

    /// The IMAP adapter, for what only IMAP has (its capabilities).
    pub fn as_imap(&self) -> Option<&ImapMailbox> {
        match self {
            Self::Imap(i) => Some(i),
            Self::Graph(_) => None,
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
        self.mailbox_until(record, patience, CancellationToken::new())
            .await
    }

    /// [`Connector::mailbox`] for a run that `stop` ends: a Graph wait for
    /// `Retry-After` ends when it is cancelled.
    pub async fn mailbox_until(
        &self,
        record: &ImporterRecord,
        patience: Patience,
        stop: CancellationToken,
    ) -> Result<ImporterMailbox, ConnectError> {
        match record.settings.protocol {
            Protocol::Imap => self.imap_mailbox(record, patience).await,
            Protocol::GraphDelegated | Protocol::GraphClientCredentials => {
                let Some(mut config) = GraphConfig::for_importer(&record.settings) else {
                    return Err(ConnectError::Settings(
                        "a Microsoft Graph importer without Graph settings".to_owned(),
                    ));
                };
                config.clock = self.clock.clone();
                config.stop = stop;
                // Names the own mailbox in messages, and gives each account
                // its own request gate.
                if record.settings.protocol == Protocol::GraphDelegated {
                    config.account = self.store.grant(&record.id).await?.and_then(|g| g.account);
                }
                if patience == Patience::Interactive {
                    config.retry.max_attempts = 3;
                    config.retry.max_retry_after = std::time::Duration::from_secs(10);
                }
                Ok(ImporterMailbox::Graph(GraphMailbox::new(
                    self.http.clone(),
                    config,
                    self.importer_tokens(record),
                )))
            }
        }
    }
}

impl Connector {
    async fn imap_mailbox(
        &self,
        record: &ImporterRecord,
        patience: Patience,
    ) -> Result<ImporterMailbox, ConnectError> {
        let Some(settings) = record.settings.imap() else {
            return Err(ConnectError::Settings(
                "an IMAP importer without IMAP settings".to_owned(),
            ));
        };
        let credential = match settings.auth {
            ImapLogin::Password => Credential::Password(
                self.store
                    .importer_secret(&record.client_id, &record.id)
                    .await?
                    .ok_or(ConnectError::NoPassword)?,
            ),
            ImapLogin::Xoauth2(_) => Credential::XOAuth2(self.importer_tokens(record)),
        };
        Ok(ImporterMailbox::Imap(Box::new(imap_mailbox(
            settings, credential, patience,
        ))))
    }

    /// Logs in to an XOAUTH2 importer's IMAP server with `token`, a token
    /// just obtained at sign-in and not stored yet: whether the account
    /// that signed in may open the mailbox.
    pub async fn check_imap_login(
        &self,
        record: &ImporterRecord,
        token: SecretString,
    ) -> Result<(), CheckLoginError> {
        let Some(settings) = record.settings.imap() else {
            return Err(CheckLoginError::NotImap);
        };
        let credential = Credential::XOAuth2(Arc::new(StaticToken(token)));
        imap_mailbox(settings, credential, Patience::Interactive)
            .capabilities()
            .await?;
        Ok(())
    }
}

/// Why [`Connector::check_imap_login`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckLoginError {
    #[error("the importer is not an IMAP importer")]
    NotImap,
    #[error(transparent)]
    Mailbox(#[from] MailboxError),
}

fn imap_mailbox(
    settings: &domain::importer::ImapSettings,
    credential: Credential,
    patience: Patience,
) -> ImapMailbox {
    let security = match settings.security {
        ImapSecurity::Tls => Security::Tls,
        ImapSecurity::Starttls => Security::StartTls,
        ImapSecurity::None => Security::None,
    };
    let mut config = ImapConfig::new(
        settings.host.clone(),
        settings.port,
        security,
        settings.username.clone(),
    );
    config.tls_ca_pem = settings.tls_ca_pem.clone();
    if patience == Patience::Interactive {
        config.connect_timeout = std::time::Duration::from_secs(10);
        config.command_timeout = std::time::Duration::from_secs(20);
    }
    ImapMailbox::new(config, credential)
}

impl Connector {
    /// The access tokens of `record`'s grant (or app-only tokens), for its
    /// resource alone: Graph's for Graph, Exchange Online's for IMAP.
    fn importer_tokens(&self, record: &ImporterRecord) -> Arc<ImporterTokens> {
        Arc::new(ImporterTokens {
            tokens: self.tokens.clone(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            record: record.clone(),
            last: Mutex::new(None),
            held: Mutex::new(None),
        })
    }
}

/// Both adapters behind one type: each call goes to the importer's.
macro_rules! delegate {
    ($self:ident, $m:ident => $call:expr) => {
        match $self {
            ImporterMailbox::Graph($m) => $call.await,
            ImporterMailbox::Imap($m) => $call.await,
        }
    };
}

impl Mailbox for ImporterMailbox {
    async fn folder_tree(&self, include_hidden: bool) -> Result<FolderTree, MailboxError> {
        delegate!(self, m => m.folder_tree(include_hidden))
    }

    async fn list_messages(
        &self,
        folder_id: &str,
        cursor: Option<&PageCursor>,
    ) -> Result<MessagePage, MailboxError> {
        delegate!(self, m => m.list_messages(folder_id, cursor))
    }

    fn cursor_survives_moves(&self) -> bool {
        match self {
            ImporterMailbox::Graph(m) => m.cursor_survives_moves(),
            ImporterMailbox::Imap(m) => m.cursor_survives_moves(),
        }
    }

    async fn fetch_mime(&self, message_id: &str) -> Result<Vec<u8>, MailboxError> {
        delegate!(self, m => m.fetch_mime(message_id))
    }

    async fn move_message(
        &self,
        message_id: &str,
        destination_folder_id: &str,
    ) -> Result<String, MailboxError> {
        delegate!(self, m => m.move_message(message_id, destination_folder_id))
    }

    async fn mark_error_reason(
        &self,
        message_id: &str,
        reason_code: Option<&str>,
    ) -> Result<(), MailboxError> {
        delegate!(self, m => m.mark_error_reason(message_id, reason_code))
    }

    async fn locate_message(
        &self,
        message_id: &str,
        hint: &LocateHint<'_>,
    ) -> Result<MessageLocation, MailboxError> {
        delegate!(self, m => m.locate_message(message_id, hint))
    }
}
