//! `purge-documents`: deletes a client's documents imported more than
//! `retention_days` days ago, their spooled folder first and then their
//! row. Off by default: no job runs it until an admin creates one with a
//! retention, and it refuses to run without one.
//!
//! The import ledger is left alone on purpose: it is what keeps a purged
//! mail from being imported again.

use std::path::{Component, Path, PathBuf};

use jiff::{SignedDuration, Timestamp};

use crate::script::{ParamKind, ParamSpec, Script, ScriptContext, ScriptError, ScriptFuture};

pub const NAME: &str = "purge-documents";

/// Retentions above this are surely a typo (100 years).
const MAX_RETENTION_DAYS: i64 = 36_500;
const BATCH: i64 = 500;

#[derive(Debug, Clone)]
pub struct PurgeDocuments {
    data_dir: PathBuf,
}

impl PurgeDocuments {
    /// `data_dir` is mailferry's data directory; documents are spooled under
    /// `data_dir/documents/` and only folders in there are ever deleted.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
        }
    }

    fn spool(&self) -> PathBuf {
        self.data_dir.join("documents")
    }

    /// The folder of a document row's `location`, if it is a path inside the
    /// spool (relative locations are relative to the data directory).
    /// `Ok(None)`: the document has no spooled folder (e.g. a webhook sink).
    fn spooled_folder(&self, location: &str) -> Result<Option<PathBuf>, String> {
        if location.contains("://") || location.trim().is_empty() {
            return Ok(None);
        }
        let path = Path::new(location);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.data_dir.join(path)
        };
        let spool = self.spool();
        let inside = path.starts_with(&spool)
            && path != spool
            && !path.components().any(|c| matches!(c, Component::ParentDir));
        if inside {
            Ok(Some(path))
        } else {
            Err(format!(
                "its folder {} is outside the document spool {}",
                path.display(),
                spool.display()
            ))
        }
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
        let mut purged = 0u64;
        let mut kept: Vec<String> = Vec::new();
        let mut after = String::new();
        loop {
            let batch = documents_before(ctx, cutoff, &after).await?;
            let Some((last, _)) = batch.last() else {
                break;
            };
            after = last.clone();
            for (id, location) in &batch {
                if ctx.cancel.is_cancelled() {
                    ctx.log.line(format!(
                        "stopped early because mailferry is shutting down: {purged} documents deleted; the rest go next run"
                    ));
                    return Ok(());
                }
                match self.spooled_folder(location) {
                    Ok(Some(folder)) => match tokio::fs::remove_dir_all(&folder).await {
                        Ok(()) => {}
                        // Already gone (a previous run stopped before the row).
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            kept.push(format!("{id}: cannot delete {}: {e}", folder.display()));
                            continue;
                        }
                    },
                    Ok(None) => {}
                    Err(reason) => {
                        kept.push(format!("{id}: {reason}"));
                        continue;
                    }
                }
                delete_document_row(ctx, id).await?;
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

// The `documents` table belongs to the import pipeline; these two queries
// are the only ones purge needs, kept here until the store has a documents
// module to host them.
async fn documents_before(
    ctx: &ScriptContext,
    cutoff: Timestamp,
    after_id: &str,
) -> Result<Vec<(String, String)>, ScriptError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, location FROM documents WHERE client_id = $1 AND imported_at < $2 AND id > $3 \
         ORDER BY id LIMIT {BATCH}"
    )))
    .bind(&ctx.client_id)
    .bind(cutoff.as_millisecond())
    .bind(after_id)
    .fetch_all(ctx.store.pool())
    .await
    .map_err(|e| ScriptError::new(format!("reading the documents failed: {e}")))
}

async fn delete_document_row(ctx: &ScriptContext, id: &str) -> Result<(), ScriptError> {
    sqlx::query("DELETE FROM documents WHERE client_id = $1 AND id = $2")
        .bind(&ctx.client_id)
        .bind(id)
        .execute(ctx.store.pool())
        .await
        .map_err(|e| ScriptError::new(format!("deleting document {id} failed: {e}")))?;
    Ok(())
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
