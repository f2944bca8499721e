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
use std::time::Duration;

use domain::mailbox::MailboxErrorKind;
use import::pipeline::{DryRun, ImportError, ImportRun, Prediction, Summary};
use jiff::{SignedDuration, Timestamp};
use scheduler::{
    ExecutionLog, ParamKind, ParamSpec, Script, ScriptContext, ScriptError, ScriptFuture,
};
use store::import_runs::{FailureKind, ImportRunRecord, RunOutcome};
use store::import_work::ImportWork;
use store::importers::ImporterRecord;
use store::throttles::MailboxThrottle;
use tokio_util::sync::CancellationToken;

use crate::Connector;
use crate::mailbox::{ImporterMailbox, Patience};
use crate::push::SubscriptionUpkeep;

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

/// Why an importer's run did not import.
enum Unworked {
    /// Another run holds the mailbox and imports its mail.
    Busy(String),
    Failed(RunFailure),
}

/// How long a claim on a unit of shared work lasts without renewal: a
/// crashed instance's mailbox is taken over this long after its last
/// renewal (at once by an instance on the same host).
const CLAIM_TTL: SignedDuration = SignedDuration::from_secs(30);
const CLAIM_RENEW_EVERY: Duration = Duration::from_secs(10);
/// How often a run's owner looks at its shared units, and an idle
/// instance for units to help with.
const WORK_POLL: Duration = Duration::from_millis(500);

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
        // each instance's budget, so a throttled mailbox holds up no other.
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
        let results = if dry_run || only.is_some() {
            // Asked of this run alone: worked here, logged as it goes.
            let runs = groups
                .into_iter()
                .map(|(_, group)| self.work_group(ctx, &client.name, group, dry_run));
            let results: Vec<Worked> = futures_util::future::join_all(runs)
                .await
                .into_iter()
                .flatten()
                .collect();
            if results.iter().any(|w| matches!(w, Worked::Stopped)) {
                ctx.log.line("stopped: mailferry is shutting down");
            }
            results
        } else {
            let units: Vec<(String, Vec<String>)> = groups
                .into_iter()
                .map(|(key, group)| (key, group.into_iter().map(|r| r.id.clone()).collect()))
                .collect();
            self.share_work(ctx, &units).await.map_err(store_error)?
        };
        let (worked, failed) = tally(&results);
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

    /// Queues the run's mailboxes as shared work, works them alongside any
    /// other instance that claims some, and logs each mailbox's lines as
    /// its work ends, wherever it was done.
    async fn share_work(
        &self,
        ctx: &ScriptContext,
        units: &[(String, Vec<String>)],
    ) -> store::Result<Vec<Worked>> {
        ctx.store
            .queue_import_work(&ctx.execution_id, &ctx.client_id, units, ctx.clock.now())
            .await?;
        let mut mine = tokio::task::JoinSet::new();
        let mut reported = std::collections::HashSet::new();
        // Units are read once done; a unit finishing in the same
        // millisecond as the last one read is read again and skipped.
        let mut done_since: Option<Timestamp> = None;
        let mut results = Vec::new();
        let mut last_read: Option<std::time::Instant> = None;
        loop {
            if !ctx.cancel.is_cancelled() {
                while self
                    .claim(ctx, Some(&ctx.execution_id), &mut mine)
                    .await
                    .unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "could not claim a mailbox of the run; trying again shortly");
                        false
                    })
                {}
            }
            // A unit of ours ending frees a slot to claim with at once; the
            // run's progress is read at most once per WORK_POLL (a run over
            // a thousand empty mailboxes would read it a thousand times).
            if let Some(read) = last_read
                && read.elapsed() < WORK_POLL
                && !mine.is_empty()
            {
                let _ = tokio::time::timeout(
                    WORK_POLL.saturating_sub(read.elapsed()),
                    mine.join_next(),
                )
                .await;
                continue;
            }
            last_read = Some(std::time::Instant::now());
            let (done, open) = match ctx
                .store
                .import_work_progress(&ctx.execution_id, done_since)
                .await
            {
                Ok(progress) => progress,
                // Units being worked carry on; look again shortly.
                Err(e) if !mine.is_empty() => {
                    tracing::warn!(error = %e, "could not read the run's shared work; trying again shortly");
                    let _ = tokio::time::timeout(WORK_POLL, mine.join_next()).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            // All done: read every unit once more, so a unit whose
            // instance's clock lags (an early `done_at`) is reported too.
            let done = if open == 0 {
                ctx.store.import_work_of(&ctx.execution_id).await?
            } else {
                done
            };
            for w in done {
                done_since = done_since.max(w.done_at);
                if reported.insert(w.unit.clone()) {
                    for line in &w.log {
                        ctx.log.line(line.clone());
                    }
                    results.push(Worked::Done {
                        worked: w.worked > 0,
                        failures: w.failures.clone(),
                    });
                }
            }
            if open == 0 {
                break;
            }
            if ctx.cancel.is_cancelled() && mine.is_empty() {
                ctx.log.line(format!(
                    "stopped: mailferry is shutting down; {open} mailbox(es) are left to other instances or the next run"
                ));
                results.push(Worked::Stopped);
                return Ok(results);
            }
            if mine.is_empty() {
                tokio::time::sleep(WORK_POLL).await;
            } else {
                let _ = tokio::time::timeout(WORK_POLL, mine.join_next()).await;
            }
        }
        ctx.store.delete_import_work(&ctx.execution_id).await?;
        Ok(results)
    }

    /// Claims one open unit (of `execution_id`'s run, or of any run) when
    /// this instance has an import slot free, and starts working it on a
    /// task of its own (polled whatever its starter awaits, so its database
    /// connections are never held up). `false` when there is no slot or no
    /// unit.
    async fn claim(
        &self,
        ctx: &ScriptContext,
        execution_id: Option<&str>,
        tasks: &mut tokio::task::JoinSet<()>,
    ) -> store::Result<bool> {
        let Ok(permit) = self.connector.import_slots.clone().try_acquire_owned() else {
            return Ok(false);
        };
        let now = ctx.clock.now();
        // Unclaimed (or lapsed) units first, a few at a time; units whose
        // holder may have died on this host only when there is none.
        let mut open = ctx
            .store
            .open_import_work(execution_id, false, now, 4)
            .await?;
        if open.is_empty() {
            open = ctx
                .store
                .open_import_work(execution_id, true, now, 50)
                .await?;
        }
        for work in open {
            let claimable = match (&work.claimed_by, work.claim_until) {
                (None, _) => true,
                (Some(_), Some(until)) if until < now => true,
                (Some(holder), _) => import::lease::holder_is_gone(holder),
            };
            if !claimable {
                continue;
            }
            let owner = import::lease::owner_name();
            let until = now.checked_add(CLAIM_TTL).unwrap_or(now);
            if ctx.store.claim_import_work(&work, &owner, until).await? {
                let this = Self::new(self.connector.clone());
                let ctx = ctx.clone();
                tasks.spawn(async move {
                    let _permit = permit;
                    this.work_unit(&ctx, work, owner).await;
                });
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Works one claimed unit (the importers of one mailbox) for its run,
    /// renewing the claim meanwhile, and records its lines and failures.
    async fn work_unit(&self, ctx: &ScriptContext, work: ImportWork, owner: String) {
        let unit_ctx = ScriptContext {
            client_id: work.client_id.clone(),
            execution_id: work.execution_id.clone(),
            params: Default::default(),
            log: ExecutionLog::default(),
            ..ctx.clone()
        };
        let renewer = tokio::spawn({
            let (store, clock) = (ctx.store.clone(), ctx.clock.clone());
            let (execution_id, unit, owner) =
                (work.execution_id.clone(), work.unit.clone(), owner.clone());
            async move {
                loop {
                    tokio::time::sleep(CLAIM_RENEW_EVERY).await;
                    let until = clock.now().checked_add(CLAIM_TTL).unwrap_or(clock.now());
                    match store
                        .renew_import_work(&execution_id, &unit, &owner, until)
                        .await
                    {
                        Ok(true) => {}
                        // Lost the claim: the work goes on; the mailbox's
                        // lease still keeps a second worker out of its Inbox.
                        Ok(false) => return,
                        Err(e) => {
                            tracing::warn!(error = %e, %unit, "could not renew the claim on a mailbox's import; another instance may take it over")
                        }
                    }
                }
            }
        });
        let results = self.work_ids(&unit_ctx, &work.importer_ids).await;
        renewer.abort();
        tracing::info!(
            unit = %work.unit,
            execution = %work.execution_id,
            importers = work.importer_ids.len(),
            "worked a mailbox's share of an import run"
        );
        let (worked, failures) = tally(&results);
        let mut lines = unit_ctx.log.lines();
        if results.iter().any(|w| matches!(w, Worked::Stopped)) {
            lines.push("stopped: mailferry is shutting down".to_owned());
        }
        if let Err(e) = ctx
            .store
            .finish_import_work(
                &work,
                &owner,
                &lines,
                &failures,
                u64::try_from(worked).unwrap_or(0),
                ctx.clock.now(),
            )
            .await
        {
            tracing::warn!(error = %e, unit = %work.unit, "could not record a mailbox's import as done; its run waits for another instance to redo it");
        }
    }

    /// The importers `ids` (one mailbox's) of the unit's client, one after
    /// another; an importer deleted since the run queued it is skipped.
    async fn work_ids(&self, ctx: &ScriptContext, ids: &[String]) -> Vec<Worked> {
        let client_name = match ctx.store.client_by_id(&ctx.client_id).await {
            Ok(Some(c)) => c.name,
            Ok(None) => return Vec::new(),
            Err(e) => {
                return vec![Worked::Done {
                    worked: false,
                    failures: vec![format!("the database failed: {e}")],
                }];
            }
        };
        let mut out = Vec::new();
        for id in ids {
            if ctx.cancel.is_cancelled() {
                out.push(Worked::Stopped);
                break;
            }
            match ctx.store.importer(&ctx.client_id, id).await {
                Ok(Some(record)) => {
                    out.push(self.work_one(ctx, &client_name, &record, false).await)
                }
                Ok(None) => {}
                Err(e) => out.push(Worked::Done {
                    worked: false,
                    failures: vec![format!("importer {id}: the database failed: {e}")],
                }),
            }
        }
        out
    }

    /// Helps with the shared import work of every run, on any instance,
    /// until `cancel`: claims open mailboxes while this instance has import
    /// slots free. `serve` runs one per instance.
    pub async fn help_until(
        &self,
        store: store::Store,
        clock: Arc<dyn domain::clock::Clock>,
        cancel: CancellationToken,
    ) {
        let ctx = ScriptContext {
            store,
            clock,
            client_id: String::new(),
            execution_id: String::new(),
            params: Default::default(),
            log: ExecutionLog::default(),
            cancel: cancel.clone(),
        };
        let mut running = tokio::task::JoinSet::new();
        loop {
            if !cancel.is_cancelled() {
                loop {
                    match self.claim(&ctx, None, &mut running).await {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "could not look for shared import work; trying again shortly");
                            break;
                        }
                    }
                }
            } else if running.is_empty() {
                return;
            }
            tokio::select! {
                Some(_) = running.join_next() => {}
                () = tokio::time::sleep(WORK_POLL) => {}
                () = cancel.cancelled(), if !cancel.is_cancelled() => {}
            }
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
        match throttle_of(ctx, record).await {
            Ok(None) => {}
            Ok(Some(t)) => {
                ctx.log.line(format!(
                    "{label}: skipped: Microsoft Graph asked to leave this mailbox alone until {} ({}); the first run after that imports its mail",
                    t.until, t.reason
                ));
                return Worked::Done {
                    worked: true,
                    failures: Vec::new(),
                };
            }
            Err(e) => {
                let failure = format!("{label}: the database failed: {e}");
                ctx.log.line(failure.clone());
                return Worked::Done {
                    worked: false,
                    failures: vec![failure],
                };
            }
        }
        let started_at = ctx.clock.now();
        let mut worked = false;
        let mut throttled_until = None;
        // `Ok(None)`: a dry run's, which is not recorded.
        let outcome: Result<Option<Summary>, Unworked> = match self
            .connector
            .mailbox_until(record, Patience::Background, ctx.cancel.clone())
            .await
        {
            Err(e) => Err(Unworked::Failed(RunFailure::other(e))),
            Ok(mailbox) if dry_run => {
                worked = true;
                let predicted = DryRun {
                    store: &ctx.store,
                    mailbox: &mailbox,
                    importer: record,
                }
                .run()
                .await
                .map(|predictions| log_predictions(ctx, &label, &predictions))
                .map(|()| None)
                .map_err(|e| Unworked::Failed(RunFailure::of(&e)));
                throttled_until = remember_throttle(ctx, record, &label, &mailbox).await;
                predicted
            }
            Ok(mailbox) => {
                worked = true;
                let imported = self
                    .import_one(ctx, client_name, record, &label, &mailbox)
                    .await
                    .map(Some);
                throttled_until = remember_throttle(ctx, record, &label, &mailbox).await;
                imported
            }
        };
        let outcome = match outcome {
            Ok(summary) => Ok(summary),
            Err(Unworked::Busy(e)) => {
                // The run that holds the mailbox imports its mail: this is
                // neither a failure nor a run of the importer to record (it
                // would count towards "failing for N runs").
                ctx.log.line(format!("{label}: skipped: {e}"));
                return Worked::Done {
                    worked: true,
                    failures: Vec::new(),
                };
            }
            Err(Unworked::Failed(e)) => Err(e),
        };
        let mut failures = Vec::new();
        if let Err(e) = &outcome {
            ctx.log.line(format!("{label}: failed: {}", e.message));
            failures.push(format!("{label}: {}", e.message));
        }
        if !dry_run
            && let Err(e) = record_run(ctx, record, started_at, &outcome, throttled_until).await
        {
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
    ) -> Result<Summary, Unworked> {
        let sink = self
            .connector
            .sink(record)
            .await
            .map_err(|e| Unworked::Failed(RunFailure::other(e)))?;
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
        .map_err(|e| match e {
            ImportError::Busy(_) => Unworked::Busy(e.to_string()),
            e => Unworked::Failed(RunFailure::of(&e)),
        })?;
        ctx.log.line(format!("{label}: {}", summary.line()));
        for (mail, why) in summary.left_for_retry.iter().take(RETRY_REASONS_SHOWN) {
            ctx.log
                .line(format!("{label}: left for retry {mail}: {why}"));
        }
        if summary.left_for_retry.len() > RETRY_REASONS_SHOWN {
            ctx.log.line(format!(
                "{label}: … and {} more left for retry",
                summary.left_for_retry.len() - RETRY_REASONS_SHOWN
            ));
        }
        match self.connector.keep_subscription(record, mailbox).await {
            None | Some(Ok(SubscriptionUpkeep::Current)) => {}
            Some(Ok(SubscriptionUpkeep::Created)) => ctx.log.line(format!(
                "{label}: push: subscribed to new mail in the Inbox"
            )),
            Some(Ok(SubscriptionUpkeep::Renewed)) => {
                ctx.log.line(format!("{label}: push: subscription renewed"));
            }
            Some(Err(e)) => ctx.log.line(format!(
                "{label}: push: could not subscribe to new mail ({e}); polling goes on"
            )),
        }
        Ok(summary)
    }
}

/// The long `Retry-After` the importer's mailbox is under, whichever
/// instance was told.
async fn throttle_of(
    ctx: &ScriptContext,
    record: &ImporterRecord,
) -> store::Result<Option<MailboxThrottle>> {
    let mailbox = import::lease::lease_name(&ctx.store, record).await?;
    ctx.store.mailbox_throttle(&mailbox, ctx.clock.now()).await
}

/// Shares a `Retry-After` that outlasts the run with every instance, so none
/// asks the mailbox again before its time (asking prolongs a throttle);
/// returns until when, for the run's record.
async fn remember_throttle(
    ctx: &ScriptContext,
    record: &ImporterRecord,
    label: &str,
    mailbox: &ImporterMailbox,
) -> Option<Timestamp> {
    let (until, reason) = mailbox
        .throttled_until()
        .filter(|(until, _)| *until > ctx.clock.now())?;
    let kept = match import::lease::lease_name(&ctx.store, record).await {
        Ok(key) => {
            ctx.store
                .put_mailbox_throttle(&record.client_id, &key, until, &reason)
                .await
        }
        Err(e) => Err(e),
    };
    match kept {
        Ok(()) => ctx.log.line(format!(
            "{label}: Microsoft Graph throttles this mailbox ({reason}): no run asks it again before {until}"
        )),
        Err(e) => ctx.log.line(format!(
            "{label}: Microsoft Graph throttles this mailbox until {until}, and the database did not keep that ({e}): the next run may ask too early"
        )),
    }
    Some(until)
}

/// Why an importer's run failed: the words for the log and the run's
/// record, and the kind its health is told by.
struct RunFailure {
    message: String,
    kind: FailureKind,
}

impl RunFailure {
    fn other(e: impl std::fmt::Display) -> Self {
        Self {
            message: e.to_string(),
            kind: FailureKind::Other,
        }
    }

    fn of(e: &ImportError) -> Self {
        let kind = match e {
            ImportError::Folders(_) => FailureKind::Folders,
            ImportError::Mailbox(m) => match m.kind {
                MailboxErrorKind::Transient => FailureKind::Transient,
                MailboxErrorKind::Permission | MailboxErrorKind::MailboxUnavailable => {
                    FailureKind::MailboxDenied
                }
                _ => FailureKind::Other,
            },
            _ => FailureKind::Other,
        };
        Self {
            message: e.to_string(),
            kind,
        }
    }
}

/// Records what the importer's run did (`outcome`: its summary, or why it
/// could not be worked) as the importer's newest import run. A dry run's
/// (`Ok(None)`) is not recorded. `Err` says why the record is missing.
async fn record_run(
    ctx: &ScriptContext,
    record: &ImporterRecord,
    started_at: Timestamp,
    outcome: &Result<Option<Summary>, RunFailure>,
    throttled_until: Option<Timestamp>,
) -> Result<(), String> {
    let finished_at = ctx.clock.now();
    let run = ImportRunRecord {
        id: ImportRunRecord::new_id(),
        execution_id: ctx.execution_id.clone(),
        client_id: ctx.client_id.clone(),
        importer_id: record.id.clone(),
        started_at,
        finished_at,
        outcome: RunOutcome::Succeeded,
        imported: 0,
        completed: 0,
        moves_confirmed: 0,
        to_error_by_reason: Default::default(),
        left_for_retry: 0,
        bytes: 0,
        stopped_early: false,
        error: None,
        failure_kind: None,
        throttled_until,
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
            error: Some(e.message.clone()),
            failure_kind: Some(e.kind),
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

/// How many importers could be worked, and every failure.
fn tally(results: &[Worked]) -> (usize, Vec<String>) {
    let worked = results
        .iter()
        .filter(|w| matches!(w, Worked::Done { worked: true, .. }))
        .count();
    let failures = results
        .iter()
        .flat_map(|w| match w {
            Worked::Done { failures, .. } => failures.clone(),
            Worked::Stopped => Vec::new(),
        })
        .collect();
    (worked, failures)
}

/// The script as the registry holds it.
pub fn script(connector: Connector) -> Arc<dyn Script> {
    Arc::new(ImportEmails::new(connector))
}
