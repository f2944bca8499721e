//! `/api/v2/jobs`: cron jobs of the caller's client, and their next runs.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use domain::schedule::CronSchedule;
use domain::validation::ValidationErrors;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use store::jobs::{Job, JobSpec};
use utoipa::ToSchema;

use crate::AppState;
use crate::caller::Caller;
use crate::json_body::JsonBody;
use crate::problem::Problem;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/jobs", get(list).post(create))
        .route(
            "/api/v2/jobs/{id}",
            get(get_one).put(replace).delete(delete),
        )
        .route("/api/v2/jobs/{id}/next-runs", get(next_runs))
}

const MAX_NEXT_RUNS: usize = 100;
const DEFAULT_NEXT_RUNS: usize = 10;
const MAX_DESCRIPTION: usize = 500;

/// A job as sent by the client. `timezone` defaults to `UTC`, `enabled` to
/// true, `params` to `{}`. The read-only fields of [`JobView`] may be sent
/// back as they came (a GET body edited and PUT) and are ignored; any other
/// unknown field is an error.
#[derive(Debug, Deserialize, ToSchema)]
pub struct JobInput {
    #[schema(example = "purge-documents", required = true)]
    pub script: Option<String>,
    /// Five fields, or six with a leading seconds field, or `@hourly`-style.
    #[schema(example = "*/50 * * * *", required = true)]
    pub cron: Option<String>,
    /// IANA time zone the cron expression is read in.
    #[schema(example = "Europe/Berlin")]
    pub timezone: Option<String>,
    pub enabled: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub params: Option<Map<String, Value>>,
    /// Free text for the admins.
    pub description: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub id: String,
    pub script: String,
    pub cron: String,
    pub timezone: String,
    pub enabled: bool,
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    pub description: String,
    /// The schedule in plain words, e.g. "at minutes 0 and 50 of every hour (UTC)".
    pub schedule_description: String,
    /// The next slot (UTC); absent while disabled.
    pub next_run_at: Option<String>,
    pub last_run_at: Option<String>,
    /// A run of this job is going on now.
    pub running: bool,
    /// False when this build has no script of that name: its runs fail
    /// saying so, until an update that has it is installed.
    pub script_available: bool,
    pub created_at: String,
    pub updated_at: String,
}

fn view(state: &AppState, job: Job) -> JobView {
    let now = state.clock.now();
    JobView {
        schedule_description: job
            .schedule()
            .map_or_else(|e| format!("invalid: {e}"), |s| s.describe()),
        running: job.is_leased(now),
        script_available: state.runner.registry().get(&job.script).is_some(),
        id: job.id,
        script: job.script,
        cron: job.cron,
        timezone: job.timezone,
        enabled: job.enabled,
        params: job.params,
        description: job.description,
        next_run_at: job.next_run_at.map(|t| t.to_string()),
        last_run_at: job.last_run_at.map(|t| t.to_string()),
        created_at: job.created_at.to_string(),
        updated_at: job.updated_at.to_string(),
    }
}

const INPUT_FIELDS: [&str; 6] = [
    "script",
    "cron",
    "timezone",
    "enabled",
    "params",
    "description",
];
const READ_ONLY_FIELDS: [&str; 8] = [
    "id",
    "schedule_description",
    "next_run_at",
    "last_run_at",
    "running",
    "script_available",
    "created_at",
    "updated_at",
];

fn parse_input(body: Map<String, Value>) -> Result<JobInput, Problem> {
    let mut errors = ValidationErrors::default();
    let mut fields = Map::new();
    for (key, value) in body {
        if INPUT_FIELDS.contains(&key.as_str()) {
            fields.insert(key, value);
        } else if !READ_ONLY_FIELDS.contains(&key.as_str()) {
            errors.add(
                key,
                format!("unknown field: a job has {}", INPUT_FIELDS.join(", ")),
            );
        }
    }
    errors.into_result(())?;
    serde_path_to_error::deserialize(Value::Object(fields)).map_err(|e| {
        let field = e.path().to_string();
        Problem::invalid(ValidationErrors::single(field, e.into_inner().to_string()))
    })
}

/// Checks a job body. `existing_script`: on an update, the job's current
/// script may stay even if this build lacks it (e.g. to disable the job).
fn validate(
    state: &AppState,
    input: JobInput,
    existing_script: Option<&str>,
) -> Result<JobSpec, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let registry = state.runner.registry();
    let params = input.params.unwrap_or_default();
    let script = match input.script.map(|s| s.trim().to_owned()) {
        None => {
            errors.add(
                "script",
                format!("is required: one of {}", registry.names().join(", ")),
            );
            None
        }
        Some(name) => {
            match registry.get(&name) {
                Some(script) => {
                    if let Err(e) = scheduler::params::check(script.as_ref(), &params) {
                        errors.errors.extend(e.errors);
                    }
                }
                None if existing_script == Some(name.as_str()) => {}
                None => errors.add(
                    "script",
                    format!(
                        "there is no script `{name}` in this build; scripts: {}",
                        registry.names().join(", ")
                    ),
                ),
            }
            Some(name)
        }
    };
    let timezone = input.timezone.unwrap_or_else(|| "UTC".to_owned());
    // Checked apart so that a bad expression and a bad zone are both reported.
    if let Err(e) = CronSchedule::parse("* * * * *", &timezone) {
        errors.add(e.field(), e.message());
    }
    let schedule = match input.cron {
        None => {
            errors.add(
                "cron",
                "is required, e.g. \"*/5 * * * *\" (every 5 minutes)",
            );
            None
        }
        Some(cron) => match CronSchedule::parse(&cron, "UTC") {
            Err(e) => {
                errors.add(e.field(), e.message());
                None
            }
            Ok(_) => CronSchedule::parse(&cron, &timezone).ok(),
        },
    };
    let description = input.description.unwrap_or_default();
    if description.chars().count() > MAX_DESCRIPTION {
        errors.add(
            "description",
            format!("is longer than {MAX_DESCRIPTION} characters"),
        );
    }
    match (script, schedule) {
        (Some(script), Some(schedule)) if errors.is_empty() => Ok(JobSpec {
            script,
            schedule,
            enabled: input.enabled.unwrap_or(true),
            params,
            description,
        }),
        _ => Err(errors),
    }
}

/// The client's jobs.
#[utoipa::path(get, path = "/api/v2/jobs", tag = "jobs",
    responses((status = 200, body = [JobView]), (status = 401, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<JobView>>, Problem> {
    let jobs = state.store.list_jobs(&caller.client_id).await?;
    Ok(axum::Json(
        jobs.into_iter().map(|job| view(&state, job)).collect(),
    ))
}

/// Create a job. It first runs at the next slot after now.
#[utoipa::path(post, path = "/api/v2/jobs", tag = "jobs", request_body = JobInput,
    responses((status = 201, body = JobView), (status = 422, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<(StatusCode, axum::Json<JobView>), Problem> {
    let spec = validate(&state, parse_input(body)?, None)?;
    let job = state
        .store
        .create_job(&caller.client_id, &spec, state.clock.now())
        .await?;
    state.runner.jobs_changed();
    tracing::info!(job = %job.id, script = %job.script, cron = %job.cron, "job created");
    super::audit::record(
        &state,
        &caller.client_id,
        &caller.principal,
        "job.created",
        Some(&job.id),
        &format!("`{}` at `{}` ({})", job.script, job.cron, job.timezone),
    )
    .await;
    Ok((StatusCode::CREATED, axum::Json(view(&state, job))))
}

async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<Job, Problem> {
    state
        .store
        .job(&caller.client_id, id)
        .await?
        .ok_or_else(|| Problem::not_found("job"))
}

/// One job.
#[utoipa::path(get, path = "/api/v2/jobs/{id}", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = JobView), (status = 404, body = Problem), (status = 401, body = Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<JobView>, Problem> {
    let job = find(&state, &caller, &id).await?;
    Ok(axum::Json(view(&state, job)))
}

/// Replace a job. It is then scheduled from now: the next run is the next
/// slot after the change. A run in progress finishes.
#[utoipa::path(put, path = "/api/v2/jobs/{id}", tag = "jobs", params(("id" = String, Path)), request_body = JobInput,
    responses((status = 200, body = JobView), (status = 404, body = Problem), (status = 422, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem)))]
pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<axum::Json<JobView>, Problem> {
    let existing = find(&state, &caller, &id).await?;
    let spec = validate(&state, parse_input(body)?, Some(&existing.script))?;
    let job = state
        .store
        .update_job(&caller.client_id, &id, &spec, state.clock.now())
        .await?;
    state.runner.jobs_changed();
    super::audit::record(
        &state,
        &caller.client_id,
        &caller.principal,
        "job.updated",
        Some(&id),
        &format!(
            "`{}`: `{}` ({}) → `{}` ({})",
            job.script, existing.cron, existing.timezone, job.cron, job.timezone
        ),
    )
    .await;
    Ok(axum::Json(view(&state, job)))
}

/// Delete a job. Its executions stay until pruned; a run in progress finishes.
#[utoipa::path(delete, path = "/api/v2/jobs/{id}", tag = "jobs", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 401, body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let job = state.store.job(&caller.client_id, &id).await?;
    if state.store.delete_job(&caller.client_id, &id).await? {
        state.runner.jobs_changed();
        // The audit log outlives the job: it keeps what the job ran when.
        let detail = job.map_or_else(String::new, |j| {
            format!("`{}` at `{}` ({})", j.script, j.cron, j.timezone)
        });
        super::audit::record(
            &state,
            &caller.client_id,
            &caller.principal,
            "job.deleted",
            Some(&id),
            &detail,
        )
        .await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("job"))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NextRun {
    /// RFC 3339 in UTC, e.g. `2026-10-25T00:30:00Z`.
    pub utc: String,
    /// RFC 3339 with the job zone's offset, e.g. `2026-10-25T02:30:00+02:00`.
    pub local: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NextRuns {
    /// The schedule in plain words.
    pub description: String,
    pub timezone: String,
    pub runs: Vec<NextRun>,
}

fn local_rfc3339(zoned: &jiff::Zoned) -> String {
    // Cron slots are whole seconds, so no fraction is lost.
    zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// The next `count` fire times (1–100, default 10) after now, whether or
/// not the job is enabled.
#[utoipa::path(get, path = "/api/v2/jobs/{id}/next-runs", tag = "jobs",
    params(("id" = String, Path), ("count" = Option<u32>, Query, minimum = 1, maximum = 100, description = "how many (1–100, default 10)")),
    responses((status = 200, body = NextRuns), (status = 404, body = Problem), (status = 422, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem)))]
pub async fn next_runs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<axum::Json<NextRuns>, Problem> {
    let mut errors = ValidationErrors::default();
    let mut count = DEFAULT_NEXT_RUNS;
    for (key, value) in &query {
        match key.as_str() {
            "count" => match value.parse::<usize>() {
                Ok(n) if (1..=MAX_NEXT_RUNS).contains(&n) => count = n,
                _ => errors.add(
                    "count",
                    format!("must be a whole number from 1 to {MAX_NEXT_RUNS}, not `{value}`"),
                ),
            },
            other => errors.add(other, "unknown parameter: use count"),
        }
    }
    errors.into_result(())?;
    let job = find(&state, &caller, &id).await?;
    let schedule = job.schedule().map_err(|e| {
        Problem::new(
            StatusCode::CONFLICT,
            format!("the stored schedule is not valid ({e}); fix it with PUT /api/v2/jobs/{id}"),
        )
    })?;
    let now: Timestamp = state.clock.now();
    let runs = schedule
        .next_runs(now, count)
        .iter()
        .map(|z| NextRun {
            utc: z.timestamp().to_string(),
            local: local_rfc3339(z),
        })
        .collect();
    Ok(axum::Json(NextRuns {
        description: schedule.describe(),
        timezone: schedule.timezone_name().to_owned(),
        runs,
    }))
}
