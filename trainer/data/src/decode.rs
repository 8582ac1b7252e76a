//! Image bytes -> model input (grayscale or RGB, resized to the model's size).

use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, ImageFormat};
use serde::{Deserialize, Serialize};

/// The shape a model takes its input in: `width` x `height`, 1 (gray) or 3 (RGB)
/// channels, pixels as `u8` in HWC order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSpec {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
}

impl ImageSpec {
    /// FER2013's native input: 48x48 grayscale.
    pub const FER48_GRAY: ImageSpec = ImageSpec { width: 48, height: 48, channels: 1 };

    /// Number of bytes of one decoded image.
    pub fn len(&self) -> usize {
        self.width as usize * self.height as usize * self.channels as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a stored image is, before conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Gray,
    Rgb,
}

/// Size and colour of a stored image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    pub width: u32,
    pub height: u32,
    pub color: Color,
}

/// The largest side a dataset image may declare; a corrupt header claiming more is refused
/// before anything is allocated (FER images are 48 to a few thousand pixels wide).
pub const MAX_SIDE: u32 = 16_384;

/// The largest image file read (a 16k x 16k PNG fits); a bigger "image" is a mistake.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// An image file's bytes: a regular file of at most [`MAX_FILE_BYTES`] (a manifest row that
/// names `/dev/zero` or a huge log file is refused, not read forever).
pub fn read_image_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("{} bytes is too large for an image (at most {})", meta.len(), MAX_FILE_BYTES));
    }
    std::fs::read(path).map_err(|e| format!("cannot read: {e}"))
}

/// Decodes jpg/png/bmp bytes, refusing truncated or corrupt files with a reason.
pub fn decode_any(bytes: &[u8]) -> Result<DynamicImage, String> {
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    let format = image::guess_format(bytes).map_err(|_| "not a JPEG, PNG or BMP image".to_string())?;
    if format == ImageFormat::Jpeg && !fer_core::jpeg::is_complete(bytes) {
        // The JPEG decoder fills a cut-off scan with grey instead of failing.
        return Err("truncated JPEG (no end-of-image marker after its scan)".into());
    }
    if !matches!(format, ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Bmp) {
        return Err(format!("{format:?} images are not supported (use jpg, png or bmp)"));
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| format!("corrupt {format:?}: {e}"))?;
    if img.width() == 0 || img.height() == 0 {
        return Err("image has zero size".into());
    }
    Ok(img)
}

fn info(img: &DynamicImage) -> ImageInfo {
    let color = if img.color().has_color() { Color::Rgb } else { Color::Gray };
    ImageInfo { width: img.width(), height: img.height(), color }
}

/// Decodes `bytes` into `spec`: converted to gray or RGB, resized (aspect not kept, as
/// Keras' `flow_from_directory` does) when the stored size differs.
pub fn decode_image(bytes: &[u8], spec: ImageSpec) -> Result<(Vec<u8>, ImageInfo), String> {
    let img = decode_any(bytes)?;
    let info = info(&img);
    Ok((convert(img, spec), info))
}

/// Converts a decoded image to `spec`.
pub fn convert(img: DynamicImage, spec: ImageSpec) -> Vec<u8> {
    let img = if img.width() != spec.width || img.height() != spec.height {
        img.resize_exact(spec.width, spec.height, FilterType::Triangle)
    } else {
        img
    };
    match spec.channels {
        1 => img.into_luma8().into_raw(),
        _ => img.into_rgb8().into_raw(),
    }
}

/// Converts FER2013 CSV pixels (48x48 gray) to `spec`.
pub fn from_gray48(gray: &[u8], spec: ImageSpec) -> Vec<u8> {
    if spec == ImageSpec::FER48_GRAY {
        return gray.to_vec();
    }
    let img = GrayImage::from_raw(48, 48, gray.to_vec()).expect("FER2013 rows hold 48x48 pixels");
    convert(DynamicImage::ImageLuma8(img), spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, Rgb};
    use std::io::Cursor;

    fn encode(img: &DynamicImage, f: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, f).unwrap();
        out.into_inner()
    }

    fn gradient(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| Rgb([(x * 4) as u8, (y * 4) as u8, 128])))
    }

    #[test]
    fn rgb_png_any_size_becomes_48x48_gray() {
        let bytes = encode(&gradient(60, 40), ImageFormat::Png);
        let (px, info) = decode_image(&bytes, ImageSpec::FER48_GRAY).unwrap();
        assert_eq!(px.len(), 48 * 48);
        assert_eq!(info, ImageInfo { width: 60, height: 40, color: Color::Rgb });
    }

    #[test]
    fn gray_jpeg_to_rgb_spec() {
        let g = DynamicImage::ImageLuma8(ImageBuffer::from_fn(48, 48, |x, _| Luma([x as u8 * 5])));
        let bytes = encode(&g, ImageFormat::Jpeg);
        let spec = ImageSpec { width: 32, height: 32, channels: 3 };
        let (px, info) = decode_image(&bytes, spec).unwrap();
        assert_eq!(px.len(), 32 * 32 * 3);
        assert_eq!(info.color, Color::Gray);
    }

    #[test]
    fn bad_bytes_are_refused_with_a_reason() {
        assert_eq!(decode_any(&[]).unwrap_err(), "empty file");
        assert!(decode_any(b"hello world, not an image").unwrap_err().contains("not a JPEG, PNG or BMP"));
        let jpg = encode(&gradient(48, 48), ImageFormat::Jpeg);
        let cut = &jpg[..jpg.len() / 2];
        assert!(decode_any(cut).unwrap_err().contains("truncated JPEG"), "{:?}", decode_any(cut).err());
        let png = encode(&gradient(48, 48), ImageFormat::Png);
        assert!(decode_any(&png[..png.len() / 2]).unwrap_err().starts_with("corrupt Png"));
        let mut flipped = png.clone();
        for b in &mut flipped[60..120] {
            *b ^= 0x5A;
        }
        assert!(decode_any(&flipped).is_err());
    }

    #[test]
    fn csv_pixels_pass_through_or_resize() {
        let gray: Vec<u8> = (0..48 * 48).map(|i| (i % 251) as u8).collect();
        assert_eq!(from_gray48(&gray, ImageSpec::FER48_GRAY), gray);
        let rgb = from_gray48(&gray, ImageSpec { width: 64, height: 64, channels: 3 });
        assert_eq!(rgb.len(), 64 * 64 * 3);
    }
}
