//! `fer quantize`: a float ONNX classifier and calibration images in, an int8 `.fer`
//! model and its QDQ ONNX twin out, with the int8-vs-float difference measured.
//!
//! Stages, one module each: `split` (layers whose weights need two int8 passes), `fuse`
//! (BatchNorm folding, activation fusion), `calibrate` (activation ranges), `equalize`
//! (channel ranges evened out between convs), `build`
//! (integer parameters), `write` (the `.fer` file), `qdq` (the ONNX twin ONNX Runtime
//! checks it with).

pub mod build;
pub mod calibrate;
pub mod equalize;
pub mod fuse;
pub mod qdq;
pub mod split;
#[cfg(test)]
pub(crate) mod tests;
pub mod write;

use serde::Serialize;

pub use calibrate::Method;

use crate::engine::Engine;
use crate::format::{AlignedBytes, Model};
use crate::onnx::{FloatGraph, OnnxError, eval, read_onnx};

/// One layer of the report.
#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    pub name: String,
    pub op: String,
    pub output: [usize; 3],
    pub scale: f32,
    pub zero_point: i8,
    /// Output channels whose weight scale was widened so that their bias fits int32
    /// (near-zero weights under a bias); they lose weight precision, not range.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bias_widened_channels: Vec<usize>,
    /// `--equalize`: this layer's output range (max - min) before and after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equalized_range: Option<[f32; 2]>,
}

/// One output of the model, int8 against float on the calibration images.
#[derive(Clone, Debug, Serialize)]
pub struct OutputReport {
    pub name: String,
    pub values: usize,
    pub scale: f32,
    pub max_abs_diff: f32,
}

/// What `fer quantize --json` prints (DESIGN.md keys first).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub layers: usize,
    pub weights_bytes: usize,
    /// Largest |float - int8| over every output value of the calibration images.
    pub float_vs_int8_max_abs_diff: f32,
    /// Share of calibration images where int8 and float pick the same class (first output).
    pub top1_agreement: f64,
    pub outputs: Vec<OutputReport>,
    pub calibration_images: usize,
    pub method: String,
    pub file_bytes: usize,
    pub arena_bytes: usize,
    pub per_layer: Vec<LayerReport>,
}

pub struct Quantized {
    pub graph: FloatGraph,
    pub model: build::QModel,
    pub fer: Vec<u8>,
    pub qdq: Vec<u8>,
    pub report: Report,
}

/// Class names: the model's `fer.labels` metadata, else the FER2013 order when it fits.
fn labels(g: &FloatGraph, classes: usize) -> Vec<String> {
    if let Some(list) = g.metadata("fer.labels").and_then(|s| serde_json::from_str::<Vec<String>>(s).ok())
        && list.len() == classes
    {
        return list;
    }
    (0..classes)
        .map(|i| {
            crate::labels::ALL_CLASSES.get(i).map_or_else(|| std::format!("class{i}"), |s| s.to_string())
        })
        .collect()
}

/// Largest |a - b| and whether the arg-max agrees.
pub fn compare(a: &[f32], b: &[f32]) -> (f32, bool) {
    let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    let argmax = |v: &[f32]| {
        v.iter().enumerate().fold((0, f32::NEG_INFINITY), |m, (i, &x)| if x > m.1 { (i, x) } else { m }).0
    };
    (diff, argmax(a) == argmax(b))
}

/// Quantizes `onnx` with `images` (each `[C, H, W]` as the model takes it).
pub fn quantize(onnx: &[u8], images: &[Vec<f32>], method: Method) -> Result<Quantized, OnnxError> {
    quantize_with(onnx, images, &Options { method, ..Options::default() })
}

/// How [`quantize_with`] quantizes.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    pub method: Method,
    /// Some outputs' ranges set by hand: `(output name, lo, hi)`. A detector's score
    /// logits matter only near its threshold, but background anchors reach -200: clipping
    /// them to, say, [-16, 16] gives the scores 16x finer steps where they decide. The
    /// range also applies to the values a Concat joins into that output.
    pub output_ranges: &'a [(String, f32, f32)],
    /// The input's `(scale, offset)` (`pixel * scale + offset`, written into the `.fer` so
    /// that runtimes feed it as the float model was fed; the images are already mapped).
    pub input_map: Option<&'a [(f32, f32)]>,
    /// Equalize the channels of convs that feed one conv ([`equalize`]).
    pub equalize: bool,
    /// Layers (by name) whose weights are split into two int8 layers ([`split`]).
    pub split_weights: &'a [String],
    /// Bits per weight: 8, or 7 (-63..=63), which AVX2 CPUs without VNNI multiply twice as
    /// many at a time (`vpmaddubsw`; `format::FLAG_WEIGHTS_7BIT`), at some accuracy cost.
    pub weight_bits: u8,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            method: Method::MinMax,
            output_ranges: &[],
            input_map: None,
            equalize: false,
            split_weights: &[],
            weight_bits: 8,
        }
    }
}

/// Like [`quantize`], with the [`Options`].
pub fn quantize_with(onnx: &[u8], images: &[Vec<f32>], opts: &Options) -> Result<Quantized, OnnxError> {
    let Options { method, output_ranges, input_map, equalize, split_weights, weight_bits } = *opts;
    if weight_bits != 8 && !split_weights.is_empty() {
        return Err(OnnxError("--split-weights works on 8-bit weights: leave out --weight-bits".into()));
    }
    let mut graph = read_onnx(onnx)?;
    let splits = split::split_weights(&mut graph, split_weights)?;
    if let Some(map) = input_map {
        crate::onnx::graph::check_input_map_channels(map, graph.input_shape[0])?;
    }
    let mut plan = fuse::plan(&graph)?;
    let mut ranges = calibrate::calibrate(&graph, &plan, images, method)?;
    let equalized = if equalize { equalize::equalize(&mut plan, &mut ranges) } else { Vec::new() };
    for (name, lo, hi) in output_ranges {
        let Some(&(_, v)) = plan.outputs.iter().find(|(n, _)| n == name) else {
            let names: Vec<&str> = plan.outputs.iter().map(|(n, _)| n.as_str()).collect();
            return Err(OnnxError(std::format!("--output-range {name}: the model's outputs are {names:?}")));
        };
        if !(lo < hi && lo.is_finite() && hi.is_finite() && *lo <= 0.0 && *hi >= 0.0) {
            return Err(OnnxError(std::format!(
                "--output-range {name}={lo}:{hi}: give lo <= 0 <= hi, lo < hi"
            )));
        }
        calibrate::set_range_through_concats(&plan, &mut ranges, v, *lo, *hi);
    }
    split::give_hi_the_sums_range(&plan, &mut ranges, &splits);
    // Class names for classifiers; a detector's outputs are not classes.
    let classes = graph.shape(graph.output).iter().product();
    let names = if graph.outputs.len() == 1 { labels(&graph, classes) } else { Vec::new() };
    let mut model = build::build(&plan, &ranges, names, weight_bits)?;
    model.input_map = input_map.map(<[_]>::to_vec);
    let fer = write::write(&model)?;
    // The twin carries the input map as metadata, as a float model would.
    let mut metadata: Vec<(String, String)> =
        graph.metadata.iter().filter(|(k, _)| !k.starts_with("fer.input_")).cloned().collect();
    if let Some(map) = input_map {
        let list = |f: fn(&(f32, f32)) -> f32| {
            map.iter().map(|p| std::format!("{:e}", f(p))).collect::<Vec<_>>().join(",")
        };
        metadata.push(("fer.input_scale".into(), list(|p| p.0)));
        metadata.push(("fer.input_offset".into(), list(|p| p.1)));
    }
    let qdq = qdq::qdq_onnx(&model, &metadata);

    // Measure what quantization cost on the calibration images.
    let buf = AlignedBytes::new(&fer);
    let m = Model::new(buf.as_slice())
        .map_err(|e| OnnxError(std::format!("the written model does not load: {e}")))?;
    let engine = Engine::with_best_kernels(m);
    let mut arena = vec![0u8; engine.arena_size()];
    let (mut max_diff, mut agree) = (vec![0f32; graph.outputs.len()], 0usize);
    for img in images {
        let float = eval::run_outputs(&graph, img)?;
        let mut int8 = Vec::new();
        engine.infer_into(&mut arena, img, &mut int8).map_err(|e| OnnxError(e.to_string()))?;
        for (k, (f, i)) in float.iter().zip(&int8).enumerate() {
            let (d, same) = compare(f, i);
            max_diff[k] = max_diff[k].max(d);
            agree += (same && k == 0) as usize;
        }
    }
    let outputs = model
        .outputs
        .iter()
        .zip(&max_diff)
        .map(|((name, v), &d)| OutputReport {
            name: name.clone(),
            values: model.values[*v].len(),
            scale: model.values[*v].scale,
            max_abs_diff: d,
        })
        .collect();
    let weights_bytes = model.layers.iter().map(|l| l.weights.len()).sum();
    let per_layer = model
        .layers
        .iter()
        .map(|l| {
            let v = &model.values[l.output];
            LayerReport {
                name: l.name.clone(),
                op: std::format!("{:?}", l.code),
                output: v.shape,
                scale: v.scale,
                zero_point: v.zero_point,
                bias_widened_channels: l.widened.clone(),
                equalized_range: equalized
                    .iter()
                    .find(|e| e.name == l.name)
                    .map(|e| [e.range_before, e.range_after]),
            }
        })
        .collect();
    let report = Report {
        layers: model.layers.len(),
        weights_bytes,
        float_vs_int8_max_abs_diff: max_diff.iter().copied().fold(0.0, f32::max),
        top1_agreement: agree as f64 / images.len() as f64,
        outputs,
        calibration_images: images.len(),
        method: match method {
            Method::MinMax => "minmax".into(),
            Method::Percentile(p) => std::format!("percentile {p}"),
        },
        file_bytes: fer.len(),
        arena_bytes: engine.arena_size(),
        per_layer,
    };
    Ok(Quantized { graph, model, fer, qdq, report })
}

/// One op's int8 output against a reference's (ONNX Runtime on the QDQ twin).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpDiff {
    pub op: usize,
    /// Largest |ours - theirs| in LSB.
    pub max_lsb: i32,
    /// Values that differ, and values compared.
    pub differing: usize,
    pub values: usize,
}

/// Runs each op of `model` alone, fed the reference's int8 inputs (`values[id]`, `[C, H, W]`
/// order, one per value), and compares its output with the reference's.
pub fn op_by_op(
    engine: &Engine,
    model: &build::QModel,
    values: &[Vec<i8>],
) -> Result<Vec<OpDiff>, crate::engine::EngineError> {
    let mut arena = vec![0u8; engine.arena_size()];
    let mut diffs = Vec::with_capacity(model.layers.len());
    for (i, l) in model.layers.iter().enumerate() {
        for &v in &l.inputs {
            engine.write_value_chw(&mut arena, v as u16, &values[v]);
        }
        engine.run_op(i as u16, &mut arena)?;
        let theirs = &values[l.output];
        let mut ours = vec![0i8; theirs.len()];
        engine.read_value_chw(&arena, l.output as u16, &mut ours);
        let d: Vec<i32> = ours.iter().zip(theirs).map(|(&a, &b)| (a as i32 - b as i32).abs()).collect();
        diffs.push(OpDiff {
            op: i,
            max_lsb: d.iter().copied().max().unwrap_or(0),
            differing: d.iter().filter(|&&x| x > 0).count(),
            values: d.len(),
        });
    }
    Ok(diffs)
}
