//! fer-trainer: FER datasets in, trained CNNs out.
//!
//! Laid out like burn's examples, one stage per module: `data` (the `fer-data` crate, which
//! builds without burn) reads, checks, splits and balances datasets; `model` holds the architectures; `train` fits them; `export` writes ONNX;
//! `transfer` starts a model from an ONNX file (fine-tuning); `ship` chains them into a
//! shipped model with its card.

pub use fer_data as data;
pub mod export;
pub mod model;
pub mod ship;
pub mod train;
pub mod transfer;
