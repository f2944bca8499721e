//! The `state` of an authorization in progress: which client, importer and
//! admin started it, and the PKCE verifier to redeem the code with.
//!
//! Only a SHA-256 of the random state is stored (a database leak does not
//! let anyone finish someone else's sign-in), the verifier is sealed, a
//! state lives 10 minutes, and consuming it is one atomic UPDATE, so a
//! replayed callback finds it used.

use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};

use crate::credentials::sha256_hex;
use crate::sealed::SealedField;
use crate::{Result, Store, from_millis, to_millis};

/// How long an admin has to finish signing in.
pub const STATE_LIFETIME: SignedDuration = SignedDuration::from_mins(10);

/// A state as it comes back with the callback.
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    pub client_id: String,
    pub importer_id: String,
    /// The `Caller.principal` who pressed Authenticate.
    pub started_by: String,
    pub pkce_verifier: SecretString,
    /// The redirect URI sent to /authorize; the code exchange must repeat it.
    pub redirect_uri: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What using up a single-use secret found: a sign-in `state` (the
/// default), or the confirmation of an account change
/// ([`crate::grants::PendingGrant`]).
#[derive(Debug)]
pub enum StateLookup<T = PendingAuthorization> {
    Valid(T),
    /// Never issued (or tampered with, or its importer was deleted).
    Unknown,
    AlreadyUsed {
        used_at: Timestamp,
    },
    Expired {
        expired_at: Timestamp,
    },
}

/// What to remember when an authorization starts.
#[derive(Debug, Clone, Copy)]
pub struct NewAuthorization<'a> {
    pub state: &'a SecretString,
    pub client_id: &'a str,
    pub importer_id: &'a str,
    pub started_by: &'a str,
    pub pkce_verifier: &'a SecretString,
    pub redirect_uri: &'a str,
}

fn verifier_field(state_hash: &str) -> SealedField<'_> {
    SealedField {
        table: "oauth_states",
        column: "pkce_verifier_sealed",
        row_id: state_hash,
    }
}

type StateRow = (String, String, String, Vec<u8>, String, i64, i64);

impl Store {
    /// Remembers a started authorization; returns when it expires. Also
    /// sweeps states that expired more than a day ago.
    pub async fn create_oauth_state(
        &self,
        new: NewAuthorization<'_>,
        now: Timestamp,
    ) -> Result<Timestamp> {
        let hash = sha256_hex(new.state.expose_secret().as_bytes());
        let sealed = self
            .keyring()
            .seal(verifier_field(&hash), new.pkce_verifier);
        let expires_at = now.saturating_add(STATE_LIFETIME).unwrap_or(now);
        sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
            .bind(to_millis(now) - 86_400_000)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "INSERT INTO oauth_states (state_sha256, client_id, importer_id, started_by, pkce_verifier_sealed, \
             redirect_uri, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&hash)
        .bind(new.client_id)
        .bind(new.importer_id)
        .bind(new.started_by)
        .bind(sealed)
        .bind(new.redirect_uri)
        .bind(to_millis(now))
        .bind(to_millis(expires_at))
        .execute(self.pool())
        .await?;
        Ok(expires_at)
    }

    /// Uses up a state: exactly one caller ever gets `Valid` for it.
    pub async fn consume_oauth_state(&self, state: &str, now: Timestamp) -> Result<StateLookup> {
        let hash = sha256_hex(state.as_bytes());
        if let Some(refused) = self
            .claim_single_use(SingleUse::OAuthState, &hash, now)
            .await?
        {
            return Ok(refused);
        }
        let row: Option<StateRow> = sqlx::query_as(
            "SELECT client_id, importer_id, started_by, pkce_verifier_sealed, redirect_uri, created_at, \
             expires_at FROM oauth_states WHERE state_sha256 = $1",
        )
        .bind(&hash)
        .fetch_optional(self.pool())
        .await?;
        // Gone between the claim and this read: its importer was deleted.
        let Some((client_id, importer_id, started_by, sealed, redirect_uri, created, expires)) =
            row
        else {
            return Ok(StateLookup::Unknown);
        };
        Ok(StateLookup::Valid(PendingAuthorization {
            client_id,
            importer_id,
            started_by,
            pkce_verifier: self.keyring().open(verifier_field(&hash), &sealed)?,
            redirect_uri,
            created_at: from_millis(created)?,
            expires_at: from_millis(expires)?,
        }))
    }

    /// Marks the single-use row under `hash` used, in one atomic UPDATE, so
    /// that exactly one caller wins. `None`: this caller won and may read the
    /// row; otherwise why it may not (its payload type is filled in later).
    pub(crate) async fn claim_single_use<T>(
        &self,
        kind: SingleUse,
        hash: &str,
        now: Timestamp,
    ) -> Result<Option<StateLookup<T>>> {
        let (table, key) = kind.table_and_key();
        let claimed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET consumed_at = $1 \
             WHERE {key} = $2 AND consumed_at IS NULL AND expires_at > $1"
        )))
        .bind(to_millis(now))
        .bind(hash)
        .execute(self.pool())
        .await?;
        if claimed.rows_affected() == 1 {
            return Ok(None);
        }
        let row: Option<(i64, Option<i64>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT expires_at, consumed_at FROM {table} WHERE {key} = $1"
        )))
        .bind(hash)
        .fetch_optional(self.pool())
        .await?;
        Ok(Some(match row {
            None => StateLookup::Unknown,
            Some((_, Some(used_at))) => StateLookup::AlreadyUsed {
                used_at: from_millis(used_at)?,
            },
            Some((expires, None)) => StateLookup::Expired {
                expired_at: from_millis(expires)?,
            },
        }))
    }
}

/// The tables of single-use secrets, each keyed by the secret's SHA-256.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SingleUse {
    OAuthState,
    PendingGrant,
}

impl SingleUse {
    fn table_and_key(self) -> (&'static str, &'static str) {
        match self {
            Self::OAuthState => ("oauth_states", "state_sha256"),
            Self::PendingGrant => ("pending_grants", "token_sha256"),
        }
    }
}
