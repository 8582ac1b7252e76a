//! `fer eval`: a model scored on labelled class folders, through the same pipeline as
//! `fer predict` (or, for face crops, on whole images as the trainer reads them).

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;
use fer_runtime::metrics::Confusion;
use fer_runtime::preprocess::{image_input, labeled_images};
use fer_runtime::vision::RgbFrame;
use fer_runtime::vision::classify::{UNSURE, argmax};
use serde::Serialize;

use super::models::PipelineArgs;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Class folders (angry/, happy/, ...) of images.
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    pipeline: PipelineArgs,
    /// Score whole images as faces (automatic for images of the model's input size).
    #[arg(long)]
    no_detect: bool,
    /// At most this many images, spread over the classes (0: all).
    #[arg(long, default_value_t = 0)]
    max_images: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Unreadable {
    path: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct Report {
    model: String,
    backend: String,
    data: String,
    images: u64,
    accuracy: f64,
    balanced_accuracy: f64,
    macro_f1: f64,
    /// Per class name; null for a class without images.
    per_class_recall: serde_json::Map<String, serde_json::Value>,
    labels: Vec<String>,
    /// `confusion[true][predicted]`, in `labels` order; when a face was missed, one more
    /// column counts those images ("no face").
    confusion: Vec<Vec<u64>>,
    /// Images scored whole (face crops) and through the detector.
    whole_images: u64,
    detected_images: u64,
    /// Images where the detector found no face: scored as wrong.
    no_face: u64,
    /// Images of classes the model does not have (e.g. contempt for a 7-class model).
    skipped_classes: u64,
    /// Images that could not be decoded: left out of every figure, listed here.
    skipped: Vec<Unreadable>,
    flip_tta: bool,
    /// With `--unsure-below`: the faces answered (top probability at or above it), and the
    /// accuracy on those.
    #[serde(skip_serializing_if = "Option::is_none")]
    unsure: Option<Unsure>,
}

#[derive(Debug, Serialize)]
struct Unsure {
    below: f32,
    answered: u64,
    right: u64,
    accuracy: f64,
}

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    let mut items = labeled_images(&a.data)?;
    if a.max_images > 0 && items.len() > a.max_images {
        items = (0..a.max_images).map(|i| items[i * items.len() / a.max_images].clone()).collect();
    }
    let mut pipeline = a.pipeline.pipeline(false)?;
    let shape = pipeline.classifier.input_shape();
    let classes = pipeline.classifier.labels.len();
    // One more column than classes: "no face found", a prediction no image is labelled
    // with, so that missed faces count as wrong in every metric without inventing a class.
    let mut confusion = Confusion::new(classes + 1);
    let (mut whole, mut detected, mut no_face, mut skipped) = (0u64, 0u64, 0u64, 0u64);
    let mut unreadable = Vec::new();
    let mut unsure =
        a.pipeline.unsure_below.map(|below| Unsure { below, answered: 0, right: 0, accuracy: 0.0 });
    for (path, label) in &items {
        if *label >= classes {
            skipped += 1;
            continue;
        }
        let img = match fer_runtime::preprocess::open_image(path) {
            Ok(img) => img,
            Err(e) => {
                unreadable.push(Unreadable { path: path.display().to_string(), reason: e.to_string() });
                continue;
            }
        };
        let crop_sized = img.width() as usize == shape[2] && img.height() as usize == shape[1];
        let probabilities = if a.no_detect || crop_sized {
            whole += 1;
            let x = image_input(img, shape)?;
            Some(pipeline.classifier.classify(&x)?)
        } else {
            detected += 1;
            if pipeline.detector.is_none() {
                pipeline.detector = Some(a.pipeline.detector()?);
            }
            let rgb = img.into_rgb8();
            let frame = RgbFrame::new(rgb.width() as usize, rgb.height() as usize, rgb.as_raw())?;
            let faces = pipeline.faces(&frame).map_err(|e| anyhow!("{}: {e}", path.display()))?;
            faces.first().map(|f| f.probabilities.clone())
        };
        let predicted = probabilities.as_deref().map(argmax);
        if let (Some(p), Some(answer)) = (&probabilities, unsure.as_mut())
            && pipeline.classifier.label_for(p) != UNSURE
        {
            answer.answered += 1;
            answer.right += u64::from(argmax(p) == *label);
        }
        if predicted.is_none() {
            no_face += 1;
        }
        confusion.add(*label, predicted.unwrap_or(classes));
    }
    if confusion.total() == 0 {
        return Err(match unreadable.first() {
            Some(first) => anyhow!(
                "{}: none of its {} images could be read; first: {}",
                a.data.display(),
                unreadable.len(),
                first.reason
            ),
            None => anyhow!("{}: no image of the model's {classes} classes", a.data.display()),
        });
    }
    let labels = pipeline.classifier.labels.clone();
    let recalls = confusion.recalls()[..classes].to_vec();
    // The "no face" row is always empty; its column only matters when a face was missed.
    let keep = if no_face > 0 { classes + 1 } else { classes };
    let counts: Vec<Vec<u64>> = confusion.counts[..classes].iter().map(|r| r[..keep].to_vec()).collect();
    let report = Report {
        model: a.pipeline.model_path().display().to_string(),
        backend: pipeline.classifier.name(),
        data: a.data.display().to_string(),
        images: confusion.total(),
        accuracy: confusion.accuracy(),
        balanced_accuracy: confusion.balanced_accuracy(),
        macro_f1: confusion.macro_f1(),
        per_class_recall: labels.iter().cloned().zip(recalls.iter().map(|r| serde_json::json!(r))).collect(),
        labels,
        confusion: counts,
        whole_images: whole,
        detected_images: detected,
        no_face,
        skipped_classes: skipped,
        skipped: unreadable,
        flip_tta: pipeline.classifier.flip_tta,
        unsure: unsure.map(|u| Unsure { accuracy: u.right as f64 / u.answered.max(1) as f64, ..u }),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&report, &recalls);
    }
    Ok(())
}

fn print_human(r: &Report, recalls: &[Option<f64>]) {
    println!("{} ({}) on {}: {} images", r.model, r.backend, r.data, r.images);
    println!(
        "accuracy {:.2}%, balanced accuracy {:.2}%, macro-F1 {:.3}",
        100.0 * r.accuracy,
        100.0 * r.balanced_accuracy,
        r.macro_f1
    );
    for u in &r.skipped {
        println!("skipped {}: {}", u.path, u.reason);
    }
    if r.no_face > 0 {
        println!("no face found in {} of {} detected images (scored as wrong)", r.no_face, r.detected_images);
    }
    if let Some(u) = &r.unsure {
        println!(
            "unsure below {}: {} of {} images answered ({:.1}%), {:.2}% of those right",
            u.below,
            u.answered,
            r.images,
            100.0 * u.answered as f64 / r.images.max(1) as f64,
            100.0 * u.accuracy
        );
    }
    print!("{:>10}", "true\\pred");
    for l in &r.labels {
        print!(" {:>8}", &l[..l.len().min(8)]);
    }
    println!("   recall");
    for (i, row) in r.confusion.iter().enumerate() {
        print!("{:>10}", &r.labels[i][..r.labels[i].len().min(10)]);
        for v in &row[..r.labels.len()] {
            print!(" {v:>8}");
        }
        if let Some(missed) = row.get(r.labels.len()) {
            print!(" {:>8}", format!("noface:{missed}"));
        }
        match recalls[i] {
            Some(x) => println!("   {:>5.1}%", 100.0 * x),
            None => println!("       -"),
        }
    }
}
