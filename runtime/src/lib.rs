//! fer-runtime: the `fer` app on the int8 core ([`fer_core`], `no_std`), one folder per
//! stage:
//!
//! - [`onnx`] (reader, float evaluator) and [`quant`] (the quantizer): the compiler side,
//!   float ONNX in, `.fer` out;
//! - [`backends`]: the one inference seam, where every model runs (the own engine, ONNX
//!   Runtime, tract, the own f32 evaluator) behind one trait;
//! - [`vision`]: the detector's decoding, alignment, tracking, the frame -> faces pipeline;
//! - [`video`]: camera, replay and streams; [`preprocess`], [`metrics`]: images in, scores
//!   out; [`fsutil`]: atomic writes; [`testdata`]: where tests find the shared data. The
//!   `fer` command line lives in the binary (`src/cli/`).
//!
//! The core's modules are re-exported under their own names (`fer_runtime::engine` is
//! `fer_core::engine`), so a user of the app crate needs one dependency.

pub use fer_core::{engine, face_source, format, kernels, labels, overlay, requant, resize, scores, screen};

pub mod backends;
pub mod error_line;
pub mod fsutil;
pub mod metrics;
pub mod onnx;
pub mod preprocess;
pub mod quant;
pub mod testdata;
pub mod video;
pub mod vision;
