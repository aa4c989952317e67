//! Command-line interface: one subcommand per mode; each subcommand's arguments live in its own module.

use crate::plan::Mode;
use crate::plan::render::Format;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "permit-sync",
    version,
    about = "Declarative GitOps sync for Permit.io authorization"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the CustomResourceDefinitions of all kinds (or write them with --output-dir).
    Crds(crate::commands::crds::CrdsArgs),
    /// Ask a PDP whether USER may do ACTION on RESOURCE: exit 0 allowed, 3 denied, 1 error.
    Check(crate::commands::check::CheckArgs),
    /// Show what `apply` would change in Permit (exit 0/2 with --detailed-exitcode, 1 on error).
    Plan(crate::commands::plan::PlanArgs),
    /// Converge Permit to the manifests (in bulk, rate-limited; --prune deletes what we own only).
    Apply(crate::commands::apply::ApplyArgs),
    /// Keep Permit equal to a directory of manifests: watch it, sync changes in batches, correct drift.
    Watch(Box<crate::commands::watch::WatchArgs>),
    /// Start the embedded local Permit (API + PDP) and watch PATH: the offline development loop.
    Dev(Box<crate::commands::dev::DevArgs>),
    /// Print the per-object status of a running `watch` or `dev` (exit 0 all synced, 2 not, 1 error).
    Status(crate::commands::status::StatusArgs),
    /// Write the live Permit environment as manifests (`plan` on them shows no changes).
    Export(crate::commands::export::ExportArgs),
    /// Check manifest files or directories: YAML, schema, duplicates and references (exit 1 when invalid).
    Validate(crate::commands::validate::ValidateArgs),
    /// Run the Kubernetes controller: converge Permit from the custom resources, write status back.
    Controller(Box<crate::commands::controller::ControllerArgs>),
    /// Run the embedded local Permit (REST API + PDP) as a standalone server.
    Local(Box<crate::commands::local::LocalArgs>),
}

/// `--mode owned|mirror`: the core's modes, which know nothing of command lines.
pub fn mode_parser() -> impl TypedValueParser<Value = Mode> {
    PossibleValuesParser::new(
        Mode::VALUES.map(|(_, name, help)| PossibleValue::new(name).help(help)),
    )
    .map(|name| {
        Mode::VALUES
            .into_iter()
            .find(|(_, n, _)| *n == name)
            .map(|(mode, _, _)| mode)
            .unwrap_or_default()
    })
}

/// `--output table|json|markdown` of `plan` and `apply`.
pub fn format_parser() -> impl TypedValueParser<Value = Format> {
    PossibleValuesParser::new(Format::VALUES.map(|(_, name)| PossibleValue::new(name))).map(
        |name| {
            Format::VALUES
                .into_iter()
                .find(|(_, n)| *n == name)
                .map(|(format, _)| format)
                .unwrap_or_default()
        },
    )
}
