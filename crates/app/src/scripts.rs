//! `mailferry run SCRIPT`: the scripts of [`mailferry::registry`], run once
//! from the command line.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use anyhow::bail;
use domain::clock::Clock;
use scheduler::{Runner, RunnerConfig, SchedulerConfig};
use store::Store;
use store::clients::Client;
use store::executions::{Execution, ExecutionStatus, TriggerKind};

use crate::cli::RunArgs;
use crate::settings::Settings;

/// `mailferry run SCRIPT`: runs the script once for each selected client
/// (`--client`, the client of `--importer`, or every client), prints a
/// summary per run, and fails when any run failed.
pub async fn run(
    settings: Settings,
    clock: Arc<dyn Clock>,
    args: RunArgs,
) -> anyhow::Result<ExitCode> {
    let store = crate::commands::open_store(&settings, clock.as_ref()).await?;
    let connector = runtime::Connector::new(store.clone(), clock.clone(), &settings.data_dir)
        .context("building the HTTP clients for Microsoft")?
        .with_import_concurrency(settings.import_concurrency);
    let registry = mailferry::registry(&connector);
    let Some(script) = registry.get(&args.script) else {
        bail!(
            "there is no script `{}` in this build; scripts: {}",
            args.script,
            registry.names().join(", ")
        );
    };
    let mut pairs = args.params.clone();
    if let Some(importer) = &args.importer {
        pairs.push(("importer_id".to_owned(), importer.clone()));
    }
    if args.dry_run {
        pairs.push(("dry_run".to_owned(), "true".to_owned()));
    }
    let params = scheduler::params::from_pairs(script.as_ref(), &pairs)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.script))?;
    let clients = clients_to_run(&store, &args).await?;
    let runner = Runner::new(store, clock, registry, RunnerConfig::default());
    let mut failed = 0;
    let work = async {
        for client in &clients {
            let execution = runner
                .run(&client.id, &args.script, params.clone(), TriggerKind::Cli)
                .await?;
            print_summary(&client.name, &execution);
            if execution.status != ExecutionStatus::Succeeded {
                failed += 1;
            }
        }
        anyhow::Ok(())
    };
    tokio::select! {
        result = work => result?,
        () = crate::commands::shutdown_signal() => {
            runner.shutdown(SchedulerConfig::default().grace).await;
            bail!("interrupted: the run was stopped and recorded as failed");
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn clients_to_run(store: &Store, args: &RunArgs) -> anyhow::Result<Vec<Client>> {
    let all = store.list_clients().await?;
    if let Some(name) = &args.client {
        return match all.into_iter().find(|c| &c.name == name) {
            Some(c) => Ok(vec![c]),
            None => bail!("there is no client `{name}`: list them with `mailferry client list`"),
        };
    }
    if let Some(importer) = &args.importer {
        for client in all {
            if store.importer(&client.id, importer).await?.is_some() {
                return Ok(vec![client]);
            }
        }
        bail!("there is no importer `{importer}`: its id is shown by GET /api/v2/importers/email");
    }
    Ok(all)
}

fn print_summary(client: &str, e: &Execution) {
    let took = e
        .finished_at
        .map(|end| {
            format!(
                " in {:.1} s",
                e.started_at.duration_until(end).as_secs_f64()
            )
        })
        .unwrap_or_default();
    println!(
        "{} for client {client}: {}{took} (execution {})",
        e.script,
        e.status.as_str(),
        e.id
    );
    for line in &e.log {
        println!("  {line}");
    }
}
