//! Messages: a folder's listing oldest first, raw MIME, moves, and where a
//! message is now. Every id
//! goes into the URL percent-encoded; immutable ids (requested on every
//! call) keep a message's id through a move.

use domain::mailbox::{
    MailboxError, MailboxErrorKind, MessageLocation, MessagePage, MessageSummary, PageCursor,
};
use jiff::Timestamp;
use reqwest::Method;
use serde_json::{Value, json};

use super::error::Operation;
use super::transport::{Transport, segment};

/// Only what the pipeline needs: large pages of full messages make Graph time out.
const FIELDS: &str = "id,internetMessageId,receivedDateTime,subject,from,hasAttachments";

pub async fn list(
    transport: &Transport,
    folder_id: &str,
    cursor: Option<&PageCursor>,
) -> Result<MessagePage, MailboxError> {
    let url = match cursor {
        Some(next) => {
            transport.check_next_link(&next.0)?;
            next.0.clone()
        }
        None => format!(
            "{}/mailFolders/{}/messages?$select={FIELDS}&$orderby=receivedDateTime%20asc&$top={}",
            transport.mailbox_url(),
            segment(folder_id),
            transport.config.message_page_size.clamp(1, 1000)
        ),
    };
    let page = transport
        .json(Method::GET, &url, None, Operation::Messages)
        .await?;
    let messages = page["value"]
        .as_array()
        .into_iter()
        .flatten()
        .map(summary)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MessagePage {
        messages,
        next: page["@odata.nextLink"]
            .as_str()
            .map(|s| PageCursor(s.to_owned())),
    })
}

fn summary(item: &Value) -> Result<MessageSummary, MailboxError> {
    let id = item["id"].as_str().ok_or_else(|| {
        MailboxError::new(
            MailboxErrorKind::Permanent,
            "Microsoft Graph listed a message without an id",
            "check the importer's Graph endpoint setting",
        )
    })?;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    Ok(MessageSummary {
        id: id.to_owned(),
        internet_message_id: text(&item["internetMessageId"]),
        received_at: item["receivedDateTime"]
            .as_str()
            .and_then(|s| s.parse::<Timestamp>().ok()),
        subject: text(&item["subject"]),
        from: text(&item["from"]["emailAddress"]["address"]),
        has_attachments: item["hasAttachments"].as_bool().unwrap_or(false),
    })
}

pub async fn mime(transport: &Transport, message_id: &str) -> Result<Vec<u8>, MailboxError> {
    let url = format!(
        "{}/messages/{}/$value",
        transport.mailbox_url(),
        segment(message_id)
    );
    transport.bytes(&url, Operation::Mime(message_id)).await
}

pub async fn move_to(
    transport: &Transport,
    message_id: &str,
    destination_folder_id: &str,
) -> Result<String, MailboxError> {
    let url = format!(
        "{}/messages/{}/move",
        transport.mailbox_url(),
        segment(message_id)
    );
    let moved = transport
        .json(
            Method::POST,
            &url,
            Some(&json!({ "destinationId": destination_folder_id })),
            Operation::Move(message_id),
        )
        .await?;
    moved["id"].as_str().map(str::to_owned).ok_or_else(|| {
        MailboxError::new(
            MailboxErrorKind::Permanent,
            "Microsoft Graph moved the message but did not say its id",
            "check the importer's Graph endpoint setting",
        )
    })
}

/// `GET …/messages/{id}?$select=id,parentFolderId`: with immutable ids (sent
/// on every request) the id a message was listed under still finds it after
/// a move within the mailbox; `ErrorItemNotFound` means it is gone.
pub async fn locate(
    transport: &Transport,
    message_id: &str,
) -> Result<MessageLocation, MailboxError> {
    let url = format!(
        "{}/messages/{}?$select=id,parentFolderId",
        transport.mailbox_url(),
        segment(message_id)
    );
    let found = match transport
        .json(Method::GET, &url, None, Operation::Locate(message_id))
        .await
    {
        Ok(found) => found,
        Err(e) if e.kind == MailboxErrorKind::NotFound => return Ok(MessageLocation::Gone),
        Err(e) => return Err(e),
    };
    found["parentFolderId"]
        .as_str()
        .map(|folder| MessageLocation::Folder(folder.to_owned()))
        .ok_or_else(|| {
            MailboxError::new(
                MailboxErrorKind::Permanent,
                "Microsoft Graph returned the message without the id of its folder",
                "check the importer's Graph endpoint setting",
            )
        })
}
