//! `GET /{tenant}/oauth2/v2.0/authorize` and the sign-in pages behind it.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;

use super::error::AadError;
use super::pages;
use super::scopes::{self, Scopes};
use crate::context::{Ctx, Shared};
use crate::ids;
use crate::state::{AuthCode, State as World};

const SESSION_COOKIE: &str = "msemu_session";

/// An authorize request in progress (between the login, picker and consent pages).
#[derive(Debug, Clone)]
pub struct Flow {
    pub tenant_segment: String,
    pub tenant_id: Option<String>,
    pub client_id: String,
    pub redirect_uri: String,
    pub response_mode: String,
    pub state: Option<String>,
    /// Resource permissions the app asked for (Graph short names, Exchange Online full
    /// URIs), the first resource's first: these need consent.
    pub graph_scopes: Vec<String>,
    /// All requested scopes as they will be recorded in the code.
    pub scopes: Vec<String>,
    pub prompt: Option<String>,
    pub login_hint: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: String,
    pub nonce: Option<String>,
    pub user_id: Option<String>,
}

fn session_user(ctx: &Ctx, headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let value = cookies.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == SESSION_COOKIE).then(|| v.to_string())
    })?;
    ctx.lock().sessions.get(&value).cloned()
}

/// Validates what must be valid before anything may be redirected to `redirect_uri`.
fn validate_client(
    world: &World,
    tenant: &str,
    q: &HashMap<String, String>,
) -> Result<(Option<String>, String, String), AadError> {
    let tenant_id = super::resolve_tenant(world, tenant)?;
    let client_id = q
        .get("client_id")
        .ok_or_else(|| AadError::missing("client_id"))?;
    let app = world
        .apps
        .get(client_id)
        .filter(|a| tenant_id.as_ref().is_none_or(|t| *t == a.tenant_id))
        .ok_or_else(|| AadError::unknown_client(client_id, tenant))?;
    let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
    if !app.redirect_uris.contains(&redirect_uri) {
        return Err(AadError::new(
            "invalid_request",
            50011,
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the \
                 redirect URIs configured for the application '{client_id}'. Make sure the redirect \
                 URI sent in the request matches one added to your application in the Azure portal."
            ),
        ));
    }
    Ok((tenant_id, client_id.clone(), redirect_uri))
}

/// Sends the browser back to the client with `params`, honouring `response_mode`.
fn respond_to_client(flow: &Flow, mut params: Vec<(&str, String)>) -> Response {
    if let Some(s) = &flow.state {
        params.push(("state", s.clone()));
    }
    if flow.response_mode == "form_post" {
        return pages::form_post(&flow.redirect_uri, &params).into_response();
    }
    let Ok(mut url) = url::Url::parse(&flow.redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "invalid redirect_uri").into_response();
    };
    if flow.response_mode == "fragment" {
        let frag = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        url.set_fragment(Some(&frag));
    } else {
        url.query_pairs_mut()
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
    }
    // Entra answers with 302 Found, not axum's default 303.
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

fn error_redirect(flow: &Flow, err: AadError, now: Timestamp) -> Response {
    let description = err.description(&ids::new_guid(), &ids::new_guid(), now);
    respond_to_client(
        flow,
        vec![
            ("error", err.error.to_string()),
            ("error_description", description),
        ],
    )
}

/// The GET /authorize entry point.
pub async fn authorize(
    State(ctx): State<Shared>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    ctx.counters.hit("authorize");
    let now = ctx.clock.now();
    let validated = {
        let world = ctx.lock();
        validate_client(&world, &tenant, &q)
    };
    let (tenant_id, client_id, redirect_uri) = match validated {
        Ok(v) => v,
        Err(e) => return e.into_page(now),
    };
    let mut flow = Flow {
        tenant_segment: tenant.clone(),
        tenant_id,
        client_id: client_id.clone(),
        redirect_uri,
        response_mode: q
            .get("response_mode")
            .cloned()
            .unwrap_or_else(|| "query".into()),
        state: q.get("state").cloned(),
        graph_scopes: vec![],
        scopes: vec![],
        prompt: q.get("prompt").map(|p| p.to_lowercase()),
        login_hint: q.get("login_hint").cloned(),
        code_challenge: q.get("code_challenge").cloned(),
        code_challenge_method: q
            .get("code_challenge_method")
            .cloned()
            .unwrap_or_else(|| "plain".into()),
        nonce: q.get("nonce").cloned(),
        user_id: None,
    };
    if q.get("response_type").map(String::as_str) != Some("code") {
        return error_redirect(
            &flow,
            AadError::new(
                "unsupported_response_type",
                700054,
                "response_type must be 'code' for this emulator.",
            ),
            now,
        );
    }
    if !["S256", "plain"].contains(&flow.code_challenge_method.as_str()) {
        return error_redirect(
            &flow,
            AadError::new(
                "invalid_request",
                501491,
                "Invalid size of Code_Challenge parameter or unsupported code_challenge_method.",
            ),
            now,
        );
    }
    let Some(raw_scope) = q.get("scope") else {
        return error_redirect(&flow, AadError::missing("scope"), now);
    };
    let parsed = Scopes::parse(raw_scope);
    {
        let world = ctx.lock();
        let Some(app) = world.apps.get(&client_id) else {
            return AadError::unknown_client(&client_id, &tenant).into_page(now);
        };
        let mut graph = parsed.graph.clone();
        if parsed.graph_default {
            for p in &app.delegated_permissions {
                if scopes::outlook_resource(p).is_none() && !scopes::contains(&graph, p) {
                    graph.push(p.clone());
                }
            }
        }
        let graph = parsed.permissions(graph);
        if let Some(bad) = graph
            .iter()
            .find(|s| !scopes::contains(&app.delegated_permissions, s))
            .or(parsed.other_resources.first())
        {
            let err = AadError::new(
                "invalid_scope",
                70011,
                format!(
                    "The provided request must include a 'scope' input parameter. The provided \
                     value for the input parameter 'scope' is not valid. The scope {bad} is not \
                     configured for this application."
                ),
            );
            drop(world);
            return error_redirect(&flow, err, now);
        }
        flow.scopes = graph
            .iter()
            .cloned()
            .chain(parsed.oidc.iter().cloned())
            .collect();
        flow.graph_scopes = graph;
    }

    let session = session_user(&ctx, &headers);
    let hinted = flow.login_hint.as_ref().and_then(|hint| {
        let world = ctx.lock();
        world
            .user_by_upn(hint)
            .filter(|u| flow.tenant_id.as_ref().is_none_or(|t| *t == u.tenant_id))
            .map(|u| u.id.clone())
    });
    if ctx.options.auto_consent
        && let Some(user_id) = hinted
    {
        grant_consent(&ctx, &flow, &user_id);
        return issue_code(&ctx, &flow, &user_id, now);
    }
    match flow.prompt.as_deref() {
        Some("none") => match session {
            Some(user_id) => finish(&ctx, flow, user_id, now),
            None => error_redirect(
                &flow,
                AadError::new(
                    "login_required",
                    50058,
                    "A silent sign-in request was sent but no user is signed in.",
                ),
                now,
            ),
        },
        Some("login") => show_login(&ctx, flow, None),
        Some("select_account") => match session {
            Some(user_id) => {
                let accounts = {
                    let world = ctx.lock();
                    world
                        .users
                        .get(&user_id)
                        .map(|u| vec![(u.upn.clone(), u.display_name.clone())])
                        .unwrap_or_default()
                };
                let flow_id = store_flow(&ctx, flow.clone());
                pages::account_picker(&flow.tenant_segment, &flow_id, &accounts).into_response()
            }
            None => show_login(&ctx, flow, None),
        },
        _ => match session {
            Some(user_id) => finish(&ctx, flow, user_id, now),
            None => show_login(&ctx, flow, None),
        },
    }
}

fn store_flow(ctx: &Ctx, flow: Flow) -> String {
    let id = ids::new_token("flow.", 18);
    ctx.lock().flows.insert(id.clone(), flow);
    id
}

fn app_name(ctx: &Ctx, client_id: &str) -> String {
    ctx.lock()
        .apps
        .get(client_id)
        .map(|a| a.display_name.clone())
        .unwrap_or_default()
}

fn show_login(ctx: &Ctx, flow: Flow, error: Option<&str>) -> Response {
    let name = app_name(ctx, &flow.client_id);
    let hint = flow.login_hint.clone().unwrap_or_default();
    let tenant = flow.tenant_segment.clone();
    let flow_id = store_flow(ctx, flow);
    pages::login_page(&tenant, &flow_id, &name, &hint, error).into_response()
}

/// Graph permissions of the flow the user has not consented to yet.
fn missing_consent(world: &World, flow: &Flow, user_id: &str) -> Vec<String> {
    let admin = world
        .apps
        .get(&flow.client_id)
        .is_some_and(|a| a.admin_consent);
    if admin {
        return vec![];
    }
    flow.graph_scopes
        .iter()
        .filter(|s| {
            !world.consents.contains(&(
                flow.client_id.clone(),
                user_id.to_string(),
                scopes::permission_key(s).to_lowercase(),
            ))
        })
        .cloned()
        .collect()
}

fn grant_consent(ctx: &Ctx, flow: &Flow, user_id: &str) {
    let mut world = ctx.lock();
    for s in &flow.graph_scopes {
        world.consents.insert((
            flow.client_id.clone(),
            user_id.to_string(),
            scopes::permission_key(s).to_lowercase(),
        ));
    }
}

/// The user is known: show the consent page if needed, else redirect with a code.
fn finish(ctx: &Ctx, mut flow: Flow, user_id: String, now: Timestamp) -> Response {
    let (missing, upn) = {
        let world = ctx.lock();
        (
            missing_consent(&world, &flow, &user_id),
            world
                .users
                .get(&user_id)
                .map(|u| u.upn.clone())
                .unwrap_or_default(),
        )
    };
    let force = flow.prompt.as_deref() == Some("consent");
    if missing.is_empty() && !force {
        return issue_code(ctx, &flow, &user_id, now);
    }
    if flow.prompt.as_deref() == Some("none") {
        return error_redirect(
            &flow,
            AadError::new(
                "consent_required",
                65001,
                format!(
                    "The user or administrator has not consented to use the application with ID \
                     '{}'. Send an interactive authorization request for this user and resource.",
                    flow.client_id
                ),
            ),
            now,
        );
    }
    let name = app_name(ctx, &flow.client_id);
    flow.user_id = Some(user_id);
    let tenant = flow.tenant_segment.clone();
    let scopes = flow.graph_scopes.clone();
    let flow_id = store_flow(ctx, flow);
    pages::consent_page(&tenant, &flow_id, &name, &upn, &scopes).into_response()
}

fn issue_code(ctx: &Ctx, flow: &Flow, user_id: &str, now: Timestamp) -> Response {
    let code = ids::new_token("1.AVEA", 96);
    let mut world = ctx.lock();
    let tenant_id = world
        .users
        .get(user_id)
        .map(|u| u.tenant_id.clone())
        .unwrap_or_default();
    world.codes.insert(
        code.clone(),
        AuthCode {
            client_id: flow.client_id.clone(),
            tenant_segment: flow.tenant_segment.clone(),
            tenant_id,
            user_id: user_id.to_string(),
            redirect_uri: flow.redirect_uri.clone(),
            scopes: flow.scopes.clone(),
            code_challenge: flow.code_challenge.clone(),
            code_challenge_method: flow.code_challenge_method.clone(),
            nonce: flow.nonce.clone(),
            issued: now,
            redeemed: false,
        },
    );
    drop(world);
    respond_to_client(
        flow,
        vec![("code", code), ("session_state", ids::new_guid())],
    )
}

fn take_flow(ctx: &Ctx, id: &str) -> Option<Flow> {
    ctx.lock().flows.remove(id)
}

fn flow_expired(now: Timestamp) -> Response {
    AadError::new(
        "invalid_request",
        50058,
        "The sign-in session has expired or is unknown. Start the sign-in again.",
    )
    .into_page(now)
}

#[derive(Deserialize)]
pub struct LoginForm {
    flow: String,
    login: String,
    passwd: String,
}

/// POST of the login form.
pub async fn login(State(ctx): State<Shared>, Form(form): Form<LoginForm>) -> Response {
    ctx.counters.hit("authorize");
    let now = ctx.clock.now();
    let Some(flow) = take_flow(&ctx, &form.flow) else {
        return flow_expired(now);
    };
    let user = {
        let world = ctx.lock();
        world
            .user_by_upn(&form.login)
            .filter(|u| flow.tenant_id.as_ref().is_none_or(|t| *t == u.tenant_id))
            .filter(|u| u.password == form.passwd)
            .map(|u| u.id.clone())
    };
    let Some(user_id) = user else {
        let mut flow = flow;
        flow.login_hint = Some(form.login);
        return show_login(
            &ctx,
            flow,
            Some("AADSTS50126: Error validating credentials due to invalid username or password."),
        );
    };
    let session = ids::new_token("", 24);
    ctx.lock().sessions.insert(session.clone(), user_id.clone());
    let mut resp = finish(&ctx, flow, user_id, now);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax"
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

#[derive(Deserialize)]
pub struct ConsentForm {
    flow: String,
    decision: String,
}

/// POST of the consent page.
pub async fn consent(State(ctx): State<Shared>, Form(form): Form<ConsentForm>) -> Response {
    ctx.counters.hit("authorize");
    let now = ctx.clock.now();
    let Some(flow) = take_flow(&ctx, &form.flow) else {
        return flow_expired(now);
    };
    let Some(user_id) = flow.user_id.clone() else {
        return flow_expired(now);
    };
    if form.decision != "accept" {
        return error_redirect(
            &flow,
            AadError::new(
                "access_denied",
                65004,
                "User declined to consent to access the app.",
            ),
            now,
        );
    }
    grant_consent(&ctx, &flow, &user_id);
    issue_code(&ctx, &flow, &user_id, now)
}

#[derive(Deserialize)]
pub struct PickForm {
    flow: String,
    account: String,
}

/// POST of the account picker: a known account continues, "another account" shows login.
pub async fn select_account(
    State(ctx): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<PickForm>,
) -> Response {
    ctx.counters.hit("authorize");
    let now = ctx.clock.now();
    let Some(mut flow) = take_flow(&ctx, &form.flow) else {
        return flow_expired(now);
    };
    let session = session_user(&ctx, &headers);
    let picked = session.filter(|uid| {
        ctx.lock()
            .users
            .get(uid)
            .is_some_and(|u| u.upn.eq_ignore_ascii_case(&form.account))
    });
    match picked {
        Some(user_id) => finish(&ctx, flow, user_id, now),
        None => {
            if !form.account.is_empty() {
                flow.login_hint = Some(form.account);
            }
            show_login(&ctx, flow, None)
        }
    }
}
