//! Checkpoint folders, written so that a crash at any moment leaves a whole one behind.
//!
//! `OUT/last/` (model, optimizer and loop state after the latest epoch: what `--resume`
//! reads) and `OUT/best/` (the best epoch's model, with its config and metrics: what
//! `fer-train export` reads). Each is written in full to `NAME.tmp/`, then swapped in by two
//! renames; a crash between them leaves `NAME.old/`, which [`recover`] puts back.
//!
//! Each folder also holds `checksums.txt` (CRC-64 of each binary record, `*.bpk`), which
//! [`read_file`] checks: burn's record format has no checksum of its own, so a bit flipped
//! on disk would otherwise load as a silently different model. The JSON files are left
//! out: a damaged one fails to parse, and users may edit them (a resumed run's `lr`).
//! Folders written before checksums load unchecked.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::metrics::{EpochMetrics, SetMetrics};
use super::monitor::Monitor;
use super::schedule::LrSchedule;
use crate::data::{ALL_CLASSES, ImageSpec};
use crate::model::ModelConfig;

pub const MODEL_FILE: &str = "model.bpk";
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";
pub const STATE_FILE: &str = "state.json";
pub const MODEL_JSON: &str = "model.json";
pub const CHECKSUMS_FILE: &str = "checksums.txt";

const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_XZ);

/// `checksums.txt`'s text for the binary records among `files`: one `CRC  NAME` line each.
fn checksums(files: &[(&str, &[u8])]) -> String {
    files
        .iter()
        .filter(|(name, _)| name.ends_with(".bpk"))
        .map(|(name, bytes)| format!("{:016x}  {name}\n", CRC64.checksum(bytes)))
        .collect()
}

/// `dir/name`'s bytes, checked against the folder's `checksums.txt` when it lists the file.
/// Errors name the file.
pub fn read_file(dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let list_path = dir.join(CHECKSUMS_FILE);
    let list = match std::fs::read_to_string(&list_path) {
        Ok(list) => list,
        // A folder written before checksums.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(bytes),
        Err(e) => return Err(format!("{}: {e}", list_path.display())),
    };
    let stored = list.lines().find_map(|l| l.split_once("  ").filter(|(_, n)| *n == name).map(|(c, _)| c));
    let computed = format!("{:016x}", CRC64.checksum(&bytes));
    match stored {
        Some(c) if c == computed => Ok(bytes),
        Some(c) => Err(format!(
            "{}: checksum mismatch (stored {c}, computed {computed}): the file is corrupt",
            path.display()
        )),
        None => Ok(bytes),
    }
}

/// The loop's state after an epoch: with the model and optimizer files, all a resumed run
/// needs to continue exactly where this one was.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    pub config: TrainConfig,
    pub model: ModelConfig,
    /// Epochs finished (the next one to run, 0-based).
    pub epochs_done: usize,
    pub history: Vec<EpochMetrics>,
    pub schedule: LrSchedule,
    pub monitor: Monitor,
    /// Messages the run printed (plateau reductions, ...), by epoch.
    pub events: Vec<String>,
    /// Set when early stopping ended the run: a resume must not train past it.
    #[serde(default)]
    pub stopped_early: Option<String>,
    /// How many images each side had, to refuse a resume on different data.
    pub train_images: usize,
    pub val_images: usize,
}

/// What `best/model.json` says about the model: enough to rebuild, export and run it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelCard {
    pub model: ModelConfig,
    /// Output index -> class name.
    pub labels: Vec<String>,
    pub input: ImageSpec,
    /// How pixels become input: `value / 255`, CHW.
    pub preprocessing: String,
    /// 1-based epoch these weights come from.
    pub epoch: usize,
    pub val: SetMetrics,
    /// The temperature baked into the classifier (`fer-train ship` calibrates), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
}

impl ModelCard {
    pub fn new(model: ModelConfig, epoch: usize, val: SetMetrics) -> ModelCard {
        ModelCard {
            labels: ALL_CLASSES[..model.classes].iter().map(|s| s.to_string()).collect(),
            input: model.input,
            model,
            preprocessing: "pixels / 255 (range 0..1), layout NCHW, grayscale when channels = 1".into(),
            epoch,
            val,
            temperature: None,
        }
    }
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    dir.with_file_name(name)
}

/// Puts back `dir` from `dir.old` if a crash came between the two renames.
pub fn recover(dir: &Path) -> std::io::Result<()> {
    let old = sibling(dir, ".old");
    if !dir.exists() && old.exists() {
        std::fs::rename(&old, dir)?;
    }
    Ok(())
}

/// Replaces folder `dir` with one holding exactly `files`, never leaving it half-written.
pub fn write_dir(dir: &Path, files: &[(&str, &[u8])]) -> std::io::Result<()> {
    let tmp = sibling(dir, ".tmp");
    let old = sibling(dir, ".old");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    for (name, bytes) in files {
        fer_runtime::fsutil::write_atomic(&tmp.join(name), bytes)?;
    }
    fer_runtime::fsutil::write_atomic(&tmp.join(CHECKSUMS_FILE), checksums(files).as_bytes())?;
    recover(dir)?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    if dir.exists() {
        std::fs::rename(dir, &old)?;
    }
    std::fs::rename(&tmp, dir)?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_folders_and_recovers_from_a_crash_between_renames() {
        let root = tempfile::tempdir().unwrap();
        let d = root.path().join("best");
        write_dir(&d, &[("a", b"1"), ("b", b"2")]).unwrap();
        write_dir(&d, &[("a", b"3")]).unwrap();
        assert_eq!(read_file(&d, "a").unwrap(), b"3");
        assert!(!d.join("b").exists());
        // A crash after the first rename: only best.old is there.
        std::fs::rename(&d, root.path().join("best.old")).unwrap();
        recover(&d).unwrap();
        assert_eq!(std::fs::read(d.join("a")).unwrap(), b"3");
        let names: Vec<_> = std::fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("best")]);
    }

    #[test]
    fn a_flipped_bit_in_a_record_is_named() {
        let root = tempfile::tempdir().unwrap();
        let d = root.path().join("last");
        write_dir(&d, &[("model.bpk", &[1, 2, 3, 4]), ("state.json", b"{}")]).unwrap();
        assert_eq!(read_file(&d, "model.bpk").unwrap(), [1, 2, 3, 4]);
        std::fs::write(d.join("model.bpk"), [1, 2, 3, 5]).unwrap();
        let e = read_file(&d, "model.bpk").unwrap_err();
        assert!(e.contains("model.bpk") && e.contains("checksum mismatch"), "{e}");
        // JSON is not checksummed: users may edit it, and damage shows when it is parsed.
        std::fs::write(d.join("state.json"), b"{\"lr\": 1}").unwrap();
        assert_eq!(read_file(&d, "state.json").unwrap(), b"{\"lr\": 1}");
        // A folder from before checksums: read as it is.
        std::fs::remove_file(d.join(CHECKSUMS_FILE)).unwrap();
        assert_eq!(read_file(&d, "model.bpk").unwrap(), [1, 2, 3, 5]);
    }
}
