use clap::Parser;
use permit_sync::cli::{Cli, Command};
use std::process::ExitCode;

/// jemalloc, not glibc's allocator: a large sync frees most of what each phase built (parsed
/// manifests, the model as it is planned, listing pages, request bodies) among objects that stay,
/// and glibc kept those holes resident (an apply of 400,000 objects peaked near 210 MB with
/// ~60 MB of it free); jemalloc's size classes reuse and return them.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Freed pages go back to the system as they are freed, not after jemalloc's default ten
/// seconds: a one-shot apply is over by then, and its peak would be every phase's garbage.
#[cfg(not(target_env = "msvc"))]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8; 34] = b"dirty_decay_ms:0,muzzy_decay_ms:0\0";

fn main() -> ExitCode {
    // One TLS crypto provider for kube and reqwest alike (two providers panic when a client is built).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds(args) => permit_sync::commands::crds::run(&args).map(|_| ExitCode::SUCCESS),
        Command::Check(args) => block_on(permit_sync::commands::check::run(args)),
        Command::Plan(args) => block_on(async move {
            permit_sync::commands::plan::main(&args)
                .await
                .map(ExitCode::from)
        }),
        Command::Apply(args) => block_on(async move {
            permit_sync::commands::apply::main(&args)
                .await
                .map(ExitCode::from)
        }),
        Command::Watch(args) => block_on(async move {
            permit_sync::commands::watch::main(&args)
                .await
                .map(ExitCode::from)
        }),
        Command::Dev(args) => block_on(async move {
            permit_sync::commands::dev::main(&args)
                .await
                .map(ExitCode::from)
        }),
        Command::Status(args) => block_on(async move {
            permit_sync::commands::status::main(&args)
                .await
                .map(ExitCode::from)
        }),
        Command::Export(args) => block_on(async move {
            permit_sync::commands::export::run(&args)
                .await
                .map(ExitCode::from)
        }),
        Command::Controller(args) => block_on(async move {
            permit_sync::commands::controller::run(&args)
                .await
                .map(|_| ExitCode::SUCCESS)
        }),
        Command::Local(args) => block_on(async move {
            permit_sync::commands::local::run(&args)
                .await
                .map(|_| ExitCode::SUCCESS)
        }),
        Command::Validate(args) => Ok(permit_sync::commands::validate::run(&args)),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// Runs an async command on a multi-threaded tokio runtime.
fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    fut: F,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(fut)
}
