//! An importer's health, decided in one place: the overview's badge and
//! its order, the importer status's warnings and the problems alerts are
//! sent about all come from [`importer_health`], so no two pages can
//! disagree about an importer.

use domain::alert::{Problem, Severity};
use domain::health::HealthState;
use jiff::{SignedDuration, Timestamp};
use store::Store;
use store::grants::{Grant, GrantState};
use store::import_runs::{FailureKind, ImportRunRecord, RunOutcome};
use store::importers::ImporterRecord;
use store::jobs::Job;

/// Microsoft drops a refresh token unused for this long.
pub const REFRESH_TOKEN_IDLE_LIMIT: SignedDuration = SignedDuration::from_hours(90 * 24);
/// An idle refresh token is a warning on the importer's pages from here…
const IDLE_TOKEN_WARNING: SignedDuration = SignedDuration::from_hours(60 * 24);
/// …and an alert from here, ten days before Microsoft drops it.
const IDLE_TOKEN_ALERT: SignedDuration = SignedDuration::from_hours(80 * 24);
/// Token refreshes failing this often in a row are a warning.
const REFRESH_FAILURE_WARNING: i64 = 3;
/// Failed runs are counted back this far ("failing for 100 runs" at most).
const RUNS_COUNTED: u32 = 100;

/// What every importer of a client is judged against: read once per client.
#[derive(Debug, Clone)]
pub struct HealthContext {
    /// Imports failing this many runs in a row are an alert (the client's
    /// alert settings).
    pub failing_runs: u32,
    /// The client's enabled `import-emails` jobs: an importer's next run.
    pub import_jobs: Vec<Job>,
}

impl HealthContext {
    pub async fn load(store: &Store, client_id: &str) -> store::Result<Self> {
        let (alert_settings, _) = store.alert_settings(client_id).await?;
        Ok(Self::new(
            alert_settings.failing_runs,
            store.list_jobs(client_id).await?,
        ))
    }

    pub fn new(failing_runs: u32, jobs: Vec<Job>) -> Self {
        Self {
            failing_runs,
            import_jobs: jobs
                .into_iter()
                .filter(|j| j.enabled && j.script == crate::import_emails::NAME)
                .collect(),
        }
    }

    /// The next slot of an enabled `import-emails` job that works `importer_id`
    /// (all importers, or that one).
    fn next_run_at(&self, importer_id: &str) -> Option<Timestamp> {
        self.import_jobs
            .iter()
            .filter(|j| match j.params.get("importer_id") {
                None | Some(serde_json::Value::Null) => true,
                Some(serde_json::Value::String(id)) => id.is_empty() || id == importer_id,
                Some(_) => false,
            })
            .filter_map(|j| j.next_run_at)
            .min()
    }
}

/// The grant's instants and words, for a delegated importer someone signed in to.
#[derive(Debug, Clone)]
pub struct GrantHealth {
    pub state: GrantState,
    pub account: Option<String>,
    pub access_token_expires_at: Option<Timestamp>,
    pub last_refresh_at: Option<Timestamp>,
    /// When the refresh token was issued or last used.
    pub refresh_token_last_used_at: Option<Timestamp>,
    /// When Microsoft drops it if it stays unused ([`REFRESH_TOKEN_IDLE_LIMIT`]);
    /// `None` once the grant is refused.
    pub refresh_token_expires_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub consecutive_failures: i64,
}

/// One importer's health now.
#[derive(Debug, Clone)]
pub struct ImporterHealth {
    pub importer: ImporterRecord,
    pub state: HealthState,
    /// Why, in words with the fix (`None` when healthy).
    pub state_detail: Option<String>,
    /// A user signs in for this importer (delegated Graph, IMAP XOAUTH2).
    pub delegated: bool,
    /// `None` for an importer nobody signs in for, or nobody signed in yet.
    pub grant: Option<GrantHealth>,
    pub last_run: Option<ImportRunRecord>,
    /// The newest runs that failed in a row (0 when the last succeeded).
    pub failing_runs: u32,
    /// Microsoft's `Retry-After` outlasting the last run, while still ahead.
    pub throttled_until: Option<Timestamp>,
    pub next_run_at: Option<Timestamp>,
    /// Things that will break soon, each with what to do.
    pub warnings: Vec<String>,
    /// What alerts are sent about.
    pub problems: Vec<Problem>,
}

impl ImporterHealth {
    /// Problems first, then importers with warnings, then by name.
    fn sort_key(&self) -> (HealthState, bool, String) {
        (
            self.state,
            self.warnings.is_empty(),
            self.importer.settings.name.to_lowercase(),
        )
    }
}

/// Every importer of the client, problems first.
pub async fn client_health(
    store: &Store,
    client_id: &str,
    now: Timestamp,
) -> store::Result<Vec<ImporterHealth>> {
    let context = HealthContext::load(store, client_id).await?;
    let mut out = Vec::new();
    for record in store.list_importers(client_id).await? {
        out.push(importer_health(store, record, &context, now).await?);
    }
    out.sort_by_cached_key(ImporterHealth::sort_key);
    Ok(out)
}

/// One importer's health now.
pub async fn importer_health(
    store: &Store,
    record: ImporterRecord,
    context: &HealthContext,
    now: Timestamp,
) -> store::Result<ImporterHealth> {
    let delegated = record.settings.delegated_access().is_some();
    let grant = if delegated {
        store.grant(&record.id).await?
    } else {
        None
    };
    let runs = store
        .import_runs(&record.client_id, &record.id, RUNS_COUNTED, 0)
        .await?;
    let failing_runs = u32::try_from(
        runs.iter()
            .take_while(|r| r.outcome == RunOutcome::Failed)
            .count(),
    )
    .unwrap_or(u32::MAX);
    let last_run = runs.into_iter().next();
    let lease = import::lease::lease_name(store, &record).await?;
    let importing = store.lease_owner(&lease, now).await?.is_some();
    let throttled_until = last_run
        .as_ref()
        .and_then(|r| r.throttled_until)
        .filter(|t| *t > now);
    let (state, state_detail) = decide_state(
        delegated,
        grant.as_ref(),
        last_run.as_ref(),
        failing_runs,
        importing,
        throttled_until,
    );
    let warnings = warnings(&record, grant.as_ref(), now);
    let problems = problems(
        &record,
        grant.as_ref(),
        last_run.as_ref(),
        failing_runs,
        context,
        now,
    );
    Ok(ImporterHealth {
        next_run_at: context.next_run_at(&record.id),
        grant: grant.map(grant_health),
        importer: record,
        state,
        state_detail,
        delegated,
        last_run,
        failing_runs,
        throttled_until,
        warnings,
        problems,
    })
}

/// When the grant's refresh token was issued or last used.
fn refresh_token_used_at(grant: &Grant) -> Option<Timestamp> {
    grant.refresh_token_issued_at.or(grant.last_refresh_at)
}

fn grant_health(g: Grant) -> GrantHealth {
    let used = refresh_token_used_at(&g);
    GrantHealth {
        refresh_token_expires_at: used
            .filter(|_| g.state.tokens_usable())
            .and_then(|t| t.checked_add(REFRESH_TOKEN_IDLE_LIMIT).ok()),
        refresh_token_last_used_at: used,
        state: g.state,
        account: g.account,
        access_token_expires_at: g.access_token_expires_at,
        last_refresh_at: g.last_refresh_at,
        last_error: g.last_error,
        consecutive_failures: g.consecutive_failures,
    }
}

/// The worst thing true of the importer, and why in words.
fn decide_state(
    delegated: bool,
    grant: Option<&Grant>,
    last_run: Option<&ImportRunRecord>,
    failing_runs: u32,
    importing: bool,
    throttled_until: Option<Timestamp>,
) -> (HealthState, Option<String>) {
    let mut found: Vec<(HealthState, Option<String>)> = Vec::new();
    if delegated {
        match grant {
            None => found.push((
                HealthState::Unauthenticated,
                Some(
                    "nobody has signed in for this importer yet: open it and press Authenticate"
                        .to_owned(),
                ),
            )),
            Some(g) => match g.state {
                GrantState::ReauthRequired => found.push((
                    HealthState::ReauthRequired,
                    Some(g.last_error.clone().unwrap_or_else(|| {
                        "Microsoft refused the tokens: press Authenticate and sign in again"
                            .to_owned()
                    })),
                )),
                GrantState::MailboxDenied => {
                    found.push((HealthState::MailboxDenied, g.last_error.clone()))
                }
                GrantState::Authorized => {}
            },
        }
    }
    // A run that failed because Microsoft throttled the mailbox is
    // throttled, not failing, while the throttle lasts.
    let throttled_failure = |r: &ImportRunRecord| {
        throttled_until.is_some() && r.failure_kind == Some(FailureKind::Transient)
    };
    if let Some(run) = last_run.filter(|r| r.outcome == RunOutcome::Failed && !throttled_failure(r))
    {
        let error = run.error.clone().unwrap_or_default();
        found.push(match run.failure_kind {
            Some(FailureKind::Folders) => (HealthState::FolderProblem, Some(error)),
            Some(FailureKind::MailboxDenied) => (HealthState::MailboxDenied, Some(error)),
            _ => (
                HealthState::Failing,
                Some(format!("the last {failing_runs} run(s) failed: {error}")),
            ),
        });
    }
    if let Some(until) = throttled_until {
        found.push((
            HealthState::Throttled,
            Some(format!(
                "Microsoft asked mailferry to wait (Retry-After) until {until}; mails left in the Inbox are taken by a later run"
            )),
        ));
    }
    if importing {
        found.push((HealthState::Importing, None));
    }
    found
        .into_iter()
        .min_by_key(|(state, _)| *state)
        .unwrap_or((HealthState::Healthy, None))
}

/// What will break soon, with what to do.
fn warnings(record: &ImporterRecord, grant: Option<&Grant>, now: Timestamp) -> Vec<String> {
    let mut warnings = record.settings.warnings(now);
    let Some(g) = grant else {
        return warnings;
    };
    // A denied mailbox's tokens are kept fresh as well, so they too must not idle out.
    if g.state.tokens_usable()
        && let Some(used) = refresh_token_used_at(g)
        && used.duration_until(now) > IDLE_TOKEN_WARNING
    {
        let days = used.duration_until(now).as_hours() / 24;
        warnings.push(format!(
            "the refresh token has not been used for {days} days; Microsoft drops it after 90 idle days: make sure a refresh-tokens job runs (or run `mailferry run refresh-tokens`)"
        ));
    }
    if g.consecutive_failures >= REFRESH_FAILURE_WARNING {
        warnings.push(format!(
            "the last {} token refreshes failed: {}",
            g.consecutive_failures,
            g.last_error.as_deref().unwrap_or("no reason recorded")
        ));
    }
    warnings
}

/// The problems alerts are sent about.
fn problems(
    record: &ImporterRecord,
    grant: Option<&Grant>,
    last_run: Option<&ImportRunRecord>,
    failing_runs: u32,
    context: &HealthContext,
    now: Timestamp,
) -> Vec<Problem> {
    let name = &record.settings.name;
    let problem = |kind: &str, severity, summary: String, fix: String| Problem {
        key: format!("{kind}:{}", record.id),
        importer_id: record.id.clone(),
        importer_name: name.clone(),
        severity,
        summary,
        fix,
    };
    let mut out = Vec::new();
    if let Some(grant) = grant {
        let reason = grant.last_error.clone().unwrap_or_default();
        match grant.state {
            GrantState::ReauthRequired => out.push(problem(
                "reauth_required",
                Severity::Critical,
                format!("importer “{name}” needs re-authentication: Microsoft refused its tokens"),
                format!("open the importer in mailferry and press Authenticate, then sign in again. Microsoft said: {reason}"),
            )),
            GrantState::MailboxDenied => out.push(problem(
                "mailbox_denied",
                Severity::Critical,
                format!("importer “{name}” cannot open its mailbox"),
                format!("give the signed-in account access to the mailbox, or sign in as one that has it. {reason}"),
            )),
            GrantState::Authorized => {
                if let Some(used) = refresh_token_used_at(grant)
                    && used.duration_until(now) > IDLE_TOKEN_ALERT
                {
                    out.push(problem(
                        "token_idle",
                        Severity::Warning,
                        format!("importer “{name}”'s refresh token has not been used for {} days; Microsoft drops it after 90", used.duration_until(now).as_hours() / 24),
                        "make sure a refresh-tokens job runs (or run `mailferry run refresh-tokens`)".to_owned(),
                    ));
                }
            }
        }
    }
    for warning in record.settings.warnings(now) {
        if warning.contains("expire") {
            out.push(problem(
                "credential_expiry",
                Severity::Warning,
                format!("importer “{name}”: {warning}"),
                "create a new client secret or certificate in the app registration and enter it on the importer".to_owned(),
            ));
        }
    }
    if context.failing_runs > 0 && failing_runs >= context.failing_runs {
        out.push(problem(
            "failing",
            Severity::Critical,
            format!(
                "importer “{name}”: imports failed {} runs in a row",
                context.failing_runs
            ),
            last_run.and_then(|r| r.error.clone()).unwrap_or_default(),
        ));
    }
    out
}
