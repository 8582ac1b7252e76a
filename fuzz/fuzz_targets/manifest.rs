//! Any bytes as a manifest CSV (`path,label[,subject][,usage]`) given to `fer-train`, in a
//! folder holding one image and one FER2013 CSV it may point at: read (`data::load`),
//! verified (each named image decoded), and every kept sample's pixels loaded. No panic.
#![no_main]

use std::sync::LazyLock;

use fer_data::subject::SubjectPattern;
use fer_data::{ImageSpec, LoadOptions, load};
use libfuzzer_sys::fuzz_target;

#[path = "../src/scratch.rs"]
mod scratch;

/// Built once, not each run: compiling the subject regexes is not what this target fuzzes.
static OPTIONS: LazyLock<LoadOptions> = LazyLock::new(|| {
    let subject_pattern = SubjectPattern::new(r"S(\d+)_").expect("a valid pattern");
    LoadOptions { subject_pattern, ..LoadOptions::default() }
});

fuzz_target!(|data: &[u8]| {
    scratch::write_once("face.png", include_bytes!("../seeds/files/face.png"));
    scratch::write_once("rows.csv", include_bytes!("../seeds/files/rows.csv"));
    let path = scratch::write("manifest.csv", data);
    let Ok(ds) = load(&path, &OPTIONS) else { return };
    for i in 0..ds.samples.len() {
        let _ = ds.load_pixels(i, ImageSpec::FER48_GRAY);
    }
});
