//! Where the shipped models are, and the pipeline options shared by predict, eval and live.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::Args;
#[cfg(feature = "ort")]
use fer_runtime::backends::Ort;
use fer_runtime::backends::{Backend, BackendError, BackendKind, is_fer};
use fer_runtime::vision::pipeline::CropOptions;
use fer_runtime::vision::{BlazeFace, Classifier, Pipeline};

/// The default expression model and face detector, by file name in `models/`: the int8
/// detector on the own engine; its float original when a float engine is asked for.
pub const DEFAULT_MODEL: &str = "edge.fer";
pub const DEFAULT_DETECTOR: &str = "blazeface_short.fer";
pub const FLOAT_DETECTOR: &str = "blazeface_short.onnx";

/// `models/NAME`: under `$FER_MODELS`, then `./models`, then the source checkout's.
pub fn shipped(name: &str) -> PathBuf {
    let candidates = [
        std::env::var_os("FER_MODELS").map(PathBuf::from),
        Some(PathBuf::from("models")),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("models").join(name))
}

/// The detector on `kind`. `auto` runs a `.fer` detector on the own int8 engine; a float
/// `.onnx` one on ONNX Runtime when its library loads, else on its int8 twin beside it (as
/// shipped: models/blazeface_short.fer, some 50x faster than the own f32 evaluator), else
/// on tract when built in, else on the own f32 evaluator.
fn detector_net(kind: BackendKind, path: &Path) -> Result<Box<dyn Backend>, BackendError> {
    if kind != BackendKind::Auto || is_fer(path) {
        return kind.open(path);
    }
    #[cfg(feature = "ort")]
    match Ort::available() {
        Ok(()) => return Ok(Box::new(Ort::load(path, "ONNX Runtime f32")?)),
        // A library that is found but does not load (another CPU's wheel, a broken
        // install) is a note, not an error: the detector runs without it.
        Err(e) if fer_runtime::backends::onnxruntime_library().is_ok() => {
            eprintln!("note: {e}; the detector runs without ONNX Runtime")
        }
        Err(_) => {}
    }
    let int8 = path.with_extension("fer");
    if int8.is_file() { BackendKind::Own.open(&int8) } else { BackendKind::Auto.open(path) }
}

/// Model and pipeline flags of `fer predict`, `eval` and `live`.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// Expression model: .fer (int8) or .onnx (float) [default: models/edge.fer].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Engine for --model (auto: own for .fer; for .onnx, tract if built in, else eval).
    #[arg(long, value_enum, default_value_t = BackendKind::Auto)]
    pub backend: BackendKind,
    /// Face detector (BlazeFace short range), .fer or .onnx [default: models/blazeface_short.fer
    /// on the own int8 engine; models/blazeface_short.onnx with --detector-backend ort, tract
    /// or eval].
    #[arg(long)]
    pub detector: Option<PathBuf>,
    /// Engine for the detector (auto: own for .fer; for .onnx, ONNX Runtime when its
    /// library is found, else its int8 twin (.fer beside it) on the own engine, else tract
    /// when built in, else eval).
    #[arg(long, value_enum, default_value_t = BackendKind::Auto)]
    pub detector_backend: BackendKind,
    /// Detector score threshold.
    #[arg(long, default_value_t = 0.5)]
    pub min_score: f32,
    /// Crop side = face box side x (1 + margin).
    #[arg(long, default_value_t = CropOptions::default().margin)]
    pub margin: f32,
    /// Move the crop's centre down by this fraction of the box height (negative: up).
    #[arg(long, default_value_t = CropOptions::default().shift_down, allow_negative_numbers = true)]
    pub shift_down: f32,
    /// Do not rotate crops to level the eyes.
    #[arg(long)]
    pub no_align: bool,
    /// Classify each face and its mirror image and average the two (test-time
    /// augmentation): the default, as it reads FER2013's faces about a point better for
    /// one more classifier call per face (docs/app.md).
    #[arg(long, overrides_with = "no_flip_tta")]
    pub flip_tta: bool,
    /// Classify each face once, unmirrored (one classifier call per face).
    #[arg(long, overrides_with = "flip_tta")]
    pub no_flip_tta: bool,
    /// Label a face `unsure` when its top probability is below P (the model card's
    /// Confidence section says what each P answers and how often it is right).
    #[arg(long, value_name = "P")]
    pub unsure_below: Option<f32>,
}

impl PipelineArgs {
    pub fn model_path(&self) -> PathBuf {
        self.model.clone().unwrap_or_else(|| shipped(DEFAULT_MODEL))
    }

    pub fn classifier(&self) -> anyhow::Result<Classifier> {
        let path = self.model_path();
        if !path.is_file() {
            return Err(anyhow!(
                "{}: no such model file (pass --model FILE.fer or FILE.onnx)",
                path.display()
            ));
        }
        if let Some(p) = self.unsure_below
            && !(0.0..=1.0).contains(&p)
        {
            return Err(anyhow!("--unsure-below must be between 0 and 1, got {p}"));
        }
        let mut c = Classifier::load(&path, self.backend)?;
        c.flip_tta = !self.no_flip_tta;
        c.unsure_below = self.unsure_below;
        Ok(c)
    }

    pub fn detector(&self) -> anyhow::Result<BlazeFace> {
        let path = self.detector.clone().unwrap_or_else(|| match self.detector_backend {
            BackendKind::Auto | BackendKind::Own => shipped(DEFAULT_DETECTOR),
            BackendKind::Ort | BackendKind::Tract | BackendKind::Eval => shipped(FLOAT_DETECTOR),
        });
        if !path.is_file() {
            return Err(anyhow!("{}: no such detector file (pass --detector FILE.onnx)", path.display()));
        }
        if !(self.min_score > 0.0 && self.min_score < 1.0) {
            return Err(anyhow!("--min-score must be between 0 and 1, got {}", self.min_score));
        }
        let net = detector_net(self.detector_backend, &path)?;
        let mut d = BlazeFace::named(net, &path)?;
        d.decoder.options.min_score = self.min_score;
        Ok(d)
    }

    /// The pipeline; `detect: false` takes every image as one face crop.
    pub fn pipeline(&self, detect: bool) -> anyhow::Result<Pipeline> {
        let detector = if detect { Some(self.detector()?) } else { None };
        let mut p = Pipeline::new(detector, self.classifier()?);
        if !(self.margin.is_finite() && (-0.5..=3.0).contains(&self.margin)) {
            return Err(anyhow!("--margin must be between -0.5 and 3, got {}", self.margin));
        }
        if !(self.shift_down.is_finite() && (-1.0..=1.0).contains(&self.shift_down)) {
            return Err(anyhow!("--shift-down must be between -1 and 1, got {}", self.shift_down));
        }
        p.crop.margin = self.margin;
        p.crop.shift_down = self.shift_down;
        p.crop.align = !self.no_align;
        Ok(p)
    }
}
