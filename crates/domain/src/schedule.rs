//! Cron schedules (filled in by the scheduler work).
