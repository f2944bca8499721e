//! The Graph mail client (filled in by the mailbox work).
