//! The wiring above the pipeline, in one place: which mailbox, token
//! provider and sink an importer gets ([`Connector`]), and the scripts that
//! work importers with them (`import-emails`, `purge-documents`). The
//! import run, the dry run, reprocessing, the connection test and the
//! folder picker all get their mailbox from [`Connector::mailbox`], so a
//! new protocol is one more [`ImporterMailbox`] variant.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use domain::clock::Clock;
use grants::AccessTokens;
use store::Store;

pub mod alert_delivery;
pub mod alerts;
pub mod health;
pub mod idle;
pub mod import_emails;
pub mod mailbox;
pub mod purge_documents;
pub mod push;
pub mod sink;
mod tokens;

pub use import_emails::ImportEmails;
pub use mailbox::{CheckLoginError, ConnectError, ImporterMailbox};
pub use purge_documents::PurgeDocuments;

/// What connecting an importer to its mailbox and sink needs; one per
/// process, shared by the scripts and the web layer, so app-only tokens
/// are cached once.
#[derive(Clone)]
pub struct Connector {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub tokens: AccessTokens,
    /// For Graph requests.
    pub http: reqwest::Client,
    /// The spool lives under `data_dir/documents`.
    pub data_dir: PathBuf,
    /// Importers worked at once by this instance, over all clients and runs.
    pub import_slots: Arc<tokio::sync::Semaphore>,
    /// Where Graph posts change notifications; `None`: no push, polling only.
    pub notifications: Option<push::NotificationUrls>,
}

/// The default budget of importers worked at once: importing mostly waits
/// on the network, so a few per core.
pub fn default_import_concurrency() -> usize {
    std::thread::available_parallelism()
        .map_or(4, |n| n.get() * 4)
        .clamp(4, 64)
}

impl Connector {
    /// A connector with its own HTTP clients and token provider.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        data_dir: impl Into<PathBuf>,
    ) -> Result<Self, ConnectError> {
        let http = microsoft::graph::http_client(&Default::default())
            .map_err(|e| ConnectError::Http(e.to_string()))?;
        let identity =
            microsoft::entra::HttpClient::new().map_err(|e| ConnectError::Http(e.to_string()))?;
        Ok(Self {
            store,
            clock,
            tokens: AccessTokens::new(identity),
            http,
            data_dir: data_dir.into(),
            import_slots: Arc::new(tokio::sync::Semaphore::new(default_import_concurrency())),
            notifications: None,
        })
    }

    /// Keeps Graph importers subscribed to change notifications posted to
    /// `urls` (see [`push`]).
    pub fn with_notifications(mut self, urls: Option<push::NotificationUrls>) -> Self {
        self.notifications = urls;
        self
    }

    /// Works at most `n` importers at once (at least one).
    pub fn with_import_concurrency(mut self, n: usize) -> Self {
        self.import_slots = Arc::new(tokio::sync::Semaphore::new(n.max(1)));
        self
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}
