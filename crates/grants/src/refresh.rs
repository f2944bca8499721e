//! Refreshing one delegated grant.
//!
//! Overlapping runs (two scheduler instances, a job and an on-demand
//! refresh) are safe twice over: a short claim in the `leases` table keeps
//! a second run from spending the same refresh token, and the rotated
//! tokens are written with compare-and-set on the grant's `version`, so
//! even a run whose claim lapsed can never overwrite a newer token.
//! A run that gets refused right after someone else rotated the token
//! notices the newer version and does not declare the grant broken.

use std::time::Duration;

use domain::importer::{DelegatedAccess, ImporterSettings};
use jiff::{SignedDuration, Timestamp};
use microsoft::entra::{FixContext, IdentityClient, IdentityError, delegated_permissions};
use store::Store;
use store::grants::{Grant, RefreshedTokens};

/// When to refresh and how hard to try.
#[derive(Debug, Clone)]
pub struct RefreshPolicy {
    /// Refresh when the access token expires within this (default 15 min).
    pub margin: SignedDuration,
    /// Refresh when the refresh token has not been used for this long
    /// (default 7 days): Microsoft drops it after 90 idle days.
    pub max_idle: SignedDuration,
    /// Attempts per grant when Microsoft is unreachable or busy.
    pub attempts: u32,
    /// First pause between attempts; doubles each time.
    pub backoff: Duration,
    /// Longest pause, also for a `Retry-After` Microsoft asks for.
    pub max_backoff: Duration,
    /// How long a claim on a grant lasts (longer than one refresh with retries).
    pub claim_for: SignedDuration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            margin: SignedDuration::from_mins(15),
            max_idle: SignedDuration::from_hours(7 * 24),
            attempts: 4,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            claim_for: SignedDuration::from_mins(5),
        }
    }
}

/// Why a grant is due, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    NoAccessToken,
    AccessTokenExpiring,
    RefreshTokenIdle,
}

impl RefreshPolicy {
    /// Whether `grant` needs a refresh at `now`: pure UTC arithmetic on
    /// instants, nothing local.
    pub fn due(&self, grant: &Grant, now: Timestamp, margin: SignedDuration) -> Option<Due> {
        let Some(expires_at) = grant
            .access_token_expires_at
            .filter(|_| grant.access_token.is_some())
        else {
            return Some(Due::NoAccessToken);
        };
        if now.duration_until(expires_at) <= margin {
            return Some(Due::AccessTokenExpiring);
        }
        let last_use = grant
            .refresh_token_issued_at
            .or(grant.last_refresh_at)
            .unwrap_or(grant.updated_at);
        (last_use.duration_until(now) >= self.max_idle).then_some(Due::RefreshTokenIdle)
    }
}

/// What refreshing one grant came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Not due; the access token is valid until then.
    NotDue {
        expires_at: Option<Timestamp>,
    },
    Refreshed {
        expires_at: Timestamp,
    },
    /// Another run refreshed it meanwhile.
    RefreshedElsewhere {
        expires_at: Option<Timestamp>,
    },
    /// Another run holds the claim right now.
    Busy,
    /// No grant: nobody pressed Authenticate yet.
    NotAuthorized,
    /// Microsoft refused definitively; the grant is now (or already was) `reauth_required`.
    ReauthRequired {
        reason: String,
    },
    /// Microsoft stayed unreachable or busy; counted, tried again next run.
    Failed {
        reason: String,
    },
}

/// The context Microsoft errors are explained in.
pub(crate) fn fix_text(
    identity: &IdentityClient,
    settings: &ImporterSettings,
    e: &IdentityError,
) -> String {
    let permissions = delegated_permissions(access_of(settings));
    let fix = e.diagnosis().fix(&FixContext {
        redirect_uri: "the redirect URI shown on the importer page",
        client_id: identity.client_id(),
        tenant: identity.tenant(),
        permissions: &permissions,
        certificate: identity.uses_certificate(),
    });
    format!("{}. Fix: {fix}", e.reason())
}

/// What the grant being refreshed is for. Only importers someone signs in
/// for have a grant; settings changed to app-only since keep asking for
/// what the grant was made for.
fn access_of(settings: &ImporterSettings) -> DelegatedAccess {
    settings
        .delegated_access()
        .unwrap_or(DelegatedAccess::Graph {
            shared_mailbox: settings.graph().is_some_and(|g| g.mailbox.is_some()),
        })
}

/// What refreshing one delegated importer's grant works with.
#[derive(Clone, Copy)]
pub struct RefreshContext<'a> {
    pub store: &'a Store,
    pub identity: &'a IdentityClient,
    pub settings: &'a ImporterSettings,
    pub importer_id: &'a str,
    pub clock: &'a dyn domain::clock::Clock,
    pub policy: &'a RefreshPolicy,
    /// Refresh when the access token expires within this (the policy's
    /// margin for the script, a shorter one on demand).
    pub margin: SignedDuration,
}

/// Refreshes the grant of a delegated importer if `force` or the policy
/// says it is due (with `cx.margin`). `owner` names this run in the claim.
pub async fn refresh_grant(
    cx: RefreshContext<'_>,
    owner: &str,
) -> Result<RefreshOutcome, store::StoreError> {
    let RefreshContext {
        store,
        importer_id,
        clock,
        policy,
        margin,
        ..
    } = cx;
    let Some(grant) = store.grant(importer_id).await? else {
        return Ok(RefreshOutcome::NotAuthorized);
    };
    // A mailbox_denied grant is refreshed like an authorized one (its tokens
    // are fine) and stays mailbox_denied: see `store_refreshed_tokens`.
    if !grant.state.tokens_usable() {
        return Ok(RefreshOutcome::ReauthRequired {
            reason: grant
                .last_error
                .unwrap_or_else(|| "authorization required".into()),
        });
    }
    let now = clock.now();
    if policy.due(&grant, now, margin).is_none() {
        return Ok(RefreshOutcome::NotDue {
            expires_at: grant.access_token_expires_at,
        });
    }
    let until = now.saturating_add(policy.claim_for).unwrap_or(now);
    if !store
        .try_claim_refresh(importer_id, owner, now, until)
        .await?
    {
        return Ok(RefreshOutcome::Busy);
    }
    let outcome = refresh_claimed(cx, grant).await;
    // Released even after a failure; a crash leaves the claim to lapse.
    store.release_refresh_claim(importer_id, owner).await?;
    outcome
}

async fn refresh_claimed(
    cx: RefreshContext<'_>,
    seen: Grant,
) -> Result<RefreshOutcome, store::StoreError> {
    let RefreshContext {
        store,
        identity,
        settings,
        importer_id,
        clock,
        policy,
        margin,
    } = cx;
    // Re-read under the claim: the previous holder may just have finished.
    let Some(grant) = store.grant(importer_id).await? else {
        return Ok(RefreshOutcome::NotAuthorized);
    };
    if grant.version != seen.version && policy.due(&grant, clock.now(), margin).is_none() {
        return Ok(RefreshOutcome::RefreshedElsewhere {
            expires_at: grant.access_token_expires_at,
        });
    }
    let Some(refresh_token) = grant.refresh_token.clone() else {
        let reason = "the grant has no refresh token (offline_access was not granted). Fix: press Authenticate and sign in again".to_owned();
        store
            .mark_reauth_required(importer_id, grant.version, &reason, clock.now())
            .await?;
        return Ok(RefreshOutcome::ReauthRequired { reason });
    };
    let access = access_of(settings);
    let mut pause = policy.backoff;
    let mut attempt = 1;
    let result = loop {
        let requested_at = clock.now();
        match identity.refresh(&refresh_token, access, requested_at).await {
            Err(e) if e.is_transient() && attempt < policy.attempts => {
                let wait = e.retry_after().unwrap_or(pause).min(policy.max_backoff);
                tracing::warn!(importer = importer_id, attempt, error = %e.reason(), ?wait, "token refresh failed; retrying");
                tokio::time::sleep(wait).await;
                pause = (pause * 2).min(policy.max_backoff);
                attempt += 1;
            }
            other => break other,
        }
    };
    let now = clock.now();
    match result {
        Ok(tokens) => {
            // Persist first: once Microsoft rotated, the old refresh token
            // may be dead, and the new one exists only in this response.
            let stored = store
                .store_refreshed_tokens(
                    importer_id,
                    grant.version,
                    RefreshedTokens {
                        access_token: &tokens.access_token,
                        access_token_expires_at: tokens.expires_at,
                        refresh_token: tokens.refresh_token.as_ref(),
                        scopes: &tokens.scopes,
                    },
                    now,
                )
                .await?;
            if stored {
                Ok(RefreshOutcome::Refreshed {
                    expires_at: tokens.expires_at,
                })
            } else {
                // A new sign-in (or another run) replaced the grant: its
                // tokens are newer than ours, which are simply dropped.
                let current = store.grant(importer_id).await?;
                Ok(RefreshOutcome::RefreshedElsewhere {
                    expires_at: current.and_then(|g| g.access_token_expires_at),
                })
            }
        }
        Err(e) => {
            let current = store.grant(importer_id).await?;
            if let Some(current) = current.as_ref().filter(|c| c.version != grant.version) {
                // Refused because someone else spent the token first.
                return Ok(RefreshOutcome::RefreshedElsewhere {
                    expires_at: current.access_token_expires_at,
                });
            }
            let reason = fix_text(identity, settings, &e);
            if e.diagnosis().needs_reauthorization() {
                store
                    .mark_reauth_required(importer_id, grant.version, &reason, now)
                    .await?;
                tracing::warn!(importer = importer_id, %reason, "grant needs a new sign-in");
                Ok(RefreshOutcome::ReauthRequired { reason })
            } else {
                store
                    .record_refresh_failure(importer_id, &reason, now)
                    .await?;
                Ok(RefreshOutcome::Failed { reason })
            }
        }
    }
}
