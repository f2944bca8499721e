//! mailferry's HTTP surface: the REST API (`/api/v2`), its OpenAPI document,
//! health and metrics. Errors become problem+json in one place
//! ([`problem::Problem`]).

use std::sync::Arc;

use axum::Router;
use domain::clock::Clock;
use store::Store;

pub mod api;
pub mod caller;
pub mod hooks;
pub mod json_body;
pub mod observability;
pub mod problem;
pub mod security_headers;
pub mod ui;

/// Settings the HTTP layer needs.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Base URL under which users and Microsoft reach this service, without a trailing slash.
    pub public_url: String,
    /// One redirect URI for every client (`MAILFERRY_OAUTH_REDIRECT_URL`), so
    /// one Azure app registration serves them all; the OAuth `state` routes
    /// each callback to its client and importer. `None`: derived from `public_url`.
    pub oauth_redirect_url: Option<String>,
}

impl WebConfig {
    /// The redirect URI to register in Azure for every delegated importer.
    pub fn redirect_uri(&self) -> String {
        match &self.oauth_redirect_url {
            Some(central) => central.clone(),
            None => format!(
                "{}/api/v2/importers/email/authenticate/end",
                self.public_url
            ),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<WebConfig>,
    /// Runs scripts (manual runs from the API) and lists the registry.
    pub runner: scheduler::Runner,
    /// Access tokens for importers: refreshed on demand, app-only tokens cached.
    pub tokens: grants::AccessTokens,
    /// Builds an importer's mailbox and sink, as the scripts do.
    pub connector: runtime::Connector,
    /// Import runs that change notifications started.
    pub pushes: Arc<hooks::PushRuns>,
}

pub fn router(state: AppState) -> Router {
    observability::layers(security_headers::layers(
        Router::new()
            .merge(observability::routes())
            .merge(api::routes())
            .merge(hooks::routes())
            .merge(ui::routes())
            .with_state(state),
    ))
}

/// Serves until `shutdown` resolves, on a listener the caller bound (tests
/// bind port 0 and read the port back before the server starts).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
