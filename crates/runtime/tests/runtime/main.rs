//! The runtime's scripts on a real SQLite store and a real spool: one test
//! binary, a module per script.

mod purge_documents;
