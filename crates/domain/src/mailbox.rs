//! The mailbox port: what the import pipeline needs from a mailbox (its folder
//! tree, the messages of a folder oldest first, a message's raw MIME, moving
//! a message, where a message is now), implemented by Graph and later IMAP; and the rules that turn
//! an admin's folder settings into folders of a real tree ([`resolve`]).

use std::fmt;
use std::future::Future;

use jiff::Timestamp;
use serde::Serialize;

mod resolve;
mod token;
mod tree;

pub use resolve::{
    FolderError, FolderRole, FoldersError, MatchedBy, ResolvedFolder, ResolvedFolders,
    resolve_folder, resolve_folders,
};
pub use token::{AccessTokenSource, StaticToken, TokenFuture};
pub use tree::{FolderNode, FolderTree, FolderTreeError};

/// One message as listed, before its content is fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageSummary {
    /// The mailbox's id for the message; stable across moves where the
    /// protocol allows it (Graph immutable ids, IMAP never).
    pub id: String,
    /// `Message-ID` header: the key that survives moves and copies.
    pub internet_message_id: Option<String>,
    pub received_at: Option<Timestamp>,
    pub subject: Option<String>,
    /// The sender's address.
    pub from: Option<String>,
    pub has_attachments: bool,
    /// The mail's size in bytes as the mailbox reports it before a download
    /// (Graph's `PidTagMessageSize`, IMAP's `RFC822.SIZE`), when it does.
    pub size: Option<u64>,
    /// It carries mailferry's reason mark from an earlier trip to Error
    /// (an admin moved it back), which must go before it is exported.
    pub error_mark: bool,
}

/// Where the next page of a listing starts: opaque to the caller (for Graph
/// the `@odata.nextLink`, kept exactly as the server gave it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor(pub String);

/// One page of a folder's messages, oldest first.
#[derive(Debug, Clone, Default)]
pub struct MessagePage {
    pub messages: Vec<MessageSummary>,
    /// `None` on the last page.
    pub next: Option<PageCursor>,
}

/// Where a message is now, asked by its id.
/// What helps find a mail whose id changed with a move (IMAP gives a moved
/// mail a new UID): its `Message-ID` and the folders it may be in now.
/// Mailboxes whose ids survive a move (Graph's immutable ids) ignore it.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocateHint<'a> {
    pub internet_message_id: Option<&'a str>,
    /// Folder ids to look in.
    pub folders: &'a [&'a str],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageLocation {
    /// In the folder `folder`, under the id `message_id` (the same id, or
    /// the one a move gave it).
    Folder { folder: String, message_id: String },
    /// No message has this id (deleted, or its id changed on a move where
    /// the protocol does not keep ids stable).
    Gone,
}

/// Why a mailbox operation failed, so the caller knows whether to retry later,
/// refresh a token, or stop and tell an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MailboxErrorKind {
    /// Throttling, server errors, timeouts, dropped connections that outlived
    /// the bounded retries: leave the mail where it is and try next run.
    Transient,
    /// The access token was refused: refresh it (or re-authorize) and retry.
    Token,
    /// The account or application lacks a permission or mailbox right.
    Permission,
    /// The message or folder is gone (moved or deleted meanwhile).
    NotFound,
    /// The mailbox cannot be used at all (unknown, unlicensed, on-premises).
    MailboxUnavailable,
    /// Anything else the server refused; retrying will not help.
    Permanent,
}

/// A failed mailbox operation in plain words: what happened and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}; {fix}")]
pub struct MailboxError {
    pub kind: MailboxErrorKind,
    pub message: String,
    pub fix: String,
}

impl MailboxError {
    pub fn new(kind: MailboxErrorKind, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// Worth trying again later without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, MailboxErrorKind::Transient)
    }
}

/// A mailbox as the import pipeline uses it. Implementations bound their own
/// concurrency and retries; an error they return is final for this attempt.
pub trait Mailbox: Send + Sync {
    /// The whole folder tree; hidden folders only when asked for.
    fn folder_tree(
        &self,
        include_hidden: bool,
    ) -> impl Future<Output = Result<FolderTree, MailboxError>> + Send;

    /// A page of a folder's messages, oldest received first. Pass the
    /// previous page's `next` to continue; `None` starts at the beginning.
    fn list_messages(
        &self,
        folder_id: &str,
        cursor: Option<&PageCursor>,
    ) -> impl Future<Output = Result<MessagePage, MailboxError>> + Send;

    /// Whether a listing's `next` cursor still leads past the same mails
    /// after mails were moved out of the folder: IMAP's UIDs do, Graph's
    /// offsets do not. Without it, a run lists from the top after a move.
    fn cursor_survives_moves(&self) -> bool {
        false
    }

    /// The message exactly as the mailbox serves it (RFC 5322 bytes).
    fn fetch_mime(
        &self,
        message_id: &str,
    ) -> impl Future<Output = Result<Vec<u8>, MailboxError>> + Send;

    /// Moves a message into a folder; returns the message's id afterwards
    /// (the same id where the protocol keeps ids stable).
    fn move_message(
        &self,
        message_id: &str,
        destination_folder_id: &str,
    ) -> impl Future<Output = Result<String, MailboxError>> + Send;

    /// Shows why a mail went to Error in the mailbox itself (an Outlook
    /// category `mailferry: {code}`, an IMAP keyword), keeping the marks
    /// others set; `None` removes mailferry's mark (reprocessing).
    fn mark_error_reason(
        &self,
        message_id: &str,
        reason_code: Option<&str>,
    ) -> impl Future<Output = Result<(), MailboxError>> + Send;

    /// The folder a message is in now, by the id it was listed under; a
    /// message that no longer exists under that id is [`MessageLocation::Gone`]
    /// (not an error).
    fn locate_message(
        &self,
        message_id: &str,
        hint: &LocateHint<'_>,
    ) -> impl Future<Output = Result<MessageLocation, MailboxError>> + Send;
}

impl fmt::Display for PageCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
