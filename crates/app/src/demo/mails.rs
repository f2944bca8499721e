//! The demo mailbox's story: besides the emulator's three sample invoices,
//! mails of the kinds a document importer meets, so that the first import
//! fills both Exported and Error and shows every kind of reason. Each comes
//! with what the demo importer's rules make of it (checked by a test).

use base64::Engine as _;

/// What the demo importer should make of a mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Import,
    /// Goes to Error with this reason code.
    Error(&'static str),
}

pub struct DemoMail {
    pub mime: String,
    pub fate: Fate,
}

/// The demo importer's rules: who may send, what is never a document.
pub fn importer_rules() -> serde_json::Value {
    serde_json::json!({
        "sender_allow": ["*@supplier.example", "*@contoso.example", "*@fabrikam.example"],
        "subject_block": ["*newsletter*"]
    })
}

/// The attachment types the demo importer takes.
pub fn allowed_types() -> serde_json::Value {
    serde_json::json!([
        "application/pdf",
        "image/*",
        "application/xml",
        "text/xml",
        "message/rfc822"
    ])
}

fn b64(bytes: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    // 76-character lines, as mail has them.
    text.as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// A small one-page PDF that says `text`.
fn pdf(text: &str) -> Vec<u8> {
    let stream = format!("BT /F1 18 Tf 72 720 Td ({text}) Tj ET");
    format!(
        "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n\
         2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n\
         3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R\
         /Resources<</Font<</F1 5 0 R>>>>>>endobj\n\
         4 0 obj<</Length {}>>stream\n{stream}\nendstream endobj\n\
         5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n\
         trailer<</Root 1 0 R>>\n%%EOF\n",
        stream.len()
    )
    .into_bytes()
}

fn mail(n: u32, from: &str, subject: &str, body: &str, parts: &[(&str, &str, Vec<u8>)]) -> String {
    let mut mime = format!(
        "From: {from}\r\nTo: Alice Example <alice@contoso.example>\r\nSubject: {subject}\r\n\
         Date: Fri, 02 Jan 2026 {:02}:15:00 +0000\r\nMessage-ID: <demo-{n}@mailferry.example>\r\n\
         MIME-Version: 1.0\r\n",
        8 + n % 12
    );
    if parts.is_empty() {
        mime.push_str(&format!(
            "Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        ));
        return mime;
    }
    mime.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"demo{n}\"\r\n\r\n--demo{n}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ));
    for (content_type, name, bytes) in parts {
        if *content_type == "message/rfc822" {
            mime.push_str(&format!(
                "--demo{n}\r\nContent-Type: message/rfc822\r\n\
                 Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n{}\r\n",
                String::from_utf8_lossy(bytes)
            ));
        } else {
            mime.push_str(&format!(
                "--demo{n}\r\nContent-Type: {content_type}; name=\"{name}\"\r\n\
                 Content-Disposition: attachment; filename=\"{name}\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                b64(bytes)
            ));
        }
    }
    mime.push_str(&format!("--demo{n}--\r\n"));
    mime
}

/// A tiny JPEG-like scan (JFIF header, enough to be an image file).
fn scan() -> Vec<u8> {
    let mut bytes = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00,
    ];
    bytes.extend((0..2048u32).map(|i| (i * 31 % 251) as u8));
    bytes.extend([0xFF, 0xD9]);
    bytes
}

const XRECHNUNG: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ubl:Invoice xmlns:ubl="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
  xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0</cbc:CustomizationID>
  <cbc:ID>RE-2026-4711</cbc:ID>
  <cbc:IssueDate>2026-01-02</cbc:IssueDate>
  <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
</ubl:Invoice>
"#;

/// The demo mailbox's extra mails, in the order they arrive.
pub fn mails() -> Vec<DemoMail> {
    let forwarded = mail(
        90,
        "Fabrikam Accounts <accounts@fabrikam.example>",
        "Invoice 2026-118",
        "The original invoice mail.",
        &[(
            "application/pdf",
            "invoice-2026-118.pdf",
            pdf("Fabrikam invoice 2026-118"),
        )],
    );
    vec![
        DemoMail {
            mime: mail(
                1,
                "Northwind Supplies <billing@supplier.example>",
                "Invoice RE-2026-0042",
                "Dear customer, please find our invoice attached.",
                &[(
                    "application/pdf",
                    "RE-2026-0042.pdf",
                    pdf("Invoice RE-2026-0042"),
                )],
            ),
            fate: Fate::Import,
        },
        DemoMail {
            mime: mail(
                2,
                "Northwind Supplies <billing@supplier.example>",
                "XRechnung RE-2026-4711",
                "The electronic invoice (XRechnung 3.0) is attached.",
                &[(
                    "application/xml",
                    "xrechnung-RE-2026-4711.xml",
                    XRECHNUNG.as_bytes().to_vec(),
                )],
            ),
            fate: Fate::Import,
        },
        DemoMail {
            mime: mail(
                3,
                "Scanner 3rd floor <scanner@contoso.example>",
                "Scanned document",
                "Scanned on the 3rd floor copier.",
                &[("image/jpeg", "scan-0001.jpg", scan())],
            ),
            fate: Fate::Import,
        },
        DemoMail {
            mime: mail(
                4,
                "Fabrikam Accounts <accounts@fabrikam.example>",
                "Fwd: Invoice 2026-118",
                "Forwarding the invoice mail as it came.",
                &[(
                    "message/rfc822",
                    "Invoice 2026-118.eml",
                    forwarded.into_bytes(),
                )],
            ),
            fate: Fate::Import,
        },
        DemoMail {
            mime: mail(
                5,
                "Contoso Logistics <logistics@contoso.example>",
                "Delivery note LS-2026-77",
                "Delivery note for order 77.",
                &[(
                    "application/pdf",
                    "LS-2026-77.pdf",
                    pdf("Delivery note LS-2026-77"),
                )],
            ),
            fate: Fate::Import,
        },
        DemoMail {
            mime: mail(
                6,
                "Northwind Supplies <billing@supplier.example>",
                "Question about invoice RE-2026-0042",
                "Could you confirm the payment date? No attachment here.",
                &[],
            ),
            fate: Fate::Error("no_importable_attachment"),
        },
        DemoMail {
            mime: mail(
                7,
                "Northwind Supplies <news@supplier.example>",
                "Northwind newsletter: spring catalogue",
                "Our spring catalogue is out.",
                &[("application/pdf", "catalogue.pdf", pdf("Spring catalogue"))],
            ),
            fate: Fate::Error("rule:subject_block"),
        },
        DemoMail {
            mime: mail(
                8,
                "Unknown Sender <offers@unknown.example>",
                "Invoice attached (urgent)",
                "Please pay now.",
                &[("application/pdf", "invoice.pdf", pdf("Suspicious invoice"))],
            ),
            fate: Fate::Error("rule:sender_allow"),
        },
        DemoMail {
            mime: mail(
                9,
                "Contoso Facilities <facilities@contoso.example>",
                "Photos of the broken door",
                "Only text, the photos follow separately.",
                &[("text/plain", "notes.txt", b"door, 2nd floor".to_vec())],
            ),
            fate: Fate::Error("no_importable_attachment"),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the demo promises: its first import fills both Exported and
    /// Error, with every kind of reason, decided by the real rules.
    #[test]
    fn the_demo_mails_end_where_the_demo_importer_sends_them() {
        let input: domain::importer::ImporterInput = serde_json::from_value(serde_json::json!({
            "name": "demo", "protocol": "graph_delegated",
            "client_id": "0b7a1c52-2f3e-4c7f-9a55-6d1e8f0c4b21", "client_secret": "s",
            "tenant_id": "contoso.example",
            "folders": { "inbox": "Inbox", "exported": "Exported", "error": "Error" },
            "attachments": { "allowed_types": allowed_types() },
            "rules": importer_rules()
        }))
        .unwrap_or_default();
        let settings = input.validate(None).map(|v| v.settings);
        assert!(settings.is_ok(), "{settings:?}");
        let Ok(settings) = settings else { return };
        let mails = mails();
        assert!(mails.len() >= 9);
        for (i, m) in mails.iter().enumerate() {
            let keys = domain::content::ContentKeys::default();
            let analysis = import::mime::analyze_with(
                m.mime.as_bytes(),
                &import::mime::Policy::of(&settings, &keys),
            );
            let got = match analysis.decision {
                import::Decision::Import { .. } => Fate::Import,
                import::Decision::ToError { reason } => {
                    let code = mails_code(&reason.code);
                    Fate::Error(code)
                }
            };
            assert_eq!(got, m.fate, "demo mail {i}");
        }
        assert!(mails.iter().any(|m| m.fate == Fate::Import));
        for reason in [
            "no_importable_attachment",
            "rule:subject_block",
            "rule:sender_allow",
        ] {
            assert!(
                mails.iter().any(|m| m.fate == Fate::Error(reason)),
                "{reason}"
            );
        }
    }

    /// The reason code as one of the demo's (to compare as `&'static str`).
    fn mails_code(code: &str) -> &'static str {
        [
            "no_importable_attachment",
            "rule:subject_block",
            "rule:sender_allow",
            "unparsable",
        ]
        .into_iter()
        .find(|c| *c == code)
        .unwrap_or("other")
    }
}
