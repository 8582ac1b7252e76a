//! `fer-train ship`: data to a shipped model in one command. Each stage reads what the one
//! before it wrote, so a killed run picks up where it stopped:
//!
//! 1. fit in a work folder (resumed when it already holds epochs);
//! 2. fit a temperature on the validation split, bake it into the best checkpoint's
//!    classifier and export that to `NAME.onnx` (with `NAME-reliability.png`);
//! 3. quantize it (calibrated on training images) to `NAME.fer` and `NAME.qdq.onnx`;
//! 4. score the float ONNX and the int8 model on the test set, through the runtime;
//! 5. time the int8 engine (and ONNX Runtime on the QDQ twin when its library is found);
//! 6. write the model card `NAME.md` and its pictures from those figures.

pub mod card;

use std::path::{Path, PathBuf};
use std::time::Instant;

use fer_runtime::backends::Backend;
use fer_runtime::engine::Engine;
use fer_runtime::format::{AlignedBytes, Model};
use fer_runtime::fsutil::write_atomic;
use fer_runtime::metrics::Confusion;
use fer_runtime::onnx::{FloatGraph, eval};
use fer_runtime::quant::{self, Method};
use fer_runtime::vision::classify;
use serde::Serialize;

use crate::train::calibrate;
use crate::train::checkpoint::STATE_FILE;
use crate::train::config::TrainConfig;
use crate::train::fit::{self, RunData, RunOptions, RunReport};
use crate::train::plot;
use crate::train::prepare::prepare;

/// Where and how to ship.
#[derive(Clone, Debug)]
pub struct ShipOptions {
    /// `models/NAME`: the folder and the file stem of every output.
    pub out: PathBuf,
    /// The fit's run folder (checkpoints, metrics, curves).
    pub work: PathBuf,
    /// Training images the quantizer calibrates on, spread over the training set.
    pub calib_images: usize,
    /// Timed runs per backend.
    pub bench_reps: usize,
    /// The command line that made this model, for the card.
    pub command: String,
    /// The experiment file's text, for the card.
    pub recipe: Option<String>,
    pub progress: bool,
}

/// Scores of one model variant on the test set.
#[derive(Clone, Debug, Serialize)]
pub struct Scored {
    pub name: String,
    pub images: u64,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub macro_f1: f64,
    pub per_class_recall: Vec<Option<f64>>,
    pub confusion: Confusion,
}

impl Scored {
    fn new(name: &str, c: Confusion) -> Scored {
        Scored {
            name: name.into(),
            images: c.total(),
            accuracy: c.accuracy(),
            balanced_accuracy: c.balanced_accuracy(),
            macro_f1: c.macro_f1(),
            per_class_recall: c.recalls(),
            confusion: c,
        }
    }
}

/// Scores on a dataset the model never saw in training (CK+ for a FER2013 model): how it
/// reads faces of another kind.
#[derive(Clone, Debug, Serialize)]
pub struct CrossTest {
    pub path: String,
    pub scores: Vec<Scored>,
}

/// Single-thread batch-1 latency, medians in microseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    pub engine_us: f64,
    pub kernels: String,
    pub ort_us: Option<f64>,
    /// `engine_us / ort_us` (below 1: the engine is faster).
    pub ratio_vs_ort: Option<f64>,
    /// Why ONNX Runtime was not timed, when it was not.
    pub ort_note: Option<String>,
    pub reps: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct ShipReport {
    pub name: String,
    pub onnx: String,
    pub fer: String,
    pub qdq: String,
    pub card: String,
    pub fit: RunReport,
    pub calibration: Calibration,
    pub quantize: quant::Report,
    pub test_set: String,
    /// How validation was taken from the training data.
    pub split: String,
    pub scores: Vec<Scored>,
    /// The same models on another dataset's test set (`cross_test`).
    pub cross_test: Option<CrossTest>,
    pub latency: Latency,
    pub onnx_bytes: usize,
    pub fer_bytes: usize,
    /// Seconds of all the fit's epochs, across resumed runs.
    pub training_seconds: f64,
}

fn stem(out: &Path) -> Result<String, String> {
    out.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("--out {}: give models/NAME", out.display()))
}

/// `models/NAME` + `.ext`.
fn output(out: &Path, ext: &str) -> Result<PathBuf, String> {
    Ok(out.with_file_name(format!("{}{ext}", stem(out)?)))
}

pub fn ship(cfg: &TrainConfig, o: &ShipOptions) -> Result<ShipReport, String> {
    let name = stem(&o.out)?;
    if cfg.test.is_none() {
        return Err(
            "ship needs a test set to measure the model on: set `test` in --config or pass --test".into()
        );
    }
    if let Some(dir) = o.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let (data, split) = prepare(cfg)?;
    let fit = train_stage(cfg, &data, o)?;
    let onnx_path = output(&o.out, ".onnx")?;
    eprintln!("ship: calibrating on the validation split and exporting {}", onnx_path.display());
    let calibration = calibrate_and_export(&data, o, &onnx_path)?;
    let onnx = std::fs::read(&onnx_path).map_err(|e| format!("{}: {e}", onnx_path.display()))?;

    eprintln!("ship: quantizing on {} training images", o.calib_images);
    let calib = calibration_images(&data, o.calib_images)?;
    let q = quant::quantize(&onnx, &calib, Method::MinMax)
        .map_err(|e| format!("{}: {e}", onnx_path.display()))?;
    let (fer_path, qdq_path) = (output(&o.out, ".fer")?, output(&o.out, ".qdq.onnx")?);
    write_atomic(&fer_path, &q.fer).map_err(|e| format!("{}: {e}", fer_path.display()))?;
    write_atomic(&qdq_path, &q.qdq).map_err(|e| format!("{}: {e}", qdq_path.display()))?;

    let (test_loader, test_items) = data.test.as_ref().ok_or("the test set is empty")?;
    eprintln!("ship: scoring float and int8 on {} test images", test_items.len());
    let scores = score_stage(&q.graph, &q.fer, test_loader, test_items, data.classes)?;
    let cross_test = match &cfg.cross_test {
        Some(path) => Some(cross_stage(path, cfg, &q.graph, &q.fer, data.classes)?),
        None => None,
    };
    eprintln!("ship: timing the engine");
    let latency = latency_stage(&q.fer, &qdq_path, &calib[0], o.bench_reps)?;

    let report = ShipReport {
        name,
        onnx: onnx_path.display().to_string(),
        fer: fer_path.display().to_string(),
        qdq: qdq_path.display().to_string(),
        card: output(&o.out, ".md")?.display().to_string(),
        fit,
        calibration,
        quantize: q.report,
        test_set: cfg.test.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        split: split.description,
        scores,
        cross_test,
        latency,
        onnx_bytes: onnx.len(),
        fer_bytes: q.fer.len(),
        training_seconds: training_seconds(&o.work)?,
    };
    card::write(&report, o)?;
    Ok(report)
}

/// The unsure thresholds the card tabulates.
const THRESHOLDS: [f64; 6] = [0.0, 0.4, 0.5, 0.6, 0.7, 0.8];

/// Temperature scaling of the shipped model: fitted on the validation split, checked on
/// the test set.
#[derive(Clone, Debug, Serialize)]
pub struct Calibration {
    pub temperature: f64,
    pub val_before: calibrate::Reliability,
    pub val_after: calibrate::Reliability,
    pub test_before: calibrate::Reliability,
    pub test_after: calibrate::Reliability,
    /// Answering `unsure` below each threshold, after calibration.
    pub val_coverage: Vec<calibrate::Coverage>,
    pub test_coverage: Vec<calibrate::Coverage>,
    /// `NAME-reliability.png`.
    pub picture: String,
}

/// Fits the temperature on the best checkpoint's validation logits, draws the reliability
/// diagram, and exports the checkpoint with the temperature baked in to `onnx_path`.
fn calibrate_and_export(data: &RunData, o: &ShipOptions, onnx_path: &Path) -> Result<Calibration, String> {
    let best = o.work.join("best");
    let mut card = crate::export::read_card(&best)?;
    let device = burn::prelude::Device::flex();
    let model = fit::load_model(&best, &card.model, &device).map_err(|e| e.to_string())?;
    let logits = |loader, items: &[usize]| {
        calibrate::Logits::of(&model, loader, items, data.classes, &device).map_err(|e| e.to_string())
    };
    let val = logits(&data.loader, &data.val)?;
    let (test_loader, test_items) = data.test.as_ref().ok_or("the test set is empty")?;
    let test = logits(test_loader, test_items)?;
    let t = calibrate::fit_temperature(&val);
    let c = Calibration {
        temperature: t,
        val_before: calibrate::reliability(&val, 1.0),
        val_after: calibrate::reliability(&val, t),
        test_before: calibrate::reliability(&test, 1.0),
        test_after: calibrate::reliability(&test, t),
        val_coverage: calibrate::coverage(&val, t, &THRESHOLDS),
        test_coverage: calibrate::coverage(&test, t, &THRESHOLDS),
        picture: format!("{}-reliability.png", stem(&o.out)?),
    };
    let dir = o.out.parent().unwrap_or(Path::new("."));
    plot::reliability(
        &dir.join(&c.picture),
        &[("validation", &c.val_before, &c.val_after), ("test", &c.test_before, &c.test_after)],
    )?;
    let baked = calibrate::bake_temperature(model, t)?;
    card.temperature = Some(t);
    let bytes = crate::export::to_onnx(&baked, &card)?;
    write_atomic(onnx_path, &bytes).map_err(|e| format!("{}: {e}", onnx_path.display()))?;
    Ok(c)
}

/// Fits in `o.work`, continuing the run there if it has finished epochs (a run that
/// already ended returns its report at once).
fn train_stage(cfg: &TrainConfig, data: &RunData, o: &ShipOptions) -> Result<RunReport, String> {
    let resume = o.work.join("last").join(STATE_FILE).is_file();
    let saved_config = if resume {
        let text =
            std::fs::read_to_string(o.work.join("last").join(STATE_FILE)).map_err(|e| e.to_string())?;
        serde_json::from_str::<crate::train::checkpoint::TrainState>(&text).ok().map(|s| s.config)
    } else {
        None
    };
    if let Some(saved) = &saved_config
        && !saved.same_fit(cfg)
    {
        return Err(format!(
            "{} holds a run with other settings; remove it or pass another --work",
            o.work.display()
        ));
    }
    eprintln!("ship: {} {}", if resume { "continuing the fit in" } else { "fitting in" }, o.work.display());
    std::fs::create_dir_all(&o.work).map_err(|e| format!("{}: {e}", o.work.display()))?;
    fit::run(cfg, data, &o.work, &RunOptions { resume, progress: o.progress }).map_err(|e| e.to_string())
}

/// The epochs' seconds from the run's saved history (a resumed run's own report counts
/// only its part).
fn training_seconds(work: &Path) -> Result<f64, String> {
    let path = work.join("last").join(STATE_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let state: crate::train::checkpoint::TrainState =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(state.history.iter().map(|e| e.seconds).sum())
}

/// `n` training images spread over the (shuffled-by-split) training set, as the trainer
/// feeds them.
fn calibration_images(data: &RunData, n: usize) -> Result<Vec<Vec<f32>>, String> {
    let n = n.clamp(1, data.train.len());
    let items: Vec<(usize, f32)> = (0..n).map(|i| (data.train[i * data.train.len() / n], 1.0)).collect();
    let batch = data.loader.batch(&items, None, 0, 0)?;
    Ok(batch.images.chunks(data.loader.spec.len()).map(<[f32]>::to_vec).collect())
}

/// The float ONNX (runtime's f32 evaluator) and the int8 model, plain and with mirror
/// test-time augmentation, on every test image.
fn score_stage(
    graph: &FloatGraph,
    fer: &[u8],
    loader: &crate::train::loader::Loader,
    items: &[usize],
    classes: usize,
) -> Result<Vec<Scored>, String> {
    let buf = AlignedBytes::new(fer);
    let engine = Engine::with_best_kernels(Model::new(buf.as_slice()).map_err(|e| e.to_string())?);
    let mut arena = vec![0u8; engine.arena_size()];
    let [_, _, w] = graph.input_shape;
    let (mut float, mut int8, mut int8_flip) =
        (Confusion::new(classes), Confusion::new(classes), Confusion::new(classes));
    let argmax = classify::argmax;
    let mut mirrored = Vec::new();
    for chunk in items.chunks(256) {
        let list: Vec<(usize, f32)> = chunk.iter().map(|&i| (i, 1.0)).collect();
        let batch = loader.batch(&list, None, 0, 0)?;
        for (img, &target) in batch.images.chunks(loader.spec.len()).zip(&batch.targets) {
            let t = target as usize;
            let f = eval::run(graph, img).map_err(|e| e.to_string())?;
            float.add(t, argmax(&f));
            let q = engine.infer(&mut arena, img).map_err(|e| e.to_string())?;
            int8.add(t, argmax(&q));
            classify::mirror_into(img, w, &mut mirrored);
            let m = engine.infer(&mut arena, &mirrored).map_err(|e| e.to_string())?;
            let mut p = classify::softmax(&q);
            classify::average_into(&mut p, &classify::softmax(&m));
            int8_flip.add(t, argmax(&p));
        }
    }
    Ok(vec![
        Scored::new("float (ONNX)", float),
        Scored::new("int8", int8),
        Scored::new("int8 + flip TTA", int8_flip),
    ])
}

/// The float and int8 models on the `cross_test` dataset, its classes restricted to the
/// model's as the training data's were.
fn cross_stage(
    path: &Path,
    cfg: &TrainConfig,
    graph: &FloatGraph,
    fer: &[u8],
    classes: usize,
) -> Result<CrossTest, String> {
    let (loader, items) = crate::train::prepare::test_set(path, cfg)?;
    eprintln!("ship: scoring float and int8 on {} images of {}", items.len(), path.display());
    let scores = score_stage(graph, fer, &loader, &items, classes)?;
    Ok(CrossTest { path: path.display().to_string(), scores })
}

fn median_us(mut f: impl FnMut() -> Result<(), String>, reps: usize) -> Result<f64, String> {
    for _ in 0..reps.min(50) {
        f()?;
    }
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64() * 1e6);
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

/// The engine beside ONNX Runtime on the QDQ twin (when its library is found), one image,
/// one thread, timed in alternating rounds so a noisy moment hits both.
fn latency_stage(fer: &[u8], qdq: &Path, image: &[f32], reps: usize) -> Result<Latency, String> {
    let reps = reps.max(10);
    let mut own = fer_runtime::backends::Own::from_bytes(fer, None).map_err(|e| e.to_string())?;
    let kernels = own.kernels().name().to_string();
    let mut ort = fer_runtime::backends::Ort::load(qdq, "ort");
    let (mut engine_t, mut ort_t) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        engine_t.push(median_us(|| own.infer(image).map(drop).map_err(|e| e.to_string()), reps / 10 + 1)?);
        if let Ok(o) = ort.as_mut() {
            ort_t.push(median_us(|| o.infer(image).map(drop).map_err(|e| e.to_string()), reps / 10 + 1)?);
        }
    }
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let engine_us = med(engine_t);
    let ort_us = (!ort_t.is_empty()).then(|| med(ort_t));
    Ok(Latency {
        engine_us,
        kernels,
        ort_us,
        ratio_vs_ort: ort_us.map(|o| engine_us / o),
        ort_note: ort.err().map(|e| e.to_string()),
        reps,
    })
}
