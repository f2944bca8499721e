//! Where documents go: the filesystem spool (the default, the contract's
//! `DATA_DIR/documents/…` layout) or a webhook. Both take a [`Document`]
//! whose file names are already safe ([`filename`]) and whose checksums are
//! computed, and both are idempotent per `document_id`.

pub mod document;
pub mod filename;
pub mod spool;
pub mod webhook;

pub use document::{Document, DocumentHeader, NewAttachment, sha256_hex};
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

/// A sink could not take the document. `transient` failures (a full disk,
/// an unreachable or refusing webhook) leave the mail in the Inbox for the
/// next run; permanent ones (a document that can never be written) send it
/// to Error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub transient: bool,
    pub message: String,
}

impl SinkError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            transient: true,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            transient: false,
            message: message.into(),
        }
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
