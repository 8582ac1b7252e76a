//! fer-core: the int8 facial-expression core, `no_std` and allocation-free, so the same
//! code runs in the `fer` app, on Cortex-M firmware, in the fuzz targets and in a browser.
//!
//! - [`format`](mod@format): the `.fer` file, validated in place (every offset and size) without
//!   panicking on bad bytes;
//! - [`engine`]: runs a model in one caller-provided arena;
//! - [`kernels`]: the int8 kernels, a portable reference and one set per architecture,
//!   checked against it bit for bit by one conformance suite;
//! - [`requant`]: fixed-point requantization; [`resize`]: bilinear sampling positions;
//! - [`labels`], [`scores`]: the FER classes and softmax/argmax on the outputs;
//! - [`overlay`], [`screen`], [`face_source`]: the embedded-graphics drawing every screen
//!   shares, and where a board's faces come from.
//!
//! Features: `std` (run-time CPU feature detection, `std::error::Error`, models read from
//! files), `alloc` (helpers that return `Vec`s), `graph-ops` (upsampling and softmax inside
//! a model), `conformance` (the kernel suite as library functions, for the firmware).
#![cfg_attr(not(any(feature = "std", test)), no_std)]

// Only what needs an allocator links `alloc`: the engine, format and kernels never do.
#[cfg(any(feature = "alloc", test))]
extern crate alloc;

#[cfg(target_endian = "big")]
compile_error!("the .fer format is read in place and is little-endian");

pub mod engine;
pub mod face_source;
pub mod format;
pub mod jpeg;
pub mod kernels;
pub mod labels;
pub mod overlay;
pub mod requant;
#[cfg(feature = "graph-ops")]
pub mod resize;
pub mod scores;
pub mod screen;
#[cfg(feature = "alloc")]
pub mod vision;
