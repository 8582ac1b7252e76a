//! BlazeFace outputs -> face detections: box and keypoint decoding against the anchors,
//! sigmoid scores, and MediaPipe's weighted non-maximum suppression.

use alloc::vec::Vec;
use core::fmt;

/// Number of keypoints BlazeFace predicts: right eye, left eye, nose tip, mouth centre,
/// right ear tragion, left ear tragion (the subject's right and left).
pub const KEYPOINTS: usize = 6;
/// Values per anchor in the regressor output: box (4) and keypoints (2 each).
pub const COORDS: usize = 4 + 2 * KEYPOINTS;

/// One face, in the coordinates of whatever it was decoded or mapped into.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// Centre x, centre y, width, height.
    pub cx: f32,
    pub cy: f32,
    pub w: f32,
    pub h: f32,
    pub keypoints: [[f32; 2]; KEYPOINTS],
    /// Probability in [0, 1].
    pub score: f32,
}

impl Detection {
    /// `[x, y, w, h]` with `(x, y)` the top-left corner.
    pub fn xywh(&self) -> [f32; 4] {
        [self.cx - self.w / 2.0, self.cy - self.h / 2.0, self.w, self.h]
    }

    pub fn iou(&self, o: &Detection) -> f32 {
        iou(&self.xywh(), &o.xywh())
    }

    /// The same detection with every coordinate mapped by `x -> x * sx + ox`, `y -> y * sy + oy`.
    pub fn mapped(&self, sx: f32, ox: f32, sy: f32, oy: f32) -> Detection {
        let mut d = *self;
        d.cx = self.cx * sx + ox;
        d.cy = self.cy * sy + oy;
        d.w = self.w * sx;
        d.h = self.h * sy;
        for k in &mut d.keypoints {
            *k = [k[0] * sx + ox, k[1] * sy + oy];
        }
        d
    }
}

/// Intersection over union of two `[x, y, w, h]` boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let ix = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let iy = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    if ix <= 0.0 || iy <= 0.0 {
        return 0.0;
    }
    let inter = ix * iy;
    let union = a[2] * a[3] + b[2] * b[3] - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// Decoding settings (MediaPipe's short-range values by default).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodeOptions {
    /// Regressor units per input width (the input size, 128).
    pub scale: f32,
    /// Logits are clipped to +-this before the sigmoid.
    pub score_clip: f32,
    pub min_score: f32,
    /// Overlapping detections above this IoU are merged.
    pub nms_iou: f32,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions { scale: 128.0, score_clip: 80.0, min_score: 0.5, nms_iou: 0.3 }
    }
}

/// libm's `expf` on every target, so native and WebAssembly scores agree to the bit.
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + libm::expf(-x))
}

/// Detector outputs whose sizes do not fit the anchors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub regressors: usize,
    pub scores: usize,
    pub anchors: usize,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the detector gave {} regressor and {} score values; {} anchors need {} and {}",
            self.regressors,
            self.scores,
            self.anchors,
            self.anchors * COORDS,
            self.anchors
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}

/// Every anchor whose score passes `min_score`, decoded into [0, 1] input coordinates.
/// `regressors` holds [`COORDS`] values per anchor, `scores` one logit per anchor.
pub fn decode(
    regressors: &[f32],
    scores: &[f32],
    anchors: &[[f32; 2]],
    o: &DecodeOptions,
    out: &mut Vec<Detection>,
) -> Result<(), DecodeError> {
    if regressors.len() != anchors.len() * COORDS || scores.len() != anchors.len() {
        return Err(DecodeError {
            regressors: regressors.len(),
            scores: scores.len(),
            anchors: anchors.len(),
        });
    }
    out.clear();
    for (i, (anchor, &logit)) in anchors.iter().zip(scores).enumerate() {
        let score = sigmoid(logit.clamp(-o.score_clip, o.score_clip));
        // A NaN score is not a face either.
        if score.is_nan() || score < o.min_score {
            continue;
        }
        let r = &regressors[i * COORDS..][..COORDS];
        let mut keypoints = [[0f32; 2]; KEYPOINTS];
        for (k, kp) in keypoints.iter_mut().enumerate() {
            *kp = [r[4 + 2 * k] / o.scale + anchor[0], r[5 + 2 * k] / o.scale + anchor[1]];
        }
        let d = Detection {
            cx: r[0] / o.scale + anchor[0],
            cy: r[1] / o.scale + anchor[1],
            w: r[2] / o.scale,
            h: r[3] / o.scale,
            keypoints,
            score,
        };
        if d.w > 0.0 && d.h > 0.0 && d.cx.is_finite() && d.cy.is_finite() {
            out.push(d);
        }
    }
    Ok(())
}

/// MediaPipe's weighted non-maximum suppression: the best remaining detection and every
/// other one overlapping it by more than `iou` become one detection whose box and keypoints
/// are the score-weighted mean of the group and whose score is the best one's. In place;
/// the result is sorted by score, best first.
pub fn weighted_nms(dets: &mut Vec<Detection>, iou: f32) {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept = Vec::with_capacity(dets.len());
    let mut rest: Vec<Detection> = core::mem::take(dets);
    while !rest.is_empty() {
        let best = rest[0];
        let (mut sum, mut acc) = (0f32, [0f32; 4 + 2 * KEYPOINTS]);
        rest.retain(|d| {
            if d.iou(&best) <= iou && *d != best {
                return true;
            }
            let s = d.score;
            sum += s;
            for (a, v) in acc.iter_mut().zip([d.cx, d.cy, d.w, d.h]) {
                *a += s * v;
            }
            for (k, kp) in d.keypoints.iter().enumerate() {
                acc[4 + 2 * k] += s * kp[0];
                acc[5 + 2 * k] += s * kp[1];
            }
            false
        });
        let mut merged = best;
        if sum > 0.0 {
            [merged.cx, merged.cy, merged.w, merged.h] =
                [acc[0] / sum, acc[1] / sum, acc[2] / sum, acc[3] / sum];
            for (k, kp) in merged.keypoints.iter_mut().enumerate() {
                *kp = [acc[4 + 2 * k] / sum, acc[5 + 2 * k] / sum];
            }
        }
        kept.push(merged);
    }
    *dets = kept;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(cx: f32, cy: f32, s: f32, score: f32) -> Detection {
        Detection { cx, cy, w: s, h: s, keypoints: [[cx, cy]; KEYPOINTS], score }
    }

    #[test]
    fn iou_of_known_boxes() {
        let a = det(0.5, 0.5, 0.2, 1.0);
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        // Shifted by half a width: overlap 0.1 x 0.2 = 0.02, union 0.06.
        assert!((a.iou(&det(0.6, 0.5, 0.2, 1.0)) - 1.0 / 3.0).abs() < 1e-5);
        assert_eq!(a.iou(&det(0.9, 0.9, 0.2, 1.0)), 0.0);
    }

    #[test]
    fn decode_applies_anchor_offsets_scale_and_threshold() {
        let anchors = [[0.25, 0.5], [0.75, 0.5]];
        let mut reg = vec![0f32; 2 * COORDS];
        // Anchor 0: centre moved by (12.8, -6.4) px of 128, size 32x64 px, right eye at +1 px.
        reg[..6].copy_from_slice(&[12.8, -6.4, 32.0, 64.0, 1.28, 0.0]);
        let scores = [2.0, -2.0]; // sigmoid 0.88 and 0.12
        let mut out = Vec::new();
        decode(&reg, &scores, &anchors, &DecodeOptions::default(), &mut out).unwrap();
        assert_eq!(out.len(), 1);
        let d = out[0];
        assert!((d.cx - 0.35).abs() < 1e-6 && (d.cy - 0.45).abs() < 1e-6);
        assert!((d.w - 0.25).abs() < 1e-6 && (d.h - 0.5).abs() < 1e-6);
        assert!((d.keypoints[0][0] - 0.26).abs() < 1e-6 && d.keypoints[1] == [0.25, 0.5]);
        assert!((d.score - 0.880_797).abs() < 1e-5);
    }

    #[test]
    fn decode_rejects_wrong_sizes_and_survives_nan() {
        let anchors = [[0.5, 0.5]];
        let mut out = Vec::new();
        let err =
            decode(&[0.0; 3], &[0.0], &anchors, &DecodeOptions::default(), &mut out).unwrap_err().to_string();
        assert!(err.contains("16"), "{err}");
        let mut reg = vec![f32::NAN; COORDS];
        decode(&reg, &[f32::NAN], &anchors, &DecodeOptions::default(), &mut out).unwrap();
        assert!(out.is_empty());
        reg[2] = 10.0;
        decode(&reg, &[5.0], &anchors, &DecodeOptions::default(), &mut out).unwrap();
        assert!(out.is_empty(), "a NaN box is dropped, not returned");
    }

    #[test]
    fn weighted_nms_merges_overlaps_by_score() {
        let mut d = vec![det(0.50, 0.5, 0.2, 0.6), det(0.52, 0.5, 0.2, 0.9), det(0.1, 0.1, 0.1, 0.7)];
        weighted_nms(&mut d, 0.3);
        assert_eq!(d.len(), 2);
        // The group's score is its best member's; its centre the score-weighted mean.
        assert_eq!(d[0].score, 0.9);
        let cx = (0.52 * 0.9 + 0.50 * 0.6) / 1.5;
        assert!((d[0].cx - cx).abs() < 1e-6 && (d[0].keypoints[3][0] - cx).abs() < 1e-6);
        assert_eq!(d[1], det(0.1, 0.1, 0.1, 0.7));
    }

    #[test]
    fn weighted_nms_keeps_identical_duplicates_as_one() {
        let mut d = vec![det(0.5, 0.5, 0.2, 0.8); 3];
        weighted_nms(&mut d, 0.3);
        assert_eq!(d, vec![det(0.5, 0.5, 0.2, 0.8)]);
    }
}
