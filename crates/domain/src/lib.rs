//! mailferry's domain: the types and rules of importing mail into documents,
//! with no I/O, so every rule is tested fast and exhaustively.

pub mod alert;
pub mod clock;
pub mod content;
pub mod credential;
pub mod document;
pub mod folder;
pub mod health;
pub mod importer;
pub mod mailbox;
pub mod rules;
pub mod schedule;
pub mod sink;
pub mod validation;
