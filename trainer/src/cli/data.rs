//! `fer-train data inspect|split`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use fer_runtime::fsutil::write_atomic;
use fer_trainer::data::balance::{self, BalanceBy, BalanceMode, BalanceReport};
use fer_trainer::data::split::{self, Fold, SplitMethod, SplitReport};
use fer_trainer::data::subject::{DEFAULT_SUBJECT_REGEX, SubjectPattern};
use fer_trainer::data::{ALL_CLASSES, Dataset, ImageSource, LoadOptions, inspect, load};

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Count images per class and subject, and check that every image decodes.
    Inspect {
        #[command(flatten)]
        source: SourceArgs,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Split a dataset into train/validation(/test) manifests, with a report.
    Split(SplitArgs),
}

/// Where the data is and how to read it.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// A class-folder tree, a FER2013 CSV (emotion,pixels[,Usage]) or a manifest CSV
    /// (path,label[,subject]).
    path: PathBuf,
    /// Regex that finds the subject id in each image's path relative to PATH (first capture
    /// group, or the whole match). The default reads CK+ names like S010_004_00000017.png.
    #[arg(long, default_value = DEFAULT_SUBJECT_REGEX)]
    subject_regex: String,
    /// Fail on the first unreadable image, bad row or unknown class instead of skipping it.
    #[arg(long)]
    strict: bool,
}

impl SourceArgs {
    fn load(&self) -> anyhow::Result<Dataset> {
        let opts = LoadOptions {
            subject_pattern: SubjectPattern::new(&self.subject_regex).map_err(anyhow::Error::msg)?,
            verify: true,
            strict: self.strict,
        };
        Ok(load(&self.path, &opts)?)
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Method {
    /// Keras validation_split: the last fraction, in file order, unshuffled.
    Keras,
    /// Random holdout, stratified by class.
    Holdout,
    /// Stratified K-fold (see --folds).
    Kfold,
    /// FER2013's Usage column or train/test folders.
    Usage,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum GroupBy {
    Subject,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Balance {
    Class,
    Subject,
    ClassAndSubject,
}

impl From<Balance> for BalanceBy {
    fn from(b: Balance) -> BalanceBy {
        match b {
            Balance::Class => BalanceBy::Class,
            Balance::Subject => BalanceBy::Subject,
            Balance::ClassAndSubject => BalanceBy::ClassAndSubject,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    Sampler,
    LossWeights,
}

#[derive(Debug, Args)]
pub struct SplitArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Folder for the manifests and split.json (created; existing files are kept unless --force).
    #[arg(long)]
    out: PathBuf,
    /// How to split [default: kfold when --folds is given, else holdout].
    #[arg(long, value_enum)]
    method: Option<Method>,
    /// Fraction of images for validation (keras, holdout).
    #[arg(long, default_value_t = 0.2)]
    val_fraction: f64,
    /// Number of folds for kfold.
    #[arg(long)]
    folds: Option<usize>,
    /// Keep every subject's images on one side (subject-independent evaluation).
    #[arg(long, value_enum)]
    group_by: Option<GroupBy>,
    /// Seed for the shuffles (same seed, same split, on every machine).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Keep CK+ contempt as an 8th class instead of leaving it out.
    #[arg(long)]
    keep_contempt: bool,
    /// Report class/subject balancing of the training side and write a `weight` column.
    #[arg(long, value_enum)]
    balance: Option<Balance>,
    /// How the balancing weights act in training.
    #[arg(long, value_enum, default_value = "sampler")]
    balance_mode: Mode,
    /// Replace manifests already in --out.
    #[arg(long)]
    force: bool,
    /// Print split.json instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: DataCommand) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Inspect { source, json } => {
            let start = Instant::now();
            let ds = source.load()?;
            let report = inspect::inspect(&ds, &source.subject_regex, start.elapsed().as_secs_f64());
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_text());
            }
            Ok(())
        }
        DataCommand::Split(args) => run_split(args),
    }
}

/// split.json: the split report, plus what was balanced and written.
#[derive(Serialize)]
struct SplitOutput {
    dataset: String,
    images: usize,
    left_out: serde_json::Map<String, serde_json::Value>,
    skipped: usize,
    #[serde(flatten)]
    split: SplitReport,
    /// One per fold, for the training side.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    balance: Vec<BalanceReport>,
    files: Vec<String>,
}

fn run_split(args: SplitArgs) -> anyhow::Result<()> {
    let by_subject = args.group_by.is_some();
    let method = match (args.method, args.folds) {
        (Some(Method::Kfold) | None, Some(folds)) => SplitMethod::KFold { folds, by_subject },
        (Some(Method::Kfold), None) => bail!("--method kfold needs --folds K"),
        (Some(Method::Keras), _) if by_subject => {
            bail!(
                "--group-by subject does not apply to --method keras (Keras never groups); use holdout or kfold"
            )
        }
        (Some(Method::Usage), _) if by_subject => {
            bail!("--group-by subject does not apply to --method usage")
        }
        (Some(m), Some(_)) => bail!("--folds applies to --method kfold only, not {m:?}"),
        (Some(Method::Keras), None) => SplitMethod::Keras { val_fraction: args.val_fraction },
        (Some(Method::Holdout) | None, None) => {
            SplitMethod::Holdout { val_fraction: args.val_fraction, by_subject }
        }
        (Some(Method::Usage), None) => SplitMethod::Usage,
    };
    let mut ds = args.source.load()?;
    let left_out = ds.restrict_classes(args.keep_contempt);
    let (folds, report) = split::split(&ds, &method, args.seed)?;

    let balance = match args.balance {
        None => Vec::new(),
        Some(b) => {
            let by = BalanceBy::from(b);
            let mode = match args.balance_mode {
                Mode::Sampler => BalanceMode::Sampler,
                Mode::LossWeights => BalanceMode::LossWeights,
            };
            folds
                .iter()
                .map(|f| balance::report(&ds, &f.train, by, mode).map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<_>>()?
        }
    };
    let files = write_manifests(&ds, &folds, &args)?;
    let mut left = serde_json::Map::new();
    if left_out > 0 {
        left.insert(ALL_CLASSES[fer_trainer::data::CONTEMPT].into(), left_out.into());
    }
    let output = SplitOutput {
        dataset: args.source.path.display().to_string(),
        images: ds.samples.len(),
        left_out: left,
        skipped: ds.skipped.len(),
        split: report,
        balance,
        files,
    };
    let json = serde_json::to_string_pretty(&output)?;
    let split_json = args.out.join("split.json");
    write_atomic(&split_json, json.as_bytes())
        .with_context(|| format!("writing {}", split_json.display()))?;
    if args.json {
        println!("{json}");
    } else {
        print!("{}", split_text(&output, &ds));
        println!(
            "wrote {} and {} manifest(s) under {}",
            split_json.display(),
            output.files.len(),
            args.out.display()
        );
    }
    Ok(())
}

fn manifest_path(ds: &Dataset, source: &ImageSource) -> String {
    match source {
        ImageSource::File(p) => absolute(p).display().to_string(),
        ImageSource::CsvRow { csv, line, .. } => {
            format!("{}#L{line}", absolute(&ds.csv_files[*csv as usize].path).display())
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).or_else(|_| std::path::absolute(p)).unwrap_or_else(|_| p.to_path_buf())
}

/// Writes one manifest per side (and fold); refuses to replace files unless --force.
fn write_manifests(ds: &Dataset, folds: &[Fold], args: &SplitArgs) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut planned: Vec<(PathBuf, &[usize], bool)> = Vec::new();
    for (f, fold) in folds.iter().enumerate() {
        let dir =
            if folds.len() == 1 { args.out.clone() } else { args.out.join(format!("fold-{:02}", f + 1)) };
        planned.push((dir.join("train.csv"), &fold.train, true));
        planned.push((dir.join("val.csv"), &fold.val, false));
        if !fold.test.is_empty() {
            planned.push((dir.join("test.csv"), &fold.test, false));
        }
    }
    if !args.force {
        let split_json = args.out.join("split.json");
        let existing: Vec<&Path> = planned
            .iter()
            .map(|(p, ..)| p.as_path())
            .chain(std::iter::once(split_json.as_path()))
            .filter(|p| p.exists())
            .collect();
        if let Some(first) = existing.first() {
            bail!(
                "{} already exists ({} file(s) of a split are there); pass --force to replace them",
                first.display(),
                existing.len()
            );
        }
    }
    let balance_by = args.balance.map(BalanceBy::from);
    let has_subjects = !ds.subjects.is_empty();
    let has_usage = ds.samples.iter().any(|s| s.usage.is_some());
    let mut files = Vec::new();
    for (path, indices, is_train) in planned {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let weights = match (balance_by, is_train) {
            (Some(by), true) => Some(balance::sample_weights(ds, indices, by).map_err(anyhow::Error::msg)?),
            _ => None,
        };
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header = vec!["path", "label"];
        if has_subjects {
            header.push("subject");
        }
        if has_usage {
            header.push("usage");
        }
        if weights.is_some() {
            header.push("weight");
        }
        w.write_record(&header)?;
        for (k, &i) in indices.iter().enumerate() {
            let s = &ds.samples[i];
            let mut row = vec![manifest_path(ds, &s.source), ALL_CLASSES[s.class as usize].to_string()];
            if has_subjects {
                row.push(ds.subject_name(s).unwrap_or("").to_string());
            }
            if has_usage {
                row.push(s.usage.map_or("", |u| u.name()).to_string());
            }
            if let Some(ws) = &weights {
                row.push(format!("{:.6}", ws[k]));
            }
            w.write_record(&row)?;
        }
        let bytes = w.into_inner().context("flushing manifest")?;
        write_atomic(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        files.push(path.display().to_string());
    }
    Ok(files)
}

fn split_text(out: &SplitOutput, ds: &Dataset) -> String {
    use std::fmt::Write;
    let r = &out.split;
    let mut s = String::new();
    let _ = writeln!(s, "{}: {} images; split {} (seed {})", out.dataset, out.images, r.method, r.seed);
    let _ = writeln!(s, "  {}", r.description);
    let names: Vec<&String> = r.folds.first().map(|f| f.train.classes.keys().collect()).unwrap_or_default();
    let mut header = format!("{:>4}  {:<5} {:>7} {:>8}", "fold", "side", "images", "subjects");
    for n in &names {
        let _ = write!(header, " {:>8}", &n[..n.len().min(8)]);
    }
    let _ = writeln!(s, "{header}");
    for f in &r.folds {
        let sides = [("train", Some(&f.train)), ("val", Some(&f.val)), ("test", f.test.as_ref())];
        for (name, side) in sides {
            let Some(side) = side else { continue };
            let subjects = side.subjects.map_or("-".to_string(), |n| n.to_string());
            let mut line = format!("{:>4}  {:<5} {:>7} {:>8}", f.fold, name, side.images, subjects);
            for v in side.classes.values() {
                let _ = write!(line, " {:>8}", v.as_u64().unwrap_or(0));
            }
            let _ = writeln!(s, "{line}");
        }
    }
    if r.leakage_checked {
        let leaky: usize = r.folds.iter().map(|f| f.shared_subject_count).sum();
        let subjects: std::collections::BTreeSet<u32> = ds.samples.iter().filter_map(|x| x.subject).collect();
        if leaky == 0 {
            let _ = writeln!(
                s,
                "leakage check: no subject on two sides of any fold ({} subjects)",
                subjects.len()
            );
        } else {
            let _ = writeln!(s, "leakage check: {leaky} subject/fold pair(s) on both sides (see warnings)");
        }
    }
    // Folds balance alike; the first stands for all (every fold is in split.json).
    if let Some(b) = out.balance.first() {
        let share: Vec<String> = b.effective_share.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(
            s,
            "balance {:?}/{:?}{}: effective class share {}; weights {}..{}; the most up-weighted image is drawn ~{}x per epoch",
            b.by,
            b.mode,
            if out.balance.len() > 1 { " (fold 1)" } else { "" },
            share.join(", "),
            b.weight_min,
            b.weight_max,
            b.max_expected_draws_per_epoch
        );
    }
    if !out.left_out.is_empty() {
        let parts: Vec<String> = out.left_out.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let _ = writeln!(
            s,
            "left out: {} (outside the 7 FER classes; --keep-contempt keeps them)",
            parts.join(", ")
        );
    }
    if out.skipped > 0 {
        let _ = writeln!(s, "skipped while reading: {} (see `fer-train data inspect`)", out.skipped);
    }
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}
