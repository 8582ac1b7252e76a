//! Splits and balancing on in-memory datasets (no files needed: nothing is decoded).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use fer_trainer::data::balance::{self, BalanceBy, BalanceMode, WeightedSampler};
use fer_trainer::data::split::{Fold, SplitError, SplitMethod, shared_subjects, split};
use fer_trainer::data::{Dataset, Format, ImageSource, Sample, Usage};
use rand::SeedableRng;

/// A dataset of `(class, subject, usage)` rows, in that order.
fn dataset(rows: &[(u8, Option<&str>, Option<Usage>)]) -> Dataset {
    let mut subjects: Vec<String> = Vec::new();
    let mut ids = HashMap::new();
    let samples = rows
        .iter()
        .enumerate()
        .map(|(i, &(class, subject, usage))| Sample {
            source: ImageSource::File(PathBuf::from(format!("img{i}.png"))),
            class,
            subject: subject.map(|s| {
                *ids.entry(s.to_string()).or_insert_with(|| {
                    subjects.push(s.to_string());
                    subjects.len() as u32 - 1
                })
            }),
            usage,
        })
        .collect();
    Dataset {
        root: PathBuf::from("mem"),
        format: Format::Manifest,
        samples,
        subjects,
        csv_files: vec![],
        skipped: vec![],
        ignored_files: Default::default(),
        image_stats: None,
    }
}

/// Class-sorted, like a folder tree: `per_class[c]` images of class c, no subjects.
fn sorted_by_class(per_class: &[usize]) -> Dataset {
    let rows: Vec<_> = per_class
        .iter()
        .enumerate()
        .flat_map(|(c, &n)| std::iter::repeat_n((c as u8, None, None), n))
        .collect();
    dataset(&rows)
}

/// `subjects` subjects; subject s shows classes (s % 7) and ((s + 3) % 7) with 1 + s % 4
/// images each: uneven, like CK+.
fn with_subjects(subjects: usize) -> (Vec<String>, Dataset) {
    let names: Vec<String> = (0..subjects).map(|s| format!("S{s:03}")).collect();
    let mut rows = Vec::new();
    for (s, name) in names.iter().enumerate() {
        for c in [s % 7, (s + 3) % 7] {
            for _ in 0..(1 + s % 4) {
                rows.push((c as u8, Some(name.as_str()), None));
            }
        }
    }
    let ds = dataset(&rows);
    (names, ds)
}

fn assert_partition(ds: &Dataset, folds: &[Fold]) {
    let mut seen = vec![0usize; ds.samples.len()];
    for f in folds {
        let mut all: Vec<usize> = f.train.iter().chain(&f.val).chain(&f.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..ds.samples.len()).collect::<Vec<_>>(), "each fold covers every sample once");
        for &i in &f.val {
            seen[i] += 1;
        }
    }
    if folds.len() > 1 {
        assert!(seen.iter().all(|&n| n == 1), "K-fold validates every sample exactly once");
    }
}

#[test]
fn keras_takes_the_last_fraction_unshuffled() {
    let ds = sorted_by_class(&[10, 10, 10, 10, 10, 10, 10]);
    let (folds, report) = split(&ds, &SplitMethod::Keras { val_fraction: 0.2 }, 1).unwrap();
    assert_eq!(folds[0].train, (0..56).collect::<Vec<_>>());
    assert_eq!(folds[0].val, (56..70).collect::<Vec<_>>());
    // Class-sorted input: validation holds only the last classes, and the report says so.
    assert_eq!(report.folds[0].val.classes["neutral"], 10);
    assert_eq!(report.folds[0].val.classes["angry"], 0);
    assert!(report.warnings.iter().any(|w| w.contains("class angry has no validation images")));
    assert!(report.description.contains("NOT shuffled"));
    // Keras: split_at = floor(n * (1 - f)).
    let ds = sorted_by_class(&[7]);
    let (folds, _) = split(&ds, &SplitMethod::Keras { val_fraction: 0.3 }, 1).unwrap();
    assert_eq!(folds[0].train.len(), 4);
}

#[test]
fn holdout_is_stratified_and_seeded() {
    let ds = sorted_by_class(&[100, 10, 50, 200, 80, 40, 120]);
    let m = SplitMethod::Holdout { val_fraction: 0.2, by_subject: false };
    let (a, report) = split(&ds, &m, 7).unwrap();
    assert_partition(&ds, &a);
    let val = ds.class_counts(a[0].val.iter().copied());
    assert_eq!(&val[..7], &[20, 2, 10, 40, 16, 8, 24]);
    assert_eq!(split(&ds, &m, 7).unwrap().0, a, "same seed, same split");
    assert_ne!(split(&ds, &m, 8).unwrap().0, a, "another seed, another split");
    assert!(!report.subject_independent && !report.leakage_checked);
    assert!(report.warnings.iter().any(|w| w.contains("cannot be checked")));
}

#[test]
fn stratified_kfold_validates_every_image_once_with_classes_in_proportion() {
    let ds = sorted_by_class(&[33, 7, 21, 50, 12, 5, 40]);
    let (folds, report) = split(&ds, &SplitMethod::KFold { folds: 5, by_subject: false }, 3).unwrap();
    assert_eq!(folds.len(), 5);
    assert_partition(&ds, &folds);
    let total = ds.class_counts(0..ds.samples.len());
    for f in &folds {
        let val = ds.class_counts(f.val.iter().copied());
        for c in 0..7 {
            let ideal = total[c] as f64 / 5.0;
            assert!((val[c] as f64 - ideal).abs() < 1.0 + 1e-9, "class {c}: {} vs {ideal}", val[c]);
        }
    }
    let sizes: Vec<usize> = folds.iter().map(|f| f.val.len()).collect();
    assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
    assert!(report.warnings.is_empty() || report.warnings.iter().all(|w| !w.contains("fewer than")));
    let (_, r) = split(&ds, &SplitMethod::KFold { folds: 6, by_subject: false }, 3).unwrap();
    assert!(r.warnings.iter().any(|w| w.contains("class surprise has 5 image(s), fewer than the 6 folds")));
}

#[test]
fn group_kfold_keeps_subjects_whole_and_classes_balanced() {
    let (names, ds) = with_subjects(60);
    let (folds, report) = split(&ds, &SplitMethod::KFold { folds: 10, by_subject: true }, 42).unwrap();
    assert_partition(&ds, &folds);
    assert!(report.subject_independent && report.leakage_checked);
    let mut validated = BTreeSet::new();
    for f in &folds {
        assert!(shared_subjects(&ds, f).is_empty());
        for &i in &f.val {
            validated.insert(ds.subject_name(&ds.samples[i]).unwrap().to_string());
        }
    }
    assert_eq!(validated.len(), names.len(), "every subject is validated in some fold");
    // Folds are near equal in size: within 40% of the mean on this uneven data.
    let mean = ds.samples.len() as f64 / 10.0;
    for f in &folds {
        assert!((f.val.len() as f64 - mean).abs() < 0.4 * mean, "{} vs {mean}", f.val.len());
    }
    assert_eq!(split(&ds, &SplitMethod::KFold { folds: 10, by_subject: true }, 42).unwrap().0, folds);
}

#[test]
fn group_holdout_is_subject_independent() {
    let (_, ds) = with_subjects(40);
    let (folds, report) =
        split(&ds, &SplitMethod::Holdout { val_fraction: 0.25, by_subject: true }, 1).unwrap();
    assert_partition(&ds, &folds);
    assert!(shared_subjects(&ds, &folds[0]).is_empty());
    let frac = report.folds[0].val.fraction;
    assert!((0.15..0.35).contains(&frac), "{frac}");
}

#[test]
fn plain_splits_report_leaked_subjects() {
    let (_, ds) = with_subjects(30);
    let (_, report) = split(&ds, &SplitMethod::KFold { folds: 5, by_subject: false }, 1).unwrap();
    assert!(report.folds.iter().any(|f| f.shared_subject_count > 0));
    assert!(report.warnings.iter().any(|w| w.contains("--group-by subject")));
}

#[test]
fn subject_independent_splits_refuse_images_without_subjects() {
    let ds = dataset(&[(0, Some("a"), None), (1, None, None), (2, Some("b"), None), (3, Some("c"), None)]);
    let err = split(&ds, &SplitMethod::KFold { folds: 2, by_subject: true }, 1).unwrap_err();
    assert_eq!(err, SplitError::MissingSubjects { count: 1, example: "img1.png".into() });
    let ds = dataset(&[(0, Some("a"), None), (1, Some("a"), None), (2, Some("b"), None)]);
    let err = split(&ds, &SplitMethod::KFold { folds: 3, by_subject: true }, 1).unwrap_err();
    assert!(err.to_string().contains("3 folds need at least 3 subjects; the dataset has 2"), "{err}");
}

#[test]
fn bad_parameters_are_errors() {
    let ds = sorted_by_class(&[3, 3]);
    for f in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
        assert!(split(&ds, &SplitMethod::Keras { val_fraction: f }, 1).is_err(), "{f}");
    }
    assert!(split(&ds, &SplitMethod::KFold { folds: 1, by_subject: false }, 1).is_err());
    assert!(split(&ds, &SplitMethod::KFold { folds: 7, by_subject: false }, 1).is_err());
    assert!(split(&dataset(&[]), &SplitMethod::Usage, 1).is_err());
}

#[test]
fn usage_split_follows_fer2013_protocol() {
    let ds = dataset(&[
        (0, None, Some(Usage::Training)),
        (1, None, Some(Usage::PublicTest)),
        (2, None, Some(Usage::PrivateTest)),
        (3, None, Some(Usage::Training)),
    ]);
    let (folds, report) = split(&ds, &SplitMethod::Usage, 1).unwrap();
    assert_eq!(folds[0], Fold { train: vec![0, 3], val: vec![1], test: vec![2] });
    assert_eq!(report.folds[0].test.as_ref().unwrap().images, 1);
    let ds = dataset(&[(0, None, Some(Usage::Training)), (1, None, None)]);
    assert!(matches!(split(&ds, &SplitMethod::Usage, 1), Err(SplitError::MissingUsage { count: 1, .. })));
}

fn mass_by<K: std::hash::Hash + Eq>(idx: &[usize], w: &[f64], key: impl Fn(usize) -> K) -> HashMap<K, f64> {
    let mut m = HashMap::new();
    for (&i, &wi) in idx.iter().zip(w) {
        *m.entry(key(i)).or_insert(0.0) += wi;
    }
    m
}

#[test]
fn class_subject_and_combined_weights_even_out_what_they_say() {
    let (_, ds) = with_subjects(28);
    let idx: Vec<usize> = (0..ds.samples.len()).collect();
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * b.max(1.0);

    let w = balance::sample_weights(&ds, &idx, BalanceBy::Class).unwrap();
    assert!(close(w.iter().sum::<f64>() / w.len() as f64, 1.0));
    let by_class = mass_by(&idx, &w, |i| ds.samples[i].class);
    let first = by_class.values().next().copied().unwrap();
    assert!(by_class.values().all(|&m| close(m, first)), "{by_class:?}");

    let w = balance::sample_weights(&ds, &idx, BalanceBy::Subject).unwrap();
    let by_subject = mass_by(&idx, &w, |i| ds.samples[i].subject);
    let first = by_subject.values().next().copied().unwrap();
    assert!(by_subject.values().all(|&m| close(m, first)));

    let w = balance::sample_weights(&ds, &idx, BalanceBy::ClassAndSubject).unwrap();
    let by_class = mass_by(&idx, &w, |i| ds.samples[i].class);
    let first = by_class.values().next().copied().unwrap();
    assert!(by_class.values().all(|&m| close(m, first)));
    // Within one class, every subject carries the same weight.
    let cell = mass_by(&idx, &w, |i| (ds.samples[i].class, ds.samples[i].subject));
    for c in 0..7u8 {
        let masses: Vec<f64> = cell.iter().filter(|((k, _), _)| *k == c).map(|(_, &m)| m).collect();
        assert!(masses.iter().all(|&m| close(m, masses[0])), "class {c}: {masses:?}");
    }
}

#[test]
fn class_weights_and_report() {
    let counts = [100, 10, 0, 50, 40, 0, 0, 0];
    let cw = balance::class_weights(&counts, 7);
    assert_eq!(cw.len(), 7);
    assert!((cw[0] - 200.0 / 400.0).abs() < 1e-6 && (cw[1] - 5.0).abs() < 1e-6);
    assert_eq!(cw[2], 0.0);
    let ds = sorted_by_class(&[90, 10]);
    let idx: Vec<usize> = (0..100).collect();
    let r = balance::report(&ds, &idx, BalanceBy::Class, BalanceMode::Sampler).unwrap();
    assert_eq!(r.effective_share["angry"], 0.5);
    assert_eq!(r.effective_share["disgust"], 0.5);
    assert_eq!(r.max_expected_draws_per_epoch, 5.0);
    let err = balance::report(&ds, &idx, BalanceBy::Subject, BalanceMode::LossWeights).unwrap_err();
    assert!(err.contains("needs a subject"), "{err}");
}

#[test]
fn weighted_sampler_draws_in_proportion() {
    let ds = sorted_by_class(&[900, 100]);
    let idx: Vec<usize> = (0..1000).collect();
    let w = balance::sample_weights(&ds, &idx, BalanceBy::Class).unwrap();
    let sampler = WeightedSampler::new(idx, &w).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let draws = sampler.draw(20_000, &mut rng);
    let minority = draws.iter().filter(|&&i| i >= 900).count() as f64 / 20_000.0;
    assert!((minority - 0.5).abs() < 0.02, "{minority}");
    assert!(WeightedSampler::new(vec![0, 1], &[0.0, 0.0]).is_err());
    assert!(WeightedSampler::new(vec![0], &[f64::NAN]).is_err());
    assert!(WeightedSampler::new(vec![0, 1], &[1.0]).is_err());
}

#[test]
fn stratified_subset_has_exactly_n_images_in_proportion() {
    let ds = sorted_by_class(&[333, 17, 250, 400]);
    let sub = fer_trainer::data::split::stratified_subset(&ds, 100, 3);
    assert_eq!(sub.len(), 100);
    let counts = ds.class_counts(sub.iter().copied());
    assert_eq!(&counts[..4], &[33, 2, 25, 40]);
    assert!(sub.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
    assert_eq!(fer_trainer::data::split::stratified_subset(&ds, 5000, 3).len(), 1000);
}
