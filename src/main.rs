//! The `shoal` binary: `up` runs a whole single node; every other command is an API client.
//!
//! One file per command under `commands/`; this file only parses arguments and dispatches.

mod commands;
mod credentials;
mod machine;
mod output;
mod progress;
mod settings;
mod signals;
mod tls;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Shoal: a WebAssembly-native orchestrator.
#[derive(Parser)]
#[command(name = "shoal", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: settings::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a complete single node: control plane, node agent and HTTP ingress.
    Up(Box<commands::up::Args>),
    /// Run a cluster's control plane (the API) on etcd.
    Server(Box<commands::server::Args>),
    /// Run a cluster's worker: node agent and HTTP ingress, through the servers.
    Node(Box<commands::node::Args>),
    /// Create or update objects from YAML manifests.
    Apply(commands::apply::Args),
    /// List objects or show one.
    Get(commands::get::Args),
    /// Show an object in detail, with its conditions and recent events.
    Describe(commands::describe::Args),
    /// Delete objects by name or by manifest, or remove a node from its cluster.
    Delete(commands::delete::Args),
    /// Create a node's credential.
    Create(commands::create::Args),
    /// Print an app's log, or a job run's: stdout, stderr and runtime events.
    Logs(commands::logs::Args),
    /// Wait until an object reaches a condition.
    Wait(commands::wait::Args),
    /// Show the apps by what they are doing now: request rate, p99, errors, instances, memory.
    Top(commands::top::Args),
    /// Follow, list and roll back an app's revisions.
    Rollout(commands::rollout::Args),
    /// Publish a component to an OCI registry.
    Push(commands::push::Args),
    /// Store or forget the credentials of an OCI registry.
    Registry(commands::registry::Args),
    /// Print the completion script for bash, zsh, fish, elvish or PowerShell.
    Completion(commands::completion::Args),
}

fn main() -> ExitCode {
    // The node's compiler child (see shoal_runtime::compiler): nothing else of the CLI runs.
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some(shoal_node::compiler::CHILD_ARG) {
        let code = shoal_node::compiler::child_main(args);
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SHOAL_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,wasmtime=warn,cranelift=warn")
            }),
        )
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let g = cli.global;
        match cli.command {
            Command::Up(args) => commands::up::run(g, *args).await,
            Command::Server(args) => commands::server::run(g, *args).await,
            Command::Node(args) => commands::node::run(g, *args).await,
            Command::Apply(args) => commands::apply::run(g, args).await,
            Command::Get(args) => commands::get::run(g, args).await,
            Command::Describe(args) => commands::describe::run(g, args).await,
            Command::Delete(args) => commands::delete::run(g, args).await,
            Command::Create(args) => commands::create::run(g, args).await,
            Command::Wait(args) => commands::wait::run(g, args).await,
            Command::Logs(args) => commands::logs::run(g, args).await,
            Command::Rollout(args) => commands::rollout::run(g, args).await,
            Command::Top(args) => commands::top::run(g, args).await,
            Command::Push(args) => commands::push::run(&g, args).await,
            Command::Registry(args) => commands::registry::run(&g, args),
            Command::Completion(args) => {
                commands::completion::run(&args, <Cli as clap::CommandFactory>::command());
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
