//! The float graph: ops with their weights, values numbered in execution order.

use super::OnnxError;

/// A dense f32 tensor (row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn new(dims: Vec<usize>, data: Vec<f32>) -> Tensor {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        Tensor { dims, data }
    }
}

/// 2-D convolution; `weight` is `[out, in / groups, kh, kw]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv {
    pub weight: Tensor,
    pub bias: Option<Vec<f32>>,
    pub stride: [usize; 2],
    /// top, left, bottom, right
    pub pads: [usize; 4],
    pub dilation: [usize; 2],
    pub groups: usize,
}

/// Fully connected layer; `weight` is `[out, in]` (ONNX Gemm with transB, PyTorch's layout).
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    pub weight: Tensor,
    pub bias: Option<Vec<f32>>,
}

/// Inference-mode BatchNormalization over channel axis 1.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    pub scale: Vec<f32>,
    pub bias: Vec<f32>,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub epsilon: f32,
}

/// Max or average pooling window.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// top, left, bottom, right
    pub pads: [usize; 4],
    /// Average pooling only: whether padded cells count in the divisor.
    pub count_include_pad: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Conv(Conv),
    BatchNorm(BatchNorm),
    Relu,
    Clip {
        min: f32,
        max: f32,
    },
    /// `slope` has the rank of the activation without its batch axis; each of its dims is 1
    /// or the activation's (per element `[C, H, W]`, per channel `[C, 1, 1]`, shared `[1, 1, 1]`).
    PRelu {
        slope: Tensor,
    },
    MaxPool(Pool),
    AvgPool(Pool),
    GlobalAvgPool,
    /// `[C, H, W]` to `[C * H * W]`.
    Flatten,
    Dense(Dense),
    /// Element-wise sum of two values of one shape (residual connections).
    Add,
    /// Over axis `axis` of the value's shape (the batch axis not counted).
    Softmax {
        axis: usize,
    },
    /// Zero padding of the `[C, H, W]` axes: `before` and `after` each axis (a detector's
    /// channel padding on residual shortcuts).
    Pad {
        before: [usize; 3],
        after: [usize; 3],
    },
    /// Axes reordered: output axis `i` is input axis `perm[i]` (batch axis excluded).
    Transpose {
        perm: Vec<usize>,
    },
    /// The same values, row-major, in the node's `shape`.
    Reshape,
    /// Inputs joined along `axis` (batch axis excluded).
    Concat {
        axis: usize,
    },
    /// An element-wise function of one value (int8: a 256-entry table).
    Unary(Unary),
    /// Upsampling of a map by whole factors `[rows, columns]` (ONNX Resize as FPNs use it).
    Upsample {
        factor: [usize; 2],
        sampling: Sampling,
    },
}

/// Where an upsampled pixel reads the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    /// Output pixel `(y, x)` is input pixel `(y / f0, x / f1)`.
    Nearest,
    /// Bilinear at `(o + 0.5) / f - 0.5` (Resize's `half_pixel`, PyTorch's
    /// `align_corners=False`, TensorFlow 2's resize), edges clamped.
    LinearHalfPixel,
    /// Bilinear at `o / f` (Upsample-9, Resize-10, Resize's `asymmetric`), edges clamped.
    LinearAsymmetric,
}

impl Sampling {
    /// Along one axis of factor `f`: output `o` reads input `i0` with weight `d - t` and
    /// `i0 + 1` with weight `t`, out of `d` (`i0` may be -1 and `i0 + 1` past the end:
    /// clamp both). Whole numbers, so every target computes the same bytes.
    pub fn taps(self, o: usize, f: usize) -> (isize, usize, usize) {
        match self {
            Sampling::Nearest => ((o / f) as isize, 0, 1),
            Sampling::LinearHalfPixel => crate::resize::linear_taps(o, f, false),
            Sampling::LinearAsymmetric => crate::resize::linear_taps(o, f, true),
        }
    }
}

/// Element-wise functions: on int8 each is exactly a table of its 256 inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    Sigmoid,
    Tanh,
    /// `max(0, min(1, alpha * x + beta))`.
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `x * hard_sigmoid(x)` with alpha 1/6, beta 1/2.
    HardSwish,
}

impl Unary {
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Unary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Unary::Tanh => x.tanh(),
            Unary::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            Unary::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Unary::Sigmoid => "Sigmoid",
            Unary::Tanh => "Tanh",
            Unary::HardSigmoid { .. } => "HardSigmoid",
            Unary::HardSwish => "HardSwish",
        }
    }
}

impl Op {
    /// The ONNX-style name used in tables and messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Conv(c) if c.groups > 1 && c.groups == c.weight.dims[0] => "DepthwiseConv",
            Op::Conv(_) => "Conv",
            Op::BatchNorm(_) => "BatchNormalization",
            Op::Relu => "Relu",
            Op::Clip { .. } => "Clip",
            Op::PRelu { .. } => "PRelu",
            Op::MaxPool(_) => "MaxPool",
            Op::AvgPool(_) => "AveragePool",
            Op::GlobalAvgPool => "GlobalAveragePool",
            Op::Flatten => "Flatten",
            Op::Dense(_) => "Dense",
            Op::Add => "Add",
            Op::Softmax { .. } => "Softmax",
            Op::Pad { .. } => "Pad",
            Op::Transpose { .. } => "Transpose",
            Op::Reshape => "Reshape",
            Op::Concat { .. } => "Concat",
            Op::Unary(u) => u.name(),
            Op::Upsample { .. } => "Resize",
        }
    }
}

/// One op. Its output is value `index + 1` (value 0 is the graph input).
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The ONNX node name, or (when the exporter named it after its weights) the layer's name.
    pub name: String,
    pub op: Op,
    /// Value ids this node reads.
    pub inputs: Vec<usize>,
    /// Output shape without the batch axis: `[C, H, W]` or `[K]`.
    pub shape: Vec<usize>,
}

/// A float model: one image input, nodes in execution order, one output (a classifier) or
/// several (a detector).
#[derive(Clone, Debug, PartialEq)]
pub struct FloatGraph {
    pub input_name: String,
    /// The first output's name.
    pub output_name: String,
    /// `[C, H, W]` (the batch axis may be dynamic; everything here runs batch 1).
    pub input_shape: [usize; 3],
    /// The file's input is `[N, H, W, C]` (tf2onnx): the reader resolved its NHWC -> NCHW
    /// readers, so `input_shape` and every evaluator here take `[C, H, W]`, but a runtime
    /// that runs the file itself (ONNX Runtime, tract) must be fed `[1, H, W, C]`.
    pub input_channels_last: bool,
    pub nodes: Vec<Node>,
    /// The first output's value id (the last node's in every classifier the reader makes).
    pub output: usize,
    /// Every output, in the model's order: name and value id.
    pub outputs: Vec<(String, usize)>,
    /// `metadata_props`, e.g. `fer.labels` from `fer-train export`.
    pub metadata: Vec<(String, String)>,
}

impl FloatGraph {
    /// Shape of value `id` without the batch axis.
    pub fn shape(&self, id: usize) -> Vec<usize> {
        if id == 0 { self.input_shape.to_vec() } else { self.nodes[id - 1].shape.clone() }
    }

    /// The file's own input dims (batch 1) and `image` (`[C, H, W]`) laid out for them.
    pub fn file_input(&self, image: &[f32]) -> ([usize; 4], Vec<f32>) {
        file_input(self.input_shape, self.input_channels_last, image)
    }

    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The input's `(scale, offset)` pairs (`pixel * scale + offset`, one or one per
    /// channel) from `fer.input_scale` and `fer.input_offset` metadata; `None` without either.
    pub fn input_map(&self) -> Result<Option<Vec<(f32, f32)>>, OnnxError> {
        metadata_input_map(&self.metadata)
    }

    /// Whether every node reads only the one before it (a plain chain of layers).
    pub fn is_chain(&self) -> bool {
        self.nodes.iter().enumerate().all(|(i, n)| n.inputs == [i])
    }

    /// Number of float weights (conv, dense, BN, PReLU).
    pub fn parameters(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| match &n.op {
                Op::Conv(c) => c.weight.data.len() + c.bias.as_ref().map_or(0, Vec::len),
                Op::Dense(d) => d.weight.data.len() + d.bias.as_ref().map_or(0, Vec::len),
                Op::BatchNorm(b) => 4 * b.scale.len(),
                Op::PRelu { slope } => slope.data.len(),
                _ => 0,
            })
            .sum()
    }
}

/// A `[C, H, W]` image as a file with input `shape` takes it: `[1, C, H, W]`, or
/// `[1, H, W, C]` with the channels interleaved when `channels_last`.
pub fn file_input(shape: [usize; 3], channels_last: bool, image: &[f32]) -> ([usize; 4], Vec<f32>) {
    let [c, h, w] = shape;
    if !channels_last {
        return ([1, c, h, w], image.to_vec());
    }
    let hwc = (0..h * w).flat_map(|p| (0..c).map(move |ch| image[ch * h * w + p])).collect();
    ([1, h, w, c], hwc)
}

/// `fer.input_scale` / `fer.input_offset` from a model's metadata: each one number or a
/// comma-separated list, one per channel (a single number applies to every channel; an
/// absent key is 1/255 or 0). `None` without either key.
pub fn metadata_input_map(metadata: &[(String, String)]) -> Result<Option<Vec<(f32, f32)>>, OnnxError> {
    let get = |key: &str| -> Result<Option<Vec<f32>>, OnnxError> {
        metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| {
                v.split(',')
                    .map(|x| {
                        x.trim()
                            .parse::<f32>()
                            .map_err(|e| OnnxError(std::format!("metadata {key} = {v:?}: {e}")))
                    })
                    .collect()
            })
            .transpose()
    };
    let (scales, offsets) = (get("fer.input_scale")?, get("fer.input_offset")?);
    if scales.is_none() && offsets.is_none() {
        return Ok(None);
    }
    let (scales, offsets) = (scales.unwrap_or(std::vec![1.0 / 255.0]), offsets.unwrap_or(std::vec![0.0]));
    input_map_pairs(&scales, &offsets).map(Some)
}

/// An input map fits an input of `channels` channels: one pair for all, or one per channel.
pub fn check_input_map_channels(pairs: &[(f32, f32)], channels: usize) -> Result<(), OnnxError> {
    if pairs.len() == 1 || pairs.len() == channels {
        return Ok(());
    }
    Err(OnnxError(std::format!("{} (scale, offset) pairs for an input of {channels} channels", pairs.len())))
}

/// Scales and offsets as `(scale, offset)` pairs: lists of one length, or one of them a
/// single number for every channel.
pub fn input_map_pairs(scales: &[f32], offsets: &[f32]) -> Result<Vec<(f32, f32)>, OnnxError> {
    let n = scales.len().max(offsets.len());
    if scales.is_empty()
        || offsets.is_empty()
        || (scales.len() != n && scales.len() != 1)
        || (offsets.len() != n && offsets.len() != 1)
    {
        return Err(OnnxError(std::format!(
            "{} scales and {} offsets: give one of each, or one per channel",
            scales.len(),
            offsets.len()
        )));
    }
    let at = |v: &[f32], i: usize| if v.len() == 1 { v[0] } else { v[i] };
    let pairs: Vec<(f32, f32)> = (0..n).map(|i| (at(scales, i), at(offsets, i))).collect();
    if pairs.iter().any(|&(s, o)| !(s.is_finite() && s != 0.0 && o.is_finite())) {
        return Err(OnnxError(std::format!(
            "input map {pairs:?}: scales must be finite and non-zero, offsets finite"
        )));
    }
    Ok(pairs)
}
