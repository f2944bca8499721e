//! Faults injected on demand through the admin API: throttling, server errors, latency and
//! dropped connections, for the next N matching requests or at a rate.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a fault does to a matching request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// 429 `TooManyRequests` with `Retry-After` in (possibly fractional) seconds.
    Throttle {
        #[serde(default = "one_second")]
        retry_after: f64,
    },
    /// An error status such as 500, 502, 503 or 504, optionally with `Retry-After`.
    Status {
        status: u16,
        #[serde(default)]
        retry_after: Option<f64>,
    },
    /// Delay the answer by `ms` milliseconds (the request is then served normally).
    Latency { ms: u64 },
    /// Close the connection without answering.
    Drop,
}

fn one_second() -> f64 {
    1.0
}

fn graph_prefix() -> String {
    "/v1.0/".into()
}

/// A fault rule as posted to `POST /_emulator/faults`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FaultRule {
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Fire for this many matching requests, then disappear. Unlimited when absent.
    #[serde(default)]
    pub count: Option<u32>,
    /// Fire with this probability (0..=1) per matching request. Always when absent.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Only requests whose path starts with this prefix match (default `/v1.0/`, i.e. Graph).
    #[serde(default = "graph_prefix")]
    pub path_prefix: String,
    /// Only requests with this HTTP method match (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Assigned by the emulator.
    #[serde(default)]
    pub id: u64,
}

impl FaultRule {
    /// `kind` on every Graph request, for ever; narrow it with struct update
    /// (`FaultRule { count: Some(2), ..FaultRule::graph(kind) }`).
    pub fn graph(kind: FaultKind) -> Self {
        Self {
            kind,
            count: None,
            rate: None,
            path_prefix: graph_prefix(),
            method: None,
            id: 0,
        }
    }

    /// `kind` on every Graph request to one mailbox (by its UPN).
    pub fn mailbox(kind: FaultKind, upn: &str) -> Self {
        Self {
            path_prefix: format!("/v1.0/users/{}/", upn.replace('@', "%40")),
            ..Self::graph(kind)
        }
    }
}

/// The terminal outcome a fault imposes on a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultAction {
    Throttle {
        retry_after: f64,
    },
    Status {
        status: u16,
        retry_after: Option<f64>,
    },
    Drop,
}

/// The decision for one request: how long to wait, then whether to fail.
#[derive(Debug, Default)]
pub struct FaultDecision {
    pub latency: Duration,
    pub action: Option<FaultAction>,
}

/// The active fault rules.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<(u64, Vec<FaultRule>)>,
}

impl Faults {
    pub fn add(&self, mut rule: FaultRule) -> u64 {
        let mut g = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        g.0 += 1;
        rule.id = g.0;
        g.1.push(rule);
        g.0
    }

    pub fn list(&self) -> Vec<FaultRule> {
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    pub fn clear(&self) {
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clear();
    }

    pub fn remove(&self, id: u64) -> bool {
        let mut g = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let before = g.1.len();
        g.1.retain(|r| r.id != id);
        before != g.1.len()
    }

    /// Decides the faults for one request. Latencies add up; the first terminal fault wins.
    pub fn decide(&self, method: &str, path: &str) -> FaultDecision {
        let mut g = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let mut d = FaultDecision::default();
        for rule in g.1.iter_mut() {
            if !path.starts_with(&rule.path_prefix)
                || rule
                    .method
                    .as_deref()
                    .is_some_and(|m| !m.eq_ignore_ascii_case(method))
                || rule.count == Some(0)
            {
                continue;
            }
            if matches!(rule.kind, FaultKind::Latency { .. }) || d.action.is_none() {
                if let Some(rate) = rule.rate {
                    let roll = f64::from(u32::from_le_bytes(crate::ids::random_bytes::<4>()))
                        / f64::from(u32::MAX);
                    if roll >= rate {
                        continue;
                    }
                }
                match rule.kind {
                    FaultKind::Latency { ms } => d.latency += Duration::from_millis(ms),
                    FaultKind::Throttle { retry_after } => {
                        d.action = Some(FaultAction::Throttle { retry_after })
                    }
                    FaultKind::Status {
                        status,
                        retry_after,
                    } => {
                        d.action = Some(FaultAction::Status {
                            status,
                            retry_after,
                        })
                    }
                    FaultKind::Drop => d.action = Some(FaultAction::Drop),
                }
                if let Some(c) = rule.count.as_mut() {
                    *c -= 1;
                }
            }
        }
        g.1.retain(|r| r.count != Some(0));
        d
    }
}

/// Formats a `Retry-After` value the way Graph does: whole seconds as integers, else decimals.
pub fn retry_after_value(secs: f64) -> String {
    if secs.fract() == 0.0 {
        format!("{}", secs as u64)
    } else {
        format!("{secs}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_limited_rule_expires() {
        let f = Faults::default();
        f.add(FaultRule {
            count: Some(2),
            ..FaultRule::graph(FaultKind::Throttle { retry_after: 0.2 })
        });
        assert!(f.decide("GET", "/v1.0/me").action.is_some());
        assert!(f.decide("GET", "/v1.0/me").action.is_some());
        assert!(f.decide("GET", "/v1.0/me").action.is_none());
        assert!(f.list().is_empty());
        assert_eq!(retry_after_value(0.2), "0.2");
        assert_eq!(retry_after_value(2.0), "2");
    }
}
