//! The webhook sink: `POST` of the document as `multipart/form-data` to a
//! configured URL. Each part is named by its path inside the document
//! (`metadata.json`, `message.eml`, `attachments/…`, also its file name) so a
//! receiver can rebuild the spool's layout. `Idempotency-Key: {document_id}` lets the receiver
//! drop a repeat after a crash between its answer and our move.
//!
//! Only a 2xx answer counts as stored. A 4xx other than 408/425/429 is the
//! receiver's final word: no retry, and the mail goes to Error
//! (`sink_rejected`) with the status and the start of the answer. Anything
//! else (after bounded retries) is a transient failure, which leaves the
//! mail in the Inbox.

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use secrecy::{ExposeSecret, SecretString};

use crate::document::{Document, MESSAGE_FILE, METADATA_FILE};
use crate::{DocumentSink, SinkError, SinkFuture, Stored};

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: url::Url,
    /// For one whole request, upload included.
    pub timeout: Duration,
    /// Tries per document (at least 1).
    pub attempts: u32,
    /// The wait before the second try; doubled for each further one.
    pub backoff: Duration,
    /// Sent as `Authorization: Bearer …` (a sensitive header, never logged).
    pub token: Option<SecretString>,
}

impl WebhookConfig {
    pub fn new(url: url::Url) -> Self {
        Self {
            url,
            timeout: Duration::from_secs(60),
            attempts: 3,
            backoff: Duration::from_millis(500),
            token: None,
        }
    }
}

/// Longest `Retry-After` we honour; longer ones end this run's tries.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct WebhookSink {
    config: WebhookConfig,
    http: reqwest::Client,
}

impl WebhookSink {
    pub fn new(config: WebhookConfig) -> Result<Self, SinkError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            // A redirect could carry the document somewhere unintended.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SinkError::unstorable(format!("cannot build the webhook client: {e}")))?;
        Ok(Self { config, http })
    }

    /// The URL without query and credentials, fit for logs and the documents table.
    pub fn location(&self) -> String {
        let mut u = self.config.url.clone();
        u.set_query(None);
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.to_string()
    }

    async fn deliver(&self, doc: &Document) -> Result<Stored, SinkError> {
        let attempts = self.config.attempts.max(1);
        let mut wait = self.config.backoff;
        let mut last = String::new();
        for attempt in 1..=attempts {
            match self.post_once(doc).await {
                Ok(()) => {
                    return Ok(Stored {
                        location: self.location(),
                        already_present: false,
                    });
                }
                Err(Failure {
                    message,
                    retry_after,
                    refused,
                }) => {
                    if let Some(status) = misconfiguration(&message) {
                        return Err(SinkError::misconfigured(format!(
                            "the webhook {} answered {status}: check sink.url and sink.token on the importer; no mail was touched",
                            self.location()
                        )));
                    }
                    if refused {
                        return Err(SinkError::rejected(format!(
                            "the webhook {} refused document {}: {message}; the mail goes to Error, fix the receiver and reprocess it",
                            self.location(),
                            doc.metadata.document_id
                        )));
                    }
                    last = message;
                    if attempt == attempts {
                        break;
                    }
                    let pause = match retry_after {
                        Some(d) if d > MAX_RETRY_AFTER => break,
                        Some(d) => d,
                        None => wait,
                    };
                    tracing::warn!(attempt, error = %last, "webhook delivery failed; retrying");
                    tokio::time::sleep(pause).await;
                    wait = wait.saturating_mul(2);
                }
            }
        }
        Err(SinkError::transient(format!(
            "the webhook {} did not accept document {}: {last}; the mail stays in the Inbox and is sent again next run",
            self.location(),
            doc.metadata.document_id
        )))
    }

    async fn post_once(&self, doc: &Document) -> Result<(), Failure> {
        let part = |bytes: Vec<u8>, name: &str, mime: &str| {
            Part::bytes(bytes).file_name(name.to_owned()).mime_str(mime)
        };
        // Raw UTF-8 names, as browsers send them: the percent-encoded or
        // RFC 2231 forms are not understood by common multipart parsers.
        let mut form = Form::new()
            .percent_encode_noop()
            .part(
                METADATA_FILE,
                part(doc.metadata_json(), METADATA_FILE, "application/json")
                    .map_err(Failure::from_build)?,
            )
            .part(
                MESSAGE_FILE,
                part(doc.message.to_vec(), MESSAGE_FILE, "message/rfc822")
                    .map_err(Failure::from_build)?,
            );
        for (meta, bytes) in doc.metadata.attachments.iter().zip(&doc.files) {
            let p = Part::bytes(bytes.to_vec()).file_name(meta.file.clone());
            // A type the sender wrote that is not a valid MIME type is sent as bytes.
            let p = match p.mime_str(&meta.content_type) {
                Ok(p) => p,
                Err(_) => Part::bytes(bytes.to_vec())
                    .file_name(meta.file.clone())
                    .mime_str("application/octet-stream")
                    .map_err(Failure::from_build)?,
            };
            form = form.part(meta.file.clone(), p);
        }
        let mut request = self
            .http
            .post(self.config.url.clone())
            .header("Idempotency-Key", &doc.metadata.document_id);
        if let Some(token) = &self.config.token {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = request.multipart(form).send().await.map_err(|e| Failure {
            // Without the URL: its query may carry a credential.
            message: format!("request failed: {}", e.without_url()),
            retry_after: None,
            refused: false,
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        let refused = is_refusal(status);
        let message = if refused {
            let body = response.text().await.unwrap_or_default();
            format!("it answered {status}: {}", excerpt(&body))
        } else {
            format!("it answered {status}")
        };
        Err(Failure {
            message,
            retry_after,
            refused,
        })
    }
}

/// A status saying the sink's settings are wrong, not this document: 401
/// and 403 (token), 404 and 405 (URL), 407 (proxy).
fn misconfiguration(message: &str) -> Option<&'static str> {
    ["401", "403", "404", "405", "407"]
        .into_iter()
        .find(|code| message.starts_with(&format!("it answered {code}")))
}

/// A 4xx says the receiver will never take this document, except the
/// answers that mean "not now": 408 Request Timeout, 425 Too Early,
/// 429 Too Many Requests.
fn is_refusal(status: reqwest::StatusCode) -> bool {
    status.is_client_error() && !matches!(status.as_u16(), 408 | 425 | 429)
}

/// The start of the receiver's answer, on one line, so the admin sees why.
fn excerpt(body: &str) -> String {
    const MAX_CHARS: usize = 200;
    let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return "(no body)".to_owned();
    }
    match line.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

impl DocumentSink for WebhookSink {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn store<'a>(&'a self, doc: &'a Document) -> SinkFuture<'a, Stored> {
        Box::pin(self.deliver(doc))
    }

    /// The receiver owns what it was sent; mailferry keeps nothing.
    /// The receiver has the document; mailferry kept no copy.
    fn read<'a>(&'a self, _location: &'a str, _file: &'a str) -> SinkFuture<'a, Option<Vec<u8>>> {
        Box::pin(async { Ok(None) })
    }

    fn remove<'a>(&'a self, _location: &'a str) -> SinkFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
}

struct Failure {
    message: String,
    retry_after: Option<Duration>,
    /// The receiver refused the document for good: no further attempt.
    refused: bool,
}

impl Failure {
    fn from_build(e: reqwest::Error) -> Self {
        Self {
            message: format!("could not build the request: {e}"),
            retry_after: None,
            refused: false,
        }
    }
}
