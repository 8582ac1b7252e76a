//! The summary behind `fer-train data inspect`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::split::{class_map, reported_classes};
use super::{ALL_CLASSES, CONTEMPT, Dataset, Format, Skipped};

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SubjectStats {
    pub min: usize,
    pub median: usize,
    pub max: usize,
}

/// What `data inspect` prints. The keys `images`, `classes`, `subjects` and `skipped` are
/// the contract in DESIGN.md.
#[derive(Clone, Debug, Serialize)]
pub struct InspectReport {
    pub path: String,
    pub format: Format,
    /// Readable images of a known class (contempt included, see `left_out`).
    pub images: usize,
    /// Class name -> images, in label order; `contempt` appears when present.
    pub classes: serde_json::Map<String, serde_json::Value>,
    /// Distinct subjects, or null when no image has a subject id.
    pub subjects: Option<usize>,
    /// Unreadable images, bad rows, unknown class folders, empty class folders.
    pub skipped: Vec<Skipped>,
    /// Classes outside the seven FER emotions: counted above, left out of training unless
    /// `--keep-contempt`.
    pub left_out: serde_json::Map<String, serde_json::Value>,
    pub images_per_subject: Option<SubjectStats>,
    pub images_without_subject: usize,
    /// FER2013 Usage (or split folder) -> images.
    pub usage: Option<BTreeMap<&'static str, usize>>,
    /// Stored image size `"WxH"` -> images.
    pub sizes: BTreeMap<String, usize>,
    /// `gray` / `rgb` -> images.
    pub colors: BTreeMap<String, usize>,
    /// Non-image files ignored, by extension.
    pub ignored_files: BTreeMap<String, usize>,
    /// Largest class over smallest non-empty class, among the seven emotions.
    pub imbalance_ratio: Option<f64>,
    pub subject_regex: String,
    pub notes: Vec<String>,
    pub seconds: f64,
}

pub fn inspect(ds: &Dataset, subject_regex: &str, seconds: f64) -> InspectReport {
    let all = 0..ds.samples.len();
    let counts = ds.class_counts(all.clone());
    let n_classes = reported_classes(ds);
    let mut per_subject: BTreeMap<u32, usize> = BTreeMap::new();
    for s in &ds.samples {
        if let Some(id) = s.subject {
            *per_subject.entry(id).or_default() += 1;
        }
    }
    let images_without_subject = ds.samples.iter().filter(|s| s.subject.is_none()).count();
    let images_per_subject = (!per_subject.is_empty()).then(|| {
        let mut v: Vec<usize> = per_subject.values().copied().collect();
        v.sort_unstable();
        SubjectStats { min: v[0], median: v[v.len() / 2], max: v[v.len() - 1] }
    });
    let usage_present: BTreeSet<_> = ds.samples.iter().filter_map(|s| s.usage).collect();
    let usage = (!usage_present.is_empty()).then(|| {
        let mut m = BTreeMap::new();
        for s in &ds.samples {
            *m.entry(s.usage.map_or("(none)", |u| u.name())).or_default() += 1;
        }
        m
    });
    let mut left_out = serde_json::Map::new();
    let mut notes = Vec::new();
    if counts[CONTEMPT] > 0 {
        left_out.insert(ALL_CLASSES[CONTEMPT].into(), counts[CONTEMPT].into());
        notes.push(format!(
            "{} contempt image(s): contempt is not one of the 7 FER2013 classes, so training leaves them out \
             unless --keep-contempt makes it an 8th class",
            counts[CONTEMPT]
        ));
    }
    let seven = &counts[..7];
    let max = seven.iter().copied().max().unwrap_or(0);
    let min_nonzero = seven.iter().copied().filter(|&c| c > 0).min();
    let imbalance_ratio = min_nonzero.map(|m| ((max as f64 / m as f64) * 100.0).round() / 100.0);
    for (c, &n) in seven.iter().enumerate() {
        if n == 0 {
            notes.push(format!("class {} has no images", ALL_CLASSES[c]));
        }
    }
    if let Some(r) = imbalance_ratio.filter(|&r| r >= 3.0) {
        notes.push(format!(
            "classes are imbalanced ({r}:1): consider --balance class for training, and read balanced accuracy \
             and macro-F1 beside plain accuracy"
        ));
    }
    if !per_subject.is_empty() && images_without_subject > 0 {
        notes.push(format!(
            "{images_without_subject} image(s) have no subject id: the subject pattern did not match them"
        ));
    }
    let stats = ds.image_stats.clone().unwrap_or_default();
    InspectReport {
        path: ds.root.display().to_string(),
        format: ds.format,
        images: ds.samples.len(),
        classes: class_map(&counts, n_classes),
        subjects: (!per_subject.is_empty()).then_some(per_subject.len()),
        skipped: ds.skipped.clone(),
        left_out,
        images_per_subject,
        images_without_subject,
        usage,
        sizes: stats.sizes,
        colors: stats.colors.into_iter().map(|(c, n)| (format!("{c:?}").to_lowercase(), n)).collect(),
        ignored_files: ds.ignored_files.clone(),
        imbalance_ratio,
        subject_regex: subject_regex.to_string(),
        notes,
        seconds: (seconds * 1000.0).round() / 1000.0,
    }
}

impl InspectReport {
    /// The human-readable form.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} ({:?}): {} images in {:.2}s",
            self.path, self.format, self.images, self.seconds
        );
        let width = self.classes.values().filter_map(|v| v.as_u64()).max().unwrap_or(1).max(1);
        for (name, n) in &self.classes {
            let n = n.as_u64().unwrap_or(0);
            let bar = "#".repeat(((n * 40) / width) as usize);
            let pct = 100.0 * n as f64 / self.images.max(1) as f64;
            let _ = writeln!(out, "  {name:<9} {n:>7}  {pct:>5.1}%  {bar}");
        }
        match (&self.subjects, &self.images_per_subject) {
            (Some(s), Some(st)) => {
                let _ = writeln!(
                    out,
                    "subjects: {s} (images per subject: min {}, median {}, max {})",
                    st.min, st.median, st.max
                );
            }
            _ => {
                let _ = writeln!(out, "subjects: none found (pattern {})", self.subject_regex);
            }
        }
        if let Some(u) = &self.usage {
            let parts: Vec<String> = u.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(out, "usage: {}", parts.join(", "));
        }
        let sizes: Vec<String> = self.sizes.iter().map(|(k, v)| format!("{k} x{v}")).collect();
        let colors: Vec<String> = self.colors.iter().map(|(k, v)| format!("{k} x{v}")).collect();
        let _ = writeln!(out, "stored as: {}; {}", sizes.join(", "), colors.join(", "));
        if !self.ignored_files.is_empty() {
            let parts: Vec<String> = self.ignored_files.iter().map(|(k, v)| format!(".{k} x{v}")).collect();
            let _ = writeln!(out, "ignored non-image files: {}", parts.join(", "));
        }
        if self.skipped.is_empty() {
            let _ = writeln!(out, "skipped: none");
        } else {
            let _ = writeln!(out, "skipped: {}", self.skipped.len());
            for s in self.skipped.iter().take(20) {
                let _ = writeln!(out, "  {}: {}", s.path, s.reason);
            }
            if self.skipped.len() > 20 {
                let _ = writeln!(out, "  ... {} more (use --json for all)", self.skipped.len() - 20);
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }
}
