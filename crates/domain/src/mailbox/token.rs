//! Where a mailbox adapter gets its access tokens (Graph requests, IMAP's
//! XOAUTH2 login): a small trait, so the grants code can refresh on demand
//! without the adapters knowing how.

use std::future::Future;
use std::pin::Pin;

use super::MailboxError;
use secrecy::SecretString;

pub type TokenFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SecretString, MailboxError>> + Send + 'a>>;

/// Supplies access tokens for one resource. `refresh` is true after the
/// server refused the previous token (Graph's `InvalidAuthenticationToken`):
/// return a new one, or a [`super::MailboxErrorKind::Token`] error saying
/// what to do.
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
                    super::MailboxErrorKind::Token,
                    "Microsoft refused the access token and this token cannot be refreshed",
                    "obtain a new access token (authorize the importer again)",
                ))
            } else {
                Ok(self.0.clone())
            }
        })
    }
}
