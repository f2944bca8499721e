//! `refresh-tokens`: renews every delegated grant of the client whose access
//! token expires within the margin or whose refresh token has been idle too
//! long, and writes one line per importer. Fails (so the execution shows
//! red and alerts fire) when any grant needs a new sign-in or could not be
//! refreshed.

use std::sync::OnceLock;

use jiff::SignedDuration;
use microsoft::entra::{HttpClient, IdentityClient};
use scheduler::{ParamKind, ParamSpec, Script, ScriptContext, ScriptError, ScriptFuture};
use store::importers::ImporterRecord;

use crate::refresh::{RefreshContext, RefreshOutcome, RefreshPolicy, refresh_grant};

pub const NAME: &str = "refresh-tokens";

#[derive(Debug, Default)]
pub struct RefreshTokens {
    /// Built on first run: registering the script must not fail.
    http: OnceLock<HttpClient>,
    policy: RefreshPolicy,
}

impl RefreshTokens {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(http: HttpClient, policy: RefreshPolicy) -> Self {
        Self {
            http: OnceLock::from(http),
            policy,
        }
    }

    fn http(&self) -> Result<HttpClient, ScriptError> {
        if let Some(h) = self.http.get() {
            return Ok(h.clone());
        }
        let built = HttpClient::new()
            .map_err(|e| ScriptError::new(format!("the HTTP client could not be built: {e}")))?;
        Ok(self.http.get_or_init(|| built).clone())
    }

    async fn refresh_all(&self, ctx: &ScriptContext) -> Result<(), ScriptError> {
        let http = self.http()?;
        let margin = match ctx.param_i64("margin_minutes") {
            None => self.policy.margin,
            Some(m) if (0..=24 * 60).contains(&m) => SignedDuration::from_mins(m),
            Some(m) => {
                return Err(ScriptError::new(format!(
                    "margin_minutes must be between 0 and 1440, not {m}"
                )));
            }
        };
        let mut policy = self.policy.clone();
        if let Some(days) = ctx.param_i64("max_idle_days") {
            if !(1..=89).contains(&days) {
                return Err(ScriptError::new(format!(
                    "max_idle_days must be between 1 and 89 (Microsoft drops refresh tokens idle for 90 days), not {days}"
                )));
            }
            policy.max_idle = SignedDuration::from_hours(24 * days);
        }
        let only = ctx.param_str("importer_id");
        let importers = ctx
            .store
            .list_importers(&ctx.client_id)
            .await
            .map_err(|e| ScriptError::new(e.to_string()))?;
        if let Some(id) = only
            && !importers.iter().any(|r| r.id == id)
        {
            return Err(ScriptError::new(format!(
                "this client has no importer {id}"
            )));
        }
        let owner = format!("refresh-tokens:{}", uuid::Uuid::now_v7());
        // Token requests side by side, a bounded number at a time: ten
        // thousand grants at 50 ms each take seconds, not minutes.
        let slots = tokio::sync::Semaphore::new(REFRESHES_AT_ONCE);
        let mut work = Vec::new();
        for record in importers
            .iter()
            .filter(|r| only.is_none_or(|id| r.id == id))
        {
            work.push(self.refresh_one(ctx, &http, record, &policy, margin, &owner, &slots));
        }
        let (mut refreshed, mut ok, mut broken) = (0, 0, 0);
        let mut stopped = false;
        for tally in futures_util::future::join_all(work).await {
            // One importer's store error is that importer's problem: the
            // others' refreshes still count.
            let tally = tally.unwrap_or_else(|e| {
                ctx.log
                    .line(format!("failed, will retry on the next run: {e}"));
                Tally::Broken
            });
            match tally {
                Tally::Refreshed => refreshed += 1,
                Tally::Fine => ok += 1,
                Tally::Broken => broken += 1,
                Tally::Skipped => {}
                Tally::Stopped => stopped = true,
            }
        }
        if stopped {
            ctx.log.line("stopped: mailferry is shutting down");
        }
        ctx.log.line(format!(
            "summary: {refreshed} refreshed, {ok} fine, {broken} need attention"
        ));
        if broken > 0 {
            return Err(ScriptError::new(format!(
                "{broken} importer(s) could not be refreshed; see the lines above for the fix"
            )));
        }
        Ok(())
    }
}

/// How one importer's refresh counts in the summary.
enum Tally {
    Refreshed,
    Fine,
    Broken,
    /// Not refreshable by this script (app-only, or no grant yet).
    Skipped,
    Stopped,
}

/// Token requests in flight at once.
const REFRESHES_AT_ONCE: usize = 32;

impl RefreshTokens {
    #[expect(
        clippy::too_many_arguments,
        reason = "one run's shared state, passed down once"
    )]
    async fn refresh_one(
        &self,
        ctx: &ScriptContext,
        http: &HttpClient,
        record: &ImporterRecord,
        policy: &RefreshPolicy,
        margin: SignedDuration,
        owner: &str,
        slots: &tokio::sync::Semaphore,
    ) -> Result<Tally, ScriptError> {
        let label = format!("{} ({})", record.settings.name, record.id);
        let Some(app) = record.settings.entra_app().cloned() else {
            return Ok(Tally::Skipped);
        };
        if record.settings.delegated_access().is_none() {
            ctx.log.line(format!(
                "{label}: not applicable (client credentials: tokens are fetched when needed)"
            ));
            return Ok(Tally::Skipped);
        }
        let Ok(_slot) = slots.acquire().await else {
            return Ok(Tally::Stopped);
        };
        if ctx.cancel.is_cancelled() {
            return Ok(Tally::Stopped);
        }
        let secret = ctx
            .store
            .importer_secret(&record.client_id, &record.id)
            .await
            .map_err(|e| ScriptError::new(e.to_string()))?;
        let identity = IdentityClient::new(http.clone(), &app, secret);
        let outcome = refresh_grant(
            RefreshContext {
                store: &ctx.store,
                identity: &identity,
                settings: &record.settings,
                importer_id: &record.id,
                clock: ctx.clock.as_ref(),
                policy,
                margin,
            },
            owner,
        )
        .await
        .map_err(|e| ScriptError::new(e.to_string()))?;
        let (tally, line) = match outcome {
            RefreshOutcome::Refreshed { expires_at } => (
                Tally::Refreshed,
                format!("refreshed; access token valid until {expires_at}"),
            ),
            RefreshOutcome::NotDue { expires_at } => (
                Tally::Fine,
                match expires_at {
                    Some(at) => format!("not due; access token valid until {at}"),
                    None => "not due".to_owned(),
                },
            ),
            RefreshOutcome::RefreshedElsewhere { expires_at } => (
                Tally::Fine,
                format!(
                    "refreshed by another run meanwhile; access token valid until {}",
                    expires_at.map_or_else(|| "unknown".to_owned(), |t| t.to_string())
                ),
            ),
            RefreshOutcome::Busy => (
                Tally::Fine,
                "another run is refreshing it right now; skipped".to_owned(),
            ),
            RefreshOutcome::NotAuthorized => (
                Tally::Skipped,
                "not authorized yet: press Authenticate on the importer page".to_owned(),
            ),
            RefreshOutcome::ReauthRequired { reason } => {
                (Tally::Broken, format!("reauth_required: {reason}"))
            }
            RefreshOutcome::Failed { reason } => (
                Tally::Broken,
                format!("failed, will retry on the next run: {reason}"),
            ),
        };
        ctx.log.line(format!("{label}: {line}"));
        let outcome = match tally {
            Tally::Refreshed => "refreshed",
            Tally::Fine => "fine",
            Tally::Broken => "needs_attention",
            Tally::Skipped => "not_authorized",
            Tally::Stopped => "stopped",
        };
        metrics::counter!("mailferry_token_refreshes_total", "outcome" => outcome).increment(1);
        Ok(tally)
    }
}

impl Script for RefreshTokens {
    fn name(&self) -> &'static str {
        NAME
    }

    fn description(&self) -> &'static str {
        "Renews Microsoft access tokens of delegated importers before they expire (and idle refresh tokens before Microsoft drops them); marks grants Microsoft refuses as reauth_required with the reason"
    }

    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec {
                name: "importer_id",
                kind: ParamKind::String,
                required: false,
                description: "only this importer",
                minimum: None,
                maximum: None,
            },
            ParamSpec {
                name: "margin_minutes",
                kind: ParamKind::Integer,
                required: false,
                description: "refresh when the access token expires within this many minutes (default 15)",
                minimum: Some(0),
                maximum: Some(1440),
            },
            ParamSpec {
                name: "max_idle_days",
                kind: ParamKind::Integer,
                required: false,
                description: "refresh when the refresh token was not used for this many days (default 7)",
                minimum: Some(1),
                maximum: Some(89),
            },
        ]
    }

    fn run<'a>(&'a self, ctx: &'a ScriptContext) -> ScriptFuture<'a> {
        Box::pin(self.refresh_all(ctx))
    }
}
