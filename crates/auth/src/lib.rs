//! Keeps Microsoft grants fresh.
//!
//! - [`refresh`]: refreshing one delegated grant safely (claim, retry with
//!   backoff, compare-and-set persist of the rotated refresh token *before*
//!   the new access token is handed out, `reauth_required` with Microsoft's
//!   reason on a definite refusal).
//! - [`AccessTokens`]: what Graph calls ask for a token; refreshes on demand
//!   and caches client-credentials tokens until shortly before expiry.
//! - [`RefreshTokens`]: the `refresh-tokens` script.
//!
//! Every instant comes from a [`domain::clock::Clock`] and is compared in
//! UTC: the server's time zone cannot move a refresh.

pub mod refresh;
pub mod script;
pub mod tokens;

pub use refresh::{RefreshOutcome, RefreshPolicy, refresh_grant};
pub use script::RefreshTokens;
pub use tokens::AccessTokens;

use microsoft::identity::IdentityError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("importer {0} is not a Microsoft Graph importer")]
    NotGraph(String),
    #[error("importer {0} is not authorized yet: press Authenticate on the importer page")]
    NotAuthorized(String),
    #[error("importer {importer} must be authorized again: {reason}")]
    ReauthRequired { importer: String, reason: String },
    #[error(
        "importer {0} has no client secret: enter the client secret from the Azure app registration and save"
    )]
    NoSecret(String),
    #[error("Microsoft did not issue a token for importer {importer}: {source}")]
    Identity {
        importer: String,
        #[source]
        source: IdentityError,
    },
    #[error("Microsoft is unreachable or busy for importer {importer}: {reason}")]
    Unavailable { importer: String, reason: String },
    #[error(transparent)]
    Store(#[from] store::StoreError),
}
