//! Alerts of the caller's client: where they go (`/api/v2/alerts/settings`,
//! the SMTP password write-only), a test alert to every target, and the
//! problems alerted about.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use domain::alert::{AlertSettings, AlertSettingsInput, Problem, SmtpSettings};
use secrecy::SecretString;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::caller::Caller;
use crate::json_body::JsonBody;
use crate::problem::Problem as ApiProblem;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/alerts", get(list))
        .route(
            "/api/v2/alerts/settings",
            get(get_settings).put(put_settings),
        )
        .route("/api/v2/alerts/test", post(test))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SmtpView {
    #[serde(flatten)]
    pub settings: SmtpSettings,
    /// A password is stored (it is never shown).
    pub password_set: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertSettingsView {
    pub webhook_url: Option<String>,
    pub emails: Vec<String>,
    pub smtp: Option<SmtpView>,
    /// Each alert is written to the server's log (a `WARN` line, target
    /// `mailferry::alert`).
    pub log: bool,
    pub failing_runs: u32,
}

fn view(settings: AlertSettings, password_set: bool) -> AlertSettingsView {
    AlertSettingsView {
        webhook_url: settings.webhook_url,
        emails: settings.emails,
        smtp: settings.smtp.map(|settings| SmtpView {
            settings,
            password_set,
        }),
        log: settings.log,
        failing_runs: settings.failing_runs,
    }
}

/// Where the client's alerts go.
#[utoipa::path(get, path = "/api/v2/alerts/settings", tag = "alerts",
    responses((status = 200, body = AlertSettingsView)))]
pub async fn get_settings(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<AlertSettingsView>, ApiProblem> {
    let (settings, password_set) = state.store.alert_settings(&caller.client_id).await?;
    Ok(axum::Json(view(settings, password_set)))
}

/// Sets where the client's alerts go: `webhook_url`, `emails` (with
/// `smtp`: `host`, `port`, `security` starttls|tls|none, `username`,
/// `password` (write-only; omit it to keep the stored one), `from`,
/// `tls_ca_pem`), `log` (write each alert to the server's log, no network;
/// default false) and `failing_runs` (failed runs in a row that raise an
/// alert, default 3).
#[utoipa::path(put, path = "/api/v2/alerts/settings", tag = "alerts", request_body = AlertSettingsInput,
    responses((status = 200, body = AlertSettingsView)))]
pub async fn put_settings(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<AlertSettingsInput>,
) -> Result<axum::Json<AlertSettingsView>, ApiProblem> {
    let (settings, password) = input.parse()?;
    let password = password.map(SecretString::from);
    state
        .store
        .put_alert_settings(
            &caller.client_id,
            &settings,
            password.as_ref(),
            state.clock.now(),
        )
        .await?;
    crate::api::audit::record(
        &state,
        &caller.client_id,
        &caller.principal,
        "alerts.updated",
        None,
        if password.is_some() {
            "alert settings saved (smtp.password replaced)"
        } else {
            "alert settings saved"
        },
    )
    .await;
    let (settings, password_set) = state.store.alert_settings(&caller.client_id).await?;
    Ok(axum::Json(view(settings, password_set)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestAlertResult {
    /// The targets that took the test alert.
    pub delivered: Vec<String>,
    /// The targets that did not, each with why and what to check.
    pub failed: Vec<String>,
}

/// Sends a test alert to every target now (the server log too, when `log`
/// is set): 200 when at least one took it (`failed` names the others), 502
/// when none did, 409 without targets.
#[utoipa::path(post, path = "/api/v2/alerts/test", tag = "alerts",
    responses((status = 200, body = TestAlertResult), (status = 502, body = ApiProblem), (status = 409, body = ApiProblem)))]
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<TestAlertResult>, ApiProblem> {
    let delivery = runtime::alerts::send_test(&state.store, &caller.client_id, state.clock.now())
        .await
        .map_err(|why| ApiProblem::new(StatusCode::CONFLICT, why))?;
    if delivery.delivered.is_empty() {
        return Err(ApiProblem::new(
            StatusCode::BAD_GATEWAY,
            format!(
                "no target took the test alert: {}",
                delivery.failed.join("; ")
            ),
        ));
    }
    Ok(axum::Json(TestAlertResult {
        delivered: delivery.delivered,
        failed: delivery.failed,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertView {
    pub problem: Problem,
    pub raised_at: String,
    pub last_sent_at: Option<String>,
    pub resolved_at: Option<String>,
}

/// The problems alerted about: open ones first, then resolved ones.
#[utoipa::path(get, path = "/api/v2/alerts", tag = "alerts",
    responses((status = 200, body = Vec<AlertView>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<AlertView>>, ApiProblem> {
    let alerts = state.store.alerts(&caller.client_id).await?;
    Ok(axum::Json(
        alerts
            .into_iter()
            .map(|a| AlertView {
                problem: a.problem,
                raised_at: a.raised_at.to_string(),
                last_sent_at: a.last_sent_at.map(|t| t.to_string()),
                resolved_at: a.resolved_at.map(|t| t.to_string()),
            })
            .collect(),
    ))
}
