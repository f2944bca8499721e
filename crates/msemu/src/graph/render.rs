//! JSON representations of folders, messages and attachments, as Graph v1.0 shapes them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::mime::{AttachmentData, AttachmentKind, MimeProps, Recipient};
use crate::state::{Folder, Message, State};

pub const FOLDER_PROPERTIES: &[&str] = &[
    "id",
    "displayName",
    "parentFolderId",
    "childFolderCount",
    "unreadItemCount",
    "totalItemCount",
    "isHidden",
];

/// `2024-01-01T10:00:00Z`: Graph's timestamp format (whole seconds, `Z`).
pub fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn recipient(r: &Recipient) -> Value {
    json!({"emailAddress": {"name": r.name, "address": r.address}})
}

fn recipients(rs: &[Recipient]) -> Value {
    Value::Array(rs.iter().map(recipient).collect())
}

fn apply_select(mut obj: Map<String, Value>, select: Option<&[String]>) -> Value {
    if let Some(sel) = select {
        obj.retain(|k, _| {
            k == "id" || k.starts_with('@') || sel.iter().any(|s| s.eq_ignore_ascii_case(k))
        });
    }
    Value::Object(obj)
}

pub fn folder(world: &State, f: &Folder, select: Option<&[String]>) -> Value {
    let (unread, total) = world.folder_counts(&f.id);
    let obj = json!({
        "id": f.id,
        "displayName": f.display_name,
        "parentFolderId": f.parent_id,
        "childFolderCount": world.children(&f.id, true).len(),
        "unreadItemCount": unread,
        "totalItemCount": total,
        "isHidden": f.hidden,
    });
    match obj {
        Value::Object(m) => apply_select(m, select),
        other => other,
    }
}

/// The message id a client sees: immutable only when it asked for immutable ids.
pub fn message_id(m: &Message, immutable: bool) -> &str {
    if immutable {
        &m.immutable_id
    } else {
        &m.rest_id
    }
}

fn props_json(p: &MimeProps) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("subject".into(), json!(p.subject));
    o.insert("bodyPreview".into(), json!(p.body_preview));
    o.insert(
        "body".into(),
        json!({"contentType": p.body_content_type, "content": p.body}),
    );
    o.insert(
        "sender".into(),
        p.sender.as_ref().map(recipient).unwrap_or(Value::Null),
    );
    o.insert(
        "from".into(),
        p.from.as_ref().map(recipient).unwrap_or(Value::Null),
    );
    o.insert("toRecipients".into(), recipients(&p.to));
    o.insert("ccRecipients".into(), recipients(&p.cc));
    o.insert("bccRecipients".into(), json!([]));
    o.insert("replyTo".into(), recipients(&p.reply_to));
    o.insert("internetMessageId".into(), json!(p.internet_message_id));
    o.insert(
        "hasAttachments".into(),
        json!(p.attachments.iter().any(|a| !a.is_inline)),
    );
    o
}

pub fn message(m: &Message, immutable: bool, select: Option<&[String]>) -> Value {
    let id = message_id(m, immutable);
    let mut o = Map::new();
    o.insert(
        "@odata.etag".into(),
        json!(format!("W/\"{}\"", m.change_key)),
    );
    o.insert("id".into(), json!(id));
    o.insert("createdDateTime".into(), json!(time(m.created)));
    o.insert("lastModifiedDateTime".into(), json!(time(m.last_modified)));
    o.insert("changeKey".into(), json!(m.change_key));
    o.insert("categories".into(), json!(m.categories));
    o.insert("receivedDateTime".into(), json!(time(m.received)));
    o.insert(
        "sentDateTime".into(),
        json!(time(m.props.sent.unwrap_or(m.received))),
    );
    o.insert("importance".into(), json!("normal"));
    o.insert("parentFolderId".into(), json!(m.folder_id));
    o.insert("conversationId".into(), json!(m.conversation_id));
    o.insert("isDeliveryReceiptRequested".into(), json!(false));
    o.insert("isReadReceiptRequested".into(), json!(false));
    o.insert("isRead".into(), json!(m.is_read));
    o.insert("isDraft".into(), json!(false));
    o.insert(
        "webLink".into(),
        json!(format!(
            "https://outlook.office365.com/owa/?ItemID={}&exvsurl=1&viewmodel=ReadMessageItem",
            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        )),
    );
    o.insert("inferenceClassification".into(), json!("focused"));
    o.insert("flag".into(), json!({"flagStatus": "notFlagged"}));
    o.extend(props_json(&m.props));
    apply_select(o, select)
}

/// Adds the requested extended properties Exchange computes itself; only
/// `PidTagMessageSize` (`Integer 0x0E08`) is modelled. Exchange answers with
/// its own spelling of the id (`Integer 0xe08`) and the value as a string.
pub fn with_extended_properties(mut v: Value, m: &Message, ids: &[String]) -> Value {
    if ids.is_empty() {
        return v;
    }
    let props: Vec<Value> = ids
        .iter()
        .filter(|id| {
            id.eq_ignore_ascii_case("Integer 0x0E08") || id.eq_ignore_ascii_case("Integer 0xe08")
        })
        .map(|_| json!({"id": "Integer 0xe08", "value": m.mime.len().to_string()}))
        .collect();
    crate::json::set(&mut v, "singleValueExtendedProperties", json!(props));
    v
}

pub fn attachment(id: &str, a: &AttachmentData, modified: Timestamp, with_content: bool) -> Value {
    match a.kind {
        AttachmentKind::File => {
            let mut v = json!({
                "@odata.type": "#microsoft.graph.fileAttachment",
                "@odata.mediaContentType": a.content_type,
                "id": id,
                "lastModifiedDateTime": time(modified),
                "name": a.name,
                "contentType": a.content_type,
                "size": a.content.len(),
                "isInline": a.is_inline,
                "contentId": a.content_id,
                "contentLocation": null,
            });
            if with_content {
                crate::json::set(&mut v, "contentBytes", json!(STANDARD.encode(&a.content)));
            }
            v
        }
        AttachmentKind::Item => json!({
            "@odata.type": "#microsoft.graph.itemAttachment",
            "id": id,
            "lastModifiedDateTime": time(modified),
            "name": a.name,
            "contentType": null,
            "size": a.content.len(),
            "isInline": a.is_inline,
        }),
    }
}

/// The embedded item of an item attachment (`$expand=microsoft.graph.itemattachment/item`).
pub fn embedded_item(a: &AttachmentData) -> Value {
    let props = crate::mime::derive(&a.content).unwrap_or_default();
    let mut o = Map::new();
    o.insert("@odata.type".into(), json!("#microsoft.graph.message"));
    o.insert("id".into(), json!(""));
    o.extend(props_json(&props));
    if let Some(s) = props.sent {
        o.insert("sentDateTime".into(), json!(time(s)));
    }
    Value::Object(o)
}
