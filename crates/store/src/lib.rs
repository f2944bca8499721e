//! mailferry's persistence: one sqlx code path for SQLite (the default) and
//! PostgreSQL (several instances), with embedded migrations per backend and
//! secrets sealed under a master key.
//!
//! Instants cross this boundary as `jiff::Timestamp` and are stored as UTC
//! epoch milliseconds, so nothing depends on the server's time zone.

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub mod alerts;
pub mod audit;
pub mod clients;
pub mod credentials;
pub mod documents;
pub mod executions;
pub mod grants;
pub mod import_runs;
pub mod import_work;
pub mod importers;
pub mod jobs;
pub mod leases;
pub mod ledger;
pub mod oauth_states;
pub mod sealed;
pub mod sessions;
pub mod subscriptions;
pub mod throttles;

pub use sealed::{Keyring, SealError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://USER@HOST:PORT/DB")]
    UnsupportedUrl(String),
    #[error(
        "database error: {0}. Check that the database is reachable and MAILFERRY_DATABASE_URL is right"
    )]
    Database(#[from] sqlx::Error),
    #[error(
        "database migration failed: {0}. The database may belong to a newer mailferry; restore a backup or upgrade"
    )]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("stored record is unreadable ({0}); it was probably written by another version")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle to the database and the keyring that seals its secrets.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    keyring: Arc<Keyring>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connects, applies pending migrations and returns the store.
    /// `sqlite://` files are created when missing and run in WAL mode.
    pub async fn connect(url: &str, keyring: Keyring) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let options: AnyConnectOptions = url.parse()?;
        let mut pool_options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            // A file database never is unreachable: a long wait there is
            // other writers on a busy disk (slow fsyncs), and failing the
            // run would only leave its mail for the next one.
            .acquire_timeout(Duration::from_secs(if backend == Backend::Sqlite {
                60
            } else {
                10
            }));
        if backend == Backend::Sqlite {
            pool_options = pool_options.after_connect(|conn, _| {
                Box::pin(async move {
                    // A writer waits for another instead of failing at once;
                    // foreign keys are off by default in SQLite.
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    Ok(())
                })
            });
        }
        let pool = pool_options.connect_with(options).await?;
        if backend == Backend::Sqlite {
            // Persistent in the file: readers never block the writer.
            pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Self {
            pool,
            backend,
            keyring: Arc::new(keyring),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The non-empty values of one sealed column, with their row ids.
    async fn sealed_values(
        &self,
        table: &str,
        id_column: &str,
        column: &str,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {id_column}, {column} FROM {table} WHERE {column} IS NOT NULL"
        )))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Counts the sealed values and tries to open each, so a wrong or
    /// missing master key file is found at start, not at the first import.
    pub async fn sealed_census(&self) -> Result<SealedCensus> {
        let mut census = SealedCensus::default();
        for (table, id_column, column) in SEALED_COLUMNS {
            for (row_id, sealed) in self.sealed_values(table, id_column, column).await? {
                census.values += 1;
                if census.unopenable.is_some() {
                    continue;
                }
                let field = sealed::SealedField {
                    table,
                    column,
                    row_id: &row_id,
                };
                if self.keyring.open_bytes(field, &sealed).is_err() {
                    census.unopenable = Some(
                        Keyring::key_id_of(&sealed)
                            .unwrap_or("(unreadable)")
                            .to_owned(),
                    );
                }
            }
        }
        Ok(census)
    }

    /// Re-seals every secret still sealed with an older key under the
    /// current key. Returns how many values were re-sealed.
    pub async fn reseal_all(&self) -> Result<u64> {
        let mut count = 0;
        for (table, id_column, column) in SEALED_COLUMNS {
            for (row_id, sealed) in self.sealed_values(table, id_column, column).await? {
                if !self.keyring.needs_reseal(&sealed) {
                    continue;
                }
                let field = sealed::SealedField {
                    table,
                    column,
                    row_id: &row_id,
                };
                let plain = self.keyring.open_bytes(field, &sealed)?;
                let resealed = self.keyring.seal_bytes(field, &plain);
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE {table} SET {column} = $1 WHERE {id_column} = $2 AND {column} = $3"
                )))
                .bind(resealed)
                .bind(&row_id)
                .bind(sealed)
                .execute(&self.pool)
                .await?;
                count += 1;
            }
        }
        Ok(count)
    }
}

/// What [`Store::sealed_census`] found.
#[derive(Debug, Default)]
pub struct SealedCensus {
    pub values: u64,
    /// The key id of the first value the keyring could not open.
    pub unopenable: Option<String>,
}

/// Every column that holds a sealed value: `(table, id column, column)`.
const SEALED_COLUMNS: [(&str, &str, &str); 9] = [
    ("alert_settings", "client_id", "smtp_password_sealed"),
    ("importers", "id", "secret_sealed"),
    ("importers", "id", "sink_secret_sealed"),
    ("importers", "id", "content_keys_sealed"),
    ("oauth_grants", "importer_id", "access_token_sealed"),
    ("oauth_grants", "importer_id", "refresh_token_sealed"),
    ("oauth_states", "state_sha256", "pkce_verifier_sealed"),
    ("pending_grants", "token_sha256", "access_token_sealed"),
    ("pending_grants", "token_sha256", "refresh_token_sealed"),
];

/// Hides the password of a database URL in messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:****{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

pub(crate) fn to_millis(ts: jiff::Timestamp) -> i64 {
    ts.as_millisecond()
}

pub(crate) fn from_millis(ms: i64) -> Result<jiff::Timestamp> {
    jiff::Timestamp::from_millisecond(ms)
        .map_err(|e| StoreError::Corrupt(format!("instant {ms}: {e}")))
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            super::redact_url("postgres://mf:s3cret@127.0.0.1:5432/mf"),
            "postgres://mf:****@127.0.0.1:5432/mf"
        );
        assert_eq!(
            super::redact_url("sqlite://data/mf.db"),
            "sqlite://data/mf.db"
        );
    }
}
