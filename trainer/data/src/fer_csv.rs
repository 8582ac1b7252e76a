//! FER2013 CSV: `emotion,pixels[,Usage]`, one 48x48 grayscale face per row.
//!
//! Rows are checked once while indexing (class index, 2,304 pixel values 0-255, Usage);
//! the index keeps each row's byte range, and pixels are parsed again when the trainer
//! asks for them, so a large CSV is never held in memory.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{Dataset, ImageSource, Sample, Skipped, Usage};
use crate::error::DataError;

/// Pixels in one FER2013 row.
pub const PIXELS: usize = 48 * 48;

/// A CSV file that samples point into, and which column holds its pixels.
#[derive(Clone, Debug)]
pub struct CsvFile {
    pub path: PathBuf,
    pub pixels_column: usize,
}

impl CsvFile {
    /// Reads the row at `offset..offset+len` and returns its 48x48 pixels.
    pub fn read_row(&self, offset: u64, len: u32) -> Result<Vec<u8>, String> {
        let mut f = File::open(&self.path).map_err(|e| format!("cannot read: {e}"))?;
        f.seek(SeekFrom::Start(offset)).map_err(|e| format!("cannot read: {e}"))?;
        let mut row = vec![0u8; len as usize];
        f.read_exact(&mut row).map_err(|e| format!("cannot read row (file changed?): {e}"))?;
        let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(&row[..]);
        let mut rec = csv::ByteRecord::new();
        if !rdr.read_byte_record(&mut rec).map_err(|e| e.to_string())? {
            return Err("empty row (file changed?)".into());
        }
        let field = rec.get(self.pixels_column).ok_or("row has no pixels column (file changed?)")?;
        parse_pixels(field)
    }
}

/// Parses a `pixels` field: exactly 2,304 space-separated values 0-255.
pub fn parse_pixels(field: &[u8]) -> Result<Vec<u8>, String> {
    let mut px = Vec::with_capacity(PIXELS);
    for (i, tok) in field.split(|b| b.is_ascii_whitespace()).filter(|t| !t.is_empty()).enumerate() {
        let v = std::str::from_utf8(tok).ok().and_then(|t| t.parse::<u8>().ok()).ok_or_else(|| {
            format!(
                "pixel value {:?} at position {} is not an integer 0-255",
                String::from_utf8_lossy(tok),
                i + 1
            )
        })?;
        px.push(v);
    }
    if px.len() != PIXELS {
        return Err(format!("{} pixel values, expected {PIXELS} (48x48)", px.len()));
    }
    Ok(px)
}

fn find_column(headers: &csv::ByteRecord, name: &str) -> Option<usize> {
    headers.iter().position(|h| String::from_utf8_lossy(h).trim().eq_ignore_ascii_case(name))
}

/// True when the CSV header names FER2013's `emotion` and `pixels` columns.
pub fn looks_like_fer_csv(headers: &csv::ByteRecord) -> bool {
    find_column(headers, "emotion").is_some() && find_column(headers, "pixels").is_some()
}

/// Indexes every row of a FER2013 CSV into `ds`, skipping bad rows with their line.
pub fn read(path: &Path, ds: &mut Dataset) -> Result<(), DataError> {
    let io_err = |e: std::io::Error| DataError::Io { path: path.to_path_buf(), source: e };
    let file_len = std::fs::metadata(path).map_err(io_err)?.len();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_path(path)
        .map_err(|e| DataError::csv(path, e))?;
    let headers = rdr.byte_headers().map_err(|e| DataError::csv(path, e))?.clone();
    let (emotion_col, pixels_col) = match (find_column(&headers, "emotion"), find_column(&headers, "pixels"))
    {
        (Some(e), Some(p)) => (e, p),
        _ => {
            return Err(DataError::Format {
                path: path.to_path_buf(),
                reason: format!(
                    "header {:?} lacks FER2013's `emotion` and `pixels` columns",
                    header_text(&headers)
                ),
            });
        }
    };
    let usage_col = find_column(&headers, "usage");
    let csv_id = ds.csv_files.len() as u32;
    ds.csv_files.push(CsvFile { path: path.to_path_buf(), pixels_column: pixels_col });

    let first = ds.samples.len();
    let mut probe = File::open(path).map_err(io_err)?;
    let mut rec = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(DataError::csv(path, e)),
        }
        let pos = rec.position().expect("csv records carry their position");
        let (offset, line) = record_start(&mut probe, pos).map_err(io_err)?;
        let skip = |reason: String| Skipped { path: format!("{}:{line}", path.display()), reason };
        match check_row(&rec, emotion_col, pixels_col, usage_col) {
            Ok((class, usage)) => ds.samples.push(Sample {
                source: ImageSource::CsvRow { csv: csv_id, line, offset, len: 0 },
                class,
                subject: None,
                usage,
            }),
            Err(reason) => ds.skipped.push(skip(reason)),
        }
    }
    // Each row runs to the start of the next kept row (or the end of the file); a skipped
    // row in between is harmless, as `read_row` parses only the first record.
    let mut end = file_len;
    for s in ds.samples[first..].iter_mut().rev() {
        if let ImageSource::CsvRow { offset, len, .. } = &mut s.source {
            *len = (end - *offset) as u32;
            end = *offset;
        }
    }
    Ok(())
}

/// The true start and line of a record. After a CRLF line end the csv crate reports the
/// record as starting on the `\n`, one line early; step past it.
fn record_start(file: &mut File, pos: &csv::Position) -> std::io::Result<(u64, u64)> {
    let mut first = [0u8; 1];
    file.seek(SeekFrom::Start(pos.byte()))?;
    let n = file.read(&mut first)?;
    Ok(if n == 1 && first[0] == b'\n' { (pos.byte() + 1, pos.line() + 1) } else { (pos.byte(), pos.line()) })
}

/// A header row as the user wrote it, for messages.
pub fn header_text(headers: &csv::ByteRecord) -> String {
    headers.iter().map(String::from_utf8_lossy).collect::<Vec<_>>().join(",")
}

fn check_row(
    rec: &csv::ByteRecord,
    emotion_col: usize,
    pixels_col: usize,
    usage_col: Option<usize>,
) -> Result<(u8, Option<Usage>), String> {
    let field = |col: usize, name: &str| {
        rec.get(col).ok_or_else(|| format!("row has {} fields, no `{name}` column", rec.len()))
    };
    let emotion = String::from_utf8_lossy(field(emotion_col, "emotion")?).trim().to_string();
    let class = match emotion.parse::<u8>() {
        Ok(c) if c < 7 => c,
        _ => return Err(format!("emotion {emotion:?} is not a class index 0-6")),
    };
    parse_pixels(field(pixels_col, "pixels")?)?;
    let usage = match usage_col {
        None => None,
        Some(col) => {
            let u = String::from_utf8_lossy(field(col, "Usage")?).trim().to_string();
            Some(
                Usage::parse(&u)
                    .ok_or_else(|| format!("Usage {u:?} is not Training, PublicTest or PrivateTest"))?,
            )
        }
    };
    Ok((class, usage))
}
