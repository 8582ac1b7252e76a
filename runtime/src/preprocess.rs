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

/// The largest side `fer` decodes (16k: a 128-megapixel photo). A file that declares more is
/// refused before any pixel buffer is allocated.
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// The most a decoder may allocate for one image (a 16k x 8k RGB picture).
pub const MAX_IMAGE_BYTES: u64 = 384 << 20;

/// The decoders' limits: a corrupt or hostile header cannot make `fer` allocate gigabytes.
pub fn image_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_BYTES);
    limits
}

/// An image file's bytes decoded (jpg, png or bmp, told by content rather than by name),
/// within the decoders' limits. Every command that reads a picture reads it here.
pub fn decode_image(bytes: &[u8]) -> Result<image::DynamicImage, image::ImageError> {
    if bytes.is_empty() {
        return Err(refusal("empty file (0 bytes)".into()));
    }
    let mut decoder = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format()?;
    match decoder.format() {
        Some(image::ImageFormat::Jpeg) => refuse_truncated_jpeg(bytes)?,
        Some(_) => {}
        None => return Err(refusal("not a JPEG, PNG or BMP image (by its first bytes)".into())),
    }
    decoder.limits(image_limits());
    match decoder.decode() {
        Err(image::ImageError::Limits(_)) => Err(refusal(format!(
            "its header declares a larger image than fer decodes ({MAX_IMAGE_SIDE} pixels a side, {} MiB)",
            MAX_IMAGE_BYTES >> 20
        ))),
        decoded => decoded,
    }
}

/// A file `fer` will not decode, and why, in the user's words (the decoders' own errors
/// name a format and an internal stage).
fn refusal(why: String) -> image::ImageError {
    image::ImageError::IoError(std::io::Error::new(std::io::ErrorKind::InvalidData, why))
}

/// A JPEG cut off mid-scan is refused ([`fer_core::jpeg::is_complete`]: its end marker must
/// follow its first scan; whatever a camera appends after the image is fine).
pub fn refuse_truncated_jpeg(bytes: &[u8]) -> Result<(), image::ImageError> {
    if fer_core::jpeg::is_complete(bytes) {
        return Ok(());
    }
    Err(refusal("truncated JPEG (no end-of-image marker after its scan)".into()))
}

/// The largest image file read (a 16k x 16k PNG fits); a bigger "image" is a mistake.
pub const MAX_IMAGE_FILE_BYTES: u64 = 256 << 20;

/// One image file, decoded by [`decode_image`]; errors name the file. Only a regular file
/// of at most [`MAX_IMAGE_FILE_BYTES`] is read (not `/dev/zero`, not a 4 GB video).
pub fn open_image(path: &Path) -> Result<image::DynamicImage, ImageError> {
    let error = |source| ImageError::Decode { path: path.into(), source };
    let meta = std::fs::metadata(path).map_err(|e| error(image::ImageError::IoError(e)))?;
    let refuse = |why: String| error(image::ImageError::IoError(std::io::Error::other(why)));
    if !meta.is_file() {
        return Err(refuse("not a regular file".into()));
    }
    if meta.len() > MAX_IMAGE_FILE_BYTES {
        return Err(refuse(format!("{} bytes is too large for an image", meta.len())));
    }
    let bytes = std::fs::read(path).map_err(|e| error(image::ImageError::IoError(e)))?;
    decode_image(&bytes).map_err(error)
}

/// `[C, H, W]` floats in [0, 1] for a model taking `shape`.
pub fn load_image(path: &Path, shape: [usize; 3]) -> Result<Vec<f32>, ImageError> {
    image_input(open_image(path)?, shape)
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

/// A file `fer` reads as a picture, by its name (jpg, jpeg, png, bmp).
pub fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png" | "bmp"))
}

/// Every jpg/png/bmp under `dir`, sorted (so runs are repeatable).
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in `fuzz/seeds/image_decode` (the seeds, and any input that once failed the
    /// fuzz target) decodes or is refused without a panic; the whole ones decode.
    #[test]
    fn image_fuzz_seeds_replay() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/image_decode");
        // Inputs that stopped a campaign but are too slow to seed it: a 483-byte progressive
        // JPEG declaring 6168x12544 (within the limits; 0.65 s in release) hit libFuzzer's
        // 10 s limit under AddressSanitizer.
        let slow = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/image_decode");
        let mut decoded = 0;
        let files = std::fs::read_dir(&dir).unwrap().chain(std::fs::read_dir(&slow).unwrap());
        for entry in files {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            match decode_image(&bytes) {
                Ok(img) => {
                    decoded += 1;
                    image_input(img, [1, 48, 48]).unwrap();
                }
                Err(e) => assert!(path.to_string_lossy().contains("truncated"), "{}: {e}", path.display()),
            }
        }
        assert!(decoded >= 8, "{decoded} seeds and regressions decoded");
    }

    #[test]
    fn refusals_say_why_in_a_user_s_words() {
        assert_eq!(decode_image(b"").unwrap_err().to_string(), "empty file (0 bytes)");
        assert!(decode_image(b"hello").unwrap_err().to_string().starts_with("not a JPEG, PNG or BMP"));
        let mut jpg = Vec::new();
        image::RgbImage::new(8, 8)
            .write_to(&mut std::io::Cursor::new(&mut jpg), image::ImageFormat::Jpeg)
            .unwrap();
        assert!(decode_image(&jpg).is_ok());
        let cut = decode_image(&jpg[..jpg.len() - 2]).unwrap_err().to_string();
        assert!(cut.contains("truncated JPEG"), "{cut}");
    }
}
