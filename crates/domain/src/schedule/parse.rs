//! Our own reading of a cron expression.
//!
//! croner does the matching, but its errors ("Number out of bounds.") say
//! neither which field nor which value is wrong, and it accepts extensions
//! (`L`, `W`, `#`, `?`, `+`, a year field) that other cron implementations
//! read differently. So we parse strictly here, report precise errors, and
//! hand croner a normalized, numeric expression.

use super::error::ScheduleError;

/// The six fields, in the order croner expects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl FieldKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            FieldKind::Second => "second",
            FieldKind::Minute => "minute",
            FieldKind::Hour => "hour",
            FieldKind::DayOfMonth => "day-of-month",
            FieldKind::Month => "month",
            FieldKind::DayOfWeek => "day-of-week",
        }
    }

    pub(crate) fn min(self) -> u8 {
        match self {
            FieldKind::Second | FieldKind::Minute | FieldKind::Hour | FieldKind::DayOfWeek => 0,
            FieldKind::DayOfMonth | FieldKind::Month => 1,
        }
    }

    pub(crate) fn max(self) -> u8 {
        match self {
            FieldKind::Second | FieldKind::Minute => 59,
            FieldKind::Hour => 23,
            FieldKind::DayOfMonth => 31,
            FieldKind::Month => 12,
            // 7 is Sunday again, as in every cron since Vixie's.
            FieldKind::DayOfWeek => 7,
        }
    }

    /// Names allowed for values, and the value of the first name.
    fn names(self) -> Option<(&'static [&'static str], u8)> {
        match self {
            FieldKind::Month => Some((&MONTH_NAMES, 1)),
            FieldKind::DayOfWeek => Some((&WEEKDAY_NAMES, 0)),
            _ => None,
        }
    }
}

/// One comma-separated item of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Item {
    /// `*` or `*/step`.
    All { step: u8 },
    /// `start`, `start-end` or `start-end/step`; a single value has
    /// `start == end` and step 1.
    Range { start: u8, end: u8, step: u8 },
}

/// A parsed field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) kind: FieldKind,
    pub(crate) items: Vec<Item>,
    /// Bit `v` is set when value `v` matches. Day-of-week 7 is folded into 0.
    pub(crate) mask: u64,
}

impl Field {
    fn single(kind: FieldKind, value: u8) -> Field {
        Field {
            kind,
            items: vec![Item::Range {
                start: value,
                end: value,
                step: 1,
            }],
            mask: 1 << value,
        }
    }

    /// Whether the field is written with a leading `*` (`*`, `*/2`). Vixie
    /// cron uses exactly this test to decide how the two day fields combine.
    pub(crate) fn starts_with_star(&self) -> bool {
        matches!(self.items.first(), Some(Item::All { .. }))
    }

    pub(crate) fn values(&self) -> Vec<u8> {
        (0..64u8).filter(|v| self.mask & (1 << v) != 0).collect()
    }

    /// Whether every possible value matches, however it is written (`*`,
    /// `0-23`, `*/1`).
    pub(crate) fn is_full(&self) -> bool {
        let top = match self.kind {
            FieldKind::DayOfWeek => 6,
            kind => kind.max(),
        };
        (self.kind.min()..=top).all(|v| self.mask & (1 << v) != 0)
    }

    /// The field as croner reads it: numbers only, items as written.
    fn to_croner(&self) -> String {
        let items: Vec<String> = self
            .items
            .iter()
            .map(|item| match *item {
                Item::All { step: 1 } => "*".to_owned(),
                Item::All { step } => format!("*/{step}"),
                Item::Range { start, end, .. } if start == end => start.to_string(),
                Item::Range {
                    start,
                    end,
                    step: 1,
                } => format!("{start}-{end}"),
                Item::Range { start, end, step } => format!("{start}-{end}/{step}"),
            })
            .collect();
        items.join(",")
    }
}

/// A parsed expression: always six fields, seconds first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub(crate) has_seconds: bool,
    pub(crate) second: Field,
    pub(crate) minute: Field,
    pub(crate) hour: Field,
    pub(crate) day_of_month: Field,
    pub(crate) month: Field,
    pub(crate) day_of_week: Field,
}

impl Parsed {
    /// Vixie cron's rule: when both day fields are restricted, a day matches
    /// if *either* matches; a field that starts with `*` counts as
    /// unrestricted, and then a day must match *both*. So `0 0 13 * 5` runs on
    /// every 13th and every Friday, while `0 0 */2 * 1` runs on odd-numbered
    /// days that are Mondays.
    pub(crate) fn days_and(&self) -> bool {
        self.day_of_month.starts_with_star() || self.day_of_week.starts_with_star()
    }

    /// The six-field numeric expression croner parses.
    pub(crate) fn to_croner(&self) -> String {
        [
            &self.second,
            &self.minute,
            &self.hour,
            &self.day_of_month,
            &self.month,
            &self.day_of_week,
        ]
        .iter()
        .map(|f| f.to_croner())
        .collect::<Vec<_>>()
        .join(" ")
    }
}

const NICKNAMES: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

fn expression_error(reason: impl Into<String>) -> ScheduleError {
    ScheduleError::Expression {
        reason: reason.into(),
    }
}

pub(crate) fn parse(expression: &str) -> Result<Parsed, ScheduleError> {
    let trimmed = expression.trim();
    if trimmed.is_empty() {
        return Err(expression_error("the expression is empty"));
    }
    let expanded = if trimmed.starts_with('@') {
        let lower = trimmed.to_ascii_lowercase();
        match NICKNAMES.iter().find(|(nick, _)| *nick == lower) {
            Some((_, fields)) => *fields,
            None if lower == "@reboot" => {
                return Err(expression_error(
                    "@reboot is not supported: jobs run on a schedule, not at start-up",
                ));
            }
            None => {
                return Err(expression_error(format!(
                    "unknown nickname {trimmed:?}; use one of @yearly, @annually, @monthly, \
                     @weekly, @daily, @midnight or @hourly"
                )));
            }
        }
    } else {
        trimmed
    };

    let parts: Vec<&str> = expanded.split_whitespace().collect();
    let (has_seconds, kinds): (bool, &[FieldKind]) = match parts.len() {
        5 => (
            false,
            &[
                FieldKind::Minute,
                FieldKind::Hour,
                FieldKind::DayOfMonth,
                FieldKind::Month,
                FieldKind::DayOfWeek,
            ],
        ),
        6 => (
            true,
            &[
                FieldKind::Second,
                FieldKind::Minute,
                FieldKind::Hour,
                FieldKind::DayOfMonth,
                FieldKind::Month,
                FieldKind::DayOfWeek,
            ],
        ),
        n => {
            let extra = if n == 7 {
                " (a year field is not supported)"
            } else {
                ""
            };
            return Err(expression_error(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), optionally \
                 preceded by a seconds field, or a nickname such as @daily; got {n} \
                 field{}{extra}",
                if n == 1 { "" } else { "s" }
            )));
        }
    };

    let mut fields = Vec::with_capacity(6);
    if !has_seconds {
        fields.push(Field::single(FieldKind::Second, 0));
    }
    for (index, (text, kind)) in parts.iter().zip(kinds).enumerate() {
        let field = parse_field(text, *kind).map_err(|reason| ScheduleError::Field {
            position: index + 1,
            name: kind.name(),
            reason,
        })?;
        fields.push(field);
    }
    let mut fields = fields.into_iter();
    let mut next = || {
        fields
            .next()
            .ok_or_else(|| expression_error("internal: missing field"))
    };
    let parsed = Parsed {
        has_seconds,
        second: next()?,
        minute: next()?,
        hour: next()?,
        day_of_month: next()?,
        month: next()?,
        day_of_week: next()?,
    };
    check_days_exist(&parsed, if has_seconds { 4 } else { 3 })?;
    Ok(parsed)
}

/// Rejects day-of-month/month pairs that never happen (`0 0 30 2 *`), which
/// would otherwise make every search for the next run fail.
fn check_days_exist(parsed: &Parsed, dom_position: usize) -> Result<(), ScheduleError> {
    // With OR semantics the weekday can still select days.
    let weekdays_rescue = !parsed.days_and() && !parsed.day_of_week.is_full();
    if weekdays_rescue {
        return Ok(());
    }
    const LONGEST: [u8; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let days = parsed.day_of_month.values();
    let months = parsed.month.values();
    let Some(&first_day) = days.first() else {
        return Ok(());
    };
    let possible = months.iter().any(|&m| {
        LONGEST
            .get(usize::from(m) - 1)
            .is_some_and(|&l| first_day <= l)
    });
    if possible {
        return Ok(());
    }
    let month_list = months
        .iter()
        .map(|&m| super::describe::month_name(m))
        .collect::<Vec<_>>();
    Err(ScheduleError::Field {
        position: dom_position,
        name: FieldKind::DayOfMonth.name(),
        reason: format!(
            "the schedule never runs: {} {} no day {}",
            super::describe::join_words(&month_list, "or"),
            if month_list.len() == 1 { "has" } else { "have" },
            super::describe::join_words(&days.iter().map(u8::to_string).collect::<Vec<_>>(), "or")
        ),
    })
}

fn parse_field(text: &str, kind: FieldKind) -> Result<Field, String> {
    if let Some(bad) = text
        .chars()
        .find(|c| "LW#?+".contains(*c) && !is_name_char(text, *c, kind))
    {
        return Err(format!(
            "{bad:?} in {text:?} is not supported; use standard cron syntax: numbers{}, *, \
             ranges a-b, steps */n or a-b/n, and lists separated by commas",
            match kind {
                FieldKind::Month => " or names JAN–DEC",
                FieldKind::DayOfWeek => " or names SUN–SAT",
                _ => "",
            }
        ));
    }
    let mut items = Vec::new();
    let mut mask = 0u64;
    for raw in text.split(',') {
        if raw.is_empty() {
            return Err(format!("empty item in the list {text:?}"));
        }
        let item = parse_item(raw, kind)?;
        match item {
            Item::All { step } => {
                for v in (kind.min()..=kind.max()).step_by(usize::from(step)) {
                    mask |= 1 << v;
                }
            }
            Item::Range { start, end, step } => {
                for v in (start..=end).step_by(usize::from(step)) {
                    mask |= 1 << v;
                }
            }
        }
        items.push(item);
    }
    if kind == FieldKind::DayOfWeek && mask & (1 << 7) != 0 {
        mask = (mask & !(1 << 7)) | 1;
    }
    Ok(Field { kind, items, mask })
}

/// `L` and `W` may appear inside names (`JUL`, `WED`); only outside a name
/// are they the unsupported Quartz extensions.
fn is_name_char(text: &str, c: char, kind: FieldKind) -> bool {
    let Some((names, _)) = kind.names() else {
        return false;
    };
    text.split([',', '-', '/'])
        .any(|token| token.contains(c) && names.iter().any(|name| name.eq_ignore_ascii_case(token)))
}

fn parse_item(raw: &str, kind: FieldKind) -> Result<Item, String> {
    let (base, step) = match raw.split_once('/') {
        Some((base, step_text)) => {
            let step = step_text
                .parse::<u8>()
                .ok()
                .filter(|s| step_text.bytes().all(|b| b.is_ascii_digit()) && *s <= kind.max())
                .ok_or_else(|| {
                    if step_text.is_empty() || !step_text.bytes().all(|b| b.is_ascii_digit()) {
                        format!("step {step_text:?} in {raw:?} is not a number")
                    } else {
                        format!(
                            "step {step_text} in {raw:?} is too large; it can be at most {}",
                            kind.max()
                        )
                    }
                })?;
            if step == 0 {
                return Err(format!("step 0 in {raw:?} must be at least 1"));
            }
            (base, Some(step))
        }
        None => (raw, None),
    };

    if base == "*" {
        return Ok(Item::All {
            step: step.unwrap_or(1),
        });
    }
    if base.is_empty() {
        return Err(format!(
            "{raw:?} has a step without a range; write */n or a-b/n"
        ));
    }
    match base.split_once('-') {
        Some((start_text, end_text)) => {
            let start = parse_value(start_text, kind)?;
            let mut end = parse_value(end_text, kind)?;
            // Vixie cron reads SUN at the end of a range as 7, so MON-SUN
            // means Monday through Sunday.
            if kind == FieldKind::DayOfWeek && end == 0 && start > 0 {
                end = 7;
            }
            if start > end {
                return Err(format!(
                    "range {base:?} goes backwards; write the smaller value first (ranges do not \
                     wrap around)"
                ));
            }
            Ok(Item::Range {
                start,
                end,
                step: step.unwrap_or(1),
            })
        }
        None => {
            let value = parse_value(base, kind)?;
            if step.is_some() {
                // Vixie cron reads `5/15` as just 5, croniter as 5,20,35,50.
                return Err(format!(
                    "{raw:?} is ambiguous: a step needs a range or *, e.g. {value}-{}/{} or */{}",
                    kind.max(),
                    step.unwrap_or(1),
                    step.unwrap_or(1)
                ));
            }
            Ok(Item::Range {
                start: value,
                end: value,
                step: 1,
            })
        }
    }
}

fn parse_value(text: &str, kind: FieldKind) -> Result<u8, String> {
    if text.is_empty() {
        return Err("a range is missing a value".to_owned());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let value = text.parse::<u32>().unwrap_or(u32::MAX);
        return u8::try_from(value)
            .ok()
            .filter(|v| (kind.min()..=kind.max()).contains(v))
            .ok_or_else(|| format!("value {text} is out of range {}–{}", kind.min(), kind.max()));
    }
    match kind.names() {
        Some((names, first)) => names
            .iter()
            .position(|name| name.eq_ignore_ascii_case(text))
            .and_then(|i| u8::try_from(i).ok())
            .map(|i| i + first)
            .ok_or_else(|| {
                format!(
                    "{text:?} is neither a number nor one of the names {}",
                    names.join(" ")
                )
            }),
        None => Err(format!(
            "{text:?} is not a number (names are allowed only in the month and day-of-week \
             fields)"
        )),
    }
}
