//! Graph mail: a [`GraphMailbox`] implements [`domain::mailbox::Mailbox`] over
//! Microsoft Graph v1.0 (`/me` or `/users/{mailbox}`), with immutable ids on
//! every request, `@odata.nextLink` paging followed verbatim, at most four
//! requests in flight per mailbox in this process, `Retry-After` honoured and
//! bounded retries with backoff ([`transport`]).

mod error;
mod folders;
mod gate;
mod messages;
mod permissions;
mod retry;
pub mod subscriptions;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use domain::clock::{Clock, SystemClock};
use domain::mailbox::{
    AccessTokenSource, FolderTree, LocateHint, Mailbox, MailboxError, MessageLocation, MessagePage,
    PageCursor,
};

pub use error::GraphErrorBody;
pub use messages::page_from_json;
pub use permissions::{TokenPermissions, token_permissions};
pub use retry::{RetryPolicy, parse_retry_after};

pub use transport::GraphStats;

use self::transport::Transport;

/// Whose identity the access token carries; it decides which permission an
/// `ErrorAccessDenied` is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// A user's token (authorization code flow): scopes like `Mail.ReadWrite`.
    Delegated,
    /// The application's own token (client credentials): app roles.
    AppOnly,
}

/// Timeouts per request kind. MIME downloads of tens of megabytes take long.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// Folder and message listings, moves.
    pub json: Duration,
    /// `$value` downloads.
    pub mime: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(15),
            json: Duration::from_secs(60),
            mime: Duration::from_secs(600),
        }
    }
}

/// Everything a [`GraphMailbox`] needs besides its token source.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// The Graph host without `/v1.0`, e.g. `https://graph.microsoft.com`.
    pub graph_base: String,
    /// The app's client id: Outlook counts concurrency per app and mailbox.
    pub client_id: String,
    /// `None`: the signed-in user's own mailbox (`/me`); else a UPN or id
    /// addressed as `/users/{mailbox}` (shared mailboxes, app-only access).
    pub mailbox: Option<String>,
    /// For `/me`: the signed-in account, if known, so two importers of the
    /// same account share one concurrency limit.
    pub account: Option<String>,
    pub auth: AuthMode,
    pub retry: RetryPolicy,
    pub timeouts: Timeouts,
    /// `$top` for message listings (Graph allows 1–1000).
    pub message_page_size: u32,
    /// `$top` for folder listings; `None` leaves Graph's default of 10.
    pub folder_page_size: Option<u32>,
    /// A message larger than this is refused rather than read into memory
    /// (Exchange Online's own limit is 150 MB).
    pub max_mime_bytes: usize,
    /// Requests in flight at once per mailbox (Outlook allows 4).
    pub max_concurrency: usize,
    pub clock: Arc<dyn Clock>,
    /// Cancelled when mailferry shuts down: a wait for `Retry-After` (up
    /// to minutes) ends at once, and the request fails as transient.
    pub stop: tokio_util::sync::CancellationToken,
}

impl GraphConfig {
    /// The configuration for an importer's mailbox; `None` for IMAP importers.
    pub fn for_importer(settings: &domain::importer::ImporterSettings) -> Option<Self> {
        let graph = settings.graph()?;
        let auth = match settings.protocol {
            domain::importer::Protocol::GraphClientCredentials => AuthMode::AppOnly,
            _ => AuthMode::Delegated,
        };
        Some(Self::new(
            &graph.app.endpoints.graph,
            &graph.app.client_id,
            graph.mailbox.clone(),
            auth,
        ))
    }

    pub fn new(graph_base: &str, client_id: &str, mailbox: Option<String>, auth: AuthMode) -> Self {
        Self {
            graph_base: graph_base.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            mailbox: mailbox.filter(|m| !m.trim().is_empty()),
            account: None,
            auth,
            retry: RetryPolicy::default(),
            timeouts: Timeouts::default(),
            message_page_size: 250,
            folder_page_size: Some(100),
            max_mime_bytes: 160 * 1024 * 1024,
            max_concurrency: 4,
            clock: Arc::new(SystemClock),
            stop: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// How errors and logs name the mailbox.
    pub fn mailbox_label(&self) -> String {
        match (&self.mailbox, &self.account) {
            (Some(m), _) => m.clone(),
            (None, Some(a)) => format!("{a} (own mailbox)"),
            (None, None) => "the signed-in user's own mailbox".to_owned(),
        }
    }
}

/// A mailbox reached through Microsoft Graph.
#[derive(Clone)]
pub struct GraphMailbox {
    transport: Arc<Transport>,
}

impl std::fmt::Debug for GraphMailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphMailbox")
            .field("mailbox", &self.transport.config.mailbox_label())
            .finish_non_exhaustive()
    }
}

/// A reqwest client suited to Graph: pure-Rust TLS, connect timeout, no
/// redirects followed (Graph does not redirect mail requests; a redirect
/// would be a misconfigured endpoint).
pub fn http_client(timeouts: &Timeouts) -> Result<reqwest::Client, reqwest::Error> {
    let _ = rustls_provider_installed();
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// reqwest is built without a default crypto provider; installing ring twice
/// only fails, which is fine.
fn rustls_provider_installed() -> bool {
    rustls::crypto::ring::default_provider()
        .install_default()
        .is_ok()
}

impl GraphMailbox {
    pub fn new(
        http: reqwest::Client,
        config: GraphConfig,
        tokens: Arc<dyn AccessTokenSource>,
    ) -> Self {
        Self {
            transport: Arc::new(Transport::new(http, config, tokens)),
        }
    }

    pub fn config(&self) -> &GraphConfig {
        &self.transport.config
    }

    /// Requests, retries and waits so far (for tests, metrics and logs).
    pub fn stats(&self) -> &GraphStats {
        &self.transport.stats
    }

    /// How much longer Microsoft's last `Retry-After` for this mailbox
    /// holds requests back; `None` when it does not.
    pub fn throttled_for(&self) -> Option<std::time::Duration> {
        self.transport.throttled_for()
    }

    /// Checks that the mailbox answers and its folders may be read: one
    /// small request.
    pub async fn probe(&self) -> Result<(), MailboxError> {
        let url = format!(
            "{}/mailFolders?$top=1&$select=id",
            self.transport.mailbox_url()
        );
        self.transport.get_json(&url).await.map(|_| ())
    }
}

impl Mailbox for GraphMailbox {
    async fn folder_tree(&self, include_hidden: bool) -> Result<FolderTree, MailboxError> {
        folders::folder_tree(&self.transport, include_hidden).await
    }

    async fn list_messages(
        &self,
        folder_id: &str,
        cursor: Option<&PageCursor>,
    ) -> Result<MessagePage, MailboxError> {
        messages::list(&self.transport, folder_id, cursor).await
    }

    async fn fetch_mime(&self, message_id: &str) -> Result<Vec<u8>, MailboxError> {
        messages::mime(&self.transport, message_id).await
    }

    async fn move_message(
        &self,
        message_id: &str,
        destination_folder_id: &str,
    ) -> Result<String, MailboxError> {
        messages::move_to(&self.transport, message_id, destination_folder_id).await
    }

    async fn mark_error_reason(
        &self,
        message_id: &str,
        reason_code: Option<&str>,
    ) -> Result<(), MailboxError> {
        messages::mark_error_reason(&self.transport, message_id, reason_code).await
    }

    /// Immutable ids survive moves: the hint is not needed.
    async fn locate_message(
        &self,
        message_id: &str,
        _hint: &LocateHint<'_>,
    ) -> Result<MessageLocation, MailboxError> {
        messages::locate(&self.transport, message_id).await
    }
}
