//! Test harness: the shared one (`test-support`: an app on a pre-bound port
//! with a fresh database and a pinned clock, helpers that read like user
//! actions, the emulator, mails), plus what only this binary has.

pub use test_support::*;

/// The `mailferry` binary built for these tests.
pub fn mailferry_bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_mailferry"))
}
