//! Reading float ONNX classifiers into one small graph of the ops FER CNNs use.
//!
//! Both the trainer (`fer-train fit --init FILE.onnx`: transfer learning) and the int8
//! quantizer read models through here, so they accept the same files and reject the same
//! ones with the same messages. The reader folds the constant subgraphs exporters emit
//! (shape arithmetic, reshaped slopes), recognises PReLU written as
//! `relu(x) - alpha * relu(-x)`, folds bias adds into the layer before them, and checks
//! every shape with batch 1. `eval` runs the result in f32: the quantizer's calibration
//! and the reference every int8 result is compared with.

pub mod eval;
pub mod graph;
mod lower;
pub mod proto;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

pub use graph::{BatchNorm, Conv, Dense, FloatGraph, Node, Op, Pool, Sampling, Tensor, Unary};
pub use lower::read_onnx;

use core::fmt;

/// A model the reader cannot take, with the node or field at fault.
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxError(pub String);

impl fmt::Display for OnnxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OnnxError {}
