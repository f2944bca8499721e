//! Request accounting: counts per endpoint and per mailbox, and the in-flight requests per
//! (app, mailbox) that Outlook limits to 4 at a time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Counters for one mailbox, keyed by its UPN in [`Snapshot`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct MailboxCounters {
    /// Graph requests addressed to the mailbox.
    pub requests: u64,
    /// Requests in flight right now.
    pub in_flight: u64,
    /// The most requests ever in flight at once, counting ones refused for the limit,
    /// so a client that exceeds the limit shows a mark above it.
    pub max_in_flight: u64,
    /// Requests refused with `ApplicationThrottled`.
    pub concurrency_throttled: u64,
    /// Seconds the mailbox's requests were in flight, summed over requests:
    /// divided by the limit and a run's time, how busy the client kept it.
    pub busy_seconds: f64,
    /// Seconds spent with 0, 1, 2, … requests in flight, from the
    /// mailbox's first request to its last answer.
    pub seconds_at_in_flight: Vec<f64>,
    #[serde(skip)]
    in_flight_since: Option<std::time::Instant>,
}

impl MailboxCounters {
    /// Books the time since the last change to the current in-flight count.
    fn book_in_flight_time(&mut self) {
        let now = std::time::Instant::now();
        if let Some(since) = self.in_flight_since {
            let n = usize::try_from(self.in_flight).unwrap_or(usize::MAX);
            if self.seconds_at_in_flight.len() <= n {
                self.seconds_at_in_flight.resize(n + 1, 0.0);
            }
            if let Some(seconds) = self.seconds_at_in_flight.get_mut(n) {
                *seconds += (now - since).as_secs_f64();
            }
        }
        self.in_flight_since = Some(now);
    }
}

/// A copy of all counters, as served by `GET /_emulator/counters`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    pub requests_total: u64,
    /// Requests per endpoint: `authorize`, `token`, `graph`, `discovery`, `admin`.
    pub endpoints: BTreeMap<String, u64>,
    pub mailboxes: BTreeMap<String, MailboxCounters>,
    /// Faults that fired (throttles, error statuses, drops).
    pub faults_fired: u64,
}

#[derive(Debug, Default)]
struct Inner {
    snapshot: Snapshot,
    per_app: HashMap<(String, String), u64>,
}

/// Shared counters.
#[derive(Debug, Default)]
pub struct Counters {
    inner: Mutex<Inner>,
}

/// Holds one in-flight slot of an (app, mailbox) pair until dropped.
#[derive(Debug)]
pub struct Slot {
    counters: Arc<Counters>,
    app: String,
    mailbox: String,
    since: std::time::Instant,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.counters
            .release(&self.app, &self.mailbox, self.since.elapsed());
    }
}

impl Counters {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn hit(&self, endpoint: &str) {
        let mut g = self.lock();
        g.snapshot.requests_total += 1;
        *g.snapshot
            .endpoints
            .entry(endpoint.to_string())
            .or_default() += 1;
    }

    pub fn fault_fired(&self) {
        self.lock().snapshot.faults_fired += 1;
    }

    pub fn snapshot(&self) -> Snapshot {
        self.lock().snapshot.clone()
    }

    pub fn reset(&self) {
        let mut g = self.lock();
        let in_flight: Vec<(String, u64)> = g
            .snapshot
            .mailboxes
            .iter()
            .map(|(k, v)| (k.clone(), v.in_flight))
            .collect();
        g.snapshot = Snapshot::default();
        for (k, n) in in_flight {
            let m = g.snapshot.mailboxes.entry(k).or_default();
            m.in_flight = n;
            m.max_in_flight = n;
        }
    }

    /// Counts a request to `mailbox` (its UPN) by `app` and takes an in-flight slot, or
    /// returns `None` if the app already has `limit` requests in flight on that mailbox.
    pub fn acquire(self: &Arc<Self>, app: &str, mailbox: &str, limit: u64) -> Option<Slot> {
        let mut g = self.lock();
        let key = (app.to_string(), mailbox.to_string());
        let current = g.per_app.get(&key).copied().unwrap_or(0);
        let m = g.snapshot.mailboxes.entry(mailbox.to_string()).or_default();
        m.requests += 1;
        m.max_in_flight = m.max_in_flight.max(m.in_flight + 1);
        if current >= limit {
            m.concurrency_throttled += 1;
            return None;
        }
        m.book_in_flight_time();
        m.in_flight += 1;
        *g.per_app.entry(key).or_default() += 1;
        Some(Slot {
            counters: Arc::clone(self),
            app: app.to_string(),
            mailbox: mailbox.to_string(),
            since: std::time::Instant::now(),
        })
    }

    fn release(&self, app: &str, mailbox: &str, held: std::time::Duration) {
        let mut g = self.lock();
        if let Some(n) = g.per_app.get_mut(&(app.to_string(), mailbox.to_string())) {
            *n = n.saturating_sub(1);
        }
        if let Some(m) = g.snapshot.mailboxes.get_mut(mailbox) {
            m.book_in_flight_time();
            m.in_flight = m.in_flight.saturating_sub(1);
            m.busy_seconds += held.as_secs_f64();
        }
    }
}
