//! The webhook sink against a real HTTP receiver on 127.0.0.1 that records
//! what it gets and answers as each test tells it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use sinks::{DocumentSink, WebhookConfig, WebhookSink, sha256_hex};

/// (part name, file name, content type, bytes)
type ReceivedPart = (String, Option<String>, Option<String>, Vec<u8>);

#[derive(Debug, Clone)]
struct Received {
    idempotency_key: Option<String>,
    authorization: Option<String>,
    parts: Vec<ReceivedPart>,
}

#[derive(Clone)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    /// Status to answer, one per request; the last one repeats.
    answers: Arc<Mutex<Vec<u16>>>,
    delay: Duration,
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> (StatusCode, &'static str) {
    let mut parts = Vec::new();
    while let Some(field) = multipart.next_field().await.expect("multipart") {
        let name = field.name().unwrap_or_default().to_owned();
        let file = field.file_name().map(str::to_owned);
        let ct = field.content_type().map(str::to_owned);
        let bytes = field.bytes().await.expect("bytes").to_vec();
        parts.push((name, file, ct, bytes));
    }
    r.received.lock().expect("lock").push(Received {
        idempotency_key: headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        parts,
    });
    tokio::time::sleep(r.delay).await;
    let mut answers = r.answers.lock().expect("lock");
    let status = if answers.len() > 1 {
        answers.remove(0)
    } else {
        answers[0]
    };
    let status = StatusCode::from_u16(status).expect("status");
    let body = if status.is_client_error() {
        "refused by the test receiver:\n  field `x` is invalid"
    } else {
        ""
    };
    (status, body)
}

async fn start(answers: &[u16], delay: Duration) -> (url::Url, Receiver) {
    let receiver = Receiver {
        received: Arc::default(),
        answers: Arc::new(Mutex::new(answers.to_vec())),
        delay,
    };
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://{addr}/hook?token=s3cret")
        .parse()
        .expect("url");
    (url, receiver)
}

fn sink(url: url::Url, attempts: u32, timeout: Duration) -> WebhookSink {
    let _ = rustls::crypto::ring::default_provider().install_default();
    WebhookSink::new(WebhookConfig {
        url,
        timeout,
        attempts,
        backoff: Duration::from_millis(10),
        token: None,
    })
    .expect("sink")
}

#[tokio::test]
async fn the_sinks_token_goes_as_a_bearer_authorization_and_only_when_set() {
    let (url, receiver) = start(&[201], Duration::ZERO).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = WebhookConfig::new(url.clone());
    config.token = Some("hook-t0ken".to_owned().into());
    let with_token = WebhookSink::new(config).expect("sink");
    assert!(
        !format!("{with_token:?}").contains("hook-t0ken"),
        "the token never shows in Debug output (logs)"
    );
    with_token
        .store(&crate::common::document("d0c-auth"))
        .await
        .expect("stored");
    sink(url, 1, Duration::from_secs(5))
        .store(&crate::common::document("d0c-no-auth"))
        .await
        .expect("stored");
    let received = receiver.received.lock().expect("lock").clone();
    assert_eq!(
        received[0].authorization.as_deref(),
        Some("Bearer hook-t0ken")
    );
    assert_eq!(received[1].authorization, None);
}

#[tokio::test]
async fn a_document_is_posted_as_multipart_with_its_idempotency_key() {
    let (url, receiver) = start(&[201], Duration::ZERO).await;
    let doc = crate::common::document("d0c-hook");
    let stored = sink(url, 3, Duration::from_secs(30))
        .store(&doc)
        .await
        .expect("stored");
    assert!(!stored.location.contains("s3cret"), "{}", stored.location);
    let received = receiver.received.lock().expect("lock").clone();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.idempotency_key.as_deref(), Some("d0c-hook"));
    let names: Vec<&str> = r.parts.iter().map(|p| p.0.as_str()).collect();
    let mut expected = vec!["metadata.json", "message.eml"];
    expected.extend(doc.metadata.attachments.iter().map(|a| a.file.as_str()));
    assert_eq!(names, expected);
    let meta: domain::document::DocumentMetadata =
        serde_json::from_slice(&r.parts[0].3).expect("metadata json");
    assert_eq!(meta, doc.metadata);
    assert_eq!(r.parts[0].2.as_deref(), Some("application/json"));
    assert_eq!(r.parts[1].3, &doc.message[..]);
    for (a, part) in doc.metadata.attachments.iter().zip(&r.parts[2..]) {
        assert_eq!(part.1.as_deref(), Some(a.file.as_str()));
        assert_eq!(sha256_hex(&part.3), a.sha256);
        assert_eq!(part.2.as_deref(), Some(a.content_type.as_str()));
    }
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let (url, receiver) = start(&[500, 503, 200], Duration::ZERO).await;
    let doc = crate::common::document("d0c-retry");
    sink(url, 3, Duration::from_secs(30))
        .store(&doc)
        .await
        .expect("stored on the third try");
    let received = receiver.received.lock().expect("lock").clone();
    assert_eq!(received.len(), 3);
    assert!(
        received
            .iter()
            .all(|r| r.idempotency_key.as_deref() == Some("d0c-retry"))
    );
}

#[tokio::test]
async fn a_4xx_refusal_is_final_at_once_and_says_what_the_receiver_answered() {
    for status in [400u16, 409, 413, 422] {
        let (url, receiver) = start(&[status], Duration::ZERO).await;
        let err = sink(url, 3, Duration::from_secs(30))
            .store(&crate::common::document("d0c-rejected"))
            .await
            .expect_err("refused");
        assert_eq!(err.kind, sinks::SinkErrorKind::Rejected, "{status}: {err}");
        assert!(err.message.contains(&status.to_string()), "{err}");
        assert!(
            err.message.contains("refused by the test receiver"),
            "{err}"
        );
        assert!(!err.message.contains("s3cret"), "{err}");
        assert_eq!(
            receiver.received.lock().expect("lock").len(),
            1,
            "{status}: no second try"
        );
    }
}

#[tokio::test]
async fn an_answer_that_blames_the_sinks_settings_stops_at_once_and_names_them() {
    for status in [401u16, 403, 404, 405] {
        let (url, receiver) = start(&[status], Duration::ZERO).await;
        let err = sink(url, 3, Duration::from_secs(30))
            .store(&crate::common::document("d0c-misconfigured"))
            .await
            .expect_err("refused");
        assert_eq!(
            err.kind,
            sinks::SinkErrorKind::Misconfigured,
            "{status}: {err}"
        );
        assert!(
            err.message.contains("sink.url") && err.message.contains("sink.token"),
            "{err}"
        );
        assert!(!err.message.contains("s3cret"), "{err}");
        assert_eq!(
            receiver.received.lock().expect("lock").len(),
            1,
            "{status}: no second try"
        );
    }
}

#[tokio::test]
async fn any_other_non_2xx_answer_is_a_transient_failure_after_the_last_try() {
    for status in [408u16, 425, 429, 500, 302] {
        let (url, receiver) = start(&[status], Duration::ZERO).await;
        let err = sink(url, 2, Duration::from_secs(30))
            .store(&crate::common::document("d0c-refused"))
            .await
            .expect_err("refused");
        assert!(
            err.is_transient(),
            "{status}: the mail must stay in the Inbox"
        );
        assert!(err.message.contains(&status.to_string()), "{err}");
        assert!(!err.message.contains("s3cret"), "{err}");
        assert_eq!(receiver.received.lock().expect("lock").len(), 2, "{status}");
    }
}

#[tokio::test]
async fn a_receiver_slower_than_the_time_out_is_a_failure() {
    let (url, receiver) = start(&[200], Duration::from_secs(5)).await;
    let err = sink(url, 2, Duration::from_millis(300))
        .store(&crate::common::document("d0c-slow"))
        .await
        .expect_err("timed out");
    assert!(err.is_transient());
    assert_eq!(receiver.received.lock().expect("lock").len(), 2);
}

#[tokio::test]
async fn an_unreachable_receiver_is_a_transient_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let url = format!("http://{addr}/hook").parse().expect("url");
    let err = sink(url, 2, Duration::from_secs(5))
        .store(&crate::common::document("d0c-down"))
        .await
        .expect_err("unreachable");
    assert!(err.is_transient());
}
