//! Fail points: a test hook that kills the process at a chosen step, to
//! prove that a crash anywhere loses and duplicates nothing.
//!
//! `MAILFERRY_FAILPOINT=STEP:N` aborts (`std::process::abort`, no cleanup,
//! like a power cut) the N-th time the pipeline reaches `STEP` in this
//! process. Steps, in the order a mail passes them:
//! `after_fetch`, `after_store` (document in the sink), `after_document_row`,
//! `after_ledger` (recorded as stored), `after_move` (in Exported, ledger not
//! yet `moved`), `after_error_ledger`, `after_error_move`.
//! Unset (always, outside tests) it costs one atomic load per step.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

pub const ENV: &str = "MAILFERRY_FAILPOINT";

pub const STEPS: [&str; 7] = [
    "after_fetch",
    "after_store",
    "after_document_row",
    "after_ledger",
    "after_move",
    "after_error_ledger",
    "after_error_move",
];

struct Armed {
    step: String,
    at: u64,
    seen: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let raw = std::env::var(ENV).ok()?;
            let (step, at) = raw.split_once(':').unwrap_or((raw.as_str(), "1"));
            Some(Armed {
                step: step.to_owned(),
                at: at.parse().ok().filter(|n| *n > 0)?,
                seen: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Aborts the process when the armed fail point is reached for the N-th time.
pub fn hit(step: &str) {
    if let Some(a) = armed()
        && a.step == step
        && a.seen.fetch_add(1, Ordering::SeqCst) + 1 == a.at
    {
        eprintln!("{ENV}: aborting at {step} #{}", a.at);
        std::process::abort();
    }
}
