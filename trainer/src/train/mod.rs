//! The training stage: `fit` runs one training, `cv` runs one per fold.

pub mod augment;
pub mod bench;
pub mod calibrate;
pub mod checkpoint;
pub mod config;
pub mod cv;
pub mod device;
pub mod diagnose;
pub mod distill;
mod epoch;
pub mod fit;
pub mod loader;
pub mod metrics;
pub mod monitor;
pub mod plot;
pub mod prepare;
pub mod schedule;
