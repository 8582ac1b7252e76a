//! `baseline`: the classic Keras FER net from the common "validation loss rises after
//! epoch 1" question, layer for layer:
//!
//! ```text
//! Conv2D(32, 3x3, same) -> BatchNormalization -> PReLU -> MaxPooling2D(2) -> Flatten
//! -> Dense(256) -> BatchNormalization -> PReLU -> Dropout(0.5) -> Dense(7)
//! ```
//!
//! With Keras' defaults: glorot-uniform weights, zero biases, BN epsilon 1e-3, PReLU with
//! one zero-initialised slope per element (Keras' `PReLU()` has no shared axes). At 48x48
//! that is 4.8 M parameters, 4.7 M of them in the first Dense layer: the reason it overfits
//! FER2013 within a few epochs. BN momentum is the run's `bn_momentum`: Keras' 0.99 is
//! `0.01` here, and on small datasets its running statistics lag the weights for many
//! epochs (docs/training.md).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

use super::blocks::{PRelu, batch_norm, glorot};

/// Dropout before the classifier unless the run sets `--dropout`.
pub const DROPOUT: f64 = 0.5;

#[derive(Module, Debug)]
pub struct Baseline {
    pub conv: Conv2d,
    pub bn1: BatchNorm,
    pub act1: PRelu,
    pub pool: MaxPool2d,
    pub fc1: Linear,
    pub bn2: BatchNorm,
    pub act2: PRelu,
    pub dropout: Dropout,
    pub fc2: Linear,
}

fn zero_bias(mut l: Linear, device: &Device) -> Linear {
    let n = l.weight.val().dims()[1];
    l.bias = Some(burn::module::Param::from_tensor(Tensor::zeros([n], device)));
    l
}

impl Baseline {
    pub fn new(
        channels: usize,
        height: usize,
        width: usize,
        classes: usize,
        bn_momentum: f64,
        dropout: f64,
        device: &Device,
    ) -> Baseline {
        let mut conv = Conv2dConfig::new([channels, 32], [3, 3])
            .with_padding(PaddingConfig2d::Same)
            .with_initializer(glorot())
            .init(device);
        conv.bias = Some(burn::module::Param::from_tensor(Tensor::zeros([32], device)));
        let (h2, w2) = (height / 2, width / 2);
        let fc1 = LinearConfig::new(32 * h2 * w2, 256).with_initializer(glorot()).init(device);
        let fc2 = LinearConfig::new(256, classes).with_initializer(glorot()).init(device);
        Baseline {
            conv,
            bn1: batch_norm(32, bn_momentum, 1e-3, device),
            act1: PRelu::new([32, height, width], device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            fc1: zero_bias(fc1, device),
            bn2: batch_norm(256, bn_momentum, 1e-3, device),
            act2: PRelu::new([256, 1, 1], device),
            dropout: DropoutConfig::new(dropout).init(),
            fc2: zero_bias(fc2, device),
        }
    }

    /// Logits `[N, classes]` for images `[N, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(self.act1.forward(self.bn1.forward(self.conv.forward(x))));
        let x: Tensor<2> = x.flatten(1, 3);
        let x = self.act2.forward(self.bn2.forward(self.fc1.forward(x)));
        self.fc2.forward(self.dropout.forward(x))
    }
}
