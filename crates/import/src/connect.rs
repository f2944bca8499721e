//! From an importer's settings to what a run works with: its mailbox (Graph
//! with tokens from [`auth::AccessTokens`]) and its sink (the spool under
//! the data directory, or a webhook).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth::{AccessTokens, AuthError};
use domain::clock::Clock;
use domain::importer::Protocol;
use domain::mailbox::{MailboxError, MailboxErrorKind};
use domain::sink::SinkSettings;
use microsoft::graph::{AccessTokenSource, GraphConfig, GraphMailbox, TokenFuture};
use secrecy::{ExposeSecret, SecretString};
use sinks::{FilesystemSpool, Sink, SinkError, WebhookConfig, WebhookSink};
use store::Store;
use store::importers::ImporterRecord;

/// Why an importer cannot be worked with at all.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "IMAP import is not available yet in this build; the importer was skipped and its mail left as it is"
    )]
    ImapNotAvailable,
    #[error("the importer's sink cannot be used: {0}")]
    Sink(SinkError),
}

/// A Graph mailbox for a Graph importer. Tokens are asked for lazily, on
/// the first request, so a run that stops early asks for none.
pub fn graph_mailbox(
    http: reqwest::Client,
    tokens: AccessTokens,
    store: Store,
    clock: Arc<dyn Clock>,
    record: &ImporterRecord,
) -> Result<GraphMailbox, ConnectError> {
    let Some(mut config) = GraphConfig::for_importer(&record.settings) else {
        return Err(ConnectError::ImapNotAvailable);
    };
    config.clock = clock.clone();
    let source = ImporterTokens {
        tokens,
        store,
        clock,
        record: record.clone(),
        last: Mutex::new(None),
    };
    Ok(GraphMailbox::new(http, config, Arc::new(source)))
}

/// The sink `settings` names; the spool lives under `data_dir/documents`.
pub fn sink_for(settings: &SinkSettings, data_dir: &Path) -> Result<Sink, ConnectError> {
    match settings {
        SinkSettings::Spool => Ok(Sink::Filesystem(FilesystemSpool::new(data_dir))),
        SinkSettings::Webhook {
            url,
            timeout_secs,
            attempts,
        } => {
            let url = url::Url::parse(url).map_err(|e| {
                ConnectError::Sink(SinkError::unstorable(format!(
                    "the webhook URL `{url}` is not valid ({e}): correct sink.url on the importer"
                )))
            })?;
            let mut config = WebhookConfig::new(url);
            config.timeout = Duration::from_secs(*timeout_secs);
            config.attempts = *attempts;
            WebhookSink::new(config)
                .map(Sink::Webhook)
                .map_err(ConnectError::Sink)
        }
    }
}

/// Tokens for one importer's Graph requests, from the shared provider.
struct ImporterTokens {
    tokens: AccessTokens,
    store: Store,
    clock: Arc<dyn Clock>,
    record: ImporterRecord,
    /// The token handed out last: Graph refusing it and the provider handing
    /// out the same one again means refreshing cannot help.
    last: Mutex<Option<SecretString>>,
}

impl AccessTokenSource for ImporterTokens {
    fn access_token(&self, refresh: bool) -> TokenFuture<'_> {
        Box::pin(async move {
            let token = self
                .tokens
                .for_importer(&self.store, self.clock.as_ref(), &self.record)
                .await
                .map_err(|e| mailbox_error(&self.record, e))?;
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            let same_as_refused = last
                .as_ref()
                .is_some_and(|l| l.expose_secret() == token.expose_secret());
            if refresh && same_as_refused {
                return Err(MailboxError::new(
                    MailboxErrorKind::Token,
                    format!(
                        "Microsoft refused the access token of importer {} and no newer one can be obtained yet",
                        self.record.id
                    ),
                    match self.record.settings.protocol {
                        Protocol::GraphClientCredentials => {
                            "check the app registration's application permission Mail.ReadWrite (with admin consent) and the mailbox setting"
                        }
                        _ => "press Authenticate on the importer page to authorize it again",
                    },
                ));
            }
            *last = Some(token.clone());
            Ok(token)
        })
    }
}

fn mailbox_error(record: &ImporterRecord, e: AuthError) -> MailboxError {
    let (kind, fix) = match &e {
        AuthError::Unavailable { .. } | AuthError::Store(_) => (
            MailboxErrorKind::Transient,
            "nothing to do: the next run tries again",
        ),
        AuthError::Identity { source, .. } if source.is_transient() => (
            MailboxErrorKind::Transient,
            "nothing to do: the next run tries again",
        ),
        AuthError::Identity { .. } => (
            MailboxErrorKind::Token,
            match record.settings.protocol {
                Protocol::GraphClientCredentials => {
                    "check the client id, tenant and client secret of the importer against the Azure app registration"
                }
                _ => "press Authenticate on the importer page to authorize it again",
            },
        ),
        // Their messages already say what to do.
        AuthError::NotGraph(_)
        | AuthError::NotAuthorized(_)
        | AuthError::ReauthRequired { .. }
        | AuthError::NoSecret(_) => (MailboxErrorKind::Token, "then run the import again"),
    };
    MailboxError::new(kind, e.to_string(), fix)
}
