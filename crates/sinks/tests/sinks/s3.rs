//! The S3 sink against a real S3 server (moto on loopback): the spool's
//! layout as keys, `metadata.json` last, once per document id, readable and
//! purgeable, and never outside its own prefix.

use std::time::Duration;

use secrecy::SecretString;
use sinks::{DocumentSink, S3Config, S3Sink, SinkErrorKind};
use test_support::s3::{ACCESS_KEY_ID, REGION, S3Server, SECRET_ACCESS_KEY};

fn sink(server: &S3Server, bucket: &str, prefix: &str) -> S3Sink {
    S3Sink::new(S3Config {
        bucket: bucket.to_owned(),
        endpoint: Some(server.url.clone()),
        region: REGION.to_owned(),
        prefix: prefix.to_owned(),
        access_key_id: ACCESS_KEY_ID.to_owned(),
        secret_access_key: SecretString::from(SECRET_ACCESS_KEY),
        timeout: Duration::from_secs(10),
    })
    .expect("sink")
}

const DOC: &str = "0190a1b2-0000-5000-8000-00000000d0c1";
const BASE: &str =
    "tenant-a/default/0190a1b2-0000-7000-8000-000000000001/0190a1b2-0000-5000-8000-00000000d0c1/";

#[tokio::test]
async fn a_document_becomes_the_spools_layout_as_keys_once() {
    let server = S3Server::from_env();
    let bucket = server.new_bucket().await;
    let s3 = sink(&server, &bucket, "tenant-a/");
    let doc = crate::common::document(DOC);

    let stored = s3.store(&doc).await.expect("stored");
    assert!(!stored.already_present);
    assert_eq!(stored.location, format!("s3://{bucket}/{BASE}"));
    let objects = server.objects(&bucket).await;
    let keys: Vec<&str> = objects
        .keys()
        .map(|k| k.strip_prefix(BASE).expect("under the document's prefix"))
        .collect();
    assert_eq!(
        keys,
        [
            "attachments/Rechnung März.pdf",
            "attachments/_CON",
            "attachments/attachment.bin",
            "attachments/passwd",
            "attachments/rechnung märz (2).PDF",
            "message.eml",
            "metadata.json",
        ]
    );
    assert_eq!(objects[&format!("{BASE}message.eml")], &doc.message[..]);
    assert_eq!(
        objects[&format!("{BASE}attachments/Rechnung März.pdf")],
        b"%PDF-1.7 one"
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&objects[&format!("{BASE}metadata.json")]).expect("json");
    assert_eq!(meta["document_id"], DOC);
    assert_eq!(meta["attachments"].as_array().expect("list").len(), 5);

    // The same document again writes nothing new.
    let again = s3.store(&doc).await.expect("again");
    assert!(again.already_present);
    assert_eq!(again.location, stored.location);
    assert_eq!(server.objects(&bucket).await.len(), 7);

    // Read back through the sink, as a download does.
    assert_eq!(
        s3.read(&stored.location, "attachments/passwd")
            .await
            .expect("read")
            .as_deref(),
        Some(&b"root:x:0:0"[..])
    );
    assert_eq!(
        s3.read(&stored.location, "attachments/none.pdf")
            .await
            .expect("read"),
        None
    );
    assert_eq!(
        s3.read(&stored.location, "../other/message.eml")
            .await
            .expect("read"),
        None,
        "a path leaving the document is never read"
    );

    s3.remove(&stored.location).await.expect("removed");
    assert!(server.objects(&bucket).await.is_empty());
    s3.remove(&stored.location)
        .await
        .expect("removing again succeeds");
}

#[tokio::test]
async fn a_half_written_document_is_absent_and_written_again() {
    let server = S3Server::from_env();
    let bucket = server.new_bucket().await;
    let s3 = sink(&server, &bucket, "tenant-a/");
    // A crash after the message but before the metadata.
    server
        .put(&bucket, &format!("{BASE}message.eml"), b"partial")
        .await;
    let doc = crate::common::document(DOC);
    let stored = s3.store(&doc).await.expect("stored");
    assert!(!stored.already_present, "no metadata: not there yet");
    let objects = server.objects(&bucket).await;
    assert_eq!(objects.len(), 7);
    assert_eq!(objects[&format!("{BASE}message.eml")], &doc.message[..]);
}

#[tokio::test]
async fn locations_outside_the_sinks_prefix_are_refused() {
    let server = S3Server::from_env();
    let bucket = server.new_bucket().await;
    let other = server.new_bucket().await;
    server.put(&other, "keep/me", b"x").await;
    server.put(&bucket, "elsewhere/keep", b"x").await;
    let s3 = sink(&server, &bucket, "tenant-a/");
    for location in [
        format!("s3://{other}/tenant-a/default/i/d/"),
        format!("s3://{bucket}/elsewhere/"),
        format!("s3://{bucket}/tenant-a/"),
        format!("s3://{bucket}/tenant-a/../elsewhere/"),
        "/var/lib/mailferry/documents/default/i/d".to_owned(),
    ] {
        let err = s3.remove(&location).await.expect_err(&location);
        assert_eq!(err.kind, SinkErrorKind::Unstorable, "{location}: {err}");
    }
    assert_eq!(server.objects(&other).await.len(), 1);
    assert_eq!(server.objects(&bucket).await.len(), 1);
}

#[tokio::test]
async fn a_missing_bucket_is_a_settings_problem_and_an_unreachable_server_is_transient() {
    let server = S3Server::from_env();
    let doc = crate::common::document(DOC);
    let err = sink(&server, "no-such-bucket-here", "")
        .store(&doc)
        .await
        .expect_err("no bucket");
    assert_eq!(err.kind, SinkErrorKind::Misconfigured, "{err}");
    assert!(err.message.contains("no-such-bucket-here"), "{err}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let dead = S3Server {
        url: format!("http://{}", closed.local_addr().expect("addr")),
    };
    drop(closed);
    let err = sink(&dead, "invoices", "")
        .store(&doc)
        .await
        .expect_err("no server");
    assert_eq!(err.kind, SinkErrorKind::Transient, "{err}");
    assert!(err.message.contains("stays in the Inbox"), "{err}");
}
