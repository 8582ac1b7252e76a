//! BlazeFace short range around any engine: the letterboxed input it takes, and its two
//! outputs turned into faces in frame pixels (told apart by size, decoded against the
//! anchors, merged by weighted non-maximum suppression, mapped back through the
//! letterbox). The engine that runs the net is the caller's: `fer` runs it behind its
//! backend seam, the browser build on the int8 engine directly.

use alloc::vec::Vec;
use core::fmt;

use super::anchors;
use super::decode::{COORDS, DecodeError, DecodeOptions, Detection, decode, weighted_nms};
use super::frame::{Letterbox, RgbFrame, letterbox_into};

/// Input side of the short-range model.
pub const INPUT: usize = 128;

/// Outputs that are not a BlazeFace-style detector's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputsError {
    /// No output of `anchors * COORDS` values, or none of `anchors` values.
    Sizes {
        sizes: Vec<usize>,
        anchors: usize,
    },
    Decode(DecodeError),
}

impl fmt::Display for OutputsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputsError::Sizes { sizes, anchors } => write!(
                f,
                "not a BlazeFace-style detector: outputs of {sizes:?} values; need {} ({anchors} anchors x {COORDS}) and {anchors}",
                anchors * COORDS
            ),
            OutputsError::Decode(e) => e.fmt(f),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for OutputsError {}

/// The two outputs of a BlazeFace-style net told apart by size: `COORDS` values per anchor
/// and one. Exporters name them differently (`regressors`/`classificators`, `Identity`...).
/// Copied into the caller's buffers, which keep their capacity from frame to frame.
pub fn split_outputs(
    outputs: &[Vec<f32>],
    anchors: usize,
    regressors: &mut Vec<f32>,
    scores: &mut Vec<f32>,
) -> Result<(), OutputsError> {
    let reg = outputs.iter().find(|o| o.len() == anchors * COORDS);
    let sc = outputs.iter().find(|o| o.len() == anchors);
    let (Some(r), Some(sc)) = (reg, sc) else {
        return Err(OutputsError::Sizes { sizes: outputs.iter().map(Vec::len).collect(), anchors });
    };
    regressors.clear();
    regressors.extend_from_slice(r);
    scores.clear();
    scores.extend_from_slice(sc);
    Ok(())
}

/// Everything around the net: anchors, decoding settings and the buffers reused frame
/// after frame.
pub struct Decoder {
    anchors: Vec<[f32; 2]>,
    pub options: DecodeOptions,
    regressors: Vec<f32>,
    scores: Vec<f32>,
    found: Vec<Detection>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::short_range()
    }
}

impl Decoder {
    pub fn short_range() -> Decoder {
        Decoder {
            anchors: anchors::short_range(),
            options: DecodeOptions::default(),
            regressors: Vec::new(),
            scores: Vec::new(),
            found: Vec::new(),
        }
    }

    /// Number of anchors the net must score.
    pub fn anchors(&self) -> usize {
        self.anchors.len()
    }

    /// `frame` as the net takes it (`[3, 128, 128]`, pixels mapped to [-1, 1] as BlazeFace
    /// was trained), and how it was letterboxed.
    pub fn input(frame: &RgbFrame, input: &mut [f32]) -> Letterbox {
        letterbox_into(frame, INPUT, 1.0 / 127.5, -1.0, input)
    }

    /// Checks that `outputs` are a BlazeFace-style net's (the dry run at load).
    pub fn check(&mut self, outputs: &[Vec<f32>]) -> Result<(), OutputsError> {
        split_outputs(outputs, self.anchors.len(), &mut self.regressors, &mut self.scores)
    }

    /// The faces in the net's `outputs` for a frame letterboxed as `lb`: boxes and
    /// keypoints in frame pixels, best first.
    pub fn faces(&mut self, outputs: &[Vec<f32>], lb: &Letterbox) -> Result<&[Detection], OutputsError> {
        self.check(outputs)?;
        decode(&self.regressors, &self.scores, &self.anchors, &self.options, &mut self.found)
            .map_err(OutputsError::Decode)?;
        weighted_nms(&mut self.found, self.options.nms_iou);
        let (sx, ox, sy, oy) = lb.to_frame();
        for d in &mut self.found {
            *d = d.mapped(sx, ox, sy, oy);
        }
        Ok(&self.found)
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::*;

    /// Fixed outputs: one face at the input's centre.
    fn one_face() -> Vec<Vec<f32>> {
        let mut reg = vec![0.0; 896 * COORDS];
        let mut sc = vec![-10.0; 896];
        // Anchor of 16x16 cell (8, 8) has centre (8.5/16, 8.5/16); move it to 0.5.
        let a = (8 * 16 + 8) * 2;
        reg[a * COORDS..][..4].copy_from_slice(&[-4.0, -4.0, 32.0, 32.0]);
        sc[a] = 3.0;
        vec![sc, reg]
    }

    #[test]
    fn detections_come_back_in_frame_pixels() {
        // 200 wide, 100 high: letterboxed into a 200-pixel square with 50-pixel bars.
        let px = vec![128u8; 200 * 100 * 3];
        let frame = RgbFrame::new(200, 100, &px).unwrap();
        let mut input = vec![0.0; 3 * INPUT * INPUT];
        let lb = Decoder::input(&frame, &mut input);
        let mut dec = Decoder::short_range();
        let d = dec.faces(&one_face(), &lb).unwrap().to_vec();
        assert_eq!(d.len(), 1);
        // Centre of the square = centre of the frame; 32/128 of 200 px = 50 px.
        assert!((d[0].cx - 100.0).abs() < 1e-3 && (d[0].cy - 50.0).abs() < 1e-3, "{d:?}");
        assert!((d[0].w - 50.0).abs() < 1e-3 && (d[0].h - 50.0).abs() < 1e-3);
    }

    #[test]
    fn outputs_are_told_apart_by_size() {
        let (mut r, mut s) = (Vec::new(), Vec::new());
        split_outputs(&[vec![0.0; 10], vec![1.0; 10 * COORDS]], 10, &mut r, &mut s).unwrap();
        assert_eq!((r.len(), s.len()), (160, 10));
        let err = split_outputs(&[vec![0.0; 7]], 10, &mut r, &mut s).unwrap_err();
        assert!(alloc::format!("{err}").contains("[7]"), "{err}");
    }
}
