//! `/api/v2/scripts`: the scripts this build has, and running one now.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use bytes::Bytes;
use domain::validation::ValidationErrors;
use scheduler::StartError;
use serde::Serialize;
use serde_json::{Map, Value};
use store::executions::TriggerKind;
use utoipa::ToSchema;

use crate::AppState;
use crate::api::executions::ExecutionView;
use crate::caller::Caller;
use crate::problem::Problem;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/scripts", get(list))
        .route("/api/v2/scripts/{name}/run", post(run))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ParamView {
    pub name: String,
    /// `string`, `integer` or `boolean`.
    pub kind: String,
    pub required: bool,
    pub description: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScriptView {
    pub name: String,
    pub description: String,
    pub params: Vec<ParamView>,
}

/// The scripts of this build, with their parameters.
#[utoipa::path(get, path = "/api/v2/scripts", tag = "scripts",
    responses((status = 200, body = [ScriptView]), (status = 401, body = Problem)))]
pub async fn list(State(state): State<AppState>, _caller: Caller) -> axum::Json<Vec<ScriptView>> {
    let scripts = state
        .runner
        .registry()
        .all()
        .map(|s| ScriptView {
            name: s.name().to_owned(),
            description: s.description().to_owned(),
            params: s
                .params()
                .into_iter()
                .map(|p| ParamView {
                    name: p.name.to_owned(),
                    kind: p.kind.as_str().to_owned(),
                    required: p.required,
                    description: p.description.to_owned(),
                })
                .collect(),
        })
        .collect();
    axum::Json(scripts)
}

pub(crate) fn run_error(error: StartError) -> Problem {
    match error {
        StartError::UnknownScript { .. } => Problem::new(StatusCode::NOT_FOUND, error.to_string()),
        StartError::InvalidParams(errors) => Problem::invalid(errors),
        StartError::ShuttingDown => {
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
        }
        StartError::Store(e) => e.into(),
    }
}

/// The optional JSON object body: `{}` when there is none.
fn params_body(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim() == "application/json");
    if !is_json {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the parameters as a JSON object with `Content-Type: application/json`, or no body",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        // The document allows `null` for "no parameters", like no body.
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err(Problem::invalid(ValidationErrors::single(
            "body",
            "must be a JSON object of parameters, e.g. {\"retention_days\": 90}",
        ))),
        Err(e) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {e}"),
        )),
    }
}

/// Start the script now for the caller's client. The body is the
/// parameters object (optional). Returns the execution at once, `running`;
/// poll `GET /api/v2/executions/{id}` (the `Location`) for the outcome.
#[utoipa::path(post, path = "/api/v2/scripts/{name}/run", tag = "scripts", params(("name" = String, Path)),
    request_body(content = Option<Object>, description = "the script's parameters (optional: no body is `{}`)", content_type = "application/json"),
    responses((status = 201, body = ExecutionView), (status = 404, body = Problem), (status = 422, body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem), (status = 401, body = Problem)))]
pub async fn run(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    let params = params_body(&headers, &body)?;
    let started = state
        .runner
        .start(&caller.client_id, &name, params, TriggerKind::Manual)
        .await
        .map_err(run_error)?;
    tracing::info!(script = %name, execution = %started.execution.id, by = %caller.principal, "manual run started");
    let location = format!("/api/v2/executions/{}", started.execution.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(ExecutionView::from(started.execution)),
    ))
}
