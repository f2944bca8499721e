//! The sinks against the real file system and a real HTTP receiver: one
//! test binary (each binary costs a link step).

mod common;
mod spool;
mod webhook;
