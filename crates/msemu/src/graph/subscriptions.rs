//! Change notifications, as Graph documents them (`microsoft-api.md` §4):
//! `POST /subscriptions` on a folder's messages after the validation
//! handshake on `notificationUrl` (and `lifecycleNotificationUrl`), renewal
//! by `PATCH`, `DELETE`, `POST …/reauthorize`; a `created` notification per
//! message that arrives in the folder, posted with the subscription's
//! `clientState`; lifecycle events on demand through the admin API.
//!
//! Deliveries are retried a few times (Graph retries for hours); a
//! subscription waiting for reauthorization holds its notifications back.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::auth::{self, Principal};
use super::error::GraphError;
use super::path::{self, Resource};
use crate::context::{Ctx, Shared};
use crate::ids;
use crate::server::{Scheme, base_url};

/// Graph's longest lifetime for a basic Outlook message subscription.
pub const DEFAULT_MAX_MINUTES: i64 = 10_070;
/// Graph gives the endpoint 10 s to echo the validation token.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(10);
/// And 3 s to accept a notification.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(3);
const DELIVERY_ATTEMPTS: u32 = 4;

#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    pub app_id: String,
    pub tenant_id: String,
    pub mailbox_id: String,
    pub folder_id: String,
    pub resource: String,
    pub change_types: Vec<String>,
    pub notification_url: String,
    pub lifecycle_url: Option<String>,
    pub client_state: Option<String>,
    pub expires: Timestamp,
    /// A `reauthorizationRequired` event was sent: notifications wait for
    /// a reauthorize or a renewal.
    pub paused: bool,
}

impl Subscription {
    fn render(&self) -> Value {
        json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.app_id,
            "changeType": self.change_types.join(","),
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": super::render::time(self.expires),
            "creatorId": self.app_id,
            "latestSupportedTlsVersion": "v1_2",
            "notificationContentType": null,
            "includeResourceData": false,
        })
    }
}

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/v1.0/subscriptions", get(list).post(create))
        .route(
            "/v1.0/subscriptions/{id}",
            get(get_one).patch(renew).delete(remove),
        )
        .route("/v1.0/subscriptions/{id}/reauthorize", post(reauthorize))
}

/// The authenticated caller, or Graph's error for the request.
fn principal(
    ctx: &Ctx,
    headers: &HeaderMap,
    scheme: Option<&Scheme>,
) -> Result<Principal, GraphError> {
    auth::authenticate(
        &ctx.keys,
        headers,
        ctx.clock.now(),
        &base_url(scheme, headers),
    )
}

fn reply(ctx: &Ctx, result: Result<Response, GraphError>) -> Response {
    ctx.counters.hit("subscriptions");
    result.unwrap_or_else(|e| {
        let id = ids::new_guid();
        e.render(ctx.clock.now(), &id, &id)
    })
}

/// A string field of a request body.
fn text<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

fn invalid(message: impl Into<String>) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
}

/// The expiration a request asks for, within Graph's limits.
fn expiration(ctx: &Ctx, body: &Value) -> Result<Timestamp, GraphError> {
    let raw = text(body, "expirationDateTime")
        .ok_or_else(|| invalid("expirationDateTime is a required property."))?;
    let at: Timestamp = raw.parse().map_err(|_| {
        invalid(format!(
            "Cannot convert the literal '{raw}' to the expected type 'Edm.DateTimeOffset'."
        ))
    })?;
    let now = ctx.clock.now();
    let max = ctx.options.subscription_max_minutes;
    if at <= now {
        return Err(invalid(
            "Subscription expiration can only be in the future.",
        ));
    }
    if at > now + SignedDuration::from_mins(max) {
        return Err(invalid(format!(
            "Subscription expiration can only be {max} minutes in the future."
        )));
    }
    Ok(at)
}

fn check_url(ctx: &Ctx, field: &str, raw: &str) -> Result<(), GraphError> {
    let url = url::Url::parse(raw).map_err(|_| invalid(format!("Invalid {field}: '{raw}'.")))?;
    let loopback_http = ctx.options.allow_http_notification_urls
        && url.scheme() == "http"
        && url
            .host_str()
            .is_some_and(|h| matches!(h, "127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() != "https" && !loopback_http {
        return Err(invalid(format!(
            "The {field} must be an HTTPS URL: '{raw}'."
        )));
    }
    Ok(())
}

/// Graph's handshake: POST `{url}?validationToken=…` (text/plain); the
/// endpoint must answer 200 with exactly the token within 10 s.
async fn validate(url: &str) -> Result<(), GraphError> {
    let token = format!(
        "Validation: Testing client application reachability for subscription Request-Id: {}",
        ids::new_guid()
    );
    let mut target = url::Url::parse(url).map_err(|_| invalid("Invalid notificationUrl."))?;
    target
        .query_pairs_mut()
        .append_pair("validationToken", &token);
    let failed = |why: String| {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            format!("Subscription validation request failed. {why}"),
        )
    };
    let response = client()
        .post(target)
        .header("content-type", "text/plain; charset=utf-8")
        .timeout(VALIDATION_TIMEOUT)
        .send()
        .await
        .map_err(|e| {
            failed(format!(
                "Notification endpoint must respond with 200 OK to validation request: {e}"
            ))
        })?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(failed(format!(
            "Notification endpoint must respond with 200 OK to validation request, not {}.",
            response.status()
        )));
    }
    let body = response.text().await.unwrap_or_default();
    if body != token {
        return Err(failed(
            "Response must exactly match validationToken query parameter.".to_owned(),
        ));
    }
    Ok(())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

async fn create(
    State(ctx): State<Shared>,
    scheme: Option<axum::Extension<Scheme>>,
    req: Request,
) -> Response {
    let result = async {
        let (parts, body) = req.into_parts();
        let p = principal(&ctx, &parts.headers, scheme.as_deref())?;
        let body = axum::body::to_bytes(body, 1 << 20)
            .await
            .map_err(|_| invalid("Unreadable body."))?;
        let body: Value = serde_json::from_slice(&body)
            .map_err(|_| invalid("Invalid JSON in the request body."))?;
        let change_types: Vec<String> = text(&body, "changeType")
            .ok_or_else(|| invalid("changeType is a required property."))?
            .split(',')
            .map(|c| c.trim().to_owned())
            .collect();
        if change_types
            .iter()
            .any(|c| !matches!(c.as_str(), "created" | "updated" | "deleted"))
        {
            return Err(invalid(
                "Invalid changeType: use created, updated or deleted.",
            ));
        }
        let notification_url = text(&body, "notificationUrl")
            .ok_or_else(|| invalid("notificationUrl is a required property."))?
            .to_owned();
        check_url(&ctx, "notificationUrl", &notification_url)?;
        let lifecycle_url = text(&body, "lifecycleNotificationUrl").map(str::to_owned);
        if let Some(url) = &lifecycle_url {
            check_url(&ctx, "lifecycleNotificationUrl", url)?;
        }
        let client_state = text(&body, "clientState").map(str::to_owned);
        if client_state
            .as_ref()
            .is_some_and(|c| c.chars().count() > 128)
        {
            return Err(invalid("clientState must be at most 128 characters."));
        }
        let expires = expiration(&ctx, &body)?;
        let resource = text(&body, "resource")
            .ok_or_else(|| invalid("resource is a required property."))?
            .to_owned();
        let segs = path::segments(&resource);
        let Ok((target, Resource::MessageList(Some(chain)))) = path::parse(&segs) else {
            return Err(invalid(format!(
                "Resource '{resource}' is not supported: subscribe to a mail folder's messages."
            )));
        };
        let (mailbox_id, folder_id, tenant_id) = {
            let world = ctx.lock();
            let mailbox = super::resolve_target(&world, &p, &target)?;
            auth::check_mail_access(&p, &mailbox, false)?;
            let folder = super::resolve_chain(&world, &mailbox.id, &chain)?;
            (mailbox.id, folder, mailbox.tenant_id)
        };
        validate(&notification_url).await?;
        if let Some(url) = &lifecycle_url {
            validate(url).await?;
        }
        let subscription = Subscription {
            id: ids::new_guid(),
            app_id: p.client_id().to_owned(),
            tenant_id,
            mailbox_id,
            folder_id,
            resource,
            change_types,
            notification_url,
            lifecycle_url,
            client_state,
            expires,
            paused: false,
        };
        let rendered = subscription.render();
        ctx.lock()
            .subscriptions
            .insert(subscription.id.clone(), subscription);
        Ok((StatusCode::CREATED, axum::Json(rendered)).into_response())
    }
    .await;
    reply(&ctx, result)
}

/// The subscription `id` if the request's caller owns it.
fn callers(
    ctx: &Ctx,
    headers: &HeaderMap,
    scheme: Option<&Scheme>,
    id: &str,
) -> Result<Subscription, GraphError> {
    principal(ctx, headers, scheme).and_then(|p| own(ctx, &p, id))
}

/// The caller's subscription `id` (another app's is not found, as in Graph).
fn own(ctx: &Ctx, p: &Principal, id: &str) -> Result<Subscription, GraphError> {
    ctx.lock()
        .subscriptions
        .get(id)
        .filter(|s| s.app_id == p.client_id())
        .cloned()
        .ok_or_else(|| {
            GraphError::new(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                format!("The object was not found. SubscriptionId: {id}"),
            )
        })
}

async fn list(
    State(ctx): State<Shared>,
    scheme: Option<axum::Extension<Scheme>>,
    headers: HeaderMap,
) -> Response {
    let result = principal(&ctx, &headers, scheme.as_deref()).map(|p| {
        let world = ctx.lock();
        let value: Vec<Value> = world
            .subscriptions
            .values()
            .filter(|s| s.app_id == p.client_id())
            .map(Subscription::render)
            .collect();
        axum::Json(json!({ "value": value })).into_response()
    });
    reply(&ctx, result)
}

async fn get_one(
    State(ctx): State<Shared>,
    scheme: Option<axum::Extension<Scheme>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = callers(&ctx, &headers, scheme.as_deref(), &id)
        .map(|s| axum::Json(s.render()).into_response());
    reply(&ctx, result)
}

async fn renew(
    State(ctx): State<Shared>,
    scheme: Option<axum::Extension<Scheme>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result = (|| {
        callers(&ctx, &headers, scheme.as_deref(), &id)?;
        let body: Value = serde_json::from_slice(&body)
            .map_err(|_| invalid("Invalid JSON in the request body."))?;
        let expires = expiration(&ctx, &body)?;
        let mut world = ctx.lock();
        let s = world
            .subscriptions
            .get_mut(&id)
            .ok_or_else(GraphError::not_found)?;
        s.expires = expires;
        s.paused = false;
        Ok(axum::Json(s.render()).into_response())
    })();
    reply(&ctx, result)
}

async fn remove(
    State(ctx): State<Shared>,
    scheme: Option<axum::Extension<Scheme>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = callers(&ctx, &headers, scheme.as_deref(), &id).map(|_| {
        ctx.lock().subscriptions.remove(&id);
        StatusCode::NO_CONTENT.into_response()
    });
    reply(&ctx, result)
}

async fn reauthorize(
    State(ctx): State<Shared>,
    scheme: Option<axum::Extension<Scheme>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = callers(&ctx, &headers, scheme.as_deref(), &id).map(|_| {
        if let Some(s) = ctx.lock().subscriptions.get_mut(&id) {
            s.paused = false;
        }
        StatusCode::OK.into_response()
    });
    reply(&ctx, result)
}

/// Sends a lifecycle event (`reauthorizationRequired`, `subscriptionRemoved`
/// or `missed`) for subscription `id`, as Graph would; for the admin API.
pub async fn lifecycle_event(ctx: &Ctx, id: &str, event: &str) -> Result<(), String> {
    if !matches!(
        event,
        "reauthorizationRequired" | "subscriptionRemoved" | "missed"
    ) {
        return Err(format!(
            "unknown lifecycle event `{event}`: use reauthorizationRequired, subscriptionRemoved or missed"
        ));
    }
    let subscription = {
        let mut world = ctx.lock();
        let s = world
            .subscriptions
            .get_mut(id)
            .ok_or_else(|| format!("no subscription {id}"))?;
        if event == "reauthorizationRequired" {
            s.paused = true;
        }
        let s = s.clone();
        if event == "subscriptionRemoved" {
            world.subscriptions.remove(id);
        }
        s
    };
    let url = subscription
        .lifecycle_url
        .clone()
        .ok_or_else(|| format!("subscription {id} has no lifecycleNotificationUrl"))?;
    let body = json!({ "value": [{
        "lifecycleEvent": event,
        "subscriptionId": subscription.id,
        "subscriptionExpirationDateTime": super::render::time(subscription.expires),
        "clientState": subscription.client_state,
        "tenantId": subscription.tenant_id,
    }]});
    deliver(ctx, &url, &body).await;
    Ok(())
}

/// Posts `body` to `url`, retrying a few times; counts the outcome.
async fn deliver(ctx: &Ctx, url: &str, body: &Value) {
    let client = client();
    let mut wait = Duration::from_millis(500);
    for _ in 0..DELIVERY_ATTEMPTS {
        let sent = client
            .post(url)
            .json(body)
            .timeout(DELIVERY_TIMEOUT)
            .send()
            .await;
        if sent.is_ok_and(|r| r.status().is_success()) {
            ctx.counters.hit("notifications:delivered");
            return;
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    ctx.counters.hit("notifications:failed");
}

/// Turns arrivals into `created` notifications for the subscriptions on
/// their folder, until the emulator stops. Runs as one task.
pub async fn notify_loop(ctx: Shared, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = stop.changed() => return,
        }
        let now = ctx.clock.now();
        let deliveries: Vec<(String, Value)> = {
            let mut world = ctx.lock();
            if world.arrivals.is_empty() {
                continue;
            }
            let arrivals = std::mem::take(&mut world.arrivals);
            let mut out = Vec::new();
            for s in world.subscriptions.values() {
                if s.paused || s.expires <= now || !s.change_types.iter().any(|c| c == "created") {
                    continue;
                }
                let value: Vec<Value> = arrivals
                    .iter()
                    .filter(|(mb, folder, _)| *mb == s.mailbox_id && *folder == s.folder_id)
                    .filter_map(|(_, _, immutable)| world.messages.get(immutable))
                    .map(|m| {
                        let resource = format!("Users/{}/Messages/{}", s.mailbox_id, m.rest_id);
                        json!({
                            "subscriptionId": s.id,
                            "subscriptionExpirationDateTime": super::render::time(s.expires),
                            "changeType": "created",
                            "resource": resource,
                            "resourceData": {
                                "@odata.type": "#Microsoft.Graph.Message",
                                "@odata.id": resource,
                                "@odata.etag": format!("W/\"{}\"", m.change_key),
                                "id": m.rest_id,
                            },
                            "clientState": s.client_state,
                            "tenantId": s.tenant_id,
                        })
                    })
                    .collect();
                if !value.is_empty() {
                    out.push((s.notification_url.clone(), json!({ "value": value })));
                }
            }
            out
        };
        for (url, body) in deliveries {
            let ctx = ctx.clone();
            tokio::spawn(async move { deliver(&ctx, &url, &body).await });
        }
    }
}
