//! A mail's stable identity. The mailbox's own id changes (a Graph move
//! without immutable ids, an IMAP UIDVALIDITY reset), so a document is named
//! by what travels with the mail: its `Message-ID` (Microsoft's advice for
//! deduplication across moves) together with the fingerprint of its
//! content. The header alone is not enough: ERP systems and scanners reuse
//! one `Message-ID` for different mails, and a resent invoice may carry new
//! attachments. The content fingerprint covers what a re-rendering by
//! Exchange keeps (decoded attachments, the text of the body, subject,
//! sender and date) and ignores what it changes (transfer encodings, line
//! lengths, boundaries, header order). The same mail imported twice gets the
//! same `document_id`, two mails get two, and the sinks store a
//! `document_id` once.

use mail_parser::{Message, MimeHeaders};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The namespace of mailferry's document ids (UUIDv5).
const DOCUMENT_NAMESPACE: Uuid = Uuid::from_u128(0x6d61_696c_6665_5272_7944_6f63_756d_656e);

/// Lower-case hex SHA-256 of the raw MIME.
pub fn mime_sha256(raw: &[u8]) -> String {
    sinks::sha256_hex(raw)
}

/// Lower-case hex SHA-256 of what makes a mail this mail (see the module
/// documentation); stable when Exchange re-renders its MIME.
pub fn content_sha256(message: &Message<'_>) -> String {
    let mut h = Sha256::new();
    let mut field = |label: &str, value: &[u8]| {
        h.update(label.as_bytes());
        h.update((value.len() as u64).to_be_bytes());
        h.update(value);
    };
    field("subject", message.subject().unwrap_or_default().as_bytes());
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_ascii_lowercase();
    field("from", from.as_bytes());
    let date = message.date().map(|d| d.to_timestamp()).unwrap_or_default();
    field("date", &date.to_be_bytes());
    // Whitespace is what re-rendering changes in a body; the words are not.
    let body = message.body_text(0).unwrap_or_default();
    let words: Vec<&str> = body.split_whitespace().collect();
    field("body", words.join(" ").as_bytes());
    for &id in &message.attachments {
        if let Some(part) = message.parts.get(id as usize) {
            field(
                "name",
                part.attachment_name().unwrap_or_default().as_bytes(),
            );
            field("part", &Sha256::digest(part.contents()));
        }
    }
    sinks::hex(&h.finalize())
}

/// `document_id` for a mail of `importer_id`: its `Message-ID` and its
/// content, or its content alone when it has no `Message-ID`.
pub fn document_id(
    importer_id: &str,
    internet_message_id: Option<&str>,
    content_sha256: &str,
) -> String {
    let key = match usable_message_id(internet_message_id) {
        Some(id) => format!("{importer_id}\nmessage-id\n{id}\ncontent\n{content_sha256}"),
        None => format!("{importer_id}\ncontent\n{content_sha256}"),
    };
    Uuid::new_v5(&DOCUMENT_NAMESPACE, key.as_bytes()).to_string()
}

/// A `Message-ID` that names something (not blank, not `<>`).
pub fn usable_message_id(internet_message_id: Option<&str>) -> Option<&str> {
    internet_message_id
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "<>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_mail_gets_the_same_id_and_others_do_not() {
        let a = document_id("imp", Some("<x@y>"), "aa");
        assert_eq!(a, document_id("imp", Some("<x@y>"), "aa"));
        assert_ne!(
            a,
            document_id("imp", Some("<x@y>"), "bb"),
            "one Message-ID, other content: another mail"
        );
        assert_ne!(a, document_id("imp2", Some("<x@y>"), "aa"), "per importer");
        assert_ne!(a, document_id("imp", Some("<z@y>"), "aa"));
        let b = document_id("imp", None, "aa");
        assert_eq!(b, document_id("imp", Some("  "), "aa"));
        assert_eq!(b, document_id("imp", Some("<>"), "aa"));
        assert_ne!(b, document_id("imp", None, "ab"));
        assert_eq!(Uuid::parse_str(&a).expect("uuid").get_version_num(), 5);
    }

    fn fingerprint(raw: &str) -> String {
        let m = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .expect("parsed");
        content_sha256(&m)
    }

    const HEAD: &str = "From: a@contoso.com\r\nSubject: Invoice\r\nDate: Mon, 02 Mar 2026 09:00:00 +0000\r\nMessage-ID: <fixed@erp>\r\nMIME-Version: 1.0\r\n";

    #[test]
    fn re_rendering_keeps_the_fingerprint_and_new_content_changes_it() {
        let base64 = format!(
            "{HEAD}Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSee  attached.\r\n--b1\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n"
        );
        // Another boundary, quoted-printable instead of base64, rewrapped text.
        let rerendered = format!(
            "{HEAD}Content-Type: multipart/mixed; boundary=\"=_other\"\r\n\r\n--=_other\r\nContent-Type: text/plain\r\n\r\nSee\r\nattached.\r\n--=_other\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n%PDF-1.4=0A\r\n--=_other--\r\n"
        );
        let other_pdf = base64.replace("JVBERi0xLjQK", "JVBERi0xLjUK");
        assert_eq!(fingerprint(&base64), fingerprint(&rerendered));
        assert_ne!(fingerprint(&base64), fingerprint(&other_pdf));
        let other_body = base64.replace("See  attached.", "Second invoice attached.");
        assert_ne!(fingerprint(&base64), fingerprint(&other_body));
    }
}
