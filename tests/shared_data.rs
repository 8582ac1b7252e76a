//! End-to-end checks of the dataset layer on the project's real data (../shared/data).
//!
//! Each test says SKIPPED on stderr and returns when the folder is absent; CI sets
//! FER_REQUIRE_SHARED=1 so that there an absent folder fails instead.

use std::time::Instant;

use fer_edge::fer_trainer::data::split::{SplitMethod, shared_subjects, split};
use fer_edge::fer_trainer::data::{LoadOptions, Usage, inspect, load};

#[test]
fn ckplus_has_981_images_118_subjects_and_splits_without_leakage() {
    let Some(data) = fer_edge::shared_data() else { return };
    let root = data.join("ckplus48");
    let mut ds = load(&root, &LoadOptions::default()).unwrap();
    let report = inspect::inspect(&ds, "default", 0.0);
    assert_eq!(report.images, 981);
    assert_eq!(report.subjects, Some(118));
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    let sum: u64 = report.classes.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(sum, 981);
    assert!(report.left_out.contains_key("contempt"));

    for keep_contempt in [true, false] {
        let mut ds = ds.clone();
        ds.restrict_classes(keep_contempt);
        let (folds, report) = split(&ds, &SplitMethod::KFold { folds: 10, by_subject: true }, 42).unwrap();
        assert_eq!(folds.len(), 10);
        for f in &folds {
            assert!(shared_subjects(&ds, f).is_empty());
        }
        let validated: usize = report.folds.iter().map(|f| f.val.subjects.unwrap()).sum();
        let present: std::collections::BTreeSet<u32> = ds.samples.iter().filter_map(|s| s.subject).collect();
        assert_eq!(validated, present.len(), "each subject validated exactly once");
    }
    // A plain K-fold on CK+ leaks subjects: the reason subject-grouped folds exist.
    ds.restrict_classes(false);
    let (_, plain) = split(&ds, &SplitMethod::KFold { folds: 10, by_subject: false }, 42).unwrap();
    assert!(plain.folds.iter().all(|f| f.shared_subject_count > 0));
}

#[test]
fn fer2013_train_and_public_test_counts() {
    let Some(data) = fer_edge::shared_data() else { return };
    let start = Instant::now();
    let ds = load(&data.join("fer2013/train"), &LoadOptions::default()).unwrap();
    let secs = start.elapsed().as_secs_f64();
    // A figure for the record, not an assertion: these machines are shared and noisy.
    eprintln!("fer2013/train: {} images read and decoded in {secs:.2}s", ds.samples.len());
    assert_eq!(ds.samples.len(), 28_709);
    assert!(ds.skipped.is_empty());

    let ds = load(&data.join("fer2013"), &LoadOptions::default()).unwrap();
    let (folds, _) = split(&ds, &SplitMethod::Usage, 0).unwrap();
    assert_eq!(folds[0].train.len(), 28_709);
    assert_eq!(folds[0].val.len(), 3_589);
    assert!(ds.samples[folds[0].val[0]].usage == Some(Usage::PublicTest));
}
