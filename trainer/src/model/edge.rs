//! `edge`: a compact CNN for microcontrollers.
//!
//! Budget (checked by a test): at most 256 KB of int8 weights and 64 KB of live activations
//! at batch 1 (a layer's input and output, int8), with only ops the int8 runtime has: conv,
//! depthwise conv, BatchNorm (folded), ReLU, max pooling, global average pooling, dense.
//!
//! ```text
//! 48x48x1 -> conv 16 -> pool -> conv 32 -> conv 32 -> pool -> conv 64 -> conv 64 -> pool
//!         -> conv W -> depthwise 3x3 -> pointwise W -> global avg pool -> dropout -> dense 7
//! ```
//!
//! `edge` has a head of W = 128 channels (164 K parameters); `edge-wide` spends the rest of
//! the flash budget there, W = 192 (223 K parameters). The head runs at 6x6, so the wider
//! one costs about 10% more multiply-adds and no arena: the peak activations are at 48x48
//! and 24x24, which both share.

use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;

use super::blocks::{Act, ConvBnAct, glorot};

/// Dropout before the classifier unless the run sets `--dropout`.
pub const DROPOUT: f64 = 0.3;

/// The head's width of `edge`.
pub const HEAD: usize = 128;
/// The head's width of `edge-wide`: about 232 KB of int8 file (224 would pass 256 KB).
pub const HEAD_WIDE: usize = 192;

#[derive(Module, Debug)]
pub struct Edge {
    pub stem: ConvBnAct,
    pub b2a: ConvBnAct,
    pub b2b: ConvBnAct,
    pub b3a: ConvBnAct,
    pub b3b: ConvBnAct,
    pub b4a: ConvBnAct,
    pub b4dw: ConvBnAct,
    pub b4pw: ConvBnAct,
    pub pool: MaxPool2d,
    pub gap: AdaptiveAvgPool2d,
    pub dropout: Dropout,
    pub fc: Linear,
}

impl Edge {
    pub fn new(
        channels: usize,
        head: usize,
        classes: usize,
        bn_momentum: f64,
        dropout: f64,
        device: &Device,
    ) -> Edge {
        let c =
            |i, o, k, g| ConvBnAct::new(i, o, k, g, Act::Relu(burn::nn::Relu::new()), bn_momentum, device);
        Edge {
            stem: c(channels, 16, 3, 1),
            b2a: c(16, 32, 3, 1),
            b2b: c(32, 32, 3, 1),
            b3a: c(32, 64, 3, 1),
            b3b: c(64, 64, 3, 1),
            b4a: c(64, head, 3, 1),
            b4dw: c(head, head, 3, head),
            b4pw: c(head, head, 1, 1),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            gap: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            dropout: DropoutConfig::new(dropout).init(),
            fc: LinearConfig::new(head, classes).with_initializer(glorot()).init(device),
        }
    }

    /// Logits `[N, classes]`; with `trace`, the shape after every layer is recorded.
    pub fn forward_traced(&self, x: Tensor<4>, mut trace: Option<&mut Vec<Vec<usize>>>) -> Tensor<2> {
        let mut record = |t: &Tensor<4>| {
            if let Some(tr) = trace.as_deref_mut() {
                tr.push(t.dims().to_vec());
            }
        };
        record(&x);
        let mut x = x;
        for (layer, pool_after) in [
            (&self.stem, true),
            (&self.b2a, false),
            (&self.b2b, true),
            (&self.b3a, false),
            (&self.b3b, true),
            (&self.b4a, false),
            (&self.b4dw, false),
            (&self.b4pw, false),
        ] {
            x = layer.forward(x);
            record(&x);
            if pool_after {
                x = self.pool.forward(x);
                record(&x);
            }
        }
        let x = self.gap.forward(x);
        record(&x);
        let x: Tensor<2> = x.flatten(1, 3);
        self.fc.forward(self.dropout.forward(x))
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_traced(x, None)
    }
}
