//! A script is a named unit of work an admin can run by hand, from the CLI
//! or on a cron job. Other crates implement [`Script`]; the binary collects
//! them in a [`ScriptRegistry`].

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use domain::clock::Clock;
use serde::Serialize;
use store::Store;

/// One typed parameter a script accepts (shown in the API and the UI).
/// The runner checks names, kinds and presence before a script starts
/// (see [`crate::params`]); ranges and meaning are the script's to check.
#[derive(Debug, Clone, Serialize)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamKind,
    pub required: bool,
    pub description: &'static str,
    /// Bounds of an integer parameter, checked when a job is saved or a run
    /// starts, so a bad value is refused then rather than failing every run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<i64>,
}

/// The JSON type a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamKind {
    String,
    Integer,
    Boolean,
}

impl ParamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
        }
    }
}

/// Lines a running script reports; they become the execution's log.
#[derive(Debug, Clone, Default)]
pub struct ExecutionLog {
    lines: Arc<Mutex<Vec<String>>>,
}

impl ExecutionLog {
    pub fn line(&self, line: impl Into<String>) {
        let line = line.into();
        tracing::info!(target: "script", "{line}");
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What a script gets to work with.
#[derive(Clone)]
pub struct ScriptContext {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// The client the run belongs to (every execution belongs to one client;
    /// `mailferry run` without `--client` runs once per client).
    pub client_id: String,
    /// The execution this run is recorded as (what a script's own records
    /// link to, e.g. `import-emails`' import runs).
    pub execution_id: String,
    /// Checked against [`Script::params`] before the run starts.
    pub params: serde_json::Map<String, serde_json::Value>,
    pub log: ExecutionLog,
    /// Cancelled on shutdown: long scripts stop between units of work.
    pub cancel: tokio_util::sync::CancellationToken,
}

impl ScriptContext {
    /// A string parameter (already checked to be a string when present).
    pub fn param_str(&self, name: &str) -> Option<&str> {
        self.params.get(name).and_then(serde_json::Value::as_str)
    }

    pub fn param_i64(&self, name: &str) -> Option<i64> {
        self.params.get(name).and_then(serde_json::Value::as_i64)
    }

    pub fn param_bool(&self, name: &str) -> Option<bool> {
        self.params.get(name).and_then(serde_json::Value::as_bool)
    }
}

/// A script failed; the message is shown to the admin as the execution's outcome.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ScriptError(pub String);

impl ScriptError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

pub type ScriptFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ScriptError>> + Send + 'a>>;

pub trait Script: Send + Sync {
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn params(&self) -> Vec<ParamSpec> {
        Vec::new()
    }
    /// Runs once; progress and the summary go to `ctx.log`.
    fn run<'a>(&'a self, ctx: &'a ScriptContext) -> ScriptFuture<'a>;
}

#[derive(Clone, Default)]
pub struct ScriptRegistry {
    scripts: BTreeMap<&'static str, Arc<dyn Script>>,
}

impl ScriptRegistry {
    pub fn register(&mut self, script: Arc<dyn Script>) {
        self.scripts.insert(script.name(), script);
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Script>> {
        self.scripts.get(name).cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Script>> {
        self.scripts.values()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.scripts.keys().copied().collect()
    }
}
