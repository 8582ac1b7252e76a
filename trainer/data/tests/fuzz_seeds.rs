//! The dataset fuzz targets' seeds, and any input that once failed them
//! (`fuzz/seeds/fer_csv`, `fuzz/seeds/manifest`), read as the targets read them: no panic,
//! and every kept FER2013 row's pixels load.

use std::path::Path;

use fer_data::subject::SubjectPattern;
use fer_data::{Format, ImageSpec, LoadOptions, load};

fn seeds(target: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 3, "{} seeds in {}", files.len(), dir.display());
    files
}

#[test]
fn fer_csv_fuzz_seeds_replay() {
    let dir = tempfile::tempdir().unwrap();
    for seed in seeds("fer_csv") {
        let path = dir.path().join("fer2013.csv");
        std::fs::copy(&seed, &path).unwrap();
        let ds = load(&path, &LoadOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", seed.display()));
        assert_eq!(ds.format, Format::Fer2013Csv);
        for i in 0..ds.samples.len() {
            assert_eq!(ds.load_pixels(i, ImageSpec::FER48_GRAY).unwrap().len(), 48 * 48);
        }
    }
}

#[test]
fn manifest_fuzz_seeds_replay() {
    let dir = tempfile::tempdir().unwrap();
    let files = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/files");
    for f in ["face.png", "rows.csv"] {
        std::fs::copy(files.join(f), dir.path().join(f)).unwrap();
    }
    let subject_pattern = SubjectPattern::new(r"S(\d+)_").unwrap();
    let opts = LoadOptions { subject_pattern, ..LoadOptions::default() };
    let mut loaded = 0;
    for seed in seeds("manifest") {
        let path = dir.path().join("manifest.csv");
        std::fs::copy(&seed, &path).unwrap();
        if let Ok(ds) = load(&path, &opts) {
            loaded += 1;
            for i in 0..ds.samples.len() {
                let _ = ds.load_pixels(i, ImageSpec::FER48_GRAY);
            }
        }
    }
    assert!(loaded >= 2, "the seeds that name real images load");
}
