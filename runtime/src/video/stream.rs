//! An MJPEG stream read as it arrives (`fer live --input -`): a camera program writing
//! JPEG frames to a pipe, such as `rpicam-vid --codec mjpeg -o -` for a Raspberry Pi camera
//! module (libcamera, which plain V4L2 capture does not reach) or `ffmpeg -f mjpeg -`.
//! Frames are cut at each start-of-image marker (FF D8 FF), as in a replayed stream file,
//! but from a bounded buffer, so an endless stream runs in flat memory.

use std::io::Read;

use super::Frame;
use super::replay::{JPEG_START, decode_jpeg};

/// A frame larger than this is damaged (no next marker): skipped, not buffered forever.
pub const MAX_FRAME_BYTES: usize = 16 << 20;
const READ_BYTES: usize = 64 << 10;

pub struct MjpegStream<R> {
    reader: R,
    name: String,
    buf: Vec<u8>,
    /// How far `buf` was searched for a marker (so each byte is scanned once).
    scanned: usize,
    next_index: u64,
    at_end: bool,
}

impl<R: Read> MjpegStream<R> {
    /// `name` labels the frames (`name#N`) and the errors.
    pub fn new(reader: R, name: impl Into<String>) -> Self {
        MjpegStream { reader, name: name.into(), buf: Vec::new(), scanned: 0, next_index: 0, at_end: false }
    }

    /// The offset of the first marker at or after `from`.
    fn marker(&self, from: usize) -> Option<usize> {
        self.buf.get(from..)?.windows(3).position(|w| w == JPEG_START).map(|p| p + from)
    }

    /// The next frame's bytes: from a marker to the next one (or the end of the stream).
    fn next_jpeg(&mut self) -> Option<Result<Vec<u8>, String>> {
        loop {
            // Drop what comes before the first marker (a stream joined mid-frame).
            if let Some(start) = self.marker(0) {
                if start > 0 {
                    self.buf.drain(..start);
                    self.scanned = 0;
                }
                if let Some(end) = self.marker(self.scanned.max(1)) {
                    self.scanned = 0;
                    return Some(Ok(self.buf.drain(..end).collect()));
                }
                self.scanned = self.buf.len().saturating_sub(2);
            } else if self.buf.len() > 2 {
                // No marker at all: keep the last two bytes, a marker may straddle reads.
                self.buf.drain(..self.buf.len() - 2);
            }
            if self.buf.len() > MAX_FRAME_BYTES {
                self.buf.clear();
                self.scanned = 0;
                return Some(Err(format!("a frame longer than {} MB without an end", MAX_FRAME_BYTES >> 20)));
            }
            if self.at_end {
                let rest = std::mem::take(&mut self.buf);
                return rest.starts_with(&JPEG_START).then_some(Ok(rest));
            }
            let old = self.buf.len();
            if self.buf.capacity() < old + READ_BYTES {
                // Doubling, but never past the largest frame kept plus one read.
                let cap =
                    (self.buf.capacity() * 2).max(old + READ_BYTES).min(MAX_FRAME_BYTES + 2 * READ_BYTES);
                self.buf.reserve_exact(cap - old);
            }
            self.buf.resize(old + READ_BYTES, 0);
            match self.reader.read(&mut self.buf[old..]) {
                Ok(0) => {
                    self.buf.truncate(old);
                    self.at_end = true;
                }
                Ok(n) => self.buf.truncate(old + n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => self.buf.truncate(old),
                Err(e) => {
                    self.buf.truncate(old);
                    self.at_end = true;
                    return Some(Err(format!("{}: {e}", self.name)));
                }
            }
        }
    }
}

impl<R: Read> Iterator for MjpegStream<R> {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        let jpeg = self.next_jpeg()?;
        let index = self.next_index;
        self.next_index += 1;
        let source = format!("{}#{index}", self.name);
        let image = jpeg.and_then(|b| decode_jpeg(&b).map_err(|e| format!("{source}: {e}")));
        Some(Frame { index, source, image })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::replay::tests::jpeg;

    /// Hands out its bytes a few at a time, as a pipe does.
    struct Trickle(Vec<u8>, usize, usize);

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.2.min(out.len()).min(self.0.len() - self.1);
            out[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }

    #[test]
    fn frames_arrive_whole_from_small_reads_and_a_damaged_one_is_an_error() {
        let mut bytes = b"garbage before the first frame".to_vec();
        bytes.extend(jpeg(10));
        let mut broken = jpeg(20);
        broken.truncate(120);
        bytes.extend(broken);
        bytes.extend(jpeg(30));
        for chunk in [1, 7, 4096] {
            let frames: Vec<Frame> = MjpegStream::new(Trickle(bytes.clone(), 0, chunk), "stdin").collect();
            assert_eq!(frames.len(), 3, "reads of {chunk} bytes");
            let img = frames[0].image.as_ref().unwrap();
            assert_eq!((img.width(), img.height()), (16, 8));
            assert!(frames[1].image.as_ref().unwrap_err().starts_with("stdin#1: "));
            assert!((frames[2].image.as_ref().unwrap().get_pixel(3, 3)[0] as i32 - 30).abs() <= 2);
            assert_eq!(frames[2].index, 2);
        }
    }

    /// Every file in `fuzz/seeds/mjpeg_stream` (the seeds, and any input that once failed
    /// the fuzz target) goes through the target's checks: no panic, and the streaming and
    /// whole-file splitters agree, for several read sizes.
    #[test]
    fn mjpeg_fuzz_seeds_replay() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/mjpeg_stream");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            let Some((&chunk, bytes)) = data.split_first() else { continue };
            for chunk in [chunk as usize + 1, 1, 4096] {
                let frames = MjpegStream::new(Trickle(bytes.to_vec(), 0, chunk), "seed").count();
                assert_eq!(frames, crate::video::replay::split_mjpeg(bytes).len());
            }
            n += 1;
        }
        assert!(n >= 3, "{n} seeds in {}", dir.display());
    }

    #[test]
    fn no_frames_in_noise_and_an_endless_frame_is_cut() {
        let noise = vec![0x42u8; 300_000];
        assert_eq!(MjpegStream::new(Trickle(noise, 0, 999), "noise").count(), 0);
        let mut endless = jpeg(5)[..3].to_vec();
        endless.resize(MAX_FRAME_BYTES + READ_BYTES * 2, 0x11);
        let mut s = MjpegStream::new(&endless[..], "pipe");
        let first = s.next().unwrap();
        assert!(first.image.unwrap_err().contains("without an end"));
        assert!(s.buf.capacity() <= MAX_FRAME_BYTES + 2 * READ_BYTES, "the buffer stays bounded");
    }
}
