use jiff::Timestamp;

use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

fn schedule(expr: &str, tz: &str) -> CronSchedule {
    CronSchedule::parse(expr, tz).expect("test expression")
}

/// Runs after `after`, written as "UTC instant/local wall clock with offset".
fn runs(expr: &str, tz: &str, after: &str, count: usize) -> Vec<String> {
    schedule(expr, tz)
        .next_runs(ts(after), count)
        .iter()
        .map(|z| {
            format!(
                "{}/{}",
                z.timestamp().strftime("%m-%d %H:%M:%SZ"),
                z.strftime("%H:%M:%S%:z")
            )
        })
        .collect()
}

fn error(expr: &str) -> String {
    CronSchedule::parse(expr, "UTC")
        .expect_err("expression must be rejected")
        .message()
}

// ---- parsing errors: position and reason ----

#[test]
fn errors_name_the_field_and_the_reason() {
    let cases = [
        (
            "0 24 * * *",
            "field 2 (hour): value 24 is out of range 0–23",
        ),
        (
            "60 * * * *",
            "field 1 (minute): value 60 is out of range 0–59",
        ),
        (
            "0 0 0 * *",
            "field 3 (day-of-month): value 0 is out of range 1–31",
        ),
        (
            "0 0 * 13 *",
            "field 4 (month): value 13 is out of range 1–12",
        ),
        (
            "0 0 * * 8",
            "field 5 (day-of-week): value 8 is out of range 0–7",
        ),
        (
            "61 0 0 * * *",
            "field 1 (second): value 61 is out of range 0–59",
        ),
        (
            "0 0 24 * * *",
            "field 3 (hour): value 24 is out of range 0–23",
        ),
        (
            "*/0 * * * *",
            "field 1 (minute): step 0 in \"*/0\" must be at least 1",
        ),
        (
            "*/x * * * *",
            "field 1 (minute): step \"x\" in \"*/x\" is not a number",
        ),
        (
            "*/90 * * * *",
            "field 1 (minute): step 90 in \"*/90\" is too large",
        ),
        ("5/15 * * * *", "field 1 (minute): \"5/15\" is ambiguous"),
        (
            "30-10 * * * *",
            "field 1 (minute): range \"30-10\" goes backwards",
        ),
        (
            "1,,2 * * * *",
            "field 1 (minute): empty item in the list \"1,,2\"",
        ),
        ("0 MON * * *", "field 2 (hour): \"MON\" is not a number"),
        (
            "0 0 * FOO *",
            "field 4 (month): \"FOO\" is neither a number nor one of the names",
        ),
        (
            "0 0 L * *",
            "field 3 (day-of-month): 'L' in \"L\" is not supported",
        ),
        (
            "0 0 15W * *",
            "field 3 (day-of-month): 'W' in \"15W\" is not supported",
        ),
        (
            "0 0 * * 5#2",
            "field 5 (day-of-week): '#' in \"5#2\" is not supported",
        ),
        (
            "0 0 ? * 1",
            "field 3 (day-of-month): '?' in \"?\" is not supported",
        ),
        (
            "0 0 1 * +1",
            "field 5 (day-of-week): '+' in \"+1\" is not supported",
        ),
        (
            "0 0 1- * *",
            "field 3 (day-of-month): a range is missing a value",
        ),
        (
            "0 0 30 2 *",
            "field 3 (day-of-month): the schedule never runs: February has no day 30",
        ),
        ("0 0 31 4,6 *", "April or June have no day 31"),
        ("", "the expression is empty"),
        ("* * * *", "expected 5 fields"),
        (
            "* * * * * * 2025",
            "got 7 fields (a year field is not supported)",
        ),
        ("@often", "unknown nickname \"@often\""),
        ("@reboot", "@reboot is not supported"),
    ];
    for (expr, expected) in cases {
        let message = error(expr);
        assert!(
            message.contains(expected),
            "{expr:?}: {message:?} should contain {expected:?}"
        );
        assert!(
            message.starts_with("invalid cron expression: "),
            "{message}"
        );
    }
}

#[test]
fn error_serializes_for_the_rest_api() {
    let err = CronSchedule::parse("0 24 * * *", "UTC").expect_err("invalid");
    assert_eq!(err.field(), "cron");
    let json = serde_json::to_value(&err).expect("serializes");
    assert_eq!(json["field"], "cron");
    assert_eq!(
        json["message"],
        "invalid cron expression: field 2 (hour): value 24 is out of range 0–23"
    );
    assert!(matches!(
        err,
        ScheduleError::Field {
            position: 2,
            name: "hour",
            ..
        }
    ));
}

#[test]
fn unknown_time_zone_is_named() {
    let err = CronSchedule::parse("* * * * *", "Europe/Berln").expect_err("invalid zone");
    assert_eq!(err.field(), "timezone");
    assert!(
        err.message().contains("\"Europe/Berln\""),
        "{}",
        err.message()
    );
    assert_eq!(err.to_body().field, "timezone");
}

#[test]
fn accepts_standard_syntax() {
    for expr in [
        "* * * * *",
        "0 0 * * MON-FRI",
        "0 0 * jan,Jul *",
        "0 0 * * 7",
        "0 0 * * 5-7",
        "0 0 * * mon-sun",
        "0 0 1-31/2 * *",
        "0 0 29 2 *",
        "*/10 * * * * *",
        "  0 0 * * *  ",
        "0 0 31 * *",
        "0 0 30 2 1",
    ] {
        assert!(CronSchedule::parse(expr, "UTC").is_ok(), "{expr}");
    }
}

// ---- nicknames and seconds ----

#[test]
fn nicknames_equal_their_expansions() {
    let after = ts("2025-01-15T10:17:00Z");
    for (nick, expr) in [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@HOURLY", "0 * * * *"),
    ] {
        assert_eq!(
            schedule(nick, "Europe/Berlin").next_runs(after, 3),
            schedule(expr, "Europe/Berlin").next_runs(after, 3),
            "{nick}"
        );
    }
    assert_eq!(
        runs("@weekly", "UTC", "2025-01-15T10:17:00Z", 2),
        [
            "01-19 00:00:00Z/00:00:00+00:00",
            "01-26 00:00:00Z/00:00:00+00:00"
        ]
    );
}

#[test]
fn seconds_field_is_optional() {
    assert_eq!(
        runs("*/20 * * * * *", "UTC", "2025-01-01T00:00:00Z", 4),
        [
            "01-01 00:00:20Z/00:00:20+00:00",
            "01-01 00:00:40Z/00:00:40+00:00",
            "01-01 00:01:00Z/00:01:00+00:00",
            "01-01 00:01:20Z/00:01:20+00:00",
        ]
    );
    assert!(schedule("5 0 * * * *", "UTC").has_seconds());
    assert!(!schedule("0 * * * *", "UTC").has_seconds());
    // Five fields run at second 0.
    assert_eq!(
        runs("* * * * *", "UTC", "2025-01-01T00:00:30.5Z", 1),
        ["01-01 00:01:00Z/00:01:00+00:00"]
    );
}

#[test]
fn runs_are_strictly_after_the_start() {
    assert_eq!(
        runs("0 * * * *", "UTC", "2025-01-01T10:00:00Z", 1),
        ["01-01 11:00:00Z/11:00:00+00:00"]
    );
    assert_eq!(
        runs("0 * * * *", "UTC", "2025-01-01T09:59:59.999Z", 1),
        ["01-01 10:00:00Z/10:00:00+00:00"]
    );
    assert!(
        schedule("* * * * *", "UTC")
            .next_runs(ts("2025-01-01T00:00:00Z"), 0)
            .is_empty()
    );
}

// ---- day-of-month / day-of-week ----

fn days(expr: &str, count: usize) -> Vec<String> {
    schedule(expr, "UTC")
        .next_runs(ts("2025-01-01T00:00:00Z"), count)
        .iter()
        .map(|z| z.strftime("%m-%d %a").to_string())
        .collect()
}

#[test]
fn both_day_fields_restricted_means_either() {
    assert_eq!(
        days("0 0 13 * 5", 4),
        ["01-03 Fri", "01-10 Fri", "01-13 Mon", "01-17 Fri"]
    );
    // `1-31` is restricted as written, even though it covers every day.
    assert_eq!(
        days("0 0 1-31 * 1", 3),
        ["01-02 Thu", "01-03 Fri", "01-04 Sat"]
    );
}

#[test]
fn a_day_field_starting_with_star_means_both() {
    assert_eq!(
        days("0 0 */2 * 1", 3),
        ["01-13 Mon", "01-27 Mon", "02-03 Mon"]
    );
    assert_eq!(days("0 0 13 * */2", 2), ["02-13 Thu", "03-13 Thu"]);
    assert_eq!(days("0 0 * * 1", 2), ["01-06 Mon", "01-13 Mon"]);
    assert_eq!(days("0 0 1 * *", 2), ["02-01 Sat", "03-01 Sat"]);
}

#[test]
fn sunday_is_0_and_7() {
    assert_eq!(days("0 0 * * 7", 1), days("0 0 * * 0", 1));
    assert_eq!(
        days("0 0 * * sat-sun", 3),
        ["01-04 Sat", "01-05 Sun", "01-11 Sat"]
    );
}

// ---- daylight-saving time ----

#[test]
fn berlin_skipped_hour_runs_once_after_the_gap() {
    // 2025-03-30: 02:00 CET becomes 03:00 CEST.
    assert_eq!(
        runs("30 2 * * *", "Europe/Berlin", "2025-03-28T12:00:00Z", 3),
        [
            "03-29 01:30:00Z/02:30:00+01:00",
            "03-30 01:00:00Z/03:00:00+02:00",
            "03-31 00:30:00Z/02:30:00+02:00",
        ]
    );
    // Several skipped times collapse into one run.
    assert_eq!(
        runs(
            "0,15,30,45 2 * * *",
            "Europe/Berlin",
            "2025-03-30T00:00:00Z",
            2
        ),
        [
            "03-30 01:00:00Z/03:00:00+02:00",
            "03-31 00:00:00Z/02:00:00+02:00"
        ]
    );
    // The seconds are kept, as croniter keeps them.
    assert_eq!(
        runs("15 30 2 * * *", "Europe/Berlin", "2025-03-30T00:00:00Z", 1),
        ["03-30 01:00:15Z/03:00:15+02:00"]
    );
    // Starting just after the gap still sees it.
    assert_eq!(
        runs("15 30 2 * * *", "Europe/Berlin", "2025-03-30T01:00:05Z", 1),
        ["03-30 01:00:15Z/03:00:15+02:00"]
    );
    // A 03:00 job and a moved 02:30 run are one run.
    assert_eq!(
        runs("30 2,3 * * *", "Europe/Berlin", "2025-03-30T00:00:00Z", 3),
        [
            "03-30 01:00:00Z/03:00:00+02:00",
            "03-30 01:30:00Z/03:30:00+02:00",
            "03-31 00:30:00Z/02:30:00+02:00",
        ]
    );
}

#[test]
fn berlin_repeated_hour_runs_once() {
    // 2025-10-26: 03:00 CEST becomes 02:00 CET, so 02:00–02:59 happens twice.
    assert_eq!(
        runs("30 2 * * *", "Europe/Berlin", "2025-10-24T12:00:00Z", 3),
        [
            "10-25 00:30:00Z/02:30:00+02:00",
            "10-26 00:30:00Z/02:30:00+02:00",
            "10-27 01:30:00Z/02:30:00+01:00",
        ]
    );
    // Also when asked from inside the repeated hour, after the first run.
    assert_eq!(
        runs("30 2 * * *", "Europe/Berlin", "2025-10-26T00:45:00Z", 1),
        ["10-27 01:30:00Z/02:30:00+01:00"]
    );
    assert_eq!(
        runs("30 1,2 * * *", "Europe/Berlin", "2025-10-25T12:00:00Z", 4),
        [
            "10-25 23:30:00Z/01:30:00+02:00",
            "10-26 00:30:00Z/02:30:00+02:00",
            "10-27 00:30:00Z/01:30:00+01:00",
            "10-27 01:30:00Z/02:30:00+01:00",
        ]
    );
}

/// Every gap between consecutive runs, in minutes of real time.
fn real_gaps(expr: &str, tz: &str, after: &str, count: usize) -> Vec<i64> {
    let runs = schedule(expr, tz).next_runs(ts(after), count);
    runs.windows(2)
        .map(|w| w[0].timestamp().duration_until(w[1].timestamp()).as_mins())
        .collect()
}

#[test]
fn stepped_minutes_run_every_real_interval_across_transitions() {
    for (tz, spring, fall) in [
        (
            "Europe/Berlin",
            "2025-03-29T22:00:00Z",
            "2025-10-25T22:00:00Z",
        ),
        (
            "America/New_York",
            "2025-03-09T04:00:00Z",
            "2025-11-02T03:00:00Z",
        ),
        ("UTC", "2025-03-30T00:00:00Z", "2025-10-26T00:00:00Z"),
    ] {
        for start in [spring, fall] {
            // Six hours of runs.
            assert_eq!(
                real_gaps("*/15 * * * *", tz, start, 25),
                vec![15; 24],
                "{tz} from {start}"
            );
            assert_eq!(
                real_gaps("0 * * * *", tz, start, 7),
                vec![60; 6],
                "{tz} from {start}"
            );
        }
    }
}

#[test]
fn new_york_transitions() {
    // 2025-03-09: 02:00 EST becomes 03:00 EDT.
    assert_eq!(
        runs("30 2 * * *", "America/New_York", "2025-03-08T12:00:00Z", 3),
        [
            "03-09 07:00:00Z/03:00:00-04:00",
            "03-10 06:30:00Z/02:30:00-04:00",
            "03-11 06:30:00Z/02:30:00-04:00",
        ]
    );
    // 2025-11-02: 02:00 EDT becomes 01:00 EST.
    assert_eq!(
        runs("30 1 * * *", "America/New_York", "2025-11-01T12:00:00Z", 3),
        [
            "11-02 05:30:00Z/01:30:00-04:00",
            "11-03 06:30:00Z/01:30:00-05:00",
            "11-04 06:30:00Z/01:30:00-05:00",
        ]
    );
    assert_eq!(
        runs(
            "*/30 * * * *",
            "America/New_York",
            "2025-11-02T05:00:00Z",
            4
        ),
        [
            "11-02 05:30:00Z/01:30:00-04:00",
            "11-02 06:00:00Z/01:00:00-05:00",
            "11-02 06:30:00Z/01:30:00-05:00",
            "11-02 07:00:00Z/02:00:00-05:00",
        ]
    );
}

#[test]
fn lord_howe_half_hour_transitions() {
    // 2025-04-06: 02:00 +11 becomes 01:30 +10:30, so 01:30–01:59 repeats.
    assert_eq!(
        runs(
            "45 1 * * *",
            "Australia/Lord_Howe",
            "2025-04-04T12:00:00Z",
            3
        ),
        [
            "04-04 14:45:00Z/01:45:00+11:00",
            "04-05 14:45:00Z/01:45:00+11:00",
            "04-06 15:15:00Z/01:45:00+10:30",
        ]
    );
    assert_eq!(
        runs(
            "*/20 * * * *",
            "Australia/Lord_Howe",
            "2025-04-05T14:30:00Z",
            4
        ),
        [
            "04-05 14:40:00Z/01:40:00+11:00",
            "04-05 15:10:00Z/01:40:00+10:30",
            "04-05 15:30:00Z/02:00:00+10:30",
            "04-05 15:50:00Z/02:20:00+10:30",
        ]
    );
    // 2025-10-05: 02:00 +10:30 becomes 02:30 +11.
    assert_eq!(
        runs(
            "15 2 * * *",
            "Australia/Lord_Howe",
            "2025-10-03T12:00:00Z",
            3
        ),
        [
            "10-03 15:45:00Z/02:15:00+10:30",
            "10-04 15:30:00Z/02:30:00+11:00",
            "10-05 15:15:00Z/02:15:00+11:00",
        ]
    );
    assert_eq!(
        real_gaps(
            "*/10 * * * *",
            "Australia/Lord_Howe",
            "2025-10-04T14:00:00Z",
            19
        ),
        vec![10; 18]
    );
    assert_eq!(
        real_gaps(
            "*/10 * * * *",
            "Australia/Lord_Howe",
            "2025-04-05T14:00:00Z",
            19
        ),
        vec![10; 18]
    );
}

#[test]
fn utc_has_no_surprises() {
    assert_eq!(
        runs("30 2 * * *", "UTC", "2025-03-30T00:00:00Z", 2),
        [
            "03-30 02:30:00Z/02:30:00+00:00",
            "03-31 02:30:00Z/02:30:00+00:00"
        ]
    );
}

#[test]
fn every_day_at_a_fixed_time_runs_once_per_day_all_year() {
    for tz in [
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "UTC",
    ] {
        for expr in ["30 2 * * *", "45 1 * * *", "0 2 * * *", "15 3 * * *"] {
            let runs = schedule(expr, tz).next_runs(ts("2025-01-01T00:00:00Z"), 730);
            let mut dates: Vec<_> = runs.iter().map(|z| z.date()).collect();
            dates.dedup();
            assert_eq!(dates.len(), 730, "{expr} in {tz}: one run per local day");
            let first = runs.first().map(|z| z.date());
            let last = runs.last().map(|z| z.date());
            assert_eq!(
                first
                    .zip(last)
                    .map(|(a, b)| a.until(b).map(|s| s.get_days()).ok()),
                Some(Some(729)),
                "{expr} in {tz}: no day skipped"
            );
        }
    }
}

// ---- describe ----

#[test]
fn describe_table() {
    let cases = [
        ("*/50 * * * *", "at minutes 0 and 50 of every hour"),
        ("*/5 * * * *", "every 5 minutes"),
        ("* * * * *", "every minute"),
        ("0 2 * * *", "at 02:00 every day"),
        ("0 9 * * 1-5", "at 09:00 on Monday through Friday"),
        ("@hourly", "at minute 0 of every hour"),
        ("@daily", "at 00:00 every day"),
        ("@weekly", "at 00:00 on Sunday"),
        ("@monthly", "at 00:00 on day 1 of the month"),
        ("@yearly", "at 00:00 on day 1 of the month in January"),
        (
            "*/7 * * * *",
            "at minutes 0, 7, 14, 21, 28, 35, 42, 49 and 56 of every hour",
        ),
        ("30 1,2 * * *", "at 01:30 and 02:30 every day"),
        (
            "*/15 9-17 * * 1-5",
            "every 15 minutes of hours 9 through 17 on Monday through Friday",
        ),
        (
            "0 */2 * * *",
            "at minute 0 of hours 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20 and 22",
        ),
        (
            "0 0 13 * 5",
            "at 00:00 on day 13 of the month and on Friday",
        ),
        (
            "0 0 */2 * 1",
            "at 00:00 on days 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29 and 31 of the month, but only on Monday",
        ),
        (
            "0 0 1 1,7 *",
            "at 00:00 on day 1 of the month in January and July",
        ),
        ("0 12 * 6-8 *", "at 12:00 every day in June through August"),
        ("*/10 * * * * *", "every 10 seconds"),
        ("30 * * * * *", "at second 30 of every minute"),
        ("0 30 9 * * *", "at 09:30 every day"),
        ("15 30 9 * * *", "at 09:30:15 every day"),
        ("0 0 * * 0,6", "at 00:00 on Sunday and Saturday"),
        ("5,10 * * * *", "at minutes 5 and 10 of every hour"),
    ];
    for (expr, expected) in cases {
        assert_eq!(
            schedule(expr, "UTC").describe(),
            format!("{expected} (UTC)"),
            "{expr}"
        );
    }
    assert_eq!(
        schedule("*/50 * * * *", "Europe/Berlin").describe(),
        "at minutes 0 and 50 of every hour (Europe/Berlin)"
    );
}

// ---- missed runs ----

#[test]
fn missed_runs_collapse_into_the_latest() {
    let s = schedule("*/50 * * * *", "UTC");
    // Down from 10:05 to 14:20: 10:50, 11:00, ..., 14:00 were missed.
    assert_eq!(
        s.due_after_downtime(Some(ts("2025-01-01T10:05:00Z")), ts("2025-01-01T14:20:00Z")),
        Some(ts("2025-01-01T14:00:00Z"))
    );
    // Nothing due yet.
    assert_eq!(
        s.due_after_downtime(Some(ts("2025-01-01T10:05:00Z")), ts("2025-01-01T10:49:59Z")),
        None
    );
    // A run due exactly now counts.
    assert_eq!(
        s.due_after_downtime(Some(ts("2025-01-01T10:05:00Z")), ts("2025-01-01T10:50:00Z")),
        Some(ts("2025-01-01T10:50:00Z"))
    );
    // The last run itself is not missed.
    assert_eq!(
        s.due_after_downtime(Some(ts("2025-01-01T10:50:00Z")), ts("2025-01-01T10:55:00Z")),
        None
    );
    // Never ran: nothing missed.
    assert_eq!(s.due_after_downtime(None, ts("2025-01-01T10:55:00Z")), None);
}

#[test]
fn missed_runs_over_long_downtimes_and_rare_schedules() {
    let every_second = schedule("* * * * * *", "UTC");
    assert_eq!(
        every_second.due_after_downtime(
            Some(ts("2025-01-01T00:00:00Z")),
            ts("2025-03-01T12:34:56.7Z")
        ),
        Some(ts("2025-03-01T12:34:56Z"))
    );
    let yearly = schedule("@yearly", "Europe/Berlin");
    assert_eq!(
        yearly.due_after_downtime(Some(ts("2020-06-01T00:00:00Z")), ts("2025-06-01T00:00:00Z")),
        Some(ts("2024-12-31T23:00:00Z"))
    );
    // Missed across a skipped hour: the moved run counts.
    let daily = schedule("30 2 * * *", "Europe/Berlin");
    assert_eq!(
        daily.due_after_downtime(Some(ts("2025-03-29T12:00:00Z")), ts("2025-03-30T05:00:00Z")),
        Some(ts("2025-03-30T01:00:00Z"))
    );
}

#[test]
fn time_zone_names_are_kept() {
    let s = schedule("0 0 * * *", "America/Los_Angeles");
    assert_eq!(s.timezone_name(), "America/Los_Angeles");
    assert_eq!(s.expression(), "0 0 * * *");
    assert!(!s.follows_real_clock());
    assert!(schedule("*/5 * * * *", "UTC").follows_real_clock());
}
