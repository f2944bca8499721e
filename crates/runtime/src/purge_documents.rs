//! `purge-documents`: deletes a client's documents imported more than
//! `retention_days` days ago, their spooled folder first and then their
//! row. Off by default: no job runs it until an admin creates one with a
//! retention, and it refuses to run without one.
//!
//! The import ledger is left alone on purpose: it is what keeps a purged
//! mail from being imported again.

use jiff::SignedDuration;
use scheduler::{ParamKind, ParamSpec, Script, ScriptContext, ScriptError, ScriptFuture};

use crate::Connector;

pub const NAME: &str = "purge-documents";

/// Retentions above this are surely a typo (100 years).
const MAX_RETENTION_DAYS: i64 = 36_500;
const BATCH: i64 = 500;

#[derive(Clone)]
pub struct PurgeDocuments {
    connector: Connector,
}

impl PurgeDocuments {
    /// Deletes documents through the sinks `connector` builds; the spool
    /// deletes only folders inside `data_dir/documents`.
    pub fn new(connector: Connector) -> Self {
        Self { connector }
    }

    async fn purge(&self, ctx: &ScriptContext) -> Result<(), ScriptError> {
        let days = ctx.param_i64("retention_days").ok_or_else(|| {
            ScriptError::new(
                "purge-documents needs `retention_days` (how many days to keep documents); \
                 it deletes nothing without one",
            )
        })?;
        if !(1..=MAX_RETENTION_DAYS).contains(&days) {
            return Err(ScriptError::new(format!(
                "retention_days must be between 1 and {MAX_RETENTION_DAYS}, not {days}"
            )));
        }
        let now = ctx.clock.now();
        let cutoff = now
            .checked_sub(SignedDuration::from_hours(days * 24))
            .map_err(|e| ScriptError::new(format!("retention_days {days}: {e}")))?;
        ctx.log.line(format!(
            "deleting documents imported before {cutoff} (older than {days} days)"
        ));
        let store_error =
            |e: store::StoreError| ScriptError::new(format!("the database failed: {e}"));
        let mut purged = 0u64;
        let mut kept: Vec<String> = Vec::new();
        let mut after = String::new();
        loop {
            let batch = ctx
                .store
                .documents_imported_before(&ctx.client_id, cutoff, &after, BATCH)
                .await
                .map_err(store_error)?;
            let Some(last) = batch.last() else {
                break;
            };
            after = last.id.clone();
            for doc in &batch {
                if ctx.cancel.is_cancelled() {
                    ctx.log.line(format!(
                        "stopped early because mailferry is shutting down: {purged} documents deleted; the rest go next run"
                    ));
                    return Ok(());
                }
                let removed = match self
                    .connector
                    .keeping_sink(&ctx.client_id, &doc.importer_id, &doc.sink)
                    .await
                {
                    Ok(Some(sink)) => sink.remove(&doc.location).await.map_err(|e| e.to_string()),
                    Ok(None) => Ok(()),
                    Err(why) => Err(why),
                };
                if let Err(why) = removed {
                    kept.push(format!("{}: {why}", doc.id));
                    continue;
                }
                ctx.store
                    .delete_document(&ctx.client_id, &doc.id)
                    .await
                    .map_err(store_error)?;
                purged += 1;
            }
            if i64::try_from(batch.len()).unwrap_or(BATCH) < BATCH {
                break;
            }
        }
        ctx.log.line(format!("{purged} documents deleted"));
        if kept.is_empty() {
            Ok(())
        } else {
            for line in &kept {
                ctx.log.line(format!("kept {line}"));
            }
            Err(ScriptError::new(format!(
                "{} documents could not be deleted (see the log); fix their folders and run again",
                kept.len()
            )))
        }
    }
}

impl Script for PurgeDocuments {
    fn name(&self) -> &'static str {
        NAME
    }

    fn description(&self) -> &'static str {
        "Deletes documents imported more than `retention_days` days ago (their spooled folder and \
         their record). Off by default: runs only with a retention, e.g. a job with \
         params {\"retention_days\": 90}."
    }

    fn params(&self) -> Vec<ParamSpec> {
        vec![ParamSpec {
            name: "retention_days",
            kind: ParamKind::Integer,
            required: true,
            description: "keep documents this many days (1–36500); older ones are deleted",
            minimum: Some(1),
            maximum: Some(36500),
        }]
    }

    fn run<'a>(&'a self, ctx: &'a ScriptContext) -> ScriptFuture<'a> {
        Box::pin(self.purge(ctx))
    }
}
