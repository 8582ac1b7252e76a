//! What stops a dataset from being read, naming the file, line or field at fault. The
//! readers return it and the dispatcher (`source`) passes it on.

use std::path::{Path, PathBuf};

/// A problem that stops reading a dataset (as opposed to one bad image, which is skipped).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Csv { path: String, reason: String },
    #[error("{}: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{} problem(s) in the dataset and --strict is set; first: {}: {}", skipped.len(), skipped[0].path, skipped[0].reason)]
    Strict { skipped: Vec<super::Skipped> },
    #[error("{}: no usable image{}", path.display(), first_problem(skipped))]
    Empty { path: PathBuf, skipped: Vec<super::Skipped> },
}

/// "; N skipped, first: PATH: REASON" when anything was skipped.
fn first_problem(skipped: &[super::Skipped]) -> String {
    match skipped.first() {
        Some(s) => format!("; {} skipped, first: {}: {}", skipped.len(), s.path, s.reason),
        None => String::new(),
    }
}

impl DataError {
    pub(crate) fn csv(path: &Path, e: csv::Error) -> DataError {
        let at = e.position().map(|p| format!(":{}", p.line())).unwrap_or_default();
        DataError::Csv { path: format!("{}{at}", path.display()), reason: e.to_string() }
    }
}
