//! Layers shared by the FER models.

use burn::module::{Initializer, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d, Relu};
use burn::prelude::*;
use burn::tensor::activation::relu;

/// PReLU written as `relu(x) - alpha * relu(-x)`: bit-identical to PReLU in burn, and made
/// of ops the ONNX exporter lowers (burn's `nn::PRelu` does not export).
#[derive(Module, Debug)]
pub struct PRelu {
    /// One slope per channel (`[C]`), or per element (`[C, H, W]`, Keras' default).
    pub alpha: Param<Tensor<3>>,
}

impl PRelu {
    /// Slopes start at zero, as Keras initialises them (PReLU starts as ReLU).
    pub fn new(shape: [usize; 3], device: &Device) -> PRelu {
        PRelu { alpha: Param::from_tensor(Tensor::zeros(shape, device)) }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let [c, h, w] = self.alpha.val().dims();
        let alpha = self.alpha.val();
        let alpha: Tensor<D> = match D {
            2 => alpha.reshape([1, c * h * w]).unsqueeze(),
            4 => alpha.unsqueeze(),
            _ => panic!("PReLU takes [N, C] or [N, C, H, W]"),
        };
        relu(x.clone()) - alpha * relu(-x)
    }
}

/// Activation after a convolution or dense layer.
#[derive(Module, Debug)]
pub enum Act {
    Relu(Relu),
    PRelu(PRelu),
}

impl Act {
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Act::Relu(_) => relu(x),
            Act::PRelu(p) => p.forward(x),
        }
    }
}

/// BatchNorm whose running statistics move by `momentum` per batch (burn/PyTorch
/// convention: Keras' `momentum=0.99` is 0.01 here).
pub fn batch_norm(features: usize, momentum: f64, epsilon: f64, device: &Device) -> BatchNorm {
    BatchNormConfig::new(features).with_momentum(momentum).with_epsilon(epsilon).init(device)
}

/// Keras' `glorot_uniform`.
pub fn glorot() -> Initializer {
    Initializer::XavierUniform { gain: 1.0 }
}

/// Conv (same padding) -> BatchNorm -> activation. The conv has no bias: BatchNorm's beta
/// does its job, and the int8 quantizer folds BN into the conv anyway.
#[derive(Module, Debug)]
pub struct ConvBnAct {
    pub conv: Conv2d,
    pub bn: BatchNorm,
    pub act: Act,
}

impl ConvBnAct {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        groups: usize,
        act: Act,
        bn_momentum: f64,
        device: &Device,
    ) -> ConvBnAct {
        let conv = Conv2dConfig::new([c_in, c_out], [kernel, kernel])
            .with_padding(PaddingConfig2d::Same)
            .with_groups(groups)
            .with_bias(false)
            .with_initializer(glorot())
            .init(device);
        ConvBnAct { conv, bn: batch_norm(c_out, bn_momentum, 1e-5, device), act }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.act.forward(self.bn.forward(self.conv.forward(x)))
    }
}
