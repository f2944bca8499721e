//! Admin UI sessions: the cookie holds a random id, the database only its
//! SHA-256, so a database leak yields no usable session.

use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};

use crate::credentials::{random_urlsafe, sha256_hex};
use crate::{Result, Store, from_millis, to_millis};

/// How long a session lives without a new login.
pub const SESSION_LIFETIME: SignedDuration = SignedDuration::from_hours(12);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: String,
    pub client_id: String,
    pub email: String,
    /// Sent back by the UI in `X-CSRF-Token` on every change.
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

impl Store {
    /// Starts a session for a verified user; returns the cookie value.
    pub async fn create_session(
        &self,
        user_id: &str,
        client_id: &str,
        now: Timestamp,
    ) -> Result<SecretString> {
        let id = SecretString::from(random_urlsafe(32));
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(to_millis(now))
            .execute(self.pool())
            .await?;
        sqlx::query(
            "INSERT INTO sessions (id_sha256, user_id, client_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(sha256_hex(id.expose_secret().as_bytes()))
        .bind(user_id)
        .bind(client_id)
        .bind(random_urlsafe(24))
        .bind(to_millis(now))
        .bind(to_millis(now + SESSION_LIFETIME))
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    /// The live session for a cookie value, if any.
    pub async fn session(&self, cookie: &str, now: Timestamp) -> Result<Option<Session>> {
        let row: Option<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT s.user_id, s.client_id, u.email, s.csrf_token, s.expires_at FROM sessions s \
             JOIN users u ON u.id = s.user_id WHERE s.id_sha256 = $1 AND s.expires_at > $2",
        )
        .bind(sha256_hex(cookie.as_bytes()))
        .bind(to_millis(now))
        .fetch_optional(self.pool())
        .await?;
        row.map(|(user_id, client_id, email, csrf_token, expires_at)| {
            Ok(Session {
                user_id,
                client_id,
                email,
                csrf_token,
                expires_at: from_millis(expires_at)?,
            })
        })
        .transpose()
    }

    pub async fn delete_session(&self, cookie: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_sha256 = $1")
            .bind(sha256_hex(cookie.as_bytes()))
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
