//! Channel equalization between two convolutions (Nagel et al. 2019, "Data-Free
//! Quantization", cross-layer equalization; the balance is SmoothQuant's, Xiao et al. 2022).
//!
//! Activations are int8 per tensor, so one scale serves every channel of a map. After a
//! depthwise convolution the channels' ranges differ by 100x and more (BlazeFace: one
//! channel reaches 450 where most stay within 5), and the small channels get a handful
//! of steps. Where a conv's output feeds one other conv alone, through no activation or a
//! ReLU, channel `c` can be divided by `s_c > 0` in the first and its weights multiplied
//! by `s_c` in the second: the float model computes the same function. With
//! `s_c = sqrt(a_c / w_c)` (`a_c` the channel's largest |activation| on the calibration
//! images, `w_c` the second conv's largest |weight| on that channel) both become
//! `sqrt(a_c * w_c)`: the activations share their range more evenly, and the second
//! conv's weights (per output channel) take the difference.

use super::calibrate::Ranges;
use super::fuse::{Plan, QOp};

/// One equalized pair: the first conv's name, and its output range before and after.
#[derive(Clone, Debug, PartialEq)]
pub struct Equalized {
    pub name: String,
    pub range_before: f32,
    pub range_after: f32,
}

/// A conv whose output only one conv reads, through no activation or a ReLU: `(first,
/// second)` node indices.
fn pairs(plan: &Plan) -> Vec<(usize, usize)> {
    let is_output = |v: usize| plan.outputs.iter().any(|&(_, o)| o == v);
    let mut found = Vec::new();
    for (a, node) in plan.nodes.iter().enumerate() {
        let v = a + 1;
        let positive_homogeneous = node.clamp.is_none_or(|(lo, hi)| {
            (lo == 0.0 || lo == f32::NEG_INFINITY) && (hi == 0.0 || hi == f32::INFINITY)
        });
        if !matches!(node.op, QOp::Conv { .. }) || !positive_homogeneous || is_output(v) {
            continue;
        }
        let mut readers = plan.nodes.iter().enumerate().filter(|(_, n)| n.inputs.contains(&v));
        let (Some((b, reader)), None) = (readers.next(), readers.next()) else { continue };
        if let QOp::Conv { groups, weight, .. } = &reader.op {
            let channels = node.shape[0];
            // A plain conv reads channel c in weight[:, c]; a depthwise one in weight[c].
            if *groups == 1 || (*groups == channels && weight.dims[0] == channels) {
                found.push((a, b));
            }
        }
    }
    found
}

/// Equalizes every pair in `plan` and sets the first conv's output range in `ranges`
/// from its channels' calibrated ranges (each divided by its `s_c`).
pub fn equalize(plan: &mut Plan, ranges: &mut Ranges) -> Vec<Equalized> {
    let mut report = Vec::new();
    for (a, b) in pairs(plan) {
        let v = a + 1;
        if ranges.channels[v].len() != plan.nodes[a].shape[0] {
            continue;
        }
        let scales = scales(plan, b, &ranges.channels[v]);
        scale_outputs(&mut plan.nodes[a].op, &scales);
        scale_inputs(&mut plan.nodes[b].op, &scales);
        let before = ranges.hi[v] - ranges.lo[v];
        for (r, s) in ranges.channels[v].iter_mut().zip(&scales) {
            *r = (r.0 / s, r.1 / s);
        }
        ranges.lo[v] = ranges.channels[v].iter().map(|r| r.0).fold(0.0, f32::min);
        ranges.hi[v] = ranges.channels[v].iter().map(|r| r.1).fold(0.0, f32::max);
        report.push(Equalized {
            name: plan.nodes[a].name.clone(),
            range_before: before,
            range_after: ranges.hi[v] - ranges.lo[v],
        });
    }
    report
}

/// `s_c = sqrt(a_c / w_c)`; 1 where either is zero (a dead channel stays as it is).
fn scales(plan: &Plan, b: usize, channels: &[(f32, f32)]) -> Vec<f32> {
    let QOp::Conv { weight, groups, .. } = &plan.nodes[b].op else { return vec![1.0; channels.len()] };
    let c_in = channels.len();
    let depthwise = *groups != 1;
    let per_out = weight.data.len() / weight.dims[0];
    let spatial = if depthwise { per_out } else { per_out / c_in };
    let mut w = vec![0f32; c_in];
    for (o, row) in weight.data.chunks(per_out).enumerate() {
        for (k, &x) in row.iter().enumerate() {
            let c = if depthwise { o } else { k / spatial };
            w[c] = w[c].max(x.abs());
        }
    }
    channels
        .iter()
        .zip(&w)
        .map(|(&(lo, hi), &w)| {
            let a = lo.abs().max(hi.abs());
            let s = (a / w).sqrt();
            if a > 0.0 && w > 0.0 && s.is_finite() && s > 0.0 { s } else { 1.0 }
        })
        .collect()
}

/// Divides output channel `c` (weights and bias) by `s[c]`.
fn scale_outputs(op: &mut QOp, s: &[f32]) {
    if let QOp::Conv { weight, bias, .. } = op {
        let per = weight.data.len() / s.len();
        for (c, &k) in s.iter().enumerate() {
            weight.data[c * per..(c + 1) * per].iter_mut().for_each(|w| *w /= k);
            if let Some(b) = bias.get_mut(c) {
                *b /= k;
            }
        }
    }
}

/// Multiplies the weights that read input channel `c` by `s[c]`.
fn scale_inputs(op: &mut QOp, s: &[f32]) {
    if let QOp::Conv { weight, groups, .. } = op {
        let per_out = weight.data.len() / weight.dims[0];
        let depthwise = *groups != 1;
        let spatial = if depthwise { per_out } else { per_out / s.len() };
        for (o, row) in weight.data.chunks_mut(per_out).enumerate() {
            for (k, x) in row.iter_mut().enumerate() {
                *x *= s[if depthwise { o } else { k / spatial }];
            }
        }
    }
}
