//! The import run: resolve → list → fetch → decide → sink → move, with the
//! ledger, so that a crash between any two steps leaves every mail in
//! exactly one of: document + Exported; Error with its reason in the
//! ledger; still in the Inbox (retried next run).
//!
//! Order for an importable mail: store the document (idempotent per
//! `document_id`), record it in `documents`, record the ledger as `stored`,
//! move to Exported, mark `moved`. For a mail that is not importable:
//! record `to_error` with the reason, move to Error, mark `moved_to_error`.
//! A mail found in the Inbox whose ledger row (by id, or by `Message-ID` /
//! MIME under another id) says it was already decided is moved on without
//! a second document.
//!
//! Graph keeps no "reason" on a message: the reason a mail went to Error
//! lives in the ledger (`reason` = `code: detail`) and in the run's log.
//!
//! A crash right after a move leaves the row `stored` / `to_error` while the
//! mail is no longer in the Inbox, so no later listing finishes it. At the
//! end of each run the pipeline therefore asks the mailbox where such mails
//! are now (a bounded number per run, most recent first) and confirms the
//! move the row expects; anything else is only logged, never guessed.
//! The end of the run, not its start: by then every mail still in the Inbox
//! has been seen (and finished) by the normal loop, so only mails that left
//! the Inbox cost a lookup.
//!
//! Moving mail out of the Inbox shifts offset-based pages, so after a page
//! that moved anything the listing starts again from the top; mails left
//! for retry are remembered and not tried twice in one run.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use domain::clock::Clock;
use domain::document::DocumentSource;
use domain::mailbox::{
    Mailbox, MailboxError, MessageLocation, MessageSummary, PageCursor, ResolvedFolders,
    resolve_folders,
};
use jiff::SignedDuration;
use sinks::{Document, DocumentHeader, NewAttachment, Sink};
use store::Store;
use store::documents::DocumentRecord;
use store::importers::ImporterRecord;
use store::ledger::{LedgerEntry, LedgerState};

use crate::failpoint;
use crate::identity::{document_id, mime_sha256};
use crate::mime::{Decision, Reason, analyze};

/// How long a run holds its importer's lease without renewing it.
const LEASE_SPAN: SignedDuration = SignedDuration::from_mins(10);
/// A progress line every this many mails.
const PROGRESS_EVERY: u64 = 50;
/// At most this many "where is this mail now" lookups per run: unconfirmed
/// moves are rare (a crash each), and a backlog must not slow every run.
pub const MAX_LOCATES_PER_RUN: usize = 100;

/// What one run needs.
pub struct ImportRun<'a, M: Mailbox> {
    pub store: &'a Store,
    pub clock: &'a dyn Clock,
    pub mailbox: &'a M,
    pub importer: &'a ImporterRecord,
    /// The client's name (the spool's `{client}` folder).
    pub client_name: &'a str,
    pub sink: &'a Sink,
    /// Where progress and per-mail lines go (the execution log).
    pub log: &'a (dyn Fn(String) + Send + Sync),
    /// Checked between mails: a shutdown stops the run cleanly.
    pub should_stop: &'a (dyn Fn() -> bool + Send + Sync),
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub imported: u64,
    /// Mails whose document existed from an earlier, interrupted run: moved on, no new document.
    pub completed_from_earlier_run: u64,
    /// Moves an interrupted run made but did not record, confirmed by
    /// finding the mail in Exported or Error.
    pub moves_confirmed: u64,
    /// Mails moved to Error, by reason code.
    pub to_error: BTreeMap<String, u64>,
    /// Mails left in the Inbox for the next run, with why.
    pub left_for_retry: Vec<(String, String)>,
    pub bytes: u64,
    pub stopped_early: bool,
}

impl Summary {
    pub fn line(&self) -> String {
        let errors: u64 = self.to_error.values().sum();
        let reasons: Vec<String> = self
            .to_error
            .iter()
            .map(|(code, n)| format!("{code}: {n}"))
            .collect();
        let mut s = format!(
            "imported {}, to Error {}{}, left for retry {}",
            self.imported,
            errors,
            if reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", reasons.join(", "))
            },
            self.left_for_retry.len()
        );
        if self.completed_from_earlier_run > 0 {
            s.push_str(&format!(
                ", completed from an earlier run {}",
                self.completed_from_earlier_run
            ));
        }
        if self.moves_confirmed > 0 {
            s.push_str(&format!(
                ", moves of an earlier run confirmed {}",
                self.moves_confirmed
            ));
        }
        if self.stopped_early {
            s.push_str(" (stopped early: shutting down)");
        }
        s
    }
}

/// Why a run could not work (no mail was touched, or it stopped).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}; no mail was touched")]
    Folders(String),
    #[error(
        "another run is importing for this importer ({0}); this run did nothing: wait for it to finish"
    )]
    Busy(String),
    #[error("the mailbox cannot be used: {0}")]
    Mailbox(MailboxError),
    #[error("{0}")]
    Store(#[from] store::StoreError),
}

/// What each Inbox mail would become (dry run).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Prediction {
    pub message_id: String,
    pub internet_message_id: Option<String>,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub received_at: Option<jiff::Timestamp>,
    /// `import`, `error`, `already_imported`, `already_error`, `retry`.
    pub outcome: String,
    /// Reason code for `error`/`already_error`, or why a retry.
    pub reason: Option<String>,
    pub detail: Option<String>,
    /// Files the document would have.
    pub attachments: Vec<String>,
    /// Parts left out, with why.
    pub skipped: Vec<String>,
}

/// A step of one mail failed in a way that leaves it in the Inbox.
enum MailOutcome {
    Imported { bytes: u64 },
    Completed,
    ToError(String),
    Retry(String),
}

impl<M: Mailbox> ImportRun<'_, M> {
    fn lease_name(&self) -> String {
        format!("import:{}", self.importer.id)
    }

    async fn resolve(&self) -> Result<ResolvedFolders, RunError> {
        let tree = self
            .mailbox
            .folder_tree(true)
            .await
            .map_err(RunError::Mailbox)?;
        resolve_folders(&tree, &self.importer.settings.folders)
            .map_err(|e| RunError::Folders(e.to_string()))
    }

    /// Imports every mail of the Inbox once.
    pub async fn run(&self) -> Result<Summary, RunError> {
        let owner = crate::lease::owner_name();
        let lease = self.lease_name();
        let now = self.clock.now();
        if !self
            .store
            .try_acquire_lease(&lease, &owner, now + LEASE_SPAN, now)
            .await?
        {
            let holder = self
                .store
                .lease_owner(&lease, now)
                .await?
                .unwrap_or_default();
            // A run killed on this host cannot release its lease; waiting
            // for it to expire would stall imports for LEASE_SPAN. Releasing
            // only if the dead holder still holds it keeps this race-free.
            let taken_over = crate::lease::holder_is_gone(&holder) && {
                self.store.release_lease(&lease, &holder).await?;
                self.store
                    .try_acquire_lease(&lease, &owner, now + LEASE_SPAN, now)
                    .await?
            };
            if !taken_over {
                return Err(RunError::Busy(holder));
            }
            (self.log)(format!(
                "took over the lease of an ended run ({holder}); its unfinished mails are completed now"
            ));
        }
        let result = self.run_leased(&lease, &owner).await;
        // Released even after a failure; a crash lets it expire instead.
        let _ = self.store.release_lease(&lease, &owner).await;
        result
    }

    async fn run_leased(&self, lease: &str, owner: &str) -> Result<Summary, RunError> {
        let folders = self.resolve().await?;
        (self.log)(format!(
            "folders: Inbox `{}`, Exported `{}`, Error `{}`",
            folders.inbox.path, folders.exported.path, folders.error.path
        ));
        let mut summary = Summary::default();
        let mut tried: HashSet<String> = HashSet::new();
        let mut handled = 0u64;
        let mut cursor: Option<PageCursor> = None;
        loop {
            let page = match self
                .mailbox
                .list_messages(&folders.inbox.id, cursor.as_ref())
                .await
            {
                Ok(p) => p,
                Err(e) if e.is_transient() => {
                    summary
                        .left_for_retry
                        .push(("(listing)".to_owned(), e.to_string()));
                    break;
                }
                Err(e) => return Err(RunError::Mailbox(e)),
            };
            let mut moved_any = false;
            for msg in &page.messages {
                if !tried.insert(msg.id.clone()) {
                    continue;
                }
                if (self.should_stop)() {
                    summary.stopped_early = true;
                    return Ok(summary);
                }
                let now = self.clock.now();
                // Renewing per mail keeps a long run's lease alive; a crashed
                // run's lease expires within LEASE_SPAN.
                if !self
                    .store
                    .try_acquire_lease(lease, owner, now + LEASE_SPAN, now)
                    .await?
                {
                    return Err(RunError::Busy("the lease was taken over".to_owned()));
                }
                let started = Instant::now();
                let outcome = self.import_one(msg, &folders).await?;
                metrics::histogram!("mailferry_import_mail_seconds")
                    .record(started.elapsed().as_secs_f64());
                match outcome {
                    MailOutcome::Imported { bytes } => {
                        moved_any = true;
                        summary.imported += 1;
                        summary.bytes += bytes;
                        metrics::counter!("mailferry_import_mails_total", "outcome" => "imported")
                            .increment(1);
                        metrics::counter!("mailferry_import_bytes_total").increment(bytes);
                    }
                    MailOutcome::Completed => {
                        moved_any = true;
                        summary.completed_from_earlier_run += 1;
                        metrics::counter!("mailferry_import_mails_total", "outcome" => "completed")
                            .increment(1);
                    }
                    MailOutcome::ToError(code) => {
                        moved_any = true;
                        metrics::counter!("mailferry_import_mails_total", "outcome" => "error")
                            .increment(1);
                        *summary.to_error.entry(code).or_default() += 1;
                    }
                    MailOutcome::Retry(why) => {
                        metrics::counter!("mailferry_import_mails_total", "outcome" => "retry")
                            .increment(1);
                        (self.log)(format!(
                            "left in the Inbox for the next run: {} ({why})",
                            msg.id
                        ));
                        summary.left_for_retry.push((msg.id.clone(), why));
                    }
                }
                handled += 1;
                if handled.is_multiple_of(PROGRESS_EVERY) {
                    (self.log)(format!("progress: {handled} mails, {}", summary.line()));
                }
            }
            cursor = if moved_any { None } else { page.next };
            if cursor.is_none() && !moved_any {
                break;
            }
        }
        self.confirm_unrecorded_moves(&folders, &tried, lease, owner, &mut summary)
            .await?;
        Ok(summary)
    }

    /// Finishes rows left `stored` / `to_error` by a crash after their move:
    /// the mail is no longer in the Inbox, so the loop above never sees it.
    /// A row is advanced only when the mail sits in the folder the row's
    /// state leads to; mails in the Inbox are the loop's next run's work.
    async fn confirm_unrecorded_moves(
        &self,
        folders: &ResolvedFolders,
        seen_in_inbox: &HashSet<String>,
        lease: &str,
        owner: &str,
        summary: &mut Summary,
    ) -> Result<(), RunError> {
        let importer_id = &self.importer.id;
        // Rows seen in the Inbox this run are skipped, so ask for enough
        // rows that skipping them still leaves a full batch.
        let limit = i64::try_from(seen_in_inbox.len() + MAX_LOCATES_PER_RUN).unwrap_or(i64::MAX);
        let rows = self
            .store
            .unfinished_ledger_entries(importer_id, limit)
            .await?;
        for entry in rows
            .iter()
            .filter(|e| !seen_in_inbox.contains(&e.source_key))
            .take(MAX_LOCATES_PER_RUN)
        {
            if (self.should_stop)() {
                summary.stopped_early = true;
                return Ok(());
            }
            let now = self.clock.now();
            if !self
                .store
                .try_acquire_lease(lease, owner, now + LEASE_SPAN, now)
                .await?
            {
                return Err(RunError::Busy("the lease was taken over".to_owned()));
            }
            let key = &entry.source_key;
            let state = entry.state.as_str();
            let folder = match self.mailbox.locate_message(key).await {
                Ok(MessageLocation::Folder(folder)) => folder,
                Ok(MessageLocation::Gone) => {
                    (self.log)(format!(
                        "ledger row {key} is `{state}` but the mailbox has no message with that id any more; left as it is"
                    ));
                    continue;
                }
                Err(e) if e.is_transient() || is_run_stopping(&e) => {
                    (self.log)(format!(
                        "stopped checking where unconfirmed mails are, next run continues: {e}"
                    ));
                    return Ok(());
                }
                Err(e) => {
                    (self.log)(format!(
                        "ledger row {key} is `{state}` and its mail cannot be looked up: {e}; left as it is"
                    ));
                    continue;
                }
            };
            let done = match entry.state {
                LedgerState::Stored if folder == folders.exported.id => LedgerState::Moved,
                LedgerState::ToError if folder == folders.error.id => LedgerState::MovedToError,
                _ if folder == folders.inbox.id => continue,
                _ => {
                    (self.log)(format!(
                        "ledger row {key} is `{state}` but its mail is in another folder (id {folder}); left as it is"
                    ));
                    continue;
                }
            };
            if self
                .store
                .advance_ledger_state(importer_id, key, entry.state, done, self.clock.now())
                .await?
            {
                summary.moves_confirmed += 1;
                (self.log)(format!(
                    "confirmed the move of {key} by an earlier run: now `{}`",
                    done.as_str()
                ));
            }
        }
        Ok(())
    }

    fn ledger_entry(
        &self,
        source_key: &str,
        imid: Option<&str>,
        sha: &str,
        document_id: Option<String>,
        state: LedgerState,
        reason: Option<String>,
    ) -> LedgerEntry {
        let now = self.clock.now();
        LedgerEntry {
            importer_id: self.importer.id.clone(),
            source_key: source_key.to_owned(),
            internet_message_id: imid.map(str::to_owned),
            mime_sha256: Some(sha.to_owned()),
            document_id,
            state,
            reason,
            created_at: now,
            updated_at: now,
        }
    }

    async fn move_to(
        &self,
        msg: &MessageSummary,
        folder_id: &str,
    ) -> Result<Result<(), String>, RunError> {
        match self.mailbox.move_message(&msg.id, folder_id).await {
            Ok(_) => Ok(Ok(())),
            Err(e) if is_run_stopping(&e) => Err(RunError::Mailbox(e)),
            Err(e) => Ok(Err(e.to_string())),
        }
    }

    async fn import_one(
        &self,
        msg: &MessageSummary,
        folders: &ResolvedFolders,
    ) -> Result<MailOutcome, RunError> {
        let importer_id = &self.importer.id;
        // Already decided under this id: finish what a crash interrupted.
        if let Some(entry) = self.store.ledger_entry(importer_id, &msg.id).await? {
            return self.finish_decided(msg, &entry, folders).await;
        }
        let raw = match self.mailbox.fetch_mime(&msg.id).await {
            Ok(raw) => raw,
            Err(e) if is_run_stopping(&e) => return Err(RunError::Mailbox(e)),
            Err(e) => return Ok(MailOutcome::Retry(e.to_string())),
        };
        failpoint::hit("after_fetch");
        let sha = mime_sha256(&raw);
        let settings = &self.importer.settings;
        let analysis = analyze(&raw, &settings.attachments, &settings.rules);
        let imid = analysis
            .facts
            .internet_message_id
            .clone()
            .or_else(|| msg.internet_message_id.clone());
        // The same mail under another id (moved out and back, id changed).
        if let Some(earlier) = self
            .store
            .ledger_entry_for_mail(importer_id, imid.as_deref(), &sha)
            .await?
        {
            let entry = LedgerEntry {
                source_key: msg.id.clone(),
                ..earlier
            };
            self.store.record_ledger(&entry).await?;
            return self.finish_decided(msg, &entry, folders).await;
        }
        match analysis.decision {
            Decision::ToError { reason } => {
                self.send_to_error(msg, imid.as_deref(), &sha, &reason, folders)
                    .await
            }
            Decision::Import { attachments } => {
                let doc_id = document_id(importer_id, imid.as_deref(), &sha);
                let facts = analysis.facts;
                let header = DocumentHeader {
                    document_id: doc_id.clone(),
                    client: self.client_name.to_owned(),
                    importer_id: importer_id.clone(),
                    source: DocumentSource {
                        protocol: settings.protocol.as_str().to_owned(),
                        mailbox: mailbox_label(&self.importer.settings),
                        message_id: msg.id.clone(),
                        internet_message_id: imid.clone(),
                    },
                    subject: facts.subject.or_else(|| msg.subject.clone()),
                    from: facts.from.or_else(|| msg.from.clone()),
                    to: facts.to,
                    received_at: msg.received_at.or(facts.date),
                    imported_at: self.clock.now(),
                };
                let parts = attachments
                    .into_iter()
                    .map(|a| NewAttachment {
                        filename: a.filename,
                        fallback_name: a.fallback_name,
                        content_type: a.content_type,
                        bytes: a.bytes,
                    })
                    .collect();
                let doc = Document::new(header, Arc::from(raw), parts);
                let stored = match self.sink.store(&doc).await {
                    Ok(s) => s,
                    Err(e) if e.transient => return Ok(MailOutcome::Retry(e.message)),
                    Err(e) => {
                        let reason = Reason::new("unstorable", e.message);
                        return self
                            .send_to_error(msg, imid.as_deref(), &sha, &reason, folders)
                            .await;
                    }
                };
                failpoint::hit("after_store");
                self.store
                    .insert_document(&DocumentRecord {
                        id: doc_id.clone(),
                        client_id: self.importer.client_id.clone(),
                        importer_id: importer_id.clone(),
                        sink: self.sink.kind().to_owned(),
                        location: stored.location,
                        metadata: doc.metadata.clone(),
                    })
                    .await?;
                failpoint::hit("after_document_row");
                self.store
                    .record_ledger(&self.ledger_entry(
                        &msg.id,
                        imid.as_deref(),
                        &sha,
                        Some(doc_id),
                        LedgerState::Stored,
                        None,
                    ))
                    .await?;
                failpoint::hit("after_ledger");
                if let Err(why) = self.move_to(msg, &folders.exported.id).await? {
                    return Ok(MailOutcome::Retry(format!(
                        "document stored, move to Exported failed: {why}"
                    )));
                }
                failpoint::hit("after_move");
                self.store
                    .set_ledger_state(importer_id, &msg.id, LedgerState::Moved, self.clock.now())
                    .await?;
                (self.log)(format!(
                    "imported {} → document {} ({} attachments)",
                    msg.id,
                    doc.metadata.document_id,
                    doc.files.len()
                ));
                Ok(MailOutcome::Imported {
                    bytes: doc.total_bytes(),
                })
            }
        }
    }

    async fn send_to_error(
        &self,
        msg: &MessageSummary,
        imid: Option<&str>,
        sha: &str,
        reason: &Reason,
        folders: &ResolvedFolders,
    ) -> Result<MailOutcome, RunError> {
        self.store
            .record_ledger(&self.ledger_entry(
                &msg.id,
                imid,
                sha,
                None,
                LedgerState::ToError,
                Some(reason.to_line()),
            ))
            .await?;
        failpoint::hit("after_error_ledger");
        if let Err(why) = self.move_to(msg, &folders.error.id).await? {
            return Ok(MailOutcome::Retry(format!(
                "decided {}, move to Error failed: {why}",
                reason.code
            )));
        }
        failpoint::hit("after_error_move");
        self.store
            .set_ledger_state(
                &self.importer.id,
                &msg.id,
                LedgerState::MovedToError,
                self.clock.now(),
            )
            .await?;
        (self.log)(format!("to Error {}: {}", msg.id, reason.to_line()));
        Ok(MailOutcome::ToError(reason.code.clone()))
    }

    /// A mail already decided (by an interrupted run, or under another id):
    /// move it where the ledger says, without a second document.
    async fn finish_decided(
        &self,
        msg: &MessageSummary,
        entry: &LedgerEntry,
        folders: &ResolvedFolders,
    ) -> Result<MailOutcome, RunError> {
        let (target, done, outcome) = match entry.state {
            LedgerState::Stored | LedgerState::Moved if entry.document_id.is_some() => (
                &folders.exported.id,
                LedgerState::Moved,
                MailOutcome::Completed,
            ),
            _ => {
                let code = entry
                    .reason
                    .as_deref()
                    .and_then(|r| r.split_once(": "))
                    .map_or("unknown", |(code, _)| code)
                    .to_owned();
                (
                    &folders.error.id,
                    LedgerState::MovedToError,
                    MailOutcome::ToError(code),
                )
            }
        };
        if let Err(why) = self.move_to(msg, target).await? {
            return Ok(MailOutcome::Retry(why));
        }
        self.store
            .set_ledger_state(&self.importer.id, &msg.id, done, self.clock.now())
            .await?;
        Ok(outcome)
    }

    /// What each Inbox mail would become, touching nothing (no move, no
    /// document, no ledger row, no lease).
    pub async fn dry_run(&self) -> Result<Vec<Prediction>, RunError> {
        DryRun {
            store: self.store,
            mailbox: self.mailbox,
            importer: self.importer,
        }
        .run()
        .await
    }
}

/// A dry run needs no sink, clock or log: it only reads.
pub struct DryRun<'a, M: Mailbox> {
    pub store: &'a Store,
    pub mailbox: &'a M,
    pub importer: &'a ImporterRecord,
}

impl<M: Mailbox> DryRun<'_, M> {
    /// What each Inbox mail would become, touching nothing (no move, no
    /// document, no ledger row, no lease).
    pub async fn run(&self) -> Result<Vec<Prediction>, RunError> {
        let tree = self
            .mailbox
            .folder_tree(true)
            .await
            .map_err(RunError::Mailbox)?;
        let folders = resolve_folders(&tree, &self.importer.settings.folders)
            .map_err(|e| RunError::Folders(e.to_string()))?;
        let settings = &self.importer.settings;
        let mut out = Vec::new();
        let mut cursor: Option<PageCursor> = None;
        loop {
            let page = self
                .mailbox
                .list_messages(&folders.inbox.id, cursor.as_ref())
                .await
                .map_err(RunError::Mailbox)?;
            for msg in &page.messages {
                let mut p = Prediction {
                    message_id: msg.id.clone(),
                    internet_message_id: msg.internet_message_id.clone(),
                    subject: msg.subject.clone(),
                    from: msg.from.clone(),
                    received_at: msg.received_at,
                    outcome: String::new(),
                    reason: None,
                    detail: None,
                    attachments: Vec::new(),
                    skipped: Vec::new(),
                };
                let earlier = match self.store.ledger_entry(&self.importer.id, &msg.id).await? {
                    Some(e) => Some(e),
                    None => match self.mailbox.fetch_mime(&msg.id).await {
                        Err(e) => {
                            p.outcome = "retry".to_owned();
                            p.reason = Some(e.to_string());
                            out.push(p);
                            continue;
                        }
                        Ok(raw) => {
                            let sha = mime_sha256(&raw);
                            let a = analyze(&raw, &settings.attachments, &settings.rules);
                            let imid = a
                                .facts
                                .internet_message_id
                                .clone()
                                .or_else(|| msg.internet_message_id.clone());
                            let earlier = self
                                .store
                                .ledger_entry_for_mail(&self.importer.id, imid.as_deref(), &sha)
                                .await?;
                            if earlier.is_none() {
                                p.subject = a.facts.subject.clone().or(p.subject);
                                p.from = a.facts.from.clone().or(p.from);
                                p.internet_message_id = imid;
                                p.skipped = a
                                    .skipped
                                    .iter()
                                    .map(|s| format!("{}: {}", s.name, s.why))
                                    .collect();
                                match a.decision {
                                    Decision::Import { attachments } => {
                                        p.outcome = "import".to_owned();
                                        p.attachments = sinks::filename::unique_names(
                                            attachments.iter().map(|x| {
                                                x.filename.as_deref().unwrap_or(&x.fallback_name)
                                            }),
                                        );
                                    }
                                    Decision::ToError { reason } => {
                                        p.outcome = "error".to_owned();
                                        p.reason = Some(reason.code);
                                        p.detail = Some(reason.detail);
                                    }
                                }
                            }
                            earlier
                        }
                    },
                };
                if let Some(e) = earlier {
                    let imported = matches!(e.state, LedgerState::Stored | LedgerState::Moved)
                        && e.document_id.is_some();
                    p.outcome = if imported {
                        "already_imported"
                    } else {
                        "already_error"
                    }
                    .to_owned();
                    p.reason = e.reason.clone();
                }
                out.push(p);
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(out)
    }
}

/// Errors after which no further mail can succeed in this run.
fn is_run_stopping(e: &MailboxError) -> bool {
    use domain::mailbox::MailboxErrorKind as K;
    matches!(e.kind, K::Token | K::Permission | K::MailboxUnavailable)
}

/// The mailbox as the document's `source.mailbox` names it.
pub fn mailbox_label(settings: &domain::importer::ImporterSettings) -> String {
    match &settings.connection {
        domain::importer::Connection::Graph(g) => {
            g.mailbox.clone().unwrap_or_else(|| "me".to_owned())
        }
        domain::importer::Connection::Imap(i) => i.username.clone(),
    }
}
