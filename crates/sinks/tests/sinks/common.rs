//! A document to store, shared by the sink tests.

use bytes::Bytes;

use domain::document::DocumentMetadata;
use domain::document::DocumentSource;
use sinks::{Document, NewAttachment};

pub fn document(id: &str) -> Document {
    let metadata = DocumentMetadata {
        document_id: id.to_owned(),
        client: "default".to_owned(),
        importer_id: "0190a1b2-0000-7000-8000-000000000001".to_owned(),
        source: DocumentSource {
            protocol: "graph_delegated".to_owned(),
            mailbox: "invoices@contoso.com".to_owned(),
            message_id: "AAMkAD=+/x".to_owned(),
            internet_message_id: Some("<abc@contoso.com>".to_owned()),
        },
        subject: Some("Rechnung März".to_owned()),
        from: Some("anna@contoso.com".to_owned()),
        to: vec!["invoices@contoso.com".to_owned()],
        received_at: Some("2026-03-01T10:00:00Z".parse().expect("ts")),
        imported_at: "2026-03-01T10:05:00Z".parse().expect("ts"),
        attachments: Vec::new(),
        smime: None,
    };
    let part = |name: Option<&str>, ct: &str, bytes: &[u8]| NewAttachment {
        filename: name.map(str::to_owned),
        fallback_name: "attachment.bin".to_owned(),
        content_type: ct.to_owned(),
        bytes: Bytes::copy_from_slice(bytes),
    };
    Document::new(
        metadata,
        Bytes::from_static(b"From: anna@contoso.com\r\nSubject: x\r\n\r\nbody"),
        vec![
            part(
                Some("Rechnung März.pdf"),
                "application/pdf",
                b"%PDF-1.7 one",
            ),
            part(Some("../../etc/passwd"), "text/plain", b"root:x:0:0"),
            part(
                Some("rechnung märz.PDF"),
                "application/pdf",
                b"%PDF-1.7 two",
            ),
            part(None, "image/png", b"\x89PNG"),
            part(Some("CON"), "application/octet-stream", b""),
        ],
    )
}
