//! OAuth grants of delegated importers: tokens sealed, instants in UTC, and
//! a version for compare-and-set between overlapping refresh runs; and
//! grants waiting for the admin to confirm an account change.

use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};

use crate::credentials::{random_urlsafe, sha256_hex};
use crate::oauth_states::{SingleUse, StateLookup};
use crate::sealed::SealedField;
use crate::{Result, Store, StoreError, from_millis, to_millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantState {
    Authorized,
    ReauthRequired,
    /// The tokens are valid, but the signed-in account cannot open the
    /// configured mailbox; `last_error` says why and what to do. Imports do
    /// not start until a check finds the mailbox reachable again.
    MailboxDenied,
}

impl GrantState {
    pub const ALL: [Self; 3] = [Self::Authorized, Self::ReauthRequired, Self::MailboxDenied];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorized => "authorized",
            Self::ReauthRequired => "reauth_required",
            Self::MailboxDenied => "mailbox_denied",
        }
    }

    fn parse(raw: &str) -> Result<Self> {
        match raw {
            "authorized" => Ok(Self::Authorized),
            "reauth_required" => Ok(Self::ReauthRequired),
            "mailbox_denied" => Ok(Self::MailboxDenied),
            other => Err(StoreError::Corrupt(format!("grant state `{other}`"))),
        }
    }

    /// Whether Microsoft still honours the grant's tokens, so they are kept
    /// fresh and handed out: a denied mailbox is an Exchange matter, and the
    /// connection test needs a token to say what is wrong.
    pub fn tokens_usable(self) -> bool {
        matches!(self, Self::Authorized | Self::MailboxDenied)
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

/// The columns that make up a grant, in `GrantRow` order and in the order
/// `bind_grant` binds them; `oauth_grants` and `pending_grants` both have them.
const GRANT_COLUMNS: &str = "state, account, scopes, access_token_sealed, access_token_expires_at, \
     refresh_token_sealed, refresh_token_issued_at, last_refresh_at, last_error, consecutive_failures, \
     version, updated_at";

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

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds `grant` in `GRANT_COLUMNS` order, its tokens sealed into the row
/// `field` names, with `version` (which the caller decides).
fn bind_grant<'q, 'f>(
    store: &Store,
    query: AnyQuery<'q>,
    grant: &Grant,
    field: impl Fn(&'static str) -> SealedField<'f>,
    version: i64,
) -> AnyQuery<'q> {
    let seal = |column, token: &Option<SecretString>| {
        token
            .as_ref()
            .map(|t| store.keyring().seal(field(column), t))
    };
    query
        .bind(grant.state.as_str())
        .bind(grant.account.clone())
        .bind(grant.scopes.join(" "))
        .bind(seal("access_token_sealed", &grant.access_token))
        .bind(grant.access_token_expires_at.map(to_millis))
        .bind(seal("refresh_token_sealed", &grant.refresh_token))
        .bind(grant.refresh_token_issued_at.map(to_millis))
        .bind(grant.last_refresh_at.map(to_millis))
        .bind(grant.last_error.clone())
        .bind(grant.consecutive_failures)
        .bind(version)
        .bind(to_millis(grant.updated_at))
}

/// Opens a `GrantRow` whose tokens were sealed into the row `field` names.
fn open_grant<'f>(
    store: &Store,
    importer_id: String,
    row: GrantRow,
    field: impl Fn(&'static str) -> SealedField<'f>,
) -> Result<Grant> {
    let (
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
    ) = row;
    let open = |column, sealed: Option<Vec<u8>>| -> Result<Option<SecretString>> {
        sealed
            .map(|s| store.keyring().open(field(column), &s))
            .transpose()
            .map_err(Into::into)
    };
    Ok(Grant {
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
        importer_id,
    })
}

impl Store {
    /// How many grants are in each state, over every client (for metrics).
    pub async fn grant_state_counts(&self) -> Result<Vec<(GrantState, i64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM oauth_grants GROUP BY state")
                .fetch_all(self.pool())
                .await?;
        rows.into_iter()
            .map(|(state, n)| Ok((GrantState::parse(&state)?, n)))
            .collect()
    }

    /// Stores a freshly obtained grant, replacing any previous one.
    pub async fn put_grant(&self, grant: &Grant) -> Result<()> {
        let id = grant.importer_id.as_str();
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
        let insert = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO oauth_grants (importer_id, mailbox_error, {GRANT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        )))
        .bind(id)
        .bind(mailbox_error(grant));
        bind_grant(self, insert, grant, |c| field(id, c), version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn grant(&self, importer_id: &str) -> Result<Option<Grant>> {
        let row: Option<GrantRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {GRANT_COLUMNS} FROM oauth_grants WHERE importer_id = $1"
        )))
        .bind(importer_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| open_grant(self, importer_id.to_owned(), row, |c| field(importer_id, c)))
            .transpose()
    }
}

/// What `oauth_grants.mailbox_error` holds for a grant: the denial, kept
/// apart from `last_error` (which a failed refresh overwrites) so that a
/// later successful refresh can restore it.
fn mailbox_error(grant: &Grant) -> Option<&str> {
    (grant.state == GrantState::MailboxDenied).then(|| {
        grant
            .last_error
            .as_deref()
            .unwrap_or("the signed-in account cannot open the configured mailbox")
    })
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
    /// re-reads it. Clears failures and sets the state to `authorized`,
    /// except for a `mailbox_denied` grant: new tokens do not open the
    /// mailbox, so it stays denied with its reason.
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
        let common = "state = CASE WHEN mailbox_error IS NULL THEN 'authorized' ELSE 'mailbox_denied' END, \
             access_token_sealed = $1, access_token_expires_at = $2, \
             scopes = COALESCE($3, scopes), last_refresh_at = $4, last_error = mailbox_error, consecutive_failures = 0, \
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

    /// Records what a Graph call found about the configured mailbox: `Ok`
    /// turns a `mailbox_denied` grant back into `authorized`; `Err(detail)`
    /// (the reason and its fix) turns an `authorized` grant into
    /// `mailbox_denied`, or updates the reason of one that already is. A
    /// `reauth_required` grant is left alone: its tokens are the problem.
    /// Returns whether a grant was changed.
    ///
    /// The version stays: the tokens did not change, and bumping it would
    /// make a concurrent refresh lose its rotated token.
    pub async fn set_grant_mailbox_access(
        &self,
        importer_id: &str,
        access: std::result::Result<(), String>,
        now: Timestamp,
    ) -> Result<bool> {
        let done = match access {
            // A refresh failure's reason outlives the mailbox note it replaced.
            Ok(()) => sqlx::query(
                "UPDATE oauth_grants SET state = 'authorized', \
                 last_error = CASE WHEN last_error = mailbox_error THEN NULL ELSE last_error END, \
                 mailbox_error = NULL, updated_at = $1 \
                 WHERE importer_id = $2 AND state = 'mailbox_denied'",
            )
            .bind(to_millis(now))
            .bind(importer_id)
            .execute(self.pool())
            .await?,
            Err(detail) => sqlx::query(
                "UPDATE oauth_grants SET state = 'mailbox_denied', last_error = $1, mailbox_error = $1, \
                 updated_at = $2 WHERE importer_id = $3 AND state IN ('authorized', 'mailbox_denied')",
            )
            .bind(detail)
            .bind(to_millis(now))
            .bind(importer_id)
            .execute(self.pool())
            .await?,
        };
        Ok(done.rows_affected() == 1)
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

/// How long an admin has to confirm an account change.
pub const CONFIRMATION_LIFETIME: SignedDuration = SignedDuration::from_mins(10);

/// A sign-in that would change the account whose mailbox an importer reads,
/// waiting for the admin to confirm it.
#[derive(Debug, Clone)]
pub struct PendingGrant {
    pub client_id: String,
    /// The `Caller.principal` who pressed Authenticate.
    pub started_by: String,
    /// The account the importer was authorized as when the sign-in came
    /// back; confirming is refused if that has changed since.
    pub previous_account: String,
    /// Stored as it is on confirmation.
    pub grant: Grant,
    pub expires_at: Timestamp,
}

/// What to keep until the admin decides.
#[derive(Debug, Clone, Copy)]
pub struct NewPendingGrant<'a> {
    pub client_id: &'a str,
    pub started_by: &'a str,
    pub previous_account: &'a str,
    pub grant: &'a Grant,
}

/// The single-use token that confirms a pending grant; only its SHA-256 is stored.
#[derive(Debug)]
pub struct Confirmation {
    pub token: SecretString,
    pub expires_at: Timestamp,
}

fn pending_field<'a>(token_hash: &'a str, column: &'static str) -> SealedField<'a> {
    SealedField {
        table: "pending_grants",
        column,
        row_id: token_hash,
    }
}

impl Store {
    /// Keeps a grant, sealed like a stored one, until the admin confirms it
    /// with the returned token (single use, `CONFIRMATION_LIFETIME`). Also
    /// sweeps pending grants that expired more than a day ago, and the
    /// tokens of those nobody can confirm any more.
    pub async fn create_pending_grant(
        &self,
        new: NewPendingGrant<'_>,
        now: Timestamp,
    ) -> Result<Confirmation> {
        let token = SecretString::from(random_urlsafe(32));
        let hash = sha256_hex(token.expose_secret().as_bytes());
        let expires_at = now.saturating_add(CONFIRMATION_LIFETIME).unwrap_or(now);
        sqlx::query("DELETE FROM pending_grants WHERE expires_at < $1")
            .bind(to_millis(now) - 86_400_000)
            .execute(self.pool())
            .await?;
        self.scrub_settled_pending_grants(now).await?;
        let insert = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO pending_grants (token_sha256, client_id, importer_id, started_by, previous_account, \
             created_at, expires_at, {GRANT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        )))
        .bind(&hash)
        .bind(new.client_id)
        .bind(&new.grant.importer_id)
        .bind(new.started_by)
        .bind(new.previous_account)
        .bind(to_millis(now))
        .bind(to_millis(expires_at));
        bind_grant(
            self,
            insert,
            new.grant,
            |c| pending_field(&hash, c),
            new.grant.version,
        )
        .execute(self.pool())
        .await?;
        Ok(Confirmation { token, expires_at })
    }

    /// Uses up a confirmation token: exactly one caller ever gets `Valid`.
    pub async fn consume_pending_grant(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<StateLookup<PendingGrant>> {
        let hash = sha256_hex(token.as_bytes());
        if let Some(refused) = self
            .claim_single_use(SingleUse::PendingGrant, &hash, now)
            .await?
        {
            return Ok(refused);
        }
        let meta: Option<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT client_id, importer_id, started_by, previous_account, expires_at \
             FROM pending_grants WHERE token_sha256 = $1",
        )
        .bind(&hash)
        .fetch_optional(self.pool())
        .await?;
        let row: Option<GrantRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {GRANT_COLUMNS} FROM pending_grants WHERE token_sha256 = $1"
        )))
        .bind(&hash)
        .fetch_optional(self.pool())
        .await?;
        // Gone between the claim and these reads: its importer was deleted.
        let (Some((client_id, importer_id, started_by, previous_account, expires)), Some(row)) =
            (meta, row)
        else {
            return Ok(StateLookup::Unknown);
        };
        let grant = open_grant(self, importer_id, row, |c| pending_field(&hash, c))?;
        self.scrub_settled_pending_grants(now).await?;
        Ok(StateLookup::Valid(PendingGrant {
            client_id,
            started_by,
            previous_account,
            grant,
            expires_at: from_millis(expires)?,
        }))
    }

    /// Drops the sealed tokens of pending grants that were used or expired:
    /// a declined or confirmed switch leaves no second copy of a refresh
    /// token behind. The rows stay a day, to tell a replay what happened.
    async fn scrub_settled_pending_grants(&self, now: Timestamp) -> Result<()> {
        sqlx::query(
            "UPDATE pending_grants SET access_token_sealed = NULL, refresh_token_sealed = NULL \
             WHERE (consumed_at IS NOT NULL OR expires_at <= $1) \
             AND (access_token_sealed IS NOT NULL OR refresh_token_sealed IS NOT NULL)",
        )
        .bind(to_millis(now))
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
