//! `permit-sync plan PATH`: what `apply` would change, as a table, JSON or a pull-request comment.

use super::SyncArgs;
use crate::desired::Desired;
use crate::engine;
use crate::inventory::StateFile;
use crate::plan::render::{self, Format, Redactor};
use std::io::Write;

#[derive(clap::Args, Debug, Clone)]
pub struct PlanArgs {
    #[command(flatten)]
    pub sync: SyncArgs,
    /// Output format; `markdown` is made to be posted as a pull-request comment.
    #[arg(long, short, value_parser = crate::cli::format_parser(), default_value = "table")]
    pub output: Format,
    /// Exit 0 when there is nothing to change, 2 when there is, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

/// Plans `objects` against Permit and writes the plan to `out`; returns the exit code.
pub async fn run(
    args: &PlanArgs,
    desired: &Desired,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<u8> {
    super::init_logging();
    let client = args.sync.connection.connect().await?;
    let state_file = StateFile::new(&args.sync.ownership.state_file);
    let planned = engine::plan(&client, desired, &state_file, &args.sync.plan_options()).await?;
    let redactor = Redactor::new([client.api_key().expose().to_string()]);
    render::write(&planned.plan, args.output, &redactor, out)?;
    tracing::debug!(calls = client.metrics().total(), "plan done");
    Ok(if args.detailed_exitcode && planned.plan.has_changes() {
        2
    } else {
        0
    })
}

/// The command line: loads `PATH`, then runs on stdout.
pub async fn main(args: &PlanArgs) -> anyhow::Result<u8> {
    let desired = super::load_desired(&args.sync.path)?;
    run(args, &desired, &mut std::io::stdout()).await
}
