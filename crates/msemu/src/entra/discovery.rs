//! OpenID Connect discovery, the signing keys, and the instance discovery msal calls for
//! authorities it does not know.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::AadError;
use crate::context::Shared;
use crate::server::{Scheme, base_url};

pub async fn openid_configuration(
    State(ctx): State<Shared>,
    Path(tenant): Path<String>,
    scheme: Option<axum::Extension<Scheme>>,
    headers: HeaderMap,
) -> Response {
    ctx.counters.hit("discovery");
    let base = base_url(scheme.as_deref(), &headers);
    let (segment, issuer_tenant) = if super::is_multi_tenant_alias(&tenant) {
        (tenant.to_lowercase(), "{tenantid}".to_string())
    } else {
        match ctx.lock().tenant(&tenant) {
            Some(t) => (t.id.clone(), t.id.clone()),
            None => return AadError::unknown_tenant(&tenant).into_json(ctx.clock.now(), None),
        }
    };
    Json(json!({
        "token_endpoint": format!("{base}/{segment}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{segment}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{issuer_tenant}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{segment}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{segment}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{segment}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce",
            "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{base}/{segment}/kerberos"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }))
    .into_response()
}

pub async fn keys(
    State(ctx): State<Shared>,
    Path(tenant): Path<String>,
    scheme: Option<axum::Extension<Scheme>>,
    headers: HeaderMap,
) -> Response {
    ctx.counters.hit("discovery");
    let base = base_url(scheme.as_deref(), &headers);
    Json(ctx.keys.jwks(&format!("{base}/{tenant}/v2.0"))).into_response()
}

/// `GET /common/discovery/instance?authorization_endpoint=…`: vouches for the emulator as an
/// authority, the answer msal expects before it trusts a host it does not know.
pub async fn instance(
    State(ctx): State<Shared>,
    scheme: Option<axum::Extension<Scheme>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    ctx.counters.hit("discovery");
    let base = base_url(scheme.as_deref(), &headers);
    let host = base.split("://").nth(1).unwrap_or_default().to_string();
    let tenant = q
        .get("authorization_endpoint")
        .and_then(|e| url::Url::parse(e).ok())
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next().map(str::to_string))
        })
        .unwrap_or_else(|| "common".into());
    Json(json!({
        "tenant_discovery_endpoint": format!("{base}/{tenant}/v2.0/.well-known/openid-configuration"),
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    }))
    .into_response()
}
