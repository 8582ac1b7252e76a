//! The pipeline's faces drawn onto their frame with the core's overlay (boxes, keypoints,
//! label and probability bars), as `fer predict --annotate` saves them and the `fer live`
//! window shows them: the same drawing code as the firmware's screen.

use crate::overlay::{RgbBuffer, draw_face_at};

use super::Face;

/// Draws every face's overlay into `px`, a `w` x `h` RGB buffer (a buffer of another size
/// is left as it is).
pub fn draw_faces(px: &mut [u8], w: u32, h: u32, faces: &[Face], labels: &[String]) {
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let Some(mut fb) = RgbBuffer::new(w, h, px) else { return };
    for f in faces {
        let _ = draw_face_at(&mut fb, f.bbox, &f.keypoints, &labels, &f.probabilities);
    }
}
