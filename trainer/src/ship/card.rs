//! The model card: `NAME.md` and its pictures, written from a [`ShipReport`] only, so
//! every figure in it comes from the run that made the model.

use std::fmt::Write as _;
use std::path::Path;

use fer_runtime::fsutil::write_atomic;

use super::{ShipOptions, ShipReport, output};
use crate::train::calibrate;
use crate::train::plot;

fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

fn file_name(p: &str) -> String {
    Path::new(p).file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The CPU the figures were measured on (`/proc/cpuinfo`), or "unknown CPU".
fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Writes the card and its pictures beside the model files.
pub fn write(r: &ShipReport, o: &ShipOptions) -> Result<(), String> {
    let labels = &r.fit.labels;
    let pictures = pictures(r, o)?;
    let mut md = String::new();
    let f = &r.fit;
    let w = |md: &mut String, s: String| {
        let _ = writeln!(md, "{s}");
    };
    w(&mut md, format!("# `{}`: {} facial-expression classifier, int8\n", r.name, f.model.kind.name()));
    w(
        &mut md,
        format!(
            "Written by `fer-train ship`; every figure here comes from that run. To make it again:\n\n```sh\n{}\n```\n",
            o.command
        ),
    );
    w(&mut md, "## Files\n".into());
    w(&mut md, "| file | bytes | what |\n|---|---:|---|".into());
    w(
        &mut md,
        format!(
            "| `{}` | {} | float ONNX (opset 18): input `[batch, {}, {}, {}]` in [0, 1], output logits in label order |",
            file_name(&r.onnx),
            r.onnx_bytes,
            f.model.input.channels,
            f.model.input.height,
            f.model.input.width
        ),
    );
    w(
        &mut md,
        format!(
            "| `{}` | {} | int8 for the own engine: {} layers, {} weight bytes, {} arena bytes |",
            file_name(&r.fer),
            r.fer_bytes,
            r.quantize.layers,
            r.quantize.weights_bytes,
            r.quantize.arena_bytes
        ),
    );
    w(
        &mut md,
        format!(
            "| `{}` | | the same int8 model as QDQ ONNX (ONNX Runtime runs it in int8) |\n",
            file_name(&r.qdq)
        ),
    );
    w(&mut md, format!("Labels, in output order: {}.\n", labels.join(", ")));

    w(&mut md, "## Data\n".into());
    w(
        &mut md,
        format!(
            "- training: `{}`, {} images for training and {} for validation ({})",
            f.config.data.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            f.train_images,
            f.val_images,
            r.split
        ),
    );
    w(
        &mut md,
        format!(
            "- test: `{}`, {} images, scored once at the end\n",
            r.test_set,
            r.scores.first().map_or(0, |s| s.images)
        ),
    );

    w(&mut md, "## Recipe\n".into());
    if let Some(recipe) = &o.recipe {
        w(&mut md, format!("```toml\n{}\n```\n", recipe.trim_end()));
    }
    w(
        &mut md,
        format!(
            "{} parameters. {} after {} epochs ({}); best epoch {} by {}, whose weights ship. \
         {:.0} min of training at {:.0} img/s on {}.\n",
            f.parameters,
            f.status,
            f.epochs_run,
            f.stop_reason,
            f.best_epoch.map_or("-".into(), |e| e.to_string()),
            f.monitor,
            r.training_seconds / 60.0,
            f.mean_train_images_per_second,
            cpu_name()
        ),
    );
    w(&mut md, format!("![training curves]({})\n", pictures.curves));

    w(&mut md, format!("## Test set: `{}`\n", r.test_set));
    let in_training = f.test.as_ref().map(|t| {
        format!(
            "| float (burn, in training) | {} | {} | {:.3} |",
            pct(t.accuracy),
            pct(t.balanced_accuracy),
            t.macro_f1
        )
    });
    md.push_str(&score_tables(&r.scores, in_training, labels));
    w(
        &mut md,
        format!(
            "\n![int8 confusion matrix]({})  ![float confusion matrix]({})\n",
            pictures.int8, pictures.float
        ),
    );
    w(
        &mut md,
        format!(
            "Reproduce the int8 row: `fer eval --model {} --data {} --no-flip-tta --json` (the `+ flip TTA` row, `fer`'s default: leave out `--no-flip-tta`).\n",
            r.fer, r.test_set
        ),
    );

    if let Some(cross) = &r.cross_test {
        md.push_str(&cross_test(cross, &r.fer, labels));
    }

    md.push_str(&confidence(r));

    w(&mut md, "## Validation (what chose the epoch)\n".into());
    w(
        &mut md,
        format!(
            "accuracy {}, balanced accuracy {}, macro-F1 {:.3} on {} images.",
            pct(f.val.accuracy),
            pct(f.val.balanced_accuracy),
            f.val.macro_f1,
            f.val_images
        ),
    );
    for note in &f.diagnoses.notes {
        w(&mut md, format!("- {note}"));
    }
    w(&mut md, String::new());

    w(&mut md, "## Quantization\n".into());
    w(
        &mut md,
        format!(
            "{} calibration images ({}): max |float - int8| logit difference {:.4}, same top-1 class on {:.1}% of them.\n",
            r.quantize.calibration_images,
            r.quantize.method,
            r.quantize.float_vs_int8_max_abs_diff,
            100.0 * r.quantize.top1_agreement
        ),
    );

    let l = &r.latency;
    w(&mut md, "## Speed\n".into());
    w(
        &mut md,
        format!(
            "One image, batch 1, one thread, medians of {} runs in 10 alternating rounds, on {}, {}:\n",
            l.reps,
            cpu_name(),
            if cfg!(debug_assertions) {
                "a dev build (debug assertions on: slower than a release build)"
            } else {
                "a release build"
            }
        ),
    );
    w(&mut md, "| engine | µs per image |\n|---|---:|".into());
    w(&mut md, format!("| own int8 engine ({}) | {:.0} |", l.kernels, l.engine_us));
    match (l.ort_us, l.ratio_vs_ort) {
        (Some(o), Some(ratio)) => {
            w(&mut md, format!("| ONNX Runtime int8 (`{}`) | {o:.0} |\n", file_name(&r.qdq)));
            w(
                &mut md,
                format!("Ratio engine / ONNX Runtime: **{ratio:.2}** (below 1: the engine is faster).\n"),
            );
        }
        _ => w(
            &mut md,
            format!(
                "\nONNX Runtime was not timed: {}.\n",
                l.ort_note.as_deref().unwrap_or("its library was not found")
            ),
        ),
    }
    w(
        &mut md,
        format!(
            "More peers: `fer bench --model {} --peers ort,ort-f32,tract` (tract in a `fer` built with `--features tract`).",
            r.fer
        ),
    );

    let path = output(&o.out, ".md")?;
    write_atomic(&path, md.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

/// The card's calibration section: the temperature, ECE before and after, the reliability
/// diagram, and what an `unsure` threshold trades.
/// The scores table (one row a model, `extra` row last) and the recall per class.
fn score_tables(scores: &[super::Scored], extra: Option<String>, labels: &[String]) -> String {
    let mut md = "| model | accuracy | balanced accuracy | macro-F1 |\n|---|---:|---:|---:|\n".to_string();
    for s in scores {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.3} |",
            s.name,
            pct(s.accuracy),
            pct(s.balanced_accuracy),
            s.macro_f1
        );
    }
    if let Some(row) = extra {
        let _ = writeln!(md, "{row}");
    }
    md.push_str("\nRecall per class:\n\n| class |");
    for s in scores {
        let _ = write!(md, " {} |", s.name);
    }
    md.push_str("\n|---|");
    md.push_str(&"---:|".repeat(scores.len()));
    for (i, l) in labels.iter().enumerate() {
        let _ = write!(md, "\n| {l} |");
        for s in scores {
            let recall = s.per_class_recall.get(i).copied().flatten();
            let _ = write!(md, " {} |", recall.map_or("-".into(), pct));
        }
    }
    md.push('\n');
    md
}

/// The cross-dataset section: the same models on another dataset's faces.
fn cross_test(cross: &super::CrossTest, fer: &str, labels: &[String]) -> String {
    let mut md = format!(
        "## Another dataset: `{}`\n\nThe same models on faces of a dataset they never saw in training \
         (classes the model lacks, such as CK+'s contempt, are left out; a class with no image \
         shows `-`).\n\n",
        cross.path
    );
    md.push_str(&score_tables(&cross.scores, None, labels));
    let _ = writeln!(
        md,
        "\nReproduce the int8 row: `fer eval --model {fer} --data {} --no-flip-tta --json`.\n",
        cross.path
    );
    md
}

fn confidence(r: &ShipReport) -> String {
    let c = &r.calibration;
    let mut md = String::new();
    let mut w = |s: String| {
        let _ = writeln!(md, "{s}");
    };
    w("## Confidence\n".into());
    w(format!(
        "The shipped logits are divided by a temperature T = {:.3}, fitted on the validation split (the \
         value that minimises its negative log-likelihood; the test set plays no part), so that a face read \
         `happy 70%` is right about 70% of the time. The predicted class does not change. Expected \
         calibration error of the float model (top-class confidence in {} equal bins):\n",
        c.temperature,
        calibrate::BINS
    ));
    w("| set | ECE before | ECE after | NLL before | NLL after |\n|---|---:|---:|---:|---:|".into());
    for (set, before, after) in
        [("validation", &c.val_before, &c.val_after), ("test", &c.test_before, &c.test_after)]
    {
        w(format!("| {set} | {:.4} | {:.4} | {:.4} | {:.4} |", before.ece, after.ece, before.nll, after.nll));
    }
    w(format!("\n![reliability diagram]({})\n", c.picture));
    w("Answering `unsure` below a confidence (`fer predict --unsure-below P`, also `fer live`): the share of \
       faces still answered, and the accuracy on those, after calibration:\n"
        .into());
    w("| P | validation: answered | validation: accuracy | test: answered | test: accuracy |".into());
    w("|---:|---:|---:|---:|---:|".into());
    // No face answered: no accuracy to give.
    let accuracy = |c: &calibrate::Coverage| if c.coverage > 0.0 { pct(c.accuracy) } else { "-".into() };
    for (v, t) in c.val_coverage.iter().zip(&c.test_coverage) {
        w(format!(
            "| {:.1} | {} | {} | {} | {} |",
            v.threshold,
            pct(v.coverage),
            accuracy(v),
            pct(t.coverage),
            accuracy(t)
        ));
    }
    w(String::new());
    md
}

struct Pictures {
    curves: String,
    float: String,
    int8: String,
}

/// `NAME-curves.png` (the run's), `NAME-confusion-int8.png` and `NAME-confusion-float.png`.
fn pictures(r: &ShipReport, o: &ShipOptions) -> Result<Pictures, String> {
    let names = Pictures {
        curves: format!("{}-curves.png", r.name),
        float: format!("{}-confusion-float.png", r.name),
        int8: format!("{}-confusion-int8.png", r.name),
    };
    let dir = o.out.parent().unwrap_or(Path::new("."));
    let curves = std::fs::read(o.work.join("curves.png"))
        .map_err(|e| format!("{}: {e}", o.work.join("curves.png").display()))?;
    write_atomic(&dir.join(&names.curves), &curves).map_err(|e| e.to_string())?;
    for (file, score) in [(&names.float, &r.scores[0]), (&names.int8, &r.scores[1])] {
        let title = format!("{} on {} ({} images)", score.name, file_name(&r.test_set), score.images);
        plot::confusion(&dir.join(file), &score.confusion, &r.fit.labels, &title)?;
    }
    Ok(names)
}
