//! `fer predict`: faces and their expressions in images.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::Args;
use fer_runtime::preprocess::image_files;
use fer_runtime::vision::{Face, Pipeline, RgbFrame, draw_faces};
use serde::Serialize;

use super::models::PipelineArgs;

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Images (jpg, png) or folders of them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    pipeline: PipelineArgs,
    /// Take each whole image as one face crop (no detector).
    #[arg(long)]
    no_detect: bool,
    /// Write each image with its faces drawn into this folder (PNG).
    #[arg(long, value_name = "OUTDIR")]
    annotate: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct ImageResult {
    path: String,
    width: usize,
    height: usize,
    faces: Vec<Face>,
    detect_ms: f64,
    classify_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotated: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Every image named on the command line, folders expanded (sorted).
fn inputs(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let files = image_files(p)?;
            if files.is_empty() {
                return Err(anyhow!("{}: no jpg/png/bmp images in this folder", p.display()));
            }
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

pub fn run(a: PredictArgs) -> anyhow::Result<()> {
    let mut pipeline = a.pipeline.pipeline(!a.no_detect)?;
    if let Some(dir) = &a.annotate {
        std::fs::create_dir_all(dir).map_err(|e| anyhow!("{}: {e}", dir.display()))?;
    }
    let mut results = Vec::new();
    for path in inputs(&a.paths)? {
        let r = match predict_one(&mut pipeline, &path, a.annotate.as_deref(), &results) {
            Ok(r) => r,
            Err(e) => ImageResult {
                path: path.display().to_string(),
                width: 0,
                height: 0,
                faces: Vec::new(),
                detect_ms: 0.0,
                classify_ms: 0.0,
                annotated: None,
                error: Some(fer_runtime::error_line::one_line(&e)),
            },
        };
        if !a.json {
            print_human(&r);
        }
        results.push(r);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    let failed: Vec<&ImageResult> = results.iter().filter(|r| r.error.is_some()).collect();
    if let Some(first) = failed.first() {
        return Err(anyhow!(
            "{} of {} images could not be read; first: {}",
            failed.len(),
            results.len(),
            first.error.as_deref().unwrap_or("")
        ));
    }
    Ok(())
}

fn predict_one(
    pipeline: &mut Pipeline,
    path: &Path,
    annotate: Option<&Path>,
    done: &[ImageResult],
) -> anyhow::Result<ImageResult> {
    let img = fer_runtime::preprocess::open_image(path)?.into_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let frame = RgbFrame::new(w, h, img.as_raw())?;
    let faces = pipeline.faces(&frame)?;
    let annotated = match annotate {
        Some(dir) => {
            let out = annotated_path(dir, path, done);
            let mut px = img.into_raw();
            draw_faces(&mut px, w as u32, h as u32, &faces, &pipeline.classifier.labels);
            image::save_buffer(&out, &px, w as u32, h as u32, image::ExtendedColorType::Rgb8)
                .map_err(|e| anyhow!("{}: {e}", out.display()))?;
            Some(out.display().to_string())
        }
        None => None,
    };
    Ok(ImageResult {
        path: path.display().to_string(),
        width: w,
        height: h,
        faces,
        detect_ms: pipeline.last.detect_ms,
        classify_ms: pipeline.last.classify_ms,
        annotated,
        error: None,
    })
}

/// `OUTDIR/<stem>.png`, numbered when two inputs share a stem.
fn annotated_path(dir: &Path, input: &Path, done: &[ImageResult]) -> PathBuf {
    let stem = input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into());
    let taken = |p: &Path| done.iter().any(|r| r.annotated.as_deref() == Some(&*p.display().to_string()));
    let mut out = dir.join(format!("{stem}.png"));
    let mut i = 2;
    while taken(&out) {
        out = dir.join(format!("{stem}-{i}.png"));
        i += 1;
    }
    out
}

fn print_human(r: &ImageResult) {
    if let Some(e) = &r.error {
        eprintln!("{}: {e}", r.path);
        return;
    }
    let faces = match r.faces.len() {
        0 => "no face".to_string(),
        1 => "1 face".to_string(),
        n => format!("{n} faces"),
    };
    println!(
        "{} ({}x{}): {faces} ({:.1} ms detect, {:.1} ms classify)",
        r.path, r.width, r.height, r.detect_ms, r.classify_ms
    );
    for (i, f) in r.faces.iter().enumerate() {
        let best = f.probabilities.iter().copied().fold(0f32, f32::max);
        let [x, y, w, h] = f.bbox;
        println!(
            "  face {}: {:<9} {:>5.1}%  box [{:.0}, {:.0}, {:.0}, {:.0}]  detector {:.2}",
            i + 1,
            f.label,
            100.0 * best,
            x,
            y,
            w,
            h,
            f.score
        );
    }
}
