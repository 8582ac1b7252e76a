//! Class-folder trees (ImageFolder / Kaggle FER2013 layout).
//!
//! `ROOT/<class>/**/*.{jpg,jpeg,png}`; or, one level up, `ROOT/<split>/<class>/...` where
//! `<split>` is `train`, `test`, `val`, `public_test`, `private_test` (FER2013 from
//! Kaggle). Class names map onto the FER labels (`anger` -> `angry`); a folder whose name
//! is no emotion is reported and left out. Files are visited in sorted order, so the
//! sample order (which Keras-style splits depend on) is the same on every machine.

use std::collections::HashMap;
use std::path::Path;

use fer_core::labels::{ALL_CLASSES, class_index};
use walkdir::WalkDir;

use super::subject::SubjectPattern;
use super::{Dataset, ImageSource, Sample, Skipped, Usage};
use crate::error::DataError;

const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "bmp"];

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn sorted_entries(dir: &Path) -> Result<Vec<std::fs::DirEntry>, DataError> {
    let io = |e| DataError::Io { path: dir.to_path_buf(), source: e };
    let mut entries = std::fs::read_dir(dir).map_err(io)?.collect::<Result<Vec<_>, _>>().map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

fn name_of(e: &std::fs::DirEntry) -> String {
    e.file_name().to_string_lossy().into_owned()
}

/// True when `root`'s folders are splits (`train/`, `test/`, ...) rather than classes.
pub fn has_split_folders(root: &Path) -> Result<bool, DataError> {
    let dirs: Vec<String> = sorted_entries(root)?.iter().filter(|e| e.path().is_dir()).map(name_of).collect();
    Ok(dirs.iter().any(|d| Usage::parse(d).is_some()) && !dirs.iter().any(|d| class_index(d).is_some()))
}

/// Indexes the tree at `root` into `ds`.
pub fn read(root: &Path, pattern: &SubjectPattern, ds: &mut Dataset) -> Result<(), DataError> {
    let mut subjects = HashMap::new();
    if has_split_folders(root)? {
        for e in sorted_entries(root)? {
            let path = e.path();
            if !path.is_dir() {
                count_ignored(ds, &path);
                continue;
            }
            match Usage::parse(&name_of(&e)) {
                Some(usage) => read_classes(root, &path, Some(usage), pattern, ds, &mut subjects)?,
                None => ds.skipped.push(Skipped {
                    path: path.display().to_string(),
                    reason: "folder is not a split (train, test, val, public_test, private_test); left out"
                        .into(),
                }),
            }
        }
    } else {
        read_classes(root, root, None, pattern, ds, &mut subjects)?;
    }
    Ok(())
}

fn count_ignored(ds: &mut Dataset, path: &Path) {
    let ext =
        path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_else(|| "(none)".into());
    *ds.ignored_files.entry(ext).or_default() += 1;
}

/// Reads `dir/<class>/**` (dir is the root, or one split folder under it).
fn read_classes(
    root: &Path,
    dir: &Path,
    usage: Option<Usage>,
    pattern: &SubjectPattern,
    ds: &mut Dataset,
    subjects: &mut HashMap<String, u32>,
) -> Result<(), DataError> {
    let mut found_class = false;
    for e in sorted_entries(dir)? {
        let class_dir = e.path();
        if !class_dir.is_dir() {
            count_ignored(ds, &class_dir);
            continue;
        }
        let name = name_of(&e);
        let Some(class) = class_index(&name) else {
            let n = WalkDir::new(&class_dir)
                .into_iter()
                .filter_map(Result::ok)
                .filter(|f| is_image(f.path()))
                .count();
            ds.skipped.push(Skipped {
                path: class_dir.display().to_string(),
                reason: format!(
                    "folder name {name:?} is not a known class ({}); {n} image(s) left out",
                    ALL_CLASSES.join(", ")
                ),
            });
            continue;
        };
        found_class = true;
        let before = ds.samples.len();
        for entry in WalkDir::new(&class_dir).min_depth(1).sort_by_file_name() {
            let entry = match entry {
                Ok(en) => en,
                Err(err) => {
                    let p = err.path().unwrap_or(&class_dir).display().to_string();
                    ds.skipped.push(Skipped { path: p, reason: format!("cannot read: {err}") });
                    continue;
                }
            };
            let path = entry.path();
            if entry.file_type().is_dir() {
                continue;
            }
            if !is_image(path) {
                count_ignored(ds, path);
                continue;
            }
            let rel = path.strip_prefix(root).unwrap_or(path).to_string_lossy().replace('\\', "/");
            let subject = pattern.extract(&rel).map(|s| ds.subject_id(subjects, s));
            ds.samples.push(Sample {
                source: ImageSource::File(path.to_path_buf()),
                class: class as u8,
                subject,
                usage,
            });
        }
        if ds.samples.len() == before {
            ds.skipped
                .push(Skipped { path: class_dir.display().to_string(), reason: "empty class folder".into() });
        }
    }
    if !found_class {
        return Err(DataError::Format {
            path: dir.to_path_buf(),
            reason: format!("no class folders found (expected sub-folders named {})", ALL_CLASSES.join(", ")),
        });
    }
    Ok(())
}
