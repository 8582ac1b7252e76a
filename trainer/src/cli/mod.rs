//! Command-line definitions, one module per command group.

mod data;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "fer-train", version, about = "Train facial-expression CNNs on FER datasets")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect, split and balance datasets.
    #[command(subcommand)]
    Data(data::DataCommand),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Data(cmd) => data::run(cmd),
    }
}
