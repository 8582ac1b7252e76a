//! `large`: a VGG-style net for GPU hosts: four blocks of two 3x3 conv (64, 128, 256, 512
//! channels) with BatchNorm and ReLU, max pooling after each, global average pooling, and a
//! 256-unit dense head with dropout.

use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::blocks::{Act, ConvBnAct, glorot};

/// Dropout before the classifier unless the run sets `--dropout`.
pub const DROPOUT: f64 = 0.5;

#[derive(Module, Debug)]
pub struct Large {
    pub convs: Vec<ConvBnAct>,
    pub pool: MaxPool2d,
    pub gap: AdaptiveAvgPool2d,
    pub dropout: Dropout,
    pub fc1: Linear,
    pub fc2: Linear,
}

impl Large {
    pub fn new(channels: usize, classes: usize, bn_momentum: f64, dropout: f64, device: &Device) -> Large {
        let widths = [64, 128, 256, 512];
        let mut convs = Vec::new();
        let mut c_in = channels;
        for w in widths {
            convs.push(ConvBnAct::new(c_in, w, 3, 1, Act::Relu(burn::nn::Relu::new()), bn_momentum, device));
            convs.push(ConvBnAct::new(w, w, 3, 1, Act::Relu(burn::nn::Relu::new()), bn_momentum, device));
            c_in = w;
        }
        Large {
            convs,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            gap: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            dropout: DropoutConfig::new(dropout).init(),
            fc1: LinearConfig::new(512, 256).with_initializer(glorot()).init(device),
            fc2: LinearConfig::new(256, classes).with_initializer(glorot()).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = x;
        for pair in self.convs.chunks(2) {
            x = self.pool.forward(pair[1].forward(pair[0].forward(x)));
        }
        let x: Tensor<2> = self.gap.forward(x).flatten(1, 3);
        let x = relu(self.fc1.forward(self.dropout.forward(x)));
        self.fc2.forward(self.dropout.forward(x))
    }
}
