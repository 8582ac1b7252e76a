//! `fer-train bench`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};

use fer_trainer::data::ImageSpec;
use fer_trainer::model::ModelKind;
use fer_trainer::train::bench::bench;
use fer_trainer::train::fit::parse_devices;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Models to time.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "baseline,edge")]
    models: Vec<ModelKind>,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Untimed repetitions first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 20)]
    reps: usize,
    #[arg(long, default_value = "flex")]
    device: String,
    /// Also run the Keras peer script (e.g. benches/keras_peer.py) in this invocation and
    /// report our speed as a ratio of Keras'. Uses $PYTHON or python3.
    #[arg(long, value_name = "SCRIPT")]
    keras: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let device = parse_devices(std::slice::from_ref(&args.device)).map_err(anyhow::Error::msg)?.remove(0);
    let mut ours = Vec::new();
    for &kind in &args.models {
        eprintln!("timing {kind:?} ({} reps at batch {})...", args.reps, args.batch_size);
        ours.push(bench(kind, ImageSpec::FER48_GRAY, args.batch_size, args.warmup, args.reps, &device));
    }
    let keras = match &args.keras {
        None => None,
        Some(script) => {
            let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
            let names: Vec<String> = args.models.iter().map(|m| format!("{m:?}").to_lowercase()).collect();
            eprintln!("timing the Keras peer ({python} {})...", script.display());
            let out = Command::new(&python)
                .arg(script)
                .args(["--models", &names.join(","), "--batch-size", &args.batch_size.to_string()])
                .args(["--warmup", &args.warmup.to_string(), "--reps", &args.reps.to_string()])
                .output()
                .with_context(|| format!("running {python} {}", script.display()))?;
            if !out.status.success() {
                bail!(
                    "the Keras peer failed (is TensorFlow installed? `pip install tensorflow-cpu`): {}",
                    String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
                );
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let last = text.lines().last().unwrap_or("");
            Some(
                serde_json::from_str::<Value>(last)
                    .with_context(|| format!("reading the peer's JSON: {last}"))?,
            )
        }
    };
    let mut results = Vec::new();
    for r in &ours {
        let name = format!("{:?}", r.model).to_lowercase();
        let mut v = serde_json::to_value(r)?;
        if let Some(k) = keras.as_ref().map(|k| &k[&name]) {
            let ratio = |ours: f64, key: &str| k[key].as_f64().map(|theirs| ours / theirs);
            v["keras"] = k.clone();
            v["train_ratio_vs_keras"] = json!(ratio(r.train_images_per_second, "train_images_per_second"));
            v["infer_ratio_vs_keras"] = json!(ratio(r.infer_images_per_second, "infer_images_per_second"));
        }
        results.push(v);
    }
    let threads = rayon::current_num_threads();
    let doc = json!({
        "device": args.device,
        "threads": threads,
        "batch_size": args.batch_size,
        "results": results,
        "keras_version": keras.as_ref().map(|k| k["tensorflow"].clone()),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!(
        "{:<9} {:>11} {:>14} {:>14} {:>12}",
        "model", "params", "train img/s", "infer img/s", "batch-1 ms"
    );
    for (r, v) in ours.iter().zip(&results) {
        println!(
            "{:<9} {:>11} {:>14.0} {:>14.0} {:>12.2}",
            format!("{:?}", r.model).to_lowercase(),
            r.parameters,
            r.train_images_per_second,
            r.infer_images_per_second,
            r.infer_batch1_ms
        );
        if let Some(k) = v.get("keras") {
            println!(
                "{:<9} {:>11} {:>14.0} {:>14.0} {:>12.2}   ours/keras: train {:.2}x, infer {:.2}x",
                "  keras",
                k["parameters"],
                k["train_images_per_second"].as_f64().unwrap_or(0.0),
                k["infer_images_per_second"].as_f64().unwrap_or(0.0),
                k["infer_batch1_ms"].as_f64().unwrap_or(0.0),
                v["train_ratio_vs_keras"].as_f64().unwrap_or(0.0),
                v["infer_ratio_vs_keras"].as_f64().unwrap_or(0.0)
            );
        }
    }
    println!(
        "({threads} threads, batch {}, median of {} reps; synthetic 48x48x1 input)",
        args.batch_size, args.reps
    );
    Ok(())
}
