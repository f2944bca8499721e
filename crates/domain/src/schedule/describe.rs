//! Plain-words descriptions of a parsed expression.
//!
//! croner has `describe()`, but its text ("At on minute 0, at hour 12, on
//! Monday,Tuesday,...") is hard to read and does not point out the `*/50`
//! trap, which is the reason we show a description at all: `*/50` runs at
//! minutes 0 and 50, not every 50 minutes.

use super::parse::{Field, Item, Parsed};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

pub(crate) fn month_name(month: u8) -> String {
    MONTHS
        .get(usize::from(month).wrapping_sub(1))
        .map_or_else(|| month.to_string(), |m| (*m).to_owned())
}

fn weekday_name(day: u8) -> String {
    WEEKDAYS
        .get(usize::from(day % 7))
        .map_or_else(|| day.to_string(), |d| (*d).to_owned())
}

/// "a", "a and b", "a, b and c".
pub(crate) fn join_words(words: &[String], conjunction: &str) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {conjunction} {last}", init.join(", ")),
    }
}

/// Values as a list, with runs of three or more written "a through b".
fn value_list(values: &[u8], name: impl Fn(u8) -> String) -> String {
    let mut groups: Vec<String> = Vec::new();
    for run in values.chunk_by(|a, b| a.checked_add(1) == Some(*b)) {
        match run {
            [first, _, .., last] => {
                groups.push(format!("{} through {}", name(*first), name(*last)));
            }
            _ => groups.extend(run.iter().map(|v| name(*v))),
        }
    }
    join_words(&groups, "and")
}

fn plural(count: usize, word: &str) -> String {
    if count == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}

/// `*/n` where `n` divides the field's cycle, the only case in which "every
/// n units" is true across the wrap-around.
fn even_step(field: &Field, cycle: u8) -> Option<u8> {
    match field.items.as_slice() {
        [Item::All { step }] if *step > 1 && cycle.is_multiple_of(*step) => Some(*step),
        _ => None,
    }
}

/// "every minute", "every 5 minutes", "at minute 7", "at minutes 0 and 50".
fn unit_phrase(field: &Field, unit: &str, cycle: u8) -> String {
    if field.is_full() {
        return format!("every {unit}");
    }
    if let Some(step) = even_step(field, cycle) {
        return format!("every {step} {unit}s");
    }
    let values = field.values();
    format!(
        "at {} {}",
        plural(values.len(), unit),
        value_list(&values, |v| v.to_string())
    )
}

fn time_of_day(hour: u8, minute: u8, second: Option<u8>) -> String {
    match second {
        Some(s) => format!("{hour:02}:{minute:02}:{s:02}"),
        None => format!("{hour:02}:{minute:02}"),
    }
}

/// The time-of-day part, and whether it names specific clock times (which
/// then read better followed by "every day").
fn time_phrase(p: &Parsed) -> (String, bool) {
    let seconds = p.second.values();
    let minutes = p.minute.values();
    let hours = p.hour.values();
    let zero_seconds = seconds == [0];

    // A handful of clock times: "at 09:00", "at 01:30 and 02:30".
    if let [second] = seconds.as_slice()
        && minutes.len() == 1
        && !p.hour.is_full()
        && hours.len() <= 6
    {
        let second = (!zero_seconds).then_some(*second);
        let times: Vec<String> = hours
            .iter()
            .flat_map(|h| minutes.iter().map(move |m| time_of_day(*h, *m, second)))
            .collect();
        return (format!("at {}", join_words(&times, "and")), true);
    }

    let hour_context = if p.hour.is_full() {
        String::new()
    } else {
        format!(
            " of {} {}",
            plural(hours.len(), "hour"),
            value_list(&hours, |v| v.to_string())
        )
    };
    let minute_phrase = unit_phrase(&p.minute, "minute", 60);
    let phrase = if zero_seconds {
        let every_hour = if p.hour.is_full() && minute_phrase.starts_with("at ") {
            " of every hour"
        } else {
            ""
        };
        format!("{minute_phrase}{every_hour}{hour_context}")
    } else {
        let second_phrase = unit_phrase(&p.second, "second", 60);
        let minute_context = if p.minute.is_full() {
            if second_phrase.starts_with("at ") && p.hour.is_full() {
                " of every minute".to_owned()
            } else {
                String::new()
            }
        } else {
            format!(
                " of {} {}",
                plural(minutes.len(), "minute"),
                value_list(&minutes, |v| v.to_string())
            )
        };
        let every_hour = if p.hour.is_full() && !p.minute.is_full() {
            " of every hour"
        } else {
            ""
        };
        format!("{second_phrase}{minute_context}{every_hour}{hour_context}")
    };
    (phrase, false)
}

/// The day part: "" (every day), "on Monday through Friday", "on day 1 of
/// the month", and the month restriction.
fn day_phrase(p: &Parsed) -> String {
    let dom = (!p.day_of_month.is_full()).then(|| {
        let days = p.day_of_month.values();
        format!(
            "on {} {} of the month",
            plural(days.len(), "day"),
            value_list(&days, |v| v.to_string())
        )
    });
    let dow = (!p.day_of_week.is_full())
        .then(|| format!("on {}", value_list(&p.day_of_week.values(), weekday_name)));
    let days = match (dom, dow) {
        (None, None) => None,
        (Some(d), None) | (None, Some(d)) => Some(d),
        (Some(dom), Some(dow)) if p.days_and() => Some(format!("{dom}, but only {dow}")),
        (Some(dom), Some(dow)) => Some(format!("{dom} and {dow}")),
    };
    let months =
        (!p.month.is_full()).then(|| format!("in {}", value_list(&p.month.values(), month_name)));
    [days, months]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn describe(p: &Parsed) -> String {
    let (time, clock_times) = time_phrase(p);
    let days = day_phrase(p);
    let every_day = p.day_of_month.is_full() && p.day_of_week.is_full();
    match (days.is_empty(), clock_times && every_day) {
        (true, true) => format!("{time} every day"),
        (true, false) => time,
        (false, true) => format!("{time} every day {days}"),
        (false, false) => format!("{time} {days}"),
    }
}
