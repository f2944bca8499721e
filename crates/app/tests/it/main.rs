//! mailferry's end-to-end tests: ONE test binary (linking is slow on two
//! cores), a module per feature. Peers are real: SQLite and PostgreSQL
//! (`MAILFERRY_TEST_POSTGRES_URL`, started by scripts/test.sh), the Microsoft
//! emulator, the `mailferry` binary itself.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed expectation is the test failing"
)]

mod support;

mod api_fuzz;
mod api_importers;
mod audit;
mod cli;
mod concurrency;
mod delegated_import;
mod faults;
mod graph_mailbox;
mod imap_import;
mod imap_xoauth2;
mod import;
mod isolation;
mod jobs;
mod mail_fate;
mod metrics;
mod oauth;
mod overview;
mod parity;
mod push;
mod s3_sink;
mod scheduler_instances;
mod ui;
