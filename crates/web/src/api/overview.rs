//! `GET /api/v2/overview`: the admin's daily view, one entry per importer
//! of the caller's client with its health (decided by
//! [`runtime::health`], like the status's warnings and the alerts), its
//! last run, its next run and its tokens' remaining life; problems first.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use domain::alert::Problem as AlertProblem;
use domain::health::HealthState;
use domain::importer::Protocol;
use domain::validation::ValidationErrors;
use runtime::health::{HealthContext, ImporterHealth, client_health, importer_health};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::api::import_runs::ImportRunView;
use crate::caller::Caller;
use crate::problem::Problem;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v2/overview", get(overview))
}

/// One importer on the overview.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewEntry {
    pub importer_id: String,
    pub name: String,
    pub protocol: Protocol,
    /// The badge: `reauth_required`, `mailbox_denied`, `folder_problem`,
    /// `failing`, `unauthenticated`, `throttled`, `importing` or `healthy`
    /// (worst first; the list is sorted by it).
    pub state: HealthState,
    /// Why, with what to do (Microsoft's reason for `reauth_required`, the
    /// run's error for `folder_problem` and `failing`); `null` when healthy.
    pub state_detail: Option<String>,
    /// The newest recorded run (as `GET …/{id}/runs` lists it); `null` before the first.
    pub last_run: Option<ImportRunView>,
    /// The newest runs that failed in a row (0 when the last one succeeded).
    pub failing_runs: u32,
    /// Until when Microsoft asked to wait (`Retry-After`), while still ahead.
    pub throttled_until: Option<String>,
    /// The next slot of an enabled `import-emails` job that works this importer.
    pub next_run_at: Option<String>,
    /// A user signs in for this importer (delegated Graph, IMAP XOAUTH2).
    pub delegated: bool,
    /// The signed-in account (delegated importers).
    pub account: Option<String>,
    pub access_token_expires_at: Option<String>,
    /// When the refresh token was issued or last used.
    pub refresh_token_last_used_at: Option<String>,
    /// When Microsoft drops the refresh token if it stays unused (90 days
    /// after its last use); `null` when there is none to keep.
    pub refresh_token_expires_at: Option<String>,
    /// Things that will break soon, each with what to do (secret expiry, an idle refresh token…).
    pub warnings: Vec<String>,
    /// The problems alerts are sent about now.
    pub problems: Vec<AlertProblem>,
}

impl From<ImporterHealth> for OverviewEntry {
    fn from(h: ImporterHealth) -> Self {
        let grant = h.grant.as_ref();
        let instant = |t: Option<jiff::Timestamp>| t.map(|t| t.to_string());
        Self {
            account: grant.and_then(|g| g.account.clone()),
            access_token_expires_at: instant(grant.and_then(|g| g.access_token_expires_at)),
            refresh_token_last_used_at: instant(grant.and_then(|g| g.refresh_token_last_used_at)),
            refresh_token_expires_at: instant(grant.and_then(|g| g.refresh_token_expires_at)),
            importer_id: h.importer.id,
            name: h.importer.settings.name,
            protocol: h.importer.settings.protocol,
            state: h.state,
            state_detail: h.state_detail,
            last_run: h.last_run.map(ImportRunView::from),
            failing_runs: h.failing_runs,
            throttled_until: instant(h.throttled_until),
            next_run_at: instant(h.next_run_at),
            delegated: h.delegated,
            warnings: h.warnings,
            problems: h.problems,
        }
    }
}

/// Every importer of the client with its health, problems first (then
/// those with warnings, then by name).
#[utoipa::path(get, path = "/api/v2/overview", tag = "import",
    params(("importer_id" = Option<String>, Query, description = "only this importer (its page shows the same entry)")),
    responses((status = 200, body = [OverviewEntry]),
        (status = 404, body = Problem, description = "`importer_id` names no importer of the client"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "an unknown parameter"),
        (status = 401, body = Problem)))]
pub async fn overview(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<axum::Json<Vec<OverviewEntry>>, Problem> {
    let mut errors = ValidationErrors::default();
    let mut only = None;
    for (key, value) in query {
        match key.as_str() {
            "importer_id" => only = Some(value),
            other => errors.add(other, "unknown parameter: use importer_id".to_owned()),
        }
    }
    errors.into_result(())?;
    let now = state.clock.now();
    let entries = match only {
        None => client_health(&state.store, &caller.client_id, now).await?,
        Some(id) => {
            let record = state
                .store
                .importer(&caller.client_id, &id)
                .await?
                .ok_or_else(|| Problem::not_found("importer"))?;
            let context = HealthContext::load(&state.store, &caller.client_id).await?;
            vec![importer_health(&state.store, record, &context, now).await?]
        }
    };
    Ok(axum::Json(
        entries.into_iter().map(OverviewEntry::from).collect(),
    ))
}
