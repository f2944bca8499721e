//! The HTTP transport under the `oauth2` crate: reqwest 0.13 (oauth2 5 only
//! ships an adapter for 0.12). Redirects are never followed (a token
//! endpoint that redirects is misconfigured or hostile), and answers that
//! mean "try again later" (5xx, 429) become errors here so the caller keeps
//! their status and `Retry-After` instead of a parsed error body.

use std::time::Duration;

use oauth2::{HttpRequest, HttpResponse};

/// A transport failure, or an answer that says the service is unavailable.
#[derive(Debug, thiserror::Error)]
pub enum HttpFailure {
    #[error("could not reach {url}: {source}")]
    Network {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered HTTP {status}")]
    Unavailable {
        url: String,
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("could not build the request: {0}")]
    Build(String),
}

/// A reqwest client set up for the identity platform and Graph.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
}

impl HttpClient {
    /// Needs a rustls crypto provider installed (the binary and tests do).
    pub fn new() -> Result<Self, reqwest::Error> {
        let inner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("mailferry/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { inner })
    }

    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    pub(crate) async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, HttpFailure> {
        let (parts, body) = request.into_parts();
        let url = parts.uri.to_string();
        let mut builder = self
            .inner
            .request(parts.method, url.as_str())
            .headers(parts.headers)
            .body(body);
        if parts.version != oauth2::http::Version::default() {
            builder = builder.version(parts.version);
        }
        let response = builder
            .send()
            .await
            .map_err(|source| HttpFailure::Network {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(HttpFailure::Unavailable {
                url,
                status: status.as_u16(),
                retry_after: retry_after(response.headers()),
            });
        }
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| HttpFailure::Network {
                url: url.clone(),
                source,
            })?;
        let mut out = oauth2::http::Response::builder().status(status.as_u16());
        for (name, value) in &headers {
            out = out.header(name.as_str(), value.as_bytes());
        }
        out.body(bytes.to_vec())
            .map_err(|e| HttpFailure::Build(e.to_string()))
    }
}

/// `Retry-After` in seconds (Microsoft never sends the HTTP-date form here).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

impl<'c> oauth2::AsyncHttpClient<'c> for HttpClient {
    type Error = HttpFailure;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<HttpResponse, HttpFailure>> + Send + 'c>,
    >;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.execute(request))
    }
}
