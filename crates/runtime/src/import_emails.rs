//! `import-emails`: runs the import pipeline for every importer of the
//! client (or the one named by `importer_id`), writes a summary line per
//! importer, and fails when any importer could not be worked (folders
//! ambiguous or missing, not authorized, another run busy), with the fix in
//! the message. Mails left for retry are not a failure: the next run takes
//! them. Each importer's run, succeeded or failed, is recorded as an
//! import run (`store::import_runs`) linked to the execution: the importer
//! status reads it. With `dry_run` it lists what each Inbox mail would
//! become and why, touching and recording nothing.

use std::sync::Arc;

use import::pipeline::{DryRun, ImportRun, Prediction, Summary};
use jiff::Timestamp;
use scheduler::{ParamKind, ParamSpec, Script, ScriptContext, ScriptError, ScriptFuture};
use store::import_runs::{ImportRunRecord, RunOutcome};
use store::importers::ImporterRecord;

use crate::Connector;
use crate::mailbox::{ImporterMailbox, Patience};

pub const NAME: &str = "import-emails";

/// How many left-for-retry reasons a summary spells out.
const RETRY_REASONS_SHOWN: usize = 5;

/// What became of one importer in a run.
enum Worked {
    /// `worked`: its mailbox could be opened; `failures`: what went wrong.
    Done { worked: bool, failures: Vec<String> },
    /// Not started: mailferry is shutting down.
    Stopped,
}

pub struct ImportEmails {
    connector: Connector,
}

impl ImportEmails {
    pub fn new(connector: Connector) -> Self {
        Self { connector }
    }

    async fn import_all(&self, ctx: &ScriptContext) -> Result<(), ScriptError> {
        let dry_run = ctx.param_bool("dry_run").unwrap_or(false);
        let only = ctx.param_str("importer_id");
        let store_error = |e: store::StoreError| ScriptError::new(e.to_string());
        let client = ctx
            .store
            .client_by_id(&ctx.client_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ScriptError::new(format!("there is no client {}", ctx.client_id)))?;
        let importers = ctx
            .store
            .list_importers(&ctx.client_id)
            .await
            .map_err(store_error)?;
        if let Some(id) = only
            && !importers.iter().any(|r| r.id == id)
        {
            return Err(ScriptError::new(format!(
                "client {} has no importer {id}: GET /api/v2/importers/email lists them",
                client.name
            )));
        }
        // Importers of one mailbox one after another (side by side they
        // would only find the mailbox busy); mailboxes side by side, within
        // the instance's budget, so a throttled mailbox holds up no other.
        let mut groups: Vec<(String, Vec<&ImporterRecord>)> = Vec::new();
        for record in importers
            .iter()
            .filter(|r| only.is_none_or(|id| r.id == id))
        {
            // The same name the run's lease takes.
            let key = import::lease::lease_name(&ctx.store, record)
                .await
                .map_err(store_error)?;
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, group)) => group.push(record),
                None => groups.push((key, vec![record])),
            }
        }
        let mut runs = Vec::new();
        for (_, group) in groups {
            runs.push(self.work_group(ctx, &client.name, group, dry_run));
        }
        let results = futures_util::future::join_all(runs).await;
        let results: Vec<Worked> = results.into_iter().flatten().collect();
        if results.iter().any(|w| matches!(w, Worked::Stopped)) {
            ctx.log.line("stopped: mailferry is shutting down");
        }
        let worked = results
            .iter()
            .filter(|w| matches!(w, Worked::Done { worked: true, .. }))
            .count();
        let failed: Vec<String> = results
            .into_iter()
            .flat_map(|w| match w {
                Worked::Done { failures, .. } => failures,
                Worked::Stopped => Vec::new(),
            })
            .collect();
        ctx.log.line(format!(
            "{}: {worked} importer(s) {}, {} failed",
            if dry_run { "dry run" } else { "done" },
            if dry_run { "checked" } else { "run" },
            failed.len()
        ));
        if failed.is_empty() {
            Ok(())
        } else {
            Err(ScriptError::new(failed.join("; ")))
        }
    }

    /// The importers of one mailbox, one after another, each within the
    /// instance's budget.
    async fn work_group(
        &self,
        ctx: &ScriptContext,
        client_name: &str,
        group: Vec<&ImporterRecord>,
        dry_run: bool,
    ) -> Vec<Worked> {
        let mut out = Vec::new();
        for record in group {
            if ctx.cancel.is_cancelled() {
                out.push(Worked::Stopped);
                break;
            }
            let Ok(_slot) = self.connector.import_slots.acquire().await else {
                break;
            };
            out.push(self.work_one(ctx, client_name, record, dry_run).await);
        }
        out
    }

    /// One importer: its run (or dry run), recorded; what failed.
    async fn work_one(
        &self,
        ctx: &ScriptContext,
        client_name: &str,
        record: &ImporterRecord,
        dry_run: bool,
    ) -> Worked {
        let label = format!("{} ({})", record.settings.name, record.id);
        let started_at = ctx.clock.now();
        let mut worked = false;
        // `Ok(None)`: a dry run's, which is not recorded.
        let outcome: Result<Option<Summary>, String> = match self
            .connector
            .mailbox_until(record, Patience::Background, ctx.cancel.clone())
            .await
        {
            Err(e) => Err(e.to_string()),
            Ok(mailbox) if dry_run => {
                worked = true;
                DryRun {
                    store: &ctx.store,
                    mailbox: &mailbox,
                    importer: record,
                }
                .run()
                .await
                .map(|predictions| log_predictions(ctx, &label, &predictions))
                .map(|()| None)
                .map_err(|e| e.to_string())
            }
            Ok(mailbox) => {
                worked = true;
                self.import_one(ctx, client_name, record, &label, &mailbox)
                    .await
                    .map(Some)
            }
        };
        let mut failures = Vec::new();
        if let Err(e) = &outcome {
            ctx.log.line(format!("{label}: failed: {e}"));
            failures.push(format!("{label}: {e}"));
        }
        if !dry_run && let Err(e) = record_run(ctx, record, started_at, &outcome).await {
            ctx.log.line(format!("{label}: failed: {e}"));
            failures.push(format!("{label}: {e}"));
        }
        Worked::Done { worked, failures }
    }

    async fn import_one(
        &self,
        ctx: &ScriptContext,
        client_name: &str,
        record: &ImporterRecord,
        label: &str,
        mailbox: &ImporterMailbox,
    ) -> Result<Summary, String> {
        let sink = self
            .connector
            .sink(record)
            .await
            .map_err(|e| e.to_string())?;
        let log = |line: String| ctx.log.line(format!("{label}: {line}"));
        let should_stop = || ctx.cancel.is_cancelled();
        let summary = ImportRun {
            store: &ctx.store,
            clock: ctx.clock.as_ref(),
            mailbox,
            importer: record,
            client_name,
            sink: sink.as_ref(),
            log: &log,
            should_stop: &should_stop,
        }
        .run()
        .await
        .map_err(|e| e.to_string())?;
        ctx.log.line(format!("{label}: {}", summary.line()));
        for (id, why) in summary.left_for_retry.iter().take(RETRY_REASONS_SHOWN) {
            ctx.log.line(format!("{label}: left for retry {id}: {why}"));
        }
        if summary.left_for_retry.len() > RETRY_REASONS_SHOWN {
            ctx.log.line(format!(
                "{label}: … and {} more left for retry",
                summary.left_for_retry.len() - RETRY_REASONS_SHOWN
            ));
        }
        Ok(summary)
    }
}

/// Records what the importer's run did (`outcome`: its summary, or why it
/// could not be worked) as the importer's newest import run. A dry run's
/// (`Ok(None)`) is not recorded. `Err` says why the record is missing.
async fn record_run(
    ctx: &ScriptContext,
    record: &ImporterRecord,
    started_at: Timestamp,
    outcome: &Result<Option<Summary>, String>,
) -> Result<(), String> {
    let run = ImportRunRecord {
        id: ImportRunRecord::new_id(),
        execution_id: ctx.execution_id.clone(),
        client_id: ctx.client_id.clone(),
        importer_id: record.id.clone(),
        started_at,
        finished_at: ctx.clock.now(),
        outcome: RunOutcome::Succeeded,
        imported: 0,
        completed: 0,
        moves_confirmed: 0,
        to_error_by_reason: Default::default(),
        left_for_retry: 0,
        bytes: 0,
        stopped_early: false,
        error: None,
    };
    let run = match outcome {
        Ok(None) => return Ok(()),
        Ok(Some(summary)) => ImportRunRecord {
            imported: summary.imported,
            completed: summary.completed_from_earlier_run,
            moves_confirmed: summary.moves_confirmed,
            to_error_by_reason: summary.to_error.clone(),
            left_for_retry: u64::try_from(summary.left_for_retry.len()).unwrap_or(u64::MAX),
            bytes: summary.bytes,
            stopped_early: summary.stopped_early,
            ..run
        },
        Err(e) => ImportRunRecord {
            outcome: RunOutcome::Failed,
            error: Some(e.clone()),
            ..run
        },
    };
    match ctx.store.record_import_run(&run).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            ctx.log.line(format!(
                "{} ({}): the run is not recorded: the importer was deleted while it ran",
                record.settings.name, record.id
            ));
            Ok(())
        }
        Err(e) => Err(format!(
            "the run's summary could not be recorded, so the importer status does not show it: {e}"
        )),
    }
}

fn log_predictions(ctx: &ScriptContext, label: &str, predictions: &[Prediction]) {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for p in predictions {
        *counts.entry(p.outcome.as_str()).or_default() += 1;
        let why = match (&p.reason, &p.detail) {
            (Some(code), Some(detail)) => format!(" ({code}: {detail})"),
            (Some(code), None) => format!(" ({code})"),
            _ if !p.attachments.is_empty() => format!(" ({})", p.attachments.join(", ")),
            _ => String::new(),
        };
        ctx.log.line(format!(
            "{label}: would {}: {} from {}{why}",
            p.outcome.as_str(),
            p.subject
                .as_deref()
                .map_or("(no subject)".to_owned(), |s| format!("“{s}”")),
            p.from.as_deref().unwrap_or("(unknown sender)"),
        ));
    }
    let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    ctx.log.line(format!(
        "{label}: dry run of {} mail(s), nothing touched: {}",
        predictions.len(),
        if counts.is_empty() {
            "the Inbox is empty".to_owned()
        } else {
            counts.join(", ")
        }
    ));
}

impl Script for ImportEmails {
    fn name(&self) -> &'static str {
        NAME
    }

    fn description(&self) -> &'static str {
        "Imports the mails of each importer's Inbox into documents and moves them to Exported (or to Error, with the reason); with dry_run, lists what each mail would become without touching anything"
    }

    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec {
                name: "importer_id",
                kind: ParamKind::String,
                required: false,
                description: "only this importer (default: every importer of the client)",
                minimum: None,
                maximum: None,
            },
            ParamSpec {
                name: "dry_run",
                kind: ParamKind::Boolean,
                required: false,
                description: "list what each Inbox mail would become and why, touching nothing",
                minimum: None,
                maximum: None,
            },
        ]
    }

    fn run<'a>(&'a self, ctx: &'a ScriptContext) -> ScriptFuture<'a> {
        Box::pin(self.import_all(ctx))
    }
}

/// The script as the registry holds it.
pub fn script(connector: Connector) -> Arc<dyn Script> {
    Arc::new(ImportEmails::new(connector))
}
