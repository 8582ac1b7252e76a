//! What a board's display shows: the 48x48 face it classified, scaled 2x, with the overlay
//! of `fer live` (box, label, probability bars) beside it. `no_std` and allocation-free: the
//! firmware draws this scene on its panel (or a framebuffer in RAM under QEMU), and the host
//! draws the same scene from the same model and face to check the firmware pixel for pixel.

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;

use crate::engine::{Engine, EngineError};
use crate::format::Model;
use crate::overlay::{FaceOverlay, draw_face};
use crate::scores::{argmax, softmax_into};

/// The scene's size in pixels (a 240x135 or 240x240 panel shows it whole).
pub const WIDTH: u32 = 224;
pub const HEIGHT: u32 = 112;
/// The classifier's input: a 48x48 gray face.
pub const FACE: usize = 48;
/// Most classes a scene shows (the bars need 11 pixels each).
pub const MAX_CLASSES: usize = 8;
const SCALE: usize = 2;
/// Where the scaled face sits: room for the label above it, the bars to its right.
const FACE_X: i32 = 4;
const FACE_Y: i32 = 14;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScreenError {
    Engine(EngineError),
    /// The model does not take one 48x48 gray image.
    NotAFaceClassifier,
    /// The model has more classes than the scene shows.
    TooManyClasses(usize),
}

impl From<EngineError> for ScreenError {
    fn from(e: EngineError) -> Self {
        ScreenError::Engine(e)
    }
}

/// One face's result: the probabilities of the first `classes` entries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recognition {
    pub classes: usize,
    pub probabilities: [f32; MAX_CLASSES],
    pub best: usize,
}

/// Puts a 48x48 gray face (row-major, 0..=255 read as the model's [0, 1] input) in the
/// arena as the model's input.
pub fn set_face(engine: &Engine, arena: &mut [u8], face: &[u8]) -> Result<(), ScreenError> {
    if engine.input().shape != [1, FACE, FACE] || face.len() != FACE * FACE {
        return Err(ScreenError::NotAFaceClassifier);
    }
    Ok(engine.set_input_fn(arena, |i| face[i] as f32 / 255.0)?)
}

/// Classifies a 48x48 gray face (as [`set_face`] takes it).
pub fn classify(engine: &Engine, arena: &mut [u8], face: &[u8]) -> Result<Recognition, ScreenError> {
    set_face(engine, arena, face)?;
    let classes = engine.output().len();
    if classes > MAX_CLASSES {
        return Err(ScreenError::TooManyClasses(classes));
    }
    engine.run(arena)?;
    let mut logits = [0f32; MAX_CLASSES];
    engine.output_f32(arena, &mut logits[..classes]);
    let mut probabilities = [0f32; MAX_CLASSES];
    softmax_into(&logits[..classes], &mut probabilities[..classes]);
    let best = argmax(&probabilities[..classes]);
    Ok(Recognition { classes, probabilities, best })
}

/// A probability in thousandths, rounded: how the firmware prints it without pulling
/// core's float formatting (some 20 KB of flash) into the program.
pub fn permille(p: f32) -> u32 {
    (p.clamp(0.0, 1.0) * 1000.0 + 0.5) as u32
}

/// The model's class names, `"?"` where it has none.
pub fn labels<'a>(model: &Model<'a>, classes: usize) -> [&'a str; MAX_CLASSES] {
    let mut names = ["?"; MAX_CLASSES];
    for (k, n) in names.iter_mut().enumerate().take(classes) {
        *n = model.label(k).unwrap_or("?");
    }
    names
}

/// Draws the scene: black, the face scaled 2x, its box, label and probability bars.
pub fn draw<D: DrawTarget<Color = Rgb888>>(
    target: &mut D,
    face: &[u8],
    labels: &[&str],
    r: &Recognition,
) -> Result<(), D::Error> {
    target.clear(Rgb888::BLACK)?;
    let side = FACE * SCALE;
    let pixels = (0..side * side).map(|i| {
        let (x, y) = (i % side, i / side);
        let v = face.get((y / SCALE) * FACE + x / SCALE).copied().unwrap_or(0);
        Pixel(Point::new(FACE_X + x as i32, FACE_Y + y as i32), Rgb888::new(v, v, v))
    });
    target.draw_iter(pixels)?;
    let overlay = FaceOverlay {
        bbox: [FACE_X, FACE_Y, side as i32, side as i32],
        keypoints: &[],
        labels: &labels[..r.classes.min(labels.len())],
        probabilities: &r.probabilities[..r.classes],
    };
    draw_face(target, &overlay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::{RgbBuffer, class_color};

    #[test]
    fn the_scene_shows_the_face_scaled_and_the_winning_box() {
        let face: std::vec::Vec<u8> = (0..FACE * FACE).map(|i| (i % 251) as u8).collect();
        let mut probabilities = [0f32; MAX_CLASSES];
        probabilities[..3].copy_from_slice(&[0.1, 0.7, 0.2]);
        let r = Recognition { classes: 3, probabilities, best: 1 };
        let mut px = std::vec![0u8; (WIDTH * HEIGHT * 3) as usize];
        let mut fb = RgbBuffer::new(WIDTH, HEIGHT, &mut px).unwrap();
        draw(&mut fb, &face, &["a", "b", "c"], &r).unwrap();
        let at = |x: i32, y: i32| {
            let i = (y as usize * WIDTH as usize + x as usize) * 3;
            [px[i], px[i + 1], px[i + 2]]
        };
        // Face pixel (10, 20) lands on the 2x2 block at (4 + 20, 14 + 40), inside the box.
        let v = face[20 * FACE + 10];
        assert_eq!(at(FACE_X + 20, FACE_Y + 40), [v, v, v]);
        assert_eq!(at(FACE_X + 21, FACE_Y + 41), [v, v, v]);
        let c = class_color(1);
        assert_eq!(at(FACE_X, FACE_Y + 50), [c.r(), c.g(), c.b()], "the box has the winner's colour");
        assert_eq!(at(WIDTH as i32 - 1, HEIGHT as i32 - 1), [0, 0, 0]);
    }
}
