//! Graph message properties derived from raw MIME, the way Exchange derives them from
//! the stored item.

use jiff::Timestamp;
use mail_parser::{Address, MessageParser, MimeHeaders};
use serde::Serialize;

/// A recipient as Graph shapes it (`{"emailAddress":{"name","address"}}`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Recipient {
    pub name: String,
    pub address: String,
}

/// What an attachment is, as Graph's `@odata.type` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AttachmentKind {
    File,
    Item,
}

/// One attachment with its content.
#[derive(Debug, Clone)]
pub struct AttachmentData {
    pub kind: AttachmentKind,
    pub name: String,
    pub content_type: String,
    pub content: Vec<u8>,
    pub is_inline: bool,
    pub content_id: Option<String>,
}

/// The message properties Graph reports, derived once when a message is stored.
#[derive(Debug, Clone, Default)]
pub struct MimeProps {
    pub subject: String,
    pub from: Option<Recipient>,
    pub sender: Option<Recipient>,
    pub to: Vec<Recipient>,
    pub cc: Vec<Recipient>,
    pub reply_to: Vec<Recipient>,
    pub internet_message_id: Option<String>,
    pub sent: Option<Timestamp>,
    pub body_content_type: &'static str,
    pub body: String,
    pub body_preview: String,
    pub attachments: Vec<AttachmentData>,
}

/// Why a MIME blob was refused.
#[derive(Debug, thiserror::Error)]
#[error("the message could not be parsed as RFC 5322 MIME")]
pub struct UnparsableMime;

fn recipients(addr: Option<&Address<'_>>) -> Vec<Recipient> {
    addr.map(|a| {
        a.iter()
            .map(|r| Recipient {
                name: r
                    .name()
                    .map(str::to_string)
                    .or_else(|| r.address().map(str::to_string))
                    .unwrap_or_default(),
                address: r.address().unwrap_or_default().to_string(),
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Parses raw MIME into Graph properties.
pub fn derive(raw: &[u8]) -> Result<MimeProps, UnparsableMime> {
    let msg = MessageParser::default().parse(raw).ok_or(UnparsableMime)?;
    if msg.headers().is_empty() {
        return Err(UnparsableMime);
    }
    let from = recipients(msg.from()).into_iter().next();
    let sender = recipients(msg.sender()).into_iter().next().or(from.clone());
    let (body_content_type, body) = match msg.body_html(0) {
        Some(html) => ("html", html.into_owned()),
        None => (
            "text",
            msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        ),
    };
    let body_preview: String = msg
        .body_text(0)
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
        .chars()
        .take(255)
        .collect();
    let attachments = msg
        .attachments()
        .enumerate()
        .map(|(i, part)| {
            let is_item = part.message().is_some();
            let content_type = part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".into());
            let is_inline = part.content_disposition().is_some_and(|d| d.is_inline())
                || (part.content_disposition().is_none() && part.content_id().is_some());
            let (name, content) = match part.message() {
                Some(inner) => (
                    part.attachment_name()
                        .map(str::to_string)
                        .or_else(|| inner.subject().map(str::to_string))
                        .unwrap_or_else(|| format!("Attached message {}", i + 1)),
                    inner.raw_message().to_vec(),
                ),
                None => (
                    part.attachment_name()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("attachment{}", i + 1)),
                    part.contents().to_vec(),
                ),
            };
            AttachmentData {
                kind: if is_item {
                    AttachmentKind::Item
                } else {
                    AttachmentKind::File
                },
                name,
                content_type,
                content,
                is_inline,
                content_id: part
                    .content_id()
                    .map(|c| c.trim_matches(['<', '>']).to_string()),
            }
        })
        .collect();
    Ok(MimeProps {
        subject: msg.subject().unwrap_or_default().to_string(),
        from,
        sender,
        to: recipients(msg.to()),
        cc: recipients(msg.cc()),
        reply_to: recipients(msg.reply_to()),
        internet_message_id: msg.message_id().map(|id| format!("<{id}>")),
        sent: msg
            .date()
            .and_then(|d| Timestamp::from_second(d.to_timestamp()).ok()),
        body_content_type,
        body,
        body_preview,
        attachments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_invoice_has_a_pdf() {
        let raw = crate::seed::sample_mime(1, "t");
        let p = derive(raw.as_bytes()).expect("parse");
        assert_eq!(p.subject, "Invoice 1");
        assert_eq!(
            p.internet_message_id.as_deref(),
            Some("<invoice-1-t@supplier.example>")
        );
        assert_eq!(p.attachments.len(), 1);
        assert_eq!(p.attachments[0].content_type, "application/pdf");
        assert!(p.attachments[0].content.starts_with(b"%PDF"));
        assert!(!p.attachments[0].is_inline);
    }
}
