//! Replaying recorded frames: a folder (or list) of images, or an MJPEG stream file (JPEG
//! images back to back, as `ffmpeg -f mjpeg` and many IP cameras write them).

use std::path::{Path, PathBuf};

use super::VideoError;

/// One frame from a replay or a camera, decoded, or why it could not be decoded (the
/// caller skips and counts it).
#[derive(Debug)]
pub struct Frame {
    /// Position in the replay, from 0.
    pub index: u64,
    /// `path` or `path#N` (the N-th JPEG of a stream).
    pub source: String,
    pub image: Result<image::RgbImage, String>,
}

enum Item {
    File(PathBuf),
    /// Byte range of one JPEG inside a stream file's bytes.
    Jpeg {
        stream: usize,
        start: usize,
        end: usize,
    },
}

/// Frames from image files and MJPEG streams, in order, `repeat` times over.
pub struct Replay {
    items: Vec<Item>,
    streams: Vec<(PathBuf, Vec<u8>)>,
    repeat: u64,
    next: u64,
}

fn is_mjpeg(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "mjpeg" | "mjpg"))
}

/// A JPEG image's first bytes: the start-of-image marker and the next marker's lead byte.
pub const JPEG_START: [u8; 3] = [0xFF, 0xD8, 0xFF];

/// Byte ranges of the JPEG images in an MJPEG stream: each from a start-of-image marker
/// (FF D8 FF) to the next one (or the end). A damaged image stays one (undecodable) frame.
pub fn split_mjpeg(bytes: &[u8]) -> Vec<(usize, usize)> {
    let starts: Vec<usize> =
        bytes.windows(3).enumerate().filter(|(_, w)| *w == JPEG_START).map(|(i, _)| i).collect();
    starts.iter().enumerate().map(|(k, &s)| (s, starts.get(k + 1).copied().unwrap_or(bytes.len()))).collect()
}

/// One JPEG image (an MJPEG stream's or a camera's frame) decoded to RGB.
pub fn decode_jpeg(bytes: &[u8]) -> Result<image::RgbImage, image::ImageError> {
    crate::preprocess::refuse_truncated_jpeg(bytes)?;
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), image::ImageFormat::Jpeg);
    reader.limits(crate::preprocess::image_limits());
    reader.decode().map(|i| i.into_rgb8())
}

impl Replay {
    /// `path`: an image, a folder of images (sorted, recursively), or an `.mjpeg` stream.
    pub fn open(paths: &[PathBuf], repeat: u64) -> Result<Replay, VideoError> {
        let mut r = Replay { items: Vec::new(), streams: Vec::new(), repeat: repeat.max(1), next: 0 };
        for p in paths {
            if p.is_dir() {
                let files = crate::preprocess::image_files(p)?;
                if files.is_empty() {
                    return Err(VideoError::NoFrames {
                        path: p.clone(),
                        what: "no jpg/png/bmp images in this folder",
                    });
                }
                r.items.extend(files.into_iter().map(Item::File));
            } else if is_mjpeg(p) {
                let bytes =
                    std::fs::read(p).map_err(|source| VideoError::Read { path: p.clone(), source })?;
                let ranges = split_mjpeg(&bytes);
                if ranges.is_empty() {
                    return Err(VideoError::NoFrames {
                        path: p.clone(),
                        what: "no JPEG image in this MJPEG stream",
                    });
                }
                let stream = r.streams.len();
                r.items.extend(ranges.into_iter().map(|(start, end)| Item::Jpeg { stream, start, end }));
                r.streams.push((p.clone(), bytes));
            } else if p.is_file() && crate::preprocess::is_image(p) {
                r.items.push(Item::File(p.clone()));
            } else if !p.exists() {
                return Err(VideoError::NoFrames { path: p.clone(), what: "no such file or folder" });
            } else {
                let what = "not an image, a folder of images or an .mjpeg stream";
                return Err(VideoError::NoFrames { path: p.clone(), what });
            }
        }
        if r.items.is_empty() {
            return Err(VideoError::Nothing);
        }
        Ok(r)
    }

    /// Frames in one pass.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Frames in all passes.
    pub fn total(&self) -> u64 {
        self.items.len() as u64 * self.repeat
    }
}

impl Iterator for Replay {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        if self.next >= self.total() {
            return None;
        }
        let index = self.next;
        self.next += 1;
        let (source, image) = match &self.items[(index % self.items.len() as u64) as usize] {
            Item::File(p) => (
                p.display().to_string(),
                crate::preprocess::open_image(p).map(|i| i.into_rgb8()).map_err(|e| e.to_string()),
            ),
            Item::Jpeg { stream, start, end } => {
                let (path, bytes) = &self.streams[*stream];
                let name = format!("{}#{}", path.display(), start);
                let img = decode_jpeg(&bytes[*start..*end]).map_err(|e| format!("{name}: {e}"));
                (name, img)
            }
        };
        Some(Frame { index, source, image })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 16x8 gray JPEG of value `v` (also the stream tests' frames).
    pub(crate) fn jpeg(v: u8) -> Vec<u8> {
        let mut out = Vec::new();
        image::RgbImage::from_pixel(16, 8, image::Rgb([v, v, v]))
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Jpeg)
            .unwrap();
        out
    }

    #[test]
    fn an_mjpeg_stream_replays_frame_by_frame_and_a_damaged_frame_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut stream = jpeg(10);
        let mut broken = jpeg(20);
        broken.truncate(broken.len() / 3);
        stream.extend(&broken);
        stream.extend(jpeg(30));
        let path = dir.path().join("clip.mjpeg");
        std::fs::write(&path, &stream).unwrap();
        assert_eq!(split_mjpeg(&stream).len(), 3);
        let frames: Vec<Frame> = Replay::open(&[path], 2).unwrap().collect();
        assert_eq!(frames.len(), 6);
        assert_eq!(frames[0].image.as_ref().unwrap().dimensions(), (16, 8));
        assert!(
            frames[1].image.as_ref().is_err_and(|e| e.contains("clip.mjpeg#")),
            "the truncated JPEG is named"
        );
        assert!(frames[5].image.is_ok());
        assert_eq!(frames[5].index, 5);
    }

    #[test]
    fn folders_replay_sorted_and_bad_paths_are_named() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.png", "a.png"] {
            image::RgbImage::new(4, 4).save(dir.path().join(name)).unwrap();
        }
        let r = Replay::open(&[dir.path().to_path_buf()], 1).unwrap();
        let names: Vec<String> = r.map(|f| f.source).collect();
        assert!(names[0].ends_with("a.png") && names[1].ends_with("b.png"), "{names:?}");
        let e = Replay::open(&[dir.path().join("missing")], 1).err().unwrap().to_string();
        assert!(e.contains("missing"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        assert!(
            Replay::open(&[empty.path().to_path_buf()], 1).err().unwrap().to_string().contains("no jpg/png")
        );
    }
}
