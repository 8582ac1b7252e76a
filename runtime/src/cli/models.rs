//! Where the shipped models are, and the pipeline options shared by predict, eval and live.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use fer_runtime::vision::detector::DetectorNet;
use fer_runtime::vision::pipeline::CropOptions;
use fer_runtime::vision::{BackendKind, BlazeFace, Classifier, Pipeline};

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// The own int8 engine (.fer models).
    Own,
    /// tract-onnx, f32 (.onnx models; builds with the `tract` feature).
    Tract,
    /// ONNX Runtime (.onnx models; libonnxruntime.so from ORT_DYLIB_PATH).
    Ort,
    /// The runtime's own f32 evaluator (.onnx models; slow, needs nothing).
    Eval,
}

impl From<Engine> for BackendKind {
    fn from(e: Engine) -> BackendKind {
        match e {
            Engine::Own => BackendKind::Own,
            Engine::Tract => BackendKind::Tract,
            Engine::Ort => BackendKind::Ort,
            Engine::Eval => BackendKind::Eval,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DetectorEngine {
    /// The own int8 engine for a .fer detector; for .onnx, ONNX Runtime when its library
    /// is found, else its int8 twin (.fer beside it) on the own engine, else tract when
    /// built in, else the own f32 evaluator.
    Auto,
    /// The own int8 engine (.fer detectors, made by `fer quantize --letterbox`).
    Own,
    /// tract-onnx, f32: needs nothing installed (builds with the `tract` feature).
    Tract,
    /// ONNX Runtime, f32 (libonnxruntime.so from ORT_DYLIB_PATH or the tools venv).
    Ort,
    /// The runtime's own f32 evaluator: no other library, slow (the reference).
    Eval,
}

impl DetectorEngine {
    /// What `auto` picks for a float detector when ONNX Runtime is not there.
    fn without_ort(self) -> DetectorEngine {
        if cfg!(feature = "tract") { DetectorEngine::Tract } else { DetectorEngine::Eval }
    }
}

/// The detector network on the engine asked for.
fn detector_net(engine: DetectorEngine, path: &Path) -> Result<Box<dyn DetectorNet>, String> {
    use fer_runtime::vision::detector::{EvalNet, Int8Net, OrtNet};
    let int8 = path.extension().is_some_and(|e| e == "fer");
    if int8 != (engine == DetectorEngine::Own) && engine != DetectorEngine::Auto {
        let name = engine.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
        return Err(format!(
            "{}: --detector-backend {name} runs {} detectors",
            path.display(),
            if int8 { ".onnx" } else { ".fer" }
        ));
    }
    Ok(match engine {
        DetectorEngine::Own => Box::new(Int8Net::load(path)?),
        DetectorEngine::Auto if int8 => Box::new(Int8Net::load(path)?),
        DetectorEngine::Ort => Box::new(OrtNet::load(path)?),
        DetectorEngine::Eval => Box::new(EvalNet::load(path)?),
        #[cfg(feature = "tract")]
        DetectorEngine::Tract => Box::new(fer_runtime::vision::detector::TractNet::load(path)?),
        #[cfg(not(feature = "tract"))]
        DetectorEngine::Tract => {
            return Err("--detector-backend tract: this build has no tract (cargo feature `tract`)".into());
        }
        DetectorEngine::Auto => {
            // A library that is found but does not load (another CPU's wheel, a broken
            // install) is a note, not an error: the detector runs without it.
            match fer_runtime::backends::Ort::available() {
                Ok(()) => Box::new(OrtNet::load(path)?),
                Err(e) => {
                    if fer_runtime::backends::onnxruntime_library().is_ok() {
                        eprintln!("note: {e}; the detector runs without ONNX Runtime");
                    }
                    // Without ONNX Runtime, the same detector in int8 beside it (as shipped:
                    // models/blazeface_short.fer) runs on the own engine, some 50x faster
                    // than the own f32 evaluator.
                    let int8 = path.with_extension("fer");
                    if int8.is_file() {
                        Box::new(Int8Net::load(&int8)?)
                    } else {
                        detector_net(DetectorEngine::Auto.without_ort(), path)?
                    }
                }
            }
        }
    })
}

/// Model and pipeline flags of `fer predict`, `eval` and `live`.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// Expression model: .fer (int8) or .onnx (float) [default: models/edge.fer].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Engine for --model [default: own for .fer; for .onnx, tract if built in, else eval].
    #[arg(long, value_enum)]
    pub backend: Option<Engine>,
    /// Face detector (BlazeFace short range), .fer or .onnx [default: models/blazeface_short.fer
    /// on the own int8 engine; models/blazeface_short.onnx with --detector-backend ort, tract
    /// or eval].
    #[arg(long)]
    pub detector: Option<PathBuf>,
    /// Engine for the detector.
    #[arg(long, value_enum, default_value_t = DetectorEngine::Auto)]
    pub detector_backend: DetectorEngine,
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
    /// Also classify each face mirrored and average (test-time augmentation).
    #[arg(long)]
    pub flip_tta: bool,
}

impl PipelineArgs {
    pub fn model_path(&self) -> PathBuf {
        self.model.clone().unwrap_or_else(|| shipped(DEFAULT_MODEL))
    }

    pub fn classifier(&self) -> Result<Classifier, String> {
        let path = self.model_path();
        if !path.is_file() {
            return Err(format!(
                "{}: no such model file (pass --model FILE.fer or FILE.onnx)",
                path.display()
            ));
        }
        let kind = self.backend.map(BackendKind::from).unwrap_or_else(|| BackendKind::for_path(&path));
        let mut c = Classifier::load(&path, kind)?;
        c.flip_tta = self.flip_tta;
        Ok(c)
    }

    pub fn detector(&self) -> Result<BlazeFace, String> {
        let path = self.detector.clone().unwrap_or_else(|| match self.detector_backend {
            DetectorEngine::Auto | DetectorEngine::Own => shipped(DEFAULT_DETECTOR),
            DetectorEngine::Ort | DetectorEngine::Tract | DetectorEngine::Eval => shipped(FLOAT_DETECTOR),
        });
        if !path.is_file() {
            return Err(format!("{}: no such detector file (pass --detector FILE.onnx)", path.display()));
        }
        if !(self.min_score > 0.0 && self.min_score < 1.0) {
            return Err(format!("--min-score must be between 0 and 1, got {}", self.min_score));
        }
        let mut d = BlazeFace::new(detector_net(self.detector_backend, &path)?);
        d.options.min_score = self.min_score;
        Ok(d)
    }

    /// The pipeline; `detect: false` takes every image as one face crop.
    pub fn pipeline(&self, detect: bool) -> Result<Pipeline, String> {
        let detector = if detect { Some(self.detector()?) } else { None };
        let mut p = Pipeline::new(detector, self.classifier()?);
        if !(self.margin.is_finite() && (-0.5..=3.0).contains(&self.margin)) {
            return Err(format!("--margin must be between -0.5 and 3, got {}", self.margin));
        }
        if !(self.shift_down.is_finite() && (-1.0..=1.0).contains(&self.shift_down)) {
            return Err(format!("--shift-down must be between -1 and 1, got {}", self.shift_down));
        }
        p.crop.margin = self.margin;
        p.crop.shift_down = self.shift_down;
        p.crop.align = !self.no_align;
        Ok(p)
    }
}
