//! The Microsoft identity platform v2.0 endpoints: authorize (with HTML login, consent and
//! account-picker pages), token, OpenID discovery, keys and instance discovery.

pub mod assertion;
pub mod authorize;
pub mod discovery;
pub mod error;
pub mod keys;
pub mod pages;
pub mod scopes;
pub mod token;

use axum::Router;
use axum::routing::{get, post};

use crate::context::Shared;

/// The audience (`aud`) of Graph access tokens: Graph's well-known application id.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize::authorize))
        .route("/{tenant}/oauth2/v2.0/login", post(authorize::login))
        .route("/{tenant}/oauth2/v2.0/consent", post(authorize::consent))
        .route(
            "/{tenant}/oauth2/v2.0/select_account",
            post(authorize::select_account),
        )
        .route("/{tenant}/oauth2/v2.0/token", post(token::token))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(discovery::keys))
        .route("/common/discovery/instance", get(discovery::instance))
}

/// Whether a tenant segment is one of the multi-tenant aliases rather than a directory.
pub fn is_multi_tenant_alias(segment: &str) -> bool {
    ["common", "organizations", "consumers"]
        .iter()
        .any(|a| a.eq_ignore_ascii_case(segment))
}

/// The tenant id a URL's tenant segment names: `None` for a multi-tenant
/// alias, AADSTS90002 for a tenant the emulator does not know.
fn resolve_tenant(
    world: &crate::state::State,
    tenant: &str,
) -> Result<Option<String>, error::AadError> {
    if is_multi_tenant_alias(tenant) {
        return Ok(None);
    }
    world
        .tenant(tenant)
        .map(|t| Some(t.id.clone()))
        .ok_or_else(|| error::AadError::unknown_tenant(tenant))
}
