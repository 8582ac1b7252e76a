//! From a config to the images of a run: load, restrict classes, subsample, split.

use std::sync::Arc;

use super::config::{TrainConfig, ValSplit};
use super::fit::RunData;
use super::loader::Loader;
use crate::data::split::{self, SplitMethod, SplitReport};
use crate::data::subject::SubjectPattern;
use crate::data::{Dataset, ImageSpec, LoadOptions, load};

/// The model input a config asks for.
pub fn input_spec(cfg: &TrainConfig) -> ImageSpec {
    ImageSpec { width: cfg.image_size, height: cfg.image_size, channels: cfg.channels }
}

/// Loads `path` as the config says: contempt kept or left out, a stratified subset of
/// `max_images` when set. Returns the dataset and its number of classes.
pub fn load_dataset(
    path: &std::path::Path,
    cfg: &TrainConfig,
    subsample: bool,
) -> Result<(Dataset, usize), String> {
    let opts = LoadOptions {
        subject_pattern: SubjectPattern::new(&cfg.subject_regex)?,
        verify: true,
        strict: false,
    };
    let mut ds = load(path, &opts).map_err(|e| e.to_string())?;
    if !ds.skipped.is_empty() {
        eprintln!(
            "{}: skipped {} unreadable item(s) (first: {}: {}); `fer-train data inspect` lists them",
            path.display(),
            ds.skipped.len(),
            ds.skipped[0].path,
            ds.skipped[0].reason
        );
    }
    ds.restrict_classes(cfg.keep_contempt);
    if let Some(max) = cfg.max_images.filter(|&m| subsample && m < ds.samples.len()) {
        let keep = split::stratified_subset(&ds, max, cfg.seed);
        ds.samples = keep.iter().map(|&i| ds.samples[i].clone()).collect();
    }
    if ds.samples.is_empty() {
        return Err(format!("{}: no usable images", path.display()));
    }
    Ok((ds, if cfg.keep_contempt { 8 } else { 7 }))
}

/// The split `val_split` asks for, as a method.
pub fn val_method(cfg: &TrainConfig) -> SplitMethod {
    match cfg.val_split {
        ValSplit::Holdout => SplitMethod::Holdout { val_fraction: cfg.val_fraction, by_subject: false },
        ValSplit::Subject => SplitMethod::Holdout { val_fraction: cfg.val_fraction, by_subject: true },
        ValSplit::Keras => SplitMethod::Keras { val_fraction: cfg.val_fraction },
        ValSplit::Usage => SplitMethod::Usage,
    }
}

/// A test set (`test`, or `ship`'s `cross_test`): every image of `path`, its classes
/// restricted as the training data's, behind its own loader.
pub fn test_set(path: &std::path::Path, cfg: &TrainConfig) -> Result<(Loader, Vec<usize>), String> {
    let (ds, _) = load_dataset(path, cfg, false)?;
    let items = (0..ds.samples.len()).collect();
    Ok((Loader::new(Arc::new(ds), input_spec(cfg), cfg.cache_mb * 1024 * 1024 / 4), items))
}

/// Everything `fit` needs, with the report of the split it made.
pub fn prepare(cfg: &TrainConfig) -> Result<(RunData, SplitReport), String> {
    let path =
        cfg.data.as_ref().ok_or("no training data: pass --data PATH (or `data` in the config file)")?;
    let (ds, classes) = load_dataset(path, cfg, true)?;
    let (folds, report) = split::split(&ds, &val_method(cfg), cfg.seed).map_err(|e| e.to_string())?;
    for w in &report.warnings {
        eprintln!("split warning: {w}");
    }
    let spec = input_spec(cfg);
    let cache = cfg.cache_mb * 1024 * 1024;
    let test = match &cfg.test {
        Some(p) => Some(test_set(p, cfg)?),
        None => None,
    };
    let fold = folds.into_iter().next().expect("one fold");
    let data = RunData {
        loader: Loader::new(Arc::new(ds), spec, cache),
        train: fold.train,
        val: fold.val,
        test,
        classes,
    };
    Ok((data, report))
}
