//! A document: what one imported mail becomes. [`DocumentMetadata`] is the
//! contract's `metadata.json`, written by every sink, stored in the
//! `documents` table and returned by the API, with exactly these field names.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where the mail came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DocumentSource {
    /// The importer's protocol (`graph_delegated`, `graph_client_credentials`, `imap`).
    pub protocol: String,
    /// The mailbox address, or `me` for the authorizing user's own mailbox.
    pub mailbox: String,
    /// The mailbox's id of the message when it was imported.
    pub message_id: String,
    /// The `Message-ID` header, angle brackets included.
    pub internet_message_id: Option<String>,
}

/// One file under the document's `attachments/` folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DocumentAttachment {
    /// Path of the file relative to the document folder (`attachments/…`):
    /// the sanitised, unique name.
    pub file: String,
    /// The file name the sender gave (decoded, unsanitised), if any.
    pub filename: Option<String>,
    pub content_type: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// The contract's `metadata.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DocumentMetadata {
    pub document_id: String,
    /// The client's name.
    pub client: String,
    pub importer_id: String,
    pub source: DocumentSource,
    pub subject: Option<String>,
    /// The sender's address.
    pub from: Option<String>,
    /// The recipients' addresses.
    pub to: Vec<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub received_at: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub imported_at: Timestamp,
    pub attachments: Vec<DocumentAttachment>,
    /// Present when the mail was signed or encrypted with S/MIME.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smime: Option<SmimeVerdict>,
}

/// What S/MIME said about a mail: how it was wrapped, who signed it, and
/// whether the signature held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SmimeVerdict {
    pub signed: bool,
    pub encrypted: bool,
    /// `valid`, `invalid` (the content does not match the signature) or
    /// `untrusted` (the signer does not chain to a trusted CA); absent
    /// when the mail was not signed.
    pub signature: Option<String>,
    /// Why the signature was not valid, in OpenSSL's words.
    pub signature_detail: Option<String>,
    /// The signer's e-mail address (or common name), as its certificate says.
    pub signer: Option<String>,
}
