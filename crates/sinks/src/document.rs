//! A document ready for a sink: the metadata, the original message and the
//! attachment bytes, with names and checksums computed once here so that
//! every sink writes the same thing.

use bytes::Bytes;

use domain::document::{DocumentAttachment, DocumentMetadata};
use sha2::{Digest, Sha256};

use crate::filename::unique_names;

/// Folder (inside a document) that holds the attachments.
pub const ATTACHMENTS_DIR: &str = "attachments";
pub const MESSAGE_FILE: &str = "message.eml";
pub const METADATA_FILE: &str = "metadata.json";

/// One part to import, as the MIME decoder found it.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    /// The name the sender gave, decoded; `None` when the part had none.
    pub filename: Option<String>,
    /// A name to use when `filename` is `None` (e.g. `attachment.pdf`).
    pub fallback_name: String,
    pub content_type: String,
    pub bytes: Bytes,
}

#[derive(Debug, Clone)]
pub struct Document {
    pub metadata: DocumentMetadata,
    /// The original message bytes (`message.eml`).
    pub message: Bytes,
    /// The bytes of `metadata.attachments[i]`, in the same order.
    pub files: Vec<Bytes>,
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex of `bytes` (a digest).
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    out
}

impl Document {
    /// A document of `metadata` (whose `attachments` are made here, from
    /// `parts`: unique safe names and checksums).
    pub fn new(mut metadata: DocumentMetadata, message: Bytes, parts: Vec<NewAttachment>) -> Self {
        let names = unique_names(
            parts
                .iter()
                .map(|p| p.filename.as_deref().unwrap_or(&p.fallback_name)),
        );
        let mut attachments = Vec::with_capacity(parts.len());
        let mut files = Vec::with_capacity(parts.len());
        for (part, name) in parts.into_iter().zip(names) {
            attachments.push(DocumentAttachment {
                file: format!("{ATTACHMENTS_DIR}/{name}"),
                filename: part.filename,
                content_type: part.content_type,
                size: part.bytes.len() as u64,
                sha256: sha256_hex(&part.bytes),
            });
            files.push(part.bytes);
        }
        metadata.attachments = attachments;
        Self {
            metadata,
            message,
            files,
        }
    }

    /// Bytes of the message and every attachment.
    pub fn total_bytes(&self) -> u64 {
        self.message.len() as u64 + self.files.iter().map(|f| f.len() as u64).sum::<u64>()
    }

    pub fn metadata_json(&self) -> Vec<u8> {
        // Serialising plain strings, numbers and timestamps cannot fail.
        serde_json::to_vec_pretty(&self.metadata).unwrap_or_default()
    }
}
