//! fer-trainer: FER datasets in, trained CNNs out.
//!
//! Laid out like burn's examples, one stage per module: `data` reads, checks, splits and
//! balances datasets; model, training and export stages build on it.

pub mod data;
pub mod fsutil;
