//! OAuth grants of delegated importers: tokens sealed, instants in UTC, and
//! a version for compare-and-set between overlapping refresh runs.

use jiff::Timestamp;
use secrecy::SecretString;

use crate::sealed::SealedField;
use crate::{Result, Store, StoreError, from_millis, to_millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantState {
    Authorized,
    ReauthRequired,
}

impl GrantState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorized => "authorized",
            Self::ReauthRequired => "reauth_required",
        }
    }

    fn parse(raw: &str) -> Result<Self> {
        match raw {
            "authorized" => Ok(Self::Authorized),
            "reauth_required" => Ok(Self::ReauthRequired),
            other => Err(StoreError::Corrupt(format!("grant state `{other}`"))),
        }
    }
}

/// A grant as stored; tokens are opened only into `SecretString`s.
#[derive(Debug, Clone)]
pub struct Grant {
    pub importer_id: String,
    pub state: GrantState,
    pub account: Option<String>,
    pub scopes: Vec<String>,
    pub access_token: Option<SecretString>,
    pub access_token_expires_at: Option<Timestamp>,
    pub refresh_token: Option<SecretString>,
    pub refresh_token_issued_at: Option<Timestamp>,
    pub last_refresh_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub consecutive_failures: i64,
    pub version: i64,
    pub updated_at: Timestamp,
}

fn field<'a>(importer_id: &'a str, column: &'static str) -> SealedField<'a> {
    SealedField {
        table: "oauth_grants",
        column,
        row_id: importer_id,
    }
}

type GrantRow = (
    String,
    Option<String>,
    String,
    Option<Vec<u8>>,
    Option<i64>,
    Option<Vec<u8>>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    i64,
    i64,
    i64,
);

impl Store {
    /// Stores a freshly obtained grant, replacing any previous one.
    pub async fn put_grant(&self, grant: &Grant) -> Result<()> {
        let id = grant.importer_id.as_str();
        let access = grant
            .access_token
            .as_ref()
            .map(|t| self.keyring().seal(field(id, "access_token_sealed"), t));
        let refresh = grant
            .refresh_token
            .as_ref()
            .map(|t| self.keyring().seal(field(id, "refresh_token_sealed"), t));
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM oauth_grants WHERE importer_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO oauth_grants (importer_id, state, account, scopes, access_token_sealed, access_token_expires_at, \
             refresh_token_sealed, refresh_token_issued_at, last_refresh_at, last_error, consecutive_failures, version, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(id)
        .bind(grant.state.as_str())
        .bind(grant.account.as_deref())
        .bind(grant.scopes.join(" "))
        .bind(access)
        .bind(grant.access_token_expires_at.map(to_millis))
        .bind(refresh)
        .bind(grant.refresh_token_issued_at.map(to_millis))
        .bind(grant.last_refresh_at.map(to_millis))
        .bind(grant.last_error.as_deref())
        .bind(grant.consecutive_failures)
        .bind(grant.version)
        .bind(to_millis(grant.updated_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn grant(&self, importer_id: &str) -> Result<Option<Grant>> {
        let row: Option<GrantRow> = sqlx::query_as(
            "SELECT state, account, scopes, access_token_sealed, access_token_expires_at, refresh_token_sealed, \
             refresh_token_issued_at, last_refresh_at, last_error, consecutive_failures, version, updated_at \
             FROM oauth_grants WHERE importer_id = $1",
        )
        .bind(importer_id)
        .fetch_optional(self.pool())
        .await?;
        let Some((
            state,
            account,
            scopes,
            access,
            access_exp,
            refresh,
            refresh_issued,
            last_refresh,
            last_error,
            failures,
            version,
            updated_at,
        )) = row
        else {
            return Ok(None);
        };
        let open = |column, sealed: Option<Vec<u8>>| -> Result<Option<SecretString>> {
            sealed
                .map(|s| self.keyring().open(field(importer_id, column), &s))
                .transpose()
                .map_err(Into::into)
        };
        Ok(Some(Grant {
            importer_id: importer_id.to_owned(),
            state: GrantState::parse(&state)?,
            account,
            scopes: scopes.split_whitespace().map(str::to_owned).collect(),
            access_token: open("access_token_sealed", access)?,
            access_token_expires_at: access_exp.map(from_millis).transpose()?,
            refresh_token: open("refresh_token_sealed", refresh)?,
            refresh_token_issued_at: refresh_issued.map(from_millis).transpose()?,
            last_refresh_at: last_refresh.map(from_millis).transpose()?,
            last_error,
            consecutive_failures: failures,
            version,
            updated_at: from_millis(updated_at)?,
        }))
    }
}
