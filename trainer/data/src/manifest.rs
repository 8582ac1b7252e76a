//! Manifest CSV: `path,label[,subject][,usage]` with a header row.
//!
//! `path` is absolute or relative to the manifest's folder; `label` a class name (any
//! spelling [`class_index`] knows) or index 0-7; `subject` any string. A row of a FER2013
//! CSV is written `fer2013.csv#L<line>`, which is how `fer-train data split` refers to
//! CSV rows without copying pixels. Extra columns (e.g. `weight`) are ignored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use fer_core::labels::class_index;

use super::subject::SubjectPattern;
use super::{Dataset, Format, ImageSource, Sample, Skipped, Usage, fer_csv};
use crate::error::DataError;

fn column(headers: &csv::StringRecord, name: &str) -> Option<usize> {
    headers.iter().position(|h| h.trim().eq_ignore_ascii_case(name))
}

/// True when the header has `path` and `label` columns.
pub fn looks_like_manifest(headers: &csv::ByteRecord) -> bool {
    let h = csv::StringRecord::from_byte_record_lossy(headers.clone());
    column(&h, "path").is_some() && column(&h, "label").is_some()
}

/// Parses a label cell: a class name or a class index 0-7.
pub fn parse_label(cell: &str) -> Option<u8> {
    let cell = cell.trim();
    match cell.parse::<u8>() {
        Ok(i) if i < 8 => Some(i),
        Ok(_) => None,
        Err(_) => class_index(cell).map(|i| i as u8),
    }
}

/// Splits `file.csv#L123` into the CSV path and line.
fn csv_row_ref(path: &str) -> Option<(&str, u64)> {
    let (file, line) = path.rsplit_once("#L")?;
    Some((file, line.parse().ok()?))
}

/// Indexes a manifest into `ds`.
pub fn read(path: &Path, pattern: &SubjectPattern, ds: &mut Dataset) -> Result<(), DataError> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut rdr =
        csv::ReaderBuilder::new().flexible(true).from_path(path).map_err(|e| DataError::csv(path, e))?;
    let headers = rdr.headers().map_err(|e| DataError::csv(path, e))?.clone();
    let (path_col, label_col) =
        (column(&headers, "path").unwrap_or(0), column(&headers, "label").unwrap_or(1));
    let subject_col = column(&headers, "subject");
    let usage_col = column(&headers, "usage");
    let mut subjects = HashMap::new();
    // FER2013 CSVs that rows refer to, indexed once each (None: unreadable).
    let mut csv_rows: HashMap<PathBuf, Option<RowIndex>> = HashMap::new();

    for rec in rdr.records() {
        let rec = rec.map_err(|e| DataError::csv(path, e))?;
        let line = rec.position().map_or(0, |p| p.line());
        let at = format!("{}:{line}", path.display());
        let cell = |c: Option<usize>| c.and_then(|c| rec.get(c)).map(str::trim).filter(|s| !s.is_empty());
        let Some(img) = cell(Some(path_col)) else {
            ds.skipped.push(Skipped { path: at, reason: "empty `path`".into() });
            continue;
        };
        let Some(label) = cell(Some(label_col)) else {
            ds.skipped.push(Skipped { path: at, reason: "empty `label`".into() });
            continue;
        };
        let Some(class) = parse_label(label) else {
            ds.skipped.push(Skipped { path: at, reason: format!("unknown label {label:?}") });
            continue;
        };
        let usage = match cell(usage_col) {
            None => None,
            Some(u) => match Usage::parse(u) {
                Some(u) => Some(u),
                None => {
                    ds.skipped.push(Skipped { path: at, reason: format!("unknown usage {u:?}") });
                    continue;
                }
            },
        };
        let source = match csv_row_ref(img) {
            Some((file, row_line)) => {
                let file = base.join(file);
                let rows = csv_rows.entry(file.clone()).or_insert_with(|| index_csv(&file, ds));
                match rows.as_ref().and_then(|rows| rows.get(&row_line)) {
                    Some(src) => src.clone(),
                    None => {
                        ds.skipped.push(Skipped {
                            path: at,
                            reason: format!("{img}: no such valid row in {}", file.display()),
                        });
                        continue;
                    }
                }
            }
            None => ImageSource::File(base.join(img)),
        };
        let subject_name = match cell(subject_col) {
            Some(s) => Some(s.to_string()),
            None => pattern.extract(&img.replace('\\', "/")).map(str::to_string),
        };
        let subject = subject_name.map(|s| ds.subject_id(&mut subjects, &s));
        ds.samples.push(Sample { source, class, subject, usage });
    }
    Ok(())
}

/// The valid rows of one FER2013 CSV, by line.
type RowIndex = HashMap<u64, ImageSource>;

/// Indexes a FER2013 CSV that manifest rows point into; its problems go to `ds.skipped`.
fn index_csv(file: &Path, ds: &mut Dataset) -> Option<RowIndex> {
    let mut sub = Dataset::new(file, Format::Fer2013Csv);
    if let Err(e) = fer_csv::read(file, &mut sub) {
        ds.skipped.push(Skipped { path: file.display().to_string(), reason: e.to_string() });
        return None;
    }
    let id = ds.csv_files.len() as u32;
    ds.csv_files.push(sub.csv_files.remove(0));
    let rows = sub
        .samples
        .into_iter()
        .filter_map(|s| match s.source {
            ImageSource::CsvRow { line, offset, len, .. } => {
                Some((line, ImageSource::CsvRow { csv: id, line, offset, len }))
            }
            ImageSource::File(_) => None,
        })
        .collect();
    Some(rows)
}
