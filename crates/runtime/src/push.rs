//! Push instead of polling, where mailferry has a public URL: each Graph
//! importer keeps a change-notification subscription on its Inbox, made or
//! renewed at the end of its import runs (so polling, which stays the safety
//! net, also keeps push alive), and reauthorized when Graph asks.

use jiff::SignedDuration;
use microsoft::graph::GraphMailbox;
use store::importers::ImporterRecord;
use store::subscriptions::GraphSubscription;

use crate::{Connector, ImporterMailbox};

/// Where Graph posts notifications and lifecycle events (both must be
/// reachable by Microsoft: mailferry's public URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationUrls {
    pub notify: String,
    pub lifecycle: String,
}

impl NotificationUrls {
    /// The hook URLs under `public_url`.
    pub fn under(public_url: &str) -> Self {
        let base = public_url.trim_end_matches('/');
        Self {
            notify: format!("{base}/hooks/graph"),
            lifecycle: format!("{base}/hooks/graph/lifecycle"),
        }
    }
}

/// Asked for at creation and renewal: under the 4,230 minutes Graph's
/// older documents give for messages, so both limits in use are met.
const LIFETIME: SignedDuration = SignedDuration::from_mins(4_200);
/// Renewed once less than half the lifetime is left: a run every five
/// minutes (or even a day's outage of the scheduler) renews in time.
const RENEW_BELOW: SignedDuration = SignedDuration::from_mins(2_100);

/// What [`Connector::keep_subscription`] did, for the run's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionUpkeep {
    Current,
    Created,
    Renewed,
}

impl Connector {
    /// Makes sure `record`'s Inbox has a live subscription: creates one,
    /// or renews one that is past half its life; `None` when push is off
    /// or the importer is not on Graph.
    pub async fn keep_subscription(
        &self,
        record: &ImporterRecord,
        mailbox: &ImporterMailbox,
    ) -> Option<Result<SubscriptionUpkeep, String>> {
        let urls = self.notifications.as_ref()?;
        let graph = mailbox.as_graph()?;
        Some(self.keep(record, mailbox, graph, urls).await)
    }

    async fn keep(
        &self,
        record: &ImporterRecord,
        mailbox: &ImporterMailbox,
        graph: &GraphMailbox,
        urls: &NotificationUrls,
    ) -> Result<SubscriptionUpkeep, String> {
        let now = self.clock.now();
        let expires = now.checked_add(LIFETIME).unwrap_or(now);
        let stored = self
            .store
            .graph_subscription_of(&record.id)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(s) = &stored {
            if s.expires_at.duration_since(now) > RENEW_BELOW {
                return Ok(SubscriptionUpkeep::Current);
            }
            // A subscription Graph no longer has (expired, removed) is
            // made afresh below.
            if let Ok(renewed) = graph.renew_subscription(&s.subscription_id, expires).await {
                let s = GraphSubscription {
                    expires_at: renewed.expires,
                    ..s.clone()
                };
                self.store
                    .put_graph_subscription(&s, now)
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(SubscriptionUpkeep::Renewed);
            }
        }
        let folders = import::pipeline::resolve(mailbox, record)
            .await
            .map_err(|e| e.to_string())?;
        let client_state = new_client_state();
        let made = graph
            .subscribe(
                &folders.inbox.id,
                &urls.notify,
                &urls.lifecycle,
                &client_state,
                expires,
            )
            .await
            .map_err(|e| format!("{e}"))?;
        self.store
            .put_graph_subscription(
                &GraphSubscription {
                    importer_id: record.id.clone(),
                    client_id: record.client_id.clone(),
                    subscription_id: made.id,
                    client_state_sha256: sinks::sha256_hex(client_state.as_bytes()),
                    expires_at: made.expires,
                },
                now,
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(SubscriptionUpkeep::Created)
    }

    /// Ends `record`'s subscription at Graph before the importer goes, so
    /// Graph stops posting for it. Best effort: `Err` says why it could not
    /// (Graph then drops it when it expires, within three days).
    pub async fn end_subscription(&self, record: &ImporterRecord) -> Result<(), String> {
        let Some(s) = self
            .store
            .graph_subscription_of(&record.id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(());
        };
        let ended = match self.graph_mailbox(record).await {
            Ok(mailbox) => mailbox
                .delete_subscription(&s.subscription_id)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        // Whatever Graph said, this instance no longer keeps it.
        self.store
            .delete_graph_subscription(&record.id)
            .await
            .map_err(|e| e.to_string())?;
        ended
    }

    /// Answers Graph's `reauthorizationRequired` for `record`'s subscription.
    pub async fn reauthorize_subscription(
        &self,
        record: &ImporterRecord,
        subscription_id: &str,
    ) -> Result<(), String> {
        self.graph_mailbox(record)
            .await?
            .reauthorize_subscription(subscription_id)
            .await
            .map_err(|e| e.to_string())
    }

    /// `record`'s mailbox on Graph, for a request an admin or Graph waits on.
    async fn graph_mailbox(&self, record: &ImporterRecord) -> Result<GraphMailbox, String> {
        match self
            .mailbox(record, crate::mailbox::Patience::Interactive)
            .await
            .map_err(|e| e.to_string())?
        {
            ImporterMailbox::Graph(graph) => Ok(graph),
            ImporterMailbox::Imap(_) => {
                Err("the importer is no longer on Microsoft Graph".to_owned())
            }
        }
    }
}

/// 244 random bits (two v4 UUIDs), hex: what every notification must echo.
fn new_client_state() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Whether `client_state` is the one `subscription` was made with.
pub fn client_state_matches(subscription: &GraphSubscription, client_state: &str) -> bool {
    sinks::sha256_hex(client_state.as_bytes()) == subscription.client_state_sha256
}
