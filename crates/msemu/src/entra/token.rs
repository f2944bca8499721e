//! `POST /{tenant}/oauth2/v2.0/token`: authorization_code, refresh_token and
//! client_credentials grants.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jiff::Timestamp;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::GRAPH_APP_ID;
use super::error::AadError;
use super::scopes::{self, Scopes};
use crate::context::{Ctx, Shared};
use crate::faults::{FaultAction, retry_after_value};
use crate::ids;
use crate::server::{DropConnection, Scheme, base_url};
use crate::state::{App, RefreshGrant, State as World};

/// Client credentials as presented: body parameters or HTTP Basic.
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> (Option<String>, Option<String>) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (id, secret) = s.split_once(':')?;
            let dec = |x: &str| {
                percent_encoding::percent_decode_str(&x.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            Some((dec(id), dec(secret)))
        });
    match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            form.get("client_id").cloned(),
            form.get("client_secret").cloned(),
        ),
    }
}

/// A client assertion (certificate credential) from the body, if any.
fn client_assertion(form: &HashMap<String, String>) -> Result<Option<&str>, AadError> {
    match (
        form.get("client_assertion_type"),
        form.get("client_assertion"),
    ) {
        (None, None) => Ok(None),
        (Some(t), Some(a)) if t == super::assertion::ASSERTION_TYPE => Ok(Some(a.as_str())),
        (Some(t), Some(_)) => Err(AadError::new(
            "invalid_request",
            50027,
            format!(
                "Invalid JWT token. The client_assertion_type '{t}' is not supported; use '{}'.",
                super::assertion::ASSERTION_TYPE
            ),
        )),
        (None, Some(_)) => Err(AadError::missing("client_assertion_type")),
        (Some(_), None) => Err(AadError::missing("client_assertion")),
    }
}

fn authenticate_client(
    app: &App,
    secret: Option<&str>,
    assertion: Option<(&str, &[String])>,
    now: Timestamp,
) -> Result<(), AadError> {
    if let Some((jwt, audiences)) = assertion {
        if !app.is_confidential() {
            return Err(AadError::new(
                "invalid_client",
                700025,
                "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
            )
            .status(StatusCode::BAD_REQUEST));
        }
        return super::assertion::verify(app, jwt, audiences, now);
    }
    if !app.is_confidential() {
        return match secret {
            Some(_) => Err(AadError::new(
                "invalid_client",
                700025,
                "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
            )
            .status(StatusCode::BAD_REQUEST)),
            None => Ok(()),
        };
    }
    let Some(secret) = secret else {
        return Err(AadError::new(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    };
    match app.secrets.iter().find(|s| s.value == secret) {
        None => Err(AadError::new(
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the \
                 client secret value, not the client secret ID, for a secret added to app '{}'.",
                app.client_id
            ),
        )),
        Some(s) if s.expires.is_some_and(|e| e <= now) => Err(AadError::new(
            "invalid_client",
            7000222,
            format!(
                "The provided client secret keys for app '{}' are expired. Visit the Azure portal \
                 to create new keys for your app: https://aka.ms/NewClientSecret, or consider using \
                 certificate credentials for added security: https://aka.ms/certCreds.",
                app.client_id
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// The one resource an access token is for, and its permissions: Entra issues a token
/// for the first resource the scopes name.
struct TokenResource {
    /// The Exchange Online resource as the client named it; `None` for Graph.
    outlook: Option<&'static str>,
    /// The token's `scp`: short names.
    scp: Vec<String>,
    /// The response's `scope`: Graph permissions as short names, others as full URIs.
    response_scopes: Vec<String>,
}

impl TokenResource {
    fn of(granted: &[String]) -> TokenResource {
        let permissions: Vec<&String> = granted
            .iter()
            .filter(|s| !scopes::OIDC.contains(&s.to_lowercase().as_str()))
            .collect();
        let outlook = permissions
            .first()
            .and_then(|s| scopes::outlook_resource(s));
        let mine: Vec<&String> = permissions
            .into_iter()
            .filter(|s| scopes::outlook_resource(s).is_some() == outlook.is_some())
            .collect();
        TokenResource {
            outlook,
            scp: mine
                .iter()
                .map(|s| scopes::short_name(s).to_string())
                .collect(),
            response_scopes: mine
                .iter()
                .map(|s| match outlook {
                    Some(_) => s.to_string(),
                    None => scopes::short_name(s).to_string(),
                })
                .collect(),
        }
    }

    /// The `aud` claim: Graph's application id, or Exchange Online's resource as requested
    /// (`https://outlook.office.com`).
    fn audience(&self) -> &'static str {
        self.outlook.unwrap_or(GRAPH_APP_ID)
    }
}

/// The resource scopes a token request names, checked against the user's consents:
/// `.default` stands for the granted Graph permissions; the first resource named comes first.
fn requested_permissions(
    world: &World,
    app: &App,
    user_id: &str,
    p: &Scopes,
    granted: &[String],
) -> Result<Vec<String>, AadError> {
    let mut graph = p.graph.clone();
    if p.graph_default {
        for s in granted {
            if !scopes::OIDC.contains(&s.to_lowercase().as_str())
                && scopes::outlook_resource(s).is_none()
                && !scopes::contains(&graph, s)
            {
                graph.push(s.clone());
            }
        }
    }
    let permissions = p.permissions(graph);
    let consented = |s: &String| {
        (app.admin_consent && scopes::contains(&app.delegated_permissions, s))
            || world.consents.contains(&(
                app.client_id.clone(),
                user_id.to_string(),
                scopes::permission_key(s).to_lowercase(),
            ))
    };
    if let Some(missing) = permissions.iter().find(|s| !consented(s)) {
        return Err(AadError::new(
            "invalid_grant",
            65001,
            format!(
                "The user or administrator has not consented to use the application with ID \
                 '{}' named '{}'. Send an interactive authorization request for this user and \
                 resource. (scope: {missing})",
                app.client_id, app.display_name
            ),
        )
        .suberror("consent_required"));
    }
    Ok(permissions)
}

/// Tokens to issue for a user grant.
struct UserGrant<'a> {
    app: &'a App,
    tenant_id: String,
    user_id: String,
    scopes: Vec<String>,
    nonce: Option<String>,
}

fn mint_user_tokens(
    ctx: &Ctx,
    world: &mut World,
    g: UserGrant<'_>,
    issuer_base: &str,
    now: Timestamp,
    want_client_info: bool,
) -> Value {
    let lifetime = world.lifetimes.access_token;
    let exp = now.as_second() + lifetime.as_secs();
    let user = world.users.get(&g.user_id).cloned();
    let (upn, name) = user.map(|u| (u.upn, u.display_name)).unwrap_or_default();
    let resource = TokenResource::of(&g.scopes);
    let access = ctx.keys.sign(&json!({
        "aud": resource.audience(),
        "iss": format!("https://sts.windows.net/{}/", g.tenant_id),
        "iat": now.as_second(), "nbf": now.as_second(), "exp": exp,
        "tid": g.tenant_id, "oid": g.user_id, "sub": g.user_id,
        "upn": upn, "unique_name": upn, "name": name,
        "appid": g.app.client_id, "app_displayname": g.app.display_name,
        "scp": resource.scp.join(" "), "idtyp": "user", "ver": "1.0",
        "uti": ids::new_token("", 16),
    }));
    let has = |s: &str| g.scopes.iter().any(|x| x.eq_ignore_ascii_case(s));
    let mut scope_out: Vec<String> = resource.response_scopes;
    for s in ["profile", "openid", "email"] {
        if has(s) {
            scope_out.push(s.to_string());
        }
    }
    let mut body = json!({
        "token_type": "Bearer",
        "scope": scope_out.join(" "),
        "expires_in": lifetime.as_secs(),
        "ext_expires_in": lifetime.as_secs(),
        "access_token": access,
    });
    if has("offline_access") {
        let rt = ids::new_token("1.AVEA", 160);
        world.refresh_tokens.insert(
            rt.clone(),
            RefreshGrant {
                client_id: g.app.client_id.clone(),
                tenant_id: g.tenant_id.clone(),
                user_id: g.user_id.clone(),
                scopes: g.scopes.clone(),
                issued: now,
                used: false,
                revoked: false,
            },
        );
        crate::json::set(&mut body, "refresh_token", json!(rt));
    }
    if has("openid") {
        let mut claims = json!({
            "ver": "2.0",
            "iss": format!("{issuer_base}/{}/v2.0", g.tenant_id),
            "sub": g.user_id, "aud": g.app.client_id,
            "iat": now.as_second(), "nbf": now.as_second(), "exp": exp,
            "name": name, "preferred_username": upn,
            "oid": g.user_id, "tid": g.tenant_id,
        });
        if let Some(n) = g.nonce {
            crate::json::set(&mut claims, "nonce", json!(n));
        }
        if has("email") {
            crate::json::set(&mut claims, "email", json!(upn));
        }
        crate::json::set(&mut body, "id_token", json!(ctx.keys.sign(&claims)));
    }
    if want_client_info {
        let info = json!({"uid": g.user_id, "utid": g.tenant_id}).to_string();
        crate::json::set(
            &mut body,
            "client_info",
            json!(URL_SAFE_NO_PAD.encode(info)),
        );
    }
    body
}

fn pkce_matches(challenge: &str, method: &str, verifier: &str) -> bool {
    match method {
        "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge,
        _ => verifier == challenge,
    }
}

/// The token endpoint.
pub async fn token(
    State(ctx): State<Shared>,
    Path(tenant): Path<String>,
    scheme: Option<axum::Extension<Scheme>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    ctx.counters.hit("token");
    let path = format!("/{tenant}/oauth2/v2.0/token");
    let decision = ctx.faults.decide("POST", &path);
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    let now = ctx.clock.now();
    if let Some(action) = decision.action {
        ctx.counters.fault_fired();
        return identity_fault(action, now);
    }
    let correlation = headers
        .get("client-request-id")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let base = base_url(scheme.as_deref(), &headers);
    match grant(&ctx, &tenant, &headers, &form, &base, now) {
        Ok(body) => {
            let mut resp = (StatusCode::OK, Json(body)).into_response();
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store, no-cache"),
            );
            resp
        }
        Err(e) => e.into_json(now, correlation.as_deref()),
    }
}

/// A fault on an identity endpoint, in Entra's error shape.
pub fn identity_fault(action: FaultAction, now: Timestamp) -> Response {
    let (status, retry) = match action {
        FaultAction::Drop => {
            let mut r = StatusCode::OK.into_response();
            r.extensions_mut().insert(DropConnection);
            return r;
        }
        FaultAction::Throttle { retry_after } => (429, Some(retry_after)),
        FaultAction::Status {
            status,
            retry_after,
        } => (status, retry_after),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut resp = AadError::new(
        "temporarily_unavailable",
        if status == StatusCode::TOO_MANY_REQUESTS {
            50196
        } else {
            90033
        },
        "The service is temporarily unavailable. Please try again later.",
    )
    .status(status)
    .into_json(now, None);
    if let Some(r) = retry
        && let Ok(v) = HeaderValue::from_str(&retry_after_value(r))
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn grant(
    ctx: &Ctx,
    tenant: &str,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    base: &str,
    now: Timestamp,
) -> Result<Value, AadError> {
    let mut world = ctx.lock();
    let tenant_id = super::resolve_tenant(&world, tenant)?;
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| AadError::missing("grant_type"))?
        .clone();
    let (client_id, secret) = client_credentials(headers, form);
    let client_id = client_id.ok_or_else(|| AadError::missing("client_id"))?;
    let app = world
        .apps
        .get(&client_id)
        .filter(|a| tenant_id.as_ref().is_none_or(|t| *t == a.tenant_id))
        .cloned()
        .ok_or_else(|| AadError::unknown_client(&client_id, tenant))?;
    let audiences = [
        format!("{base}/{tenant}/oauth2/v2.0/token"),
        format!("{base}/{}/oauth2/v2.0/token", app.tenant_id),
    ];
    let assertion = client_assertion(form)?.map(|jwt| (jwt, &audiences[..]));
    authenticate_client(&app, secret.as_deref(), assertion, now)?;
    let want_client_info = form.get("client_info").map(String::as_str) == Some("1");

    match grant_type.as_str() {
        "authorization_code" => {
            let code = form.get("code").ok_or_else(|| AadError::missing("code"))?;
            let stored = world
                .codes
                .get(code)
                .cloned()
                .filter(|c| c.client_id == client_id);
            let Some(stored) = stored else {
                return Err(AadError::new(
                    "invalid_grant",
                    70000,
                    "The provided value for the 'code' parameter is not valid.",
                ));
            };
            if stored.redeemed {
                return Err(AadError::new(
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new valid \
                     code or use an existing refresh token.",
                ));
            }
            if now.duration_since(stored.issued) > world.lifetimes.authorization_code {
                return Err(AadError::new(
                    "invalid_grant",
                    70008,
                    "The provided authorization code or refresh token has expired due to \
                     inactivity. Send a new interactive authorization request for this user and \
                     resource.",
                ));
            }
            if tenant_id.is_some_and(|t| t != stored.tenant_id)
                && !stored.tenant_segment.eq_ignore_ascii_case(tenant)
            {
                return Err(AadError::new(
                    "invalid_grant",
                    700005,
                    "Provided Authorization Code is intended to use against other tenant, thus rejected.",
                ));
            }
            let redirect = form
                .get("redirect_uri")
                .ok_or_else(|| AadError::missing("redirect_uri"))?;
            if *redirect != stored.redirect_uri {
                return Err(AadError::new(
                    "invalid_grant",
                    50011,
                    format!(
                        "The redirect URI '{redirect}' specified in the request does not match the \
                         redirect URI used to obtain the authorization code."
                    ),
                ));
            }
            if let Some(challenge) = &stored.code_challenge {
                let ok = form
                    .get("code_verifier")
                    .is_some_and(|v| pkce_matches(challenge, &stored.code_challenge_method, v));
                if !ok {
                    return Err(AadError::new(
                        "invalid_grant",
                        501481,
                        "The Code_Verifier does not match the code_challenge supplied in the \
                         authorization request.",
                    ));
                }
            }
            // The token is for the first resource the authorize request named, unless the
            // redemption names another one the user consented to.
            let mut granted = stored.scopes.clone();
            if let Some(requested) = form.get("scope") {
                let p = Scopes::parse(requested);
                if p.resource_count() > 1 {
                    return Err(AadError::new(
                        "invalid_request",
                        700022,
                        "The provided value for the input parameter scope is not valid because it \
                         contains more than one resource.",
                    ));
                }
                let stored_outlook = TokenResource::of(&stored.scopes).outlook.is_some();
                let other_resource = if stored_outlook {
                    !p.graph.is_empty() || p.graph_default
                } else {
                    !p.outlook.is_empty()
                };
                if other_resource {
                    let mut permissions =
                        requested_permissions(&world, &app, &stored.user_id, &p, &stored.scopes)?;
                    permissions.extend(
                        stored
                            .scopes
                            .iter()
                            .filter(|s| !scopes::contains(&permissions, s))
                            .cloned()
                            .collect::<Vec<_>>(),
                    );
                    granted = permissions;
                }
            }
            if let Some(c) = world.codes.get_mut(code) {
                c.redeemed = true;
            }
            Ok(mint_user_tokens(
                ctx,
                &mut world,
                UserGrant {
                    app: &app,
                    tenant_id: stored.tenant_id.clone(),
                    user_id: stored.user_id.clone(),
                    scopes: granted,
                    nonce: stored.nonce.clone(),
                },
                base,
                now,
                want_client_info,
            ))
        }
        "refresh_token" => {
            let rt = form
                .get("refresh_token")
                .ok_or_else(|| AadError::missing("refresh_token"))?;
            let Some(g) = world.refresh_tokens.get(rt).cloned() else {
                return Err(AadError::new(
                    "invalid_grant",
                    9002313,
                    "Invalid request. Request is malformed or invalid.",
                ));
            };
            if g.client_id != client_id {
                return Err(AadError::new(
                    "invalid_grant",
                    70000,
                    "The refresh token was issued to a different client.",
                ));
            }
            if g.used {
                return Err(AadError::new(
                    "invalid_grant",
                    70008,
                    "The provided authorization code or refresh token has expired due to \
                     inactivity. Send a new interactive authorization request for this user and \
                     resource. (msemu: this refresh token was already exchanged; strict rotation \
                     accepts each refresh token once.)",
                ));
            }
            let valid_from = world
                .users
                .get(&g.user_id)
                .and_then(|u| u.tokens_valid_from);
            if let Some(from) = valid_from.filter(|f| g.revoked || *f > g.issued) {
                return Err(AadError::new(
                    "invalid_grant",
                    50173,
                    format!(
                        "The provided grant has expired due to it being revoked, a fresh auth token \
                         is needed. The user might have changed or reset their password. The grant \
                         was issued on '{}' and the TokensValidFrom date (before which tokens are not \
                         valid) for this user is '{}'.",
                        g.issued, from
                    ),
                ));
            }
            let inactive = now.duration_since(g.issued);
            if inactive > world.lifetimes.refresh_token_inactivity {
                let secs = world.lifetimes.refresh_token_inactivity.as_secs();
                return Err(AadError::new(
                    "invalid_grant",
                    700082,
                    format!(
                        "The refresh token has expired due to inactivity. The token was issued on \
                         {} and was inactive for {}.{:02}:{:02}:{:02}.",
                        g.issued,
                        secs / 86400,
                        (secs % 86400) / 3600,
                        (secs % 3600) / 60,
                        secs % 60
                    ),
                ));
            }
            let scopes = match form.get("scope") {
                None => g.scopes.clone(),
                Some(raw) => {
                    let p = Scopes::parse(raw);
                    requested_permissions(&world, &app, &g.user_id, &p, &g.scopes)?
                        .into_iter()
                        .chain(p.oidc)
                        .collect()
                }
            };
            if let Some(old) = world.refresh_tokens.get_mut(rt) {
                old.used = true;
            }
            let mut scopes = scopes;
            // Rotation hands out a new refresh token whenever the grant had offline access.
            if g.scopes.iter().any(|s| s == "offline_access")
                && !scopes.iter().any(|s| s == "offline_access")
            {
                scopes.push("offline_access".into());
            }
            Ok(mint_user_tokens(
                ctx,
                &mut world,
                UserGrant {
                    app: &app,
                    tenant_id: g.tenant_id.clone(),
                    user_id: g.user_id.clone(),
                    scopes,
                    nonce: None,
                },
                base,
                now,
                want_client_info,
            ))
        }
        "client_credentials" => {
            let Some(tenant_id) = tenant_id else {
                return Err(AadError::new(
                    "invalid_request",
                    90130,
                    "Application is not supported over the /common or /consumers endpoints. \
                     Please use the /organizations or tenant-specific endpoint.",
                ));
            };
            let raw = form
                .get("scope")
                .ok_or_else(|| AadError::missing("scope"))?;
            let p = Scopes::parse(raw);
            if !p.outlook.is_empty() {
                return Err(AadError::new(
                    "invalid_resource",
                    500011,
                    format!(
                        "The resource principal named {} was not found in the tenant named \
                         {tenant}. (msemu: app-only Exchange Online tokens are not emulated.)",
                        p.outlook.join(" ")
                    ),
                ));
            }
            if !p.graph_default || !p.graph.is_empty() || !p.oidc.is_empty() {
                return Err(AadError::new(
                    "invalid_scope",
                    1002012,
                    format!(
                        "The provided value for scope {raw} is not valid. Client credential flows \
                         must have a scope value with /.default suffixed to the resource identifier \
                         (application ID URI)."
                    ),
                ));
            }
            if !p.other_resources.is_empty() {
                return Err(AadError::new(
                    "invalid_resource",
                    500011,
                    format!(
                        "The resource principal named {} was not found in the tenant named {tenant}.",
                        p.other_resources.join(" ")
                    ),
                ));
            }
            let lifetime = world.lifetimes.access_token;
            let access = ctx.keys.sign(&json!({
                "aud": GRAPH_APP_ID,
                "iss": format!("https://sts.windows.net/{tenant_id}/"),
                "iat": now.as_second(), "nbf": now.as_second(),
                "exp": now.as_second() + lifetime.as_secs(),
                "tid": tenant_id, "oid": ids::new_guid(), "sub": app.client_id,
                "appid": app.client_id, "app_displayname": app.display_name,
                "roles": app.application_roles, "idtyp": "app", "ver": "1.0",
                "uti": ids::new_token("", 16),
            }));
            Ok(json!({
                "token_type": "Bearer",
                "expires_in": lifetime.as_secs(),
                "ext_expires_in": lifetime.as_secs(),
                "access_token": access,
            }))
        }
        other => Err(AadError::new(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}
