//! Any bytes as a FER2013 CSV (`emotion,pixels,Usage`) given to `fer-train` (`data::load`:
//! the format told by the header, then read and checked), and every kept row's pixels
//! loaded. No panic; every row is either a sample whose pixels load or a skipped row.
#![no_main]

use std::sync::LazyLock;

use fer_data::{Format, ImageSpec, LoadOptions, load};
use libfuzzer_sys::fuzz_target;

#[path = "../src/scratch.rs"]
mod scratch;

/// Built once, not each run: compiling the subject regex is not what this target fuzzes.
static OPTIONS: LazyLock<LoadOptions> = LazyLock::new(LoadOptions::default);

fuzz_target!(|data: &[u8]| {
    let path = scratch::write("fer2013.csv", data);
    let Ok(ds) = load(&path, &OPTIONS) else { return };
    for i in 0..ds.samples.len() {
        let pixels = ds.load_pixels(i, ImageSpec::FER48_GRAY);
        if ds.format == Format::Fer2013Csv {
            assert_eq!(pixels.expect("a kept row's pixels load").len(), 48 * 48);
        }
    }
});
