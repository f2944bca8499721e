//! Fresh databases: a SQLite file in a temporary directory, or a new
//! database on the test PostgreSQL.

use std::path::{Path, PathBuf};

use store::{Keyring, Store};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// The SQLite file of a mailferry data directory.
pub fn sqlite_file(dir: &Path) -> PathBuf {
    dir.join("mailferry.db")
}

/// The master key file of a mailferry data directory.
pub fn key_file(dir: &Path) -> PathBuf {
    dir.join("master.key")
}

/// A fresh database URL: a SQLite file in `dir` ([`sqlite_file`]), or a new
/// database on the PostgreSQL of `MAILFERRY_TEST_POSTGRES_URL` (fails,
/// never skips, when that is not set).
pub async fn fresh_database(db: Db, dir: &Path) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}", sqlite_file(dir).display()),
        Db::Postgres => {
            let admin_url = std::env::var("MAILFERRY_TEST_POSTGRES_URL").expect(
                "MAILFERRY_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, which starts a PostgreSQL for them",
            );
            sqlx::any::install_default_drivers();
            let name = format!("mf_test_{}", uuid::Uuid::new_v4().simple());
            let admin = sqlx::AnyPool::connect(&admin_url)
                .await
                .expect("connect to the test PostgreSQL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .expect("create database");
            admin.close().await;
            let Some((base, _)) = admin_url.rsplit_once('/') else {
                panic!("MAILFERRY_TEST_POSTGRES_URL must end in /DATABASE: {admin_url}")
            };
            format!("{base}/{name}")
        }
    }
}

/// The store at `url`, sealed with `dir`'s master key ([`key_file`],
/// created on first use).
pub async fn open_store(url: &str, dir: &Path) -> Store {
    let keyring = Keyring::load_or_create(&key_file(dir)).expect("master key");
    Store::connect(url, keyring).await.expect("store")
}

/// The SQLite store of the mailferry data directory `dir`, opened as the
/// binary opens it (`mailferry.db` and `master.key` in `dir`).
pub async fn data_dir_store(dir: &Path) -> Store {
    open_store(&fresh_database(Db::Sqlite, dir).await, dir).await
}

/// A store on a fresh database, migrated, with its master key in the
/// returned directory (which must live as long as the store).
pub async fn fresh_store(db: Db) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = fresh_database(db, dir.path()).await;
    (open_store(&url, dir.path()).await, dir)
}
