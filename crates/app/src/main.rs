//! The `mailferry` binary: command line, configuration and wiring of the
//! library crates. Errors end here as `anyhow` with their context chain.

mod cli;
mod commands;
#[cfg(feature = "demo")]
mod demo;
mod scripts;
mod settings;
mod telemetry;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    // reqwest is built with `rustls-no-provider`: one provider (ring) for the
    // whole process; an error only means one is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
