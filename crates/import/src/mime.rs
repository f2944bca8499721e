//! MIME → what a mail would become. Pure: bytes and settings in, an
//! [`Analysis`] out, so the pipeline, the dry run and the tests all decide
//! with the same code.
//!
//! Which parts are documents:
//! - every part mail-parser files as an attachment (any depth of nested
//!   multiparts), except body text and detached signatures
//!   (`application/pkcs7-signature`, `application/pgp-signature`), which
//!   are transport artefacts, not documents;
//! - an attached mail (`message/rfc822`) is one document file, kept whole
//!   as `.eml` (its own attachments stay inside it);
//! - an *inline* part (shown in the body: a `Content-ID` or an `inline`
//!   disposition on an image, and no `attachment` disposition) only when
//!   `include_inline` is set;
//! - then `allowed_types` (`type/subtype`, `type/*`, `*/*`) and
//!   `allowed_extensions`, each a filter when non-empty (both must pass),
//!   and `min_size`;
//! - then the file name: none of `exclude_names` may match it, and one of
//!   `include_names` must when that list is not empty (`*` wildcards,
//!   case-insensitive, as the importer's other patterns).
//!
//! With `import_body`, the mail's own text and HTML bodies join the
//! document as `body.txt` and `body.html` (`always`), or make it when no
//! attachment passes the rules (`when_no_attachment`).
//!
//! A part whose transfer encoding is broken (bad base64) makes the mail
//! `unparsable`: importing corrupt bytes silently would be worse.

use std::borrow::Cow;

use bytes::Bytes;

use domain::content::{ContentKeys, MAX_ZIP_ENTRIES, SmimeSettings, ZipSettings};
use domain::document::SmimeVerdict;
use domain::importer::{AttachmentRules, ImportBody, ImporterSettings};
use domain::rules::{ImportRules, wildcard_match};
use jiff::Timestamp;
use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};

use crate::{smime, unpack};

/// Facts about a mail that its document records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailFacts {
    pub subject: Option<String>,
    /// The `From` address.
    pub from: Option<String>,
    pub to: Vec<String>,
    /// `Date` header.
    pub date: Option<Timestamp>,
    /// `Message-ID`, with angle brackets.
    pub internet_message_id: Option<String>,
}

/// A part that becomes a file of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The decoded name the sender gave (RFC 2231 / RFC 2047), if any.
    pub filename: Option<String>,
    /// Used when `filename` is `None`: `attachment.pdf`, `Subject.eml`.
    pub fallback_name: String,
    /// `type/subtype`, lower case.
    pub content_type: String,
    pub bytes: Bytes,
    pub inline: bool,
}

/// A part that is not imported, and why (for the dry run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub why: String,
}

/// Why a mail goes to the Error folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// `no_importable_attachment`, `unparsable`, `rule:sender_allow`, `rule:subject_block`.
    pub code: String,
    pub detail: String,
}

impl Reason {
    pub fn new(code: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            detail: detail.into(),
        }
    }

    /// `code: detail`, as kept in the ledger.
    pub fn to_line(&self) -> String {
        format!("{}: {}", self.code, self.detail)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Import { attachments: Vec<Extracted> },
    ToError { reason: Reason },
}

impl Decision {
    pub fn is_import(&self) -> bool {
        matches!(self, Self::Import { .. })
    }

    /// The reason code, or `import`.
    pub fn code(&self) -> &str {
        match self {
            Self::Import { .. } => "import",
            Self::ToError { reason } => &reason.code,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    pub facts: MailFacts,
    /// What makes the mail this mail ([`crate::fingerprint::content_sha256`]);
    /// the SHA-256 of the bytes when they are not MIME.
    pub content_sha256: String,
    pub decision: Decision,
    pub skipped: Vec<Skipped>,
    /// What S/MIME said, when the mail was signed or encrypted.
    pub smime: Option<SmimeVerdict>,
}

pub const NO_IMPORTABLE_ATTACHMENT: &str = "no_importable_attachment";
pub const UNPARSABLE: &str = "unparsable";

/// What an importer's settings say about turning a mail into a document,
/// with the keys its archives and encrypted mails need.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    pub attachments: &'a AttachmentRules,
    pub rules: &'a ImportRules,
    pub body: ImportBody,
    pub zip: &'a ZipSettings,
    pub smime: &'a SmimeSettings,
    pub keys: &'a ContentKeys,
    /// Most bytes all of a mail's archives may unpack to.
    pub max_unpacked_bytes: u64,
}

impl<'a> Policy<'a> {
    pub fn of(settings: &'a ImporterSettings, keys: &'a ContentKeys) -> Self {
        Self {
            attachments: &settings.attachments,
            rules: &settings.rules,
            body: settings.import_body,
            zip: &settings.zip,
            smime: &settings.smime,
            keys,
            max_unpacked_bytes: settings.limits.max_mail_bytes,
        }
    }
}

/// Decides what `raw` becomes for an importer with only attachment rules
/// and sender/subject rules (no body, no keys).
pub fn analyze(raw: &[u8], attachments: &AttachmentRules, rules: &ImportRules) -> Analysis {
    let zip = ZipSettings::default();
    let smime = SmimeSettings::default();
    let keys = ContentKeys::default();
    analyze_with(
        raw,
        &Policy {
            attachments,
            rules,
            body: ImportBody::Never,
            zip: &zip,
            smime: &smime,
            keys: &keys,
            max_unpacked_bytes: domain::importer::DEFAULT_MAX_MAIL_BYTES,
        },
    )
}

/// Decides what `raw` becomes under `policy`: rules first (sender
/// allow-list, then subject block-list), then each attachment (containers
/// opened) against the attachment rules, then the body as `policy.body`
/// says: beside the attachments, or instead of them when none passes.
pub fn analyze_with(raw: &[u8], policy: &Policy<'_>) -> Analysis {
    let attachments = policy.attachments;
    let parsed = MessageParser::default().parse(raw);
    let Some(mut message) = parsed.filter(|m| is_a_mail(m)) else {
        return Analysis {
            facts: MailFacts::default(),
            content_sha256: crate::fingerprint::mime_sha256(raw),
            decision: Decision::ToError {
                reason: Reason::new(
                    UNPARSABLE,
                    "the message is not MIME: no header section could be read",
                ),
            },
            skipped: Vec::new(),
            smime: None,
        };
    };
    let facts = facts_of(&message);
    let content_sha256 = crate::fingerprint::content_sha256(&message);
    if let Err(stop) = policy.rules.check(
        facts.from.as_deref(),
        facts.subject.as_deref().unwrap_or(""),
    ) {
        return Analysis {
            facts,
            content_sha256,
            decision: Decision::ToError {
                reason: Reason::new(format!("rule:{}", stop.rule()), stop.detail()),
            },
            skipped: Vec::new(),
            smime: None,
        };
    }
    let mut kept = Vec::new();
    let mut skipped = Vec::new();
    let mut budget = unpack::Budget {
        keys: policy.keys,
        from: facts.from.as_deref(),
        bytes_left: policy.max_unpacked_bytes,
        entries_left: MAX_ZIP_ENTRIES,
    };
    let mut verdict: Option<SmimeVerdict> = None;
    let to_error =
        |reason: Reason, skipped: Vec<Skipped>, verdict: Option<SmimeVerdict>| Analysis {
            facts: facts.clone(),
            content_sha256: content_sha256.clone(),
            decision: Decision::ToError { reason },
            skipped,
            smime: verdict,
        };
    // The mail's facts come from its own headers; what it carries comes
    // from inside its S/MIME wrapping, if it has one.
    let unwrapped = if smime::is_wrapped(&message) {
        match smime::unwrap(raw, policy.smime, policy.keys) {
            Ok(u) => u,
            Err(reason) => return to_error(reason, Vec::new(), None),
        }
    } else {
        None
    };
    let mut inner = match &unwrapped {
        Some(u) => {
            verdict = Some(u.verdict.clone());
            match MessageParser::default().parse(&u.entity) {
                Some(m) => Some(m),
                None => {
                    let reason = Reason::new(
                        UNPARSABLE,
                        "the content inside the S/MIME wrapping is not MIME",
                    );
                    return to_error(reason, Vec::new(), verdict);
                }
            }
        }
        None => None,
    };
    let content = match inner.as_mut() {
        Some(inner) => inner,
        None => &mut message,
    };
    for id in content.attachments.clone() {
        let Some(bytes) = content.parts.get_mut(id as usize).map(take_contents) else {
            continue;
        };
        let Some(part) = content.parts.get(id as usize) else {
            continue;
        };
        let candidate = candidate_of(content, part, bytes);
        if part.is_encoding_problem && !matches!(part.body, PartType::Message(_)) {
            let reason = Reason::new(
                UNPARSABLE,
                format!(
                    "the part `{}` ({}) is not validly encoded ({}); its bytes cannot be trusted",
                    candidate.display_name(),
                    candidate.content_type,
                    part.content_transfer_encoding()
                        .unwrap_or("no transfer encoding")
                ),
            );
            return to_error(reason, skipped, verdict);
        }
        if let Some(why) = why_not_a_document(part, &candidate, attachments) {
            skipped.push(Skipped::of(&candidate, why));
            continue;
        }
        let contents = match unpack::open(&candidate, &mut budget) {
            Ok(contents) => contents,
            Err(reason) => return to_error(reason, skipped, verdict),
        };
        let Some(contents) = contents else {
            match why_rules_skip(&candidate, attachments) {
                Some(why) => skipped.push(Skipped::of(&candidate, why)),
                None => kept.push(candidate),
            }
            continue;
        };
        let before = kept.len();
        for file in contents.files {
            match why_rules_skip(&file, attachments) {
                Some(why) => skipped.push(Skipped::of(
                    &file,
                    format!("{why} (in `{}`)", candidate.display_name()),
                )),
                None => kept.push(file),
            }
        }
        let took_some = kept.len() > before;
        let keep = match contents.container {
            unpack::Container::Zip => policy.zip.keep_archive,
            unpack::Container::Tnef { damaged } => damaged,
        };
        if took_some && keep {
            kept.push(candidate);
        } else {
            let why = if took_some {
                "a container: its files are imported instead"
            } else {
                "a container none of whose files passes the rules"
            };
            skipped.push(Skipped::of(&candidate, why.to_owned()));
        }
    }
    let with_body = match policy.body {
        ImportBody::Never => false,
        ImportBody::WhenNoAttachment => kept.is_empty(),
        ImportBody::Always => true,
    };
    if with_body {
        kept.extend(body_parts(content));
    }
    let decision = if kept.is_empty() {
        let detail = if skipped.is_empty() {
            "the mail has no attachment".to_owned()
        } else {
            let parts: Vec<String> = skipped
                .iter()
                .map(|s| format!("`{}` ({})", s.name, s.why))
                .collect();
            format!(
                "no attachment passes the attachment rules: {}",
                parts.join("; ")
            )
        };
        Decision::ToError {
            reason: Reason::new(NO_IMPORTABLE_ATTACHMENT, detail),
        }
    } else {
        Decision::Import { attachments: kept }
    };
    Analysis {
        facts,
        content_sha256,
        decision,
        skipped,
        smime: verdict,
    }
}

/// mail-parser accepts almost anything; a mail must at least have headers.
/// The mail's own text and HTML bodies (not attachments, not text made
/// from the other), as `body.txt` and `body.html`; an empty one is left out.
fn body_parts(message: &Message<'_>) -> Vec<Extracted> {
    let part = |ids: &[mail_parser::MessagePartId]| {
        ids.first()
            .and_then(|&id| message.parts.get(id as usize))
            .map(|p| &p.body)
    };
    let mut out = Vec::new();
    if let Some(PartType::Text(text)) = part(&message.text_body)
        && !text.trim().is_empty()
    {
        out.push(body_file("body.txt", "text/plain", text));
    }
    if let Some(PartType::Html(html)) = part(&message.html_body)
        && !html.trim().is_empty()
    {
        out.push(body_file("body.html", "text/html", html));
    }
    out
}

fn body_file(name: &str, content_type: &str, text: &str) -> Extracted {
    Extracted {
        filename: Some(name.to_owned()),
        fallback_name: name.to_owned(),
        content_type: content_type.to_owned(),
        bytes: Bytes::copy_from_slice(text.as_bytes()),
        inline: false,
    }
}

fn is_a_mail(m: &Message<'_>) -> bool {
    !m.headers().is_empty()
        && m.headers()
            .iter()
            .all(|h| !h.name().is_empty() && !h.name().contains(char::is_whitespace))
}

fn facts_of(m: &Message<'_>) -> MailFacts {
    let address = |a: &mail_parser::Addr<'_>| a.address().map(|s| s.trim().to_owned());
    MailFacts {
        subject: m.subject().map(str::to_owned),
        from: m.from().and_then(|a| a.first()).and_then(address),
        to: m
            .to()
            .map(|a| a.iter().filter_map(address).collect())
            .unwrap_or_default(),
        date: m
            .date()
            .and_then(|d| Timestamp::from_second(d.to_timestamp()).ok()),
        internet_message_id: m
            .message_id()
            .map(|id| format!("<{}>", id.trim().trim_matches(['<', '>']))),
    }
}

/// A part's decoded bytes. A decoded binary part's buffer is moved out of
/// the parse (the part keeps an empty body), so a large attachment is held
/// once, not twice; other parts are copied.
fn take_contents(part: &mut MessagePart<'_>) -> Bytes {
    match &mut part.body {
        PartType::Binary(decoded) | PartType::InlineBinary(decoded) => {
            match std::mem::take(decoded) {
                Cow::Owned(bytes) => Bytes::from(bytes),
                Cow::Borrowed(bytes) => Bytes::copy_from_slice(bytes),
            }
        }
        _ => Bytes::copy_from_slice(part.contents()),
    }
}

fn candidate_of(message: &Message<'_>, part: &MessagePart<'_>, bytes: Bytes) -> Extracted {
    let content_type = part
        .content_type()
        .map(|ct| {
            let sub = ct.subtype().unwrap_or("octet-stream");
            format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase()
        })
        .unwrap_or_else(|| match part.body {
            PartType::Text(_) => "text/plain".to_owned(),
            PartType::Html(_) => "text/html".to_owned(),
            PartType::Message(_) => "message/rfc822".to_owned(),
            _ => "application/octet-stream".to_owned(),
        });
    let raw_header = message
        .raw_message()
        .get(part.raw_header_offset() as usize..part.raw_body_offset() as usize)
        .unwrap_or_default();
    let filename = crate::rfc2231::continued_file_name(raw_header)
        .or_else(|| part.attachment_name().map(str::to_owned))
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    let fallback_name = match &part.body {
        PartType::Message(inner) => {
            let stem = inner
                .subject()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .unwrap_or("attached message");
            format!("{stem}.eml")
        }
        _ => format!(
            "attachment.{}",
            sinks::filename::extension_for(&content_type)
        ),
    };
    // An attached mail is kept as `.eml` whatever the sender named it.
    let filename = match (&part.body, filename) {
        (PartType::Message(_), Some(n)) if !n.to_ascii_lowercase().ends_with(".eml") => {
            Some(format!("{n}.eml"))
        }
        (_, n) => n,
    };
    let disposition = part
        .content_disposition()
        .map(|d| d.ctype().to_ascii_lowercase());
    let inline = match disposition.as_deref() {
        Some("attachment") => false,
        Some("inline") => part.content_id().is_some() || content_type.starts_with("image/"),
        _ => part.content_id().is_some() && !matches!(part.body, PartType::Message(_)),
    };
    Extracted {
        filename,
        fallback_name,
        content_type,
        bytes,
        inline,
    }
}

impl Extracted {
    pub fn display_name(&self) -> String {
        self.filename
            .clone()
            .unwrap_or_else(|| self.fallback_name.clone())
    }
}

impl Skipped {
    fn of(c: &Extracted, why: String) -> Self {
        Self {
            name: c.display_name(),
            content_type: c.content_type.clone(),
            size: c.bytes.len() as u64,
            why,
        }
    }
}

/// Parts that are the mail's own text, transport artefacts, or (unless
/// wanted) shown inline in the body.
fn why_not_a_document(
    part: &MessagePart<'_>,
    c: &Extracted,
    rules: &AttachmentRules,
) -> Option<String> {
    let is_body_text = matches!(part.body, PartType::Text(_) | PartType::Html(_))
        && c.filename.is_none()
        && !part
            .content_disposition()
            .is_some_and(|d| d.is_attachment());
    if is_body_text {
        return Some("body text, not an attachment".to_owned());
    }
    if matches!(
        c.content_type.as_str(),
        "application/pkcs7-signature"
            | "application/x-pkcs7-signature"
            | "application/pgp-signature"
    ) {
        return Some("a detached signature, not a document".to_owned());
    }
    if c.inline && !rules.include_inline {
        return Some("inline in the body (attachments.include_inline is off)".to_owned());
    }
    None
}

/// The attachment rules an admin set: types, extensions, size, names.
fn why_rules_skip(c: &Extracted, rules: &AttachmentRules) -> Option<String> {
    if !rules.allowed_types.is_empty()
        && !rules
            .allowed_types
            .iter()
            .any(|t| media_range_matches(t, &c.content_type))
    {
        return Some(format!(
            "type {} is not in attachments.allowed_types",
            c.content_type
        ));
    }
    if !rules.allowed_extensions.is_empty() {
        let name = c.display_name().to_ascii_lowercase();
        let ext = sinks::filename::split_extension(&name)
            .1
            .trim_start_matches('.');
        if !rules.allowed_extensions.iter().any(|e| e == ext) {
            return Some(format!(
                "extension `{ext}` is not in attachments.allowed_extensions"
            ));
        }
    }
    let size = c.bytes.len() as u64;
    if size < rules.min_size {
        return Some(format!(
            "{size} bytes, smaller than attachments.min_size ({})",
            rules.min_size
        ));
    }
    let name = c.display_name().to_lowercase();
    if let Some(p) = rules
        .exclude_names
        .iter()
        .find(|p| wildcard_match(p, &name))
    {
        return Some(format!("its name matches attachments.exclude_names `{p}`"));
    }
    if !rules.include_names.is_empty()
        && !rules.include_names.iter().any(|p| wildcard_match(p, &name))
    {
        return Some("its name matches none of attachments.include_names".to_owned());
    }
    None
}

/// `application/pdf`, `image/*` or `*/*` against a lower-case `type/subtype`.
pub fn media_range_matches(range: &str, content_type: &str) -> bool {
    let (rt, rs) = range.split_once('/').unwrap_or((range, "*"));
    let (ct, cs) = content_type.split_once('/').unwrap_or((content_type, ""));
    (rt == "*" || rt.eq_ignore_ascii_case(ct)) && (rs == "*" || rs.eq_ignore_ascii_case(cs))
}
