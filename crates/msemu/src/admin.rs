//! The admin API under `/_emulator/`, used by tests and scripts to shape the world and
//! observe the emulator. It needs no authentication: the emulator listens on loopback.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::context::{Ctx, Shared};
use crate::faults::FaultRule;
use crate::graph::render;
use crate::seed::SeedMessage;
use crate::state::StateError;

pub fn router() -> Router<Shared> {
    Router::new()
        .route(
            "/_emulator/health",
            get(|| async { Json(json!({"ok": true})) }),
        )
        .route(
            "/_emulator/mailboxes/{mailbox}/messages",
            get(list_messages).post(add_message),
        )
        .route(
            "/_emulator/mailboxes/{mailbox}/folders",
            get(list_folders).post(create_folder),
        )
        .route(
            "/_emulator/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/_emulator/faults/{id}", delete(remove_fault))
        .route("/_emulator/clock", get(clock))
        .route("/_emulator/clock/advance", post(advance_clock))
        .route("/_emulator/users/{upn}/revoke-refresh-tokens", post(revoke))
        .route(
            "/_emulator/token-lifetimes",
            get(get_lifetimes).put(set_lifetimes),
        )
        .route(
            "/_emulator/apps/{client_id}/certificates",
            axum::routing::post(add_certificate),
        )
        .route("/_emulator/counters", get(counters))
        .route("/_emulator/counters/reset", post(reset_counters))
}

/// An admin request that failed, with the HTTP status to answer with.
#[derive(Debug)]
pub struct AdminError {
    pub status: StatusCode,
    pub message: String,
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.message}))).into_response()
    }
}

fn problem(status: StatusCode, message: impl std::fmt::Display) -> AdminError {
    AdminError {
        status,
        message: message.to_string(),
    }
}

fn state_problem(e: StateError) -> AdminError {
    let status = match e {
        StateError::Unknown { .. } => StatusCode::NOT_FOUND,
        StateError::FolderExists(_) => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    problem(status, e)
}

fn mailbox_id(ctx: &Ctx, key: &str) -> Result<String, AdminError> {
    ctx.lock()
        .mailbox_by_key(key)
        .map(|m| m.id.clone())
        .ok_or_else(|| problem(StatusCode::NOT_FOUND, format!("unknown mailbox `{key}`")))
}

/// Body of `POST /_emulator/mailboxes/{mailbox}/messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// Folder path below the root, e.g. `Inbox` or `Inbox/Invoices` (created if missing).
    pub folder: String,
    #[serde(flatten)]
    pub message: SeedMessage,
}

/// A stored message as the admin API reports it.
#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct MessageInfo {
    pub id: String,
    pub immutable_id: String,
    pub folder_id: String,
    pub folder_path: String,
    pub subject: String,
    pub internet_message_id: Option<String>,
    pub received: String,
    pub is_read: bool,
    pub categories: Vec<String>,
    pub attachments: usize,
}

/// A folder as the admin API reports it.
#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct FolderInfo {
    pub id: String,
    pub path: String,
    pub display_name: String,
    pub parent_id: Option<String>,
    pub well_known_name: Option<String>,
    pub hidden: bool,
    pub total: usize,
    pub unread: usize,
}

/// Adds a message to a mailbox folder (see [`NewMessage`]).
pub fn add_message_to(
    ctx: &Ctx,
    mailbox: &str,
    req: &NewMessage,
) -> Result<MessageInfo, AdminError> {
    let mb = mailbox_id(ctx, mailbox)?;
    let now = ctx.clock.now();
    let mut world = ctx.lock();
    let folder = world
        .ensure_folder_path(&mb, &req.folder)
        .map_err(state_problem)?;
    let id = world
        .add_seed_message(&mb, &folder, &req.message, now)
        .map_err(state_problem)?;
    message_info(&world, &id).ok_or_else(|| problem(StatusCode::INTERNAL_SERVER_ERROR, "lost"))
}

fn message_info(world: &crate::state::State, immutable_id: &str) -> Option<MessageInfo> {
    let m = world.messages.get(immutable_id)?;
    Some(MessageInfo {
        id: m.rest_id.clone(),
        immutable_id: m.immutable_id.clone(),
        folder_id: m.folder_id.clone(),
        folder_path: world.folder_path(&m.folder_id),
        subject: m.props.subject.clone(),
        internet_message_id: m.props.internet_message_id.clone(),
        received: render::time(m.received),
        is_read: m.is_read,
        categories: m.categories.clone(),
        attachments: m.attachments.len(),
    })
}

async fn add_message(
    State(ctx): State<Shared>,
    Path(mailbox): Path<String>,
    Json(req): Json<NewMessage>,
) -> Response {
    ctx.counters.hit("admin");
    match add_message_to(&ctx, &mailbox, &req) {
        Ok(info) => (StatusCode::CREATED, Json(info)).into_response(),
        Err(r) => r.into_response(),
    }
}

/// Every message of a mailbox with its folder path.
pub fn messages_of(ctx: &Ctx, mailbox: &str) -> Result<Vec<MessageInfo>, AdminError> {
    let mb = mailbox_id(ctx, mailbox)?;
    let world = ctx.lock();
    Ok(world
        .messages_of(&mb)
        .iter()
        .filter_map(|m| message_info(&world, &m.immutable_id))
        .collect())
}

async fn list_messages(State(ctx): State<Shared>, Path(mailbox): Path<String>) -> Response {
    ctx.counters.hit("admin");
    match messages_of(&ctx, &mailbox) {
        Ok(v) => Json(v).into_response(),
        Err(r) => r.into_response(),
    }
}

/// Every folder of a mailbox (depth first) with its path.
pub fn folders_of(ctx: &Ctx, mailbox: &str) -> Result<Vec<FolderInfo>, AdminError> {
    let mb = mailbox_id(ctx, mailbox)?;
    let world = ctx.lock();
    let root = world
        .mailboxes
        .get(&mb)
        .map(|m| m.root_folder.clone())
        .unwrap_or_default();
    let mut out = vec![];
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        let children = world.children(&p, true);
        for f in children.iter().rev() {
            stack.push(f.id.clone());
        }
        for f in children {
            let (unread, total) = world.folder_counts(&f.id);
            out.push(FolderInfo {
                id: f.id.clone(),
                path: world.folder_path(&f.id),
                display_name: f.display_name.clone(),
                parent_id: f.parent_id.clone(),
                well_known_name: f.well_known.clone(),
                hidden: f.hidden,
                total,
                unread,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

async fn list_folders(State(ctx): State<Shared>, Path(mailbox): Path<String>) -> Response {
    ctx.counters.hit("admin");
    match folders_of(&ctx, &mailbox) {
        Ok(v) => Json(v).into_response(),
        Err(r) => r.into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewFolder {
    path: String,
    #[serde(default)]
    hidden: bool,
}

async fn create_folder(
    State(ctx): State<Shared>,
    Path(mailbox): Path<String>,
    Json(req): Json<NewFolder>,
) -> Response {
    ctx.counters.hit("admin");
    let mb = match mailbox_id(&ctx, &mailbox) {
        Ok(m) => m,
        Err(r) => return r.into_response(),
    };
    let mut world = ctx.lock();
    let (parent_path, name) = match req.path.trim_matches('/').rsplit_once('/') {
        Some((p, n)) => (p.to_string(), n.to_string()),
        None => (String::new(), req.path.trim_matches('/').to_string()),
    };
    if name.is_empty() {
        return problem(StatusCode::BAD_REQUEST, "empty folder path").into_response();
    }
    let result = world
        .ensure_folder_path(&mb, &parent_path)
        .and_then(|parent| world.create_folder(&mb, &parent, &name, req.hidden, None));
    match result {
        Ok(id) => {
            let path = world.folder_path(&id);
            (StatusCode::CREATED, Json(json!({"id": id, "path": path}))).into_response()
        }
        Err(e) => state_problem(e).into_response(),
    }
}

async fn list_faults(State(ctx): State<Shared>) -> Response {
    Json(ctx.faults.list()).into_response()
}

async fn add_fault(State(ctx): State<Shared>, Json(rule): Json<FaultRule>) -> Response {
    let id = ctx.faults.add(rule);
    (StatusCode::CREATED, Json(json!({"id": id}))).into_response()
}

async fn clear_faults(State(ctx): State<Shared>) -> Response {
    ctx.faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn remove_fault(State(ctx): State<Shared>, Path(id): Path<u64>) -> Response {
    if ctx.faults.remove(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        problem(StatusCode::NOT_FOUND, format!("no fault {id}")).into_response()
    }
}

fn clock_json(ctx: &Ctx) -> serde_json::Value {
    json!({"now": ctx.clock.now().to_string(), "offset_seconds": ctx.clock.offset().as_secs()})
}

async fn clock(State(ctx): State<Shared>) -> Response {
    Json(clock_json(&ctx)).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: f64,
}

async fn advance_clock(State(ctx): State<Shared>, Json(a): Json<Advance>) -> Response {
    match SignedDuration::try_from_secs_f64(a.seconds) {
        Ok(d) => {
            ctx.clock.advance(d);
            Json(clock_json(&ctx)).into_response()
        }
        Err(e) => problem(StatusCode::BAD_REQUEST, e).into_response(),
    }
}

/// Revokes every refresh token of a user, as "revoke sessions" in Entra does.
pub fn revoke_refresh_tokens(ctx: &Ctx, upn: &str) -> Result<Timestamp, AdminError> {
    let now = ctx.clock.now();
    let mut world = ctx.lock();
    let uid = world
        .user_by_upn(upn)
        .map(|u| u.id.clone())
        .ok_or_else(|| problem(StatusCode::NOT_FOUND, format!("unknown user `{upn}`")))?;
    if let Some(u) = world.users.get_mut(&uid) {
        u.tokens_valid_from = Some(now);
    }
    for g in world.refresh_tokens.values_mut() {
        if g.user_id == uid {
            g.revoked = true;
        }
    }
    Ok(now)
}

/// `POST /_emulator/apps/{client_id}/certificates` `{"pem": …}`: uploads a
/// certificate credential, as under "Certificates & secrets" in Azure.
async fn add_certificate(
    State(ctx): State<Shared>,
    Path(client_id): Path<String>,
    Json(body): Json<crate::seed::SeedCertificate>,
) -> Result<Response, AdminError> {
    let cert = crate::state::AppCertificate::from_pem(&body.pem).map_err(state_problem)?;
    let mut world = ctx.lock();
    let app = world.apps.get_mut(&client_id).ok_or_else(|| {
        state_problem(StateError::Unknown {
            kind: "app",
            name: client_id.clone(),
        })
    })?;
    let answer = json!({
        "x5t#S256": cert.x5t_s256,
        "thumbprint_sha1": cert.sha1_hex,
        "not_before": cert.not_before.to_string(),
        "not_after": cert.not_after.to_string(),
    });
    app.certificates.push(cert);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

async fn revoke(State(ctx): State<Shared>, Path(upn): Path<String>) -> Response {
    match revoke_refresh_tokens(&ctx, &upn) {
        Ok(t) => Json(json!({"tokens_valid_from": t.to_string()})).into_response(),
        Err(r) => r.into_response(),
    }
}

/// Token lifetimes in seconds, as read and written by `/_emulator/token-lifetimes`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifetimeSeconds {
    #[serde(default)]
    pub access_token: Option<i64>,
    #[serde(default)]
    pub refresh_token_inactivity: Option<i64>,
    #[serde(default)]
    pub authorization_code: Option<i64>,
}

fn lifetimes_json(ctx: &Ctx) -> LifetimeSeconds {
    let l = ctx.lock().lifetimes;
    LifetimeSeconds {
        access_token: Some(l.access_token.as_secs()),
        refresh_token_inactivity: Some(l.refresh_token_inactivity.as_secs()),
        authorization_code: Some(l.authorization_code.as_secs()),
    }
}

async fn get_lifetimes(State(ctx): State<Shared>) -> Response {
    Json(lifetimes_json(&ctx)).into_response()
}

async fn set_lifetimes(State(ctx): State<Shared>, Json(l): Json<LifetimeSeconds>) -> Response {
    {
        let mut world = ctx.lock();
        if let Some(s) = l.access_token {
            world.lifetimes.access_token = SignedDuration::from_secs(s);
        }
        if let Some(s) = l.refresh_token_inactivity {
            world.lifetimes.refresh_token_inactivity = SignedDuration::from_secs(s);
        }
        if let Some(s) = l.authorization_code {
            world.lifetimes.authorization_code = SignedDuration::from_secs(s);
        }
    }
    Json(lifetimes_json(&ctx)).into_response()
}

async fn counters(State(ctx): State<Shared>) -> Response {
    Json(ctx.counters.snapshot()).into_response()
}

async fn reset_counters(State(ctx): State<Shared>) -> Response {
    ctx.counters.reset();
    StatusCode::NO_CONTENT.into_response()
}
