//! The sinks against the real file system, a real HTTP receiver and a
//! real S3 server: one
//! test binary (each binary costs a link step).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed expectation is the test failing"
)]

mod common;
mod s3;
mod spool;
mod webhook;
