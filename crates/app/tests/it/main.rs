//! mailferry's end-to-end tests: ONE test binary (linking is slow on two
//! cores), a module per feature. Peers are real: SQLite and PostgreSQL
//! (`MAILFERRY_TEST_POSTGRES_URL`, started by scripts/test.sh), the Microsoft
//! emulator, the `mailferry` binary itself.

mod support;

mod api_fuzz;
mod api_importers;
mod cli;
mod delegated_import;
mod graph_mailbox;
mod import;
mod jobs;
mod mail_fate;
mod oauth;
mod scheduler_instances;
mod ui;
