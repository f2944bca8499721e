//! Where documents go: the filesystem spool (the default, the contract's
//! `DATA_DIR/documents/…` layout) or a webhook. Both take a [`Document`]
//! whose file names are already safe ([`filename`]) and whose checksums are
//! computed, and both are idempotent per `document_id`.

pub mod document;
pub mod filename;
pub mod spool;
pub mod webhook;

pub use document::{Document, DocumentHeader, NewAttachment, hex, sha256_hex};
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

/// The sink an importer writes to.
#[derive(Debug, Clone)]
pub enum Sink {
    Filesystem(FilesystemSpool),
    Webhook(WebhookSink),
}

impl Sink {
    /// `filesystem` or `webhook`, as recorded in the documents table.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Filesystem(_) => "filesystem",
            Self::Webhook(_) => "webhook",
        }
    }

    pub async fn store(&self, doc: &Document) -> Result<Stored, SinkError> {
        match self {
            Self::Filesystem(s) => s.store(doc).await,
            Self::Webhook(w) => w.store(doc).await,
        }
    }
}
