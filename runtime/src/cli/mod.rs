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

pub fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Quantize(a) => quantize::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Live(a) => live::run(a),
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename: readers never see half a file.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let name = path.file_name().ok_or_else(|| format!("{}: not a file path", path.display()))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = dir.join(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", path.display())
    })
}
