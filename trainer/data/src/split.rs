//! Honest splits: train / validation (/ test) index sets, and a report of each.
//!
//! | method | what it does | when |
//! |---|---|---|
//! | Keras `validation_split` | the LAST fraction of samples in the order read, unshuffled, exactly as `model.fit(validation_split=)` | to reproduce a Keras run; on a class-sorted tree it puts whole classes on one side |
//! | holdout | random, stratified by class | large datasets, one subject per image (FER2013) |
//! | K-fold | stratified K-fold | small datasets: every image is validated once; report mean ± std |
//! | `--group-by subject` | the above with whole subjects kept on one side (stratified group K-fold) | several images per person (CK+): anything else leaks identity into validation |
//! | usage | FER2013's `Usage` column or its `train/`/`test/` folders | the benchmark protocol |
//!
//! Every split is checked for subject leakage; for subject-independent methods a subject
//! on two sides is an error, otherwise it is reported as a warning.

use std::collections::BTreeSet;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::{ALL_CLASSES, Dataset, Usage};

/// How to split a dataset.
#[derive(Clone, Debug, PartialEq)]
pub enum SplitMethod {
    /// Keras `validation_split`: the last `val_fraction` of samples, in order, unshuffled.
    Keras { val_fraction: f64 },
    /// Random holdout stratified by class; `by_subject` keeps whole subjects together.
    Holdout { val_fraction: f64, by_subject: bool },
    /// Stratified K-fold; `by_subject` makes it stratified group K-fold.
    KFold { folds: usize, by_subject: bool },
    /// FER2013's Usage: Training -> train, PublicTest -> val, PrivateTest -> test.
    Usage,
}

impl SplitMethod {
    pub fn subject_independent(&self) -> bool {
        matches!(
            self,
            SplitMethod::Holdout { by_subject: true, .. } | SplitMethod::KFold { by_subject: true, .. }
        )
    }

    /// A short name: `keras`, `holdout`, `group-holdout`, `kfold`, `group-kfold`, `usage`.
    pub fn name(&self) -> &'static str {
        match self {
            SplitMethod::Keras { .. } => "keras",
            SplitMethod::Holdout { by_subject: false, .. } => "holdout",
            SplitMethod::Holdout { by_subject: true, .. } => "group-holdout",
            SplitMethod::KFold { by_subject: false, .. } => "kfold",
            SplitMethod::KFold { by_subject: true, .. } => "group-kfold",
            SplitMethod::Usage => "usage",
        }
    }

    /// One sentence saying what the split does, printed with every report.
    pub fn describe(&self) -> String {
        match self {
            SplitMethod::Keras { val_fraction } => format!(
                "Keras validation_split={val_fraction}: the last {:.0}% of samples in the order they were read \
                 (CSV row order; class folders sorted by name), NOT shuffled and NOT stratified, as \
                 model.fit(validation_split=) does; Keras shuffles only the training part, after the split",
                val_fraction * 100.0
            ),
            SplitMethod::Holdout { val_fraction, by_subject: false } => format!(
                "random holdout of {:.0}% per class (stratified); a subject may appear on both sides",
                val_fraction * 100.0
            ),
            SplitMethod::Holdout { val_fraction, by_subject: true } => format!(
                "subject-independent holdout of about {:.0}%: whole subjects go to one side, classes kept in \
                 proportion (one fold of stratified group K-fold with K = round(1/fraction))",
                val_fraction * 100.0
            ),
            SplitMethod::KFold { folds, by_subject: false } => format!(
                "stratified {folds}-fold: every image is validated exactly once, classes in proportion"
            ),
            SplitMethod::KFold { folds, by_subject: true } => format!(
                "subject-independent stratified {folds}-fold (stratified group K-fold): every subject is \
                 validated exactly once and never trained on in the same fold"
            ),
            SplitMethod::Usage => {
                "FER2013 protocol: Training -> train, PublicTest -> val, PrivateTest -> test".to_string()
            }
        }
    }
}

/// One way of dividing the samples: indices into [`Dataset::samples`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fold {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SplitError {
    #[error("{0}")]
    Invalid(String),
    #[error(
        "{count} image(s) have no subject id, so a subject-independent split is impossible (first: {example}); \
         check --subject-regex or add a `subject` column to a manifest"
    )]
    MissingSubjects { count: usize, example: String },
    #[error(
        "{count} image(s) have no Usage (first: {example}); the usage split needs FER2013's Usage column or train/test folders"
    )]
    MissingUsage { count: usize, example: String },
    #[error("fold {fold}: {} subject(s) on both sides of a subject-independent split: {}", subjects.len(), subjects.join(", "))]
    Leakage { fold: usize, subjects: Vec<String> },
}

/// The counts on one side of a fold.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SideReport {
    pub images: usize,
    pub fraction: f64,
    /// Class name -> count, in label order.
    pub classes: serde_json::Map<String, serde_json::Value>,
    /// Distinct subjects, when the dataset names them.
    pub subjects: Option<usize>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FoldReport {
    pub fold: usize,
    pub train: SideReport,
    pub val: SideReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<SideReport>,
    /// Subjects with images on more than one side (first 20 names).
    pub shared_subjects: Vec<String>,
    pub shared_subject_count: usize,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SplitReport {
    pub method: &'static str,
    pub description: String,
    pub seed: u64,
    pub subject_independent: bool,
    /// Whether the subject-leakage check could run (the dataset names subjects).
    pub leakage_checked: bool,
    pub folds: Vec<FoldReport>,
    pub warnings: Vec<String>,
}

/// Splits `ds` with `method`, shuffling with `seed` (ChaCha8: the same split on every
/// machine and version), and checks the result.
pub fn split(ds: &Dataset, method: &SplitMethod, seed: u64) -> Result<(Vec<Fold>, SplitReport), SplitError> {
    let n = ds.samples.len();
    if n == 0 {
        return Err(SplitError::Invalid("the dataset has no images to split".into()));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let folds = match *method {
        SplitMethod::Keras { val_fraction } => {
            check_fraction(val_fraction)?;
            // Keras: split_at = floor(n * (1 - validation_split)).
            let split_at = (n as f64 * (1.0 - val_fraction)).floor() as usize;
            vec![Fold { train: (0..split_at).collect(), val: (split_at..n).collect(), test: vec![] }]
        }
        SplitMethod::Holdout { val_fraction, by_subject: false } => {
            check_fraction(val_fraction)?;
            vec![stratified_holdout(ds, val_fraction, &mut rng)]
        }
        SplitMethod::Holdout { val_fraction, by_subject: true } => {
            check_fraction(val_fraction)?;
            let k = ((1.0 / val_fraction).round() as usize).max(2);
            let assignment = stratified_group_kfold(ds, k, &mut rng)?;
            vec![fold_from_assignment(&assignment, 0)]
        }
        SplitMethod::KFold { folds: k, by_subject } => {
            if k < 2 {
                return Err(SplitError::Invalid(format!("--folds must be at least 2, got {k}")));
            }
            if k > n {
                return Err(SplitError::Invalid(format!("--folds {k} is more than the {n} images")));
            }
            let assignment = if by_subject {
                stratified_group_kfold(ds, k, &mut rng)?
            } else {
                stratified_kfold(ds, k, &mut rng)
            };
            (0..k).map(|f| fold_from_assignment(&assignment, f)).collect()
        }
        SplitMethod::Usage => vec![usage_split(ds)?],
    };
    let report = report(ds, method, seed, &folds)?;
    Ok((folds, report))
}

fn check_fraction(f: f64) -> Result<(), SplitError> {
    if f > 0.0 && f < 1.0 {
        Ok(())
    } else {
        Err(SplitError::Invalid(format!(
            "the validation fraction must be between 0 and 1 (exclusive), got {f}"
        )))
    }
}

fn by_class(ds: &Dataset) -> Vec<Vec<usize>> {
    let mut classes = vec![Vec::new(); ALL_CLASSES.len()];
    for (i, s) in ds.samples.iter().enumerate() {
        classes[s.class as usize].push(i);
    }
    classes
}

fn stratified_holdout(ds: &Dataset, val_fraction: f64, rng: &mut ChaCha8Rng) -> Fold {
    let mut fold = Fold::default();
    for mut members in by_class(ds) {
        members.shuffle(rng);
        let n_val = (members.len() as f64 * val_fraction).round() as usize;
        fold.val.extend_from_slice(&members[..n_val]);
        fold.train.extend_from_slice(&members[n_val..]);
    }
    fold.train.sort_unstable();
    fold.val.sort_unstable();
    fold
}

/// Fold number of every sample: each class shuffled, the classes laid end to end and dealt
/// round-robin, so every fold gets each class in proportion and sizes differ by at most one.
fn stratified_kfold(ds: &Dataset, k: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut assignment = vec![0; ds.samples.len()];
    let mut position = 0;
    for mut members in by_class(ds) {
        members.shuffle(rng);
        for i in members {
            assignment[i] = position % k;
            position += 1;
        }
    }
    assignment
}

/// Fold number of every sample with whole subjects kept together, as scikit-learn's
/// `StratifiedGroupKFold(shuffle=True)`: subjects in random order, then those with the most
/// uneven class mix first, each put in the fold where the per-class fold shares stay most
/// even (ties: the smaller fold).
fn stratified_group_kfold(ds: &Dataset, k: usize, rng: &mut ChaCha8Rng) -> Result<Vec<usize>, SplitError> {
    let missing: Vec<usize> = (0..ds.samples.len()).filter(|&i| ds.samples[i].subject.is_none()).collect();
    if let Some(&first) = missing.first() {
        return Err(SplitError::MissingSubjects {
            count: missing.len(),
            example: ds.sample_path(&ds.samples[first]),
        });
    }
    const C: usize = ALL_CLASSES.len();
    let mut group_counts = vec![[0usize; C]; ds.subjects.len()];
    for s in &ds.samples {
        group_counts[s.subject.unwrap() as usize][s.class as usize] += 1;
    }
    let mut groups: Vec<usize> =
        (0..ds.subjects.len()).filter(|&g| group_counts[g].iter().sum::<usize>() > 0).collect();
    if groups.len() < k {
        return Err(SplitError::Invalid(format!(
            "{k} folds need at least {k} subjects; the dataset has {}",
            groups.len()
        )));
    }
    let class_totals = ds.class_counts(0..ds.samples.len());
    let present: Vec<usize> = (0..C).filter(|&c| class_totals[c] > 0).collect();
    groups.shuffle(rng);
    let spread = |counts: &[usize; C]| {
        let mean = counts.iter().sum::<usize>() as f64 / C as f64;
        counts.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / C as f64
    };
    // Stable sort keeps the shuffled order among equals.
    groups.sort_by(|&a, &b| spread(&group_counts[b]).total_cmp(&spread(&group_counts[a])));

    let mut fold_counts = vec![[0usize; C]; k];
    let mut group_fold = vec![0usize; ds.subjects.len()];
    for &g in &groups {
        let mut best: Option<(f64, usize, usize)> = None; // (evenness, fold size, fold)
        for f in 0..k {
            for c in 0..C {
                fold_counts[f][c] += group_counts[g][c];
            }
            let evenness = present
                .iter()
                .map(|&c| {
                    let shares: Vec<f64> =
                        fold_counts.iter().map(|fc| fc[c] as f64 / class_totals[c] as f64).collect();
                    let mean = shares.iter().sum::<f64>() / k as f64;
                    (shares.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / k as f64).sqrt()
                })
                .sum::<f64>()
                / present.len() as f64;
            for c in 0..C {
                fold_counts[f][c] -= group_counts[g][c];
            }
            let size: usize = fold_counts[f].iter().sum();
            let better = match best {
                None => true,
                Some((e, s, _)) => evenness < e - 1e-12 || ((evenness - e).abs() <= 1e-12 && size < s),
            };
            if better {
                best = Some((evenness, size, f));
            }
        }
        let f = best.expect("k >= 2").2;
        for c in 0..C {
            fold_counts[f][c] += group_counts[g][c];
        }
        group_fold[g] = f;
    }
    Ok(ds.samples.iter().map(|s| group_fold[s.subject.unwrap() as usize]).collect())
}

/// Exactly `n` indices drawn at random with classes in proportion (largest-remainder
/// allocation, so the per-class counts add up to `n`), in dataset order.
pub fn stratified_subset(ds: &Dataset, n: usize, seed: u64) -> Vec<usize> {
    let total = ds.samples.len();
    if n >= total {
        return (0..total).collect();
    }
    let classes = by_class(ds);
    let quota: Vec<f64> = classes.iter().map(|m| m.len() as f64 * n as f64 / total as f64).collect();
    let mut take: Vec<usize> = quota.iter().map(|q| q.floor() as usize).collect();
    let mut order: Vec<usize> = (0..classes.len()).collect();
    order.sort_by(|&a, &b| (quota[b] - quota[b].floor()).total_cmp(&(quota[a] - quota[a].floor())));
    for &c in order.iter().cycle().take(n - take.iter().sum::<usize>()) {
        take[c] += 1;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut picked = Vec::with_capacity(n);
    for (mut members, k) in classes.into_iter().zip(take) {
        members.shuffle(&mut rng);
        picked.extend_from_slice(&members[..k.min(members.len())]);
    }
    picked.sort_unstable();
    picked
}

fn fold_from_assignment(assignment: &[usize], fold: usize) -> Fold {
    let (val, train) = (0..assignment.len()).partition(|&i| assignment[i] == fold);
    Fold { train, val, test: vec![] }
}

fn usage_split(ds: &Dataset) -> Result<Fold, SplitError> {
    let mut fold = Fold::default();
    let mut missing = Vec::new();
    for (i, s) in ds.samples.iter().enumerate() {
        match s.usage {
            Some(Usage::Training) => fold.train.push(i),
            Some(Usage::PublicTest) => fold.val.push(i),
            Some(Usage::PrivateTest) => fold.test.push(i),
            None => missing.push(i),
        }
    }
    if let Some(&first) = missing.first() {
        return Err(SplitError::MissingUsage {
            count: missing.len(),
            example: ds.sample_path(&ds.samples[first]),
        });
    }
    Ok(fold)
}

/// Number of classes to report: 8 when the dataset holds contempt images, else 7.
pub fn reported_classes(ds: &Dataset) -> usize {
    if ds.samples.iter().any(|s| s.class as usize == super::CONTEMPT) { 8 } else { 7 }
}

/// Class name -> count in label order, for the first `n_classes` classes.
pub fn class_map(counts: &[usize; 8], n_classes: usize) -> serde_json::Map<String, serde_json::Value> {
    ALL_CLASSES[..n_classes].iter().zip(counts).map(|(name, &c)| (name.to_string(), c.into())).collect()
}

fn side_report(ds: &Dataset, indices: &[usize], n_classes: usize) -> SideReport {
    let subjects: BTreeSet<u32> = indices.iter().filter_map(|&i| ds.samples[i].subject).collect();
    SideReport {
        images: indices.len(),
        fraction: indices.len() as f64 / ds.samples.len() as f64,
        classes: class_map(&ds.class_counts(indices.iter().copied()), n_classes),
        subjects: (!ds.subjects.is_empty()).then_some(subjects.len()),
    }
}

/// Subjects with images on more than one side of `fold`, sorted by name.
pub fn shared_subjects(ds: &Dataset, fold: &Fold) -> Vec<String> {
    let side = |idx: &[usize]| idx.iter().filter_map(|&i| ds.samples[i].subject).collect::<BTreeSet<u32>>();
    let (tr, va, te) = (side(&fold.train), side(&fold.val), side(&fold.test));
    let shared: BTreeSet<u32> =
        tr.intersection(&va).chain(tr.intersection(&te)).chain(va.intersection(&te)).copied().collect();
    let mut names: Vec<String> = shared.into_iter().map(|s| ds.subjects[s as usize].clone()).collect();
    names.sort();
    names
}

fn report(ds: &Dataset, method: &SplitMethod, seed: u64, folds: &[Fold]) -> Result<SplitReport, SplitError> {
    let n_classes = reported_classes(ds);
    let has_subjects = !ds.subjects.is_empty();
    let mut warnings = Vec::new();
    let mut fold_reports = Vec::new();
    let mut leaky_folds = 0;
    for (f, fold) in folds.iter().enumerate() {
        let shared = shared_subjects(ds, fold);
        if method.subject_independent() && !shared.is_empty() {
            return Err(SplitError::Leakage { fold: f + 1, subjects: shared });
        }
        if !shared.is_empty() {
            leaky_folds += 1;
        }
        let train = side_report(ds, &fold.train, n_classes);
        let val = side_report(ds, &fold.val, n_classes);
        let sides = [("train", &fold.train), ("validation", &fold.val)];
        for (side, idx) in sides {
            let counts = ds.class_counts(idx.iter().copied());
            let total = ds.class_counts(0..ds.samples.len());
            for c in 0..n_classes {
                if counts[c] == 0 && total[c] > 0 {
                    warnings.push(format!(
                        "fold {}: class {} has no {side} images ({} in the dataset)",
                        f + 1,
                        ALL_CLASSES[c],
                        total[c]
                    ));
                }
            }
        }
        fold_reports.push(FoldReport {
            fold: f + 1,
            train,
            val,
            test: (!fold.test.is_empty()).then(|| side_report(ds, &fold.test, n_classes)),
            shared_subject_count: shared.len(),
            shared_subjects: shared.into_iter().take(20).collect(),
        });
    }
    if leaky_folds > 0 {
        warnings.push(format!(
            "{leaky_folds} of {} fold(s) have subjects on both sides: validation scores will be optimistic \
             (the model has seen these faces); split by subject instead (`--group-by subject`; for `fit`, \
             `--val-split subject`)",
            folds.len()
        ));
    }
    if !has_subjects {
        warnings.push(
            "the dataset names no subjects, so subject leakage cannot be checked (FER2013 publishes no \
             subject ids; for your own recordings set --subject-regex or a manifest `subject` column)"
                .into(),
        );
    }
    if let SplitMethod::KFold { folds: k, by_subject: false } = *method {
        let total = ds.class_counts(0..ds.samples.len());
        for c in 0..n_classes {
            if total[c] > 0 && total[c] < k {
                warnings.push(format!(
                    "class {} has {} image(s), fewer than the {k} folds: some folds validate none",
                    ALL_CLASSES[c], total[c]
                ));
            }
        }
    }
    Ok(SplitReport {
        method: method.name(),
        description: method.describe(),
        seed,
        subject_independent: method.subject_independent(),
        leakage_checked: has_subjects,
        folds: fold_reports,
        warnings,
    })
}
