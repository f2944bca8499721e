//! The error a job's `cron`/`timezone` pair is rejected with.

use serde::{Serialize, Serializer};
use utoipa::ToSchema;

/// Why a cron expression or time zone was rejected.
///
/// Each message names the offending part and the reason in plain words, since
/// it is shown to the person who typed the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The expression as a whole is malformed: empty, the wrong number of
    /// fields, or an unknown `@nickname`.
    #[error("invalid cron expression: {reason}")]
    Expression { reason: String },

    /// One field of the expression is invalid.
    #[error("invalid cron expression: field {position} ({name}): {reason}")]
    Field {
        /// 1-based position among the fields as written (a leading seconds
        /// field is field 1).
        position: usize,
        /// "second", "minute", "hour", "day-of-month", "month" or "day-of-week".
        name: &'static str,
        reason: String,
    },

    /// The time zone is not an IANA time zone name.
    #[error("unknown time zone {name:?}: {reason}")]
    TimeZone { name: String, reason: String },
}

impl ScheduleError {
    /// The job field the error belongs to: `"cron"` or `"timezone"`.
    pub fn field(&self) -> &'static str {
        match self {
            ScheduleError::Expression { .. } | ScheduleError::Field { .. } => "cron",
            ScheduleError::TimeZone { .. } => "timezone",
        }
    }

    /// The whole message, position and reason included.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The body the REST API returns.
    pub fn to_body(&self) -> ScheduleErrorBody {
        ScheduleErrorBody {
            field: self.field().to_owned(),
            message: self.message(),
        }
    }
}

/// `{field, message}`, as the REST API reports a rejected job field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct ScheduleErrorBody {
    /// `cron` or `timezone`.
    #[schema(example = "cron")]
    pub field: String,
    #[schema(example = "invalid cron expression: field 2 (hour): value 24 is out of range 0–23")]
    pub message: String,
}

impl Serialize for ScheduleError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_body().serialize(serializer)
    }
}
