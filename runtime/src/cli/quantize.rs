//! `fer quantize`.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use fer_runtime::engine::Engine;
use fer_runtime::format::{AlignedBytes, Model};
use fer_runtime::onnx::eval;
use fer_runtime::preprocess::{image_files, labeled_images, load_image, spread};
use fer_runtime::quant::{self, Method};
use fer_runtime::vision::classify::argmax;
use fer_runtime::vision::frame::{RgbFrame, letterbox_into};
use serde::Serialize;

use super::write_atomic;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Calibration {
    /// Each tensor's full observed range.
    Minmax,
    /// Each tensor's range clipped to --percentile of its values.
    Percentile,
}

#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// The float ONNX model (a classifier, or a detector such as BlazeFace).
    model: PathBuf,
    /// Calibration images (any folder tree of jpg/png/bmp; class folders are fine).
    #[arg(long)]
    calib: PathBuf,
    /// The int8 model to write.
    #[arg(long)]
    out: PathBuf,
    /// The QDQ ONNX twin [default: <out name>.qdq.onnx beside --out].
    #[arg(long)]
    qdq_out: Option<PathBuf>,
    /// Calibration images used, spread over the folder.
    #[arg(long, default_value_t = 200)]
    calib_images: usize,
    #[arg(long, value_enum, default_value_t = Calibration::Minmax)]
    method: Calibration,
    #[arg(long, default_value_t = 99.99)]
    percentile: f64,
    /// Class folders to score the float and int8 models on (accuracy drop).
    #[arg(long)]
    eval: Option<PathBuf>,
    /// At most this many evaluation images (spread over the classes); 0: all.
    #[arg(long, default_value_t = 0)]
    eval_images: usize,
    /// The model's input is `pixel * scale + offset` (pixels 0..=255); one value, or one per
    /// channel separated by commas [default: the model's `fer.input_scale` metadata, else 1/255].
    #[arg(long, value_delimiter = ',')]
    input_scale: Vec<f32>,
    /// See --input-scale [default: `fer.input_offset` metadata, else 0; BlazeFace: -1].
    #[arg(long, allow_negative_numbers = true, value_delimiter = ',')]
    input_offset: Vec<f32>,
    /// The model's input is `(pixel / 255 - mean) / std` per channel (PyTorch's
    /// `Normalize`; ImageNet: `--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225`); instead of
    /// --input-scale/--input-offset.
    #[arg(long, value_delimiter = ',', requires = "std", conflicts_with_all = ["input_scale", "input_offset"])]
    mean: Vec<f32>,
    /// See --mean.
    #[arg(long, value_delimiter = ',', requires = "mean")]
    std: Vec<f32>,
    /// Calibration images letterboxed into the square input (bars at the input's 0), as the
    /// face detector sees frames (default: stretched to the input, as classifiers see crops).
    #[arg(long)]
    letterbox: bool,
    /// An output's range set by hand, `NAME=LO:HI` (repeatable): a detector's score logits
    /// matter near the threshold only (BlazeFace: `classificators=-8:8`).
    #[arg(long, value_parser = output_range, allow_hyphen_values = true)]
    output_range: Vec<(String, f32, f32)>,
    /// Equalize the channels of each conv that feeds one other conv (see docs/runtime.md).
    #[arg(long)]
    equalize: bool,
    /// Layers whose weights get a second int8 pass for their rounding error (about 16-bit
    /// weights, at the cost of one more such layer and an Add; comma-separated names, as
    /// `--json`'s per_layer lists them). See docs/runtime.md.
    #[arg(long, value_delimiter = ',')]
    split_weights: Vec<String>,
    /// Bits per weight: 8, or 7 (-63..=63), which AVX2 CPUs without VNNI multiply with
    /// `vpmaddubsw`, 32 products an instruction; recorded in the file. See docs/runtime.md
    /// for what it costs in accuracy and buys in speed.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(7..=8))]
    weight_bits: u8,
    #[arg(long)]
    json: bool,
}

/// `NAME=LO:HI` -> (name, lo, hi).
fn output_range(s: &str) -> Result<(String, f32, f32), String> {
    let bad = || format!("{s:?}: give NAME=LO:HI, e.g. classificators=-8:8");
    let (name, range) = s.split_once('=').ok_or_else(bad)?;
    let (lo, hi) = range.split_once(':').ok_or_else(bad)?;
    let (lo, hi) = (lo.trim().parse().map_err(|_| bad())?, hi.trim().parse().map_err(|_| bad())?);
    Ok((name.trim().to_string(), lo, hi))
}

/// How calibration images become the model's input.
struct InputMap {
    shape: [usize; 3],
    /// `(scale, offset)`: one for every channel, or one per channel.
    pairs: Vec<(f32, f32)>,
    letterbox: bool,
}

impl InputMap {
    fn new(a: &QuantizeArgs, graph: &fer_runtime::onnx::FloatGraph) -> anyhow::Result<InputMap> {
        use fer_runtime::onnx::graph::input_map_pairs;
        let named = |e: fer_runtime::onnx::OnnxError| anyhow!("{}: {e}", a.model.display());
        let pairs = if !a.mean.is_empty() {
            // (p / 255 - mean) / std = p * (1 / (255 std)) - mean / std.
            let n = a.mean.len().max(a.std.len());
            let at =
                |v: &[f32], i: usize| if v.len() == 1 { v[0] } else { v.get(i).copied().unwrap_or(f32::NAN) };
            let scales: Vec<f32> = (0..n).map(|i| 1.0 / (255.0 * at(&a.std, i))).collect();
            let offsets: Vec<f32> = (0..n).map(|i| -at(&a.mean, i) / at(&a.std, i)).collect();
            input_map_pairs(&scales, &offsets).map_err(|e| anyhow!("--mean/--std: {e}"))?
        } else {
            let meta = graph.input_map().map_err(named)?;
            let (meta_s, meta_o): (Vec<f32>, Vec<f32>) = meta.unwrap_or_default().into_iter().unzip();
            let pick = |flag: &[f32], meta: Vec<f32>, default: f32| match (flag.is_empty(), meta.is_empty()) {
                (false, _) => flag.to_vec(),
                (true, false) => meta,
                (true, true) => vec![default],
            };
            let scales = pick(&a.input_scale, meta_s, 1.0 / 255.0);
            let offsets = pick(&a.input_offset, meta_o, 0.0);
            input_map_pairs(&scales, &offsets).map_err(|e| anyhow!("--input-scale/--input-offset: {e}"))?
        };
        let c = graph.input_shape[0];
        fer_runtime::onnx::graph::check_input_map_channels(&pairs, c).map_err(named)?;
        if a.letterbox && (c != 3 || graph.input_shape[1] != graph.input_shape[2]) {
            return Err(anyhow!(
                "--letterbox needs a square RGB input; {} takes {:?}",
                a.model.display(),
                graph.input_shape
            ));
        }
        Ok(InputMap { shape: graph.input_shape, pairs, letterbox: a.letterbox })
    }

    fn load(&self, path: &Path) -> anyhow::Result<Vec<f32>> {
        let mut v = if self.letterbox {
            let img = fer_runtime::preprocess::open_image(path)?.into_rgb8();
            let (w, h) = (img.width() as usize, img.height() as usize);
            let frame = RgbFrame::new(w, h, img.as_raw())?;
            let mut out = vec![0f32; self.shape.iter().product()];
            if let [(scale, offset)] = self.pairs[..] {
                letterbox_into(&frame, self.shape[1], scale, offset, &mut out);
                return Ok(out);
            }
            letterbox_into(&frame, self.shape[1], 1.0 / 255.0, 0.0, &mut out);
            out
        } else {
            load_image(path, self.shape)?
        };
        // Both give pixel / 255 here; the runtime's backends map it the same way.
        fer_runtime::preprocess::apply_input_map(&mut v, &self.pairs);
        Ok(v)
    }
}

#[derive(Debug, Serialize)]
struct EvalReport {
    images: usize,
    float_accuracy: f64,
    int8_accuracy: f64,
    accuracy_drop_points: f64,
    float_balanced_accuracy: f64,
    int8_balanced_accuracy: f64,
    top1_agreement: f64,
    float_vs_int8_max_abs_diff: f32,
}

#[derive(Debug, Serialize)]
struct Output {
    path: String,
    qdq_path: String,
    #[serde(flatten)]
    report: quant::Report,
    eval: Option<EvalReport>,
}

fn sibling(out: &Path, suffix: &str) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    out.with_file_name(format!("{stem}{suffix}"))
}

fn balanced(correct: &[usize], total: &[usize]) -> f64 {
    let present: Vec<f64> =
        correct.iter().zip(total).filter(|(_, t)| **t > 0).map(|(c, t)| *c as f64 / *t as f64).collect();
    present.iter().sum::<f64>() / present.len().max(1) as f64
}

pub fn run(a: QuantizeArgs) -> anyhow::Result<()> {
    let onnx = std::fs::read(&a.model).map_err(|e| anyhow!("{}: {e}", a.model.display()))?;
    let graph = fer_runtime::onnx::read_onnx(&onnx).map_err(|e| anyhow!("{}: {e}", a.model.display()))?;
    let input = InputMap::new(&a, &graph)?;
    if a.eval.is_some() && graph.outputs.len() > 1 {
        return Err(anyhow!(
            "--eval scores classifiers; {} has {} outputs (a detector?)",
            a.model.display(),
            graph.outputs.len()
        ));
    }
    let files = spread(&image_files(&a.calib)?, a.calib_images);
    if files.is_empty() {
        return Err(anyhow!("{}: no jpg/png/bmp images to calibrate with", a.calib.display()));
    }
    let images: Vec<Vec<f32>> = files.iter().map(|f| input.load(f)).collect::<Result<_, _>>()?;
    let method = match a.method {
        Calibration::Minmax => Method::MinMax,
        Calibration::Percentile => Method::Percentile(a.percentile),
    };
    let options = quant::Options {
        method,
        output_ranges: &a.output_range,
        input_map: Some(&input.pairs),
        equalize: a.equalize,
        split_weights: &a.split_weights,
        weight_bits: a.weight_bits,
    };
    let q =
        quant::quantize_with(&onnx, &images, &options).map_err(|e| anyhow!("{}: {e}", a.model.display()))?;
    let qdq_path = a.qdq_out.clone().unwrap_or_else(|| sibling(&a.out, ".qdq.onnx"));
    write_atomic(&a.out, &q.fer)?;
    write_atomic(&qdq_path, &q.qdq)?;
    // The float twin beside the .fer, for `fer bench` peers.
    let float_twin = sibling(&a.out, ".onnx");
    if !float_twin.exists() {
        write_atomic(&float_twin, &onnx)?;
    }

    let eval = a.eval.as_deref().map(|dir| eval_report(&a, &q, &input, dir)).transpose()?;
    let out = Output {
        path: a.out.display().to_string(),
        qdq_path: qdq_path.display().to_string(),
        report: q.report,
        eval,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    print_human(&out);
    Ok(())
}

/// `--eval DIR`: the float model and the int8 one on labelled images, side by side.
fn eval_report(
    a: &QuantizeArgs,
    q: &quant::Quantized,
    input: &InputMap,
    dir: &Path,
) -> anyhow::Result<EvalReport> {
    let mut items = labeled_images(dir)?;
    if a.eval_images > 0 && items.len() > a.eval_images {
        items = (0..a.eval_images).map(|i| items[i * items.len() / a.eval_images].clone()).collect();
    }
    let buf = AlignedBytes::new(&q.fer);
    let engine = Engine::with_best_kernels(Model::new(buf.as_slice())?);
    let mut arena = vec![0u8; engine.arena_size()];
    let classes = engine.output().len();
    let (mut fc, mut ic, mut tot) = (vec![0usize; classes], vec![0usize; classes], vec![0usize; classes]);
    let (mut agree, mut max_diff) = (0usize, 0f32);
    for (path, label) in &items {
        if *label >= classes {
            continue;
        }
        let img = input.load(path)?;
        let f = eval::run(&q.graph, &img)?;
        let i = engine.infer(&mut arena, &img)?;
        let (d, same) = quant::compare(&f, &i);
        max_diff = max_diff.max(d);
        agree += same as usize;
        tot[*label] += 1;
        fc[*label] += (argmax(&f) == *label) as usize;
        ic[*label] += (argmax(&i) == *label) as usize;
    }
    let n: usize = tot.iter().sum();
    let acc = |c: &[usize]| c.iter().sum::<usize>() as f64 / n.max(1) as f64;
    Ok(EvalReport {
        images: n,
        float_accuracy: acc(&fc),
        int8_accuracy: acc(&ic),
        accuracy_drop_points: 100.0 * (acc(&fc) - acc(&ic)),
        float_balanced_accuracy: balanced(&fc, &tot),
        int8_balanced_accuracy: balanced(&ic, &tot),
        top1_agreement: agree as f64 / n.max(1) as f64,
        float_vs_int8_max_abs_diff: max_diff,
    })
}

fn print_human(out: &Output) {
    let r = &out.report;
    println!(
        "wrote {} ({} bytes: {} layers, {} weight bytes, arena {} bytes) and {}",
        out.path, r.file_bytes, r.layers, r.weights_bytes, r.arena_bytes, out.qdq_path
    );
    println!(
        "calibration ({} images, {}): max |float - int8| {:.4}, same top-1 on {:.1}%",
        r.calibration_images,
        r.method,
        r.float_vs_int8_max_abs_diff,
        100.0 * r.top1_agreement
    );
    for l in r.per_layer.iter().filter(|l| !l.bias_widened_channels.is_empty()) {
        println!(
            "{} ({}): weight scale widened so the bias fits int32 in output channel(s) {:?}",
            l.name, l.op, l.bias_widened_channels
        );
    }
    if let Some(e) = &out.eval {
        println!(
            "eval ({} images): float {:.2}% -> int8 {:.2}% (drop {:.2} points); balanced {:.2}% -> {:.2}%; same top-1 {:.1}%",
            e.images,
            100.0 * e.float_accuracy,
            100.0 * e.int8_accuracy,
            e.accuracy_drop_points,
            100.0 * e.float_balanced_accuracy,
            100.0 * e.int8_balanced_accuracy,
            100.0 * e.top1_agreement
        );
    }
}
