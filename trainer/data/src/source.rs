//! What a dataset path holds, and the one entry point that reads any of them.

use std::path::Path;

use super::error::DataError;
use super::subject::SubjectPattern;
use super::{Dataset, Format, fer_csv, folder, manifest, verify};

/// How to read a dataset.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub subject_pattern: SubjectPattern,
    /// Decode every image once and skip the ones that fail (on by default).
    pub verify: bool,
    /// Fail on the first skipped item instead of reporting it.
    pub strict: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { subject_pattern: SubjectPattern::default(), verify: true, strict: false }
    }
}

/// Detects the format of `path`.
pub fn detect(path: &Path) -> Result<Format, DataError> {
    let meta = std::fs::metadata(path).map_err(|e| DataError::Io { path: path.to_path_buf(), source: e })?;
    if meta.is_dir() {
        return Ok(if folder::has_split_folders(path)? {
            Format::SplitFolders
        } else {
            Format::ClassFolders
        });
    }
    let mut rdr =
        csv::ReaderBuilder::new().has_headers(true).from_path(path).map_err(|e| DataError::csv(path, e))?;
    let headers = rdr.byte_headers().map_err(|e| DataError::csv(path, e))?.clone();
    if fer_csv::looks_like_fer_csv(&headers) {
        Ok(Format::Fer2013Csv)
    } else if manifest::looks_like_manifest(&headers) {
        Ok(Format::Manifest)
    } else {
        Err(DataError::Format {
            path: path.to_path_buf(),
            reason: format!(
                "not a dataset: expected a folder of class folders, a FER2013 CSV (emotion,pixels[,Usage]) \
                 or a manifest CSV (path,label[,subject]); header is {:?}",
                fer_csv::header_text(&headers)
            ),
        })
    }
}

/// Reads the dataset at `path` in whichever format it holds, checks every image
/// (unless `opts.verify` is off) and applies `opts.strict`. A dataset with no usable image
/// is an error that names its first problem.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let format = detect(path)?;
    let mut ds = Dataset::new(path, format);
    match format {
        Format::Fer2013Csv => fer_csv::read(path, &mut ds)?,
        Format::ClassFolders | Format::SplitFolders => folder::read(path, &opts.subject_pattern, &mut ds)?,
        Format::Manifest => manifest::read(path, &opts.subject_pattern, &mut ds)?,
    }
    if opts.verify {
        verify::verify(&mut ds);
    }
    if opts.strict && !ds.skipped.is_empty() {
        return Err(DataError::Strict { skipped: std::mem::take(&mut ds.skipped) });
    }
    if ds.samples.is_empty() {
        return Err(DataError::Empty { path: path.to_path_buf(), skipped: std::mem::take(&mut ds.skipped) });
    }
    Ok(ds)
}
