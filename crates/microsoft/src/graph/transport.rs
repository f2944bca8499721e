//! Sending one Graph request to completion: the mailbox's gate (at most N in
//! flight, pauses after a 429), `Prefer: IdType="ImmutableId"` always, one
//! token refresh on `InvalidAuthenticationToken`, `Retry-After` honoured on
//! 429 and 5xx, exponential backoff with jitter for 5xx, timeouts and dropped
//! connections, bounded attempts, then a plain-words error.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use domain::mailbox::{MailboxError, MailboxErrorKind};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::GraphConfig;
use super::error::{self, GraphErrorBody, Operation};
use super::gate::Gate;
use super::retry::parse_retry_after;
use domain::mailbox::AccessTokenSource;

/// Everything but RFC 3986's unreserved characters: ids contain `/`, `+`
/// and `=`, which Graph reads as path structure unless escaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Escapes one URL path segment.
pub fn segment(raw: &str) -> String {
    utf8_percent_encode(raw, SEGMENT).to_string()
}

/// Error bodies are short; a huge one is not worth reading whole.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// A page of 1000 summaries is well under this.
const MAX_JSON_BODY: usize = 32 * 1024 * 1024;
/// Waits remembered for [`GraphStats::waits`].
const MAX_RECORDED_WAITS: usize = 1024;

/// What the client did, for tests, metrics and logs.
#[derive(Debug, Default)]
pub struct GraphStats {
    requests: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
    waits: Mutex<Vec<Duration>>,
}

impl GraphStats {
    /// HTTP requests sent (attempts, not calls).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Attempts that were retried.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// 429 answers received.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// How long each retry waited, in order (the first 1024).
    pub fn waits(&self) -> Vec<Duration> {
        self.waits.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record_wait(&self, wait: Duration) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        let mut waits = self.waits.lock().unwrap_or_else(|p| p.into_inner());
        if waits.len() < MAX_RECORDED_WAITS {
            waits.push(wait);
        }
    }
}

/// What the caller expects in a successful answer.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Json,
    Mime,
}

/// One Graph request, as [`Transport::execute`] sends (and resends) it.
#[derive(Debug, Clone, Copy)]
struct Request<'a> {
    method: &'a Method,
    url: &'a str,
    body: Option<&'a Value>,
    /// What is being done, for error messages.
    op: Operation<'a>,
    expect: Expect,
}

enum Outcome {
    Done(Vec<u8>),
    /// Worth another attempt; `wait` is what the server asked for.
    Retry {
        wait: Option<Duration>,
        reason: String,
        pause_mailbox: bool,
    },
    TokenRefused(GraphErrorBody),
    Fail(MailboxError),
}

pub struct Transport {
    pub config: GraphConfig,
    pub stats: GraphStats,
    http: reqwest::Client,
    tokens: Arc<dyn AccessTokenSource>,
    gate: Arc<Gate>,
    mailbox_url: String,
}

impl Transport {
    pub fn new(
        http: reqwest::Client,
        config: GraphConfig,
        tokens: Arc<dyn AccessTokenSource>,
    ) -> Self {
        let who = match &config.mailbox {
            Some(m) => m.to_lowercase(),
            // Unknown account: share one gate per app, which can only be
            // stricter than Outlook's limit, never looser.
            None => format!(
                "me:{}",
                config.account.as_deref().unwrap_or("").to_lowercase()
            ),
        };
        let key = format!(
            "{}|{}|{who}",
            config.graph_base.to_lowercase(),
            config.client_id.to_lowercase()
        );
        let gate = Gate::shared(&key, config.max_concurrency);
        let mailbox_url = match &config.mailbox {
            Some(m) => format!("{}/v1.0/users/{}", config.graph_base, segment(m)),
            None => format!("{}/v1.0/me", config.graph_base),
        };
        Self {
            config,
            stats: GraphStats::default(),
            http,
            tokens,
            gate,
            mailbox_url,
        }
    }

    /// How much longer Microsoft's last `Retry-After` holds back requests
    /// to this mailbox (from any user of the mailbox in this process).
    pub fn throttled_for(&self) -> Option<std::time::Duration> {
        self.gate.paused_for()
    }

    /// `{graph}/v1.0/me` or `{graph}/v1.0/users/{mailbox}`.
    pub fn mailbox_url(&self) -> &str {
        &self.mailbox_url
    }

    /// A next-page link must point back at the configured Graph host: the
    /// bearer token goes wherever it points.
    pub fn check_next_link(&self, link: &str) -> Result<(), MailboxError> {
        if link.starts_with(&format!("{}/", self.config.graph_base)) {
            Ok(())
        } else {
            Err(MailboxError::new(
                MailboxErrorKind::Permanent,
                format!("Microsoft Graph sent a next-page link to another host: {link}"),
                "check the importer's Graph endpoint setting",
            ))
        }
    }

    pub async fn get_json(&self, url: &str) -> Result<Value, MailboxError> {
        self.json(Method::GET, url, None, Operation::Folders).await
    }

    pub async fn json(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        op: Operation<'_>,
    ) -> Result<Value, MailboxError> {
        let bytes = self
            .execute(Request {
                method: &method,
                url,
                body,
                op,
                expect: Expect::Json,
            })
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            MailboxError::new(
                MailboxErrorKind::Transient,
                format!("Microsoft Graph sent an answer that is not valid JSON: {e}"),
                "nothing to change: it is tried again on the next run",
            )
        })
    }

    /// A request whose answer may be empty (`204`, a bare `200`): its bytes.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        op: Operation<'_>,
    ) -> Result<Vec<u8>, MailboxError> {
        self.execute(Request {
            method: &method,
            url,
            body,
            op,
            expect: Expect::Json,
        })
        .await
    }

    pub async fn bytes(&self, url: &str, op: Operation<'_>) -> Result<Vec<u8>, MailboxError> {
        self.execute(Request {
            method: &Method::GET,
            url,
            body: None,
            op,
            expect: Expect::Mime,
        })
        .await
    }

    async fn execute(&self, request: Request<'_>) -> Result<Vec<u8>, MailboxError> {
        let op = request.op;
        let policy = self.config.retry;
        let started = tokio::time::Instant::now();
        let mut attempt = 0;
        let mut refresh = false;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let token = self.tokens.access_token(refresh).await?;
            refresh = false;
            let outcome = {
                let Some(_slot) = self.gate.enter(&self.config.stop).await else {
                    return Err(self.stopped(op));
                };
                self.attempt(request, &token).await
            };
            let (wait, reason, pause_mailbox) = match outcome {
                Outcome::Done(bytes) => return Ok(bytes),
                Outcome::Fail(e) => return Err(e),
                Outcome::TokenRefused(body) if !refreshed => {
                    tracing::info!(code = %body.code, "Graph refused the access token; refreshing it once");
                    refreshed = true;
                    refresh = true;
                    attempt -= 1;
                    continue;
                }
                Outcome::TokenRefused(body) => {
                    return Err(error::map(
                        &self.config,
                        op,
                        StatusCode::UNAUTHORIZED,
                        &body,
                    ));
                }
                Outcome::Retry {
                    wait,
                    reason,
                    pause_mailbox,
                } => (wait, reason, pause_mailbox),
            };
            if attempt >= policy.max_attempts {
                return Err(MailboxError::new(
                    MailboxErrorKind::Transient,
                    format!(
                        "Microsoft Graph kept failing while {} in {}: {reason} (gave up after {attempt} attempts in {:.1} s)",
                        describe(op),
                        self.config.mailbox_label(),
                        started.elapsed().as_secs_f64()
                    ),
                    "nothing to change: mail stays where it is and is tried again on the next run; \
                     if this persists, check Microsoft 365 service health",
                ));
            }
            let delay = match wait {
                Some(told) if told > policy.max_retry_after => {
                    if pause_mailbox {
                        self.gate.note_retry_after(told);
                    }
                    return Err(MailboxError::new(
                        MailboxErrorKind::Transient,
                        format!(
                            "Microsoft Graph asked to wait {:.1} s before {} in {} ({reason})",
                            told.as_secs_f64(),
                            describe(op),
                            self.config.mailbox_label()
                        ),
                        "nothing to change: it is tried again on the next run",
                    ));
                }
                Some(told) => told,
                None => policy.backoff(attempt),
            };
            if pause_mailbox {
                self.gate.pause(delay);
            }
            self.stats.record_wait(delay);
            tracing::warn!(attempt, wait_ms = delay.as_millis() as u64, %reason, "Graph request will be retried");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.config.stop.cancelled() => return Err(self.stopped(op)),
            }
        }
    }

    /// Shutdown came while waiting: the request is left for the next run.
    fn stopped(&self, op: Operation<'_>) -> MailboxError {
        MailboxError::new(
            MailboxErrorKind::Transient,
            format!(
                "mailferry is shutting down: stopped waiting while {} in {}",
                describe(op),
                self.config.mailbox_label()
            ),
            "nothing to change: mail stays where it is and the next run goes on",
        )
    }

    async fn attempt(&self, request: Request<'_>, token: &SecretString) -> Outcome {
        let Request {
            method,
            url,
            body,
            op,
            expect,
        } = request;
        let timeout = match expect {
            Expect::Json => self.config.timeouts.json,
            Expect::Mime => self.config.timeouts.mime,
        };
        let mut request = self
            .http
            .request(method.clone(), url)
            .bearer_auth(token.expose_secret())
            .header("Prefer", "IdType=\"ImmutableId\"")
            .timeout(timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_builder() => {
                return Outcome::Fail(MailboxError::new(
                    MailboxErrorKind::Permanent,
                    format!("cannot build a request to {url}: {e}"),
                    "check the importer's Graph endpoint setting",
                ));
            }
            Err(e) => {
                return Outcome::Retry {
                    wait: None,
                    reason: transport_failure(&e),
                    pause_mailbox: false,
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            let limit = match expect {
                Expect::Json => MAX_JSON_BODY,
                Expect::Mime => self.config.max_mime_bytes,
            };
            return match read_limited(response, limit).await {
                Ok(Some(bytes)) => Outcome::Done(bytes),
                Ok(None) => Outcome::Fail(MailboxError::new(
                    MailboxErrorKind::Permanent,
                    format!(
                        "{} is larger than {} MB",
                        describe(op),
                        self.config.max_mime_bytes / (1024 * 1024)
                    ),
                    "move the message out of the Inbox by hand; mailferry does not import messages this large",
                )),
                Err(e) => Outcome::Retry {
                    wait: None,
                    reason: format!("the answer broke off: {}", transport_failure(&e)),
                    pause_mailbox: false,
                },
            };
        }
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, self.config.clock.now()));
        let bytes = read_limited(response, MAX_ERROR_BODY)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let error = GraphErrorBody::parse(&bytes);
        let reason = if error.code.is_empty() {
            format!("HTTP {}", status.as_u16())
        } else {
            format!("HTTP {} {}", status.as_u16(), error.code)
        };
        match status {
            StatusCode::UNAUTHORIZED => Outcome::TokenRefused(error),
            StatusCode::TOO_MANY_REQUESTS => {
                self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("mailferry_graph_throttled_total").increment(1);
                Outcome::Retry {
                    wait: retry_after,
                    reason,
                    pause_mailbox: true,
                }
            }
            StatusCode::INTERNAL_SERVER_ERROR
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => Outcome::Retry {
                pause_mailbox: status == StatusCode::SERVICE_UNAVAILABLE && retry_after.is_some(),
                wait: retry_after,
                reason,
            },
            _ => Outcome::Fail(error::map(&self.config, op, status, &error)),
        }
    }
}

fn describe(op: Operation<'_>) -> String {
    op.describe()
}

fn transport_failure(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the request timed out".to_owned()
    } else if e.is_connect() {
        format!("cannot connect: {e}")
    } else {
        format!("the connection failed: {e}")
    }
}

/// Reads a body chunk by chunk; `None` once it exceeds `limit` bytes, so a
/// huge answer never sits in memory whole.
async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut out = Vec::with_capacity(
        response
            .content_length()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
            .min(limit),
    );
    while let Some(chunk) = response.chunk().await? {
        if out.len() + chunk.len() > limit {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}
