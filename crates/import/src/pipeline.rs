//! The import run: resolve → list → fetch → decide → sink → move, with the
//! ledger, so that a crash between any two steps leaves every mail in
//! exactly one of: document + Exported; Error with its reason in the
//! ledger (and as a mark on the mail); still in the Inbox (retried next run).
//!
//! What becomes of a mail is decided once, by [`ImportRun::assess`], into
//! a [`Verdict`]: the run acts on it, the dry run reports it.
//!
//! Order for an importable mail: store the document (idempotent per
//! `document_id`), record it in `documents`, record the ledger as `stored`,
//! move to Exported, mark `moved`. For a mail that is not importable:
//! record `to_error` with the reason, mark the mail with the reason, move
//! it to Error, mark `moved_to_error`. A mail found in the Inbox whose
//! ledger row (by id, or the same mail under another id: same
//! `Message-ID` *and* same content) says it was imported or is on its way
//! to Error is moved on without a second document. A mail whose row says
//! it is in Error was moved back by an admin: it is decided afresh.
//!
//! A mail that can never be imported must not be downloaded every run for
//! ever: one larger than `max_mail_bytes` goes to Error (`too_large`)
//! without a download when the mailbox reports its size; one whose import
//! failed transiently in `max_attempts` runs goes to Error
//! (`retries_exhausted`) with the last error; a sink's final refusal goes
//! to Error (`sink_rejected`).
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
//! The Inbox is listed ahead: while the last listed mails are worked, the
//! next listing is under way, so the mailbox's requests never wait for
//! one. Moving mail out of the Inbox shifts offset-based pages, so a
//! listing after any move starts again from the top; mails already tried
//! (in flight, done, or left for retry) are remembered and not tried twice
//! in one run. The run ends on a listing made with nothing in flight that
//! brings nothing new.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::pin::Pin;

use bytes::Bytes;
use std::sync::OnceLock;
use std::time::Instant;

use domain::clock::Clock;
use domain::document::{DocumentMetadata, DocumentSource};
use domain::importer::{ImportLimits, ImporterSettings};
use domain::mailbox::{
    LocateHint, Mailbox, MailboxError, MailboxErrorKind, MessageLocation, MessagePage,
    MessageSummary, PageCursor, ResolvedFolders, resolve_folders,
};
use futures_util::StreamExt;
use futures_util::future::{self, Either};
use futures_util::stream::FuturesOrdered;
use jiff::SignedDuration;
use serde::Serialize;
use sinks::{Document, DocumentSink, NewAttachment, SinkErrorKind};
use store::Store;
use store::documents::DocumentRecord;
use store::importers::ImporterRecord;
use store::ledger::{LedgerEntry, LedgerState};

use crate::failpoint;
use crate::fingerprint::{document_id, mime_sha256, usable_message_id};
use crate::mime::{Analysis, Decision, Extracted, Policy, Reason, analyze_with};
use domain::content::ContentKeys;

/// How long a run holds its importer's lease without renewing it.
const LEASE_SPAN: SignedDuration = SignedDuration::from_mins(10);
/// How often a run renews its lease (a tenth of its span).
const RENEW_LEASE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// Mails worked at once in a run: enough to keep Graph's four requests per
/// mailbox busy while earlier mails are parsed, stored and recorded.
pub const MAILS_IN_FLIGHT: usize = 16;
/// ... and at most this many bytes of them (by the sizes the listing
/// reports), so memory is bounded by the mails, not the window: one mail
/// is always let in, however large.
pub const BYTES_IN_FLIGHT: u64 = 64 * 1024 * 1024;
/// The Inbox is listed again once fewer listed mails than this wait to be
/// started, so the next page is there before the mails in flight are done.
const LIST_AHEAD_BELOW: usize = 2 * MAILS_IN_FLIGHT;
/// A mail whose size the listing does not report counts as this much.
const UNKNOWN_SIZE: u64 = 1024 * 1024;
/// After this many mails in a row left for retry the run stops: the
/// mailbox is failing, and every further mail would only count an attempt
/// against itself (and, at `max_attempts`, go to Error for an outage).
const FAILURES_IN_A_ROW: u32 = 3;
/// A progress line every this many mails.
const PROGRESS_EVERY: u64 = 50;
/// At most this many "where is this mail now" lookups per run: unconfirmed
/// moves are rare (a crash each), and a backlog must not slow every run.
pub const MAX_LOCATES_PER_RUN: usize = 100;

pub const TOO_LARGE: &str = "too_large";
pub const SINK_REJECTED: &str = "sink_rejected";
pub const UNSTORABLE: &str = "unstorable";
pub const RETRIES_EXHAUSTED: &str = "retries_exhausted";

/// The importer's lease, held by a run.
struct HeldLease {
    name: String,
    owner: String,
    renewed_at: std::sync::Mutex<Instant>,
}

impl HeldLease {
    /// Renewing every RENEW_LEASE_EVERY keeps a long run's lease alive
    /// without a database write per mail; a crashed run's lease expires
    /// within LEASE_SPAN, and a lease lost to another run is noticed here.
    async fn renew_if_due<M: Mailbox>(&self, run: &ImportRun<'_, M>) -> Result<(), ImportError> {
        {
            let renewed_at = self.renewed_at.lock().unwrap_or_else(|p| p.into_inner());
            if renewed_at.elapsed() < RENEW_LEASE_EVERY {
                return Ok(());
            }
        }
        let now = run.clock.now();
        if !run
            .store
            .try_acquire_lease(&self.name, &self.owner, now + LEASE_SPAN, now)
            .await?
        {
            return Err(ImportError::LeaseLost);
        }
        *self.renewed_at.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        Ok(())
    }
}

/// An Inbox listing under way.
type Listing<'a> = Pin<Box<dyn Future<Output = Result<MessagePage, MailboxError>> + Send + 'a>>;

/// What a run waits for: a listing, or a mail's outcome.
enum Event {
    Listed(Result<MessagePage, MailboxError>),
    Worked((MessageSummary, Result<ImportOutcome, ImportError>)),
}

/// The run's newest Inbox listing.
struct Listed {
    next: Option<PageCursor>,
    /// Whether it brought mails this run had not tried yet.
    fresh: bool,
    /// Mails the run had moved out of the Inbox when it was asked for.
    moves_at: u64,
}

impl Listed {
    /// Where the next listing starts (`Some(None)`: the top), or `None` when
    /// the Inbox is done. Moving mail out of the Inbox shifts offset-based
    /// pages, so after any move since this listing was asked for, the next
    /// one starts at the top (unless `stable`: the mailbox's cursors survive
    /// moves); mails already tried are not tried again.
    fn following(&self, moved: u64, stable: bool) -> Option<Option<PageCursor>> {
        if moved > self.moves_at && !stable {
            Some(None)
        } else {
            self.next.clone().map(Some)
        }
    }
}

/// The next mail to start, unless the one at the front must wait: it shares
/// a Message-ID with a mail in flight, or would take the bytes in flight
/// over BYTES_IN_FLIGHT (one mail is always let in, however large).
fn pop_startable(
    queue: &mut VecDeque<MessageSummary>,
    busy_ids: &HashSet<Option<String>>,
    nothing_in_flight: bool,
    bytes_in_flight: u64,
) -> Option<MessageSummary> {
    let front = queue.front()?;
    let fits = nothing_in_flight
        || bytes_in_flight + front.size.unwrap_or(UNKNOWN_SIZE) <= BYTES_IN_FLIGHT;
    if busy_ids.contains(&front.internet_message_id) || !fits {
        return None;
    }
    queue.pop_front()
}

/// What one run needs.
pub struct ImportRun<'a, M: Mailbox> {
    pub store: &'a Store,
    pub clock: &'a dyn Clock,
    pub mailbox: &'a M,
    pub importer: &'a ImporterRecord,
    /// The client's name (the spool's `{client}` folder).
    pub client_name: &'a str,
    pub sink: &'a dyn DocumentSink,
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
    /// Mails left in the Inbox for the next run, each as log lines name
    /// it (subject, sender and id), with why.
    pub left_for_retry: Vec<(String, String)>,
    pub bytes: u64,
    pub stopped_early: bool,
    /// Why the run stopped before the end of the Inbox (the sink or the
    /// mailbox failing for several mails in a row); the rest wait.
    pub stopped_because: Option<String>,
}

impl Summary {
    pub fn line(&self) -> String {
        SummaryCounts {
            imported: self.imported,
            completed_from_earlier_run: self.completed_from_earlier_run,
            moves_confirmed: self.moves_confirmed,
            to_error: &self.to_error,
            left_for_retry: u64::try_from(self.left_for_retry.len()).unwrap_or(u64::MAX),
            stopped_early: self.stopped_early,
            stopped_because: self.stopped_because.as_deref(),
        }
        .line()
    }
}

/// A [`Summary`]'s numbers without the retry reasons: what a recorded run
/// keeps, and all its summary line needs.
#[derive(Debug, Clone, Copy)]
pub struct SummaryCounts<'a> {
    pub imported: u64,
    pub completed_from_earlier_run: u64,
    pub moves_confirmed: u64,
    pub to_error: &'a BTreeMap<String, u64>,
    pub left_for_retry: u64,
    pub stopped_early: bool,
    pub stopped_because: Option<&'a str>,
}

impl SummaryCounts<'_> {
    /// `imported 3, to Error 1 (unparsable: 1), left for retry 0`, and what
    /// else happened.
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
            self.left_for_retry
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
        if let Some(why) = self.stopped_because {
            s.push_str(&format!(
                " (stopped early: {why}; the other mails wait for the next run)"
            ));
        }
        s
    }
}

/// Why a run could not work (no mail was touched, or it stopped).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}; no mail was touched")]
    Folders(String),
    #[error(
        "another run is importing from this mailbox ({0}), for this importer or another one of the same mailbox; this run did nothing: wait for it to finish"
    )]
    Busy(String),
    #[error(
        "this run lost its lease on the importer (it stalled past the lease, or the clocks of two instances disagree) and stopped; nothing is lost: the next run continues"
    )]
    LeaseLost,
    #[error("the mailbox cannot be used: {0}")]
    Mailbox(MailboxError),
    #[error("{0}")]
    Sink(String),
    #[error("{0}")]
    Store(#[from] store::StoreError),
    #[error(
        "reading a mail stopped unexpectedly ({0}); the mail stays in the Inbox for the next run. If this repeats, report it with the mail"
    )]
    Parser(String),
}

/// What the pipeline makes of a mail found in the Inbox. One decision,
/// made by [`ImportRun::assess`]: the run acts on it, the dry run shows it.
#[derive(Debug)]
pub enum Verdict {
    /// Decided before: an interrupted run imported it (or sent it towards
    /// Error), or it is the same mail under another id. It is moved where
    /// the ledger row says, with no second document.
    AlreadyDecided {
        entry: Box<LedgerEntry>,
        /// The row is another id's: a row for this id is recorded first.
        under_another_id: bool,
    },
    /// It becomes a document.
    Import(Box<Fetched>),
    /// It goes to Error with the reason; `None` when it was decided without
    /// a download (`too_large` from the reported size).
    ToError {
        reason: Reason,
        mail: Option<Box<Fetched>>,
    },
    /// It left the Inbox between the listing and its download (someone
    /// moved or deleted it): nothing to do, nothing to record.
    Gone(String),
    /// A transient failure: it stays in the Inbox for the next run, unless
    /// this was its last attempt (see [`retries_exhausted`]).
    Retry {
        why: String,
        /// Runs that already failed for this mail.
        attempts_before: u32,
    },
}

/// A downloaded mail and what its MIME says.
#[derive(Debug)]
pub struct Fetched {
    pub raw: Bytes,
    pub mime_sha256: String,
    pub internet_message_id: Option<String>,
    pub analysis: Analysis,
}

/// The dry run's name for a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Import,
    Error,
    AlreadyImported,
    AlreadyError,
    Retry,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Import => "import",
            Self::Error => "error",
            Self::AlreadyImported => "already_imported",
            Self::AlreadyError => "already_error",
            Self::Retry => "retry",
        }
    }
}

/// What each Inbox mail would become (dry run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prediction {
    pub message_id: String,
    pub internet_message_id: Option<String>,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub received_at: Option<jiff::Timestamp>,
    pub outcome: Outcome,
    /// Reason code for `error`/`already_error`, or why a retry.
    pub reason: Option<String>,
    pub detail: Option<String>,
    /// Files the document would have.
    pub attachments: Vec<String>,
    /// Parts left out, with why.
    pub skipped: Vec<String>,
}

/// What became of one mail in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    Imported {
        bytes: u64,
    },
    /// Moved on as an earlier run decided, no new document.
    Completed,
    /// Moved to Error, with the reason code.
    MovedToError(String),
    LeftForRetry(String),
    /// It left the Inbox before it could be fetched.
    Skipped(String),
    /// The sink could not take its document for now; the run stops.
    SinkUnavailable(String),
}

/// The reason to give up on a mail whose import failed transiently in
/// `attempts` runs (this one included), or `None` to try again next run.
pub fn retries_exhausted(attempts: u32, limits: &ImportLimits, why: &str) -> Option<Reason> {
    (attempts >= limits.max_attempts).then(|| {
        Reason::new(
            RETRIES_EXHAUSTED,
            format!(
                "the import failed in {attempts} runs (max_attempts {}); last error: {why}. Fix the cause, then reprocess the mail",
                limits.max_attempts
            ),
        )
    })
}

fn too_large(size: u64, limits: &ImportLimits) -> Option<Reason> {
    (size > limits.max_mail_bytes).then(|| {
        Reason::new(
            TOO_LARGE,
            format!(
                "the mail has {size} bytes, more than max_mail_bytes ({}); raise max_mail_bytes on the importer and reprocess it to import it",
                limits.max_mail_bytes
            ),
        )
    })
}

/// Whether a ledger row records this very mail: the same content, or for
/// rows from before content fingerprints, the same MIME.
fn is_same_mail(entry: &LedgerEntry, content_sha256: &str, mime_sha256: &str) -> bool {
    match &entry.content_sha256 {
        Some(c) => c == content_sha256,
        None => entry.mime_sha256.as_deref() == Some(mime_sha256),
    }
}

impl<M: Mailbox> ImportRun<'_, M> {
    /// Imports every mail of the Inbox once.
    pub async fn run(&self) -> Result<Summary, ImportError> {
        let owner = crate::lease::owner_name();
        let lease = crate::lease::lease_name(self.store, self.importer).await?;
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
                return Err(ImportError::Busy(holder));
            }
            (self.log)(format!(
                "took over the lease of an ended run ({holder}); its unfinished mails are completed now"
            ));
        }
        let held = HeldLease {
            name: lease.clone(),
            owner: owner.clone(),
            renewed_at: std::sync::Mutex::new(Instant::now()),
        };
        let result = self.run_leased(&held).await;
        // Released even after a failure; a crash lets it expire instead.
        let _ = self.store.release_lease(&lease, &owner).await;
        result
    }

    async fn run_leased(&self, lease: &HeldLease) -> Result<Summary, ImportError> {
        let folders = resolve(self.mailbox, self.importer).await;
        // Whether the account may open the mailbox is known now: a grant
        // reported `mailbox_denied` at sign-in becomes `authorized` once an
        // Exchange admin grants access, and the other way round.
        let access = match &folders {
            Err(ImportError::Mailbox(e)) if e.kind == MailboxErrorKind::Permission => {
                Some(Err(e.to_string()))
            }
            Ok(_) => Some(Ok(())),
            Err(_) => None,
        };
        // Only a delegated grant has a mailbox state to keep.
        if let Some(access) = access
            && self.importer.settings.delegated_access().is_some()
        {
            self.store
                .set_grant_mailbox_access(&self.importer.id, access, self.clock.now())
                .await?;
        }
        let folders = folders?;
        (self.log)(format!(
            "folders: Inbox `{}`, Exported `{}`, Error `{}`",
            folders.inbox.path, folders.exported.path, folders.error.path
        ));
        // Read once there is a mail to weigh: most runs find the Inbox empty.
        let keys: OnceLock<ContentKeys> = OnceLock::new();
        let mut summary = Summary::default();
        let mut tried: HashSet<String> = HashSet::new();
        let mut handled = 0u64;
        let mut failed_in_a_row = 0u32;
        // Mails worked at once: from one, doubled with each success up to
        // MAILS_IN_FLIGHT, back to one after a failure. A mailbox or sink
        // that is down then costs one mail, not a window of them.
        let mut window = 1usize;
        // Listed mails not started yet, oldest first.
        let mut queue: VecDeque<MessageSummary> = VecDeque::new();
        let mut in_flight = FuturesOrdered::new();
        // Message-IDs of the mails in flight: two Inbox mails with one
        // Message-ID may be one mail twice, which the second may only
        // learn from the first's ledger row, so they go one at a time.
        let mut busy_ids: HashSet<Option<String>> = HashSet::new();
        let mut bytes_in_flight = 0u64;
        let mut moved = 0u64;
        let mut last: Option<Listed> = None;
        let mut listing: Option<(Listing<'_>, u64)> = None;
        let mut listing_failed = false;
        let stable = self.mailbox.cursor_survives_moves();
        let mut stop: Option<String> = None;
        let mut failure: Option<ImportError> = None;
        loop {
            let working = stop.is_none() && failure.is_none();
            while working && in_flight.len() < window {
                let Some(msg) =
                    pop_startable(&mut queue, &busy_ids, in_flight.is_empty(), bytes_in_flight)
                else {
                    break;
                };
                if (self.should_stop)() {
                    summary.stopped_early = true;
                    stop = Some(String::new());
                    queue.push_front(msg);
                    break;
                }
                if let Err(e) = lease.renew_if_due(self).await {
                    failure = Some(e);
                    queue.push_front(msg);
                    break;
                }
                busy_ids.insert(msg.internet_message_id.clone());
                bytes_in_flight += msg.size.unwrap_or(UNKNOWN_SIZE);
                let folders = &folders;
                let Some(keys) = keys.get() else {
                    return Err(ImportError::Store(store::StoreError::Corrupt(
                        "a listed mail without the importer's content keys".to_owned(),
                    )));
                };
                in_flight.push_back(async move {
                    let started = Instant::now();
                    let outcome = self.import_one(&msg, folders, keys).await;
                    metrics::histogram!("mailferry_import_mail_seconds")
                        .record(started.elapsed().as_secs_f64());
                    (msg, outcome)
                });
            }
            let working = stop.is_none() && failure.is_none() && !listing_failed;
            if working && listing.is_none() {
                let idle = in_flight.is_empty() && queue.is_empty();
                let start = match &last {
                    None => Some(None),
                    // Everything listed is worked: list on, or the Inbox is done.
                    Some(l) if idle => l.following(moved, stable),
                    // Listed ahead while the last mails are worked, so the
                    // requests in flight never wait for a listing.
                    Some(l) if queue.len() < LIST_AHEAD_BELOW && l.fresh && l.next.is_some() => {
                        l.following(moved, stable)
                    }
                    Some(_) => None,
                };
                if let Some(cursor) = start {
                    let mailbox = self.mailbox;
                    let inbox = folders.inbox.id.as_str();
                    let list: Listing<'_> =
                        Box::pin(
                            async move { mailbox.list_messages(inbox, cursor.as_ref()).await },
                        );
                    listing = Some((list, moved));
                }
            }
            let event = match (&mut listing, in_flight.is_empty()) {
                (None, true) => break,
                (None, false) => in_flight.next().await.map(Event::Worked),
                (Some((list, _)), true) => Some(Event::Listed(list.await)),
                (Some((list, _)), false) => {
                    match future::select(in_flight.next(), list.as_mut()).await {
                        Either::Left((worked, _)) => worked.map(Event::Worked),
                        Either::Right((page, _)) => Some(Event::Listed(page)),
                    }
                }
            };
            match event {
                None => {}
                Some(Event::Listed(page)) => {
                    let moves_at = listing.take().map_or(moved, |(_, at)| at);
                    match page {
                        Ok(page) => {
                            let before = queue.len();
                            queue.extend(
                                page.messages
                                    .into_iter()
                                    .filter(|m| tried.insert(m.id.clone())),
                            );
                            let fresh = queue.len() > before;
                            if fresh && keys.get().is_none() {
                                let loaded = content_keys(self.store, self.importer).await?;
                                let _ = keys.set(loaded);
                            }
                            last = Some(Listed {
                                next: page.next,
                                fresh,
                                moves_at,
                            });
                        }
                        Err(e) if e.is_transient() => {
                            summary
                                .left_for_retry
                                .push(("the Inbox's listing".to_owned(), e.to_string()));
                            listing_failed = true;
                        }
                        Err(e) => {
                            failure.get_or_insert(ImportError::Mailbox(e));
                        }
                    }
                }
                // Mails in flight are finished even when the run stops:
                // dropping them would only turn a clean stop into a crash.
                Some(Event::Worked((msg, outcome))) => {
                    busy_ids.remove(&msg.internet_message_id);
                    bytes_in_flight -= msg.size.unwrap_or(UNKNOWN_SIZE);
                    let outcome = match outcome {
                        Ok(outcome) => outcome,
                        Err(e) => {
                            failure.get_or_insert(e);
                            continue;
                        }
                    };
                    if matches!(
                        outcome,
                        ImportOutcome::Imported { .. }
                            | ImportOutcome::Completed
                            | ImportOutcome::MovedToError(_)
                    ) {
                        moved += 1;
                    }
                    failed_in_a_row = match &outcome {
                        ImportOutcome::LeftForRetry(_) => failed_in_a_row + 1,
                        _ => 0,
                    };
                    window = match &outcome {
                        ImportOutcome::LeftForRetry(_) | ImportOutcome::SinkUnavailable(_) => 1,
                        _ => (window * 2).min(MAILS_IN_FLIGHT),
                    };
                    if stop.is_none() {
                        if let ImportOutcome::SinkUnavailable(why) = &outcome {
                            stop = Some(format!("the sink is unavailable ({why})"));
                        } else if failed_in_a_row >= FAILURES_IN_A_ROW {
                            stop = Some(format!(
                                "{FAILURES_IN_A_ROW} mails in a row could not be worked (the mailbox seems unavailable)"
                            ));
                        }
                    }
                    summary.count(&msg, outcome, self.log);
                    handled += 1;
                    if handled.is_multiple_of(PROGRESS_EVERY) {
                        (self.log)(format!("progress: {handled} mails, {}", summary.line()));
                    }
                }
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if summary.stopped_early {
            return Ok(summary);
        }
        if let Some(why) = stop {
            (self.log)(format!(
                "stopped this run: {why}; the other mails wait for the next run"
            ));
            summary.stopped_because = Some(why);
        }
        self.confirm_unrecorded_moves(&folders, &tried, lease, &mut summary)
            .await?;
        Ok(summary)
    }

    /// Decides what `msg` becomes, reading the ledger and the mailbox and
    /// changing neither.
    async fn import_one(
        &self,
        msg: &MessageSummary,
        folders: &ResolvedFolders,
        keys: &ContentKeys,
    ) -> Result<ImportOutcome, ImportError> {
        let verdict = assess(self.store, self.mailbox, self.importer, keys, msg).await?;
        if matches!(
            verdict,
            Verdict::Import(_) | Verdict::ToError { mail: Some(_), .. }
        ) {
            failpoint::hit("after_fetch");
        }
        match verdict {
            Verdict::AlreadyDecided {
                entry,
                under_another_id,
            } => {
                let entry = if under_another_id {
                    // Unfinished until this mail's own move is done.
                    let state = if entry.document_id.is_some()
                        && matches!(entry.state, LedgerState::Stored | LedgerState::Moved)
                    {
                        LedgerState::Stored
                    } else {
                        LedgerState::ToError
                    };
                    let mine = LedgerEntry {
                        source_key: msg.id.clone(),
                        mail_id: LedgerEntry::new_mail_id(),
                        state,
                        created_at: self.clock.now(),
                        updated_at: self.clock.now(),
                        ..*entry
                    };
                    self.store.record_ledger(&mine).await?;
                    mine
                } else {
                    *entry
                };
                self.finish_decided(msg, &entry, folders).await
            }
            Verdict::Gone(why) => Ok(ImportOutcome::Skipped(why)),
            Verdict::Retry { why, .. } => self.retry_or_give_up(msg, None, why, folders).await,
            Verdict::ToError { reason, mail } => {
                self.send_to_error(msg, mail.as_deref(), &reason, 0, folders)
                    .await
            }
            Verdict::Import(mail) => self.import_document(msg, &mail, folders).await,
        }
    }

    async fn import_document(
        &self,
        msg: &MessageSummary,
        mail: &Fetched,
        folders: &ResolvedFolders,
    ) -> Result<ImportOutcome, ImportError> {
        let Decision::Import { attachments } = &mail.analysis.decision else {
            return Err(ImportError::Store(store::StoreError::Corrupt(
                "a mail to import without attachments".to_owned(),
            )));
        };
        let importer_id = &self.importer.id;
        let doc_id = document_id(
            importer_id,
            mail.internet_message_id.as_deref(),
            &mail.analysis.content_sha256,
        );
        let doc = self.document(msg, mail, &doc_id, attachments);
        let stored = match self.sink.store(&doc).await {
            Ok(s) => s,
            Err(e) => {
                let code = match e.kind {
                    // Not this mail's fault: no attempt is counted against
                    // it, and the run stops instead of failing every mail.
                    SinkErrorKind::Transient => {
                        return Ok(ImportOutcome::SinkUnavailable(e.message));
                    }
                    SinkErrorKind::Misconfigured => return Err(ImportError::Sink(e.message)),
                    SinkErrorKind::Rejected => SINK_REJECTED,
                    SinkErrorKind::Unstorable => UNSTORABLE,
                };
                let reason = Reason::new(code, e.message);
                return self
                    .send_to_error(msg, Some(mail), &reason, 0, folders)
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
            .record_ledger(&LedgerEntry {
                document_id: Some(doc_id),
                ..self.ledger_entry(msg, Some(mail), LedgerState::Stored)
            })
            .await?;
        failpoint::hit("after_ledger");
        self.clear_stale_mark(msg).await?;
        if let Err(why) = self.move_to(msg, &folders.exported.id).await? {
            return Ok(ImportOutcome::LeftForRetry(format!(
                "document stored, move to Exported failed: {why}"
            )));
        }
        failpoint::hit("after_move");
        self.store
            .set_ledger_state(importer_id, &msg.id, LedgerState::Moved, self.clock.now())
            .await?;
        (self.log)(format!(
            "imported {} → document {} ({} attachments)",
            describe(msg),
            doc.metadata.document_id,
            doc.files.len()
        ));
        // A document already there was written by an interrupted run.
        if stored.already_present {
            return Ok(ImportOutcome::Completed);
        }
        Ok(ImportOutcome::Imported {
            bytes: doc.total_bytes(),
        })
    }

    fn document(
        &self,
        msg: &MessageSummary,
        mail: &Fetched,
        doc_id: &str,
        attachments: &[Extracted],
    ) -> Document {
        let settings = &self.importer.settings;
        let facts = &mail.analysis.facts;
        let metadata = DocumentMetadata {
            document_id: doc_id.to_owned(),
            client: self.client_name.to_owned(),
            importer_id: self.importer.id.clone(),
            source: DocumentSource {
                protocol: settings.protocol.as_str().to_owned(),
                mailbox: settings.source_mailbox(),
                message_id: msg.id.clone(),
                internet_message_id: mail.internet_message_id.clone(),
            },
            subject: facts.subject.clone().or_else(|| msg.subject.clone()),
            from: facts.from.clone().or_else(|| msg.from.clone()),
            to: facts.to.clone(),
            received_at: msg.received_at.or(facts.date),
            imported_at: self.clock.now(),
            attachments: Vec::new(),
            smime: mail.analysis.smime.clone(),
        };
        let parts = attachments
            .iter()
            .map(|a| NewAttachment {
                filename: a.filename.clone(),
                fallback_name: a.fallback_name.clone(),
                content_type: a.content_type.clone(),
                bytes: a.bytes.clone(),
            })
            .collect();
        Document::new(metadata, mail.raw.clone(), parts)
    }

    /// Counts a run in which `msg` failed transiently; at the importer's
    /// `max_attempts` it goes to Error instead of being fetched for ever.
    async fn retry_or_give_up(
        &self,
        msg: &MessageSummary,
        mail: Option<&Fetched>,
        why: String,
        folders: &ResolvedFolders,
    ) -> Result<ImportOutcome, ImportError> {
        let entry = self.ledger_entry(msg, mail, LedgerState::Pending);
        let attempts = self.store.record_attempt(&entry, &why).await?;
        match retries_exhausted(attempts, &self.importer.settings.limits, &why) {
            Some(reason) => {
                self.send_to_error(msg, mail, &reason, attempts, folders)
                    .await
            }
            None => Ok(ImportOutcome::LeftForRetry(why)),
        }
    }

    /// The ledger row for `msg` in `state`, without a document, reason or
    /// attempts: callers add theirs with `..self.ledger_entry(…)`.
    fn ledger_entry(
        &self,
        msg: &MessageSummary,
        mail: Option<&Fetched>,
        state: LedgerState,
    ) -> LedgerEntry {
        let now = self.clock.now();
        let facts = mail.map(|m| &m.analysis.facts);
        LedgerEntry {
            importer_id: self.importer.id.clone(),
            source_key: msg.id.clone(),
            // A row recorded again keeps the id it has.
            mail_id: LedgerEntry::new_mail_id(),
            internet_message_id: mail
                .and_then(|m| m.internet_message_id.clone())
                .or_else(|| msg.internet_message_id.clone()),
            mime_sha256: mail.map(|m| m.mime_sha256.clone()),
            content_sha256: mail.map(|m| m.analysis.content_sha256.clone()),
            document_id: None,
            state,
            reason: None,
            subject: facts
                .and_then(|f| f.subject.clone())
                .or_else(|| msg.subject.clone()),
            sender: facts
                .and_then(|f| f.from.clone())
                .or_else(|| msg.from.clone()),
            received_at: msg.received_at.or_else(|| facts.and_then(|f| f.date)),
            attempts: 0,
            last_error: None,
            created_at: now,
            updated_at: now,
        }
    }

    async fn move_to(
        &self,
        msg: &MessageSummary,
        folder_id: &str,
    ) -> Result<Result<(), String>, ImportError> {
        match self.mailbox.move_message(&msg.id, folder_id).await {
            Ok(_) => Ok(Ok(())),
            Err(e) if is_run_stopping(&e) => Err(ImportError::Mailbox(e)),
            Err(e) => Ok(Err(e.to_string())),
        }
    }

    /// Shows the reason on the mail before it moves (an IMAP keyword does
    /// not survive a move made without it), or with `None` removes it. The
    /// mark is a courtesy: when it cannot be set the mail still moves, and
    /// the log says so.
    async fn set_mark(&self, msg: &MessageSummary, code: Option<&str>) -> Result<(), ImportError> {
        match self.mailbox.mark_error_reason(&msg.id, code).await {
            Ok(()) => Ok(()),
            Err(e) if is_run_stopping(&e) => Err(ImportError::Mailbox(e)),
            Err(e) => {
                let what = code.map_or("remove the Error mark of".to_owned(), |c| {
                    format!("mark with its reason `{c}`")
                });
                (self.log)(format!("could not {what} {}: {e}", describe(msg)));
                Ok(())
            }
        }
    }

    /// A mail an admin moved back from Error still says why it was there;
    /// once it is imported that would be wrong, so the mark goes first.
    async fn clear_stale_mark(&self, msg: &MessageSummary) -> Result<(), ImportError> {
        if msg.error_mark {
            self.set_mark(msg, None).await?;
        }
        Ok(())
    }

    async fn send_to_error(
        &self,
        msg: &MessageSummary,
        mail: Option<&Fetched>,
        reason: &Reason,
        attempts: u32,
        folders: &ResolvedFolders,
    ) -> Result<ImportOutcome, ImportError> {
        self.store
            .record_ledger(&LedgerEntry {
                reason: Some(reason.to_line()),
                attempts,
                ..self.ledger_entry(msg, mail, LedgerState::ToError)
            })
            .await?;
        failpoint::hit("after_error_ledger");
        self.set_mark(msg, Some(&reason.code)).await?;
        if let Err(why) = self.move_to(msg, &folders.error.id).await? {
            return Ok(ImportOutcome::LeftForRetry(format!(
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
        (self.log)(format!("to Error {}: {}", describe(msg), reason.to_line()));
        Ok(ImportOutcome::MovedToError(reason.code.clone()))
    }

    /// A mail already decided (by an interrupted run, or under another id):
    /// move it where the ledger says, without a second document.
    async fn finish_decided(
        &self,
        msg: &MessageSummary,
        entry: &LedgerEntry,
        folders: &ResolvedFolders,
    ) -> Result<ImportOutcome, ImportError> {
        let (target, done, outcome) = match entry.state {
            LedgerState::Stored | LedgerState::Moved if entry.document_id.is_some() => {
                self.clear_stale_mark(msg).await?;
                (
                    &folders.exported.id,
                    LedgerState::Moved,
                    ImportOutcome::Completed,
                )
            }
            _ => {
                let code = entry
                    .reason_parts()
                    .map_or("unknown", |(code, _)| code)
                    .to_owned();
                self.set_mark(msg, Some(&code)).await?;
                (
                    &folders.error.id,
                    LedgerState::MovedToError,
                    ImportOutcome::MovedToError(code),
                )
            }
        };
        if let Err(why) = self.move_to(msg, target).await? {
            return Ok(ImportOutcome::LeftForRetry(why));
        }
        self.store
            .set_ledger_state(&self.importer.id, &msg.id, done, self.clock.now())
            .await?;
        Ok(outcome)
    }

    /// Finishes rows left `stored` / `to_error` by a crash after their move:
    /// the mail is no longer in the Inbox, so the loop above never sees it.
    /// A row is advanced only when the mail sits in the folder the row's
    /// state leads to; mails in the Inbox are the loop's next run's work.
    async fn confirm_unrecorded_moves(
        &self,
        folders: &ResolvedFolders,
        seen_in_inbox: &HashSet<String>,
        lease: &HeldLease,
        summary: &mut Summary,
    ) -> Result<(), ImportError> {
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
            lease.renew_if_due(self).await?;
            let key = &entry.source_key;
            let state = entry.state.as_str();
            let candidates = [
                folders.exported.id.as_str(),
                folders.error.id.as_str(),
                folders.inbox.id.as_str(),
            ];
            let hint = LocateHint {
                internet_message_id: entry.internet_message_id.as_deref(),
                folders: &candidates,
            };
            let folder = match self.mailbox.locate_message(key, &hint).await {
                Ok(MessageLocation::Folder { folder, .. }) => folder,
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

    /// What each Inbox mail would become, touching nothing (no move, no
    /// document, no ledger row, no lease).
    pub async fn dry_run(&self) -> Result<Vec<Prediction>, ImportError> {
        DryRun {
            store: self.store,
            mailbox: self.mailbox,
            importer: self.importer,
        }
        .run()
        .await
    }
}

impl Summary {
    fn count(
        &mut self,
        msg: &MessageSummary,
        outcome: ImportOutcome,
        log: &(dyn Fn(String) + Send + Sync),
    ) {
        let label = match &outcome {
            ImportOutcome::Imported { .. } => "imported",
            ImportOutcome::Completed => "completed",
            ImportOutcome::MovedToError(_) => "error",
            ImportOutcome::LeftForRetry(_) => "retry",
            ImportOutcome::Skipped(_) => "skipped",
            ImportOutcome::SinkUnavailable(_) => "retry",
        };
        metrics::counter!("mailferry_import_mails_total", "outcome" => label).increment(1);
        match outcome {
            ImportOutcome::Imported { bytes } => {
                self.imported += 1;
                self.bytes += bytes;
                metrics::counter!("mailferry_import_bytes_total").increment(bytes);
            }
            ImportOutcome::Completed => self.completed_from_earlier_run += 1,
            ImportOutcome::MovedToError(code) => *self.to_error.entry(code).or_default() += 1,
            ImportOutcome::LeftForRetry(why) => {
                log(format!(
                    "left in the Inbox for the next run: {} ({why})",
                    describe(msg)
                ));
                self.left_for_retry.push((describe(msg), why));
            }
            ImportOutcome::Skipped(why) => {
                log(format!("skipped {}: {why}", describe(msg)));
            }
            ImportOutcome::SinkUnavailable(why) => {
                self.left_for_retry.push((describe(msg), why));
            }
        }
    }
}

/// A mail as log lines name it: its subject and sender, and its id.
fn describe(msg: &MessageSummary) -> String {
    format!(
        "{} from {} ({})",
        msg.subject
            .as_deref()
            .map_or("(no subject)".to_owned(), |s| format!("“{s}”")),
        msg.from.as_deref().unwrap_or("(unknown sender)"),
        msg.id
    )
}

/// Resolves the importer's three folders; a problem stops the run before
/// any mail is touched.
pub async fn resolve<M: Mailbox>(
    mailbox: &M,
    importer: &ImporterRecord,
) -> Result<ResolvedFolders, ImportError> {
    let tree = mailbox
        .folder_tree(true)
        .await
        .map_err(ImportError::Mailbox)?;
    resolve_folders(&tree, &importer.settings.folders)
        .map_err(|e| ImportError::Folders(e.to_string()))
}

/// The one decision about a mail: see [`Verdict`]. Reads the ledger and
/// the mailbox, changes neither.
/// Parses and weighs `raw` on a blocking thread (a 100 MB mail takes a
/// second of CPU), returning its analysis and its MIME fingerprint.
async fn analyze_blocking(
    raw: &Bytes,
    settings: &ImporterSettings,
    keys: &ContentKeys,
) -> Result<(Analysis, String), ImportError> {
    let raw = raw.clone();
    let settings = settings.clone();
    let keys = keys.clone();
    tokio::task::spawn_blocking(move || {
        let analysis = analyze_with(&raw, &Policy::of(&settings, &keys));
        (analysis, mime_sha256(&raw))
    })
    .await
    .map_err(|e| ImportError::Parser(e.to_string()))
}

pub async fn assess<M: Mailbox>(
    store: &Store,
    mailbox: &M,
    importer: &ImporterRecord,
    keys: &ContentKeys,
    msg: &MessageSummary,
) -> Result<Verdict, ImportError> {
    let limits = &importer.settings.limits;
    let own = store.ledger_entry(&importer.id, &msg.id).await?;
    if let Some(entry) = &own {
        match entry.state {
            LedgerState::Stored | LedgerState::Moved | LedgerState::ToError => {
                return Ok(Verdict::AlreadyDecided {
                    entry: Box::new(entry.clone()),
                    under_another_id: false,
                });
            }
            // Undecided, or in Error and found in the Inbox again: an admin
            // moved it back to have it decided afresh.
            LedgerState::Pending | LedgerState::MovedToError => {}
        }
    }
    let attempts_before = own
        .as_ref()
        .filter(|e| e.state == LedgerState::Pending)
        .map_or(0, |e| e.attempts);
    if let Some(reason) = msg.size.and_then(|size| too_large(size, limits)) {
        return Ok(Verdict::ToError { reason, mail: None });
    }
    let raw: Bytes = match mailbox.fetch_mime(&msg.id).await {
        Ok(raw) => Bytes::from(raw),
        Err(e) if is_run_stopping(&e) => return Err(ImportError::Mailbox(e)),
        // Moved or deleted since it was listed: not this run's mail any more.
        Err(e) if e.kind == MailboxErrorKind::NotFound => return Ok(Verdict::Gone(e.to_string())),
        Err(e) => {
            return Ok(Verdict::Retry {
                why: e.to_string(),
                attempts_before,
            });
        }
    };
    // The size a mailbox does not report is known now.
    if let Some(reason) = too_large(raw.len() as u64, limits) {
        return Ok(Verdict::ToError { reason, mail: None });
    }
    let (analysis, mime_sha256) = analyze_blocking(&raw, &importer.settings, keys).await?;
    let imid = analysis
        .facts
        .internet_message_id
        .clone()
        .or_else(|| msg.internet_message_id.clone());
    let mail = Box::new(Fetched {
        mime_sha256,
        raw,
        internet_message_id: usable_message_id(imid.as_deref()).map(str::to_owned),
        analysis,
    });
    // The same mail under another id (moved out and back, id changed,
    // re-rendered): same Message-ID and same content. Another mail that
    // reuses the Message-ID has other content and is imported on its own.
    let earlier = store
        .ledger_entries_for_mail(
            &importer.id,
            mail.internet_message_id.as_deref(),
            &mail.analysis.content_sha256,
            &mail.mime_sha256,
        )
        .await?
        .into_iter()
        .find(|e| {
            e.source_key != msg.id
                && is_same_mail(e, &mail.analysis.content_sha256, &mail.mime_sha256)
        });
    if let Some(entry) = earlier.filter(|e| {
        matches!(
            e.state,
            LedgerState::Stored | LedgerState::Moved | LedgerState::ToError
        )
    }) {
        return Ok(Verdict::AlreadyDecided {
            entry: Box::new(entry),
            under_another_id: true,
        });
    }
    Ok(match &mail.analysis.decision {
        Decision::Import { .. } => Verdict::Import(mail),
        Decision::ToError { reason } => Verdict::ToError {
            reason: reason.clone(),
            mail: Some(mail),
        },
    })
}

/// The importer's ZIP passwords and S/MIME key, opened once per run.
async fn content_keys(
    store: &Store,
    importer: &ImporterRecord,
) -> Result<ContentKeys, ImportError> {
    Ok(store
        .content_keys(&importer.client_id, &importer.id)
        .await?)
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
    pub async fn run(&self) -> Result<Vec<Prediction>, ImportError> {
        let folders = resolve(self.mailbox, self.importer).await?;
        let keys = content_keys(self.store, self.importer).await?;
        let mut out = Vec::new();
        let mut cursor: Option<PageCursor> = None;
        loop {
            let page = self
                .mailbox
                .list_messages(&folders.inbox.id, cursor.as_ref())
                .await
                .map_err(ImportError::Mailbox)?;
            for msg in &page.messages {
                let verdict = assess(self.store, self.mailbox, self.importer, &keys, msg).await?;
                out.push(self.predict(msg, verdict));
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(out)
    }

    fn predict(&self, msg: &MessageSummary, verdict: Verdict) -> Prediction {
        let mut p = Prediction {
            message_id: msg.id.clone(),
            internet_message_id: msg.internet_message_id.clone(),
            subject: msg.subject.clone(),
            from: msg.from.clone(),
            received_at: msg.received_at,
            outcome: Outcome::Retry,
            reason: None,
            detail: None,
            attachments: Vec::new(),
            skipped: Vec::new(),
        };
        let facts_of = |mail: &Fetched, p: &mut Prediction| {
            let facts = &mail.analysis.facts;
            p.subject = facts.subject.clone().or(p.subject.take());
            p.from = facts.from.clone().or(p.from.take());
            p.internet_message_id = mail.internet_message_id.clone();
            p.skipped = mail
                .analysis
                .skipped
                .iter()
                .map(|s| format!("{}: {}", s.name, s.why))
                .collect();
        };
        match verdict {
            Verdict::AlreadyDecided { entry, .. } => {
                let imported = matches!(entry.state, LedgerState::Stored | LedgerState::Moved)
                    && entry.document_id.is_some();
                p.outcome = if imported {
                    Outcome::AlreadyImported
                } else {
                    Outcome::AlreadyError
                };
                p.reason = entry.reason.clone();
            }
            Verdict::Import(mail) => {
                facts_of(&mail, &mut p);
                p.outcome = Outcome::Import;
                if let Decision::Import { attachments } = &mail.analysis.decision {
                    p.attachments = sinks::filename::unique_names(
                        attachments
                            .iter()
                            .map(|x| x.filename.as_deref().unwrap_or(&x.fallback_name)),
                    );
                }
            }
            Verdict::ToError { reason, mail } => {
                if let Some(mail) = mail {
                    facts_of(&mail, &mut p);
                }
                p.outcome = Outcome::Error;
                p.reason = Some(reason.code);
                p.detail = Some(reason.detail);
            }
            Verdict::Gone(why) => p.reason = Some(why),
            Verdict::Retry {
                why,
                attempts_before,
            } => match retries_exhausted(attempts_before + 1, &self.importer.settings.limits, &why)
            {
                Some(reason) => {
                    p.outcome = Outcome::Error;
                    p.reason = Some(reason.code);
                    p.detail = Some(reason.detail);
                }
                None => p.reason = Some(why),
            },
        }
        p
    }
}

/// Errors after which no further mail can succeed in this run.
pub(crate) fn is_run_stopping(e: &MailboxError) -> bool {
    matches!(
        e.kind,
        MailboxErrorKind::Token
            | MailboxErrorKind::Permission
            | MailboxErrorKind::MailboxUnavailable
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(next: Option<&str>, moves_at: u64) -> Listed {
        Listed {
            next: next.map(|c| PageCursor(c.to_owned())),
            fresh: true,
            moves_at,
        }
    }

    #[test]
    fn after_a_move_offset_pages_are_listed_from_the_top_and_uid_pages_go_on() {
        let page = listed(Some("250"), 3);
        // Nothing moved since it was asked for: its next page is still right.
        assert_eq!(
            page.following(3, false),
            Some(Some(PageCursor("250".into())))
        );
        // A move shifted the offsets: start again at the top.
        assert_eq!(page.following(4, false), Some(None));
        // UIDs do not shift: go on after the last one listed.
        assert_eq!(
            page.following(4, true),
            Some(Some(PageCursor("250".into())))
        );
    }

    #[test]
    fn the_inbox_is_done_only_on_a_last_page_listed_with_nothing_moved_since() {
        let last = listed(None, 7);
        assert_eq!(last.following(7, false), None);
        assert_eq!(last.following(8, false), Some(None));
        assert_eq!(last.following(8, true), None);
    }

    fn summary(id: &str, imid: &str, size: u64) -> MessageSummary {
        MessageSummary {
            id: id.to_owned(),
            internet_message_id: Some(imid.to_owned()),
            received_at: None,
            subject: None,
            from: None,
            has_attachments: true,
            size: Some(size),
            error_mark: false,
        }
    }

    #[test]
    fn a_mail_waits_while_its_message_id_is_in_flight_or_its_bytes_do_not_fit() {
        let mut queue: VecDeque<MessageSummary> = [
            summary("a", "<1@x>", 10),
            summary("b", "<2@x>", BYTES_IN_FLIGHT),
        ]
        .into();
        let busy: HashSet<Option<String>> = [Some("<1@x>".to_owned())].into();
        assert!(pop_startable(&mut queue, &busy, false, 0).is_none());
        let free = HashSet::new();
        assert_eq!(
            pop_startable(&mut queue, &free, false, 0).map(|m| m.id),
            Some("a".to_owned())
        );
        // Over the byte budget with others in flight: it waits…
        assert!(pop_startable(&mut queue, &free, false, 10).is_none());
        // …but alone it always goes, however large.
        assert_eq!(
            pop_startable(&mut queue, &free, true, 0).map(|m| m.id),
            Some("b".to_owned())
        );
    }
}
