//! What Microsoft Graph posts to mailferry's public URL: change
//! notifications (`/hooks/graph`) and lifecycle events
//! (`/hooks/graph/lifecycle`). No sign-in: each notification is checked
//! against the subscription it names and its `clientState`; anything else is
//! ignored. Graph wants an answer within 3 s, so the work (an import of the
//! importer, a reauthorization) runs afterwards, and notifications for an
//! importer whose push run is still going are folded into one more run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use store::executions::TriggerKind;
use store::subscriptions::GraphSubscription;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/hooks/graph", post(notification))
        .route("/hooks/graph/lifecycle", post(lifecycle))
}

#[derive(Debug, Deserialize)]
struct Validation {
    #[serde(rename = "validationToken")]
    validation_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Posted {
    #[serde(default)]
    value: Vec<Item>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    #[serde(default)]
    subscription_id: String,
    #[serde(default)]
    client_state: Option<String>,
    #[serde(default)]
    lifecycle_event: Option<String>,
}

/// Graph's handshake: the token back, as plain text, within 10 s.
fn echo(token: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        token,
    )
        .into_response()
}

/// The posted items whose subscription is ours and whose `clientState`
/// matches, with their subscription.
async fn verified(
    state: &AppState,
    body: &[u8],
) -> Result<Vec<(Item, GraphSubscription)>, Response> {
    let posted: Posted = serde_json::from_slice(body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("not a Graph notification: {e}"),
        )
            .into_response()
    })?;
    let mut out = Vec::new();
    for item in posted.value {
        match state.store.graph_subscription(&item.subscription_id).await {
            Ok(Some(s))
                if runtime::push::client_state_matches(
                    &s,
                    item.client_state.as_deref().unwrap_or_default(),
                ) =>
            {
                out.push((item, s));
            }
            Ok(Some(_)) => tracing::warn!(
                subscription = %item.subscription_id,
                "a change notification with a wrong clientState was ignored"
            ),
            Ok(None) => tracing::debug!(
                subscription = %item.subscription_id,
                "a change notification for an unknown subscription was ignored"
            ),
            // Graph retries what is not accepted.
            Err(e) => {
                tracing::warn!(error = %e, "could not check a change notification");
                return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
            }
        }
    }
    Ok(out)
}

async fn notification(
    State(state): State<AppState>,
    Query(q): Query<Validation>,
    body: Bytes,
) -> Response {
    if let Some(token) = q.validation_token {
        return echo(token);
    }
    match verified(&state, &body).await {
        Ok(items) => {
            for (_, s) in items {
                state.pushes.wake(&state, &s.client_id, &s.importer_id);
            }
            StatusCode::ACCEPTED.into_response()
        }
        Err(response) => response,
    }
}

async fn lifecycle(
    State(state): State<AppState>,
    Query(q): Query<Validation>,
    body: Bytes,
) -> Response {
    if let Some(token) = q.validation_token {
        return echo(token);
    }
    let items = match verified(&state, &body).await {
        Ok(items) => items,
        Err(response) => return response,
    };
    for (item, s) in items {
        let event = item.lifecycle_event.unwrap_or_default();
        tracing::info!(subscription = %s.subscription_id, importer = %s.importer_id, %event, "Graph lifecycle event");
        match event.as_str() {
            "reauthorizationRequired" => {
                let state = state.clone();
                tokio::spawn(async move {
                    let record = state.store.importer(&s.client_id, &s.importer_id).await;
                    let result = match record {
                        Ok(Some(record)) => {
                            state
                                .connector
                                .reauthorize_subscription(&record, &s.subscription_id)
                                .await
                        }
                        Ok(None) => Ok(()),
                        Err(e) => Err(e.to_string()),
                    };
                    if let Err(e) = result {
                        tracing::warn!(error = %e, importer = %s.importer_id, "could not reauthorize the Inbox subscription; the next import run makes a new one");
                        let _ = state.store.delete_graph_subscription(&s.importer_id).await;
                    }
                    // Notifications held back meanwhile may be lost.
                    state.pushes.wake(&state, &s.client_id, &s.importer_id);
                });
            }
            // The next run subscribes afresh.
            "subscriptionRemoved" => {
                if let Err(e) = state.store.delete_graph_subscription(&s.importer_id).await {
                    tracing::warn!(error = %e, "could not forget a removed subscription");
                }
                state.pushes.wake(&state, &s.client_id, &s.importer_id);
            }
            // Notifications were lost: look at the Inbox now.
            _ => state.pushes.wake(&state, &s.client_id, &s.importer_id),
        }
    }
    StatusCode::ACCEPTED.into_response()
}

/// Import runs started by push, one at a time per importer: a wake-up while
/// the importer's push run goes on asks for one more run after it.
#[derive(Debug, Default)]
pub struct PushRuns {
    /// Importer id → another run is wanted after the current one.
    running: Mutex<HashMap<String, bool>>,
}

impl PushRuns {
    pub fn wake(&self, state: &AppState, client_id: &str, importer_id: &str) {
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(again) = running.get_mut(importer_id) {
                *again = true;
                return;
            }
            running.insert(importer_id.to_owned(), false);
        }
        let pushes = Arc::clone(&state.pushes);
        let runner = state.runner.clone();
        let (client_id, importer_id) = (client_id.to_owned(), importer_id.to_owned());
        tokio::spawn(async move {
            loop {
                let mut params = serde_json::Map::new();
                params.insert("importer_id".into(), importer_id.clone().into());
                if let Err(e) = runner
                    .run(
                        &client_id,
                        runtime::import_emails::NAME,
                        params,
                        TriggerKind::Push,
                    )
                    .await
                {
                    tracing::warn!(error = %e, importer = %importer_id, "a push-started import did not start; the next scheduled run imports the mail");
                }
                let mut running = pushes.running.lock().unwrap_or_else(|p| p.into_inner());
                if running.get(&importer_id) == Some(&true) {
                    running.insert(importer_id.clone(), false);
                } else {
                    running.remove(&importer_id);
                    return;
                }
            }
        });
    }
}
