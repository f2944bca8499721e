//! Graph change-notification subscriptions, one per importer: what a
//! notification is checked against (its subscription id and a SHA-256 of
//! the `clientState` mailferry chose) and when the subscription needs
//! renewing. The `clientState` itself is never stored.

use jiff::Timestamp;

use crate::{Result, Store, from_millis, to_millis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphSubscription {
    pub importer_id: String,
    pub client_id: String,
    pub subscription_id: String,
    /// Lower-case hex SHA-256 of the `clientState`.
    pub client_state_sha256: String,
    pub expires_at: Timestamp,
}

type Row = (String, String, String, String, i64);

const SELECT: &str = "SELECT importer_id, client_id, subscription_id, client_state_sha256, expires_at \
     FROM graph_subscriptions";

fn from_row(
    (importer_id, client_id, subscription_id, client_state_sha256, expires): Row,
) -> Result<GraphSubscription> {
    Ok(GraphSubscription {
        importer_id,
        client_id,
        subscription_id,
        client_state_sha256,
        expires_at: from_millis(expires)?,
    })
}

impl Store {
    /// Records (or replaces) the importer's subscription.
    pub async fn put_graph_subscription(
        &self,
        s: &GraphSubscription,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO graph_subscriptions \
             (importer_id, client_id, subscription_id, client_state_sha256, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (importer_id) DO UPDATE SET subscription_id = excluded.subscription_id, \
             client_state_sha256 = excluded.client_state_sha256, expires_at = excluded.expires_at",
        )
        .bind(&s.importer_id)
        .bind(&s.client_id)
        .bind(&s.subscription_id)
        .bind(&s.client_state_sha256)
        .bind(to_millis(s.expires_at))
        .bind(to_millis(now))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn graph_subscription_of(
        &self,
        importer_id: &str,
    ) -> Result<Option<GraphSubscription>> {
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE importer_id = $1"
        )))
        .bind(importer_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(from_row).transpose()
    }

    /// The subscription a notification names, if it is one of ours.
    pub async fn graph_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<Option<GraphSubscription>> {
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE subscription_id = $1"
        )))
        .bind(subscription_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(from_row).transpose()
    }

    pub async fn delete_graph_subscription(&self, importer_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM graph_subscriptions WHERE importer_id = $1")
            .bind(importer_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
