//! Reprocessing: an admin fixed why a mail went to Error (a rule, a size
//! limit, the webhook receiver) and wants it decided again. The mail goes
//! back to the Inbox without mailferry's mark, and its ledger row becomes
//! `pending`, so the next run decides it afresh with the importer's rules
//! as they are then. Each step is safe to repeat after a crash: a mail
//! found in the Inbox whose row still says Error is decided afresh too.

use domain::clock::Clock;
use domain::mailbox::{LocateHint, Mailbox, MailboxError, MessageLocation};
use store::Store;
use store::importers::ImporterRecord;
use store::ledger::{LedgerEntry, LedgerState};

use crate::pipeline::{ImportError, resolve};

#[derive(Debug, thiserror::Error)]
pub enum ReprocessError {
    #[error("the importer has no mail with this id")]
    NotFound,
    #[error(
        "the mail is not in Error (it is `{0}`): only a mail in the Error folder can be reprocessed"
    )]
    NotInError(&'static str),
    #[error(
        "the mail is no longer in the Error folder (it was moved or deleted in the mailbox); move it to the Inbox by hand to have it decided again"
    )]
    NotInErrorFolder,
    #[error("{0}")]
    Run(#[from] ImportError),
}

impl From<MailboxError> for ReprocessError {
    fn from(e: MailboxError) -> Self {
        Self::Run(ImportError::Mailbox(e))
    }
}

impl From<store::StoreError> for ReprocessError {
    fn from(e: store::StoreError) -> Self {
        Self::Run(ImportError::Store(e))
    }
}

/// Moves the mail `mail_id` from Error back to the Inbox, removes its
/// reason mark and reopens its ledger row. Returns the reopened row.
pub async fn reprocess<M: Mailbox>(
    store: &Store,
    clock: &dyn Clock,
    mailbox: &M,
    importer: &ImporterRecord,
    mail_id: &str,
) -> Result<LedgerEntry, ReprocessError> {
    let entry = store
        .ledger_entry_by_mail_id(&importer.id, mail_id)
        .await?
        .ok_or(ReprocessError::NotFound)?;
    if entry.state != LedgerState::MovedToError {
        return Err(ReprocessError::NotInError(entry.state.fate().as_str()));
    }
    let folders = resolve(mailbox, importer).await?;
    let candidates = [folders.error.id.as_str(), folders.inbox.id.as_str()];
    let hint = LocateHint {
        internet_message_id: entry.internet_message_id.as_deref(),
        folders: &candidates,
    };
    match mailbox.locate_message(&entry.source_key, &hint).await? {
        // Under its id now: an IMAP move gave it a new UID in Error.
        MessageLocation::Folder { folder, message_id } if folder == folders.error.id => {
            // The mark first: on IMAP a keyword is set on the message
            // where it is, and a move gives it a new UID.
            mailbox.mark_error_reason(&message_id, None).await?;
            mailbox.move_message(&message_id, &folders.inbox.id).await?;
        }
        // Already moved back by hand: only the ledger is left to do.
        MessageLocation::Folder { folder, message_id } if folder == folders.inbox.id => {
            mailbox.mark_error_reason(&message_id, None).await?;
        }
        _ => return Err(ReprocessError::NotInErrorFolder),
    }
    let reopened = store
        .reopen_ledger_entry(
            &importer.id,
            mail_id,
            "reprocessing requested: the next run decides it afresh",
            clock.now(),
        )
        .await?;
    if !reopened {
        // A run decided it meanwhile (it was found in the Inbox).
        tracing::info!(mail_id, "reprocessed mail was decided by a run meanwhile");
    }
    store
        .ledger_entry_by_mail_id(&importer.id, mail_id)
        .await?
        .ok_or(ReprocessError::NotFound)
}
