//! One training run: set up (or resume), epochs of streamed, augmented batches
//! ([`super::epoch`], on the devices [`super::device`] names), validation, best and last
//! checkpoints, early stopping; metrics.csv, curves.png, confusion.png and report.json.
//!
//! Determinism: the model is initialised from `seed` (by flex's generator on every device);
//! each epoch reseeds the backend (for
//! dropout) and derives its image order and every image's augmentation from `seed` and the
//! epoch number. A run resumed from `last/` therefore replays the interrupted epoch exactly
//! as the uninterrupted run would have.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{
    AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig, decay::WeightDecayConfig, momentum::MomentumConfig,
};
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::activation::log_softmax;
use fer_runtime::fsutil::write_atomic;
use serde::Serialize;

use super::checkpoint::{self, MODEL_FILE, OPTIMIZER_FILE, STATE_FILE, TrainState};
use super::config::{OptimizerKind, TrainConfig};
pub use super::device::parse_devices;
use super::diagnose::{self, Overfitting, PriorShift, ValAboveTrain};
use super::distill::SoftTargets;
use super::epoch::Session;
use super::loader::{Batch, Item, Loader, mix};
use super::metrics::{Confusion, EpochMetrics, SetMetrics};
use super::monitor::Monitor;
use super::plot;
use super::schedule::LrSchedule;
use crate::data::balance::{self, BalanceMode, WeightedSampler};
use crate::data::{ALL_CLASSES, ImageSpec};
use crate::model::{FerModel, ModelConfig};

/// Images per evaluation batch.
const EVAL_BATCH: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(
        "the loss became {value} at epoch {epoch}, batch {batch} (learning rate {lr:.3e}): training stopped. \
         Lower --lr, add --warmup-epochs, or check the data. The last good checkpoint is {last}"
    )]
    Diverged { value: f32, epoch: usize, batch: usize, lr: f64, last: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(String),
}

pub(super) fn io<E: std::fmt::Display>(what: impl std::fmt::Display) -> impl FnOnce(E) -> TrainError {
    move |e| TrainError::Io(format!("{what}: {e}"))
}

/// The images of a run: indices into the loader's dataset.
pub struct RunData {
    pub loader: Loader,
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    /// A separate test set, scored once at the end.
    pub test: Option<(Loader, Vec<usize>)>,
    pub classes: usize,
}

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Continue the run in `out` from its `last/` checkpoint.
    pub resume: bool,
    /// Show progress bars.
    pub progress: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Diagnoses {
    pub overfitting: Option<Overfitting>,
    pub val_above_train: Option<ValAboveTrain>,
    pub prior_shift: Option<PriorShift>,
    /// The three above in words, plus the run's events (plateau reductions, early stop).
    pub notes: Vec<String>,
}

/// report.json.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// `completed`, `early-stopped` or `diverged`.
    pub status: String,
    pub stop_reason: String,
    pub epochs_run: usize,
    pub best_epoch: Option<usize>,
    pub monitor: String,
    /// Validation metrics of the weights the run ends with (the best epoch's when restored).
    pub val: SetMetrics,
    /// Those weights' predicted class for each validation image, in `RunData::val` order
    /// (for per-subject figures; not written to report.json).
    #[serde(skip)]
    pub val_predictions: Vec<u8>,
    pub test: Option<SetMetrics>,
    /// Confusion of `test` when given, else of `val` (`counts[true][predicted]`).
    pub confusion: Confusion,
    pub labels: Vec<String>,
    pub diagnoses: Diagnoses,
    pub train_images: usize,
    pub val_images: usize,
    pub test_images: Option<usize>,
    pub parameters: usize,
    /// The distillation teachers' scores (each, then the ensemble), when the run distils.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub teachers: Vec<super::distill::TeacherScore>,
    pub mean_train_images_per_second: f64,
    pub seconds: f64,
    pub model: ModelConfig,
    pub config: TrainConfig,
}

pub(crate) fn optimizer(cfg: &TrainConfig) -> ModuleOptimizer {
    let decay = (cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay as f32));
    match cfg.optimizer {
        OptimizerKind::Sgd => {
            let momentum = (cfg.momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(cfg.momentum)
                    .with_dampening(0.0)
                    .with_nesterov(cfg.nesterov)
            });
            SgdConfig::new().with_momentum(momentum).with_weight_decay(decay).init()
        }
        // Keras' Adam epsilon.
        OptimizerKind::Adam => AdamConfig::new().with_epsilon(1e-7).with_weight_decay(decay).init(),
        OptimizerKind::Adamw => {
            AdamWConfig::new().with_epsilon(1e-7).with_weight_decay(cfg.weight_decay as f32).init()
        }
    }
}

pub(super) fn input_tensor(
    batch: &Batch,
    spec: ImageSpec,
    range: std::ops::Range<usize>,
    device: &Device,
) -> Tensor<4> {
    let per = spec.len();
    let data = TensorData::new(
        batch.images[range.start * per..range.end * per].to_vec(),
        [range.len(), spec.channels as usize, spec.height as usize, spec.width as usize],
    );
    Tensor::from_data(data, device)
}

/// What one forward pass over a batch (or a shard of it) gives.
pub(crate) struct Step {
    /// The training objective (smoothing and weights applied), on the device.
    pub objective: Tensor<1>,
    /// Plain cross-entropy summed over the images (comparable with validation loss).
    pub plain_loss_sum: f64,
    pub predictions: Vec<i64>,
}

/// What a training step minimises, besides the model and the batch.
#[derive(Clone, Copy)]
pub(crate) struct Objective<'a> {
    pub spec: ImageSpec,
    pub classes: usize,
    pub smoothing: f32,
    /// Distillation's targets: the loss becomes `alpha * CE + (1 - alpha) * T² * KL`.
    pub soft: Option<&'a SoftTargets>,
}

impl<'a> Objective<'a> {
    /// Plain cross-entropy, as evaluation scores it.
    pub(crate) fn plain(spec: ImageSpec, classes: usize) -> Objective<'a> {
        Objective { spec, classes, smoothing: 0.0, soft: None }
    }
}

/// Cross-entropy with label smoothing and per-image weights, averaged over the batch as
/// Keras does (`sum(w * loss) / n`); with distillation targets, mixed with the KL
/// divergence from the teachers' softened probabilities (Hinton et al. 2015: the T² keeps
/// the soft term's gradients at the hard term's scale whatever the temperature).
pub(crate) fn forward_loss(
    model: &FerModel,
    batch: &Batch,
    range: std::ops::Range<usize>,
    objective: &Objective,
    device: &Device,
) -> Step {
    let (n, classes) = (range.len(), objective.classes);
    let logits = model.forward(input_tensor(batch, objective.spec, range.clone(), device));
    let logp = log_softmax(logits.clone(), 1);
    let mut onehot = vec![0f32; n * classes];
    for (k, &t) in batch.targets[range.clone()].iter().enumerate() {
        onehot[k * classes + t as usize] = 1.0;
    }
    let onehot: Tensor<2> = Tensor::from_data(TensorData::new(onehot, [n, classes]), device);
    let smoothed = onehot.clone() * (1.0 - objective.smoothing) + objective.smoothing / classes as f32;
    let weights: Tensor<2> =
        Tensor::from_data(TensorData::new(batch.weights[range.clone()].to_vec(), [n, 1]), device);
    let mut per_image = -(logp.clone() * smoothed).sum_dim(1);
    if let Some(soft) = objective.soft {
        let kl = distillation_kl(soft, logits.clone(), batch, range, device);
        let t2 = soft.temperature * soft.temperature;
        per_image = per_image * soft.alpha + kl * ((1.0 - soft.alpha) * t2);
    }
    let objective = (per_image * weights).sum() / n as f32;
    let plain: f32 = (-(logp.detach() * onehot).sum()).into_scalar::<f32>();
    let predictions = logits.detach().argmax(1).into_data().iter::<i64>().collect();
    Step { objective, plain_loss_sum: plain as f64, predictions }
}

/// Per image `[n, 1]`: KL(teachers at T || student at T) = `sum p ln p - sum p ln q`.
fn distillation_kl(
    soft: &SoftTargets,
    logits: Tensor<2>,
    batch: &Batch,
    range: std::ops::Range<usize>,
    device: &Device,
) -> Tensor<2> {
    let n = range.len();
    let mut targets = Vec::with_capacity(n * soft.classes);
    let mut constants = Vec::with_capacity(n);
    for k in range {
        let (p, neg_entropy) = soft.target(batch.indices[k], batch.mirrored[k]);
        targets.extend_from_slice(p);
        constants.push(neg_entropy);
    }
    let p: Tensor<2> = Tensor::from_data(TensorData::new(targets, [n, soft.classes]), device);
    let constants: Tensor<2> = Tensor::from_data(TensorData::new(constants, [n, 1]), device);
    let logq = log_softmax(logits / soft.temperature, 1);
    constants - (logq * p).sum_dim(1)
}

/// What scoring a set of images gives.
pub struct Evaluation {
    pub metrics: SetMetrics,
    pub confusion: Confusion,
    /// Each image's predicted class, in the order of the indices scored.
    pub predictions: Vec<u8>,
}

/// Scores `indices` with the model in evaluation mode (optionally under augmentation).
pub fn evaluate(
    model: &FerModel,
    loader: &Loader,
    indices: &[usize],
    classes: usize,
    augment: Option<(&super::augment::Augment, u64)>,
    device: &Device,
) -> Result<Evaluation, TrainError> {
    let mut confusion = Confusion::new(classes);
    let mut loss_sum = 0.0;
    let mut predictions = Vec::with_capacity(indices.len());
    let items: Vec<Item> = indices.iter().map(|&i| (i, 1.0)).collect();
    let rx = loader.stream(items, EVAL_BATCH, augment.map(|(a, _)| a.clone()), augment.map_or(0, |(_, s)| s));
    for batch in rx {
        let batch = batch.map_err(TrainError::Io)?;
        let step = forward_loss(model, &batch, 0..batch.len, &Objective::plain(loader.spec, classes), device);
        loss_sum += step.plain_loss_sum;
        for (&t, &p) in batch.targets.iter().zip(&step.predictions) {
            confusion.add(t as usize, p as usize);
            predictions.push(p as u8);
        }
    }
    Ok(Evaluation { metrics: SetMetrics::from_confusion(loss_sum, &confusion), confusion, predictions })
}

pub(super) fn save_model(model: &FerModel) -> Result<Vec<u8>, TrainError> {
    let bytes = model.clone().into_record().into_bytes().map_err(io("serialising the model"))?;
    Ok(bytes.to_vec())
}

/// Loads `dir/model.bpk` into a fresh model of `config` on `device`.
pub fn load_model(dir: &Path, config: &ModelConfig, device: &Device) -> Result<FerModel, TrainError> {
    let path = dir.join(MODEL_FILE);
    let bytes = checkpoint::read_file(dir, MODEL_FILE).map_err(TrainError::Invalid)?;
    let record =
        ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes)).map_err(io(path.display()))?;
    config.init(device).try_load_record(record).map_err(io(path.display()))
}

pub(super) fn write_csv(path: &Path, history: &[EpochMetrics]) -> Result<(), TrainError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = [
        "epoch",
        "lr",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "val_balanced_acc",
        "val_macro_f1",
        "val_aug_loss",
        "val_aug_acc",
        "seconds",
        "train_images_per_second",
    ];
    w.write_record(header).map_err(io(path.display()))?;
    for h in history {
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
        w.write_record([
            h.epoch.to_string(),
            format!("{:.6e}", h.lr),
            format!("{:.6}", h.train.loss),
            format!("{:.6}", h.train.accuracy),
            format!("{:.6}", h.val.loss),
            format!("{:.6}", h.val.accuracy),
            format!("{:.6}", h.val.balanced_accuracy),
            format!("{:.6}", h.val.macro_f1),
            opt(h.val_augmented.as_ref().map(|v| v.loss)),
            opt(h.val_augmented.as_ref().map(|v| v.accuracy)),
            format!("{:.2}", h.seconds),
            format!("{:.1}", h.train_images_per_second),
        ])
        .map_err(io(path.display()))?;
    }
    let bytes = w.into_inner().map_err(io(path.display()))?;
    write_atomic(path, &bytes).map_err(io(path.display()))
}

/// The class mix the model trains on (after balancing), for the prior-shift diagnosis.
pub(super) fn training_prior(data: &RunData, weights: &[f64]) -> Vec<f64> {
    let mut mass = vec![0.0; data.classes];
    for (&i, &w) in data.train.iter().zip(weights) {
        mass[data.loader.ds.samples[i].class as usize] += w;
    }
    let total: f64 = mass.iter().sum();
    mass.iter().map(|m| m / total.max(f64::MIN_POSITIVE)).collect()
}

/// The model config saved in a run's `last/` checkpoint, if it has one.
pub(super) fn saved_model(last: &Path) -> Option<ModelConfig> {
    let text = std::fs::read_to_string(last.join(STATE_FILE)).ok()?;
    serde_json::from_str::<TrainState>(&text).ok().map(|s| s.model)
}

/// Test hook standing in for `kill -9` mid-epoch: abort (no cleanup, like a kill) after this
/// many training batches.
pub(super) fn crash_after() -> Option<usize> {
    std::env::var("FER_TRAIN_ABORT_AFTER_BATCHES").ok().and_then(|v| v.parse().ok())
}

/// Trains `data` under `cfg` into `out`: set up (or resume), then one epoch, validation and
/// checkpoint after another until the last epoch or early stopping, then the report.
pub fn run(
    cfg: &TrainConfig,
    data: &RunData,
    out: &Path,
    opts: &RunOptions,
) -> Result<RunReport, TrainError> {
    let started = Instant::now();
    let (mut run, mut model) = Session::set_up(cfg, data, out, opts)?;
    let abort_after = crash_after();
    let mut batches_done = 0usize;
    while run.state.epochs_done < cfg.epochs && run.state.stopped_early.is_none() {
        let epoch = run.state.epochs_done;
        let epoch_start = Instant::now();
        let (trained, train, lr) = run.train_epoch(cfg, data, model, epoch, opts, out, || {
            batches_done += 1;
            if abort_after == Some(batches_done) {
                std::process::abort();
            }
        })?;
        model = trained;
        let train_seconds = epoch_start.elapsed().as_secs_f64();
        let eval_model = model.valid();
        let (val, val_augmented) = validate(cfg, data, &eval_model, &run.device, epoch)?;
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            lr,
            train_images_per_second: train.images as f64 / train_seconds,
            train,
            val,
            val_augmented,
            seconds: epoch_start.elapsed().as_secs_f64(),
        };
        if run.end_epoch(cfg, metrics, &model, &eval_model, out)? {
            break;
        }
    }
    if !run.state.history.is_empty() {
        run.write_history(out)?;
    }
    run.report(cfg, data, model, out, started)
}

/// The model a run trains and, for a fine-tune, how it was prepared and where it freezes.
pub(super) fn model_to_train(
    cfg: &TrainConfig,
    data: &RunData,
    out: &Path,
    opts: &RunOptions,
) -> Result<(ModelConfig, Option<crate::transfer::Prepared>, Option<usize>), TrainError> {
    let spec = data.loader.spec;
    // A pretrained start (`--init`) brings its own layer list; otherwise a built-in model.
    // A resumed fine-tune rebuilds from its checkpoint's layer list: the ONNX file it
    // started from is not needed any more.
    let saved_layers = match (&cfg.transfer.init, opts.resume) {
        (Some(_), true) => saved_model(&out.join("last")),
        _ => None,
    };
    let transfer = match (&cfg.transfer.init, &saved_layers) {
        (Some(_), None) => Some(
            crate::transfer::prepare(&cfg.transfer, spec, data.classes, cfg.bn_momentum)
                .map_err(TrainError::Invalid)?,
        ),
        _ => None,
    };
    let model_config = match (&transfer, saved_layers) {
        (Some(p), _) => p.config.clone(),
        (None, Some(saved)) => saved,
        (None, None) => ModelConfig {
            dropout: cfg.dropout,
            ..ModelConfig::builtin(cfg.model, spec, data.classes, cfg.bn_momentum)
        },
    };
    let freeze_until = match &transfer {
        Some(p) => p.freeze_until,
        None => crate::transfer::freeze_index(&model_config, &cfg.transfer),
    };
    model_config.validate().map_err(TrainError::Invalid)?;
    Ok((model_config, transfer, freeze_until))
}

/// Per-image weights (loss weights, or sampling weights for the balanced sampler) and the
/// sampler when balancing draws images.
pub(super) fn balancing(
    cfg: &TrainConfig,
    data: &RunData,
) -> Result<(Vec<f64>, Option<WeightedSampler>), TrainError> {
    let weights: Vec<f64> = match cfg.balance {
        Some(by) => balance::sample_weights(&data.loader.ds, &data.train, by).map_err(TrainError::Invalid)?,
        None => vec![1.0; data.train.len()],
    };
    let sampler = match (cfg.balance, cfg.balance_mode) {
        (Some(_), BalanceMode::Sampler) => {
            Some(WeightedSampler::new(data.train.clone(), &weights).map_err(TrainError::Invalid)?)
        }
        _ => None,
    };
    Ok((weights, sampler))
}

/// The model, optimizer and loop state saved in `last/`, checked against this run's data.
pub(super) fn resume_from(
    last_dir: &Path,
    out: &Path,
    data: &RunData,
    model_config: &ModelConfig,
    optim: ModuleOptimizer,
    ad_device: &Device,
) -> Result<(FerModel, ModuleOptimizer, TrainState), TrainError> {
    let state_path = last_dir.join(STATE_FILE);
    if !state_path.is_file() {
        return Err(TrainError::Invalid(format!(
            "--resume: no {} (no finished epoch to resume from?)",
            state_path.display()
        )));
    }
    let bytes = checkpoint::read_file(last_dir, STATE_FILE).map_err(TrainError::Invalid)?;
    let text = String::from_utf8(bytes)
        .map_err(|e| TrainError::Invalid(format!("{}: {e}", state_path.display())))?;
    let state: TrainState = serde_json::from_str(&text).map_err(io(state_path.display()))?;
    if (state.train_images, state.val_images) != (data.train.len(), data.val.len())
        || &state.model != model_config
    {
        return Err(TrainError::Invalid(format!(
            "--resume: {} was trained on {} + {} images with {:?}; this data gives {} + {} with {:?}",
            out.display(),
            state.train_images,
            state.val_images,
            state.model,
            data.train.len(),
            data.val.len(),
            model_config
        )));
    }
    let model = load_model(last_dir, model_config, ad_device)?;
    let opt_path = last_dir.join(OPTIMIZER_FILE);
    let opt_bytes = checkpoint::read_file(last_dir, OPTIMIZER_FILE).map_err(TrainError::Invalid)?;
    let optim =
        optim.from_bytes(burn::tensor::Bytes::from_bytes_vec(opt_bytes)).map_err(io(opt_path.display()))?;
    eprintln!("resuming {} after epoch {}", out.display(), state.epochs_done);
    Ok((model, optim, state))
}

/// A new model (seeded from `cfg.seed`) and the state of a run that has not started.
pub(super) fn start_fresh(
    cfg: &TrainConfig,
    data: &RunData,
    model_config: &ModelConfig,
    transfer: Option<&crate::transfer::Prepared>,
    ad_device: &Device,
) -> Result<(FerModel, TrainState), TrainError> {
    ad_device.seed(cfg.seed);
    let model = match transfer {
        Some(p) => {
            for line in &p.summary {
                eprintln!("{line}");
            }
            crate::transfer::build(p, ad_device).map_err(TrainError::Invalid)?
        }
        None => seeded_init(model_config, cfg.seed, ad_device),
    };
    let schedule = LrSchedule::new(cfg.lr, cfg.warmup_epochs, cfg.epochs, cfg.schedule.clone())
        .map_err(TrainError::Invalid)?;
    let state = TrainState {
        config: cfg.clone(),
        model: model_config.clone(),
        epochs_done: 0,
        history: Vec::new(),
        schedule,
        monitor: Monitor::new(cfg.monitor, cfg.min_delta),
        events: Vec::new(),
        stopped_early: None,
        train_images: data.train.len(),
        val_images: data.val.len(),
    };
    Ok((model, state))
}

/// A new model from `seed`, drawn by flex's generator whatever device trains it, so that one
/// seed gives one starting point on every backend (LibTorch's generator draws others).
/// burn initialises parameters lazily, on first use; taking the record draws them all now,
/// in the module's order, rather than inside the first training step (after the epoch's
/// reseed, interleaved with dropout masks). The record then loads onto the training device
/// as leaf parameters of its autodiff graph.
pub(super) fn seeded_init(model_config: &ModelConfig, seed: u64, ad_device: &Device) -> FerModel {
    let flex = Device::flex();
    flex.seed(seed);
    let record = model_config.init(&flex).into_record();
    model_config.init(ad_device).load_record(record)
}

/// Validation metrics of `model` after `epoch`, clean and (when asked) under augmentation.
pub(super) fn validate(
    cfg: &TrainConfig,
    data: &RunData,
    model: &FerModel,
    device: &Device,
    epoch: usize,
) -> Result<(SetMetrics, Option<SetMetrics>), TrainError> {
    let val = evaluate(model, &data.loader, &data.val, data.classes, None, device)?.metrics;
    let val_augmented = if cfg.validate_augmented && !cfg.augment.is_identity() {
        let seed = mix(cfg.seed, 0xA0A0 + epoch as u64);
        let aug = Some((&cfg.augment, seed));
        Some(evaluate(model, &data.loader, &data.val, data.classes, aug, device)?.metrics)
    } else {
        None
    };
    Ok((val, val_augmented))
}

impl Session {
    /// Scores the weights the run ends with (the best epoch's when asked and there is one),
    /// draws confusion.png, diagnoses the curves and writes report.json.
    pub(super) fn report(
        self,
        cfg: &TrainConfig,
        data: &RunData,
        model: FerModel,
        out: &Path,
        started: Instant,
    ) -> Result<RunReport, TrainError> {
        let restore = cfg.restore_best && self.best_dir.join(MODEL_FILE).exists();
        let final_model = if restore {
            load_model(&self.best_dir, &self.model_config, &self.device)?
        } else {
            model.valid()
        };
        let device = &self.device;
        let val = evaluate(&final_model, &data.loader, &data.val, data.classes, None, device)?;
        let test = match &data.test {
            Some((loader, idx)) => Some(evaluate(&final_model, loader, idx, data.classes, None, device)?),
            None => None,
        };
        let labels: Vec<String> = ALL_CLASSES[..data.classes].iter().map(|s| s.to_string()).collect();
        let (confusion, which) = match &test {
            Some(t) => (t.confusion.clone(), "test"),
            None => (val.confusion.clone(), "validation"),
        };
        let weights_note = if restore { "best epoch's weights" } else { "last epoch's weights" };
        plot::confusion(
            &out.join("confusion.png"),
            &confusion,
            &labels,
            &format!("{which} set, {weights_note}"),
        )
        .map_err(|e| TrainError::Io(format!("confusion.png: {e}")))?;
        let diagnoses = self.diagnoses(cfg, data, &confusion, which);
        for note in &diagnoses.notes {
            eprintln!("note: {note}");
        }
        let state = self.state;
        let (status, stop_reason) = match &state.stopped_early {
            Some(reason) => ("early-stopped", reason.clone()),
            None => ("completed", format!("ran all {} epochs", cfg.epochs)),
        };
        let report = RunReport {
            status: status.to_string(),
            stop_reason,
            epochs_run: state.epochs_done,
            best_epoch: state.monitor.best_epoch.map(|e| e + 1),
            monitor: cfg.monitor.name().to_string(),
            val: val.metrics,
            val_predictions: val.predictions,
            test: test.map(|t| t.metrics),
            confusion,
            labels,
            diagnoses,
            train_images: data.train.len(),
            val_images: data.val.len(),
            test_images: data.test.as_ref().map(|(_, i)| i.len()),
            parameters: final_model.num_params(),
            teachers: self.teachers,
            mean_train_images_per_second: {
                let h = &state.history;
                h.iter().map(|m| m.train_images_per_second).sum::<f64>() / h.len().max(1) as f64
            },
            seconds: started.elapsed().as_secs_f64(),
            model: self.model_config,
            config: cfg.clone(),
        };
        let json = serde_json::to_vec_pretty(&report).map_err(io("report"))?;
        write_atomic(&out.join("report.json"), &json).map_err(io(out.join("report.json").display()))?;
        Ok(report)
    }

    /// Overfitting, validation above training, and the class-prior shift between what the
    /// model trained on and what it is scored on (`which` set's `confusion`).
    fn diagnoses(&self, cfg: &TrainConfig, data: &RunData, confusion: &Confusion, which: &str) -> Diagnoses {
        let history = &self.state.history;
        let eval_counts: Vec<usize> =
            confusion.counts.iter().map(|r| r.iter().sum::<u64>() as usize).collect();
        let overfitting = diagnose::overfitting(history);
        let val_above_train = diagnose::val_above_train(history, !cfg.augment.is_identity());
        let prior = diagnose::prior_shift(
            &training_prior(data, &self.weights),
            &eval_counts,
            which,
            cfg.balance.is_some(),
        );
        let mut notes: Vec<String> = [
            overfitting.as_ref().map(|o| o.message.clone()),
            val_above_train.as_ref().map(|v| v.message.clone()),
            prior.as_ref().map(|p| p.message.clone()),
        ]
        .into_iter()
        .flatten()
        .collect();
        notes.extend(self.state.events.iter().cloned());
        Diagnoses { overfitting, val_above_train, prior_shift: prior, notes }
    }
}
