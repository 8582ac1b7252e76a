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

#[test]
fn two_epochs_on_a_2000_image_fer2013_subset_write_every_artifact() {
    use fer_edge::fer_trainer::model::ModelKind;
    use fer_edge::fer_trainer::train::augment::Augment;
    use fer_edge::fer_trainer::train::config::TrainConfig;
    use fer_edge::fer_trainer::train::fit::{RunOptions, run};
    use fer_edge::fer_trainer::train::prepare::prepare;

    let Some(data) = fer_edge::shared_data() else { return };
    let cfg = TrainConfig {
        data: Some(data.join("fer2013/train")),
        test: Some(data.join("fer2013/public_test")),
        model: ModelKind::Baseline,
        epochs: 2,
        max_images: Some(2_000),
        augment: Augment::standard(),
        ..TrainConfig::default()
    };
    let (run_data, split) = prepare(&cfg).unwrap();
    assert_eq!(run_data.train.len() + run_data.val.len(), 2_000);
    assert!(split.description.contains("stratified"));
    let out = tempfile::tempdir().unwrap();
    let report = run(&cfg, &run_data, out.path(), &RunOptions::default()).unwrap();
    assert_eq!(report.epochs_run, 2);
    assert_eq!(report.test_images, Some(3_589));
    for f in
        ["metrics.csv", "curves.png", "confusion.png", "report.json", "best/model.bpk", "last/state.json"]
    {
        assert!(out.path().join(f).is_file(), "{f}");
    }
    // Seven classes, each scored; accuracy above chance (14%) after two epochs on 1,800 images
    // would be luck, so only sanity is asserted.
    let test = report.test.unwrap();
    assert_eq!(test.per_class_recall.len(), 7);
    assert!((0.0..=1.0).contains(&test.accuracy) && test.loss.is_finite());
    eprintln!(
        "2,000-image subset, 2 epochs: test accuracy {:.1}%, balanced {:.1}%",
        100.0 * test.accuracy,
        100.0 * test.balanced_accuracy
    );
}
