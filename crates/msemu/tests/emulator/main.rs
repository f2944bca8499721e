//! Integration tests: one binary (linking is slow on small machines), one module per area.
//! Every test starts its own emulator on 127.0.0.1:0 and shuts it down.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed expectation is the test failing"
)]

mod admin;
mod common;
mod entra;
mod faults;
mod graph;
mod python_clients;
