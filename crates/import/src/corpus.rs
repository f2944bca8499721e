//! A corpus of real-world-shaped mails with the outcome each must have under
//! [`attachment_rules`] and [`import_rules`] (feature `test-corpus`; used by
//! this crate's tests and by the end-to-end tests against the emulator).
//!
//! Most mails are built with mail-builder; the shapes builders refuse to
//! make (RFC 2231 continuations, encoded-word names, broken base64, a
//! missing closing boundary, raw Latin-1 headers, not MIME at all) are
//! hand-written fixtures under `tests/corpus/`: `NAME.eml` with its
//! expected outcome in `NAME.json` (see [`fixtures`] and the README there).

use std::path::{Path, PathBuf};

use domain::importer::AttachmentRules;
use domain::rules::ImportRules;
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::mime::{BodyPart, MimePart};
use serde::Deserialize;

/// What a corpus mail must become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// A document whose attachments are exactly these, in order.
    Import(Vec<ExpectedFile>),
    /// The Error folder with this reason code.
    Error(String),
}

/// An attachment a document must hold: its file name inside
/// `attachments/`, and the SHA-256 (lowercase hex) and size of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFile {
    pub name: String,
    pub sha256: String,
    pub size: u64,
}

impl ExpectedFile {
    /// The file `name` holding `bytes`.
    pub fn of(name: &str, bytes: &[u8]) -> Self {
        Self {
            name: name.to_owned(),
            sha256: sinks::sha256_hex(bytes),
            size: bytes.len() as u64,
        }
    }

    /// Whether `bytes` are this file's bytes.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        bytes.len() as u64 == self.size && sinks::sha256_hex(bytes) == self.sha256
    }
}

#[derive(Debug, Clone)]
pub struct CorpusMail {
    pub name: String,
    pub raw: Vec<u8>,
    pub expected: Expected,
    /// The `.json` holding the expected outcome of a hand-written fixture
    /// (`None`: built in code).
    pub fixture: Option<PathBuf>,
}

impl CorpusMail {
    /// The mail's name, and its fixture's `.json` when it has one: what a
    /// failing assertion should name.
    pub fn label(&self) -> String {
        match &self.fixture {
            Some(json) => format!("{} ({})", self.name, json.display()),
            None => self.name.clone(),
        }
    }
}

/// The corpus's attachment settings: all types, no inline parts, parts
/// under 100 bytes (logos, signatures) skipped.
pub fn attachment_rules() -> AttachmentRules {
    AttachmentRules {
        allowed_types: Vec::new(),
        allowed_extensions: Vec::new(),
        include_inline: false,
        min_size: 100,
        exclude_names: Vec::new(),
        include_names: Vec::new(),
    }
}

/// The corpus's rules, in the importer body's shape (`rules`).
pub fn import_rules_json() -> serde_json::Value {
    serde_json::json!({
        "sender_allow": ["*@contoso.com", "*@fabrikam.example"],
        "subject_block": ["*newsletter*"]
    })
}

/// The corpus's attachment settings, in the importer body's shape (`attachments`).
pub fn attachment_rules_json() -> serde_json::Value {
    serde_json::json!({ "include_inline": false, "min_size": 100 })
}

pub fn import_rules() -> ImportRules {
    ImportRules {
        sender_allow: vec!["*@contoso.com".into(), "*@fabrikam.example".into()],
        subject_block: vec!["*newsletter*".into()],
    }
}

/// Deterministic bytes that look like a file of the given kind.
pub fn file_bytes(kind: &str, len: usize, seed: u64) -> Vec<u8> {
    let header: &[u8] = match kind {
        "pdf" => b"%PDF-1.7\n",
        "png" => b"\x89PNG\r\n\x1a\n",
        "jpg" => b"\xff\xd8\xff\xe0",
        "xlsx" | "docx" | "zip" => b"PK\x03\x04",
        _ => b"",
    };
    let mut out = header.to_vec();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        // xorshift: varied bytes, including NUL and 0xFF, reproducible.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push((x >> 24) as u8);
    }
    out.truncate(len);
    out
}

fn base(name: &str, from: &str, subject: &str) -> MessageBuilder<'static> {
    MessageBuilder::new()
        .from(Address::new_address(None::<&str>, from.to_owned()))
        .to(vec![
            Address::new_address(Some("Invoices"), "invoices@contoso.com"),
            Address::new_address(None::<&str>, "archive@contoso.com"),
        ])
        .subject(subject.to_owned())
        .message_id(format!("{name}@corpus.contoso.com"))
        .date(1_772_000_000i64)
}

fn write(b: MessageBuilder<'_>) -> Vec<u8> {
    b.write_to_vec().unwrap_or_default()
}

fn import(files: &[(&str, &[u8])]) -> Expected {
    Expected::Import(files.iter().map(|(n, b)| ExpectedFile::of(n, b)).collect())
}

fn error(code: &str) -> Expected {
    Expected::Error(code.to_owned())
}

fn attachment(ct: &str, name: &str, bytes: &[u8]) -> MimePart<'static> {
    MimePart::new(ct.to_owned(), BodyPart::Binary(bytes.to_vec().into()))
        .attachment(name.to_owned())
}

/// An inner mail to attach; its bytes are what the `.eml` file must hold.
fn inner_mail() -> Vec<u8> {
    write(
        base(
            "inner",
            "supplier@fabrikam.example",
            "Original invoice 7781",
        )
        .text_body("Please find the invoice attached.")
        .attachment(
            "application/pdf",
            "invoice-7781.pdf",
            file_bytes("pdf", 2_000, 77),
        ),
    )
}

/// Every corpus mail but the 20 MB one (see [`large_mail`]).
pub fn corpus() -> Vec<CorpusMail> {
    let mut out = Vec::new();
    let mut add = |name: &str, raw: Vec<u8>, expected: Expected| {
        out.push(CorpusMail {
            name: name.to_owned(),
            raw,
            expected,
            fixture: None,
        })
    };
    let pdf = file_bytes("pdf", 4_096, 1);
    let xlsx = file_bytes("xlsx", 3_000, 2);
    let png = file_bytes("png", 2_048, 3);
    let logo = file_bytes("png", 60, 4);
    let docx = file_bytes("docx", 1_500, 5);
    let jpg = file_bytes("jpg", 5_000, 6);

    add(
        "single_pdf",
        write(
            base("single_pdf", "anna@contoso.com", "Invoice 1001")
                .text_body("Invoice attached.")
                .attachment("application/pdf", "invoice-1001.pdf", pdf.clone()),
        ),
        import(&[("invoice-1001.pdf", &pdf)]),
    );
    add(
        "three_attachments",
        write(
            base("three_attachments", "anna@contoso.com", "Quarter close")
                .text_body("Three files.")
                .attachment("application/pdf", "report.pdf", pdf.clone())
                .attachment(
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    "figures.xlsx",
                    xlsx.clone(),
                )
                .attachment("image/png", "chart.png", png.clone()),
        ),
        import(&[
            ("report.pdf", &pdf),
            ("figures.xlsx", &xlsx),
            ("chart.png", &png),
        ]),
    );
    add(
        "no_attachment",
        write(base("no_attachment", "anna@contoso.com", "Just text").text_body("Hello")),
        error(crate::mime::NO_IMPORTABLE_ATTACHMENT),
    );
    add(
        "html_with_only_inline_images",
        write(
            base(
                "html_with_only_inline_images",
                "anna@contoso.com",
                "Signature only",
            )
            .html_body("<p>Hi</p><img src=\"cid:logo\"><img src=\"cid:banner\">")
            .inline("image/png", "logo", png.clone())
            .inline("image/jpeg", "banner", jpg.clone()),
        ),
        error(crate::mime::NO_IMPORTABLE_ATTACHMENT),
    );
    add(
        "inline_logo_and_pdf",
        write(
            base(
                "inline_logo_and_pdf",
                "anna@contoso.com",
                "Invoice with logo",
            )
            .html_body("<p>Invoice</p><img src=\"cid:logo\">")
            .inline("image/png", "logo", png.clone())
            .attachment("application/pdf", "invoice.pdf", pdf.clone()),
        ),
        import(&[("invoice.pdf", &pdf)]),
    );
    add(
        "tiny_logo_only",
        write(
            base("tiny_logo_only", "anna@contoso.com", "Tiny logo")
                .text_body("logo")
                .attachment("image/png", "logo.png", logo.clone()),
        ),
        error(crate::mime::NO_IMPORTABLE_ATTACHMENT),
    );
    add(
        "tiny_logo_and_pdf",
        write(
            base("tiny_logo_and_pdf", "anna@contoso.com", "Logo and PDF")
                .text_body("logo")
                .attachment("image/png", "logo.png", logo.clone())
                .attachment("application/pdf", "scan.pdf", pdf.clone()),
        ),
        import(&[("scan.pdf", &pdf)]),
    );
    let inner = inner_mail();
    add(
        "attached_mail",
        write(
            base(
                "attached_mail",
                "anna@contoso.com",
                "Fwd: Original invoice 7781",
            )
            .text_body("Forwarding.")
            .attachment("message/rfc822", "Original invoice 7781.eml", inner.clone()),
        ),
        import(&[("Original invoice 7781.eml", &inner)]),
    );
    add(
        "attached_mail_and_pdf",
        write(
            base("attached_mail_and_pdf", "anna@contoso.com", "Two things")
                .text_body("Forwarding.")
                .attachment("message/rfc822", "forwarded", inner.clone())
                .attachment("application/pdf", "cover.pdf", pdf.clone()),
        ),
        import(&[("forwarded.eml", &inner), ("cover.pdf", &pdf)]),
    );
    add(
        "non_ascii_name_german",
        write(
            base("non_ascii_name_german", "anna@contoso.com", "Rechnung März")
                .text_body("Anbei die Rechnung.")
                .attachment(
                    "application/pdf",
                    "Rechnung März 2026 – Nr. 42.pdf",
                    pdf.clone(),
                ),
        ),
        import(&[("Rechnung März 2026 – Nr. 42.pdf", &pdf)]),
    );
    add(
        "non_ascii_name_japanese",
        write(
            base("non_ascii_name_japanese", "anna@contoso.com", "請求書")
                .text_body("請求書を添付します。")
                .attachment("application/pdf", "請求書 2026年3月.pdf", pdf.clone()),
        ),
        import(&[("請求書 2026年3月.pdf", &pdf)]),
    );
    add(
        "malicious_traversal_name",
        write(
            base(
                "malicious_traversal_name",
                "anna@contoso.com",
                "Totally an invoice",
            )
            .text_body("x")
            .attachment("application/pdf", "../../etc/passwd", pdf.clone()),
        ),
        import(&[("passwd", &pdf)]),
    );
    add(
        "malicious_windows_path",
        write(
            base("malicious_windows_path", "anna@contoso.com", "Windows path")
                .text_body("x")
                .attachment(
                    "application/pdf",
                    "..\\..\\Windows\\System32\\evil.pdf",
                    pdf.clone(),
                ),
        ),
        import(&[("evil.pdf", &pdf)]),
    );
    add(
        "reserved_device_name",
        write(
            base("reserved_device_name", "anna@contoso.com", "Device name")
                .text_body("x")
                .attachment("application/pdf", "CON.pdf", pdf.clone()),
        ),
        import(&[("_CON.pdf", &pdf)]),
    );
    add(
        "duplicate_names",
        write(
            base("duplicate_names", "anna@contoso.com", "Two scans")
                .text_body("x")
                .attachment("application/pdf", "scan.pdf", pdf.clone())
                .attachment("application/pdf", "scan.pdf", docx.clone())
                .attachment("application/pdf", "SCAN.pdf", png.clone()),
        ),
        import(&[
            ("scan.pdf", &pdf),
            ("scan (2).pdf", &docx),
            ("SCAN (3).pdf", &png),
        ]),
    );
    let long_name = format!("{}.pdf", "Sehr langer Dateiname ".repeat(20));
    let long_sanitized = sinks::filename::sanitize(&long_name);
    out.push(CorpusMail {
        name: "very_long_name".to_owned(),
        raw: write(
            base("very_long_name", "anna@contoso.com", "Long name")
                .text_body("x")
                .attachment("application/pdf", long_name.clone(), pdf.clone()),
        ),
        expected: import(&[(&long_sanitized, &pdf)]),
        fixture: None,
    });
    let mut add = |name: &str, raw: Vec<u8>, expected: Expected| {
        out.push(CorpusMail {
            name: name.to_owned(),
            raw,
            expected,
            fixture: None,
        })
    };
    add(
        "nested_multiparts",
        write(
            base("nested_multiparts", "anna@contoso.com", "Nested").body(MimePart::new(
                "multipart/mixed",
                vec![
                    MimePart::new(
                        "multipart/alternative",
                        vec![
                            MimePart::new("text/plain", "plain body"),
                            MimePart::new(
                                "multipart/related",
                                vec![
                                    MimePart::new("text/html", "<img src=\"cid:img1\">"),
                                    MimePart::new(
                                        "image/png",
                                        BodyPart::Binary(png.clone().into()),
                                    )
                                    .inline()
                                    .cid("img1"),
                                ],
                            ),
                        ],
                    ),
                    MimePart::new(
                        "multipart/mixed",
                        vec![
                            attachment("application/pdf", "inner.pdf", &pdf),
                            attachment(
                                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                                "letter.docx",
                                &docx,
                            ),
                        ],
                    ),
                ],
            )),
        ),
        import(&[("inner.pdf", &pdf), ("letter.docx", &docx)]),
    );
    add(
        "sender_not_allowed",
        write(
            base("sender_not_allowed", "billing@evil.example", "Invoice")
                .text_body("pay now")
                .attachment("application/pdf", "invoice.pdf", pdf.clone()),
        ),
        error("rule:sender_allow"),
    );
    add(
        "subject_blocked",
        write(
            base(
                "subject_blocked",
                "marketing@contoso.com",
                "Our March Newsletter",
            )
            .text_body("news")
            .attachment("application/pdf", "news.pdf", pdf.clone()),
        ),
        error("rule:subject_block"),
    );
    add(
        "sender_checked_before_subject",
        write(
            base(
                "sender_checked_before_subject",
                "news@evil.example",
                "Newsletter",
            )
            .text_body("news")
            .attachment("application/pdf", "news.pdf", pdf.clone()),
        ),
        error("rule:sender_allow"),
    );
    add(
        "sender_case_insensitive",
        write(
            base(
                "sender_case_insensitive",
                "ANNA@CONTOSO.COM",
                "Upper case sender",
            )
            .text_body("x")
            .attachment("application/pdf", "upper.pdf", pdf.clone()),
        ),
        import(&[("upper.pdf", &pdf)]),
    );
    add(
        "second_allowed_domain",
        write(
            base(
                "second_allowed_domain",
                "ap@fabrikam.example",
                "Fabrikam invoice",
            )
            .text_body("x")
            .attachment("image/jpeg", "photo of receipt.jpg", jpg.clone()),
        ),
        import(&[("photo of receipt.jpg", &jpg)]),
    );
    add(
        "signed_mail_with_pdf",
        write(
            base("signed_mail_with_pdf", "anna@contoso.com", "Signed invoice").body(MimePart::new(
                "multipart/signed",
                vec![
                    MimePart::new(
                        "multipart/mixed",
                        vec![
                            MimePart::new("text/plain", "signed body"),
                            attachment("application/pdf", "signed-invoice.pdf", &pdf),
                        ],
                    ),
                    attachment("application/pkcs7-signature", "smime.p7s", &png),
                ],
            )),
        ),
        import(&[("signed-invoice.pdf", &pdf)]),
    );
    let no_id = MessageBuilder::new()
        .from(Address::new_address(None::<&str>, "anna@contoso.com"))
        .to(Address::new_address(None::<&str>, "invoices@contoso.com"))
        .subject("No Message-ID")
        .date(1_772_000_100i64)
        .text_body("x")
        .attachment("application/pdf", "no-id.pdf", pdf.clone());
    add(
        "no_message_id",
        write(no_id),
        import(&[("no-id.pdf", &pdf)]),
    );
    add(
        "attachment_without_name",
        write(
            base("attachment_without_name", "anna@contoso.com", "Nameless").body(MimePart::new(
                "multipart/mixed",
                vec![
                    MimePart::new("text/plain", "x"),
                    MimePart::new("application/pdf", BodyPart::Binary(pdf.clone().into())).header(
                        "Content-Disposition",
                        mail_builder::headers::raw::Raw::new("attachment"),
                    ),
                ],
            )),
        ),
        import(&[("attachment.pdf", &pdf)]),
    );
    add(
        "octet_stream_tiff",
        write(
            base("octet_stream_tiff", "anna@contoso.com", "Scanner output")
                .text_body("x")
                .attachment("application/octet-stream", "scan0001.tif", xlsx.clone()),
        ),
        import(&[("scan0001.tif", &xlsx)]),
    );
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:Invoice review meeting with the whole accounting team\r\nDTSTART:20260310T090000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    add(
        "calendar_attachment",
        write(
            base("calendar_attachment", "anna@contoso.com", "Meeting")
                .text_body("x")
                .attachment("text/calendar", "invite.ics", ics),
        ),
        import(&[("invite.ics", ics.as_bytes())]),
    );
    let csv = "date;amount;currency;booking text\r\n2026-03-01;100.00;EUR;office supplies\r\n2026-03-02;250.50;EUR\r\n2026-03-03;99.99;EUR\r\n";
    add(
        "csv_attachment",
        write(
            base("csv_attachment", "anna@contoso.com", "Bookings")
                .text_body("x")
                .attachment("text/csv", "bookings.csv", csv),
        ),
        import(&[("bookings.csv", csv.as_bytes())]),
    );
    add(
        "image_attachment_not_inline",
        write(
            base("image_attachment_not_inline", "anna@contoso.com", "Photo")
                .html_body("<p>photo attached</p>")
                .attachment("image/png", "receipt.png", png.clone()),
        ),
        import(&[("receipt.png", &png)]),
    );
    add(
        "many_attachments",
        write((0..12).fold(
            base("many_attachments", "anna@contoso.com", "Twelve scans").text_body("x"),
            |b, i| {
                b.attachment(
                    "application/pdf",
                    format!("scan-{i:02}.pdf"),
                    file_bytes("pdf", 700 + i * 13, 100 + i as u64),
                )
            },
        )),
        Expected::Import(
            (0..12)
                .map(|i| {
                    ExpectedFile::of(
                        &format!("scan-{i:02}.pdf"),
                        &file_bytes("pdf", 700 + i * 13, 100 + i as u64),
                    )
                })
                .collect(),
        ),
    );

    out.extend(fixtures());
    out
}

/// Where the hand-written fixtures are: `NAME.eml` + `NAME.json` pairs.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// A fixture's `.json`: `{"decision": "import", "files": [{"name", "sha256",
/// "size"}]}` or `{"decision": "error", "code": "…"}`, and an optional
/// `note` saying why.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureOutcome {
    decision: String,
    #[serde(default)]
    files: Vec<ExpectedFile>,
    code: Option<String>,
    #[serde(default, rename = "note")]
    _note: Option<String>,
}

/// Every pair in [`fixtures_dir`], by name. Adding a fixture is dropping
/// in its two files; a `.eml` without its `.json` (or the reverse), or a
/// `.json` that does not say an outcome, fails naming the file.
pub fn fixtures() -> Vec<CorpusMail> {
    fixtures_in(&fixtures_dir())
}

/// The fixture pairs in `dir`, as [`fixtures`] reads them.
#[expect(
    clippy::panic,
    reason = "test data: a broken fixture fails the test that loads it, naming the file"
)]
pub fn fixtures_in(dir: &Path) -> Vec<CorpusMail> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("the corpus fixtures {}: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("the corpus fixtures {}: {e}", dir.display()))
                .path()
        })
        .collect();
    paths.sort();
    let has = |path: &Path, ext: &str| path.extension().is_some_and(|e| e == ext);
    for json in paths.iter().filter(|p| has(p, "json")) {
        let eml = json.with_extension("eml");
        if !eml.is_file() {
            panic!(
                "{}: no {} beside it (a fixture is NAME.eml + NAME.json)",
                json.display(),
                eml.display()
            );
        }
    }
    paths
        .iter()
        .filter(|p| has(p, "eml"))
        .map(|eml| {
            let json = eml.with_extension("json");
            let name = eml
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_else(|| panic!("{}: the name is not UTF-8", eml.display()))
                .to_owned();
            let raw = std::fs::read(eml).unwrap_or_else(|e| panic!("{}: {e}", eml.display()));
            let text = std::fs::read_to_string(&json).unwrap_or_else(|e| {
                panic!(
                    "{}: its expected outcome {} cannot be read ({e}); add it (see tests/corpus/README.md)",
                    eml.display(),
                    json.display()
                )
            });
            let outcome: FixtureOutcome = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", json.display()));
            let expected = match (outcome.decision.as_str(), outcome.code, outcome.files) {
                ("import", None, files) if !files.is_empty() => Expected::Import(files),
                ("error", Some(code), files) if files.is_empty() => Expected::Error(code),
                (decision, ..) => panic!(
                    "{}: say {{\"decision\": \"import\", \"files\": [{{\"name\", \"sha256\", \"size\"}}, …]}} \
                     or {{\"decision\": \"error\", \"code\": \"…\"}} (got decision `{decision}`)",
                    json.display()
                ),
            };
            CorpusMail {
                name,
                raw,
                expected,
                fixture: Some(json),
            }
        })
        .collect()
}

/// A mail with a 20 MB PDF, built at run time.
pub fn large_mail() -> CorpusMail {
    let big = file_bytes("pdf", 20 * 1024 * 1024, 20);
    CorpusMail {
        name: "large_20mb".to_owned(),
        raw: write(
            base("large_20mb", "anna@contoso.com", "Big scan")
                .text_body("20 MB attached")
                .attachment("application/pdf", "big-scan.pdf", big.clone()),
        ),
        expected: import(&[("big-scan.pdf", &big)]),
        fixture: None,
    }
}

/// A plain invoice mail from an allowed sender, numbered `n`: with a PDF of
/// `pdf_bytes` it is imported; with `None` it has no attachment and goes to
/// Error (`no_importable_attachment`). Returns its `Message-ID` (as Graph
/// reports it, with angle brackets) and its MIME. For load, crash and
/// benchmark runs that need many distinct mails.
pub fn numbered_mail(n: usize, pdf_bytes: Option<usize>) -> (String, Vec<u8>) {
    let name = format!("bulk-{n:06}");
    let mut b = base(&name, "billing@fabrikam.example", &format!("Invoice {n}"))
        .text_body(format!("Invoice {n}."));
    if let Some(len) = pdf_bytes {
        b = b.attachment(
            "application/pdf",
            format!("invoice-{n:06}.pdf"),
            file_bytes("pdf", len, 1_000 + n as u64),
        );
    }
    (format!("<{name}@corpus.contoso.com>"), write(b))
}
