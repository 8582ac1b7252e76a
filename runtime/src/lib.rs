//! fer-runtime: int8 facial-expression inference.
//!
//! The core (`format`, `engine`, `kernels`, `requant`, `labels`) is `no_std` and
//! allocation-free, so the same code runs on Cortex-M firmware; `std` (on by default) adds
//! the ONNX reader, the quantizer, image preprocessing, the backends and the `fer` command
//! line.
#![cfg_attr(not(feature = "std"), no_std)]

// Only what needs an allocator links `alloc`: the engine, format and kernels never do.
#[cfg(any(feature = "std", feature = "conformance", test))]
extern crate alloc;

#[cfg(target_endian = "big")]
compile_error!("the .fer format is read in place and is little-endian");

#[cfg(feature = "std")]
pub mod backends;
pub mod engine;
pub mod face_source;
pub mod format;
pub mod kernels;
pub mod labels;
#[cfg(feature = "std")]
pub mod metrics;
#[cfg(feature = "std")]
pub mod onnx;
pub mod overlay;
#[cfg(feature = "std")]
pub mod preprocess;
#[cfg(feature = "std")]
pub mod quant;
pub mod requant;
pub mod scores;
pub mod screen;
#[cfg(feature = "std")]
pub mod video;
#[cfg(feature = "std")]
pub mod vision;
