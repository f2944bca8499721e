//! How mailferry is put together, in one place: the scripts this build
//! ships and the web application's state. The `mailferry` binary (`serve`,
//! `demo`, `run`) and the end-to-end tests build the service through these
//! functions, so the tests run the wiring users run.

use std::sync::Arc;

use domain::clock::Clock;
use runtime::Connector;
use scheduler::{Runner, RunnerConfig, ScriptRegistry};
use store::Store;

/// The scripts this build ships. A feature that adds a script registers it
/// here.
pub fn registry(connector: &Connector) -> ScriptRegistry {
    let mut registry = ScriptRegistry::default();
    registry.register(Arc::new(runtime::PurgeDocuments::new(connector.clone())));
    // Both end by alerting about what they found wrong.
    registry.register(runtime::alerts::WithAlerts::wrap(Arc::new(
        grants::RefreshTokens::new(),
    )));
    registry.register(runtime::alerts::WithAlerts::wrap(Arc::new(
        runtime::ImportEmails::new(connector.clone()),
    )));
    registry
}

/// The web application's state over `store`, with the scripts of
/// [`registry`] behind its runner. The connector's token provider is the
/// one every request uses, so app-only tokens are cached once.
pub fn app_state(
    store: Store,
    clock: Arc<dyn Clock>,
    config: web::WebConfig,
    connector: Connector,
    runner_config: RunnerConfig,
) -> web::AppState {
    let runner = Runner::new(
        store.clone(),
        clock.clone(),
        registry(&connector),
        runner_config,
    );
    web::AppState {
        store,
        clock,
        config: Arc::new(config),
        runner,
        tokens: connector.tokens.clone(),
        connector,
        pushes: Default::default(),
    }
}
