//! `fer-train cv`: one training per fold, mean ± std of the validation metrics.
//!
//! Each fold's figure is its last epoch's unless early stopping or best-weight restoring
//! is on: picking the best epoch on the fold that is being scored makes the score
//! optimistic, and the report says which was used.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::fit::{self, RunData, RunOptions, TrainError};
use super::loader::Loader;
use super::metrics::SetMetrics;
use crate::data::split::{Fold, SplitReport};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FoldResult {
    pub fold: usize,
    pub train_images: usize,
    pub val_images: usize,
    pub epochs_run: usize,
    pub best_epoch: Option<usize>,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub macro_f1: f64,
    pub loss: f64,
    pub per_class_recall: Vec<Option<f64>>,
}

/// Mean or standard deviation of each metric over folds.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Summary {
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub macro_f1: f64,
    pub loss: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct CvReport {
    pub folds: Vec<FoldResult>,
    pub mean: Summary,
    /// Sample standard deviation (n - 1) over folds.
    pub std: Summary,
    /// Which epoch's weights each fold is scored with.
    pub selection: String,
    pub split: SplitReport,
    pub config: TrainConfig,
}

fn summarise(folds: &[FoldResult]) -> (Summary, Summary) {
    let n = folds.len() as f64;
    let stat = |get: fn(&FoldResult) -> f64| {
        let mean = folds.iter().map(get).sum::<f64>() / n;
        let var = if folds.len() > 1 {
            folds.iter().map(|f| (get(f) - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        (mean, var.sqrt())
    };
    let (a, sa) = stat(|f| f.accuracy);
    let (b, sb) = stat(|f| f.balanced_accuracy);
    let (m, sm) = stat(|f| f.macro_f1);
    let (l, sl) = stat(|f| f.loss);
    (
        Summary { accuracy: a, balanced_accuracy: b, macro_f1: m, loss: l },
        Summary { accuracy: sa, balanced_accuracy: sb, macro_f1: sm, loss: sl },
    )
}

fn fold_result(fold: usize, data: &RunData, r: &fit::RunReport) -> FoldResult {
    let v: &SetMetrics = &r.val;
    FoldResult {
        fold,
        train_images: data.train.len(),
        val_images: data.val.len(),
        epochs_run: r.epochs_run,
        best_epoch: r.best_epoch,
        accuracy: v.accuracy,
        balanced_accuracy: v.balanced_accuracy,
        macro_f1: v.macro_f1,
        loss: v.loss,
        per_class_recall: v.per_class_recall.clone(),
    }
}

/// Trains one model per fold under `out/fold-XX/` and summarises them in `out/cv.json`.
/// With `opts.resume`, finished folds are kept and an interrupted one continues.
pub fn run(
    cfg: &TrainConfig,
    loader: &Loader,
    folds: &[Fold],
    classes: usize,
    split: SplitReport,
    out: &Path,
    opts: &RunOptions,
) -> Result<CvReport, TrainError> {
    let mut results = Vec::new();
    for (k, fold) in folds.iter().enumerate() {
        let dir = out.join(format!("fold-{:02}", k + 1));
        eprintln!(
            "== fold {}/{}: {} train, {} val images",
            k + 1,
            folds.len(),
            fold.train.len(),
            fold.val.len()
        );
        let data = RunData {
            loader: loader.clone(),
            train: fold.train.clone(),
            val: fold.val.clone(),
            test: None,
            classes,
        };
        // A finished fold leaves fold.json; with --resume it is kept, not retrained.
        let done = dir.join("fold.json");
        if opts.resume
            && let Some(r) =
                std::fs::read_to_string(&done).ok().and_then(|t| serde_json::from_str::<FoldResult>(&t).ok())
        {
            eprintln!("   already finished (accuracy {:.1}%); kept", 100.0 * r.accuracy);
            results.push(r);
            continue;
        }
        let resume_fold = opts.resume && dir.join("last").exists();
        let report = fit::run(cfg, &data, &dir, &RunOptions { resume: resume_fold, ..opts.clone() })?;
        let r = fold_result(k + 1, &data, &report);
        let json = serde_json::to_vec_pretty(&r).map_err(|e| TrainError::Io(e.to_string()))?;
        crate::fsutil::write_atomic(&done, &json)
            .map_err(|e| TrainError::Io(format!("{}: {e}", done.display())))?;
        eprintln!(
            "   fold {}: accuracy {:.1}%, balanced {:.1}%, macro-F1 {:.3}",
            k + 1,
            100.0 * r.accuracy,
            100.0 * r.balanced_accuracy,
            r.macro_f1
        );
        results.push(r);
    }
    let (mean, std) = summarise(&results);
    let selection = if cfg.restore_best || cfg.early_stopping.is_some() {
        format!(
            "best epoch by {} on the validation fold (optimistic: the fold also picks the epoch)",
            cfg.monitor.name()
        )
    } else {
        "last epoch (no selection on the validation fold)".to_string()
    };
    let report = CvReport { folds: results, mean, std, selection, split, config: cfg.clone() };
    let json = serde_json::to_vec_pretty(&report).map_err(|e| TrainError::Io(e.to_string()))?;
    crate::fsutil::write_atomic(&out.join("cv.json"), &json)
        .map_err(|e| TrainError::Io(format!("cv.json: {e}")))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        let f = |a: f64| FoldResult {
            fold: 1,
            train_images: 1,
            val_images: 1,
            epochs_run: 1,
            best_epoch: None,
            accuracy: a,
            balanced_accuracy: a,
            macro_f1: a,
            loss: a,
            per_class_recall: vec![],
        };
        let (m, s) = summarise(&[f(0.5), f(0.7), f(0.9)]);
        assert!((m.accuracy - 0.7).abs() < 1e-12);
        assert!((s.accuracy - 0.2).abs() < 1e-12);
    }
}
