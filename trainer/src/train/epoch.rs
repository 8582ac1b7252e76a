//! A run's epochs: the state it carries from epoch to epoch ([`Session`]), set up fresh or
//! resumed; each epoch's image order, its optimizer steps on one device or data-parallel
//! over several, the divergence check, and the checkpoints and early stopping at its end.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer, MultiGradientsParams};
use burn::prelude::*;
use fer_runtime::fsutil::write_atomic;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::checkpoint::{self, MODEL_FILE, MODEL_JSON, ModelCard, OPTIMIZER_FILE, STATE_FILE, TrainState};
use super::config::TrainConfig;
use super::device::parse_devices;
use super::diagnose;
use super::distill::{self, SoftTargets, TeacherScore};
use super::fit::{
    Objective, RunData, RunOptions, TrainError, balancing, forward_loss, io, model_to_train, optimizer,
    resume_from, save_model, start_fresh, write_csv,
};
use super::loader::{Batch, Item, mix};
use super::metrics::{Confusion, EpochMetrics, SetMetrics};
use super::monitor::EarlyStopping;
use super::plot;
use crate::data::balance::WeightedSampler;
use crate::model::{FerModel, ModelConfig};

/// What a run carries from epoch to epoch, besides the model (which each optimizer step
/// consumes and returns).
pub(super) struct Session {
    pub(super) model_config: ModelConfig,
    pub(super) devices: Vec<Device>,
    /// The first device, for evaluation; `ad_device` is its autodiff twin, for training.
    pub(super) device: Device,
    pub(super) ad_device: Device,
    pub(super) last_dir: PathBuf,
    pub(super) best_dir: PathBuf,
    /// Per training image: its loss weight, or its sampling weight under the sampler.
    pub(super) weights: Vec<f64>,
    pub(super) sampler: Option<WeightedSampler>,
    pub(super) optim: ModuleOptimizer,
    pub(super) state: TrainState,
    /// Frozen layers and per-group learning rates of a fine-tune.
    pub(super) groups: Option<crate::transfer::ParamGroups>,
    /// Distillation's targets for every image of the dataset, and the teachers' scores.
    pub(super) soft: Option<SoftTargets>,
    pub(super) teachers: Vec<TeacherScore>,
}

/// What one optimizer step saw: the objective, the plain loss summed over the batch, and
/// the predictions.
pub(super) struct StepResult {
    objective: f32,
    plain_loss_sum: f64,
    predictions: Vec<i64>,
}

impl Session {
    pub(super) fn set_up(
        cfg: &TrainConfig,
        data: &RunData,
        out: &Path,
        opts: &RunOptions,
    ) -> Result<(Session, FerModel), TrainError> {
        cfg.validate().map_err(TrainError::Invalid)?;
        let (model_config, transfer, freeze_until) = model_to_train(cfg, data, out, opts)?;
        if data.train.is_empty() || data.val.is_empty() {
            return Err(TrainError::Invalid(format!(
                "need training and validation images; got {} and {}",
                data.train.len(),
                data.val.len()
            )));
        }
        let devices = parse_devices(&cfg.devices).map_err(TrainError::Invalid)?;
        let device = devices[0].clone();
        let ad_device = device.clone().autodiff();
        let (last_dir, best_dir) = (out.join("last"), out.join("best"));
        std::fs::create_dir_all(out).map_err(io(out.display()))?;
        checkpoint::recover(&last_dir).map_err(io(last_dir.display()))?;
        checkpoint::recover(&best_dir).map_err(io(best_dir.display()))?;
        let (weights, sampler) = balancing(cfg, data)?;

        let (model, optim, state) = if opts.resume {
            resume_from(&last_dir, out, data, &model_config, optimizer(cfg), &ad_device)?
        } else {
            if last_dir.exists() {
                return Err(TrainError::Invalid(format!(
                    "{} already holds a run; continue it with --resume, or choose another --out",
                    out.display()
                )));
            }
            let (model, state) = start_fresh(cfg, data, &model_config, transfer.as_ref(), &ad_device)?;
            (model, optimizer(cfg), state)
        };
        let groups = crate::transfer::ParamGroups::new(&model, &model_config, &cfg.transfer, freeze_until);
        if groups.is_some() && devices.len() > 1 {
            return Err(TrainError::Invalid(
                "--freeze-until and --body-lr-mult work on one device for now; drop --devices or those flags"
                    .into(),
            ));
        }
        let (soft, teachers) = distillation(cfg, data)?;
        let session = Session {
            soft,
            teachers,
            model_config,
            devices,
            device,
            ad_device,
            last_dir,
            best_dir,
            weights,
            sampler,
            optim,
            state,
            groups,
        };
        Ok((session, model))
    }

    /// What this run's steps minimise.
    fn objective(&self, cfg: &TrainConfig, data: &RunData) -> Objective<'_> {
        Objective {
            spec: data.loader.spec,
            classes: data.classes,
            smoothing: cfg.label_smoothing,
            soft: self.soft.as_ref(),
        }
    }

    /// This epoch's training images with their loss weights, in the epoch's order.
    fn epoch_items(&self, cfg: &TrainConfig, data: &RunData, epoch: usize) -> Vec<Item> {
        let mut order_rng = ChaCha8Rng::seed_from_u64(mix(cfg.seed, 3 * epoch as u64 + 2));
        match &self.sampler {
            Some(s) => s.draw(data.train.len(), &mut order_rng).into_iter().map(|i| (i, 1.0)).collect(),
            None => {
                let mut items: Vec<Item> =
                    data.train.iter().zip(&self.weights).map(|(&i, &w)| (i, w as f32)).collect();
                items.shuffle(&mut order_rng);
                items
            }
        }
    }

    /// One epoch of training; returns the trained model, the epoch's metrics and its last
    /// learning rate. `after_batch` runs after every batch (the test hook that aborts
    /// mid-epoch).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn train_epoch(
        &mut self,
        cfg: &TrainConfig,
        data: &RunData,
        mut model: FerModel,
        epoch: usize,
        opts: &RunOptions,
        out: &Path,
        mut after_batch: impl FnMut(),
    ) -> Result<(FerModel, SetMetrics, f64), TrainError> {
        self.ad_device.seed(mix(cfg.seed, 3 * epoch as u64 + 1));
        let items = self.epoch_items(cfg, data, epoch);
        let steps = data.train.len().div_ceil(cfg.batch_size);
        let aug = (!cfg.augment.is_identity()).then(|| cfg.augment.clone());
        let rx = data.loader.stream(items, cfg.batch_size, aug, mix(cfg.seed, 3 * epoch as u64 + 3));
        let bar = progress_bar(opts.progress, steps as u64, &format!("epoch {}/{}", epoch + 1, cfg.epochs));
        let mut confusion = Confusion::new(data.classes);
        let mut loss_sum = 0.0;
        let mut lr = cfg.lr;
        for (step, batch) in rx.into_iter().enumerate() {
            let batch = batch.map_err(TrainError::Io)?;
            lr = self.state.schedule.lr(epoch, step, steps);
            let s;
            (model, s) = if self.devices.len() == 1 {
                self.step_one_device(cfg, data, model, &batch, lr, epoch)
            } else {
                self.step_data_parallel(cfg, data, model, &batch, lr)
            };
            if !s.objective.is_finite() {
                bar.finish_and_clear();
                return Err(self.diverged(out, s.objective, epoch, step, lr));
            }
            loss_sum += s.plain_loss_sum;
            for (&t, &p) in batch.targets.iter().zip(&s.predictions) {
                confusion.add(t as usize, p as usize);
            }
            bar.inc(1);
            bar.set_message(format!(
                "loss {:.4} acc {:.1}%",
                loss_sum / confusion.total() as f64,
                100.0 * confusion.accuracy()
            ));
            after_batch();
        }
        bar.finish_and_clear();
        Ok((model, SetMetrics::from_confusion(loss_sum, &confusion), lr))
    }

    /// Forward, backward and optimizer step on one device (skipped when the loss is not finite).
    fn step_one_device(
        &mut self,
        cfg: &TrainConfig,
        data: &RunData,
        mut model: FerModel,
        batch: &Batch,
        lr: f64,
        epoch: usize,
    ) -> (FerModel, StepResult) {
        let s = forward_loss(&model, batch, 0..batch.len, &self.objective(cfg, data), &self.ad_device);
        let objective = s.objective.clone().into_scalar::<f32>();
        if objective.is_finite() {
            let grads = s.objective.backward();
            model = match &self.groups {
                Some(g) => g.step(&mut self.optim, model, grads, lr, epoch),
                None => {
                    let grads = GradientsParams::from_grads(grads, &model);
                    self.optim.step(lr, model, grads)
                }
            };
        }
        (model, StepResult { objective, plain_loss_sum: s.plain_loss_sum, predictions: s.predictions })
    }

    /// Data parallel: one shard of the batch per device, gradients summed by the optimizer.
    fn step_data_parallel(
        &mut self,
        cfg: &TrainConfig,
        data: &RunData,
        mut model: FerModel,
        batch: &Batch,
        lr: f64,
    ) -> (FerModel, StepResult) {
        let shard = batch.len.div_ceil(self.devices.len());
        let mut multi = MultiGradientsParams::default();
        let mut r = StepResult { objective: 0.0, plain_loss_sum: 0.0, predictions: Vec::new() };
        for (d, dev) in self.devices.iter().enumerate() {
            let range = (d * shard).min(batch.len)..((d + 1) * shard).min(batch.len);
            if range.is_empty() {
                continue;
            }
            let share = range.len() as f32 / batch.len as f32;
            let dev = dev.clone().autodiff();
            let replica = model.clone().fork(&dev);
            let s = forward_loss(&replica, batch, range, &self.objective(cfg, data), &dev);
            let scaled = s.objective * share;
            r.objective += scaled.clone().into_scalar::<f32>();
            multi.grads.push((GradientsParams::from_grads(scaled.backward(), &replica), dev));
            r.plain_loss_sum += s.plain_loss_sum;
            r.predictions.extend(s.predictions);
        }
        if r.objective.is_finite() {
            model = self.optim.step_multi(lr, model, multi);
        }
        (model, r)
    }

    /// The error for a loss that is not finite; report.json says so, `last/` stays as it was.
    fn diverged(&self, out: &Path, value: f32, epoch: usize, step: usize, lr: f64) -> TrainError {
        let last = if self.state.epochs_done > 0 {
            format!("{} (epoch {})", self.last_dir.display(), self.state.epochs_done)
        } else {
            "none (it diverged in the first epoch)".to_string()
        };
        let err = TrainError::Diverged { value, epoch: epoch + 1, batch: step + 1, lr, last };
        let note = serde_json::json!({"status": "diverged", "error": err.to_string(), "epochs_done": self.state.epochs_done});
        let _ = write_atomic(&out.join("report.json"), note.to_string().as_bytes());
        err
    }

    /// After an epoch: keep the best weights, step the schedule, decide on early stopping,
    /// write the last checkpoint, metrics.csv and curves.png. True when the run stops here.
    pub(super) fn end_epoch(
        &mut self,
        cfg: &TrainConfig,
        metrics: EpochMetrics,
        model: &FerModel,
        eval_model: &FerModel,
        out: &Path,
    ) -> Result<bool, TrainError> {
        let epoch = metrics.epoch - 1;
        let improved = self.state.monitor.update(epoch, cfg.monitor.read(&metrics));
        eprintln!("{}", epoch_line(&metrics, cfg.epochs, improved));
        if improved {
            let card = ModelCard::new(self.model_config.clone(), epoch + 1, metrics.val.clone());
            let card = serde_json::to_vec_pretty(&card).map_err(io("model card"))?;
            let bytes = save_model(eval_model)?;
            checkpoint::write_dir(&self.best_dir, &[(MODEL_FILE, &bytes), (MODEL_JSON, &card)])
                .map_err(io(self.best_dir.display()))?;
        }
        let state = &mut self.state;
        if let Some(event) = state.schedule.end_epoch(epoch, improved) {
            eprintln!("  {event}");
            state.events.push(format!("epoch {}: {event}", epoch + 1));
        }
        state.history.push(metrics);
        state.epochs_done = epoch + 1;
        let stop =
            cfg.early_stopping.is_some_and(|patience| EarlyStopping { patience }.should_stop(&state.monitor));
        if stop {
            let reason = format!(
                "early stopping: {} did not improve for {} epoch(s) after epoch {}",
                cfg.monitor.name(),
                state.monitor.epochs_since_best,
                state.monitor.best_epoch.map_or(0, |e| e + 1)
            );
            state.stopped_early = Some(reason.clone());
            state.events.push(format!("epoch {}: {reason}", epoch + 1));
            eprintln!("  {reason}");
        }
        self.write_last(model, out)?;
        Ok(stop)
    }

    /// The last checkpoint (everything a resumed run needs, written as one folder),
    /// metrics.csv and curves.png.
    fn write_last(&self, model: &FerModel, out: &Path) -> Result<(), TrainError> {
        let state_json = serde_json::to_vec_pretty(&self.state).map_err(io("state"))?;
        let model_bytes = save_model(model)?;
        let optim_bytes = self.optim.into_bytes().map_err(io("serialising the optimizer"))?;
        checkpoint::write_dir(
            &self.last_dir,
            &[(MODEL_FILE, &model_bytes), (OPTIMIZER_FILE, &optim_bytes), (STATE_FILE, &state_json)],
        )
        .map_err(io(self.last_dir.display()))?;
        self.write_history(out)
    }

    /// metrics.csv and curves.png from the state's history. After each checkpoint, and
    /// once more when the loop ends: a kill between the checkpoint and these files leaves
    /// them an epoch behind, and a resumed run with no epoch left must still bring them up
    /// to date (the kill loop found it).
    pub(super) fn write_history(&self, out: &Path) -> Result<(), TrainError> {
        let history = &self.state.history;
        write_csv(&out.join("metrics.csv"), history)?;
        let onset = diagnose::overfitting(history).map(|o| o.onset_epoch);
        plot::curves(&out.join("curves.png"), history, self.state.monitor.best_epoch.map(|e| e + 1), onset)
            .map_err(|e| TrainError::Io(format!("curves.png: {e}")))
    }
}

/// The teachers' targets over the run's dataset and their scores (printed), when the run
/// distils.
fn distillation(
    cfg: &TrainConfig,
    data: &RunData,
) -> Result<(Option<SoftTargets>, Vec<TeacherScore>), TrainError> {
    if !cfg.distill.is_on() {
        return Ok((None, Vec::new()));
    }
    let fail = |e: distill::TeacherError| TrainError::Invalid(e.to_string());
    let train = distill::teacher_logits(&cfg.distill, &data.loader, data.classes).map_err(fail)?;
    let test = match &data.test {
        Some((loader, _)) => Some(distill::teacher_logits(&cfg.distill, loader, data.classes).map_err(fail)?),
        None => None,
    };
    let test_logits: Option<Vec<_>> = test.map(|t| t.into_iter().map(|(_, l)| l).collect());
    let scores = distill::teacher_scores(
        &train,
        (&data.loader, &data.val),
        data.test.as_ref().zip(test_logits.as_deref()).map(|((l, i), t)| (l, i.as_slice(), t)),
        data.classes,
    );
    for s in &scores {
        let test = s.test_accuracy.map(|a| format!(", test {:.2}%", 100.0 * a)).unwrap_or_default();
        eprintln!(
            "teacher {}: validation {:.2}% (balanced {:.2}%, with flip {:.2}%){test}",
            s.teacher,
            100.0 * s.val_accuracy,
            100.0 * s.val_balanced_accuracy,
            100.0 * s.val_accuracy_flip
        );
    }
    let logits: Vec<_> = train.into_iter().map(|(_, l)| l).collect();
    Ok((Some(SoftTargets::new(&logits, cfg.distill.temperature, cfg.distill.alpha)), scores))
}

fn epoch_line(m: &EpochMetrics, epochs: usize, improved: bool) -> String {
    let aug = m
        .val_augmented
        .as_ref()
        .map(|v| format!("  val(aug) acc {:.1}%", 100.0 * v.accuracy))
        .unwrap_or_default();
    format!(
        "epoch {:>3}/{epochs}  lr {:.2e}  train loss {:.4} acc {:.1}%  val loss {:.4} acc {:.1}% bal {:.1}% f1 {:.3}{aug}  {:.0}s {:.0} img/s{}",
        m.epoch,
        m.lr,
        m.train.loss,
        100.0 * m.train.accuracy,
        m.val.loss,
        100.0 * m.val.accuracy,
        100.0 * m.val.balanced_accuracy,
        m.val.macro_f1,
        m.seconds,
        m.train_images_per_second,
        if improved { "  *best" } else { "" }
    )
}

fn progress_bar(show: bool, len: u64, prefix: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} ETA {eta} {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.set_prefix(prefix.to_string());
    bar
}
