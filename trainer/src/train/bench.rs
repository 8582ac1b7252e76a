//! `fer-train bench`: training and inference speed of each model on this machine.
//!
//! Synthetic batches (the model's compute alone; `data_decode` in the root benches measures
//! the input pipeline), a warm-up, then the median of timed repetitions. With a peer (the
//! same nets in Keras, `benches/keras_peer.py`) both run in the same invocation so their
//! ratio is measured side by side, never compared across runs.

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::config::TrainConfig;
use super::fit::{Objective, forward_loss, optimizer};
use super::loader::Batch;
use crate::data::ImageSpec;
use crate::model::{ModelConfig, ModelKind};

#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    pub model: ModelKind,
    pub parameters: usize,
    pub batch_size: usize,
    /// Forward, backward and optimizer step (Adam), images per second (median).
    pub train_images_per_second: f64,
    /// Evaluation-mode forward at `batch_size`, images per second (median).
    pub infer_images_per_second: f64,
    /// Evaluation-mode forward of one image, milliseconds (median).
    pub infer_batch1_ms: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn random_batch(n: usize, spec: ImageSpec, classes: usize, rng: &mut ChaCha8Rng) -> Batch {
    Batch {
        images: (0..n * spec.len()).map(|_| rng.random::<f32>()).collect(),
        targets: (0..n).map(|_| rng.random_range(0..classes as i64)).collect(),
        weights: vec![1.0; n],
        indices: (0..n).collect(),
        mirrored: vec![false; n],
        len: n,
    }
}

/// Times `kind` at `batch_size`: `reps` timed repetitions after `warmup` untimed ones.
pub fn bench(
    kind: ModelKind,
    spec: ImageSpec,
    batch_size: usize,
    warmup: usize,
    reps: usize,
    device: &Device,
) -> BenchResult {
    let classes = 7;
    let config = ModelConfig::builtin(kind, spec, classes, crate::model::default_bn_momentum());
    let ad = device.clone().autodiff();
    ad.seed(1);
    let mut model = config.init(&ad);
    let mut optim = optimizer(&TrainConfig::default());
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let batch = random_batch(batch_size, spec, classes, &mut rng);

    let mut train = Vec::new();
    for i in 0..warmup + reps {
        let t = Instant::now();
        let step = forward_loss(&model, &batch, 0..batch_size, &Objective::plain(spec, classes), &ad);
        let grads = GradientsParams::from_grads(step.objective.backward(), &model);
        model = optim.step(1e-3, model, grads);
        // Reading a weight back waits for the device to finish the step.
        let _ = crate::model::flat_weights(&model).first().copied();
        if i >= warmup {
            train.push(batch_size as f64 / t.elapsed().as_secs_f64());
        }
    }
    let eval = model.valid();
    let x = |n: usize| {
        Tensor::<4>::from_data(
            TensorData::new(
                batch.images[..n * spec.len()].to_vec(),
                [n, spec.channels as usize, spec.height as usize, spec.width as usize],
            ),
            device,
        )
    };
    let mut infer = Vec::new();
    let mut single = Vec::new();
    for i in 0..warmup + reps {
        let t = Instant::now();
        let _ = eval.forward(x(batch_size)).into_data();
        let batch_time = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let _ = eval.forward(x(1)).into_data();
        let one = t.elapsed().as_secs_f64();
        if i >= warmup {
            infer.push(batch_size as f64 / batch_time);
            single.push(one * 1000.0);
        }
    }
    BenchResult {
        model: kind,
        parameters: eval.num_params(),
        batch_size,
        train_images_per_second: median(train),
        infer_images_per_second: median(infer),
        infer_batch1_ms: median(single),
    }
}
