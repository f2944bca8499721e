//! Cron expressions and time zones as an admin may type them: parsing
//! never panics, and a schedule that parses yields run times that only
//! move forward.
#![no_main]

use domain::schedule::CronSchedule;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (expression, timezone) = input;
    if let Ok(schedule) = CronSchedule::parse(expression, timezone) {
        let start = jiff::Timestamp::from_second(1_780_000_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let runs = schedule.next_runs(start, 5);
        for pair in runs.windows(2) {
            assert!(pair[0].timestamp() < pair[1].timestamp(), "{expression} in {timezone}");
        }
        if let Some(first) = runs.first() {
            assert!(first.timestamp() > start);
        }
    }
});
