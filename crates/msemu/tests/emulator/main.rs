//! Integration tests: one binary (linking is slow on small machines), one module per area.
//! Every test starts its own emulator on 127.0.0.1:0 and shuts it down.

mod admin;
mod common;
mod entra;
mod faults;
mod graph;
mod python_clients;
