//! Liveness, Prometheus metrics, request ids and request tracing.

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, Request, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use crate::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()), responses((status = 200, description = "the service is up")))]
pub async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// The global Prometheus recorder; installed once per process, since
/// `metrics` allows only one.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Fails only when another recorder is installed (a test harness);
        // this handle then renders nothing, which the caller can see.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()), responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Grant states are read at scrape time: a state changes without any
    // event this process would see (another instance refreshed it).
    match state.store.grant_state_counts().await {
        Ok(counts) => {
            for grant_state in store::grants::GrantState::ALL {
                let n = counts
                    .iter()
                    .find(|(s, _)| *s == grant_state)
                    .map_or(0, |(_, n)| *n);
                #[expect(
                    clippy::cast_precision_loss,
                    reason = "a count of grants fits f64 exactly"
                )]
                metrics::gauge!("mailferry_grants", "state" => grant_state.as_str()).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "grant states could not be counted for /metrics"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics_handle().render(),
    )
}

pub fn layers(router: Router) -> Router {
    metrics_handle();
    router
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(|res: &axum::http::Response<_>, latency: Duration, _span: &tracing::Span| {
                    metrics::counter!("mailferry_http_responses_total", "status" => res.status().as_u16().to_string()).increment(1);
                    tracing::info!(status = res.status().as_u16(), latency_ms = latency.as_millis() as u64, "answered");
                }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        // Never let a token or a cookie reach a log line.
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
}
