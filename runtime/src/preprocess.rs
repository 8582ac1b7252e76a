//! Images to model input, as the trainer feeds them: decoded, converted to gray or RGB,
//! resized to the model's size (bilinear, aspect not kept), scaled to [0, 1], `[C, H, W]`.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;

/// An image or a folder of images that cannot be used, naming the file or folder.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{}: {source}", .path.display())]
    Decode { path: PathBuf, source: image::ImageError },
    #[error("models with {0} input channels are not supported (1 or 3)")]
    Channels(usize),
    #[error("{}: not a folder of images", .0.display())]
    NotAFolder(PathBuf),
    #[error("{}: no images in class folders (angry/, happy/, ...)", .0.display())]
    NoClassFolders(PathBuf),
}

// Shared with the browser build: the core owns them.
pub use fer_core::format::{apply_input_map, is_pixel_over_255};

/// `[C, H, W]` floats in [0, 1] for a model taking `shape`.
pub fn load_image(path: &Path, shape: [usize; 3]) -> Result<Vec<f32>, ImageError> {
    let img = image::open(path).map_err(|source| ImageError::Decode { path: path.into(), source })?;
    image_input(img, shape)
}

/// A decoded image as the model's input: resized (bilinear, aspect not kept), gray or RGB.
pub fn image_input(img: image::DynamicImage, shape: [usize; 3]) -> Result<Vec<f32>, ImageError> {
    let [c, h, w] = shape;
    if !matches!(c, 1 | 3) {
        return Err(ImageError::Channels(c));
    }
    let img = if img.width() as usize != w || img.height() as usize != h {
        img.resize_exact(w as u32, h as u32, FilterType::Triangle)
    } else {
        img
    };
    let mut out = vec![0f32; c * h * w];
    to_chw(img, c, &mut out);
    Ok(out)
}

/// An image already at the model's size -> `[C, H, W]` floats in [0, 1] (gray when `c` is
/// 1, else RGB).
pub fn to_chw(img: image::DynamicImage, c: usize, out: &mut [f32]) {
    if c == 1 {
        for (o, &p) in out.iter_mut().zip(img.into_luma8().as_raw()) {
            *o = p as f32 / 255.0;
        }
        return;
    }
    let rgb = img.into_rgb8();
    let plane = (rgb.width() * rgb.height()) as usize;
    for (i, px) in rgb.as_raw().chunks(3).enumerate() {
        for ch in 0..3 {
            out[ch * plane + i] = px[ch] as f32 / 255.0;
        }
    }
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
}

/// Every jpg/png under `dir`, sorted (so runs are repeatable).
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>, ImageError> {
    if !dir.is_dir() {
        return Err(ImageError::NotAFolder(dir.into()));
    }
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.into_path())
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    files.sort();
    Ok(files)
}

/// `n` files spread evenly over the sorted list (every class folder gets its share).
pub fn spread(files: &[PathBuf], n: usize) -> Vec<PathBuf> {
    if files.len() <= n {
        return files.to_vec();
    }
    (0..n).map(|i| files[i * files.len() / n].clone()).collect()
}

/// Images of a class-folder tree with their label index (folders named after classes).
pub fn labeled_images(dir: &Path) -> Result<Vec<(PathBuf, usize)>, ImageError> {
    let mut out = Vec::new();
    for f in image_files(dir)? {
        let class = f
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(crate::labels::class_index);
        if let Some(c) = class {
            out.push((f, c));
        }
    }
    if out.is_empty() {
        return Err(ImageError::NoClassFolders(dir.into()));
    }
    Ok(out)
}
