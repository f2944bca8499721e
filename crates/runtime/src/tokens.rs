//! Access tokens for one importer's Graph requests, from the shared
//! provider ([`grants::AccessTokens`]): a delegated grant refreshed on demand,
//! an app-only token cached.

use std::sync::{Arc, Mutex};

use domain::clock::Clock;
use domain::importer::Protocol;
use domain::mailbox::{AccessTokenSource, TokenFuture};
use domain::mailbox::{MailboxError, MailboxErrorKind};
use grants::{AccessTokens, ON_DEMAND_MARGIN, TokenError};
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use store::Store;
use store::importers::ImporterRecord;

/// Tokens for one importer's Graph requests, from the shared provider.
pub(crate) struct ImporterTokens {
    pub(crate) tokens: AccessTokens,
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) record: ImporterRecord,
    /// The token handed out last: Graph refusing it and the provider handing
    /// out the same one again means refreshing cannot help.
    pub(crate) last: Mutex<Option<SecretString>>,
    /// The token in use and its expiry: reused for every request of the
    /// run until shortly before it expires, without asking the provider
    /// (a database read, for a delegated grant) each time.
    pub(crate) held: Mutex<Option<(SecretString, Timestamp)>>,
}

impl AccessTokenSource for ImporterTokens {
    fn access_token(&self, refresh: bool) -> TokenFuture<'_> {
        Box::pin(async move {
            if !refresh
                && let Some((token, expires_at)) =
                    self.held.lock().unwrap_or_else(|p| p.into_inner()).clone()
                && self.clock.now().duration_until(expires_at) > ON_DEMAND_MARGIN
            {
                return Ok(token);
            }
            let (token, expires_at) = self
                .tokens
                .for_importer_with_expiry(&self.store, self.clock.as_ref(), &self.record)
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
            *self.held.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((token.clone(), expires_at));
            Ok(token)
        })
    }
}

fn mailbox_error(record: &ImporterRecord, e: TokenError) -> MailboxError {
    let kind = if e.is_transient() {
        MailboxErrorKind::Transient
    } else {
        MailboxErrorKind::Token
    };
    // A background request never signs in, so no redirect URI is involved.
    let fix = e.fix(record, "");
    MailboxError::new(kind, e.to_string(), fix)
}
