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

pub use refresh::{RefreshContext, RefreshOutcome, RefreshPolicy, refresh_grant};
pub use script::RefreshTokens;
pub use tokens::{AccessTokens, ON_DEMAND_MARGIN};

use microsoft::entra::IdentityError;
use store::importers::ImporterRecord;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("importer {0} does not sign in at Microsoft")]
    NoEntraApp(String),
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

impl TokenError {
    /// Waiting helps: Microsoft or the database is busy, and the next run
    /// (or a retry in a minute) gets a token.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable { .. } | Self::Store(_) => true,
            Self::Identity { source, .. } => source.is_transient(),
            Self::NoEntraApp(_)
            | Self::NotAuthorized(_)
            | Self::ReauthRequired { .. }
            | Self::NoSecret(_) => false,
        }
    }

    /// What the admin should do about `self` for the importer `record`, in
    /// plain words. `redirect_uri` is the URI registered for the importer's
    /// sign-in; only a sign-in can fail over it, never a refresh or an
    /// app-only token, so callers outside a sign-in may pass `""`.
    pub fn fix(&self, record: &ImporterRecord, redirect_uri: &str) -> String {
        match self {
            Self::NoEntraApp(_) => {
                "nothing to do: IMAP importers with a password need no Microsoft token".to_owned()
            }
            Self::NotAuthorized(_) => {
                "press Authenticate and sign in with the mailbox account".to_owned()
            }
            Self::ReauthRequired { .. } => "press Authenticate to authorize again".to_owned(),
            Self::NoSecret(_) => {
                "enter the client secret from the Azure app registration and save".to_owned()
            }
            Self::Identity { source, .. } => {
                let app = record.settings.entra_app();
                source.diagnosis().fix(&microsoft::entra::FixContext {
                    redirect_uri,
                    client_id: app.map_or("", |a| a.client_id.as_str()),
                    tenant: app.map_or("", |a| a.tenant_id.as_str()),
                    permissions: &[],
                    certificate: app.is_some_and(|a| a.certificate.is_some()),
                })
            }
            Self::Unavailable { .. } => "Microsoft is busy or unreachable: try again in a minute; scheduled imports retry on their own".to_owned(),
            Self::Store(_) => "check the server log; the database may be unavailable".to_owned(),
        }
    }
}
