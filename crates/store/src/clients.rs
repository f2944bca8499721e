//! Clients (tenants of mailferry), their admins and API tokens.

use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};

use crate::credentials::{self, sha256_hex};
use crate::{Result, Store, StoreError, from_millis, new_id, to_millis};

/// The client a first start creates; it answers any host.
pub const DEFAULT_CLIENT: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    pub name: String,
    /// Host names this client answers; empty means any host.
    pub hosts: Vec<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub client_id: String,
    pub email: String,
    pub created_at: Timestamp,
}

/// Who an API request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub token_id: String,
    pub client_id: String,
    pub label: String,
}

type ClientRow = (String, String, String, i64);

fn client_from_row((id, name, hosts, created_at): ClientRow) -> Result<Client> {
    Ok(Client {
        id,
        name,
        hosts: serde_json::from_str(&hosts)
            .map_err(|e| StoreError::Corrupt(format!("client hosts: {e}")))?,
        created_at: from_millis(created_at)?,
    })
}

/// Client names appear in paths (`documents/{client}/…`), so they are kept
/// to a safe alphabet.
pub fn validate_client_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a client name: use 1–64 lower-case letters, digits, `-` or `_`"
        ))
    }
}

impl Store {
    /// Creates client `default` unless it exists; safe to call on every start.
    pub async fn ensure_default_client(&self, now: Timestamp) -> Result<Client> {
        if let Some(client) = self.client_by_name(DEFAULT_CLIENT).await? {
            return Ok(client);
        }
        match self.create_client(DEFAULT_CLIENT, &[], now).await {
            Ok(client) => Ok(client),
            // Another instance created it at the same moment.
            Err(StoreError::Conflict(_)) => self
                .client_by_name(DEFAULT_CLIENT)
                .await?
                .ok_or(StoreError::NotFound("client default")),
            Err(e) => Err(e),
        }
    }

    pub async fn create_client(
        &self,
        name: &str,
        hosts: &[String],
        now: Timestamp,
    ) -> Result<Client> {
        validate_client_name(name).map_err(StoreError::Conflict)?;
        let hosts: Vec<String> = hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        for host in &hosts {
            if let Some(owner) = self.client_for_host_exact(host).await? {
                return Err(StoreError::Conflict(format!(
                    "host `{host}` already belongs to client `{}`",
                    owner.name
                )));
            }
        }
        if self.client_by_name(name).await?.is_some() {
            return Err(StoreError::Conflict(format!(
                "client `{name}` already exists"
            )));
        }
        let client = Client {
            id: new_id(),
            name: name.to_owned(),
            hosts,
            created_at: now,
        };
        let hosts_json =
            serde_json::to_string(&client.hosts).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query("INSERT INTO clients (id, name, hosts, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&client.id)
            .bind(&client.name)
            .bind(hosts_json)
            .bind(to_millis(now))
            .execute(self.pool())
            .await
            .map_err(|e| {
                unique_violation_as_conflict(e, || format!("client `{name}` already exists"))
            })?;
        self.create_default_jobs(&client.id, now).await?;
        Ok(client)
    }

    pub async fn client_by_name(&self, name: &str) -> Result<Option<Client>> {
        let row: Option<ClientRow> =
            sqlx::query_as("SELECT id, name, hosts, created_at FROM clients WHERE name = $1")
                .bind(name)
                .fetch_optional(self.pool())
                .await?;
        row.map(client_from_row).transpose()
    }

    pub async fn client_by_id(&self, id: &str) -> Result<Option<Client>> {
        let row: Option<ClientRow> =
            sqlx::query_as("SELECT id, name, hosts, created_at FROM clients WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        row.map(client_from_row).transpose()
    }

    pub async fn list_clients(&self) -> Result<Vec<Client>> {
        let rows: Vec<ClientRow> =
            sqlx::query_as("SELECT id, name, hosts, created_at FROM clients ORDER BY name")
                .fetch_all(self.pool())
                .await?;
        rows.into_iter().map(client_from_row).collect()
    }

    async fn client_for_host_exact(&self, host: &str) -> Result<Option<Client>> {
        Ok(self
            .list_clients()
            .await?
            .into_iter()
            .find(|c| c.hosts.iter().any(|h| h == host)))
    }

    /// The client that answers `host` (port ignored): the one that lists it,
    /// else `default`.
    pub async fn client_for_host(&self, host: &str) -> Result<Option<Client>> {
        let host = host
            .rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(host, |(h, _)| h);
        let clients = self.list_clients().await?;
        let host = host.to_ascii_lowercase();
        Ok(clients
            .iter()
            .find(|c| c.hosts.contains(&host))
            .or_else(|| clients.iter().find(|c| c.name == DEFAULT_CLIENT))
            .cloned())
    }

    pub async fn create_user(
        &self,
        client_id: &str,
        email: &str,
        password: &SecretString,
        now: Timestamp,
    ) -> Result<User> {
        let email = email.trim().to_ascii_lowercase();
        if !email.contains('@') {
            return Err(StoreError::Conflict(format!(
                "`{email}` is not an e-mail address"
            )));
        }
        let hash = credentials::hash_password(password)
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
        let user = User {
            id: new_id(),
            client_id: client_id.to_owned(),
            email,
            created_at: now,
        };
        sqlx::query("INSERT INTO users (id, client_id, email, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&user.id)
            .bind(&user.client_id)
            .bind(&user.email)
            .bind(hash)
            .bind(to_millis(now))
            .execute(self.pool())
            .await
            .map_err(|e| unique_violation_as_conflict(e, || format!("user `{}` already exists in this client", user.email)))?;
        Ok(user)
    }

    /// The user when `password` is right; `None` otherwise (unknown user or
    /// wrong password look the same to a caller).
    /// The id of the client's user with this address, if there is one.
    pub async fn user_id_by_email(&self, client_id: &str, email: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM users WHERE client_id = $1 AND email = $2")
                .bind(client_id)
                .bind(email.trim().to_ascii_lowercase())
                .fetch_optional(self.pool())
                .await?,
        )
    }

    pub async fn verify_user(
        &self,
        client_id: &str,
        email: &str,
        password: &SecretString,
    ) -> Result<Option<User>> {
        let row: Option<(String, String, String, i64)> = sqlx::query_as(
            "SELECT id, email, password_hash, created_at FROM users WHERE client_id = $1 AND email = $2",
        )
        .bind(client_id)
        .bind(email.trim().to_ascii_lowercase())
        .fetch_optional(self.pool())
        .await?;
        let Some((id, email, hash, created_at)) = row else {
            return Ok(None);
        };
        if !credentials::verify_password(password, &hash) {
            return Ok(None);
        }
        Ok(Some(User {
            id,
            client_id: client_id.to_owned(),
            email,
            created_at: from_millis(created_at)?,
        }))
    }

    /// Creates an API token for the client, valid until `expires_at` if
    /// given, and returns it; only its hash is kept.
    pub async fn create_api_token(
        &self,
        client_id: &str,
        label: &str,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(TokenOwner, SecretString)> {
        let token = credentials::new_api_token();
        let owner = TokenOwner {
            token_id: new_id(),
            client_id: client_id.to_owned(),
            label: label.to_owned(),
        };
        sqlx::query("INSERT INTO api_tokens (id, client_id, label, token_sha256, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&owner.token_id)
            .bind(&owner.client_id)
            .bind(&owner.label)
            .bind(sha256_hex(token.expose_secret().as_bytes()))
            .bind(to_millis(now))
            .bind(expires_at.map(to_millis))
            .execute(self.pool())
            .await?;
        Ok((owner, token))
    }

    /// Who `token` belongs to, if it is one and neither expired nor revoked.
    pub async fn token_owner(&self, token: &str, now: Timestamp) -> Result<Option<TokenOwner>> {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT id, client_id, label FROM api_tokens WHERE token_sha256 = $1 \
             AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(sha256_hex(token.as_bytes()))
        .bind(to_millis(now))
        .fetch_optional(self.pool())
        .await?;
        let Some((token_id, client_id, label)) = row else {
            return Ok(None);
        };
        // At most one write a minute per token: every API request comes
        // through here, and "last used" needs no finer grain.
        sqlx::query(
            "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 \
             AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(to_millis(now))
        .bind(&token_id)
        .bind(to_millis(now) - 60_000)
        .execute(self.pool())
        .await?;
        Ok(Some(TokenOwner {
            token_id,
            client_id,
            label,
        }))
    }
}

/// An API token as `mailferry token list` shows it (never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenInfo {
    pub id: String,
    pub label: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl Store {
    /// The client's API tokens, oldest first.
    pub async fn list_api_tokens(&self, client_id: &str) -> Result<Vec<ApiTokenInfo>> {
        type Row = (String, String, i64, Option<i64>, Option<i64>, Option<i64>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, label, created_at, last_used_at, expires_at, revoked_at FROM api_tokens \
             WHERE client_id = $1 ORDER BY created_at, id",
        )
        .bind(client_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(id, label, created, used, expires, revoked)| {
                Ok(ApiTokenInfo {
                    id,
                    label,
                    created_at: from_millis(created)?,
                    last_used_at: used.map(from_millis).transpose()?,
                    expires_at: expires.map(from_millis).transpose()?,
                    revoked_at: revoked.map(from_millis).transpose()?,
                })
            })
            .collect()
    }

    /// Revokes the client's token `token_id`: it stops working at once.
    /// `false` when the client has no such token, or it was revoked before.
    pub async fn revoke_api_token(
        &self,
        client_id: &str,
        token_id: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND client_id = $3 AND revoked_at IS NULL",
        )
        .bind(to_millis(now))
        .bind(token_id)
        .bind(client_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

pub(crate) fn unique_violation_as_conflict(
    e: sqlx::Error,
    message: impl FnOnce() -> String,
) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message()),
        _ => StoreError::Database(e),
    }
}
