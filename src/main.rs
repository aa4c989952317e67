use clap::Parser;
use permit_sync::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    // One TLS crypto provider for kube and reqwest alike (two providers panic when a client is built).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds(args) => permit_sync::crds::run(&args).map(|_| ExitCode::SUCCESS),
        Command::Local(args) => {
            { runtime().and_then(|rt| rt.block_on(permit_sync::local::cli::run(&args))) }
                .map(|_| ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// A multi-threaded runtime for the async subcommands.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
