//! Where the Graph client gets its access tokens: a small trait, so the
//! identity/auth code can refresh on demand without the client knowing how.

use std::future::Future;
use std::pin::Pin;

use domain::mailbox::MailboxError;
use secrecy::SecretString;

pub type TokenFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SecretString, MailboxError>> + Send + 'a>>;

/// Supplies access tokens for Graph. `refresh` is true after Graph refused
/// the previous token (`InvalidAuthenticationToken`): return a new one, or a
/// [`domain::mailbox::MailboxErrorKind::Token`] error saying what to do.
pub trait AccessTokenSource: Send + Sync {
    fn access_token(&self, refresh: bool) -> TokenFuture<'_>;
}

/// A fixed token (tests, one-off tools). It cannot be refreshed.
pub struct StaticToken(pub SecretString);

impl AccessTokenSource for StaticToken {
    fn access_token(&self, refresh: bool) -> TokenFuture<'_> {
        Box::pin(async move {
            if refresh {
                Err(MailboxError::new(
                    domain::mailbox::MailboxErrorKind::Token,
                    "Microsoft refused the access token and this token cannot be refreshed",
                    "obtain a new access token (authorize the importer again)",
                ))
            } else {
                Ok(self.0.clone())
            }
        })
    }
}
