//! The emulator's notion of "now": real time plus an offset that tests move forward,
//! so token and code expiry can be exercised without waiting.

use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// A clock that runs with real time but can be advanced (never rewound below real time
/// is not enforced: tests may also move it backwards to simulate skew).
#[derive(Debug, Default)]
pub struct Clock {
    offset: Mutex<SignedDuration>,
}

impl Clock {
    /// The current emulator time, truncated to whole seconds like the timestamps Microsoft issues.
    pub fn now(&self) -> Timestamp {
        let offset = *self.offset.lock().unwrap_or_else(|e| e.into_inner());
        let now = Timestamp::now()
            .checked_add(offset)
            .unwrap_or_else(|_| Timestamp::now());
        Timestamp::from_second(now.as_second()).unwrap_or(now)
    }

    /// Moves the clock by `by` (may be negative) and returns the new time.
    pub fn advance(&self, by: SignedDuration) -> Timestamp {
        {
            let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
            *offset = offset.saturating_add(by);
        }
        self.now()
    }

    /// How far the clock has been moved from real time.
    pub fn offset(&self) -> SignedDuration {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }
}
