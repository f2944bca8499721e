//! Turns mail into documents, exactly once: [`mime`] decides what a mail
//! becomes, [`fingerprint`] names its document, and the pipeline (resolve →
//! list → fetch → decide → sink → move, with the ledger) drives a mailbox.
//! Which mailbox and sink an importer gets is decided above, in `runtime`.

#[cfg(feature = "test-corpus")]
pub mod corpus;
pub mod failpoint;
pub mod fingerprint;
pub mod lease;
pub mod mime;
pub mod pipeline;
pub mod reprocess;
mod rfc2231;
pub mod smime;
pub mod tnef;
pub mod unpack;

pub use mime::{Analysis, Decision, Extracted, MailFacts, Reason, Skipped, analyze};
