//! What mailferry's tests share, so a new test is a few lines: a fresh
//! SQLite or PostgreSQL database ([`fresh_database`], [`fresh_store`]), the
//! whole service in process on a pre-bound loopback port ([`TestApp`],
//! feature `app`), the Microsoft emulator on loopback ([`start_emulator`],
//! feature `emulator`), and mails built from a few facts ([`TestMail`]).
//!
//! A dev-dependency only. PostgreSQL comes from `MAILFERRY_TEST_POSTGRES_URL`
//! and the S3 server from `MAILFERRY_TEST_S3_URL` (exported by
//! `scripts/test.sh`); a test that asks for one fails without it, it never
//! skips.

// Test code: a failed expectation is the test failing (as clippy.toml allows
// in `#[cfg(test)]` code, which this crate is in spirit).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test support: a failed expectation is the test failing"
)]

mod db;
pub mod dovecot;
mod mail;
pub mod postgres;
pub mod s3;
pub mod smtp;

#[cfg(feature = "app")]
mod app;
#[cfg(feature = "emulator")]
mod emulator;

pub use db::{Db, data_dir_store, fresh_database, fresh_store, key_file, open_store, sqlite_file};
pub use mail::{TestMail, invoice_mail};

#[cfg(feature = "app")]
pub use app::{TestApp, connector, graph_importer_body, json, scripts};
#[cfg(feature = "emulator")]
pub use emulator::{empty_demo_emulator, empty_demo_seed, start_emulator};

/// Installs rustls' ring provider for reqwest (built with
/// `rustls-no-provider`); later calls are no-ops.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
