//! Where a board's 48x48 faces come from. `no_std` and allocation-free, for the firmware: a
//! still face in flash (the QEMU demo), or a camera whose gray frames are cut to the square
//! in their centre and shrunk to 48x48 (a board with no detector: the user faces a guide
//! box drawn on the display).

use crate::screen::FACE;

/// Gives the classifier its next face: 48x48 gray, row-major.
pub trait FaceSource {
    type Error;
    fn next_face(&mut self, face: &mut [u8; FACE * FACE]) -> Result<(), Self::Error>;
}

/// One face stored in flash, given again and again.
pub struct StillFace<'a>(pub &'a [u8; FACE * FACE]);

impl FaceSource for StillFace<'_> {
    type Error = core::convert::Infallible;
    fn next_face(&mut self, face: &mut [u8; FACE * FACE]) -> Result<(), Self::Error> {
        face.copy_from_slice(self.0);
        Ok(())
    }
}

/// A board's camera driver: captures one 8-bit gray frame into `buf` and returns its
/// `[width, height]` (row-major, `width * height <= buf.len()`).
pub trait Camera {
    type Error;
    fn capture(&mut self, buf: &mut [u8]) -> Result<[usize; 2], Self::Error>;
}

/// Why a camera gave no face.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CameraError<E> {
    Camera(E),
    /// The frame was smaller than 48x48, or larger than the buffer it was captured into.
    BadFrame {
        width: usize,
        height: usize,
    },
}

/// Faces from a camera: the centred square of each frame, shrunk to 48x48 by averaging
/// the source pixels each face pixel covers.
pub struct CentreCrop<'b, C: Camera> {
    pub camera: C,
    pub frame: &'b mut [u8],
}

impl<C: Camera> FaceSource for CentreCrop<'_, C> {
    type Error = CameraError<C::Error>;
    fn next_face(&mut self, face: &mut [u8; FACE * FACE]) -> Result<(), Self::Error> {
        let [w, h] = self.camera.capture(self.frame).map_err(CameraError::Camera)?;
        if w.min(h) < FACE || w.checked_mul(h).is_none_or(|n| n > self.frame.len()) {
            return Err(CameraError::BadFrame { width: w, height: h });
        }
        let side = w.min(h);
        let (x0, y0) = ((w - side) / 2, (h - side) / 2);
        for fy in 0..FACE {
            let (sy0, sy1) = (y0 + fy * side / FACE, y0 + (fy + 1) * side / FACE);
            for fx in 0..FACE {
                let (sx0, sx1) = (x0 + fx * side / FACE, x0 + (fx + 1) * side / FACE);
                let mut sum = 0u32;
                for row in self.frame[sy0 * w..sy1 * w].chunks_exact(w) {
                    sum += row[sx0..sx1].iter().map(|&v| v as u32).sum::<u32>();
                }
                let n = ((sy1 - sy0) * (sx1 - sx0)) as u32;
                face[fy * FACE + fx] = ((sum + n / 2) / n) as u8;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted camera: a `w x h` frame whose pixel is its column (mod 256), or an error.
    struct Scripted {
        size: [usize; 2],
        fail: bool,
    }

    impl Camera for Scripted {
        type Error = &'static str;
        fn capture(&mut self, buf: &mut [u8]) -> Result<[usize; 2], &'static str> {
            if self.fail {
                return Err("unplugged");
            }
            let [w, h] = self.size;
            for (i, v) in buf.iter_mut().take(w * h).enumerate() {
                *v = ((i % w) / 2) as u8;
            }
            Ok(self.size)
        }
    }

    #[test]
    fn a_centre_crop_shrinks_the_middle_square() {
        let mut frame = [0u8; 160 * 96];
        let mut src = CentreCrop { camera: Scripted { size: [160, 96], fail: false }, frame: &mut frame };
        let mut face = [0u8; FACE * FACE];
        src.next_face(&mut face).unwrap();
        // The square is columns 32..128; face pixel x covers columns 32 + 2x and 33 + 2x,
        // whose values are 16 + x each (column / 2).
        for y in [0, 20, 47] {
            for x in [0, 1, 30, 47] {
                assert_eq!(face[y * FACE + x], (16 + x) as u8, "({x}, {y})");
            }
        }
    }

    #[test]
    fn a_lost_camera_or_a_bad_frame_is_an_error() {
        let mut frame = [0u8; 64 * 64];
        let mut face = [0u8; FACE * FACE];
        let mut gone = CentreCrop { camera: Scripted { size: [64, 64], fail: true }, frame: &mut frame };
        assert_eq!(gone.next_face(&mut face), Err(CameraError::Camera("unplugged")));
        let mut small = CentreCrop { camera: Scripted { size: [40, 30], fail: false }, frame: &mut frame };
        assert_eq!(small.next_face(&mut face), Err(CameraError::BadFrame { width: 40, height: 30 }));
        let mut big = CentreCrop { camera: Scripted { size: [640, 480], fail: false }, frame: &mut frame };
        assert_eq!(big.next_face(&mut face), Err(CameraError::BadFrame { width: 640, height: 480 }));
        let still = [7u8; FACE * FACE];
        StillFace(&still).next_face(&mut face).unwrap();
        assert_eq!(face, still);
    }
}
