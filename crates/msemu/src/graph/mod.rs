//! Microsoft Graph v1.0, the mail part: users, mail folders, messages, MIME, attachments,
//! move/copy/update, with Graph's permission checks, throttling and error shapes.

pub mod auth;
pub mod error;
pub mod path;
pub mod query;
pub mod render;
pub mod subscriptions;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use jiff::Timestamp;
use serde_json::{Value, json};

use self::auth::Principal;
use self::error::GraphError;
use self::path::{MessagePart, Resource, Target};
use self::query::ListQuery;
use crate::context::{Ctx, Shared};
use crate::faults::FaultAction;
use crate::ids;
use crate::server::{DropConnection, Scheme, base_url};
use crate::state::{Lookup, State as World, UserMailbox};

const JSON_CONTENT_TYPE: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";
const MAX_BODY: usize = 64 * 1024 * 1024;

pub fn router() -> Router<Shared> {
    Router::new()
        .merge(subscriptions::router())
        .route("/v1.0", any(dispatch))
        .route("/v1.0/{*rest}", any(dispatch))
}

/// Preferences from `Prefer` headers.
#[derive(Debug, Default)]
struct Prefs {
    immutable_ids: bool,
    max_page_size: Option<usize>,
}

impl Prefs {
    fn from(headers: &HeaderMap) -> Prefs {
        let mut p = Prefs::default();
        for v in headers.get_all("prefer") {
            for item in v.to_str().unwrap_or_default().split(',') {
                let item = item.trim();
                let lower = item.to_lowercase().replace(' ', "");
                if lower == "idtype=\"immutableid\"" {
                    p.immutable_ids = true;
                } else if let Some(n) = lower.strip_prefix("odata.maxpagesize=") {
                    p.max_page_size = n.parse().ok();
                }
            }
        }
        p
    }
}

/// Everything a resource handler needs about the request.
struct Call<'a> {
    method: &'a Method,
    base: &'a str,
    raw_path: &'a str,
    raw_query: Option<&'a str>,
    prefs: &'a Prefs,
    body: &'a [u8],
    now: Timestamp,
    mailbox: UserMailbox,
}

async fn dispatch(
    State(ctx): State<Shared>,
    scheme: Option<axum::Extension<Scheme>>,
    req: Request,
) -> Response {
    ctx.counters.hit("graph");
    let (parts, body) = req.into_parts();
    let request_id = ids::new_guid();
    let client_request_id = parts
        .headers
        .get("client-request-id")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| request_id.clone());
    let base = base_url(scheme.as_deref(), &parts.headers);
    let prefs = Prefs::from(&parts.headers);
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let result = handle(&ctx, &parts, &body, &base, &prefs).await;
    let now = ctx.clock.now();
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => e.render(now, &request_id, &client_request_id),
    };
    let h = resp.headers_mut();
    if h.get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(JSON_CONTENT_TYPE),
        );
        h.insert("odata-version", HeaderValue::from_static("4.0"));
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&client_request_id) {
        h.insert("client-request-id", v);
    }
    if prefs.immutable_ids {
        h.insert(
            "preference-applied",
            HeaderValue::from_static("IdType=\"ImmutableId\""),
        );
    }
    resp
}

/// Waits `latency`, to the tenth of a millisecond: tokio's timers round a
/// sleep up to the next whole millisecond, which would add about 1 ms to
/// every request a benchmark times against the latency it set.
async fn added_latency(latency: std::time::Duration) {
    let precise = tokio::task::spawn_blocking(move || std::thread::sleep(latency)).await;
    if precise.is_err() {
        tokio::time::sleep(latency).await;
    }
}

async fn handle(
    ctx: &Ctx,
    parts: &axum::http::request::Parts,
    body: &[u8],
    base: &str,
    prefs: &Prefs,
) -> Result<Response, GraphError> {
    let now = ctx.clock.now();
    let principal = auth::authenticate(&ctx.keys, &parts.headers, now, base)?;
    let raw_path = parts.uri.path();
    let segs = path::segments(raw_path.strip_prefix("/v1.0").unwrap_or(raw_path));
    let (target, resource) = match path::parse(&segs) {
        Ok(r) => r,
        Err(bad) => {
            let world = ctx.lock();
            let malformed = bad.after_id.as_deref().is_some_and(|id| {
                !ids::is_well_formed(id)
                    && world.folders.values().all(|f| {
                        f.well_known
                            .as_deref()
                            .is_none_or(|wk| !wk.eq_ignore_ascii_case(id))
                    })
            });
            return Err(if malformed {
                GraphError::malformed_id()
            } else {
                GraphError::bad_request(format!(
                    "Resource not found for the segment '{}'.",
                    bad.segment
                ))
            });
        }
    };
    let mailbox = {
        let world = ctx.lock();
        resolve_target(&world, &principal, &target)?
    };
    let write = parts.method != Method::GET;
    if resource == Resource::User {
        let own =
            matches!(&principal, Principal::Delegated { user_id, .. } if *user_id == mailbox.id);
        if !own {
            auth::check_mail_access(&principal, &mailbox, false)?;
        }
    } else {
        auth::check_mail_access(&principal, &mailbox, write)?;
    }

    let limit = ctx.options.concurrency_limit;
    let Some(_slot) = ctx
        .counters
        .acquire(principal.client_id(), &mailbox.upn, limit)
    else {
        return Err(GraphError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
        )
        .retry_after(1.0));
    };
    let decision = ctx.faults.decide(parts.method.as_str(), raw_path);
    if !decision.latency.is_zero() {
        added_latency(decision.latency).await;
    }
    if let Some(action) = decision.action {
        ctx.counters.fault_fired();
        return Err(match action {
            FaultAction::Drop => {
                let mut r = StatusCode::OK.into_response();
                r.extensions_mut().insert(DropConnection);
                return Ok(r);
            }
            FaultAction::Throttle { retry_after } => GraphError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Please retry again later.",
            )
            .retry_after(retry_after),
            FaultAction::Status {
                status,
                retry_after,
            } => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                let (code, message) = match status.as_u16() {
                    503 => (
                        "serviceNotAvailable",
                        "The service is temporarily unavailable.",
                    ),
                    504 => (
                        "gatewayTimeout",
                        "The gateway did not receive a timely response.",
                    ),
                    502 => ("badGateway", "Bad gateway."),
                    507 => ("ErrorQuotaExceeded", "The mailbox quota has been exceeded."),
                    _ => ("generalException", "An internal server error occurred."),
                };
                let mut e = GraphError::new(status, code, message);
                e.retry_after = retry_after;
                e
            }
        });
    }
    let call = Call {
        method: &parts.method,
        base,
        raw_path,
        raw_query: parts.uri.query(),
        prefs,
        body,
        now: ctx.clock.now(),
        mailbox,
    };
    let mut world = ctx.lock();
    route(&mut world, &call, resource)
}

fn resolve_target(world: &World, p: &Principal, t: &Target) -> Result<UserMailbox, GraphError> {
    match (t, p) {
        (Target::Me, Principal::App { .. }) => Err(GraphError::bad_request(
            "/me request is only valid with delegated authentication flow.",
        )),
        (Target::Me, Principal::Delegated { user_id, .. }) => world
            .mailboxes
            .get(user_id)
            .cloned()
            .ok_or_else(|| invalid_user(user_id)),
        (Target::User(key), _) => world
            .mailbox_by_key(key)
            .filter(|m| m.tenant_id == p.tenant_id())
            .cloned()
            .ok_or_else(|| invalid_user(key)),
    }
}

fn invalid_user(key: &str) -> GraphError {
    GraphError::new(
        StatusCode::NOT_FOUND,
        "ErrorInvalidUser",
        format!("The requested user '{key}' is invalid."),
    )
}

fn lookup_error(l: Lookup) -> GraphError {
    match l {
        Lookup::Malformed => GraphError::malformed_id(),
        Lookup::NotFound => GraphError::not_found(),
    }
}

fn json_response(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

fn method_not_allowed() -> GraphError {
    GraphError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
    )
}

/// Resolves a folder chain (`mailFolders/{a}/childFolders/{b}/…`) to a folder id.
fn resolve_chain(world: &World, mailbox: &str, chain: &[String]) -> Result<String, GraphError> {
    let Some((first, rest)) = chain.split_first() else {
        return world
            .mailboxes
            .get(mailbox)
            .map(|m| m.root_folder.clone())
            .ok_or_else(GraphError::not_found);
    };
    let mut current = world
        .resolve_folder(mailbox, first)
        .map_err(lookup_error)?
        .id
        .clone();
    for key in rest {
        let f = match world.folders.get(key) {
            Some(f) => f,
            None if ids::is_well_formed(key) => return Err(GraphError::not_found()),
            None => return Err(GraphError::malformed_id()),
        };
        if f.parent_id.as_deref() != Some(current.as_str()) || f.mailbox_id != mailbox {
            return Err(GraphError::not_found());
        }
        current = f.id.clone();
    }
    Ok(current)
}

/// Serves one page of `items`, with an opaque `@odata.nextLink` when more remain.
fn page(
    world: &mut World,
    call: &Call<'_>,
    q: &ListQuery,
    items: Vec<Value>,
    context: String,
) -> Result<Response, GraphError> {
    let offset = match &q.skiptoken {
        Some(t) => *world
            .skiptokens
            .get(t)
            .ok_or_else(|| GraphError::bad_request("The $skiptoken is invalid or has expired."))?,
        None => q.skip,
    };
    let size = q.top.or(call.prefs.max_page_size).unwrap_or(10);
    let total = items.len();
    let value: Vec<Value> = items.into_iter().skip(offset).take(size).collect();
    let mut body = json!({"@odata.context": context, "value": value});
    if offset + size < total {
        let token = ids::new_token("", 24);
        world.skiptokens.insert(token.clone(), offset + size);
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in url::form_urlencoded::parse(call.raw_query.unwrap_or_default().as_bytes()) {
            if k != "$skiptoken" && k != "$skip" {
                ser.append_pair(&k, &v);
            }
        }
        ser.append_pair("$skiptoken", &token);
        crate::json::set(
            &mut body,
            "@odata.nextLink",
            json!(format!("{}{}?{}", call.base, call.raw_path, ser.finish())),
        );
    }
    Ok(json_response(StatusCode::OK, body))
}

fn route(world: &mut World, call: &Call<'_>, resource: Resource) -> Result<Response, GraphError> {
    let mb = call.mailbox.id.clone();
    let ctx_url = format!("{}/v1.0/$metadata#users('{}')", call.base, mb);
    match resource {
        Resource::User => {
            if *call.method != Method::GET {
                return Err(method_not_allowed());
            }
            Ok(json_response(
                StatusCode::OK,
                json!({
                    "@odata.context": format!("{}/v1.0/$metadata#users/$entity", call.base),
                    "businessPhones": [],
                    "displayName": call.mailbox.display_name,
                    "givenName": null, "jobTitle": null,
                    "mail": call.mailbox.upn,
                    "mobilePhone": null, "officeLocation": null,
                    "preferredLanguage": "en-US", "surname": null,
                    "userPrincipalName": call.mailbox.upn,
                    "id": call.mailbox.id,
                }),
            ))
        }
        Resource::FolderList(chain) => {
            let parent = resolve_chain(world, &mb, &chain)?;
            if *call.method == Method::POST {
                let v: Value = serde_json::from_slice(call.body)
                    .map_err(|_| GraphError::bad_request("Invalid JSON body."))?;
                let name = v
                    .get("displayName")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| GraphError::bad_request("displayName is required."))?;
                let hidden = v.get("isHidden").and_then(Value::as_bool).unwrap_or(false);
                let id = world
                    .create_folder(&mb, &parent, name, hidden, None)
                    .map_err(|_| {
                        GraphError::new(
                            StatusCode::CONFLICT,
                            "ErrorFolderExists",
                            "A folder with the specified name already exists.",
                        )
                    })?;
                let f = world.folders.get(&id).ok_or_else(GraphError::not_found)?;
                let mut body = render::folder(world, f, None);
                crate::json::set(
                    &mut body,
                    "@odata.context",
                    json!(format!("{ctx_url}/mailFolders/$entity")),
                );
                return Ok(json_response(StatusCode::CREATED, body));
            }
            if *call.method != Method::GET {
                return Err(method_not_allowed());
            }
            let q = ListQuery::parse(call.raw_query, 1000)?;
            let items: Vec<Value> = world
                .children(&parent, q.include_hidden)
                .into_iter()
                .map(|f| render::folder(world, f, q.select.as_deref()))
                .collect();
            let ctx = if chain.is_empty() {
                format!("{ctx_url}/mailFolders")
            } else {
                format!("{ctx_url}/mailFolders('{parent}')/childFolders")
            };
            page(world, call, &q, items, ctx)
        }
        Resource::FolderDelta => {
            let q = ListQuery::parse(call.raw_query, 1000)?;
            let root = world
                .mailboxes
                .get(&mb)
                .map(|m| m.root_folder.clone())
                .unwrap_or_default();
            let mut items = vec![];
            if !call.raw_query.unwrap_or_default().contains("deltatoken") {
                let mut stack = vec![root];
                while let Some(p) = stack.pop() {
                    for f in world.children(&p, true) {
                        items.push(render::folder(world, f, q.select.as_deref()));
                        stack.push(f.id.clone());
                    }
                }
            }
            let body = json!({
                "@odata.context": format!("{}/v1.0/$metadata#Collection(mailFolder)", call.base),
                "value": items,
                "@odata.deltaLink": format!("{}{}?$deltatoken={}", call.base, call.raw_path, ids::new_token("", 18)),
            });
            Ok(json_response(StatusCode::OK, body))
        }
        Resource::Folder(chain) => {
            let id = resolve_chain(world, &mb, &chain)?;
            match *call.method {
                Method::GET => {
                    let q = ListQuery::parse(call.raw_query, 1000)?;
                    let f = world.folders.get(&id).ok_or_else(GraphError::not_found)?;
                    let mut body = render::folder(world, f, q.select.as_deref());
                    crate::json::set(
                        &mut body,
                        "@odata.context",
                        json!(format!("{ctx_url}/mailFolders/$entity")),
                    );
                    Ok(json_response(StatusCode::OK, body))
                }
                _ => Err(method_not_allowed()),
            }
        }
        Resource::MessageList(folder) => {
            if *call.method != Method::GET {
                return Err(method_not_allowed());
            }
            let q = ListQuery::parse(call.raw_query, 1000)?;
            let msgs = match &folder {
                Some(chain) => {
                    let fid = resolve_chain(world, &mb, chain)?;
                    world.messages_in(&fid)
                }
                None => world.messages_of(&mb),
            };
            let mut msgs: Vec<_> = msgs.into_iter().filter(|m| q.matches(m)).collect();
            msgs.sort_by(|a, b| q.compare(a, b));
            let items = msgs
                .iter()
                .map(|m| {
                    render::with_extended_properties(
                        render::message(m, call.prefs.immutable_ids, q.select.as_deref()),
                        m,
                        &q.extended_properties,
                    )
                })
                .collect();
            page(world, call, &q, items, format!("{ctx_url}/messages"))
        }
        Resource::Message { folder, id, part } => message(world, call, folder, &id, part),
    }
}

fn message(
    world: &mut World,
    call: &Call<'_>,
    folder: Option<Vec<String>>,
    id: &str,
    part: MessagePart,
) -> Result<Response, GraphError> {
    let mb = call.mailbox.id.clone();
    let folder_id = match &folder {
        Some(chain) => Some(resolve_chain(world, &mb, chain)?),
        None => None,
    };
    let m = world.resolve_message(&mb, id).map_err(lookup_error)?;
    if folder_id.as_ref().is_some_and(|f| *f != m.folder_id) {
        return Err(GraphError::not_found());
    }
    let immutable_id = m.immutable_id.clone();
    let imm = call.prefs.immutable_ids;
    let entity_ctx = format!(
        "{}/v1.0/$metadata#users('{}')/messages/$entity",
        call.base, mb
    );
    let q = ListQuery::parse(call.raw_query, 1000)?;
    match (part, call.method.clone()) {
        (MessagePart::Itself, Method::GET) => {
            let mut v = render::with_extended_properties(
                render::message(m, imm, q.select.as_deref()),
                m,
                &q.extended_properties,
            );
            crate::json::set(&mut v, "@odata.context", json!(entity_ctx));
            Ok(json_response(StatusCode::OK, v))
        }
        (MessagePart::Itself, Method::PATCH) => {
            let patch: Value = serde_json::from_slice(call.body)
                .map_err(|_| GraphError::bad_request("Invalid JSON body."))?;
            let obj = patch
                .as_object()
                .ok_or_else(|| GraphError::bad_request("The body must be a JSON object."))?;
            let mut is_read = None;
            let mut categories = None;
            for (k, v) in obj {
                match k.as_str() {
                    "isRead" => {
                        is_read =
                            Some(v.as_bool().ok_or_else(|| {
                                GraphError::bad_request("isRead must be a boolean.")
                            })?)
                    }
                    "categories" => {
                        categories = Some(
                            v.as_array()
                                .ok_or_else(|| {
                                    GraphError::bad_request("categories must be an array.")
                                })?
                                .iter()
                                .map(|c| c.as_str().unwrap_or_default().to_string())
                                .collect::<Vec<_>>(),
                        )
                    }
                    "flag" | "importance" | "inferenceClassification" | "@odata.type" => {}
                    other => {
                        return Err(GraphError::new(
                            StatusCode::BAD_REQUEST,
                            "ErrorInvalidPropertyUpdateSentMessage",
                            format!("Update operation is not supported for property '{other}'."),
                        ));
                    }
                }
            }
            let now = call.now;
            let msg = world
                .message_mut(&immutable_id)
                .ok_or_else(GraphError::not_found)?;
            if let Some(r) = is_read {
                msg.is_read = r;
            }
            if let Some(c) = categories {
                msg.categories = c;
            }
            msg.last_modified = now;
            msg.change_key = ids::new_token("CQAAABYAAA", 12);
            let mut v = render::message(msg, imm, None);
            crate::json::set(&mut v, "@odata.context", json!(entity_ctx));
            Ok(json_response(StatusCode::OK, v))
        }
        (MessagePart::Itself, Method::DELETE) => {
            let m = world.messages.remove(&immutable_id);
            if let Some(m) = m {
                world.rest_ids.remove(&m.rest_id);
            }
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (MessagePart::Value, Method::GET) => Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain")],
            Body::from(m.mime.as_ref().clone()),
        )
            .into_response()),
        (p @ (MessagePart::Move | MessagePart::Copy), Method::POST) => {
            let v: Value = serde_json::from_slice(call.body)
                .map_err(|_| GraphError::bad_request("Invalid JSON body."))?;
            // msgraph-sdk sends `DestinationId`; Graph matches action parameters ignoring case.
            let dest = v
                .as_object()
                .and_then(|o| {
                    o.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("destinationId"))
                        .and_then(|(_, v)| v.as_str())
                })
                .ok_or_else(|| {
                    GraphError::new(
                        StatusCode::BAD_REQUEST,
                        "ErrorInvalidParameter",
                        "The value of the parameter 'DestinationId' is empty.",
                    )
                })?;
            let dest = world
                .resolve_folder(&mb, dest)
                .map_err(lookup_error)?
                .id
                .clone();
            let target = if p == MessagePart::Move {
                world
                    .move_message(&immutable_id, &dest, call.now)
                    .ok_or_else(GraphError::not_found)?;
                immutable_id
            } else {
                world
                    .copy_message(&immutable_id, &dest, call.now)
                    .ok_or_else(GraphError::not_found)?
            };
            let msg = world
                .messages
                .get(&target)
                .ok_or_else(GraphError::not_found)?;
            let mut v = render::message(msg, imm, None);
            crate::json::set(&mut v, "@odata.context", json!(entity_ctx));
            Ok(json_response(StatusCode::CREATED, v))
        }
        (MessagePart::Attachments, Method::GET) => {
            let items: Vec<Value> = m
                .attachments
                .iter()
                .filter_map(|a| {
                    m.props
                        .attachments
                        .get(a.index)
                        .map(|d| render::attachment(&a.id, d, m.last_modified, true))
                })
                .collect();
            Ok(json_response(
                StatusCode::OK,
                json!({
                    "@odata.context": format!("{}/v1.0/$metadata#users('{}')/messages('{}')/attachments", call.base, mb, render::message_id(m, imm)),
                    "value": items,
                }),
            ))
        }
        (MessagePart::Attachment(aid), Method::GET) => {
            let (a, d) = attachment(m, &aid)?;
            let mut v = render::attachment(&a, d, m.last_modified, true);
            let expand = url::form_urlencoded::parse(call.raw_query.unwrap_or_default().as_bytes())
                .any(|(k, v)| k == "$expand" && v.to_lowercase().contains("item"));
            if expand && d.kind == crate::mime::AttachmentKind::Item {
                crate::json::set(&mut v, "item", render::embedded_item(d));
            }
            Ok(json_response(StatusCode::OK, v))
        }
        (MessagePart::AttachmentValue(aid), Method::GET) => {
            let (_, d) = attachment(m, &aid)?;
            let ct = match d.kind {
                crate::mime::AttachmentKind::Item => "message/rfc822".to_string(),
                crate::mime::AttachmentKind::File => d.content_type.clone(),
            };
            Ok((
                StatusCode::OK,
                [(header::CONTENT_TYPE, ct)],
                Body::from(d.content.clone()),
            )
                .into_response())
        }
        _ => Err(method_not_allowed()),
    }
}

fn attachment<'m>(
    m: &'m crate::state::Message,
    aid: &str,
) -> Result<(String, &'m crate::mime::AttachmentData), GraphError> {
    let a = m.attachments.iter().find(|a| a.id == aid);
    match a {
        Some(a) => m
            .props
            .attachments
            .get(a.index)
            .map(|d| (a.id.clone(), d))
            .ok_or_else(GraphError::not_found),
        None if ids::is_well_formed(aid) => Err(GraphError::not_found()),
        None => Err(GraphError::malformed_id()),
    }
}
