//! fer-runtime: int8 facial-expression inference.
//!
//! The core is `no_std` so the same code runs on Cortex-M firmware; `std` (on by default)
//! adds what needs an operating system. Today it holds the label contract that the trainer
//! and every model share; the quantizer, the `.fer` engine and the `fer` command line
//! arrive with issue #5.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

#[cfg(target_endian = "big")]
compile_error!("the .fer format is read in place and is little-endian");

#[cfg(feature = "std")]
pub mod backends;
pub mod engine;
pub mod format;
pub mod kernels;
pub mod labels;
#[cfg(feature = "std")]
pub mod onnx;
#[cfg(feature = "std")]
pub mod preprocess;
#[cfg(feature = "std")]
pub mod quant;
pub mod requant;
