//! The experiment: every setting of a training run, as flags or as a TOML file.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::augment::Augment;
use super::monitor::Monitored;
use super::schedule::Schedule;
use crate::data::balance::{BalanceBy, BalanceMode};
use crate::data::subject::DEFAULT_SUBJECT_REGEX;
use crate::model::ModelKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// SGD with momentum (see --momentum, --nesterov).
    Sgd,
    Adam,
    /// Adam with decoupled weight decay.
    Adamw,
}

/// How the validation set is taken from `data` (when no fold is given).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ValSplit {
    /// Random, stratified by class.
    Holdout,
    /// Whole subjects on one side (needs subject ids).
    Subject,
    /// Keras' validation_split: the last fraction, unshuffled.
    Keras,
    /// FER2013's Usage column or train/test folders (PublicTest validates).
    Usage,
}

/// Every setting of a run. `fer-train fit --config FILE.toml` reads this; flags override it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Training data (any format `data inspect` reads).
    pub data: Option<PathBuf>,
    /// A separate test set, scored once with the best weights at the end.
    pub test: Option<PathBuf>,
    /// A test set from another dataset (CK+ for a FER2013 model), which `ship` scores as a
    /// cross-dataset figure on the card. Classes the model lacks are left out.
    pub cross_test: Option<PathBuf>,
    pub model: ModelKind,
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerKind,
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub schedule: Schedule,
    pub warmup_epochs: usize,
    /// What "best" means for checkpoints, early stopping and reduce-on-plateau.
    pub monitor: Monitored,
    pub min_delta: f64,
    /// Stop after this many epochs without improvement (none: run all epochs).
    pub early_stopping: Option<usize>,
    /// At the end, go back to the best epoch's weights.
    pub restore_best: bool,
    pub label_smoothing: f32,
    /// BatchNorm running-statistics momentum (burn/PyTorch convention; Keras' 0.99 is 0.01).
    pub bn_momentum: f64,
    /// The head's dropout (none: the architecture's own, baseline 0.5, edge 0.3, large 0.5).
    pub dropout: Option<f64>,
    pub balance: Option<BalanceBy>,
    pub balance_mode: BalanceMode,
    pub augment: Augment,
    /// Also score validation with the training augmentation each epoch.
    pub validate_augmented: bool,
    pub seed: u64,
    /// Model input: `image_size` x `image_size`, 1 or 3 channels.
    pub image_size: u32,
    pub channels: u8,
    pub keep_contempt: bool,
    pub val_split: ValSplit,
    pub val_fraction: f64,
    pub subject_regex: String,
    /// Train on a stratified random subset of this many images (quick experiments).
    pub max_images: Option<usize>,
    /// Memory for decoded images, in MiB.
    pub cache_mb: usize,
    /// `flex` (CPU), `cuda:N`, `wgpu:N`; several for data-parallel training.
    pub devices: Vec<String>,
    /// Start from a pretrained ONNX model (`--init`) instead of `model`.
    pub transfer: crate::transfer::TransferConfig,
    /// Learn from teachers' soft labels too (`[distill]`, `--teacher`).
    pub distill: super::distill::DistillConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            data: None,
            test: None,
            cross_test: None,
            model: ModelKind::Baseline,
            epochs: 30,
            batch_size: 64,
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
            warmup_epochs: 0,
            monitor: Monitored::ValAcc,
            min_delta: 1e-4,
            early_stopping: None,
            restore_best: true,
            label_smoothing: 0.0,
            bn_momentum: crate::model::default_bn_momentum(),
            dropout: None,
            balance: None,
            balance_mode: BalanceMode::Sampler,
            augment: Augment::none(),
            validate_augmented: true,
            seed: 42,
            image_size: 48,
            channels: 1,
            keep_contempt: false,
            val_split: ValSplit::Holdout,
            val_fraction: 0.1,
            subject_regex: DEFAULT_SUBJECT_REGEX.to_string(),
            max_images: None,
            cache_mb: 1024,
            devices: vec!["flex".to_string()],
            transfer: Default::default(),
            distill: Default::default(),
        }
    }
}

impl TrainConfig {
    /// Whether `other` trains the same run: the settings but the test sets, which are only
    /// scored (so a finished fit can be scored on another test set without refitting), and
    /// the devices (a run started on a laptop may go on, or be scored, on a GPU host).
    pub fn same_fit(&self, other: &TrainConfig) -> bool {
        let scored_only =
            |c: &TrainConfig| TrainConfig { test: None, cross_test: None, devices: Vec::new(), ..c.clone() };
        scored_only(self) == scored_only(other)
    }

    /// Reads a TOML experiment file; unknown keys are errors (a typo must not be ignored).
    pub fn from_toml_file(path: &std::path::Path) -> Result<TrainConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.epochs == 0 {
            return Err("--epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return Err("--batch-size must be at least 1".into());
        }
        if let Some(p) = self.dropout
            && !(0.0..1.0).contains(&p)
        {
            return Err(format!("--dropout must be in [0, 1), got {p}"));
        }
        if self.dropout.is_some() && self.transfer.init.is_some() {
            // A pretrained model keeps its own dropout layers; the new head has its own flag.
            return Err("--dropout sets a built-in model's dropout; with --init, use --head-dropout".into());
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(format!("--label-smoothing must be in [0, 1), got {}", self.label_smoothing));
        }
        if !(self.val_fraction > 0.0 && self.val_fraction < 1.0) {
            return Err(format!("--val-fraction must be between 0 and 1, got {}", self.val_fraction));
        }
        if !(self.weight_decay >= 0.0 && self.momentum >= 0.0 && self.momentum < 1.0) {
            return Err("--weight-decay must be >= 0 and --momentum in [0, 1)".into());
        }
        if self.devices.is_empty() {
            return Err("--devices names no device".into());
        }
        self.transfer.validate()?;
        self.distill.validate()?;
        self.augment.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip_and_unknown_keys() {
        let text = r#"
            data = "/data/fer2013/train"
            model = "edge"
            epochs = 12
            optimizer = "sgd"
            nesterov = true
            early_stopping = 5
            monitor = "val_loss"
            balance = "class"
            [schedule]
            kind = "plateau"
            factor = 0.5
            patience = 2
            cooldown = 0
            min_lr = 1e-5
            [augment]
            rotation = 10.0
            flip = true
        "#;
        let c: TrainConfig = toml::from_str(text).unwrap();
        assert_eq!(c.model, ModelKind::Edge);
        assert_eq!(c.early_stopping, Some(5));
        assert_eq!(c.augment.rotation, 10.0);
        assert_eq!(c.augment.zoom, 0.0);
        assert!(matches!(c.schedule, Schedule::Plateau { patience: 2, .. }));
        assert_eq!(c.batch_size, 64, "unset keys keep their defaults");
        let back: TrainConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        let err = toml::from_str::<TrainConfig>("epoch = 3").unwrap_err().to_string();
        assert!(err.contains("unknown field `epoch`"), "{err}");
    }

    #[test]
    fn dropout_with_a_pretrained_model_points_to_head_dropout() {
        let mut c = TrainConfig { dropout: Some(0.2), ..TrainConfig::default() };
        assert!(c.validate().is_ok());
        c.transfer.init = Some("pretrained.onnx".into());
        let err = c.validate().unwrap_err();
        assert!(err.contains("--head-dropout"), "{err}");
        c.dropout = None;
        assert!(c.validate().is_ok());
    }
}
