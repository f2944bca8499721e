//! mailferry's scripts (`refresh-tokens`, `import-emails`, `purge-documents`),
//! the cron jobs that run them, their recorded executions, and the scheduler
//! loop that runs each due job exactly once across instances.

pub mod script;
