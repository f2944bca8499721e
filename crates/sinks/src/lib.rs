//! Where documents go: the filesystem spool (the default, the contract's
//! `DATA_DIR/documents/…` layout), a webhook or an S3 bucket. All take a [`Document`]
//! whose file names are already safe ([`filename`]) and whose checksums are
//! computed, and all are idempotent per `document_id`. All implement
//! [`DocumentSink`], so another sink is one more implementation.

use std::future::Future;
use std::pin::Pin;

pub mod document;
pub mod filename;
pub mod s3;
pub mod spool;
pub mod webhook;

pub use document::{Document, NewAttachment, hex, sha256_hex};
pub use s3::{S3Config, S3Sink};
pub use spool::FilesystemSpool;
pub use webhook::{WebhookConfig, WebhookSink};

/// What a sink did with a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The document folder, or the webhook URL (without query).
    pub location: String,
    /// The document was already there from an earlier attempt; nothing new was written.
    pub already_present: bool,
}

/// How a sink failed, which decides where the mail goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkErrorKind {
    /// A full disk, an unreachable or failing receiver: the mail stays in
    /// the Inbox for the next run.
    Transient,
    /// The receiver answered that it will never take this document (a
    /// webhook's 4xx other than 408/425/429): the mail goes to Error
    /// (`sink_rejected`) instead of being sent again every run.
    Rejected,
    /// The document can never be written (e.g. a name the file system
    /// refuses): the mail goes to Error (`unstorable`).
    Unstorable,
    /// The sink's own settings are wrong (a webhook answering 401, 403,
    /// 404, 405 or 407: a bad token or URL): no mail is at fault, so the
    /// run stops and every mail stays where it is.
    Misconfigured,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub kind: SinkErrorKind,
    pub message: String,
}

impl SinkError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            kind: SinkErrorKind::Transient,
            message: message.into(),
        }
    }

    pub fn rejected(message: impl Into<String>) -> Self {
        Self {
            kind: SinkErrorKind::Rejected,
            message: message.into(),
        }
    }

    pub fn misconfigured(message: impl Into<String>) -> Self {
        Self {
            kind: SinkErrorKind::Misconfigured,
            message: message.into(),
        }
    }

    pub fn unstorable(message: impl Into<String>) -> Self {
        Self {
            kind: SinkErrorKind::Unstorable,
            message: message.into(),
        }
    }

    pub fn is_transient(&self) -> bool {
        self.kind == SinkErrorKind::Transient
    }
}

/// A sink's answer, boxed so that importers can hold any sink behind one
/// type (`Arc<dyn DocumentSink>`).
pub type SinkFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SinkError>> + Send + 'a>>;

/// Where documents go. Every sink is idempotent per `document_id`: storing
/// a document it already has stores nothing new.
pub trait DocumentSink: Send + Sync + std::fmt::Debug {
    /// As recorded in the documents table: `filesystem`, `webhook`, `s3`.
    fn kind(&self) -> &'static str;

    fn store<'a>(&'a self, doc: &'a Document) -> SinkFuture<'a, Stored>;

    /// Deletes what the sink keeps of the document it stored at `location`
    /// (the documents table's `location`), for `purge-documents`. Deleting
    /// a document that is already gone succeeds; a sink that only hands
    /// documents on keeps nothing to delete.
    fn remove<'a>(&'a self, location: &'a str) -> SinkFuture<'a, ()>;

    /// The bytes of `file` (`message.eml`, `attachments/…`, as the
    /// document's metadata names it) of the document stored at
    /// `location`, for a download. `None` when the document has no such
    /// file any more.
    fn read<'a>(&'a self, location: &'a str, file: &'a str) -> SinkFuture<'a, Option<Vec<u8>>>;
}
