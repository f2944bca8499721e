//! A mail's stable identity. The mailbox's own id changes (a Graph move
//! without immutable ids, an IMAP UIDVALIDITY reset), so a document is named
//! by what travels with the mail: its `Message-ID` (Microsoft's advice for
//! deduplication across moves), or, for a mail without one, the SHA-256 of
//! its MIME. The same mail imported twice gets the same `document_id`, and
//! the sinks store a `document_id` once.

use uuid::Uuid;

/// The namespace of mailferry's document ids (UUIDv5).
const DOCUMENT_NAMESPACE: Uuid = Uuid::from_u128(0x6d61_696c_6665_5272_7944_6f63_756d_656e);

/// Lower-case hex SHA-256 of the raw MIME.
pub fn mime_sha256(raw: &[u8]) -> String {
    sinks::sha256_hex(raw)
}

/// `document_id` for a mail of `importer_id`.
pub fn document_id(
    importer_id: &str,
    internet_message_id: Option<&str>,
    mime_sha256: &str,
) -> String {
    let key = match internet_message_id
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "<>")
    {
        Some(id) => format!("{importer_id}\nmessage-id\n{id}"),
        None => format!("{importer_id}\nmime-sha256\n{mime_sha256}"),
    };
    Uuid::new_v5(&DOCUMENT_NAMESPACE, key.as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_mail_gets_the_same_id_and_others_do_not() {
        let a = document_id("imp", Some("<x@y>"), "aa");
        assert_eq!(
            a,
            document_id("imp", Some("<x@y>"), "bb"),
            "Message-ID wins"
        );
        assert_ne!(a, document_id("imp2", Some("<x@y>"), "aa"), "per importer");
        assert_ne!(a, document_id("imp", Some("<z@y>"), "aa"));
        let b = document_id("imp", None, "aa");
        assert_eq!(b, document_id("imp", Some("  "), "aa"));
        assert_ne!(b, document_id("imp", None, "ab"));
        assert_eq!(Uuid::parse_str(&a).expect("uuid").get_version_num(), 5);
    }
}
