//! Any bytes as the MJPEG stream of `fer live --input -`, arriving in reads of uneven sizes:
//! no panic, no hang, and the streaming splitter cuts the same frames as the replay's
//! whole-file splitter (`split_mjpeg`), so a piped stream and a saved one read alike.
#![no_main]

use std::io::Read;

use fer_runtime::video::MjpegStream;
use fer_runtime::video::replay::split_mjpeg;
use libfuzzer_sys::fuzz_target;

/// A pipe that hands out the bytes in chunks whose sizes the input's first byte picks.
struct Chunked<'a> {
    bytes: &'a [u8],
    chunk: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.chunk.min(out.len()).min(self.bytes.len());
        out[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, bytes)) = data.split_first() else { return };
    let stream = MjpegStream::new(Chunked { bytes, chunk: chunk as usize + 1 }, "fuzz");
    let mut frames = 0;
    for frame in stream {
        if let Ok(img) = &frame.image {
            assert!(img.width() > 0 && img.height() > 0);
        }
        frames += 1;
    }
    assert_eq!(frames, split_mjpeg(bytes).len(), "the stream and the file split differently");
});
