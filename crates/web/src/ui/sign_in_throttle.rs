//! Slows password guessing at the sign-in form: after a few failures for
//! one account, further attempts are refused for a while without checking
//! the password at all. Kept in memory: a restart forgets it, which costs an
//! attacker a restart of the service per burst, not a bypass.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use jiff::{SignedDuration, Timestamp};

/// Failures allowed within [`WINDOW`] before sign-in is refused.
pub const MAX_FAILURES: usize = 5;
pub const WINDOW: SignedDuration = SignedDuration::from_mins(15);

type Key = (String, String);

fn failures() -> &'static Mutex<HashMap<Key, Vec<Timestamp>>> {
    static FAILURES: OnceLock<Mutex<HashMap<Key, Vec<Timestamp>>>> = OnceLock::new();
    FAILURES.get_or_init(Default::default)
}

fn key(client_id: &str, email: &str) -> Key {
    (client_id.to_owned(), email.trim().to_ascii_lowercase())
}

/// `Some(wait)` while the account is locked out at `now`.
pub fn locked_for(client_id: &str, email: &str, now: Timestamp) -> Option<SignedDuration> {
    let mut map = failures().lock().unwrap_or_else(|p| p.into_inner());
    let recent = map.get_mut(&key(client_id, email))?;
    recent.retain(|t| now.duration_since(*t) < WINDOW);
    if recent.len() < MAX_FAILURES {
        return None;
    }
    let oldest = recent.iter().min().copied()?;
    Some(WINDOW - now.duration_since(oldest))
}

pub fn record_failure(client_id: &str, email: &str, now: Timestamp) {
    let mut map = failures().lock().unwrap_or_else(|p| p.into_inner());
    map.entry(key(client_id, email)).or_default().push(now);
}

pub fn clear(client_id: &str, email: &str) {
    let mut map = failures().lock().unwrap_or_else(|p| p.into_inner());
    map.remove(&key(client_id, email));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_the_account_for_the_rest_of_the_window() {
        let t0: Timestamp = "2026-03-29T00:00:00Z".parse().expect("ts");
        let client = "client-under-test-throttle";
        for i in 0..MAX_FAILURES {
            assert_eq!(locked_for(client, "A@example.com", t0), None, "attempt {i}");
            record_failure(
                client,
                "a@example.com",
                t0 + SignedDuration::from_secs(i as i64),
            );
        }
        let wait =
            locked_for(client, "a@example.com", t0 + SignedDuration::from_mins(1)).expect("locked");
        assert_eq!(wait, SignedDuration::from_mins(14));
        assert_eq!(
            locked_for(client, "other@example.com", t0),
            None,
            "other accounts unaffected"
        );
        assert_eq!(
            locked_for(client, "a@example.com", t0 + SignedDuration::from_mins(16)),
            None
        );
        record_failure(client, "a@example.com", t0);
        clear(client, "a@example.com");
        assert_eq!(locked_for(client, "a@example.com", t0), None);
    }
}
