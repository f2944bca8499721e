//! The access token a Graph call or an IMAP XOAUTH2 login needs, for every
//! kind of importer that signs in at Microsoft.
//!
//! Delegated: the stored token, refreshed on demand when it expires within
//! a few minutes (the `refresh-tokens` script normally got there first).
//! Client credentials: fetched on first use and cached in memory until
//! shortly before expiry; nothing to store, since a new one is one request away.

use std::collections::HashMap;
use std::sync::Arc;

use domain::clock::Clock;
use jiff::{SignedDuration, Timestamp};
use microsoft::entra::{HttpClient, IdentityClient};
use secrecy::SecretString;
use store::Store;
use store::importers::ImporterRecord;

use crate::TokenError;
use crate::refresh::{RefreshContext, RefreshOutcome, RefreshPolicy, refresh_grant};

/// A token is handed out only if it stays valid at least this long.
pub const ON_DEMAND_MARGIN: SignedDuration = SignedDuration::from_mins(5);

#[derive(Debug, Clone)]
struct Cached {
    token: SecretString,
    expires_at: Timestamp,
}

/// Hands out access tokens; share one per process (it holds the cache).
#[derive(Debug, Clone)]
pub struct AccessTokens {
    http: HttpClient,
    policy: RefreshPolicy,
    /// Keyed by importer id and its `updated_at`: a saved change (new secret,
    /// tenant, app) never reuses a token obtained under the old settings.
    /// Each entry has its own lock, held across the token request:
    /// concurrent callers for one importer wait for the one token instead
    /// of each fetching their own, and other importers do not wait at all.
    app_only: Arc<std::sync::Mutex<HashMap<(String, Timestamp), AppOnlySlot>>>,
}

type AppOnlySlot = Arc<tokio::sync::Mutex<Option<Cached>>>;

impl AccessTokens {
    pub fn new(http: HttpClient) -> Self {
        Self::with_policy(http, RefreshPolicy::default())
    }

    pub fn with_policy(http: HttpClient, policy: RefreshPolicy) -> Self {
        Self {
            http,
            policy,
            app_only: Arc::default(),
        }
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    pub async fn for_importer(
        &self,
        store: &Store,
        clock: &dyn Clock,
        record: &ImporterRecord,
    ) -> Result<SecretString, TokenError> {
        self.for_importer_with_expiry(store, clock, record)
            .await
            .map(|(token, _)| token)
    }

    /// [`AccessTokens::for_importer`], and until when the token is valid (a
    /// caller may reuse it until shortly before then without asking again).
    pub async fn for_importer_with_expiry(
        &self,
        store: &Store,
        clock: &dyn Clock,
        record: &ImporterRecord,
    ) -> Result<(SecretString, Timestamp), TokenError> {
        let app = record
            .settings
            .entra_app()
            .ok_or_else(|| TokenError::NoEntraApp(record.id.clone()))?;
        match record.settings.delegated_access() {
            None => {
                let key = (record.id.clone(), record.updated_at);
                let slot = {
                    let mut slots = self.app_only.lock().unwrap_or_else(|p| p.into_inner());
                    // A saved change makes the older settings' token unusable.
                    slots.retain(|(id, at), _| id != &record.id || *at == record.updated_at);
                    Arc::clone(slots.entry(key).or_default())
                };
                let mut cached = slot.lock().await;
                let now = clock.now();
                if let Some(c) = cached.as_ref()
                    && now.duration_until(c.expires_at) > ON_DEMAND_MARGIN
                {
                    return Ok((c.token.clone(), c.expires_at));
                }
                let secret = store
                    .importer_secret(&record.client_id, &record.id)
                    .await?
                    .ok_or_else(|| TokenError::NoSecret(record.id.clone()))?;
                let identity = IdentityClient::new(self.http.clone(), app, Some(secret));
                let tokens = identity.client_credentials(now).await.map_err(|source| {
                    TokenError::Identity {
                        importer: record.id.clone(),
                        source,
                    }
                })?;
                *cached = Some(Cached {
                    token: tokens.access_token.clone(),
                    expires_at: tokens.expires_at,
                });
                Ok((tokens.access_token, tokens.expires_at))
            }
            Some(_) => {
                let secret = store.importer_secret(&record.client_id, &record.id).await?;
                let identity = IdentityClient::new(self.http.clone(), app, secret);
                let owner = format!("on-demand:{}", uuid::Uuid::now_v7());
                let outcome = refresh_grant(
                    RefreshContext {
                        store,
                        identity: &identity,
                        settings: &record.settings,
                        importer_id: &record.id,
                        clock,
                        policy: &self.policy,
                        margin: ON_DEMAND_MARGIN,
                    },
                    &owner,
                )
                .await?;
                match outcome {
                    RefreshOutcome::NotAuthorized => {
                        return Err(TokenError::NotAuthorized(record.id.clone()));
                    }
                    RefreshOutcome::ReauthRequired { reason } => {
                        return Err(TokenError::ReauthRequired {
                            importer: record.id.clone(),
                            reason,
                        });
                    }
                    RefreshOutcome::Failed { reason } => {
                        return Err(TokenError::Unavailable {
                            importer: record.id.clone(),
                            reason,
                        });
                    }
                    _ => {}
                }
                // Whatever the outcome (ours, another run's, or not due), the
                // stored token is the newest one.
                let grant = store
                    .grant(&record.id)
                    .await?
                    .ok_or_else(|| TokenError::NotAuthorized(record.id.clone()))?;
                // A mailbox_denied grant still gets its token: the connection
                // test needs one to say what is wrong with the mailbox.
                let expires_at = grant
                    .access_token_expires_at
                    .filter(|e| grant.state.tokens_usable() && clock.now() < *e);
                match (grant.access_token, expires_at) {
                    (Some(token), Some(expires_at)) => Ok((token, expires_at)),
                    _ => Err(TokenError::ReauthRequired {
                        importer: record.id.clone(),
                        reason: grant
                            .last_error
                            .unwrap_or_else(|| "the access token could not be renewed; another refresh may be in progress, try again shortly".into()),
                    }),
                }
            }
        }
    }
}
