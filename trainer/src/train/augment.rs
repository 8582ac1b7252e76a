//! Real-time augmentation: rotation, zoom, shift, horizontal flip, brightness, contrast,
//! as Keras' `ImageDataGenerator` does them (one affine warp, edges filled with the nearest
//! pixel), then random erasing (Zhong et al. 2020: one rectangle filled with noise).
//!
//! Written here instead of through imageproc: the warp is fused with the conversion from
//! stored `u8` HWC pixels to the model's `f32` CHW input in [0, 1], so each image is
//! touched once on the training hot path.

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::data::ImageSpec;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Augment {
    /// Rotation range in degrees: a uniform angle in [-rotation, rotation].
    pub rotation: f32,
    /// Zoom range: scale in [1 - zoom, 1 + zoom] (above 1 magnifies).
    pub zoom: f32,
    /// Shift range as a fraction of width and height.
    pub shift: f32,
    /// Mirror left-right with probability 1/2.
    pub flip: bool,
    /// Add a uniform offset in [-brightness, brightness] (pixels in [0, 1]).
    pub brightness: f32,
    /// Scale contrast around the image mean by a factor in [1 - contrast, 1 + contrast].
    pub contrast: f32,
    /// Random erasing: with this probability, one rectangle of 2-33% of the image (aspect
    /// 0.3-3.3) is filled with uniform noise, so the net cannot lean on one face region.
    pub erase: f32,
}

impl Default for Augment {
    fn default() -> Self {
        Augment::none()
    }
}

impl Augment {
    pub fn none() -> Augment {
        Augment {
            rotation: 0.0,
            zoom: 0.0,
            shift: 0.0,
            flip: false,
            brightness: 0.0,
            contrast: 0.0,
            erase: 0.0,
        }
    }

    /// A common FER setting: +-10 degrees, 10% zoom and shift, flips, +-10% brightness and
    /// contrast.
    pub fn standard() -> Augment {
        Augment {
            rotation: 10.0,
            zoom: 0.1,
            shift: 0.1,
            flip: true,
            brightness: 0.1,
            contrast: 0.1,
            erase: 0.0,
        }
    }

    pub fn is_identity(&self) -> bool {
        *self == Augment::none()
    }

    pub fn validate(&self) -> Result<(), String> {
        let ranges = [
            ("rotation", self.rotation, 180.0),
            ("zoom", self.zoom, 0.9),
            ("shift", self.shift, 0.5),
            ("brightness", self.brightness, 1.0),
            ("contrast", self.contrast, 0.9),
            ("erase", self.erase, 1.0),
        ];
        for (name, v, max) in ranges {
            if !(v.is_finite() && (0.0..=max).contains(&v)) {
                return Err(format!("augment.{name} must be between 0 and {max}, got {v}"));
            }
        }
        Ok(())
    }
}

/// Stored pixels (`u8`, HWC) -> model input (`f32`, CHW, in [0, 1]).
pub fn to_input(src: &[u8], spec: ImageSpec, out: &mut [f32]) {
    let (c, hw) = (spec.channels as usize, (spec.width * spec.height) as usize);
    for p in 0..hw {
        for ch in 0..c {
            out[ch * hw + p] = src[p * c + ch] as f32 / 255.0;
        }
    }
}

/// Like [`to_input`], through a random augmentation drawn from `rng`. Returns whether the
/// image was mirrored (distillation's target is then the teacher's mirrored answer).
pub fn augment_into<R: Rng + ?Sized>(
    src: &[u8],
    spec: ImageSpec,
    aug: &Augment,
    rng: &mut R,
    out: &mut [f32],
) -> bool {
    let sym = |rng: &mut R, r: f32| if r > 0.0 { rng.random_range(-r..=r) } else { 0.0 };
    let angle = sym(rng, aug.rotation).to_radians();
    let scale = 1.0 + sym(rng, aug.zoom);
    let (w, h) = (spec.width as usize, spec.height as usize);
    let tx = sym(rng, aug.shift) * w as f32;
    let ty = sym(rng, aug.shift) * h as f32;
    let flip = aug.flip && rng.random::<bool>();
    let brightness = sym(rng, aug.brightness);
    let contrast = 1.0 + sym(rng, aug.contrast);

    let c = spec.channels as usize;
    let hw = w * h;
    let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
    let (sin, cos) = angle.sin_cos();
    let px = |x: usize, y: usize, ch: usize| src[(y * w + x) * c + ch] as f32;
    for y in 0..h {
        for x in 0..w {
            let xo = if flip { w - 1 - x } else { x };
            // Output pixel -> source pixel: undo shift, then rotation and zoom about the centre.
            let (dx, dy) = (xo as f32 - cx - tx, y as f32 - cy - ty);
            let sx = ((cos * dx + sin * dy) / scale + cx).clamp(0.0, w as f32 - 1.0);
            let sy = ((-sin * dx + cos * dy) / scale + cy).clamp(0.0, h as f32 - 1.0);
            let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
            let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
            let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
            for ch in 0..c {
                let top = px(x0, y0, ch) * (1.0 - fx) + px(x1, y0, ch) * fx;
                let bottom = px(x0, y1, ch) * (1.0 - fx) + px(x1, y1, ch) * fx;
                out[ch * hw + y * w + x] = (top * (1.0 - fy) + bottom * fy) / 255.0;
            }
        }
    }
    if brightness != 0.0 || contrast != 1.0 {
        for ch in 0..c {
            let plane = &mut out[ch * hw..(ch + 1) * hw];
            let mean = plane.iter().sum::<f32>() / hw as f32;
            for v in plane.iter_mut() {
                *v = ((*v - mean) * contrast + mean + brightness).clamp(0.0, 1.0);
            }
        }
    }
    // Drawn last, and only when enabled, so recipes without erasing keep their random streams.
    if aug.erase > 0.0 && rng.random::<f32>() < aug.erase {
        erase_rectangle(spec, rng, out);
    }
    flip
}

/// Fills one random rectangle (2-33% of the area, aspect 0.3-3.3) of every plane with noise.
fn erase_rectangle<R: Rng + ?Sized>(spec: ImageSpec, rng: &mut R, out: &mut [f32]) {
    let (w, h) = (spec.width as usize, spec.height as usize);
    let area = (w * h) as f32 * rng.random_range(0.02..=0.33f32);
    let aspect = rng.random_range(0.3f32.ln()..=3.3f32.ln()).exp();
    let rw = ((area * aspect).sqrt().round() as usize).clamp(1, w);
    let rh = ((area / aspect).sqrt().round() as usize).clamp(1, h);
    let (x0, y0) = (rng.random_range(0..=w - rw), rng.random_range(0..=h - rh));
    for plane in out.chunks_exact_mut(w * h) {
        for row in plane.chunks_exact_mut(w).skip(y0).take(rh) {
            for v in &mut row[x0..x0 + rw] {
                *v = rng.random::<f32>();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const SPEC: ImageSpec = ImageSpec { width: 8, height: 6, channels: 1 };

    fn ramp() -> Vec<u8> {
        (0..48).map(|i| (i * 5) as u8).collect()
    }

    #[test]
    fn no_augmentation_is_plain_scaling() {
        let mut a = vec![0.0; 48];
        let mut b = vec![0.0; 48];
        to_input(&ramp(), SPEC, &mut a);
        augment_into(&ramp(), SPEC, &Augment::none(), &mut ChaCha8Rng::seed_from_u64(1), &mut b);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-6);
        }
        assert_eq!(a[47], 235.0 / 255.0);
    }

    #[test]
    fn flip_mirrors_and_rgb_goes_to_planes() {
        let flip = Augment { flip: true, ..Augment::none() };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (mut plain, mut out) = (vec![0.0; 48], vec![0.0; 48]);
        to_input(&ramp(), SPEC, &mut plain);
        // Draw until a flip happens (p = 1/2 each).
        loop {
            let mirrored = augment_into(&ramp(), SPEC, &flip, &mut rng, &mut out);
            assert_eq!(mirrored, out != plain, "the flag says whether the image was mirrored");
            if mirrored {
                break;
            }
        }
        assert_eq!(out[0], plain[7]);
        assert_eq!(out[8 + 7], plain[8]);
        let rgb = ImageSpec { width: 2, height: 1, channels: 3 };
        let mut o = vec![0.0; 6];
        to_input(&[255, 0, 0, 0, 255, 0], rgb, &mut o);
        assert_eq!(o, vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn augmentation_is_seeded_and_stays_in_range() {
        let aug = Augment::standard();
        let spec = ImageSpec { width: 48, height: 48, channels: 1 };
        let src: Vec<u8> = (0..48 * 48).map(|i| (i % 256) as u8).collect();
        let (mut a, mut b) = (vec![0.0; 2304], vec![0.0; 2304]);
        augment_into(&src, spec, &aug, &mut ChaCha8Rng::seed_from_u64(9), &mut a);
        augment_into(&src, spec, &aug, &mut ChaCha8Rng::seed_from_u64(9), &mut b);
        assert_eq!(a, b);
        assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
        augment_into(&src, spec, &aug, &mut ChaCha8Rng::seed_from_u64(10), &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn erasing_fills_one_rectangle_with_noise() {
        let spec = ImageSpec { width: 48, height: 48, channels: 1 };
        let src = vec![128u8; 48 * 48];
        let aug = Augment { erase: 1.0, ..Augment::none() };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..20 {
            let mut out = vec![0.0; 2304];
            augment_into(&src, spec, &aug, &mut rng, &mut out);
            let changed: Vec<usize> = (0..2304).filter(|&i| (out[i] - 128.0 / 255.0).abs() > 1e-6).collect();
            // 2-33% of 2304 pixels, less the few noise values that land on 128/255.
            assert!((30..=800).contains(&changed.len()), "{} pixels erased", changed.len());
            // One rectangle: the changed pixels' bounding box is (nearly) all changed.
            let (xs, ys): (Vec<usize>, Vec<usize>) = changed.iter().map(|i| (i % 48, i / 48)).unzip();
            let bw = xs.iter().max().unwrap() - xs.iter().min().unwrap() + 1;
            let bh = ys.iter().max().unwrap() - ys.iter().min().unwrap() + 1;
            assert!(changed.len() * 100 >= bw * bh * 95, "{} of {bw}x{bh}", changed.len());
            assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
        }
        let mut plain = vec![0.0; 2304];
        let off = Augment { erase: 0.0, ..Augment::none() };
        augment_into(&src, spec, &off, &mut rng, &mut plain);
        assert!(plain.iter().all(|v| (v - 128.0 / 255.0).abs() < 1e-6));
    }

    #[test]
    fn out_of_range_settings_are_errors() {
        assert!(Augment::standard().validate().is_ok());
        assert!(Augment { rotation: -1.0, ..Augment::none() }.validate().is_err());
        assert!(Augment { zoom: f32::NAN, ..Augment::none() }.validate().is_err());
        assert!(Augment { shift: 0.7, ..Augment::none() }.validate().is_err());
        assert!(Augment { erase: 1.5, ..Augment::none() }.validate().is_err());
    }
}
