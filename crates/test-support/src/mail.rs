//! Mails built from a few facts with mail-builder, instead of raw MIME
//! typed out per test. The same facts give the same bytes (the date, the
//! Message-ID and the boundary are fixed), so a test can build "the same
//! mail again".

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::{BodyPart, MimePart};

/// A mail: a text body and attachments.
///
/// ```ignore
/// let raw = TestMail::new("Invoice 7")
///     .message_id("<inv-7@erp.fabrikam.example>")
///     .attach("application/pdf", "invoice-7.pdf", pdf)
///     .build();
/// ```
#[derive(Debug, Clone)]
pub struct TestMail {
    from: (Option<String>, String),
    to: (Option<String>, String),
    subject: String,
    /// Seconds since the epoch.
    date: i64,
    message_id: Option<String>,
    text: String,
    attachments: Vec<(String, String, Vec<u8>)>,
}

impl TestMail {
    /// From Fabrikam Billing <billing@fabrikam.example> to Invoices
    /// <invoices@contoso.com>, dated Mon, 02 Mar 2026 09:00:00 +0000, with
    /// a one-line text body and no attachment.
    pub fn new(subject: &str) -> Self {
        Self {
            from: (
                Some("Fabrikam Billing".to_owned()),
                "billing@fabrikam.example".to_owned(),
            ),
            to: (
                Some("Invoices".to_owned()),
                "invoices@contoso.com".to_owned(),
            ),
            subject: subject.to_owned(),
            date: 1_772_442_000,
            message_id: None,
            text: "Please find the invoice attached.".to_owned(),
            attachments: Vec::new(),
        }
    }

    pub fn from(mut self, name: Option<&str>, address: &str) -> Self {
        self.from = (name.map(str::to_owned), address.to_owned());
        self
    }

    pub fn to(mut self, name: Option<&str>, address: &str) -> Self {
        self.to = (name.map(str::to_owned), address.to_owned());
        self
    }

    /// The `Message-ID`, with or without its angle brackets (default: made
    /// from the subject, `<invoice-7@test.fabrikam.example>`).
    pub fn message_id(mut self, id: &str) -> Self {
        self.message_id = Some(id.trim_start_matches('<').trim_end_matches('>').to_owned());
        self
    }

    /// The `Date`, as an RFC 3339 instant.
    pub fn date(mut self, at: &str) -> Self {
        self.date = at
            .parse::<jiff::Timestamp>()
            .expect("an RFC 3339 instant")
            .as_second();
        self
    }

    pub fn text(mut self, body: &str) -> Self {
        self.text = body.to_owned();
        self
    }

    /// Attaches `bytes` as `name` (`Content-Disposition: attachment`).
    pub fn attach(mut self, content_type: &str, name: &str, bytes: &[u8]) -> Self {
        self.attachments
            .push((content_type.to_owned(), name.to_owned(), bytes.to_vec()));
        self
    }

    /// The mail's bytes: `text/plain` alone, or `multipart/mixed` with the
    /// text first and the attachments in order.
    pub fn build(&self) -> Vec<u8> {
        let address = |(name, address): &(Option<String>, String)| {
            Address::new_address(name.clone(), address.clone())
        };
        let id = self.message_id.clone().unwrap_or_else(|| {
            let slug: String = self
                .subject
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect();
            format!("{slug}@test.fabrikam.example")
        });
        let builder = MessageBuilder::new()
            .from(address(&self.from))
            .to(address(&self.to))
            .subject(self.subject.clone())
            .date(self.date)
            .message_id(id);
        let text = MimePart::new("text/plain", self.text.clone());
        let body = if self.attachments.is_empty() {
            text
        } else {
            let mut parts = vec![text];
            parts.extend(self.attachments.iter().map(|(content_type, name, bytes)| {
                MimePart::new(content_type.clone(), BodyPart::Binary(bytes.clone().into()))
                    .attachment(name.clone())
            }));
            MimePart::new(
                ContentType::new("multipart/mixed").attribute("boundary", "mailferry-test-part"),
                parts,
            )
        };
        builder
            .body(body)
            .write_to_vec()
            .expect("mail-builder writes to memory")
    }
}

/// An invoice mail from Fabrikam's ERP: the defaults of [`TestMail::new`],
/// `message_id`, `subject` and one attachment `invoice.pdf` holding `pdf`.
pub fn invoice_mail(message_id: &str, subject: &str, pdf: &[u8]) -> Vec<u8> {
    TestMail::new(subject)
        .message_id(message_id)
        .attach("application/pdf", "invoice.pdf", pdf)
        .build()
}
