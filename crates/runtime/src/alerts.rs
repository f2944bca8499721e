//! Which problems a client's importers have, and alerting about them once:
//! a new problem is sent at once, one that lasts is sent again a day later,
//! and one that is gone is announced resolved. Checked after every
//! `refresh-tokens` and `import-emails` run ([`WithAlerts`]).

use std::collections::HashSet;
use std::sync::Arc;

use domain::alert::{AlertEvent, Problem, Severity};
use jiff::{SignedDuration, Timestamp};
use scheduler::{ParamSpec, Script, ScriptContext, ScriptFuture};
use store::Store;

use crate::alert_delivery::{self, Alert};
use crate::health::{HealthContext, importer_health};

/// A problem still there this long after its last alert is sent again.
const REMIND_AFTER: SignedDuration = SignedDuration::from_hours(24);
/// The problems of the client's importers now (decided with their health,
/// [`crate::health`]).
pub async fn problems(
    store: &Store,
    client_id: &str,
    failing_runs: u32,
    now: Timestamp,
) -> store::Result<Vec<Problem>> {
    let context = HealthContext::new(failing_runs, Vec::new());
    let mut out = Vec::new();
    for record in store.list_importers(client_id).await? {
        out.extend(
            importer_health(store, record, &context, now)
                .await?
                .problems,
        );
    }
    Ok(out)
}

/// Sends what is due for the client's problems now; its log lines.
pub async fn check(store: &Store, client_id: &str, now: Timestamp) -> store::Result<Vec<String>> {
    let (settings, _) = store.alert_settings(client_id).await?;
    if !settings.has_target() {
        return Ok(Vec::new());
    }
    let client = store
        .client_by_id(client_id)
        .await?
        .map_or_else(|| client_id.to_owned(), |c| c.name);
    let password = store.smtp_password(client_id).await?;
    let current = problems(store, client_id, settings.failing_runs, now).await?;
    let known = store.alerts(client_id).await?;
    let mut lines = Vec::new();
    let mut send = async |event: AlertEvent, problem: &Problem, raised_at: Timestamp| {
        let alert = Alert {
            event,
            client: &client,
            problem,
            raised_at,
            at: now,
        };
        let delivery = alert_delivery::send(&settings, password.as_ref(), &alert).await;
        if !delivery.delivered.is_empty() {
            lines.push(format!(
                "alert ({event:?}) sent to {}: {}",
                delivery.delivered.join(" and "),
                problem.summary
            ));
        }
        for failure in &delivery.failed {
            lines.push(format!("alert ({event:?}) did not reach {failure}"));
        }
        !delivery.delivered.is_empty()
    };
    let open_now: HashSet<&str> = current.iter().map(|p| p.key.as_str()).collect();
    for problem in &current {
        let record = known
            .iter()
            .find(|a| a.problem.key == problem.key && a.resolved_at.is_none());
        let (event, raised_at) = match record {
            None => (AlertEvent::Raised, now),
            Some(a) if a.last_sent_at.is_none() => (AlertEvent::Raised, a.raised_at),
            Some(a)
                if a.last_sent_at
                    .is_some_and(|at| at.duration_until(now) >= REMIND_AFTER) =>
            {
                (AlertEvent::Reminder, a.raised_at)
            }
            Some(_) => continue,
        };
        let sent = send(event, problem, raised_at).await;
        let last_sent = match (sent, record) {
            (true, _) => Some(now),
            (false, Some(a)) => a.last_sent_at,
            (false, None) => None,
        };
        store
            .put_alert(client_id, problem, raised_at, last_sent)
            .await?;
    }
    for gone in known
        .iter()
        .filter(|a| a.resolved_at.is_none() && !open_now.contains(a.problem.key.as_str()))
    {
        // Announced only if its alert went out; either way it is closed.
        if gone.last_sent_at.is_some() {
            send(AlertEvent::Resolved, &gone.problem, gone.raised_at).await;
        }
        store
            .resolve_alert(client_id, &gone.problem.key, now)
            .await?;
    }
    Ok(lines)
}

/// Sends a test alert to every target; what reached which target, or why
/// there is none to send to.
pub async fn send_test(
    store: &Store,
    client_id: &str,
    now: Timestamp,
) -> Result<alert_delivery::Delivery, String> {
    let (settings, _) = store
        .alert_settings(client_id)
        .await
        .map_err(|e| e.to_string())?;
    if !settings.has_target() {
        return Err(
            "no alert target is set: enter a webhook URL (`webhook_url`), e-mail addresses with an SMTP server (`emails`, `smtp`), or write alerts to the server log (`log: true`) first, and save".to_owned(),
        );
    }
    let password = store
        .smtp_password(client_id)
        .await
        .map_err(|e| e.to_string())?;
    let client = store
        .client_by_id(client_id)
        .await
        .ok()
        .flatten()
        .map_or_else(|| client_id.to_owned(), |c| c.name);
    let problem = Problem {
        key: "test".to_owned(),
        importer_id: "-".to_owned(),
        importer_name: "(none)".to_owned(),
        severity: Severity::Warning,
        summary: "a test alert from mailferry: alerts reach you".to_owned(),
        fix: "nothing: this was sent from the alert settings".to_owned(),
    };
    Ok(alert_delivery::send(
        &settings,
        password.as_ref(),
        &Alert {
            event: AlertEvent::Test,
            client: &client,
            problem: &problem,
            raised_at: now,
            at: now,
        },
    )
    .await)
}

/// A script that checks the client's alerts after each run of `inner`,
/// whatever its outcome (a failed run is often what an alert is about).
pub struct WithAlerts {
    inner: Arc<dyn Script>,
}

impl WithAlerts {
    pub fn wrap(inner: Arc<dyn Script>) -> Arc<dyn Script> {
        Arc::new(Self { inner })
    }
}

impl Script for WithAlerts {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn description(&self) -> &'static str {
        self.inner.description()
    }

    fn params(&self) -> Vec<ParamSpec> {
        self.inner.params()
    }

    fn run<'a>(&'a self, ctx: &'a ScriptContext) -> ScriptFuture<'a> {
        Box::pin(async move {
            let result = self.inner.run(ctx).await;
            match check(&ctx.store, &ctx.client_id, ctx.clock.now()).await {
                Ok(lines) => lines.into_iter().for_each(|l| ctx.log.line(l)),
                Err(e) => ctx.log.line(format!("alerts could not be checked: {e}")),
            }
            result
        })
    }
}
