//! `fer-train fit` and `fer-train cv`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use fer_trainer::data::balance::{BalanceBy, BalanceMode};
use fer_trainer::data::split::{self, SplitMethod};
use fer_trainer::model::ModelKind;
use fer_trainer::train::augment::Augment;
use fer_trainer::train::checkpoint::{STATE_FILE, TrainState};
use fer_trainer::train::config::{OptimizerKind, TrainConfig, ValSplit};
use fer_trainer::train::cv;
use fer_trainer::train::fit::{self, RunOptions};
use fer_trainer::train::loader::Loader;
use fer_trainer::train::monitor::Monitored;
use fer_trainer::train::prepare::{input_spec, load_dataset, prepare};
use fer_trainer::train::schedule::Schedule;
use fer_trainer::transfer::{HeadMode, HeadPool};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ScheduleKind {
    Constant,
    Step,
    Cosine,
    Plateau,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum AugmentPreset {
    /// No augmentation.
    None,
    /// +-10 degrees, 10% zoom and shift, flips, +-10% brightness and contrast.
    Standard,
}

/// Settings shared by `fit` and `cv`. Each overrides the same key of --config.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// An experiment file (TOML, keys as in `TrainConfig`); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Training data: class folders, FER2013 CSV or manifest.
    #[arg(long)]
    data: Option<PathBuf>,
    #[arg(long, value_enum)]
    model: Option<ModelKind>,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerKind>,
    /// Base learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// SGD momentum.
    #[arg(long)]
    momentum: Option<f64>,
    /// Nesterov momentum for SGD.
    #[arg(long)]
    nesterov: bool,
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Learning-rate schedule after warm-up.
    #[arg(long, value_enum)]
    schedule: Option<ScheduleKind>,
    /// Step decay: epochs between decays.
    #[arg(long, default_value_t = 10)]
    step_every: usize,
    /// Decay factor (step and plateau).
    #[arg(long, default_value_t = 0.5)]
    decay: f64,
    /// Reduce-on-plateau: epochs without improvement before decaying.
    #[arg(long, default_value_t = 3)]
    plateau_patience: usize,
    /// Reduce-on-plateau: epochs to wait after a decay.
    #[arg(long, default_value_t = 0)]
    plateau_cooldown: usize,
    /// Floor of cosine and plateau schedules.
    #[arg(long, default_value_t = 1e-6)]
    min_lr: f64,
    #[arg(long)]
    warmup_epochs: Option<usize>,
    /// Metric that picks the best checkpoint, and drives early stopping and plateau decay.
    #[arg(long, value_enum)]
    monitor: Option<Monitored>,
    /// Stop after this many epochs without improvement of --monitor.
    #[arg(long, value_name = "PATIENCE")]
    early_stopping: Option<usize>,
    /// End with the last epoch's weights instead of the best epoch's.
    #[arg(long)]
    no_restore_best: bool,
    #[arg(long)]
    label_smoothing: Option<f32>,
    /// BatchNorm momentum, burn/PyTorch convention [default: 0.1]; Keras' 0.99 is 0.01.
    #[arg(long)]
    bn_momentum: Option<f64>,
    /// Dropout before the classifier [default: the model's own: baseline 0.5, edge 0.3,
    /// large 0.5].
    #[arg(long)]
    dropout: Option<f64>,
    /// Balance the training side by class and/or subject.
    #[arg(long, value_enum)]
    balance: Option<BalanceBy>,
    #[arg(long, value_enum)]
    balance_mode: Option<BalanceMode>,
    /// Augmentation preset; the flags below adjust it.
    #[arg(long, value_enum)]
    augment: Option<AugmentPreset>,
    /// Rotation range, degrees.
    #[arg(long)]
    rotation: Option<f32>,
    #[arg(long)]
    zoom: Option<f32>,
    #[arg(long)]
    shift: Option<f32>,
    #[arg(long)]
    flip: Option<bool>,
    #[arg(long)]
    brightness: Option<f32>,
    #[arg(long)]
    contrast: Option<f32>,
    /// Random erasing probability: one noise rectangle of 2-33% of the image.
    #[arg(long)]
    erase: Option<f32>,
    /// Skip scoring validation under augmentation each epoch.
    #[arg(long)]
    no_validate_augmented: bool,
    #[arg(long)]
    seed: Option<u64>,
    /// Model input size (square).
    #[arg(long)]
    image_size: Option<u32>,
    /// Input channels: 1 (gray) or 3 (RGB).
    #[arg(long)]
    channels: Option<u8>,
    /// Keep CK+ contempt as an 8th class.
    #[arg(long)]
    keep_contempt: bool,
    #[arg(long)]
    subject_regex: Option<String>,
    /// Train on a stratified random subset of this many images.
    #[arg(long)]
    max_images: Option<usize>,
    /// Memory for decoded images, MiB.
    #[arg(long)]
    cache_mb: Option<usize>,
    /// Devices, comma-separated: flex (CPU), cuda:N, wgpu:N. Several = data parallel.
    #[arg(long, value_delimiter = ',')]
    devices: Option<Vec<String>>,
    /// No progress bars (epoch lines still print).
    #[arg(long)]
    no_progress: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Start from a pretrained float ONNX model instead of --model (transfer learning).
    #[arg(long, value_name = "FILE.onnx", conflicts_with = "model")]
    init: Option<PathBuf>,
    /// keep: keep every layer (FC too), replace only the classifier; new: cut at --cut, add a new head.
    #[arg(long, value_enum)]
    head: Option<HeadMode>,
    /// With --head new: the last layer kept (name or index from `fer-train layers FILE.onnx`).
    #[arg(long, value_name = "LAYER")]
    cut: Option<String>,
    /// New head: global average pooling or flatten of the cut layer's feature map.
    #[arg(long, value_enum)]
    head_pool: Option<HeadPool>,
    /// New head: units of a hidden dense layer with ReLU (0: none).
    #[arg(long)]
    head_hidden: Option<usize>,
    /// Dropout before the new classifier [default: 0.5].
    #[arg(long)]
    head_dropout: Option<f64>,
    /// Keep pretrained layers up to this one (name or index) fixed.
    #[arg(long, value_name = "LAYER")]
    freeze_until: Option<String>,
    /// Epoch (1-based) from which the frozen layers train too [default: never].
    #[arg(long, value_name = "EPOCH")]
    unfreeze_epoch: Option<usize>,
    /// Learning-rate factor for the pretrained layers while they train (e.g. 0.1).
    #[arg(long)]
    body_lr_mult: Option<f64>,
    /// Distil from this float ONNX classifier (repeat for an ensemble): its logits on every
    /// image, plain and mirrored, are computed once and cached.
    #[arg(long, value_name = "FILE.onnx")]
    teacher: Vec<PathBuf>,
    /// Distillation temperature [default: 4].
    #[arg(long)]
    kd_temperature: Option<f32>,
    /// Weight of the hard-label loss; the teachers' KL term gets 1 - alpha [default: 0.5].
    #[arg(long)]
    kd_alpha: Option<f32>,
    /// Where the teachers' logits are cached [default: ~/.cache/fer-edge/teachers].
    #[arg(long, value_name = "DIR")]
    teacher_cache: Option<PathBuf>,
}

impl TrainArgs {
    /// Defaults, then --config, then flags.
    fn config(&self) -> anyhow::Result<TrainConfig> {
        let mut c = match &self.config {
            Some(p) => TrainConfig::from_toml_file(p).map_err(anyhow::Error::msg)?,
            None => TrainConfig::default(),
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field.clone() { c.$field = v; } )* };
        }
        set!(
            model,
            epochs,
            batch_size,
            optimizer,
            lr,
            momentum,
            weight_decay,
            warmup_epochs,
            monitor,
            label_smoothing,
            bn_momentum,
            balance_mode,
            seed,
            image_size,
            channels,
            cache_mb,
            devices
        );
        if self.dropout.is_some() {
            c.dropout = self.dropout;
        }
        if self.data.is_some() {
            c.data = self.data.clone();
        }
        if self.early_stopping.is_some() {
            c.early_stopping = self.early_stopping;
        }
        if self.balance.is_some() {
            c.balance = self.balance;
        }
        if self.max_images.is_some() {
            c.max_images = self.max_images;
        }
        if let Some(r) = &self.subject_regex {
            c.subject_regex = r.clone();
        }
        c.nesterov |= self.nesterov;
        c.keep_contempt |= self.keep_contempt;
        if self.no_restore_best {
            c.restore_best = false;
        }
        if self.no_validate_augmented {
            c.validate_augmented = false;
        }
        if let Some(kind) = self.schedule {
            c.schedule = match kind {
                ScheduleKind::Constant => Schedule::Constant,
                ScheduleKind::Step => Schedule::Step { every: self.step_every, gamma: self.decay },
                ScheduleKind::Cosine => Schedule::Cosine { min_lr: self.min_lr },
                ScheduleKind::Plateau => Schedule::Plateau {
                    factor: self.decay,
                    patience: self.plateau_patience,
                    cooldown: self.plateau_cooldown,
                    min_lr: self.min_lr,
                },
            };
        }
        match self.augment {
            Some(AugmentPreset::None) => c.augment = Augment::none(),
            Some(AugmentPreset::Standard) => c.augment = Augment::standard(),
            None => {}
        }
        let a = &mut c.augment;
        for (flag, field) in [
            (self.rotation, &mut a.rotation),
            (self.zoom, &mut a.zoom),
            (self.shift, &mut a.shift),
            (self.brightness, &mut a.brightness),
            (self.contrast, &mut a.contrast),
            (self.erase, &mut a.erase),
        ] {
            if let Some(v) = flag {
                *field = v;
            }
        }
        if let Some(f) = self.flip {
            a.flip = f;
        }
        let t = &mut c.transfer;
        if self.init.is_some() {
            t.init = self.init.clone();
        }
        if let Some(h) = self.head {
            t.head = h;
        }
        if self.cut.is_some() {
            t.cut = self.cut.clone();
        }
        if let Some(p) = self.head_pool {
            t.head_pool = p;
        }
        if let Some(h) = self.head_hidden {
            t.head_hidden = h;
        }
        if let Some(d) = self.head_dropout {
            t.head_dropout = d;
        }
        if self.freeze_until.is_some() {
            t.freeze_until = self.freeze_until.clone();
        }
        if self.unfreeze_epoch.is_some() {
            t.unfreeze_epoch = self.unfreeze_epoch;
        }
        if let Some(m) = self.body_lr_mult {
            t.body_lr_mult = m;
        }
        self.distill_flags(&mut c);
        // A pretrained model fixes the input: take it from the file unless flags say otherwise
        // (a mismatch is then reported by the run).
        if let Some(path) = c.transfer.init.clone()
            && self.image_size.is_none()
            && self.channels.is_none()
        {
            let g = fer_trainer::transfer::read_graph(&path).map_err(anyhow::Error::msg)?;
            let [ch, h, w] = g.input_shape;
            if h == w && (ch == 1 || ch == 3) {
                c.image_size = h as u32;
                c.channels = ch as u8;
            }
        }
        c.validate().map_err(|e| self.in_recipe(e))?;
        Ok(c)
    }

    /// A settings error, naming the recipe file (`--config`) when there is one: its value
    /// may be at fault as much as a flag's.
    fn in_recipe(&self, e: String) -> anyhow::Error {
        match &self.config {
            Some(recipe) => anyhow::anyhow!("{} (with the flags given): {e}", recipe.display()),
            None => anyhow::Error::msg(e),
        }
    }

    fn distill_flags(&self, c: &mut TrainConfig) {
        let d = &mut c.distill;
        if !self.teacher.is_empty() {
            d.teachers = self.teacher.clone();
        }
        if let Some(t) = self.kd_temperature {
            d.temperature = t;
        }
        if let Some(a) = self.kd_alpha {
            d.alpha = a;
        }
        if self.teacher_cache.is_some() {
            d.cache = self.teacher_cache.clone();
        }
    }
}

/// The model a config trains, for the log.
fn model_name(cfg: &TrainConfig) -> String {
    match &cfg.transfer.init {
        Some(p) => format!("{} (fine-tuned, head {:?})", p.display(), cfg.transfer.head),
        None => format!("{:?}", cfg.model),
    }
}

#[derive(Debug, Args)]
pub struct FitArgs {
    #[command(flatten)]
    train: TrainArgs,
    /// Folder for metrics.csv, curves.png, confusion.png, report.json, best/ and last/.
    #[arg(long, required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// A separate test set, scored once with the final weights (e.g. FER2013 public_test).
    #[arg(long)]
    test: Option<PathBuf>,
    /// How validation images are taken from --data.
    #[arg(long, value_enum)]
    val_split: Option<ValSplit>,
    #[arg(long)]
    val_fraction: Option<f64>,
    /// Continue an interrupted run in DIR (its saved settings are used).
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    resume: Option<PathBuf>,
}

pub fn fit(args: FitArgs) -> anyhow::Result<()> {
    let (cfg, out, resume) = match &args.resume {
        Some(dir) => {
            let path = dir.join("last").join(STATE_FILE);
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!("--resume: cannot read {} (has an epoch finished?)", path.display())
            })?;
            let state: TrainState =
                serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
            (state.config, dir.clone(), true)
        }
        None => {
            let mut cfg = args.train.config()?;
            if let Some(t) = &args.test {
                cfg.test = Some(t.clone());
            }
            if let Some(v) = args.val_split {
                cfg.val_split = v;
            }
            if let Some(f) = args.val_fraction {
                cfg.val_fraction = f;
            }
            cfg.validate().map_err(anyhow::Error::msg)?;
            (cfg, args.out.clone().expect("clap requires --out without --resume"), false)
        }
    };
    let (data, split) = prepare(&cfg).map_err(anyhow::Error::msg)?;
    eprintln!(
        "{} on {} training / {} validation images{} ({})",
        model_name(&cfg),
        data.train.len(),
        data.val.len(),
        data.test.as_ref().map(|(_, t)| format!(" / {} test", t.len())).unwrap_or_default(),
        split.description
    );
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let split_json = serde_json::to_vec_pretty(&split)?;
    fer_runtime::fsutil::write_atomic(&out.join("split.json"), &split_json)?;
    let opts = RunOptions { resume, progress: !args.train.no_progress };
    let report = fit::run(&cfg, &data, &out, &opts)?;
    if args.train.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}: {} after {} epoch(s); best epoch {} by {}; validation accuracy {:.1}%, balanced {:.1}%, macro-F1 {:.3}{}",
            out.display(),
            report.stop_reason,
            report.epochs_run,
            report.best_epoch.map_or("-".into(), |e| e.to_string()),
            report.monitor,
            100.0 * report.val.accuracy,
            100.0 * report.val.balanced_accuracy,
            report.val.macro_f1,
            report
                .test
                .as_ref()
                .map(|t| format!(
                    "; test accuracy {:.1}%, balanced {:.1}%",
                    100.0 * t.accuracy,
                    100.0 * t.balanced_accuracy
                ))
                .unwrap_or_default()
        );
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum GroupBy {
    Subject,
}

#[derive(Debug, Args)]
pub struct CvArgs {
    #[command(flatten)]
    train: TrainArgs,
    /// Number of folds.
    #[arg(long)]
    folds: usize,
    /// Keep every subject's images in one fold (subject-independent evaluation).
    #[arg(long, value_enum)]
    group_by: Option<GroupBy>,
    /// Folder for fold-XX/ runs and cv.json.
    #[arg(long)]
    out: PathBuf,
    /// Keep finished folds in --out and continue an interrupted one.
    #[arg(long)]
    resume: bool,
}

pub fn cross_validate(args: CvArgs) -> anyhow::Result<()> {
    let cfg = args.train.config()?;
    let path = cfg.data.clone().ok_or_else(|| anyhow::anyhow!("no data: pass --data PATH"))?;
    let (ds, classes) = load_dataset(&path, &cfg, true).map_err(anyhow::Error::msg)?;
    let method = SplitMethod::KFold { folds: args.folds, by_subject: args.group_by.is_some() };
    let (folds, split) = split::split(&ds, &method, cfg.seed)?;
    eprintln!("{}: {} images; {}", path.display(), ds.samples.len(), split.description);
    if args.out.join("cv.json").exists() && !args.resume {
        bail!(
            "{} already holds a cross-validation; pass --resume to continue it, or choose another --out",
            args.out.display()
        );
    }
    let loader = Loader::new(Arc::new(ds), input_spec(&cfg), cfg.cache_mb * 1024 * 1024);
    let opts = RunOptions { resume: args.resume, progress: !args.train.no_progress };
    let report = cv::run(&cfg, &loader, &folds, classes, split, &args.out, &opts)?;
    if args.train.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let (m, s) = (&report.mean, &report.std);
        println!(
            "{}-fold{}: accuracy {:.1} ± {:.1}%, balanced accuracy {:.1} ± {:.1}%, macro-F1 {:.3} ± {:.3} ({}); {}",
            report.folds.len(),
            if args.group_by.is_some() { " by subject" } else { "" },
            100.0 * m.accuracy,
            100.0 * s.accuracy,
            100.0 * m.balanced_accuracy,
            100.0 * s.balanced_accuracy,
            m.macro_f1,
            s.macro_f1,
            report.selection,
            args.out.join("cv.json").display()
        );
        if let Some(sp) = &report.subjects {
            let worst = &sp.per_subject[0];
            println!(
                "per subject ({} subjects): accuracy {:.1} ± {:.1}%, median {:.1}%, from {:.1}% ({}, {} images) to {:.1}%",
                sp.subjects,
                100.0 * sp.mean,
                100.0 * sp.std,
                100.0 * sp.median,
                100.0 * sp.min,
                worst.subject,
                worst.images,
                100.0 * sp.max
            );
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct CurvesArgs {
    /// A run folder (what `fit --out` wrote).
    run: PathBuf,
}

/// Redraws a run's curves.png from the history in its last checkpoint.
pub fn curves(args: CurvesArgs) -> anyhow::Result<()> {
    let path = args.run.join("last").join(STATE_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let state: TrainState = serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let onset = fer_trainer::train::diagnose::overfitting(&state.history).map(|o| o.onset_epoch);
    let out = args.run.join("curves.png");
    fer_trainer::train::plot::curves(&out, &state.history, state.monitor.best_epoch.map(|e| e + 1), onset)
        .map_err(anyhow::Error::msg)?;
    println!("wrote {}", out.display());
    Ok(())
}

#[derive(Debug, Args)]
pub struct ShipArgs {
    #[command(flatten)]
    train: TrainArgs,
    /// models/NAME: writes NAME.onnx, NAME.fer, NAME.qdq.onnx, NAME.md and its pictures.
    #[arg(long)]
    out: PathBuf,
    /// The test set the card reports (e.g. FER2013 public_test).
    #[arg(long)]
    test: Option<PathBuf>,
    /// Another dataset's images the card also scores, as a cross-dataset figure (e.g.
    /// ../shared/data/ckplus48; contempt and other classes the model lacks are left out).
    #[arg(long)]
    cross_test: Option<PathBuf>,
    /// The fit's run folder, kept for resuming [default: ~/.cache/fer-edge/runs/ship-NAME].
    #[arg(long)]
    work: Option<PathBuf>,
    /// Training images the quantizer calibrates on.
    #[arg(long, default_value_t = 200)]
    calib_images: usize,
    /// Timed runs per backend for the card's latency.
    #[arg(long, default_value_t = 500)]
    bench_reps: usize,
}

/// The command as typed, `fer-train` first, arguments quoted where needed.
fn command_line() -> String {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .map(|a| if a.contains(char::is_whitespace) { format!("'{a}'") } else { a })
        .collect();
    format!("fer-train {}", args.join(" "))
}

pub fn ship(args: ShipArgs) -> anyhow::Result<()> {
    let mut cfg = args.train.config()?;
    if let Some(t) = &args.test {
        cfg.test = Some(t.clone());
    }
    if let Some(t) = &args.cross_test {
        cfg.cross_test = Some(t.clone());
    }
    cfg.validate().map_err(|e| args.train.in_recipe(e))?;
    if cfg.test.is_none() {
        let e = "ship needs a test set to measure the model on: set `test` in --config or pass --test";
        return Err(args.train.in_recipe(e.into()));
    }
    let name = args.out.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let work = args.work.clone().unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        home.join(".cache/fer-edge/runs").join(format!("ship-{name}"))
    });
    let recipe = match &args.train.config {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let opts = fer_trainer::ship::ShipOptions {
        out: args.out.clone(),
        work,
        calib_images: args.calib_images,
        bench_reps: args.bench_reps,
        command: command_line(),
        recipe,
        progress: !args.train.no_progress,
    };
    let report = fer_trainer::ship::ship(&cfg, &opts).map_err(anyhow::Error::msg)?;
    if args.train.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("wrote {}, {}, {} and {}", report.onnx, report.fer, report.qdq, report.card);
    for s in &report.scores {
        println!(
            "  {:<18} accuracy {:.2}%, balanced {:.2}%, macro-F1 {:.3} on {} test images",
            s.name,
            100.0 * s.accuracy,
            100.0 * s.balanced_accuracy,
            s.macro_f1,
            s.images
        );
    }
    Ok(())
}
