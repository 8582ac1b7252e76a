//! The recognition overlay: face box, keypoints, label and probability bars, drawn with
//! embedded-graphics onto any RGB draw target. `no_std`: `fer predict --annotate`, the live
//! window and the firmware's display share this code.

use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::mono_font::ascii::FONT_6X10;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Circle, PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};

use crate::scores::argmax;

/// What to draw for one face, in target pixels.
pub struct FaceOverlay<'a> {
    /// `[x, y, w, h]`.
    pub bbox: [i32; 4],
    pub keypoints: &'a [[i32; 2]],
    /// Class names, in output order.
    pub labels: &'a [&'a str],
    pub probabilities: &'a [f32],
}

/// A colour per class in FER2013 order (angry, disgust, fear, happy, sad, surprise,
/// neutral, contempt), cycled for other class counts.
pub fn class_color(class: usize) -> Rgb888 {
    const COLORS: [Rgb888; 8] = [
        Rgb888::new(230, 40, 40),
        Rgb888::new(120, 170, 30),
        Rgb888::new(160, 60, 200),
        Rgb888::new(250, 200, 0),
        Rgb888::new(40, 110, 230),
        Rgb888::new(250, 130, 20),
        Rgb888::new(200, 200, 200),
        Rgb888::new(0, 190, 190),
    ];
    COLORS[class % COLORS.len()]
}

/// [`draw_face`] for a face in frame-pixel floats (box `[x, y, w, h]`, up to eight
/// keypoints), each rounded to the nearest pixel: how the app and the browser draw theirs.
pub fn draw_face_at<D: DrawTarget<Color = Rgb888>>(
    target: &mut D,
    bbox: [f32; 4],
    keypoints: &[[f32; 2]],
    labels: &[&str],
    probabilities: &[f32],
) -> Result<(), D::Error> {
    let mut kps = [[0i32; 2]; 8];
    let n = keypoints.len().min(kps.len());
    for (k, p) in kps.iter_mut().zip(keypoints) {
        *k = [libm::roundf(p[0]) as i32, libm::roundf(p[1]) as i32];
    }
    let bbox = bbox.map(|v| libm::roundf(v) as i32);
    draw_face(target, &FaceOverlay { bbox, keypoints: &kps[..n], labels, probabilities })
}

/// Bar geometry: one row per class, `ROW` pixels high, names in 6x10 text.
const ROW: i32 = 11;
const BAR: i32 = 60;
const NAME: i32 = 6 * 8;

/// Draws one face: the box in its label's colour, the keypoints, the label above the box
/// and one probability bar per class beside it (right of the box when it fits, else left).
pub fn draw_face<D: DrawTarget<Color = Rgb888>>(target: &mut D, face: &FaceOverlay) -> Result<(), D::Error> {
    let [x, y, w, h] = face.bbox;
    let top = argmax(face.probabilities);
    let color = class_color(top);
    let stroke = (w.max(h) / 80).clamp(1, 4) as u32;
    Rectangle::new(Point::new(x, y), Size::new(w.max(1) as u32, h.max(1) as u32))
        .into_styled(PrimitiveStyle::with_stroke(color, stroke))
        .draw(target)?;
    for kp in face.keypoints {
        Circle::with_center(Point::new(kp[0], kp[1]), 2 + stroke)
            .into_styled(PrimitiveStyle::with_fill(Rgb888::new(0, 255, 120)))
            .draw(target)?;
    }

    // The label on a filled strip just above the box (inside it when the box touches the top).
    let name = face.labels.get(top).copied().unwrap_or("?");
    let mut buf = [0u8; 32];
    let text = label_text(name, face.probabilities.get(top).copied().unwrap_or(0.0), &mut buf);
    let strip_y = if y >= ROW { y - ROW } else { y };
    Rectangle::new(Point::new(x, strip_y), Size::new(6 * text.len() as u32 + 4, ROW as u32))
        .into_styled(PrimitiveStyle::with_fill(color))
        .draw(target)?;
    Text::with_baseline(
        text,
        Point::new(x + 2, strip_y),
        MonoTextStyle::new(&FONT_6X10, Rgb888::BLACK),
        Baseline::Top,
    )
    .draw(target)?;

    // Probability bars.
    let width = target.bounding_box().size.width as i32;
    let panel = NAME + BAR + 4;
    let bx = if x + w + 4 + panel <= width { x + w + 4 } else { (x - panel - 4).max(0) };
    for (i, p) in face.probabilities.iter().enumerate() {
        let row_y = y + i as i32 * ROW;
        let name = face.labels.get(i).copied().unwrap_or("?");
        let short = &name[..name.len().min(8)];
        Rectangle::new(Point::new(bx, row_y), Size::new(panel as u32, ROW as u32))
            .into_styled(PrimitiveStyle::with_fill(Rgb888::new(20, 20, 20)))
            .draw(target)?;
        Text::with_baseline(
            short,
            Point::new(bx + 1, row_y),
            MonoTextStyle::new(&FONT_6X10, Rgb888::WHITE),
            Baseline::Top,
        )
        .draw(target)?;
        let len = (p.clamp(0.0, 1.0) * BAR as f32 + 0.5) as u32;
        if len > 0 {
            Rectangle::new(Point::new(bx + NAME + 2, row_y + 2), Size::new(len, (ROW - 4) as u32))
                .into_styled(PrimitiveStyle::with_fill(class_color(i)))
                .draw(target)?;
        }
    }
    Ok(())
}

/// `"happy 87%"` into `buf` (no allocation).
fn label_text<'b>(name: &str, p: f32, buf: &'b mut [u8; 32]) -> &'b str {
    let name = &name.as_bytes()[..name.len().min(20)];
    buf[..name.len()].copy_from_slice(name);
    let mut n = name.len();
    let pct = (p.clamp(0.0, 1.0) * 100.0 + 0.5) as u32;
    buf[n] = b' ';
    n += 1;
    if pct >= 100 {
        buf[n..n + 3].copy_from_slice(b"100");
        n += 3;
    } else {
        if pct >= 10 {
            buf[n] = b'0' + (pct / 10) as u8;
            n += 1;
        }
        buf[n] = b'0' + (pct % 10) as u8;
        n += 1;
    }
    buf[n] = b'%';
    n += 1;
    // Only ASCII was copied above if the name was; a cut inside a UTF-8 character gives "?".
    core::str::from_utf8(&buf[..n]).unwrap_or("?")
}

/// A packed RGB888 framebuffer (`width * height * 3` bytes, row-major) as a draw target:
/// an image being annotated, or a display's frame in RAM.
pub struct RgbBuffer<'a> {
    pub width: u32,
    pub height: u32,
    pub pixels: &'a mut [u8],
}

impl<'a> RgbBuffer<'a> {
    /// `None` when `pixels` is not `width * height * 3` bytes.
    pub fn new(width: u32, height: u32, pixels: &'a mut [u8]) -> Option<RgbBuffer<'a>> {
        (pixels.len() == width as usize * height as usize * 3).then_some(RgbBuffer { width, height, pixels })
    }
}

impl OriginDimensions for RgbBuffer<'_> {
    fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }
}

impl DrawTarget for RgbBuffer<'_> {
    type Color = Rgb888;
    type Error = core::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(&mut self, pixels: I) -> Result<(), Self::Error> {
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && (p.x as u32) < self.width && (p.y as u32) < self.height {
                let i = (p.y as usize * self.width as usize + p.x as usize) * 3;
                self.pixels[i..i + 3].copy_from_slice(&[c.r(), c.g(), c.b()]);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_text_formats_percentages() {
        let mut b = [0u8; 32];
        assert_eq!(label_text("happy", 0.874, &mut b), "happy 87%");
        assert_eq!(label_text("sad", 1.0, &mut b), "sad 100%");
        assert_eq!(label_text("fear", 0.04, &mut b), "fear 4%");
        assert_eq!(label_text("neutral", f32::NAN, &mut b), "neutral 0%");
    }

    #[test]
    fn draws_box_and_bars_inside_the_buffer_only() {
        let mut px = vec![0u8; 100 * 80 * 3];
        let mut fb = RgbBuffer::new(100, 80, &mut px).unwrap();
        let labels = ["angry", "happy"];
        let face = FaceOverlay {
            bbox: [70, 5, 40, 40],
            keypoints: &[[80, 20]],
            labels: &labels,
            probabilities: &[0.2, 0.8],
        };
        draw_face(&mut fb, &face).unwrap();
        // The box's left edge is in the colour of the top class (index 1).
        let at = |x: usize, y: usize| &px[(y * 100 + x) * 3..][..3];
        let c = class_color(1);
        assert_eq!(at(70, 30), &[c.r(), c.g(), c.b()]);
        assert!(px.contains(&255), "text is drawn");
        assert!(RgbBuffer::new(2, 2, &mut [0u8; 11]).is_none());
    }
}
