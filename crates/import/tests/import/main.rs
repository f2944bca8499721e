//! The import crate's integration tests: one binary (linking is slow on two
//! cores), a module per area.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed expectation is the test failing"
)]

mod content;
mod corpus;
mod pipeline;
