//! `imported`: a plain chain of layers built from a layer list, the shape every model
//! brought in from ONNX takes (`fer-train fit --init FILE.onnx`).
//!
//! The list ([`LayerSpec`]) is stored in checkpoints, so a fine-tuned model rebuilds,
//! resumes and exports like the built-in ones. Forward passes carry either a feature map
//! (`[N, C, H, W]`) or a vector (`[N, K]`); each layer says which it takes.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{
    AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig,
};
use burn::nn::{BatchNorm, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

use super::blocks::{PRelu, batch_norm, glorot};

/// One layer's shape, enough to build it before its weights are loaded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LayerSpec {
    Conv {
        c_in: usize,
        c_out: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        /// top, left, bottom, right
        pads: [usize; 4],
        dilation: [usize; 2],
        groups: usize,
        bias: bool,
    },
    BatchNorm {
        features: usize,
        epsilon: f64,
    },
    Relu,
    /// Slopes `[C, H, W]` (per element), `[C, 1, 1]` (per channel) or `[1, 1, 1]`; for a
    /// vector input `[K, 1, 1]` or `[1, 1, 1]`.
    PRelu {
        shape: [usize; 3],
    },
    MaxPool {
        kernel: [usize; 2],
        stride: [usize; 2],
        pads: [usize; 4],
    },
    AvgPool {
        kernel: [usize; 2],
        stride: [usize; 2],
        pads: [usize; 4],
        count_include_pad: bool,
    },
    GlobalAvgPool,
    Flatten,
    Dense {
        d_in: usize,
        d_out: usize,
        bias: bool,
    },
    Dropout {
        prob: f64,
    },
}

/// A named layer of an imported model; `pretrained` ones came from the ONNX file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamedLayer {
    pub name: String,
    pub spec: LayerSpec,
    pub pretrained: bool,
}

/// `[C, H, W]` -> `[N, K]`.
#[derive(Module, Debug, Default)]
pub struct Flatten;

#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Layer {
    Conv(Conv2d),
    BatchNorm(BatchNorm),
    Relu(Relu),
    PRelu(PRelu),
    MaxPool(MaxPool2d),
    AvgPool(AvgPool2d),
    GlobalAvgPool(AdaptiveAvgPool2d),
    Flatten(Flatten),
    Dense(Linear),
    Dropout(Dropout),
}

fn padding([t, l, b, r]: [usize; 4]) -> PaddingConfig2d {
    if [t, l, b, r] == [0; 4] { PaddingConfig2d::Valid } else { PaddingConfig2d::Explicit(t, l, b, r) }
}

impl LayerSpec {
    /// A freshly initialised layer (Keras' glorot-uniform for conv and dense weights).
    pub fn init(&self, bn_momentum: f64, device: &Device) -> Layer {
        match *self {
            LayerSpec::Conv { c_in, c_out, kernel, stride, pads, dilation, groups, bias } => Layer::Conv(
                Conv2dConfig::new([c_in, c_out], kernel)
                    .with_stride(stride)
                    .with_padding(padding(pads))
                    .with_dilation(dilation)
                    .with_groups(groups)
                    .with_bias(bias)
                    .with_initializer(glorot())
                    .init(device),
            ),
            LayerSpec::BatchNorm { features, epsilon } => {
                Layer::BatchNorm(batch_norm(features, bn_momentum, epsilon, device))
            }
            LayerSpec::Relu => Layer::Relu(Relu::new()),
            LayerSpec::PRelu { shape } => Layer::PRelu(PRelu::new(shape, device)),
            LayerSpec::MaxPool { kernel, stride, pads } => Layer::MaxPool(
                MaxPool2dConfig::new(kernel).with_strides(stride).with_padding(padding(pads)).init(),
            ),
            LayerSpec::AvgPool { kernel, stride, pads, count_include_pad } => Layer::AvgPool(
                AvgPool2dConfig::new(kernel)
                    .with_strides(stride)
                    .with_padding(padding(pads))
                    .with_count_include_pad(count_include_pad)
                    .init(),
            ),
            LayerSpec::GlobalAvgPool => Layer::GlobalAvgPool(AdaptiveAvgPool2dConfig::new([1, 1]).init()),
            LayerSpec::Flatten => Layer::Flatten(Flatten),
            LayerSpec::Dense { d_in, d_out, bias } => Layer::Dense(
                LinearConfig::new(d_in, d_out).with_bias(bias).with_initializer(glorot()).init(device),
            ),
            LayerSpec::Dropout { prob } => Layer::Dropout(DropoutConfig::new(prob).init()),
        }
    }

    /// Output shape without batch for an input shape without batch, or why it does not fit.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let map = |what: &str| -> Result<[usize; 3], String> {
            match *input {
                [c, h, w] => Ok([c, h, w]),
                _ => Err(format!("{what} needs a feature map [C, H, W], got {input:?}")),
            }
        };
        let window = |i: usize, pad: usize, k: usize, s: usize, d: usize| {
            (i + pad)
                .checked_sub(d * (k - 1) + 1)
                .map(|v| v / s + 1)
                .ok_or(format!("window {k} larger than input {i}"))
        };
        Ok(match *self {
            LayerSpec::Conv { c_in, c_out, kernel, stride, pads, dilation, .. } => {
                let [c, h, w] = map("Conv")?;
                if c != c_in {
                    return Err(format!("Conv takes {c_in} channels, gets {c}"));
                }
                vec![
                    c_out,
                    window(h, pads[0] + pads[2], kernel[0], stride[0], dilation[0])?,
                    window(w, pads[1] + pads[3], kernel[1], stride[1], dilation[1])?,
                ]
            }
            LayerSpec::MaxPool { kernel, stride, pads } | LayerSpec::AvgPool { kernel, stride, pads, .. } => {
                let [c, h, w] = map("pooling")?;
                vec![
                    c,
                    window(h, pads[0] + pads[2], kernel[0], stride[0], 1)?,
                    window(w, pads[1] + pads[3], kernel[1], stride[1], 1)?,
                ]
            }
            LayerSpec::GlobalAvgPool => vec![map("GlobalAvgPool")?[0], 1, 1],
            LayerSpec::Flatten => vec![input.iter().product()],
            LayerSpec::Dense { d_in, d_out, .. } => {
                if input != [d_in] {
                    return Err(format!("Dense takes [{d_in}], gets {input:?}"));
                }
                vec![d_out]
            }
            LayerSpec::BatchNorm { features, .. } => {
                if input.first() != Some(&features) {
                    return Err(format!("BatchNorm over {features} channels gets {input:?}"));
                }
                input.to_vec()
            }
            LayerSpec::PRelu { shape } => {
                let full: Vec<usize> = match input.len() {
                    3 => input.to_vec(),
                    1 => vec![input[0], 1, 1],
                    _ => return Err(format!("PRelu gets {input:?}")),
                };
                if shape.iter().zip(&full).any(|(s, f)| *s != 1 && s != f) {
                    return Err(format!("PReLU slopes {shape:?} do not fit {input:?}"));
                }
                input.to_vec()
            }
            LayerSpec::Relu | LayerSpec::Dropout { .. } => input.to_vec(),
        })
    }
}

/// What flows between layers.
enum Flow {
    Map(Tensor<4>),
    Vec(Tensor<2>),
}

#[derive(Module, Debug)]
pub struct Sequential {
    pub layers: Vec<Layer>,
}

impl Sequential {
    pub fn new(specs: &[NamedLayer], bn_momentum: f64, device: &Device) -> Sequential {
        Sequential { layers: specs.iter().map(|l| l.spec.init(bn_momentum, device)).collect() }
    }

    /// Logits `[N, classes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut flow = Flow::Map(x);
        for layer in &self.layers {
            flow = match (layer, flow) {
                (Layer::Conv(c), Flow::Map(x)) => Flow::Map(c.forward(x)),
                (Layer::BatchNorm(b), Flow::Map(x)) => Flow::Map(b.forward(x)),
                (Layer::BatchNorm(b), Flow::Vec(x)) => Flow::Vec(b.forward(x)),
                (Layer::Relu(_), Flow::Map(x)) => Flow::Map(relu(x)),
                (Layer::Relu(_), Flow::Vec(x)) => Flow::Vec(relu(x)),
                (Layer::PRelu(p), Flow::Map(x)) => Flow::Map(p.forward(x)),
                (Layer::PRelu(p), Flow::Vec(x)) => Flow::Vec(p.forward(x)),
                (Layer::MaxPool(p), Flow::Map(x)) => Flow::Map(p.forward(x)),
                (Layer::AvgPool(p), Flow::Map(x)) => Flow::Map(p.forward(x)),
                (Layer::GlobalAvgPool(p), Flow::Map(x)) => Flow::Map(p.forward(x)),
                (Layer::Flatten(_), Flow::Map(x)) => Flow::Vec(x.flatten(1, 3)),
                (Layer::Flatten(_), Flow::Vec(x)) => Flow::Vec(x),
                (Layer::Dense(d), Flow::Vec(x)) => Flow::Vec(d.forward(x)),
                (Layer::Dropout(d), Flow::Map(x)) => Flow::Map(d.forward(x)),
                (Layer::Dropout(d), Flow::Vec(x)) => Flow::Vec(d.forward(x)),
                // Shapes are checked when the layer list is built (`check_chain`).
                _ => unreachable!("layer list checked at build time"),
            };
        }
        match flow {
            Flow::Vec(x) => x,
            Flow::Map(x) => x.flatten(1, 3),
        }
    }
}

/// Checks that `layers` chain from `input` (`[C, H, W]`) to `[classes]`; returns each
/// layer's output shape.
pub fn check_chain(
    layers: &[NamedLayer],
    input: [usize; 3],
    classes: usize,
) -> Result<Vec<Vec<usize>>, String> {
    let mut shape = input.to_vec();
    let mut shapes = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        shape = l.spec.output_shape(&shape).map_err(|e| format!("layer {i} `{}`: {e}", l.name))?;
        shapes.push(shape.clone());
    }
    if shape != [classes] && !(shape.len() == 3 && shape[0] == classes && shape[1] == 1 && shape[2] == 1) {
        return Err(format!("the layers end in {shape:?}, not the {classes} class scores"));
    }
    Ok(shapes)
}
