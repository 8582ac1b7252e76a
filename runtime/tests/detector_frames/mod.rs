//! The face frames the int8 detector tests calibrate and check on, shared by the test files
//! (`mod detector_frames;`).

use std::path::{Path, PathBuf};

pub fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

/// The demo photo and, where `../shared` is present, the photos of real and drawn faces.
pub fn frames() -> Vec<PathBuf> {
    let mut v = vec![repo("demo/astronaut.jpg")];
    if let Ok(dir) = std::fs::read_dir(repo("../shared/data/photos")) {
        let mut p: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        p.sort();
        v.extend(p);
    }
    v
}
