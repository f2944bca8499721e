//! The runtime's scripts on a real SQLite store and a real spool: one test
//! binary, a module per script.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed expectation is the test failing"
)]

mod purge_documents;
