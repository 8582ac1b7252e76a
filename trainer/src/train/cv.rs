//! `fer-train cv`: one training per fold, mean ± std of the validation metrics.
//!
//! Each fold's figure is its last epoch's unless early stopping or best-weight restoring
//! is on: picking the best epoch on the fold that is being scored makes the score
//! optimistic, and the report says which was used.
//!
//! Where the dataset names subjects (CK+), every validation image is also counted for its
//! subject, and the report gives each subject's accuracy and their spread: K-fold scores
//! every image exactly once, so each subject's figure covers all of its images.

use std::collections::BTreeMap;
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
    /// Validation images and correct predictions per subject (empty without subjects).
    #[serde(default)]
    pub subjects: Vec<SubjectCount>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SubjectCount {
    pub subject: String,
    pub images: usize,
    pub correct: usize,
}

/// One subject's accuracy over all folds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SubjectAccuracy {
    pub subject: String,
    pub images: usize,
    pub accuracy: f64,
}

/// How accuracy varies from subject to subject: each subject counts once, whatever its
/// number of images.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SubjectSpread {
    pub subjects: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1) over subjects.
    pub std: f64,
    pub min: f64,
    pub median: f64,
    pub max: f64,
    /// Every subject, worst first.
    pub per_subject: Vec<SubjectAccuracy>,
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
    /// Accuracy per subject and its spread, where the dataset names subjects.
    pub subjects: Option<SubjectSpread>,
    pub split: SplitReport,
    pub config: TrainConfig,
}

/// Mean and sample standard deviation (n - 1; 0 for a single value) of `values`.
fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

fn summarise(folds: &[FoldResult]) -> (Summary, Summary) {
    let stat = |get: fn(&FoldResult) -> f64| mean_std(&folds.iter().map(get).collect::<Vec<_>>());
    let (a, sa) = stat(|f| f.accuracy);
    let (b, sb) = stat(|f| f.balanced_accuracy);
    let (m, sm) = stat(|f| f.macro_f1);
    let (l, sl) = stat(|f| f.loss);
    (
        Summary { accuracy: a, balanced_accuracy: b, macro_f1: m, loss: l },
        Summary { accuracy: sa, balanced_accuracy: sb, macro_f1: sm, loss: sl },
    )
}

/// Sums each subject's validation images and correct predictions over folds, and the
/// spread of their accuracies; `None` when no fold counted a subject.
pub fn subject_spread(folds: &[FoldResult]) -> Option<SubjectSpread> {
    let mut totals: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for c in folds.iter().flat_map(|f| &f.subjects) {
        let t = totals.entry(&c.subject).or_default();
        t.0 += c.images;
        t.1 += c.correct;
    }
    let mut per_subject: Vec<SubjectAccuracy> = totals
        .into_iter()
        .filter(|(_, (images, _))| *images > 0)
        .map(|(s, (images, correct))| SubjectAccuracy {
            subject: s.to_string(),
            images,
            accuracy: correct as f64 / images as f64,
        })
        .collect();
    if per_subject.is_empty() {
        return None;
    }
    per_subject.sort_by(|a, b| a.accuracy.total_cmp(&b.accuracy).then_with(|| a.subject.cmp(&b.subject)));
    let acc: Vec<f64> = per_subject.iter().map(|s| s.accuracy).collect();
    let (mean, std) = mean_std(&acc);
    let mid = acc.len() / 2;
    let median = if acc.len() % 2 == 1 { acc[mid] } else { (acc[mid - 1] + acc[mid]) / 2.0 };
    Some(SubjectSpread {
        subjects: acc.len(),
        mean,
        std,
        min: acc[0],
        median,
        max: acc[acc.len() - 1],
        per_subject,
    })
}

/// Counts one fold's validation images and correct predictions per subject.
fn subject_counts(data: &RunData, predictions: &[u8]) -> Vec<SubjectCount> {
    let ds = &data.loader.ds;
    let mut counts: BTreeMap<u32, (usize, usize)> = BTreeMap::new();
    for (&i, &p) in data.val.iter().zip(predictions) {
        let sample = &ds.samples[i];
        if let Some(s) = sample.subject {
            let c = counts.entry(s).or_default();
            c.0 += 1;
            c.1 += usize::from(p == sample.class);
        }
    }
    counts
        .into_iter()
        .map(|(s, (images, correct))| SubjectCount {
            subject: ds.subjects[s as usize].clone(),
            images,
            correct,
        })
        .collect()
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
        subjects: subject_counts(data, &r.val_predictions),
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
        fer_runtime::fsutil::write_atomic(&done, &json)
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
    let subjects = subject_spread(&results);
    let report = CvReport { folds: results, mean, std, selection, subjects, split, config: cfg.clone() };
    let json = serde_json::to_vec_pretty(&report).map_err(|e| TrainError::Io(e.to_string()))?;
    fer_runtime::fsutil::write_atomic(&out.join("cv.json"), &json)
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
            subjects: vec![],
        };
        let (m, s) = summarise(&[f(0.5), f(0.7), f(0.9)]);
        assert!((m.accuracy - 0.7).abs() < 1e-12);
        assert!((s.accuracy - 0.2).abs() < 1e-12);
    }

    fn fold_with(subjects: &[(&str, usize, usize)]) -> FoldResult {
        FoldResult {
            fold: 1,
            train_images: 1,
            val_images: 1,
            epochs_run: 1,
            best_epoch: None,
            accuracy: 0.0,
            balanced_accuracy: 0.0,
            macro_f1: 0.0,
            loss: 0.0,
            per_class_recall: vec![],
            subjects: subjects
                .iter()
                .map(|&(s, images, correct)| SubjectCount { subject: s.into(), images, correct })
                .collect(),
        }
    }

    #[test]
    fn subjects_are_summed_over_folds_and_count_once_each() {
        // S1 is split over two folds (a leaky K-fold): 3 of 4 right in all. S2 has many
        // images, S3 few: each weighs the same in the spread.
        let folds = [fold_with(&[("S1", 2, 2), ("S2", 10, 5)]), fold_with(&[("S1", 2, 1), ("S3", 1, 0)])];
        let s = subject_spread(&folds).unwrap();
        assert_eq!(s.subjects, 3);
        let names: Vec<&str> = s.per_subject.iter().map(|a| a.subject.as_str()).collect();
        assert_eq!(names, ["S3", "S2", "S1"]);
        assert_eq!(s.per_subject[2], SubjectAccuracy { subject: "S1".into(), images: 4, accuracy: 0.75 });
        assert_eq!((s.min, s.median, s.max), (0.0, 0.5, 0.75));
        assert!((s.mean - 1.25 / 3.0).abs() < 1e-12);
        let var = [0.0f64, 0.5, 0.75].iter().map(|a| (a - 1.25 / 3.0).powi(2)).sum::<f64>() / 2.0;
        assert!((s.std - var.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn no_subjects_no_spread() {
        assert_eq!(subject_spread(&[fold_with(&[])]), None);
    }
}
