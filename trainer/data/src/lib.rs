//! The dataset layer (crate `fer-data`, re-exported by the trainer as `fer_trainer::data`):
//! read FER datasets, check every image, split honestly, balance.
//!
//! A [`Dataset`] is an index, not a copy of the pixels: each [`Sample`] names where its
//! image lives (a file, or a row of a FER2013 CSV) with its class and subject. Pixels are
//! decoded on demand ([`Dataset::load_pixels`]), so a 450k-image tree costs a few tens of
//! megabytes of index, and the trainer can stream it.
//!
//! Stages, one module each:
//! - [`source`] detects the format of a path and dispatches to a reader:
//!   [`fer_csv`] (FER2013 `emotion,pixels,Usage`), [`folder`] (class-folder trees, also
//!   with `train/`/`test/` split folders), [`manifest`] (`path,label[,subject]`);
//! - [`subject`] pulls subject ids out of file names (CK+ `S010_004_00000017.png`);
//! - [`decode`] turns image bytes into model input; [`verify`] decodes every sample once
//!   and moves the bad ones to `skipped`;
//! - [`split`] makes train/validation(/test) index sets and their reports;
//! - [`balance`] computes class and subject weights and a weighted sampler;
//! - [`inspect`] summarises a dataset for `fer-train data inspect`.

pub mod balance;
pub mod decode;
pub mod error;
pub mod fer_csv;
pub mod folder;
pub mod inspect;
pub mod manifest;
pub mod source;
pub mod split;
pub mod subject;
pub mod verify;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use decode::ImageSpec;
pub use error::DataError;
pub use fer_core::labels::{ALL_CLASSES, CONTEMPT, EMOTIONS};
pub use source::{LoadOptions, load};

/// Where one image's bytes live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// An image file (jpg, png or bmp).
    File(PathBuf),
    /// One row of a FER2013-style CSV: `csv` indexes [`Dataset::csv_files`]; `offset` and
    /// `len` delimit the row's bytes, `line` is its 1-based line number for messages.
    CsvRow { csv: u32, line: u64, offset: u64, len: u32 },
}

/// FER2013's `Usage` column, or the split folder (`train/`, `test/`) an image came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Usage {
    Training,
    PublicTest,
    PrivateTest,
}

impl Usage {
    /// Parses a `Usage` value or a split-folder name.
    pub fn parse(s: &str) -> Option<Usage> {
        match s.trim().to_ascii_lowercase().replace(['-', ' '], "_").as_str() {
            "training" | "train" => Some(Usage::Training),
            "publictest" | "public_test" | "test" | "val" | "valid" | "validation" => Some(Usage::PublicTest),
            "privatetest" | "private_test" => Some(Usage::PrivateTest),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Usage::Training => "Training",
            Usage::PublicTest => "PublicTest",
            Usage::PrivateTest => "PrivateTest",
        }
    }
}

/// One labelled image.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub source: ImageSource,
    /// Class index in [`ALL_CLASSES`] order (7 = contempt).
    pub class: u8,
    /// Index into [`Dataset::subjects`], when the dataset names subjects.
    pub subject: Option<u32>,
    pub usage: Option<Usage>,
}

/// Something left out of a dataset, with where it is and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// A file path, or `file.csv:LINE` for a CSV row.
    pub path: String,
    pub reason: String,
}

/// The formats a path can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Fer2013Csv,
    ClassFolders,
    SplitFolders,
    Manifest,
}

/// An index of labelled images with what was skipped while reading it.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub root: PathBuf,
    pub format: Format,
    pub samples: Vec<Sample>,
    /// Subject names (`S010`), indexed by [`Sample::subject`].
    pub subjects: Vec<String>,
    /// CSV files that [`ImageSource::CsvRow`] samples point into.
    pub csv_files: Vec<fer_csv::CsvFile>,
    pub skipped: Vec<Skipped>,
    /// Files ignored because their extension is not an image's, by extension.
    pub ignored_files: std::collections::BTreeMap<String, usize>,
    /// Sizes and colours of the stored images, once [`verify::verify`] has run.
    pub image_stats: Option<verify::ImageStats>,
}

impl Dataset {
    pub(crate) fn new(root: &Path, format: Format) -> Dataset {
        Dataset {
            root: root.to_path_buf(),
            format,
            samples: Vec::new(),
            subjects: Vec::new(),
            csv_files: Vec::new(),
            skipped: Vec::new(),
            ignored_files: Default::default(),
            image_stats: None,
        }
    }

    /// The name under which a sample is reported: its path, or `file.csv:LINE`.
    pub fn sample_path(&self, s: &Sample) -> String {
        match &s.source {
            ImageSource::File(p) => p.display().to_string(),
            ImageSource::CsvRow { csv, line, .. } => {
                format!("{}:{line}", self.csv_files[*csv as usize].path.display())
            }
        }
    }

    /// The subject name of a sample, if any.
    pub fn subject_name(&self, s: &Sample) -> Option<&str> {
        s.subject.map(|i| self.subjects[i as usize].as_str())
    }

    /// Number of samples per class, in [`ALL_CLASSES`] order (8 entries).
    pub fn class_counts(&self, indices: impl IntoIterator<Item = usize>) -> [usize; 8] {
        let mut counts = [0usize; 8];
        for i in indices {
            counts[self.samples[i].class as usize] += 1;
        }
        counts
    }

    /// Leaves out contempt images unless `keep_contempt`; returns how many were left out.
    /// The index order of the remaining samples is kept.
    pub fn restrict_classes(&mut self, keep_contempt: bool) -> usize {
        if keep_contempt {
            return 0;
        }
        let before = self.samples.len();
        self.samples.retain(|s| (s.class as usize) != CONTEMPT);
        before - self.samples.len()
    }

    /// Interns a subject name, returning its index.
    pub(crate) fn subject_id(
        &mut self,
        lookup: &mut std::collections::HashMap<String, u32>,
        name: &str,
    ) -> u32 {
        if let Some(&id) = lookup.get(name) {
            return id;
        }
        let id = self.subjects.len() as u32;
        self.subjects.push(name.to_string());
        lookup.insert(name.to_string(), id);
        id
    }

    /// Reads and decodes one sample into model input described by `spec`.
    pub fn load_pixels(&self, index: usize, spec: ImageSpec) -> Result<Vec<u8>, String> {
        let s = &self.samples[index];
        match &s.source {
            ImageSource::File(p) => {
                let bytes = crate::decode::read_image_file(p)?;
                decode::decode_image(&bytes, spec).map(|(px, _)| px)
            }
            ImageSource::CsvRow { csv, offset, len, .. } => {
                let file = &self.csv_files[*csv as usize];
                let gray = file.read_row(*offset, *len)?;
                Ok(decode::from_gray48(&gray, spec))
            }
        }
    }
}
