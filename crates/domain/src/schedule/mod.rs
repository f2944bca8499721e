//! Cron schedules of jobs: parsing, next run times across daylight-saving
//! changes, plain-words descriptions and the missed-run policy. No I/O.
//!
//! # Syntax
//!
//! Standard cron: five fields (minute, hour, day-of-month, month,
//! day-of-week), optionally preceded by a seconds field, or one of the
//! nicknames `@yearly @annually @monthly @weekly @daily @midnight @hourly`.
//! Fields take numbers, `*`, ranges `a-b`, steps `*/n` and `a-b/n`, and
//! comma-separated lists; months and weekdays also take the names `JAN`–`DEC`
//! and `SUN`–`SAT`; weekday 7 is Sunday. Quartz/croner extensions (`L`, `W`,
//! `#`, `?`, `+`, a year field) and `5/15` (which Vixie cron and croniter read
//! differently) are rejected.
//!
//! # Day of month and day of week
//!
//! As in Vixie cron (and so in cronie and most Linux crontabs): when both day
//! fields are restricted, a day matches if **either** matches (`0 0 13 * 5`:
//! every 13th and every Friday). A field that starts with `*` (`*`, `*/2`)
//! counts as unrestricted, and then a day must match **both**
//! (`0 0 */2 * 1`: odd-numbered days that are Mondays).
//!
//! # Daylight-saving time
//!
//! Times are wall-clock times in the job's IANA time zone. Two kinds of jobs
//! behave differently when the clock jumps:
//!
//! - A job that runs **every hour** (hour field `*` or equivalent, e.g.
//!   `*/15 * * * *`, `0 * * * *`) follows the real clock: it runs at each
//!   instant whose wall-clock time matches. Times in a skipped hour do not
//!   exist and are not run; times in a repeated hour are run in both
//!   occurrences. So `*/15 * * * *` runs every real 15 minutes across both
//!   transitions, with nothing lost and nothing doubled.
//! - Any other job names times of day (`30 2 * * *`, `0 9-17 * * 1-5`,
//!   `0 */6 * * *`). A time in a **skipped** hour runs once, moved forward by
//!   whole minutes to the first wall-clock time that exists (02:30 → 03:00 on
//!   the day Europe/Berlin springs forward; several skipped times collapse
//!   into one run). A time in a **repeated** hour runs once, at its first
//!   occurrence. The forward move is what Vixie cron and croniter do; running
//!   a repeated time once is what Vixie cron does for fixed-time jobs, while
//!   croniter runs it twice.

mod describe;
mod error;
mod parse;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp, Zoned};

pub use error::{ScheduleError, ScheduleErrorBody};
use parse::Parsed;

/// A validated cron expression with its time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    timezone_name: String,
    timezone: TimeZone,
    parsed: Parsed,
    cron: Cron,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.timezone_name == other.timezone_name
    }
}

impl Eq for CronSchedule {}

impl CronSchedule {
    /// Parses `expression` for the IANA time zone `timezone` (e.g. `UTC`,
    /// `Europe/Berlin`).
    pub fn parse(expression: &str, timezone: &str) -> Result<CronSchedule, ScheduleError> {
        let parsed = parse::parse(expression)?;
        let tz = TimeZone::get(timezone.trim()).map_err(|_| ScheduleError::TimeZone {
            name: timezone.to_owned(),
            reason: "not an IANA time zone name (e.g. UTC, Europe/Berlin, America/New_York)"
                .to_owned(),
        })?;
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Disallowed)
            .dom_and_dow(parsed.days_and())
            .build()
            .parse(&parsed.to_croner())
            // Our parser accepts a subset of croner's syntax, so this only
            // fires on a bug in `to_croner`; say so rather than panic.
            .map_err(|e| ScheduleError::Expression {
                reason: format!("internal error, please report: {e}"),
            })?;
        let timezone_name = tz.iana_name().unwrap_or(timezone.trim()).to_owned();
        Ok(CronSchedule {
            expression: expression.trim().to_owned(),
            timezone_name,
            timezone: tz,
            parsed,
            cron,
        })
    }

    /// The expression as given (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The IANA name of the job's time zone.
    pub fn timezone_name(&self) -> &str {
        &self.timezone_name
    }

    pub fn timezone(&self) -> &TimeZone {
        &self.timezone
    }

    /// Whether the expression has a seconds field.
    pub fn has_seconds(&self) -> bool {
        self.parsed.has_seconds
    }

    /// Whether the job runs every hour and so follows the real clock across
    /// daylight-saving changes (see the module documentation).
    pub fn follows_real_clock(&self) -> bool {
        self.parsed.hour.is_full()
    }

    /// A plain-words description, e.g. "at minutes 0 and 50 of every hour
    /// (Europe/Berlin)".
    pub fn describe(&self) -> String {
        format!(
            "{} ({})",
            describe::describe(&self.parsed),
            self.timezone_name
        )
    }

    /// The first run strictly after `after`.
    pub fn next_run(&self, after: Timestamp) -> Option<Zoned> {
        self.next_runs(after, 1).into_iter().next()
    }

    /// The next `count` runs strictly after `after`, in the job's time zone
    /// (`Zoned::timestamp()` is the UTC instant). Shorter than `count` only if
    /// the schedule has no more runs before the year 5000.
    pub fn next_runs(&self, after: Timestamp, count: usize) -> Vec<Zoned> {
        if count == 0 {
            return Vec::new();
        }
        if self.follows_real_clock() {
            self.next_runs_real_clock(after, count)
        } else {
            self.next_runs_wall_clock(after, count)
        }
    }

    /// The scheduler's missed-run policy: if one or more runs were due in
    /// `(last_run, now]`, returns the latest of them, so that the scheduler
    /// runs the job once at start-up however long it was down, rather than
    /// once per missed run. `None` if nothing was missed, or if the job has
    /// never run (the scheduler should record a job's creation time as its
    /// `last_run`, so that a new job does not run immediately).
    pub fn due_after_downtime(
        &self,
        last_run: Option<Timestamp>,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let last_run = last_run?;
        let first = self.next_run(last_run)?.timestamp();
        if first > now {
            return None;
        }
        // Search backwards from `now` in growing windows, so a long downtime
        // of a frequent job costs about as much as a short one.
        let mut window = SignedDuration::from_mins(1);
        loop {
            let from = now
                .checked_sub(window)
                .ok()
                .filter(|from| *from > first)
                .unwrap_or(first);
            let mut latest = None;
            let mut cursor = from;
            // `from` itself may be a run (it is when `from == first`).
            if from == first {
                latest = Some(first);
            }
            loop {
                let batch = self.next_runs(cursor, 64);
                let mut done = batch.len() < 64;
                for run in &batch {
                    let t = run.timestamp();
                    if t > now {
                        done = true;
                        break;
                    }
                    latest = Some(t);
                    cursor = t;
                }
                if done {
                    break;
                }
            }
            if latest.is_some() || from == first {
                return latest;
            }
            window = window.checked_mul(4).unwrap_or(SignedDuration::MAX);
        }
    }

    /// Every-hour jobs: each instant whose wall-clock time matches. croner
    /// searches exactly that way for a pattern whose hour field has more than
    /// one value: it skips wall-clock times in a gap and visits both
    /// occurrences of a repeated time.
    fn next_runs_real_clock(&self, after: Timestamp, count: usize) -> Vec<Zoned> {
        let mut runs = Vec::with_capacity(count);
        let mut cursor = after.to_zoned(self.timezone.clone());
        while runs.len() < count {
            match self.cron.find_next_occurrence(&cursor, false) {
                Ok(run) if run.timestamp() > after => {
                    cursor = run.clone();
                    runs.push(run);
                }
                // Cannot happen for a forward search; stop rather than loop.
                Ok(_) => break,
                Err(_) => break,
            }
        }
        runs
    }

    /// Jobs with specific hours: walk the matching wall-clock times and map
    /// each to one instant (see [`Self::wall_clock_instant`]).
    fn next_runs_wall_clock(&self, after: Timestamp, count: usize) -> Vec<Zoned> {
        // A time in a gap runs up to 59 seconds after the gap's end (it keeps
        // its seconds), so when `after` is that close past a transition, the
        // walk starts before the transition to see the skipped times.
        let mut start = after;
        if let Some(transition) = after
            .checked_add(SignedDuration::from_nanos(1))
            .ok()
            .and_then(|t| self.timezone.preceding(t).next())
        {
            let at = transition.timestamp();
            if after.duration_since(at) < SignedDuration::from_secs(61) {
                start = at.checked_sub(SignedDuration::from_secs(1)).unwrap_or(at);
            }
        }
        let mut cursor: DateTime = start.to_zoned(self.timezone.clone()).datetime();
        let mut found = BTreeSet::new();
        while let Ok(slot) = self.cron.find_next_occurrence(&cursor, false) {
            cursor = slot;
            let Some((run, lower_bound)) = self.wall_clock_instant(slot) else {
                break;
            };
            if run > after {
                found.insert(run);
            }
            // Later slots never run before this slot's lower bound, so once
            // it passes the count-th run, the runs found are final.
            if found.len() >= count
                && found
                    .iter()
                    .nth(count - 1)
                    .is_some_and(|k| lower_bound >= *k)
            {
                break;
            }
        }
        found
            .into_iter()
            .take(count)
            .map(|t| t.to_zoned(self.timezone.clone()))
            .collect()
    }

    /// The instant a wall-clock time runs at, for a job with specific hours,
    /// and a lower bound for the runs of all later wall-clock times.
    ///
    /// A repeated time runs at its first occurrence. A skipped time moves
    /// forward by whole minutes to the first time that exists, as croniter
    /// does: `30 2 * * *` runs at 03:00 and `15 30 2 * * *` at 03:00:15.
    fn wall_clock_instant(&self, slot: DateTime) -> Option<(Timestamp, Timestamp)> {
        let ambiguous = self.timezone.to_ambiguous_timestamp(slot);
        match ambiguous.offset() {
            AmbiguousOffset::Unambiguous { offset } => {
                let t = offset.to_timestamp(slot).ok()?;
                Some((t, t))
            }
            AmbiguousOffset::Fold { .. } => {
                let t = ambiguous.earlier().ok()?;
                Some((t, t))
            }
            AmbiguousOffset::Gap { after, .. } => {
                // Read with the later offset, the slot is an instant before
                // the transition, so the next transition is the gap's end.
                let before_gap = after.to_timestamp(slot).ok()?;
                let gap_end = self.timezone.following(before_gap).next()?.timestamp();
                let gap_end_civil = gap_end.to_zoned(self.timezone.clone()).datetime();
                let missing = slot.duration_until(gap_end_civil).as_secs();
                let minutes = (missing + 59).div_euclid(60);
                let moved = slot.checked_add(SignedDuration::from_mins(minutes)).ok()?;
                let run = self.timezone.to_ambiguous_timestamp(moved).earlier().ok()?;
                Some((run, gap_end))
            }
        }
    }
}
