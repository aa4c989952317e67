//! Command-line interface: one subcommand per mode; each subcommand's arguments live in its own module.

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
    Crds(crate::crds::CrdsArgs),
    /// Run the embedded local Permit (REST API + PDP) as a standalone server.
    Local(Box<crate::local::cli::LocalArgs>),
}
