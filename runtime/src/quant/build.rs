//! Float plan + ranges -> integer layers: per-tensor asymmetric int8 activations,
//! per-output-channel symmetric int8 weights, int32 biases, integer multipliers.

use super::calibrate::Ranges;
use super::fuse::{Plan, QOp};
use crate::format::{OpCode, SOFTMAX_ONE};
use crate::kernels::{PRELU_MAX_SHIFT, PRELU_MULT_LIMIT};
use crate::onnx::{OnnxError, Pool, Sampling, Unary};
use crate::requant::{multiplier, shared_shift};

/// An activation tensor's quantization.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QValue {
    /// `[C, H, W]` (vectors `[K, 1, 1]`).
    pub shape: [usize; 3],
    pub scale: f32,
    pub zero_point: i8,
}

impl QValue {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn quantize(&self, v: f32) -> i8 {
        ((v / self.scale).round() as i32 + self.zero_point as i32).clamp(-128, 127) as i8
    }
}

/// One int8 layer, weights in the float model's layout (`[O, I/g, kh, kw]`, `[out, in]`);
/// the writer packs them for the kernels.
#[derive(Clone, Debug, PartialEq)]
pub struct QLayer {
    pub name: String,
    pub code: OpCode,
    pub inputs: Vec<usize>,
    pub output: usize,
    pub act_min: i8,
    pub act_max: i8,
    pub groups: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub pads: [usize; 4],
    pub dilation: [usize; 2],
    pub count_include_pad: bool,
    pub weights: Vec<i8>,
    pub weight_dims: Vec<usize>,
    pub weight_scales: Vec<f32>,
    /// Quantized bias (scale `s_x * s_w`), zero point not folded in.
    pub bias: Vec<i32>,
    pub mult: Vec<i32>,
    pub shift: Vec<u8>,
    /// Concat: bytes per block from each input. Pad: channels before and after.
    pub runs: [usize; 2],
    /// PReLU: float slopes and their dims (for the ONNX twin).
    pub slope: Vec<f32>,
    pub slope_dims: Vec<usize>,
    /// Conv/Gemm: output channels whose weight scale was widened so that their bias fits.
    pub widened: Vec<usize>,
    /// Lut: the float function (for the ONNX twin); its table is `weights`, indexed by
    /// `x + 128`.
    pub unary: Option<Unary>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct QModel {
    pub values: Vec<QValue>,
    pub layers: Vec<QLayer>,
    /// The first output.
    pub output: usize,
    /// Every output: the float model's name and the value.
    pub outputs: Vec<(String, usize)>,
    pub softmax: bool,
    pub labels: Vec<String>,
    /// The float input is `pixel * scale + offset`, one pair or one per channel; `None`:
    /// `pixel / 255`.
    pub input_map: Option<Vec<(f32, f32)>>,
    /// Bits of every weight: 8 (-127..=127), or 7 (-63..=63, `format::FLAG_WEIGHTS_7BIT`).
    pub weight_bits: u8,
}

/// Scale and zero point covering `[lo, hi]` (widened to include 0, as int8 must represent
/// zero exactly for padding and ReLU).
pub fn activation_params(lo: f32, hi: f32) -> (f32, i8) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let span = (hi - lo).max(1e-6);
    let scale = span / 255.0;
    let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i8;
    (scale, zp)
}

/// `f` as a signed multiplier and shift (`0` for a zero factor).
fn shape3(s: &[usize]) -> [usize; 3] {
    match *s {
        [c, h, w] => [c, h, w],
        [k] => [k, 1, 1],
        _ => [s.iter().product(), 1, 1],
    }
}

/// The int8 model of `plan` with `weight_bits` (8 or 7) per weight.
pub fn build(
    plan: &Plan,
    ranges: &Ranges,
    labels: Vec<String>,
    weight_bits: u8,
) -> Result<QModel, OnnxError> {
    let qmax = weight_qmax(weight_bits)?;
    let mut values: Vec<QValue> = Vec::with_capacity(plan.nodes.len() + 1);
    // The input: images scaled to [0, 1] quantize exactly with scale 1/255, zero point -128.
    let (lo0, hi0) = (ranges.lo[0], ranges.hi[0]);
    let (s0, z0) = if lo0 >= 0.0 && hi0 <= 1.0 { (1.0 / 255.0, -128) } else { activation_params(lo0, hi0) };
    values.push(QValue { shape: plan.input_shape, scale: s0, zero_point: z0 });
    let mut layers = Vec::with_capacity(plan.nodes.len());
    for (i, n) in plan.nodes.iter().enumerate() {
        let v = i + 1;
        let x = values[n.inputs[0]];
        let shape = shape3(&n.shape);
        let same_as_input = matches!(
            n.op,
            QOp::MaxPool(_)
                | QOp::AvgPool(_)
                | QOp::GlobalAvgPool
                | QOp::Flatten
                | QOp::Pad { .. }
                | QOp::Upsample(..)
        );
        let (mut lo, mut hi) = (ranges.lo[v], ranges.hi[v]);
        if let Some((a, b)) = n.clamp {
            lo = lo.max(a);
            hi = hi.min(b);
        }
        let y = if same_as_input {
            QValue { shape, ..x }
        } else if matches!(n.op, QOp::Softmax { .. }) {
            // Probabilities in [0, 1): TFLite's fixed 1/256 steps from zero point -128.
            QValue { shape, scale: SOFTMAX_SCALE, zero_point: -128 }
        } else {
            let (scale, zero_point) = activation_params(lo, hi);
            QValue { shape, scale, zero_point }
        };
        values.push(y);
        let (act_min, act_max) = match n.clamp {
            Some((a, b)) => (y.quantize(a.max(-1e30)), y.quantize(b.min(1e30))),
            None => (-128, 127),
        };
        let what = format!("node `{}`", n.name);
        let mut l = QLayer {
            name: n.name.clone(),
            code: OpCode::Flatten,
            inputs: n.inputs.clone(),
            output: v,
            act_min,
            act_max,
            groups: 1,
            kernel: [1, 1],
            stride: [1, 1],
            pads: [0; 4],
            dilation: [1, 1],
            count_include_pad: false,
            weights: Vec::new(),
            weight_dims: Vec::new(),
            weight_scales: Vec::new(),
            bias: Vec::new(),
            mult: Vec::new(),
            shift: Vec::new(),
            runs: [0; 2],
            slope: Vec::new(),
            slope_dims: Vec::new(),
            widened: Vec::new(),
            unary: None,
        };
        let window = |l: &mut QLayer, p: &Pool| {
            l.kernel = p.kernel;
            l.stride = p.stride;
            l.pads = p.pads;
            l.count_include_pad = p.count_include_pad;
        };
        match &n.op {
            QOp::Conv { weight, bias, stride, pads, dilation, groups } => {
                let d = &weight.dims;
                let (o, ig) = (d[0], d[1]);
                l.code = if *groups > 1 && *groups == o && ig == 1 && *groups == x.shape[0] {
                    OpCode::DepthwiseConv
                } else {
                    OpCode::Conv
                };
                l.groups = *groups;
                l.kernel = [d[2], d[3]];
                (l.stride, l.pads, l.dilation) = (*stride, *pads, *dilation);
                quantize_weights(&mut l, &weight.data, d, bias, (x.scale, y.scale, qmax), &what)?;
            }
            QOp::Dense { weight, bias } => {
                l.code = OpCode::Dense;
                quantize_weights(&mut l, &weight.data, &weight.dims, bias, (x.scale, y.scale, qmax), &what)?;
            }
            QOp::MaxPool(p) => {
                l.code = OpCode::MaxPool;
                window(&mut l, p);
            }
            QOp::AvgPool(p) => {
                l.code = OpCode::AvgPool;
                window(&mut l, p);
            }
            QOp::GlobalAvgPool => l.code = OpCode::GlobalAvgPool,
            QOp::Flatten => l.code = OpCode::Flatten,
            QOp::Add | QOp::Concat { .. } => {
                let b = values[n.inputs[1]];
                (l.mult, l.shift) = pair_multipliers(x.scale, b.scale, y.scale)
                    .ok_or_else(|| OnnxError(format!("{what}: input scales out of range")))?;
                l.code = OpCode::Add;
                if let QOp::Concat { runs } = n.op {
                    l.code = OpCode::Concat;
                    l.runs = runs;
                }
            }
            QOp::Upsample(factor, sampling) => {
                l.kernel = *factor;
                l.code = match sampling {
                    Sampling::Nearest => OpCode::Upsample,
                    Sampling::LinearHalfPixel | Sampling::LinearAsymmetric => OpCode::UpsampleLinear,
                };
                l.count_include_pad = *sampling == Sampling::LinearAsymmetric;
            }
            QOp::Softmax { run } => {
                l.code = OpCode::Softmax;
                l.runs = [*run, 0];
                l.bias = softmax_table(x.scale);
            }
            QOp::Lut(u) => {
                l.code = OpCode::Lut;
                l.unary = Some(*u);
                l.weights = lut(*u, &x, &y, act_min, act_max);
            }
            QOp::Pad { before, after } => {
                l.code = OpCode::Pad;
                l.pads = [before[1], before[2], after[1], after[2]];
                l.runs = [before[0], after[0]];
            }
            QOp::PRelu { slope } => {
                l.code = OpCode::PRelu;
                l.slope = slope.data.clone();
                l.slope_dims = slope.dims.clone();
                // Slopes the engine indexes: one, one per channel, or one per element (HWC order).
                let [c, h, w] = shape;
                let per_channel =
                    slope.dims.len() == 3 && slope.dims[1] == 1 && slope.dims[2] == 1 && slope.dims[0] == c;
                let per_vector = n.shape.len() == 1 && slope.data.len() == c;
                let slopes: Vec<f32> = if slope.data.len() == 1 || per_channel || per_vector {
                    slope.data.clone()
                } else {
                    // Broadcast to [C, H, W], then reorder to [H, W, C].
                    let sd = if slope.dims.len() == 3 { slope.dims.clone() } else { vec![1, 1, 1] };
                    let at = |ch: usize, yy: usize, xx: usize| {
                        let (a, b2, c2) = (
                            if sd[0] == 1 { 0 } else { ch },
                            if sd[1] == 1 { 0 } else { yy },
                            if sd[2] == 1 { 0 } else { xx },
                        );
                        slope.data[(a * sd[1] + b2) * sd[2] + c2]
                    };
                    let mut out = Vec::with_capacity(c * h * w);
                    for yy in 0..h {
                        for xx in 0..w {
                            for ch in 0..c {
                                out.push(at(ch, yy, xx));
                            }
                        }
                    }
                    out
                };
                // One shift for the positive side and every slope, multipliers below
                // 2^22: the engine's arithmetic then fits i32 (see format::PRELU_MULT_LIMIT).
                let f = x.scale as f64 / y.scale as f64;
                let factors: Vec<f64> = slopes.iter().map(|&a| a as f64 * f).chain([f]).collect();
                let largest = factors.iter().fold(0f64, |m, v| m.max(v.abs()));
                let s = shared_shift(largest, PRELU_MULT_LIMIT, PRELU_MAX_SHIFT).ok_or_else(|| {
                    OnnxError(format!(
                        "{what}: requantization factor {largest:e} out of range (slopes {})",
                        if largest.is_finite() { "too large" } else { "not finite" }
                    ))
                })?;
                let scale = (2f64).powi(s as i32);
                l.mult = factors.iter().map(|v| (v * scale).round() as i32).collect();
                l.shift = vec![s];
            }
        }
        layers.push(l);
    }
    Ok(QModel {
        values,
        layers,
        output: plan.output,
        outputs: plan.outputs.clone(),
        softmax: plan.softmax,
        labels,
        input_map: None,
        weight_bits,
    })
}

/// The largest quantized |weight| of `bits`-bit weights (symmetric: 127 or 63).
fn weight_qmax(bits: u8) -> Result<f32, OnnxError> {
    match bits {
        8 => Ok(127.0),
        7 => Ok(63.0),
        b => Err(OnnxError(format!("--weight-bits {b}: choose 8 or 7"))),
    }
}

/// A softmax output's scale (its zero point is -128).
pub const SOFTMAX_SCALE: f32 = 1.0 / 256.0;

/// Softmax's table: `exp(-d * s_x)` in units of 2^-16 for the 256 distances `d` of an input
/// below its run's largest (the engine divides each entry by the run's sum).
fn softmax_table(sx: f32) -> Vec<i32> {
    (0..256).map(|d| ((-(d as f64) * sx as f64).exp() * SOFTMAX_ONE as f64).round() as i32).collect()
}

/// The int8 table of `f`: entry `q + 128` is `f` of input `q`, dequantized, in the output's
/// quantization (the same single rounding ONNX Runtime makes on the QDQ twin).
fn lut(f: Unary, x: &QValue, y: &QValue, lo: i8, hi: i8) -> Vec<i8> {
    (-128i32..=127)
        .map(|q| {
            let v = f.apply((q - x.zero_point as i32) as f32 * x.scale);
            y.quantize(v).clamp(lo, hi)
        })
        .collect()
}

/// Multipliers of two inputs into one output scale, with one shift that the larger factor
/// sets (Add, Concat).
fn pair_multipliers(sa: f32, sb: f32, sy: f32) -> Option<(Vec<i32>, Vec<u8>)> {
    let (fa, fb) = (sa as f64 / sy as f64, sb as f64 / sy as f64);
    let (_, s) = multiplier(fa.max(fb))?;
    let scale = (2f64).powi(s as i32);
    Some((vec![(fa * scale).round() as i32, (fb * scale).round() as i32], vec![s]))
}

/// Largest |quantized bias|. The engine adds the bias to an int32 accumulator; this leaves
/// the dot product 2^30 of room (a 3x3x512 conv needs under 2^28).
const BIAS_LIMIT: f64 = (1u32 << 30) as f64;

/// One output channel's weight scale: its largest |weight| over `qmax` (127, or 63 for
/// 7-bit weights), widened where the bias would not fit in [`BIAS_LIMIT`] steps of
/// `s_x * s_w`, as ONNX Runtime's and TFLite's quantizers do. A channel whose weights are
/// all zero gets `s_y / s_x` (its bias then requantizes with a factor of exactly 1).
/// Returns the scale and whether it was widened.
fn weight_scale(max_abs_weight: f32, bias: f32, sx: f32, sy: f32, qmax: f32) -> (f32, bool) {
    let natural = if max_abs_weight > 0.0 { max_abs_weight / qmax } else { sy / sx };
    // 1.0001: a margin for the rounding of the f32 scale (ONNX Runtime uses the same).
    let needed = (bias.abs() as f64 / (sx as f64 * BIAS_LIMIT) * 1.0001) as f32;
    if needed > natural { (needed, true) } else { (natural, false) }
}

/// Per-output-channel symmetric weights of at most `qmax`, int32 bias, requantization
/// multipliers (`scales` is the input's, the output's and `qmax`). Channels whose weight
/// scale had to widen for their bias are listed in `l.widened`.
fn quantize_weights(
    l: &mut QLayer,
    w: &[f32],
    dims: &[usize],
    bias: &[f32],
    (sx, sy, qmax): (f32, f32, f32),
    what: &str,
) -> Result<(), OnnxError> {
    let o = dims[0];
    let per = w.len() / o;
    l.weight_dims = dims.to_vec();
    for ch in 0..o {
        let row = &w[ch * per..(ch + 1) * per];
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        if !max.is_finite() || !bias[ch].is_finite() {
            return Err(OnnxError(format!("{what}: non-finite weights or bias in output channel {ch}")));
        }
        let (sw, widened) = weight_scale(max, bias[ch], sx, sy, qmax);
        if widened {
            l.widened.push(ch);
        }
        l.weight_scales.push(sw);
        l.weights.extend(row.iter().map(|v| (v / sw).round().clamp(-qmax, qmax) as i8));
        let sb = sx as f64 * sw as f64;
        let b = (bias[ch] as f64 / sb).round();
        if !(-BIAS_LIMIT..=BIAS_LIMIT).contains(&b) {
            return Err(OnnxError(format!("{what}: bias of channel {ch} overflows int32")));
        }
        l.bias.push(b as i32);
        let (m, s) = multiplier(sb / sy as f64).ok_or_else(|| {
            OnnxError(format!("{what}: requantization factor of channel {ch} out of range"))
        })?;
        l.mult.push(m);
        l.shift.push(s);
    }
    Ok(())
}
