//! The per-mailbox gate: Outlook allows an app 4 concurrent requests per
//! mailbox and throttles the whole mailbox after a 429. Every
//! [`super::GraphMailbox`] of the same (Graph host, app, mailbox) in this
//! process shares one gate, whoever created it (import runs, connection
//! tests, the folder picker).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

#[derive(Debug)]
pub struct Gate {
    slots: Semaphore,
    /// After a 429, nobody sends to this mailbox before this instant.
    paused_until: Mutex<Option<Instant>>,
    /// A 429 asked to wait longer than anyone here would: nothing waits
    /// for it (the request failed, to be tried next run), but it says how
    /// long Microsoft throttles the mailbox.
    asked_until: Mutex<Option<Instant>>,
}

fn registry() -> &'static Mutex<HashMap<String, Arc<Gate>>> {
    static GATES: OnceLock<Mutex<HashMap<String, Arc<Gate>>>> = OnceLock::new();
    GATES.get_or_init(Default::default)
}

impl Gate {
    /// The gate for `key`, created with `permits` slots on first use.
    pub fn shared(key: &str, permits: usize) -> Arc<Gate> {
        let mut gates = registry().lock().unwrap_or_else(|p| p.into_inner());
        gates
            .entry(key.to_owned())
            .or_insert_with(|| {
                Arc::new(Gate {
                    slots: Semaphore::new(permits.max(1)),
                    paused_until: Mutex::new(None),
                    asked_until: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Waits out any pause, then for a free slot.
    #[expect(
        clippy::expect_used,
        reason = "`slots` is private and nothing calls `close` on it, so `acquire` cannot fail"
    )]
    /// `None` when `stop` is cancelled first.
    pub async fn enter(
        &self,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Option<SemaphorePermit<'_>> {
        loop {
            let until = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
            match until {
                Some(t) if t > Instant::now() => tokio::select! {
                    () = tokio::time::sleep_until(t) => {}
                    () = stop.cancelled() => return None,
                },
                _ => break,
            }
        }
        tokio::select! {
            permit = self.slots.acquire() => Some(permit.expect("the gate's semaphore is never closed")),
            () = stop.cancelled() => None,
        }
    }

    /// How much longer requests to the mailbox are held back by a 429's
    /// `Retry-After`; `None` when they are not.
    pub fn paused_for(&self) -> Option<Duration> {
        let paused = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        let asked = *self.asked_until.lock().unwrap_or_else(|p| p.into_inner());
        let until = paused.max(asked)?;
        let now = Instant::now();
        (until > now).then(|| until - now)
    }

    /// Notes a `Retry-After` too long to wait out: [`Gate::paused_for`]
    /// reports it, but no request is held back by it.
    pub fn note_retry_after(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut asked = self.asked_until.lock().unwrap_or_else(|p| p.into_inner());
        if asked.is_none_or(|a| a < until) {
            *asked = Some(until);
        }
    }

    /// Holds back every request to the mailbox for `wait` (a 429 is about
    /// the mailbox, not just the request that got it).
    pub fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }
}
