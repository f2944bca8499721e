//! mailferry's scripts (`refresh-tokens`, `import-emails`, `purge-documents`),
//! the cron jobs that run them, their recorded executions, and the scheduler
//! loop that runs each due job exactly once across instances.

pub mod params;
pub mod runner;
pub mod schedule_loop;
pub mod script;

#[cfg(test)]
mod tests;

pub use runner::{Runner, RunnerConfig, ShutdownReport, StartError, Started};
pub use schedule_loop::{Scheduler, SchedulerConfig};
pub use script::{
    ExecutionLog, ParamKind, ParamSpec, Script, ScriptContext, ScriptError, ScriptFuture,
    ScriptRegistry,
};
