//! A borrowed RGB frame and the two resamplings the pipeline makes of it: the letterboxed
//! detector input, and the rotated face crop the classifier reads.

use alloc::vec::Vec;
use core::fmt;

/// Pixels that do not make the frame their size says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameError {
    pub width: usize,
    pub height: usize,
    pub bytes: usize,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (w, h) = (self.width, self.height);
        write!(f, "a {w}x{h} RGB frame needs {} bytes, got {}", w * h * 3, self.bytes)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}

/// 8-bit RGB pixels, row-major, `width * height * 3` bytes.
#[derive(Clone, Copy, Debug)]
pub struct RgbFrame<'a> {
    pub width: usize,
    pub height: usize,
    pub pixels: &'a [u8],
}

impl<'a> RgbFrame<'a> {
    pub fn new(width: usize, height: usize, pixels: &'a [u8]) -> Result<RgbFrame<'a>, FrameError> {
        if width == 0 || height == 0 || pixels.len() != width.saturating_mul(height).saturating_mul(3) {
            return Err(FrameError { width, height, bytes: pixels.len() });
        }
        Ok(RgbFrame { width, height, pixels })
    }

    /// Bilinear sample of channel `c` at `(x, y)`, pixel centres at integers (pixel `i`
    /// spans `[i - 0.5, i + 0.5]` here, `[i, i + 1]` in detection coordinates); outside
    /// the frame, `None`.
    #[inline]
    fn sample(&self, x: f32, y: f32, c: usize) -> Option<f32> {
        if !(x > -1.0 && y > -1.0 && x < self.width as f32 && y < self.height as f32) {
            return None;
        }
        let (x0, y0) = (libm::floorf(x), libm::floorf(y));
        let (fx, fy) = (x - x0, y - y0);
        let (w, h) = (self.width as isize, self.height as isize);
        let px = |xi: isize, yi: isize| {
            let (xi, yi) = (xi.clamp(0, w - 1) as usize, yi.clamp(0, h - 1) as usize);
            self.pixels[(yi * self.width + xi) * 3 + c] as f32
        };
        let (xi, yi) = (x0 as isize, y0 as isize);
        let top = px(xi, yi) * (1.0 - fx) + px(xi + 1, yi) * fx;
        let bottom = px(xi, yi + 1) * (1.0 - fx) + px(xi + 1, yi + 1) * fx;
        Some(top * (1.0 - fy) + bottom * fy)
    }

    /// Gray value at `(x, y)`, bilinear, with the `image` crate's luma weights (Rec. 709),
    /// which is how the trainer turns colour datasets gray.
    #[inline]
    fn sample_gray(&self, x: f32, y: f32) -> Option<f32> {
        Some(
            0.2126 * self.sample(x, y, 0)?
                + 0.7152 * self.sample(x, y, 1)?
                + 0.0722 * self.sample(x, y, 2)?,
        )
    }
}

/// How a frame was fitted into the detector's square input: the frame is centred in a
/// square of side `max(width, height)` with black bars, then scaled to the input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    /// Side of the square, frame pixels.
    pub side: f32,
    /// Bars on the left and top, frame pixels.
    pub pad_x: f32,
    pub pad_y: f32,
}

impl Letterbox {
    pub fn of(width: usize, height: usize) -> Letterbox {
        let side = width.max(height) as f32;
        Letterbox { side, pad_x: (side - width as f32) / 2.0, pad_y: (side - height as f32) / 2.0 }
    }

    /// `(sx, ox, sy, oy)`: maps [0, 1] square coordinates to frame pixels (`x * sx + ox`).
    pub fn to_frame(&self) -> (f32, f32, f32, f32) {
        (self.side, -self.pad_x, self.side, -self.pad_y)
    }
}

/// Writes `frame`, letterboxed and resized (bilinear) to `size x size`, into `out` as
/// `[3, size, size]` floats `pixel * scale + offset` (BlazeFace: 1/127.5, -1). Bars are
/// 0, the network's own padding value (mid-gray): black bars (-1) drive BlazeFace's
/// head activations to -10^4, far outside what real faces give, which wastes the int8
/// detector's range (and the float detector finds the same faces either way).
pub fn letterbox_into(frame: &RgbFrame, size: usize, scale: f32, offset: f32, out: &mut [f32]) -> Letterbox {
    let lb = Letterbox::of(frame.width, frame.height);
    let step = lb.side / size as f32;
    let plane = size * size;
    debug_assert_eq!(out.len(), 3 * plane);
    // The bilinear taps of every column, computed once for all rows (the hot loop then
    // only reads four pixels per output pixel and channel).
    let cols: Vec<Option<(usize, usize, f32)>> =
        (0..size).map(|u| taps((u as f32 + 0.5) * step - 0.5 - lb.pad_x, frame.width)).collect();
    let px = frame.pixels;
    for v in 0..size {
        let row = taps((v as f32 + 0.5) * step - 0.5 - lb.pad_y, frame.height);
        for (u, col) in cols.iter().enumerate() {
            let at = v * size + u;
            let (Some((y0, y1, fy)), Some((x0, x1, fx))) = (row, *col) else {
                for c in 0..3 {
                    out[c * plane + at] = 0.0;
                }
                continue;
            };
            let (r0, r1) = (y0 * frame.width, y1 * frame.width);
            let [a, b, c_, d] = [(r0 + x0) * 3, (r0 + x1) * 3, (r1 + x0) * 3, (r1 + x1) * 3];
            for c in 0..3 {
                let top = px[a + c] as f32 * (1.0 - fx) + px[b + c] as f32 * fx;
                let bottom = px[c_ + c] as f32 * (1.0 - fx) + px[d + c] as f32 * fx;
                out[c * plane + at] = (top * (1.0 - fy) + bottom * fy) * scale + offset;
            }
        }
    }
    lb
}

/// The two pixel indices and the weight of the second for a bilinear sample at `x` (pixel
/// centres at integers) along an axis of `len` pixels, as [`RgbFrame::sample`] takes them;
/// `None` outside.
fn taps(x: f32, len: usize) -> Option<(usize, usize, f32)> {
    if !(x > -1.0 && x < len as f32) {
        return None;
    }
    let x0 = libm::floorf(x);
    let last = len as isize - 1;
    let i0 = (x0 as isize).clamp(0, last) as usize;
    let i1 = (x0 as isize + 1).clamp(0, last) as usize;
    Some((i0, i1, x - x0))
}

/// A square face crop in frame pixels: centre, side, and the rotation (radians) that makes
/// the eyes level.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crop {
    pub cx: f32,
    pub cy: f32,
    pub side: f32,
    pub angle: f32,
}

/// How a detection becomes the square the classifier sees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CropOptions {
    /// Side = the box's larger side times (1 + margin).
    pub margin: f32,
    /// Centre moved down by this fraction of the box height (negative: up).
    pub shift_down: f32,
    /// Rotate so that the eyes are level.
    pub align: bool,
}

/// The defaults frame a face as FER2013 does. BlazeFace run on the 3,589 `public_test` crops
/// finds a face in 3,254; its median box is 41.6 of the 48 pixels, centred 3.3 pixels below
/// the crop's centre: FER2013's crop is 1.15 box sides wide, centred 8% of the box height
/// above the box's centre (`scripts/crop-calibration.sh` measures it).
impl Default for CropOptions {
    fn default() -> Self {
        CropOptions { margin: 0.15, shift_down: -0.08, align: true }
    }
}

/// The largest eye-line roll the crop levels (25 degrees, in radians): about twice the
/// spread of FER2013's own eye lines (±12.7 degrees). Past it, BlazeFace's eye keypoints are
/// more often a guess than a tilted head (hands over the face put an eye on a knuckle), and
/// turning the face by a wrong 45 degrees costs the classifier more than leaving a tilt
/// (docs/app.md: on FER2013's crops the limit changes no answer's correctness).
pub const MAX_ROLL: f32 = 0.436_332_3;

/// The crop of a detection (frame pixels).
pub fn crop_of(d: &super::decode::Detection, o: &CropOptions) -> Crop {
    Crop { cx: d.cx, cy: d.cy + o.shift_down * d.h, side: d.w.max(d.h) * (1.0 + o.margin), angle: roll(d, o) }
}

/// The rotation that levels the eyes: 0 without alignment, beyond [`MAX_ROLL`], or when the
/// eyes give no angle.
fn roll(d: &super::decode::Detection, o: &CropOptions) -> f32 {
    if !o.align {
        return 0.0;
    }
    let [right_eye, left_eye] = [d.keypoints[0], d.keypoints[1]];
    // A profile face can put both eyes on one point; atan2(0, 0) is 0, fine.
    let angle = libm::atan2f(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0]);
    if angle.is_finite() && angle.abs() <= MAX_ROLL { angle } else { 0.0 }
}

/// Samples `crop` into `out` as `[channels, size, size]` floats in [0, 1] (1 channel: gray;
/// 3: RGB). Outside the frame, the nearest edge pixel is repeated (the crop of a face at
/// the border).
pub fn crop_into(frame: &RgbFrame, crop: &Crop, channels: usize, size: usize, out: &mut [f32]) {
    // libm on every target: native and WebAssembly crops agree to the bit.
    let (sin, cos) = libm::sincosf(crop.angle);
    let step = crop.side / size as f32;
    let plane = size * size;
    // Crop coordinates are continuous (pixel i spans [i, i + 1]); samples are at centres.
    let clamp = |x: f32, y: f32| {
        ((x - 0.5).clamp(0.0, frame.width as f32 - 1.0), (y - 0.5).clamp(0.0, frame.height as f32 - 1.0))
    };
    for v in 0..size {
        let dy = (v as f32 + 0.5) * step - crop.side / 2.0;
        for u in 0..size {
            let dx = (u as f32 + 0.5) * step - crop.side / 2.0;
            let (x, y) = clamp(crop.cx + cos * dx - sin * dy, crop.cy + sin * dx + cos * dy);
            if channels == 1 {
                out[v * size + u] = frame.sample_gray(x, y).unwrap_or(0.0) / 255.0;
            } else {
                for c in 0..channels.min(3) {
                    out[c * plane + v * size + u] = frame.sample(x, y, c).unwrap_or(0.0) / 255.0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_size_is_checked() {
        assert!(RgbFrame::new(2, 2, &[0; 11]).unwrap_err().to_string().contains("12 bytes"));
        assert!(RgbFrame::new(0, 2, &[]).is_err());
    }

    #[test]
    fn letterbox_centres_a_wide_frame_between_zero_bars() {
        // 4x2 white frame into 4x4: rows 0 and 3 are bars, rows 1-2 the frame.
        let px = vec![255u8; 4 * 2 * 3];
        let f = RgbFrame::new(4, 2, &px).unwrap();
        let mut out = vec![0f32; 3 * 16];
        let lb = letterbox_into(&f, 4, 1.0 / 127.5, -1.0, &mut out);
        assert_eq!(lb, Letterbox { side: 4.0, pad_x: 0.0, pad_y: 1.0 });
        for c in 0..3 {
            let p = &out[c * 16..][..16];
            assert!(p[..4].iter().all(|&v| v == 0.0), "{p:?}");
            assert!(p[4..12].iter().all(|&v| (v - 1.0).abs() < 1e-6), "{p:?}");
            assert!(p[12..].iter().all(|&v| v == 0.0), "{p:?}");
        }
        // A point at the square's centre maps to the frame's centre.
        let (sx, ox, sy, oy) = lb.to_frame();
        assert_eq!((0.5 * sx + ox, 0.5 * sy + oy), (2.0, 1.0));
    }

    #[test]
    fn letterbox_taps_sample_as_the_per_pixel_path_does() {
        // An odd-sized, textured frame: every output pixel equals a per-pixel bilinear sample.
        let (w, h) = (37usize, 23usize);
        let px: Vec<u8> = (0..w * h * 3).map(|i| (i * 31 % 251) as u8).collect();
        let f = RgbFrame::new(w, h, &px).unwrap();
        let size = 16;
        let mut out = vec![0f32; 3 * size * size];
        let lb = letterbox_into(&f, size, 1.0 / 127.5, -1.0, &mut out);
        let step = lb.side / size as f32;
        for v in 0..size {
            for u in 0..size {
                let (x, y) =
                    ((u as f32 + 0.5) * step - 0.5 - lb.pad_x, (v as f32 + 0.5) * step - 0.5 - lb.pad_y);
                for c in 0..3 {
                    let want = f.sample(x, y, c).map_or(0.0, |v| v / 127.5 - 1.0);
                    let got = out[c * size * size + v * size + u];
                    assert!((got - want).abs() < 1e-5, "({u}, {v}, {c}): {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn crop_rotates_about_its_centre() {
        // A 9x9 frame, black with a white pixel right of the centre.
        let mut px = vec![0u8; 9 * 9 * 3];
        px[(4 * 9 + 6) * 3..][..3].copy_from_slice(&[255; 3]);
        let f = RgbFrame::new(9, 9, &px).unwrap();
        let mut out = vec![0f32; 9 * 9];
        // Unrotated, 1:1: the crop is the frame.
        crop_into(&f, &Crop { cx: 4.5, cy: 4.5, side: 9.0, angle: 0.0 }, 1, 9, &mut out);
        assert!((out[4 * 9 + 6] - 1.0).abs() < 1e-3);
        // Rotated by 90 degrees: the crop's "right" points down the frame, so the white
        // pixel (frame right of centre) shows above the crop's centre.
        crop_into(
            &f,
            &Crop { cx: 4.5, cy: 4.5, side: 9.0, angle: core::f32::consts::FRAC_PI_2 },
            1,
            9,
            &mut out,
        );
        let brightest = (0..81).max_by(|&a, &b| out[a].total_cmp(&out[b])).unwrap();
        assert_eq!((brightest % 9, brightest / 9), (4, 2), "{out:?}");
    }

    /// A detection with its eyes at `right` and `left` (frame pixels).
    fn eyes(right: [f32; 2], left: [f32; 2]) -> crate::vision::decode::Detection {
        let mut d = crate::vision::decode::Detection {
            cx: 50.0,
            cy: 50.0,
            w: 40.0,
            h: 40.0,
            score: 0.9,
            keypoints: [[0.0; 2]; 6],
        };
        d.keypoints[0] = right;
        d.keypoints[1] = left;
        d
    }

    #[test]
    fn the_crop_levels_eyes_up_to_the_roll_limit_and_not_past_it() {
        let o = CropOptions::default();
        let at = |deg: f32| {
            let r = deg.to_radians();
            crop_of(&eyes([40.0, 40.0], [40.0 + 20.0 * libm::cosf(r), 40.0 + 20.0 * libm::sinf(r)]), &o).angle
        };
        assert!((at(10.0) - 10f32.to_radians()).abs() < 1e-5);
        assert!((at(-24.0) + 24f32.to_radians()).abs() < 1e-5);
        // The afraid woman of ../shared/data/photos/6.png: hands over her mouth, BlazeFace's
        // eye keypoints 45 degrees apart; her face is upright.
        let afraid = eyes([168.71896, 260.9582], [210.9375, 218.73962]);
        assert_eq!(crop_of(&afraid, &o).angle, 0.0);
        assert_eq!(at(26.0), 0.0);
        assert_eq!(at(-90.0), 0.0);
        assert_eq!(crop_of(&eyes([40.0, 40.0], [60.0, 45.0]), &CropOptions { align: false, ..o }).angle, 0.0);
    }
}
