//! `fer-train export`.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A run's best/ (or last/) folder.
    #[arg(long)]
    checkpoint: PathBuf,
    /// The ONNX file to write.
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let report = fer_trainer::export::export(&args.checkpoint, &args.out).map_err(anyhow::Error::msg)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "wrote {} ({} bytes): input `{}` [{}], output `{}`",
            report.path,
            report.bytes,
            report.input,
            report.input_shape.join(", "),
            report.output
        );
    }
    Ok(())
}
