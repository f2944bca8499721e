//! The filesystem spool writes the contract's layout, whole or not at all,
//! once per document id.

use std::path::Path;

use domain::document::DocumentMetadata;
use sinks::{DocumentSink, FilesystemSpool, sha256_hex};

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).expect("inside").display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_document_is_written_as_the_contract_says() {
    let data = tempfile::tempdir().expect("tempdir");
    let spool = FilesystemSpool::new(data.path());
    let doc = crate::common::document("0190a1b2-0000-5000-8000-00000000d0c1");
    let stored = spool.store(&doc).await.expect("stored");
    assert!(!stored.already_present);

    let dir = data
        .path()
        .join("documents/default/0190a1b2-0000-7000-8000-000000000001/0190a1b2-0000-5000-8000-00000000d0c1");
    assert_eq!(stored.location, dir.display().to_string());
    assert_eq!(
        files_under(&dir),
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
    assert_eq!(
        std::fs::read(dir.join("message.eml")).expect("eml"),
        &doc.message[..]
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("metadata.json")).expect("metadata"))
            .expect("json");
    for field in [
        "document_id",
        "client",
        "importer_id",
        "source",
        "subject",
        "from",
        "to",
        "received_at",
        "imported_at",
        "attachments",
    ] {
        assert!(meta.get(field).is_some(), "metadata.json lacks {field}");
    }
    for field in ["protocol", "mailbox", "message_id", "internet_message_id"] {
        assert!(meta["source"].get(field).is_some(), "source lacks {field}");
    }
    assert_eq!(meta["received_at"], "2026-03-01T10:00:00Z");
    let meta: DocumentMetadata = serde_json::from_value(meta).expect("typed");
    assert_eq!(meta, doc.metadata);
    assert_eq!(
        meta.attachments[1].filename.as_deref(),
        Some("../../etc/passwd")
    );
    for a in &meta.attachments {
        let bytes = std::fs::read(dir.join(&a.file)).expect("attachment");
        assert_eq!(a.size, bytes.len() as u64);
        assert_eq!(a.sha256, sha256_hex(&bytes));
        for key in ["file", "filename", "content_type", "size", "sha256"] {
            assert!(serde_json::to_value(a).expect("json").get(key).is_some());
        }
    }
    // Nothing escaped: the only entry of the spool root is the client folder.
    assert!(!data.path().join("etc").exists());
    assert!(!data.path().join("documents/etc").exists());
}

#[tokio::test]
async fn storing_the_same_document_twice_keeps_the_first() {
    let data = tempfile::tempdir().expect("tempdir");
    let spool = FilesystemSpool::new(data.path());
    let doc = crate::common::document("d0c-twice");
    spool.store(&doc).await.expect("first");
    let mut again = doc.clone();
    again.metadata.imported_at = "2027-01-01T00:00:00Z".parse().expect("ts");
    let stored = spool.store(&again).await.expect("second");
    assert!(stored.already_present);
    let importer_dir = data
        .path()
        .join("documents/default/0190a1b2-0000-7000-8000-000000000001");
    let entries: Vec<_> = std::fs::read_dir(&importer_dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(entries, ["d0c-twice"], "one document, no temp folders left");
    let meta: DocumentMetadata = serde_json::from_slice(
        &std::fs::read(importer_dir.join("d0c-twice/metadata.json")).expect("read"),
    )
    .expect("json");
    assert_eq!(meta.imported_at, doc.metadata.imported_at);
}

#[tokio::test]
async fn concurrent_writers_of_one_document_produce_one_folder() {
    let data = tempfile::tempdir().expect("tempdir");
    let spool = FilesystemSpool::new(data.path());
    let doc = crate::common::document("d0c-race");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (spool, doc) = (spool.clone(), doc.clone());
            tokio::spawn(async move { spool.store(&doc).await })
        })
        .collect();
    let mut fresh = 0;
    for t in tasks {
        if !t.await.expect("join").expect("stored").already_present {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1, "exactly one writer created the document");
    let importer_dir = data
        .path()
        .join("documents/default/0190a1b2-0000-7000-8000-000000000001");
    assert_eq!(std::fs::read_dir(&importer_dir).expect("dir").count(), 1);
}

#[tokio::test]
async fn a_crash_leftover_is_never_a_document_and_is_cleaned_up() {
    let data = tempfile::tempdir().expect("tempdir");
    let spool = FilesystemSpool::new(data.path());
    let doc = crate::common::document("d0c-crash");
    let importer_dir = data
        .path()
        .join("documents/default/0190a1b2-0000-7000-8000-000000000001");
    let leftover = importer_dir.join(".tmp-d0c-crash-deadbeef");
    std::fs::create_dir_all(leftover.join("attachments")).expect("leftover");
    std::fs::write(leftover.join("message.eml"), b"half").expect("half");
    assert!(!importer_dir.join("d0c-crash").exists());
    let stored = spool.store(&doc).await.expect("stored");
    assert!(!stored.already_present);
    assert!(!leftover.exists());
    assert_eq!(
        std::fs::read(importer_dir.join("d0c-crash/message.eml")).expect("eml"),
        &doc.message[..]
    );
}

#[tokio::test]
async fn ids_that_are_not_plain_folder_names_are_refused() {
    let data = tempfile::tempdir().expect("tempdir");
    let spool = FilesystemSpool::new(data.path());
    for bad in ["..", "a/b", "", ".tmp-x", "a\\b"] {
        let mut doc = crate::common::document("ok");
        doc.metadata.document_id = bad.to_owned();
        let err = spool.store(&doc).await.expect_err("refused");
        assert!(!err.is_transient(), "{bad}: {err}");
    }
    assert!(
        !data
            .path()
            .join("documents/default/0190a1b2-0000-7000-8000-000000000001/b")
            .exists()
    );
}
