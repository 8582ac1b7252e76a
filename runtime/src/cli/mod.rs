//! Command-line definitions, one module per command.

mod bench;
mod eval;
mod latency;
mod live;
mod models;
mod predict;
mod quantize;
#[cfg(feature = "window")]
mod window;

use anyhow::anyhow;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "fer", version, about = "int8 facial-expression recognition: quantize, run, benchmark")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Float ONNX + calibration images -> int8 .fer model (and its QDQ ONNX twin).
    Quantize(quantize::QuantizeArgs),
    /// Time the engine beside ONNX Runtime and tract (one thread, batch 1, median).
    Bench(bench::BenchArgs),
    /// Faces and their expressions in images: a table, JSON, or annotated copies.
    Predict(predict::PredictArgs),
    /// Score a model on labelled class folders: accuracy, balanced accuracy, macro-F1, confusion.
    Eval(eval::EvalArgs),
    /// Recognition on a stream of frames (a replayed clip): tracking, smoothing, JSON lines.
    Live(live::LiveArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Quantize(a) => quantize::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Live(a) => live::run(a),
    }
}

/// [`fer_runtime::fsutil::write_atomic`], the error naming the file.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    fer_runtime::fsutil::write_atomic(path, bytes).map_err(|e| anyhow!("{}: {e}", path.display()))
}
