//! Command-line definitions, one module per command group.

mod bench;
mod data;
mod export;
mod train;

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
    /// Train a model: metrics.csv, curves.png, confusion.png, report.json, best/ and last/.
    Fit(train::FitArgs),
    /// K-fold cross-validation (optionally subject-grouped): mean ± std per metric.
    Cv(train::CvArgs),
    /// Training and inference speed of each model (optionally beside Keras).
    Bench(bench::BenchArgs),
    /// Data to a shipped model: fit, export, quantize, score float and int8, write the model card.
    Ship(train::ShipArgs),
    /// Export a checkpoint to ONNX (opset 18, dynamic batch, labels and preprocessing in metadata).
    Export(export::ExportArgs),
    /// Redraw a run's curves.png from its saved history.
    Curves(train::CurvesArgs),
    /// List an ONNX model's layers (names and indices for fit --init --cut / --freeze-until).
    Layers(export::LayersArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Data(cmd) => data::run(cmd),
        Command::Fit(args) => train::fit(args),
        Command::Cv(args) => train::cross_validate(args),
        Command::Bench(args) => bench::run(args),
        Command::Curves(args) => train::curves(args),
        Command::Export(args) => export::run(args),
        Command::Ship(args) => train::ship(args),
        Command::Layers(args) => export::layers(args),
    }
}
