//! How long to wait before trying a Graph request again: `Retry-After` when
//! Graph sends one (decimal seconds such as `2.128`, or an HTTP-date), else
//! exponential backoff with jitter, for a bounded number of attempts.

use std::time::Duration;

use jiff::Timestamp;

/// Bounds on retrying one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included.
    pub max_attempts: u32,
    /// Backoff before the first retry; doubles each time.
    pub base_delay: Duration,
    /// Backoff never exceeds this.
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited out inside one run:
    /// the request fails as transient and the next run tries again.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// Backoff before retry number `retry` (1 = first retry): exponential,
    /// capped, with "equal jitter" (half fixed, half random) so clients that
    /// failed together do not retry together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max_delay);
        let half = exp / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(if jitter_ms == 0 {
            0
        } else {
            rand::random_range(0..=jitter_ms)
        })
    }
}

/// Parses `Retry-After`: a non-negative decimal number of seconds (Graph
/// sends fractions like `0.2`), or an HTTP-date relative to `now`.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = now.duration_until(at);
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_fractions_integers_and_http_dates() {
        let now: Timestamp = "2026-03-01T12:00:00Z".parse().expect("ts");
        assert_eq!(
            parse_retry_after("0.2", now),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            parse_retry_after("2.128", now),
            Some(Duration::from_millis(2128))
        );
        assert_eq!(
            parse_retry_after(" 10 ", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 01 Mar 2026 12:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("NaN", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered_within_bounds() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(1),
        };
        for _ in 0..200 {
            let first = p.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = p.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let late = p.backoff(30);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_millis(1000));
        }
    }
}
