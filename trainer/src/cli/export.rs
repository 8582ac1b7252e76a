//! `fer-train export` and `fer-train layers`.

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

#[derive(Debug, Args)]
pub struct LayersArgs {
    /// A float ONNX classifier.
    model: PathBuf,
    #[arg(long)]
    json: bool,
}

/// Lists the layers `fit --init` sees, with the names and indices --cut and --freeze-until take.
pub fn layers(args: LayersArgs) -> anyhow::Result<()> {
    use fer_trainer::transfer;
    let g = transfer::read_graph(&args.model).map_err(anyhow::Error::msg)?;
    let rows = transfer::layer_rows(&g);
    let chain = transfer::import_layers(&g).err();
    if args.json {
        let doc = serde_json::json!({
            "path": args.model.display().to_string(),
            "input": g.input_shape,
            "layers": rows,
            "parameters": g.parameters(),
            "fine_tunable": chain.is_none(),
            "metadata": g.metadata.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone()))).collect::<serde_json::Map<_, _>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!(
        "{}: input {:?} (channels, height, width), {} parameters",
        args.model.display(),
        g.input_shape,
        g.parameters()
    );
    println!("{:>5}  {:<28} {:<20} {:<16} {:>10}", "index", "name", "op", "output", "params");
    for r in &rows {
        println!(
            "{:>5}  {:<28} {:<20} {:<16} {:>10}",
            r.index,
            r.name,
            r.op,
            format!("{:?}", r.output),
            r.parameters
        );
    }
    if let Some(why) = chain {
        println!("not usable with fit --init: {why}");
    }
    Ok(())
}
