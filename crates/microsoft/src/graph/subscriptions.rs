//! Change notifications on the importer's Inbox (`microsoft-api.md` §4): a
//! subscription for `created` messages, renewed before it expires,
//! reauthorized when Graph asks, deleted with the importer. A notification
//! only wakes an import; polling stays the safety net.

use jiff::Timestamp;
use reqwest::Method;
use serde_json::{Value, json};

use super::GraphMailbox;
use domain::mailbox::{MailboxError, MailboxErrorKind};

use super::error::Operation;
use super::transport::segment;

/// A subscription as Graph confirmed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxSubscription {
    pub id: String,
    pub expires: Timestamp,
}

fn parse(v: &Value) -> Result<InboxSubscription, MailboxError> {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let expires = v
        .get("expirationDateTime")
        .and_then(Value::as_str)
        .and_then(|e| e.parse::<Timestamp>().ok());
    match (id, expires) {
        (Some(id), Some(expires)) => Ok(InboxSubscription {
            id: id.to_owned(),
            expires,
        }),
        _ => Err(MailboxError::new(
            MailboxErrorKind::Transient,
            "Microsoft Graph answered a subscription request without an id or expiry",
            "nothing to change: it is tried again on the next renewal",
        )),
    }
}

impl GraphMailbox {
    fn subscriptions_url(&self) -> String {
        format!("{}/v1.0/subscriptions", self.config().graph_base)
    }

    /// Subscribes to messages created in the folder `folder_id` (the
    /// Inbox). Graph first checks `notification_url` and `lifecycle_url`
    /// with its validation handshake, so mailferry must already answer there.
    pub async fn subscribe(
        &self,
        folder_id: &str,
        notification_url: &str,
        lifecycle_url: &str,
        client_state: &str,
        expires: Timestamp,
    ) -> Result<InboxSubscription, MailboxError> {
        let owner = match &self.config().mailbox {
            Some(m) => format!("/users/{}", segment(m)),
            None => "/me".to_owned(),
        };
        let body = json!({
            "changeType": "created",
            "notificationUrl": notification_url,
            "lifecycleNotificationUrl": lifecycle_url,
            // Ids may hold `/`: encoded like every id in a path.
            "resource": format!("{owner}/mailFolders('{}')/messages", segment(folder_id)),
            "expirationDateTime": expires.to_string(),
            "clientState": client_state,
        });
        let v = self
            .transport
            .json(
                Method::POST,
                &self.subscriptions_url(),
                Some(&body),
                Operation::Subscription,
            )
            .await?;
        parse(&v)
    }

    /// Moves the subscription's expiry to `expires` (which also resumes
    /// notifications held back for reauthorization).
    pub async fn renew_subscription(
        &self,
        id: &str,
        expires: Timestamp,
    ) -> Result<InboxSubscription, MailboxError> {
        let v = self
            .transport
            .json(
                Method::PATCH,
                &format!("{}/{}", self.subscriptions_url(), segment(id)),
                Some(&json!({ "expirationDateTime": expires.to_string() })),
                Operation::Subscription,
            )
            .await?;
        parse(&v)
    }

    /// Answers Graph's `reauthorizationRequired` with a fresh token.
    pub async fn reauthorize_subscription(&self, id: &str) -> Result<(), MailboxError> {
        self.transport
            .send(
                Method::POST,
                &format!("{}/{}/reauthorize", self.subscriptions_url(), segment(id)),
                None,
                Operation::Subscription,
            )
            .await
            .map(|_| ())
    }

    pub async fn delete_subscription(&self, id: &str) -> Result<(), MailboxError> {
        self.transport
            .send(
                Method::DELETE,
                &format!("{}/{}", self.subscriptions_url(), segment(id)),
                None,
                Operation::Subscription,
            )
            .await
            .map(|_| ())
    }
}
