//! `permit-sync apply PATH`: converge Permit to the manifests, showing the plan first.

use super::SyncArgs;
use crate::desired::Desired;
use crate::engine;
use crate::exec::{ExecOptions, summary};
use crate::inventory::StateFile;
use crate::plan::render::{self, Format, Redactor};
use anyhow::Context;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub sync: SyncArgs,
    /// Show the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete without asking (required for deletions when not on a terminal).
    #[arg(long, short)]
    pub yes: bool,
    /// How to show the plan before applying it.
    #[arg(long, short, value_parser = crate::cli::format_parser(), default_value = "table")]
    pub output: Format,
    /// Write a JSON report (status per object, API calls by class and status) to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// API calls in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

/// Applies `desired`; returns the exit code (1 when any object failed). The model is taken, not
/// borrowed: once planned, the ops carry what they write, and at scale the model is the largest
/// thing left to free before executing.
pub async fn run(
    args: &ApplyArgs,
    desired: Desired,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<u8> {
    super::init_logging();
    let client = args.sync.connection.connect().await?;
    let state_file = StateFile::new(&args.sync.ownership.state_file);
    // Held from before planning, so the plan is made against the inventory it will update.
    let _lock = if args.dry_run {
        None
    } else {
        Some(
            state_file
                .lock()
                .with_context(|| format!("locking inventory {}", state_file.path.display()))?,
        )
    };
    let planned =
        engine::plan_once(&client, desired, &state_file, &args.sync.plan_options()).await?;
    let redactor = Redactor::new([client.api_key().expose().to_string()]);
    render::write(&planned.plan, args.output, &redactor, out)?;
    if args.dry_run {
        writeln!(out, "Dry run: nothing applied.")?;
        return Ok(0);
    }
    let deletions = planned.plan.deletions();
    if deletions > 0 && !args.yes {
        let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        if !terminal {
            anyhow::bail!(
                "refusing to delete {deletions} object(s) without --yes (not on a terminal)"
            );
        }
        eprint!("Delete {deletions} object(s) from Permit? Type 'yes' to continue: ");
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            writeln!(out, "Cancelled: nothing applied.")?;
            return Ok(1);
        }
    }
    let options = ExecOptions {
        concurrency: args.concurrency.max(1),
        observer: if std::io::stderr().is_terminal() {
            std::sync::Arc::new(super::progress::Bar::stderr())
        } else {
            std::sync::Arc::new(crate::exec::Silent)
        },
        ..ExecOptions::default()
    };
    let mut report = engine::apply_once(&client, planned, &state_file, &options).await?;
    // Every request of the command counts, the scope lookup and the listings included: they
    // are spent from the same limits as the writes.
    report.metrics = client.metrics();
    out.write_all(redactor.text(&summary::render(&report)).as_bytes())?;
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, redactor.text(&json))
            .with_context(|| format!("writing the report {}", path.display()))?;
    }
    Ok(if report.failed().next().is_some() {
        1
    } else {
        0
    })
}

/// The command line: loads `PATH`, then runs on stdout.
pub async fn main(args: &ApplyArgs) -> anyhow::Result<u8> {
    let desired = super::load_desired(&args.sync.path)?;
    run(args, desired, &mut std::io::stdout()).await
}
