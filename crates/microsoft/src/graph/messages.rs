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
const FIELDS: &str = "id,internetMessageId,receivedDateTime,subject,from,hasAttachments,categories";
/// `PidTagMessageSize`: Graph's message resource has no size, but Exchange
/// serves this MAPI property through `$expand` (Microsoft's documented way
/// to read an extended property), so an oversized mail is known before its
/// MIME is downloaded.
const SIZE_PROPERTY: &str = "Integer 0x0E08";
/// The prefix of the Outlook category that shows why a mail is in Error.
pub const CATEGORY_PREFIX: &str = "mailferry: ";

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
            "{}/mailFolders/{}/messages?$select={FIELDS}&$expand=singleValueExtendedProperties($filter=id%20eq%20'{}')&$orderby=receivedDateTime%20asc&$top={}",
            transport.mailbox_url(),
            segment(folder_id),
            SIZE_PROPERTY.replace(' ', "%20"),
            transport.config.message_page_size.clamp(1, 1000)
        ),
    };
    let page = transport
        .json(Method::GET, &url, None, Operation::Messages)
        .await?;
    page_from_json(&page)
}

/// A page of a message listing as Graph answers it: its messages and the
/// link to the next page. Hostile or broken answers are errors, never panics.
pub fn page_from_json(page: &Value) -> Result<MessagePage, MailboxError> {
    let messages = page
        .get("value")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(summary)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MessagePage {
        messages,
        next: page
            .get("@odata.nextLink")
            .and_then(Value::as_str)
            .map(|s| PageCursor(s.to_owned())),
    })
}

fn summary(item: &Value) -> Result<MessageSummary, MailboxError> {
    let id = item["id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
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
        from: item
            .pointer("/from/emailAddress/address")
            .and_then(Value::as_str)
            .map(str::to_owned),
        has_attachments: item["hasAttachments"].as_bool().unwrap_or(false),
        size: size_of(item),
        error_mark: item["categories"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c.as_str().is_some_and(|c| c.starts_with(CATEGORY_PREFIX))),
    })
}

/// The value of `PidTagMessageSize`; Exchange writes the id in its own case
/// (`Integer 0xe08`) and the value as a string.
fn size_of(item: &Value) -> Option<u64> {
    item["singleValueExtendedProperties"]
        .as_array()?
        .iter()
        .find(|p| {
            p["id"]
                .as_str()
                .is_some_and(|id| same_property_id(id, SIZE_PROPERTY))
        })
        .and_then(|p| match &p["value"] {
            Value::String(s) => s.trim().parse().ok(),
            v => v.as_u64(),
        })
}

/// `Integer 0x0E08` and `Integer 0xe08` name the same property.
fn same_property_id(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> Option<(String, u32)> {
        let (kind, tag) = s.trim().split_once(' ')?;
        let tag = tag.trim().trim_start_matches("0x").trim_start_matches("0X");
        Some((
            kind.to_ascii_lowercase(),
            u32::from_str_radix(tag, 16).ok()?,
        ))
    };
    norm(a).is_some() && norm(a) == norm(b)
}

/// Sets (or with `None` removes) the `mailferry: {code}` category, keeping
/// every category someone else set. PATCH replaces the whole list, so the
/// current one is read first.
pub async fn mark_error_reason(
    transport: &Transport,
    message_id: &str,
    reason_code: Option<&str>,
) -> Result<(), MailboxError> {
    let url = format!(
        "{}/messages/{}",
        transport.mailbox_url(),
        segment(message_id)
    );
    let current = transport
        .json(
            Method::GET,
            &format!("{url}?$select=id,categories"),
            None,
            Operation::Categories(message_id),
        )
        .await?;
    let current: Vec<String> = current
        .get("categories")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    let wanted = error_categories(&current, reason_code);
    if wanted == current {
        return Ok(());
    }
    transport
        .json(
            Method::PATCH,
            &url,
            Some(&json!({ "categories": wanted })),
            Operation::Categories(message_id),
        )
        .await
        .map(|_| ())
}

/// `current` without mailferry's earlier category, plus the one for `reason_code`.
fn error_categories(current: &[String], reason_code: Option<&str>) -> Vec<String> {
    let mut wanted: Vec<String> = current
        .iter()
        .filter(|c| !c.starts_with(CATEGORY_PREFIX))
        .cloned()
        .collect();
    if let Some(code) = reason_code {
        wanted.push(format!("{CATEGORY_PREFIX}{code}"));
    }
    wanted
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
    moved
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
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
    found
        .get("parentFolderId")
        .and_then(Value::as_str)
        .map(|folder| MessageLocation::Folder {
            folder: folder.to_owned(),
            message_id: message_id.to_owned(),
        })
        .ok_or_else(|| {
            MailboxError::new(
                MailboxErrorKind::Permanent,
                "Microsoft Graph returned the message without the id of its folder",
                "check the importer's Graph endpoint setting",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_property_is_found_in_either_spelling() {
        let item = json!({"singleValueExtendedProperties": [
            {"id": "String {00020386-0000-0000-c000-000000000046} Name x", "value": "1"},
            {"id": "Integer 0xe08", "value": "123456"}
        ]});
        assert_eq!(size_of(&item), Some(123_456));
        assert_eq!(size_of(&json!({})), None);
        assert!(!same_property_id("Integer 0x0E09", SIZE_PROPERTY));
    }

    #[test]
    fn the_error_category_replaces_only_its_own() {
        let current = vec!["Red".to_owned(), "mailferry: unparsable".to_owned()];
        assert_eq!(
            error_categories(&current, Some("too_large")),
            vec!["Red".to_owned(), "mailferry: too_large".to_owned()]
        );
        assert_eq!(error_categories(&current, None), vec!["Red".to_owned()]);
    }
}

#[cfg(test)]
mod fuzz_regressions {
    use super::*;

    /// Found by fuzzing: an empty id was taken for a message (and would
    /// have been put into URLs).
    #[test]
    fn a_message_with_an_empty_id_is_refused() {
        let page = json!({ "value": [{ "id": "", "hasAttachments": true }] });
        assert!(page_from_json(&page).is_err());
        let page = json!({ "value": [{ "id": "AAMk1" }] });
        assert_eq!(page_from_json(&page).expect("a page").messages.len(), 1);
    }
}
