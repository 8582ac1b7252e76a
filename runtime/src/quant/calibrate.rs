//! Activation ranges from calibration images: min/max, or a percentile that ignores the
//! rare extremes (a wider range costs every other value resolution).

use super::fuse::Plan;
use crate::onnx::{FloatGraph, OnnxError, eval};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    MinMax,
    /// Keep this percentile of each tensor's values (e.g. 99.99), clipping the rest.
    Percentile(f64),
}

/// Float range `[lo, hi]` of every plan value.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranges {
    pub lo: Vec<f32>,
    pub hi: Vec<f32>,
    /// Per plan value that is a `[C, H, W]` map: each channel's smallest and largest value
    /// over the images (min/max whatever the method; channel equalization reads them).
    /// Empty for other values.
    pub channels: Vec<Vec<(f32, f32)>>,
}

const BINS: usize = 2048;

/// The float value behind each plan value.
pub(crate) fn sources(plan: &Plan) -> Vec<usize> {
    std::iter::once(0).chain(plan.nodes.iter().map(|n| n.float_value)).collect()
}

pub fn calibrate(
    g: &FloatGraph,
    plan: &Plan,
    images: &[Vec<f32>],
    method: Method,
) -> Result<Ranges, OnnxError> {
    if images.is_empty() {
        return Err(OnnxError("no calibration images".into()));
    }
    let src = sources(plan);
    let mut lo = vec![f32::INFINITY; src.len()];
    let mut hi = vec![f32::NEG_INFINITY; src.len()];
    let mut channels: Vec<Vec<(f32, f32)>> = src
        .iter()
        .map(|&f| match g.shape(f).as_slice() {
            [c, _, _] => vec![(f32::INFINITY, f32::NEG_INFINITY); *c],
            _ => Vec::new(),
        })
        .collect();
    let mut all = Vec::with_capacity(images.len());
    for img in images {
        let values = eval::run_all(g, img)?;
        for (p, &f) in src.iter().enumerate() {
            // One pass: a map channel by channel (its range is theirs), anything else whole.
            let per = values[f].len() / channels[p].len().max(1);
            for (k, chunk) in values[f].chunks(per.max(1)).enumerate() {
                let mut r = (f32::INFINITY, f32::NEG_INFINITY);
                for &v in chunk {
                    if !v.is_finite() {
                        return Err(OnnxError(format!(
                            "calibration produced a non-finite value in tensor {p}"
                        )));
                    }
                    r = (r.0.min(v), r.1.max(v));
                }
                (lo[p], hi[p]) = (lo[p].min(r.0), hi[p].max(r.1));
                if let Some(c) = channels[p].get_mut(k) {
                    *c = (c.0.min(r.0), c.1.max(r.1));
                }
            }
        }
        if matches!(method, Method::Percentile(_)) {
            all.push(values);
        }
    }
    if let Method::Percentile(pct) = method {
        let keep = (pct / 100.0).clamp(0.5, 1.0);
        for (p, &f) in src.iter().enumerate() {
            let (a, b) = (lo[p], hi[p]);
            if b <= a {
                continue;
            }
            let mut hist = vec![0u64; BINS];
            let width = (b - a) / BINS as f32;
            let mut n = 0u64;
            for values in &all {
                for &v in &values[f] {
                    hist[(((v - a) / width) as usize).min(BINS - 1)] += 1;
                    n += 1;
                }
            }
            let cut = ((1.0 - keep) * n as f64 / 2.0) as u64;
            let (mut acc, mut i_lo) = (0u64, 0usize);
            while i_lo < BINS - 1 && acc + hist[i_lo] <= cut {
                acc += hist[i_lo];
                i_lo += 1;
            }
            let (mut acc, mut i_hi) = (0u64, BINS - 1);
            while i_hi > i_lo && acc + hist[i_hi] <= cut {
                acc += hist[i_hi];
                i_hi -= 1;
            }
            lo[p] = a + i_lo as f32 * width;
            hi[p] = a + (i_hi + 1) as f32 * width;
        }
    }
    Ok(Ranges { lo, hi, channels })
}

/// Sets value `v`'s range, and that of every value a Concat joins into it (their bytes are
/// requantized to `v`'s scale, so they need the same resolution where it matters).
pub fn set_range_through_concats(plan: &Plan, ranges: &mut Ranges, v: usize, lo: f32, hi: f32) {
    ranges.lo[v] = lo;
    ranges.hi[v] = hi;
    if v == 0 {
        return;
    }
    let node = &plan.nodes[v - 1];
    if matches!(node.op, super::fuse::QOp::Concat { .. }) {
        for &u in &node.inputs {
            set_range_through_concats(plan, ranges, u, lo, hi);
        }
    }
}
