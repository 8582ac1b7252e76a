//! Decodes every image once, in parallel, and moves the ones that fail to `skipped`.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::decode::{Color, ImageInfo, decode_any};
use super::{Dataset, ImageSource, Skipped};

/// Stored sizes and colours of the images that decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageStats {
    /// `"48x48"` -> count.
    pub sizes: BTreeMap<String, usize>,
    pub colors: BTreeMap<Color, usize>,
}

impl ImageStats {
    fn add(&mut self, info: ImageInfo) {
        *self.sizes.entry(format!("{}x{}", info.width, info.height)).or_default() += 1;
        *self.colors.entry(info.color).or_default() += 1;
    }
}

fn check(source: &ImageSource) -> Result<ImageInfo, String> {
    match source {
        ImageSource::File(p) => {
            let bytes = crate::decode::read_image_file(p)?;
            let img = decode_any(&bytes)?;
            let color = if img.color().has_color() { Color::Rgb } else { Color::Gray };
            Ok(ImageInfo { width: img.width(), height: img.height(), color })
        }
        // Rows were parsed and checked while the CSV was indexed.
        ImageSource::CsvRow { .. } => Ok(ImageInfo { width: 48, height: 48, color: Color::Gray }),
    }
}

/// Decodes every sample of `ds`; failures become `skipped` entries (path and reason) and
/// leave the index. Returns the sizes and colours of the good ones.
pub fn verify(ds: &mut Dataset) -> ImageStats {
    let results: Vec<Result<ImageInfo, String>> = ds.samples.par_iter().map(|s| check(&s.source)).collect();
    let mut stats = ImageStats::default();
    let mut keep = Vec::with_capacity(ds.samples.len());
    for (sample, result) in std::mem::take(&mut ds.samples).into_iter().zip(results) {
        match result {
            Ok(info) => {
                stats.add(info);
                keep.push(sample);
            }
            Err(reason) => {
                let path = ds.sample_path(&sample);
                ds.skipped.push(Skipped { path, reason });
            }
        }
    }
    ds.samples = keep;
    ds.image_stats = Some(stats.clone());
    stats
}
