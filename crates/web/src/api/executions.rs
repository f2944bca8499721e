//! `/api/v2/executions`: every run of a script in the caller's client
//! (scheduled, manual, CLI), newest first, with its log.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use domain::validation::ValidationErrors;
use serde::Serialize;
use serde_json::{Map, Value};
use store::executions::{Execution, ExecutionFilter, ExecutionStatus};
use utoipa::ToSchema;

use crate::AppState;
use crate::caller::Caller;
use crate::problem::Problem;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/executions", get(list))
        .route("/api/v2/executions/{id}", get(get_one))
}

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 1000;

/// One run of a script.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutionView {
    pub id: String,
    pub script: String,
    /// The job that ran it; absent for manual and CLI runs.
    pub job_id: Option<String>,
    /// `scheduled`, `manual` or `cli`.
    #[schema(example = "scheduled")]
    pub trigger: String,
    /// `running`, `succeeded` or `failed`.
    #[schema(example = "succeeded")]
    pub status: String,
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// The cron slot of a scheduled run (UTC).
    pub scheduled_for: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// What the script reported, line by line (saved while it runs, too).
    pub log: Vec<String>,
    /// Why it failed, in plain words.
    pub error: Option<String>,
    /// The mailferry instance that ran it.
    pub instance: Option<String>,
}

impl From<Execution> for ExecutionView {
    fn from(e: Execution) -> Self {
        Self {
            id: e.id,
            script: e.script,
            job_id: e.job_id,
            trigger: e.trigger.as_str().to_owned(),
            status: e.status.as_str().to_owned(),
            params: e.params,
            scheduled_for: e.scheduled_for.map(|t| t.to_string()),
            started_at: e.started_at.to_string(),
            finished_at: e.finished_at.map(|t| t.to_string()),
            log: e.log,
            error: e.error,
            instance: e.owner,
        }
    }
}

/// The client's executions, newest first. Kept: the newest 1,000 per
/// client, and none older than 30 days.
#[utoipa::path(get, path = "/api/v2/executions", tag = "scripts",
    params(
        ("job_id" = Option<String>, Query, description = "only this job's runs"),
        ("script" = Option<String>, Query, description = "only this script's runs"),
        ("status" = Option<String>, Query, description = "only runs with this status: `running`, `succeeded` or `failed`"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "at most this many (1–1000, default 50)"),
    ),
    responses((status = 200, body = [ExecutionView]), (status = 422, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<axum::Json<Vec<ExecutionView>>, Problem> {
    let mut errors = ValidationErrors::default();
    let mut filter = ExecutionFilter {
        limit: DEFAULT_LIMIT,
        ..ExecutionFilter::default()
    };
    for (key, value) in query {
        match key.as_str() {
            "job_id" => filter.job_id = Some(value),
            "script" => filter.script = Some(value),
            "status" => match ExecutionStatus::ALL
                .into_iter()
                .find(|s| s.as_str() == value)
            {
                Some(status) => filter.status = Some(status),
                None => errors.add(
                    "status",
                    format!("`{value}` is not a status: use running, succeeded or failed"),
                ),
            },
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => filter.limit = n,
                _ => errors.add(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}, not `{value}`"),
                ),
            },
            other => errors.add(
                other,
                "unknown filter: use job_id, script, status or limit".to_owned(),
            ),
        }
    }
    errors.into_result(())?;
    let executions = state
        .store
        .list_executions(&caller.client_id, &filter)
        .await?;
    Ok(axum::Json(
        executions.into_iter().map(ExecutionView::from).collect(),
    ))
}

/// One execution, with its log (poll it to follow a run).
#[utoipa::path(get, path = "/api/v2/executions/{id}", tag = "scripts", params(("id" = String, Path)),
    responses((status = 200, body = ExecutionView), (status = 404, body = Problem), (status = 401, body = Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<ExecutionView>, Problem> {
    let execution = state
        .store
        .execution(&caller.client_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found("execution"))?;
    Ok(axum::Json(execution.into()))
}
