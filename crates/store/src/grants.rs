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
        // A new authorization must outrank any refresh still in flight for
        // the old grant, so that refresh's compare-and-set fails.
        let previous: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM oauth_grants WHERE importer_id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let version = previous.map_or(grant.version, |(v,)| grant.version.max(v + 1));
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
        .bind(version)
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

/// Tokens from a successful refresh, to replace the stored ones.
#[derive(Debug, Clone, Copy)]
pub struct RefreshedTokens<'a> {
    pub access_token: &'a SecretString,
    pub access_token_expires_at: Timestamp,
    /// `None` when Microsoft sent no new refresh token: the old one stays.
    pub refresh_token: Option<&'a SecretString>,
    /// Empty when Microsoft did not say: the stored scopes stay.
    pub scopes: &'a [String],
}

impl Store {
    /// Replaces the tokens of a grant if it is still at `expected_version`
    /// (compare-and-set): two overlapping refresh runs can never overwrite
    /// a newer rotated refresh token with an older one. Returns `false`
    /// when the grant changed (or vanished) meanwhile; the caller then
    /// re-reads it. Clears failures and sets the state to `authorized`.
    pub async fn store_refreshed_tokens(
        &self,
        importer_id: &str,
        expected_version: i64,
        tokens: RefreshedTokens<'_>,
        now: Timestamp,
    ) -> Result<bool> {
        let access = self.keyring().seal(
            field(importer_id, "access_token_sealed"),
            tokens.access_token,
        );
        let scopes = (!tokens.scopes.is_empty()).then(|| tokens.scopes.join(" "));
        let common = "state = 'authorized', access_token_sealed = $1, access_token_expires_at = $2, \
             scopes = COALESCE($3, scopes), last_refresh_at = $4, last_error = NULL, consecutive_failures = 0, \
             version = version + 1, updated_at = $4";
        let done = match tokens.refresh_token {
            Some(rt) => {
                let refresh = self
                    .keyring()
                    .seal(field(importer_id, "refresh_token_sealed"), rt);
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE oauth_grants SET {common}, refresh_token_sealed = $5, refresh_token_issued_at = $4 \
                     WHERE importer_id = $6 AND version = $7"
                )))
                .bind(access)
                .bind(to_millis(tokens.access_token_expires_at))
                .bind(scopes)
                .bind(to_millis(now))
                .bind(refresh)
                .bind(importer_id)
                .bind(expected_version)
                .execute(self.pool())
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE oauth_grants SET {common} WHERE importer_id = $5 AND version = $6"
                )))
                .bind(access)
                .bind(to_millis(tokens.access_token_expires_at))
                .bind(scopes)
                .bind(to_millis(now))
                .bind(importer_id)
                .bind(expected_version)
                .execute(self.pool())
                .await?
            }
        };
        Ok(done.rows_affected() == 1)
    }

    /// Marks a grant unusable with Microsoft's reason, if it is still at
    /// `expected_version` (a newer grant, e.g. a fresh sign-in, is kept).
    pub async fn mark_reauth_required(
        &self,
        importer_id: &str,
        expected_version: i64,
        reason: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE oauth_grants SET state = 'reauth_required', last_error = $1, \
             consecutive_failures = consecutive_failures + 1, version = version + 1, updated_at = $2 \
             WHERE importer_id = $3 AND version = $4",
        )
        .bind(reason)
        .bind(to_millis(now))
        .bind(importer_id)
        .bind(expected_version)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Counts a failed refresh that may succeed later (network, 5xx, 429).
    /// Leaves `version` alone: the tokens did not change, and bumping it
    /// would make a concurrent successful refresh lose its rotated token.
    pub async fn record_refresh_failure(
        &self,
        importer_id: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE oauth_grants SET last_error = $1, consecutive_failures = consecutive_failures + 1, \
             updated_at = $2 WHERE importer_id = $3",
        )
        .bind(reason)
        .bind(to_millis(now))
        .bind(importer_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Sets (or clears) the note on a grant without touching its tokens,
    /// e.g. "the signed-in account cannot open the mailbox".
    pub async fn set_grant_note(&self, importer_id: &str, note: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE oauth_grants SET last_error = $1 WHERE importer_id = $2")
            .bind(note)
            .bind(importer_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Claims the right to refresh one grant until `until`, so two runs (or
    /// two instances) do not both spend the same refresh token. A claim
    /// whose holder died lapses at `until`. Compare-and-set on `version`
    /// stays the safety net if a claim lapses mid-refresh.
    pub async fn try_claim_refresh(
        &self,
        importer_id: &str,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool> {
        self.try_acquire_lease(&refresh_lease(importer_id), owner, until, now)
            .await
    }

    pub async fn release_refresh_claim(&self, importer_id: &str, owner: &str) -> Result<()> {
        self.release_lease(&refresh_lease(importer_id), owner).await
    }
}

fn refresh_lease(importer_id: &str) -> String {
    format!("grant-refresh:{importer_id}")
}
