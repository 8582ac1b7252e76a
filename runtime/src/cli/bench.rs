//! `fer bench`: the own engine beside ONNX Runtime and tract, same image, same process,
//! one thread each, median of many runs, interleaved in rounds; and, in the same
//! invocation, LiteRT through a peer script (`--litert`), timed the same way in its own
//! process right after.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::anyhow;
use clap::Args;
use fer_runtime::backends::{Backend, Own};
use serde_json::{Map, Value, json};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// An int8 .fer model (its twins `<name>.qdq.onnx` and `<name>.onnx` run the peers).
    #[arg(long)]
    model: PathBuf,
    /// Peers to time beside the engine: ort (int8 QDQ twin), ort-f32, tract (f32)
    /// [default: ort and tract, each where this build and machine have it, and its twin
    /// file exists; on a board without them the engine is timed alone].
    #[arg(long, value_delimiter = ',')]
    peers: Option<Vec<String>>,
    /// The float ONNX model for float peers [default: <name>.onnx beside --model].
    #[arg(long)]
    onnx: Option<PathBuf>,
    /// The QDQ ONNX model for `ort` [default: <name>.qdq.onnx beside --model].
    #[arg(long)]
    qdq: Option<PathBuf>,
    /// Timed runs per backend (after as many warm-up runs).
    #[arg(long, default_value_t = 300)]
    reps: usize,
    /// A peer script that times a .tflite model on LiteRT (`benches/litert_peer.py`; needs
    /// `pip install ai-edge-litert`), run with $PYTHON or python3 after the other peers.
    #[arg(long, requires = "tflite")]
    litert: Option<PathBuf>,
    /// The .tflite model for --litert (BlazeFace's: `scripts/blazeface-onnx.sh` keeps it).
    #[arg(long, requires = "litert")]
    tflite: Option<PathBuf>,
    /// Also time each layer of the engine: microseconds, GMAC/s.
    #[arg(long)]
    layers: bool,
    /// The engine's kernel set, as a CPU without the faster ones would run it (reference,
    /// avx2, avx512-vnni, neon, neon-dotprod) [default: the fastest this CPU runs].
    #[arg(long)]
    kernels: Option<String>,
    #[arg(long)]
    json: bool,
}

fn sibling(model: &Path, suffix: &str) -> PathBuf {
    let stem = model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    model.with_file_name(format!("{stem}{suffix}"))
}

/// Runs `f` `n` times, pushing each run's microseconds to `into` (none: warm-up).
fn timed(
    mut f: impl FnMut() -> anyhow::Result<()>,
    n: usize,
    mut into: Option<&mut Vec<f64>>,
) -> anyhow::Result<()> {
    for _ in 0..n {
        let s = Instant::now();
        f()?;
        if let Some(t) = into.as_deref_mut() {
            t.push(s.elapsed().as_secs_f64() * 1e6);
        }
    }
    Ok(())
}

fn median(t: &mut [f64]) -> f64 {
    t.sort_by(|a, b| a.total_cmp(b));
    t.get(t.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Median microseconds of `reps` runs after `reps / 10 + 5` warm-up runs.
fn time(mut f: impl FnMut() -> anyhow::Result<()>, reps: usize) -> anyhow::Result<f64> {
    timed(&mut f, reps / 10 + 5, None)?;
    let mut t = Vec::with_capacity(reps);
    timed(&mut f, reps, Some(&mut t))?;
    Ok(median(&mut t))
}

/// A repeatable face-sized test pattern.
fn pattern(shape: [usize; 3]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    (0..n).map(|i| ((i * 37 + (i / 48) * 11) % 255) as f32 / 255.0).collect()
}

/// Rounds the timed runs are spread over: each round runs every backend in turn, so a
/// noisy moment on a shared machine slows all of them rather than one.
const ROUNDS: usize = 10;

impl BenchArgs {
    /// The QDQ twin for `ort`: `--qdq`, else `<name>.qdq.onnx` beside the model.
    fn qdq_path(&self) -> PathBuf {
        self.qdq.clone().unwrap_or_else(|| sibling(&self.model, ".qdq.onnx"))
    }

    /// The float model for `ort-f32` and `tract`: `--onnx`, else `<name>.onnx` beside it.
    fn onnx_path(&self) -> PathBuf {
        self.onnx.clone().unwrap_or_else(|| sibling(&self.model, ".onnx"))
    }
}

/// The peers a plain `fer bench` times: those this build and machine can run.
fn default_peers(a: &BenchArgs) -> Vec<String> {
    let mut peers = Vec::new();
    let qdq = a.qdq_path();
    match fer_runtime::backends::Ort::available() {
        Ok(()) if qdq.is_file() => peers.push("ort".to_string()),
        Ok(()) => eprintln!("note: no {}: ONNX Runtime not timed", qdq.display()),
        Err(e) => eprintln!("note: ONNX Runtime not timed ({e})"),
    }
    if cfg!(feature = "tract") && a.onnx_path().is_file() {
        peers.push("tract".to_string());
    }
    peers
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    let mut own = engine(&a)?;
    let shape = own.input_shape();
    let image = pattern(shape);
    let reps = a.reps.max(1);
    let mut peers: Vec<(String, Box<dyn Backend>)> = Vec::new();
    // `--peers ''` times the engine alone (and LiteRT, with --litert).
    let asked = a.peers.clone().unwrap_or_else(|| default_peers(&a));
    for peer in asked.iter().filter(|p| !p.is_empty()) {
        peers.push((peer.replace('-', "_"), peer_backend(&a, peer)?));
    }
    // Warm-up, then the timed runs interleaved round by round.
    let mut samples = vec![Vec::with_capacity(reps); peers.len() + 1];
    for round in 0..=ROUNDS {
        let n = if round == 0 { reps / 10 + 5 } else { reps * round / ROUNDS - reps * (round - 1) / ROUNDS };
        let keep = round > 0;
        timed(|| own.infer(&image).map(drop).map_err(Into::into), n, keep.then_some(&mut samples[0]))?;
        for ((_, backend), t) in peers.iter_mut().zip(&mut samples[1..]) {
            timed(|| backend.infer(&image).map(drop).map_err(Into::into), n, keep.then_some(t))?;
        }
    }
    let engine_us = median(&mut samples[0]);
    let mut doc = Map::new();
    doc.insert("model".into(), json!(a.model.display().to_string()));
    doc.insert("kernels".into(), json!(own.kernels().name()));
    doc.insert("threads".into(), json!(1));
    doc.insert("reps".into(), json!(reps));
    doc.insert("engine_us".into(), json!(engine_us));
    let mut lines = vec![format!("engine ({}): {engine_us:.1} µs", own.name())];
    for ((key, backend), t) in peers.iter().zip(&mut samples[1..]) {
        let us = median(t);
        doc.insert(format!("{key}_us"), json!(us));
        doc.insert(format!("ratio_vs_{key}"), json!(engine_us / us));
        lines.push(format!(
            "{}: {us:.1} µs (engine / peer = {:.2}; {:.2}x faster)",
            backend.name(),
            engine_us / us,
            us / engine_us
        ));
    }
    if let (Some(script), Some(tflite)) = (&a.litert, &a.tflite) {
        let (us, runtime) = litert_peer(script, tflite, reps)?;
        doc.insert("litert_us".into(), json!(us));
        doc.insert("ratio_vs_litert".into(), json!(engine_us / us));
        lines.push(format!(
            "{runtime}, own process, after the rounds: {us:.1} µs (engine / peer = {:.2}; {:.2}x faster)",
            engine_us / us,
            us / engine_us
        ));
    }
    if a.layers {
        let rows = layer_times(&mut own, &image, reps)?;
        lines.extend(rows.iter().map(layer_line));
        doc.insert("layers".into(), Value::Array(rows));
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&Value::Object(doc))?);
    } else {
        for l in lines {
            println!("{l}");
        }
    }
    Ok(())
}

/// The own engine on `--model`, on the fastest kernels or the set `--kernels` names.
fn engine(a: &BenchArgs) -> anyhow::Result<Own> {
    let Some(name) = &a.kernels else { return Ok(Own::load(&a.model)?) };
    let all = fer_runtime::kernels::available();
    let Some(k) = all.iter().find(|k| k.name() == name) else {
        let names: Vec<_> = all.iter().map(|k| k.name()).collect();
        return Err(anyhow!("--kernels {name}: this CPU runs {}", names.join(", ")));
    };
    let raw = std::fs::read(&a.model).map_err(|e| anyhow!("{}: {e}", a.model.display()))?;
    Own::from_bytes(&raw, Some(*k)).map_err(|e| anyhow!("{}: {e}", a.model.display()))
}

/// A peer by its `--peers` name, on the model's ONNX twin.
fn peer_backend(a: &BenchArgs, peer: &str) -> anyhow::Result<Box<dyn Backend>> {
    Ok(match peer {
        "ort" => Box::new(fer_runtime::backends::Ort::load(&a.qdq_path(), "ONNX Runtime int8 (QDQ)")?),
        "ort-f32" => Box::new(fer_runtime::backends::Ort::load(&a.onnx_path(), "ONNX Runtime f32")?),
        #[cfg(feature = "tract")]
        "tract" => Box::new(fer_runtime::backends::Tract::load(&a.onnx_path())?),
        #[cfg(not(feature = "tract"))]
        "tract" => return Err(anyhow!("peer tract: this build has no tract (cargo feature `tract`)")),
        other => return Err(anyhow!("unknown peer {other:?}: use ort, ort-f32, tract")),
    })
}

/// One row of `--layers` as text.
fn layer_line(r: &Value) -> String {
    format!(
        "  {:>3} {:<14} {:>9} MAC {:>8.1} µs {:>7.1} GMAC/s",
        r["index"],
        r["op"].as_str().unwrap_or(""),
        r["macs"],
        r["us"].as_f64().unwrap_or(0.0),
        r["gmacs"].as_f64().unwrap_or(0.0)
    )
}

/// Runs the LiteRT peer script on `tflite` (one thread, `reps` runs); its median
/// microseconds and the runtime's name.
fn litert_peer(script: &Path, tflite: &Path, reps: usize) -> anyhow::Result<(f64, String)> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg("--model")
        .arg(tflite)
        .args(["--reps", &reps.to_string(), "--threads", "1"])
        .output()
        .map_err(|e| anyhow!("LiteRT peer: cannot run {python} {}: {e}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        return Err(anyhow!(
            "LiteRT peer {} failed ({}): {} (is `ai-edge-litert` installed for {python}?)",
            script.display(),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ));
    }
    let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or_default();
    let v: Value = serde_json::from_str(line)
        .map_err(|e| anyhow!("LiteRT peer {}: no JSON result ({e}): {stdout}", script.display()))?;
    let us =
        v["us"].as_f64().filter(|u| *u > 0.0).ok_or_else(|| anyhow!("LiteRT peer: no `us` in {line}"))?;
    Ok((us, v["runtime"].as_str().unwrap_or("LiteRT").to_string()))
}

/// Median time of each op alone, with its multiply-accumulates.
fn layer_times(own: &mut Own, image: &[f32], reps: usize) -> anyhow::Result<Vec<Value>> {
    let engine = own.engine();
    let mut arena = vec![0u8; engine.arena_size()];
    engine.set_input(&mut arena, image)?;
    engine.run(&mut arena)?;
    let m = engine.model;
    let mut rows = Vec::new();
    for i in 0..m.header.n_ops as u16 {
        let op = m.op(i).ok_or_else(|| anyhow!("bad op"))?;
        let (x, y) = (m.value(op.inputs[0]), m.value(op.output));
        let macs = match op.code {
            // Dense layers read the whole input (a vector, or a map flattened in place).
            fer_runtime::format::OpCode::Dense => y.len() * x.len(),
            fer_runtime::format::OpCode::Conv => {
                y.len() * x.shape[0] / op.groups * op.kernel[0] * op.kernel[1]
            }
            fer_runtime::format::OpCode::DepthwiseConv => y.len() * op.kernel[0] * op.kernel[1],
            _ => 0,
        };
        let us = time(|| engine.run_op(i, &mut arena).map_err(Into::into), reps)?;
        rows.push(json!({
            "index": i, "op": format!("{:?}", op.code), "output": y.shape, "macs": macs, "us": us,
            "gmacs": macs as f64 / us / 1e3,
        }));
    }
    Ok(rows)
}
