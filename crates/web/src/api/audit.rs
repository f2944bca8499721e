//! `GET /api/v2/audit`: the client's audit log, newest first; and the one
//! place the API records into it.

use axum::Router;
use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::routing::get;
use domain::validation::ValidationErrors;
use serde::Serialize;
use store::audit::NewAuditEvent;
use utoipa::ToSchema;

use super::paging::Paging;
use crate::AppState;
use crate::caller::Caller;
use crate::problem::Problem;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v2/audit", get(list))
}

/// Records an event for the caller's client. A failure to record is
/// logged, not returned: the change itself has already been made.
pub async fn record(
    state: &AppState,
    client_id: &str,
    actor: &str,
    action: &str,
    target: Option<&str>,
    detail: &str,
) {
    let event = NewAuditEvent {
        client_id,
        actor,
        action,
        target,
        detail,
    };
    if let Err(e) = state.store.record_audit(event, state.clock.now()).await {
        tracing::error!(error = %e, action, "the audit log could not record an event");
    }
}

/// The dotted paths where two JSON documents differ (`folders.exported`,
/// `attachments.allowed_types`): what an update changed, without values.
pub fn changed_fields(before: &serde_json::Value, after: &serde_json::Value) -> Vec<String> {
    fn walk(prefix: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    let null = serde_json::Value::Null;
                    walk(
                        &path,
                        x.get(k).unwrap_or(&null),
                        y.get(k).unwrap_or(&null),
                        out,
                    );
                }
            }
            (a, b) if a != b => out.push(prefix.to_owned()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    /// RFC 3339 in UTC.
    pub at: String,
    /// `user:ID`, `token:ID`, `cli`, or the address a failed sign-in gave.
    pub actor: String,
    /// The user's e-mail or the token's label.
    pub actor_name: Option<String>,
    /// `importer.created`, `importer.updated`, `importer.deleted`,
    /// `job.created`, `job.updated`, `job.deleted`, `signin.succeeded`,
    /// `signin.failed`, `grant.authorized`, …
    pub action: String,
    /// The importer's or job's id, if the event concerns one.
    pub target: Option<String>,
    /// What changed (field names, never secret values).
    pub detail: String,
}

/// The audit log: who changed what and when, newest first. Kept a year.
#[utoipa::path(get, path = "/api/v2/audit", tag = "audit",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "at most this many (1–1000, default 100)"),
        ("offset" = Option<u32>, Query, description = "skip this many (paging)"),
    ),
    responses((status = 200, body = [AuditEventView]), (status = 401, body = Problem),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(mut query): Query<HashMap<String, String>>,
) -> Result<axum::Json<Vec<AuditEventView>>, Problem> {
    let mut errors = ValidationErrors::default();
    let paging = Paging::take(&mut query, &mut errors);
    for other in query.keys() {
        errors.add(other.as_str(), "unknown parameter: use limit or offset");
    }
    errors.into_result(())?;
    let events = state
        .store
        .audit_events(&caller.client_id, paging.limit, paging.offset)
        .await?;
    Ok(axum::Json(
        events
            .into_iter()
            .map(|e| AuditEventView {
                at: e.at.to_string(),
                actor: e.actor,
                actor_name: e.actor_name,
                action: e.action,
                target: e.target,
                detail: e.detail,
            })
            .collect(),
    ))
}
