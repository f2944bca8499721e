//! Serving the router over plain TCP or TLS with our own accept loop, so a fault can close a
//! connection without answering and each request knows which scheme it came in on.

use axum::Router;
use axum::http::{HeaderMap, Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// The scheme a request arrived on, inserted as a request extension.
#[derive(Debug, Clone, Copy)]
pub struct Scheme(pub &'static str);

/// Response extension telling the connection loop to close the connection unanswered.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

#[derive(Debug, thiserror::Error)]
#[error("connection dropped by an injected fault")]
struct Dropped;

/// `scheme://host[:port]` as the client addressed us, for absolute links (`@odata.nextLink`,
/// discovery documents).
pub fn base_url(scheme: Option<&Scheme>, headers: &HeaderMap) -> String {
    let scheme = scheme.map(|s| s.0).unwrap_or("http");
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("{scheme}://{host}")
}

/// Accepts connections until `shutdown` flips; open connections are aborted then.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let scheme = Scheme(if tls.is_some() { "https" } else { "http" });
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let Ok((stream, _peer)) = accepted else {
            continue;
        };
        let router = router.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                let router = router.clone();
                async move {
                    req.extensions_mut().insert(scheme);
                    // HTTP/2 carries the host in :authority; absolute links need it as Host.
                    if !req.headers().contains_key(axum::http::header::HOST)
                        && let Some(v) = req
                            .uri()
                            .authority()
                            .and_then(|a| axum::http::HeaderValue::from_str(a.as_str()).ok())
                    {
                        req.headers_mut().insert(axum::http::header::HOST, v);
                    }
                    let resp = match router.oneshot(req.map(axum::body::Body::new)).await {
                        Ok(r) => r,
                        Err(e) => match e {},
                    };
                    if resp.extensions().get::<DropConnection>().is_some() {
                        return Err(Dropped);
                    }
                    Ok::<Response<axum::body::Body>, Dropped>(resp)
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match tls {
                Some(acceptor) => {
                    if let Ok(s) = acceptor.accept(stream).await {
                        let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                    }
                }
                None => {
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                }
            }
        });
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}
