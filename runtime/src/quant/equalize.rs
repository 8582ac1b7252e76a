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

use std::string::String;
use std::vec::Vec;

use super::calibrate::{Ranges, sources};
use super::fuse::{Plan, QOp};
use crate::onnx::{FloatGraph, OnnxError, eval};

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

/// Per channel of plan value `v` (`[C, H, W]`): the smallest and largest value over `images`.
fn channel_ranges(
    g: &FloatGraph,
    plan: &Plan,
    values: &[usize],
    images: &[Vec<f32>],
) -> Result<Vec<Vec<(f32, f32)>>, OnnxError> {
    let src = sources(plan);
    let mut out: Vec<Vec<(f32, f32)>> = values
        .iter()
        .map(|&v| vec![(f32::INFINITY, f32::NEG_INFINITY); plan.nodes[v - 1].shape[0]])
        .collect();
    for image in images {
        let all = eval::run_all(g, image)?;
        for (k, &v) in values.iter().enumerate() {
            let data = &all[src[v]];
            let per = data.len() / out[k].len();
            for (c, r) in out[k].iter_mut().enumerate() {
                for &x in &data[c * per..(c + 1) * per] {
                    *r = (r.0.min(x), r.1.max(x));
                }
            }
        }
    }
    Ok(out)
}

/// Equalizes every pair in `plan` and sets the first conv's output range in `ranges`
/// from its channels' ranges (each divided by its `s_c`).
pub fn equalize(
    g: &FloatGraph,
    plan: &mut Plan,
    ranges: &mut Ranges,
    images: &[Vec<f32>],
) -> Result<Vec<Equalized>, OnnxError> {
    let found = pairs(plan);
    let values: Vec<usize> = found.iter().map(|&(a, _)| a + 1).collect();
    let per_channel = channel_ranges(g, plan, &values, images)?;
    let mut report = Vec::with_capacity(found.len());
    for (&(a, b), channels) in found.iter().zip(&per_channel) {
        let scales = scales(plan, b, channels);
        scale_outputs(&mut plan.nodes[a].op, &scales);
        scale_inputs(&mut plan.nodes[b].op, &scales);
        let v = a + 1;
        let before = ranges.hi[v] - ranges.lo[v];
        ranges.lo[v] = channels.iter().zip(&scales).map(|(r, s)| r.0 / s).fold(0.0, f32::min);
        ranges.hi[v] = channels.iter().zip(&scales).map(|(r, s)| r.1 / s).fold(0.0, f32::max);
        report.push(Equalized {
            name: plan.nodes[a].name.clone(),
            range_before: before,
            range_after: ranges.hi[v] - ranges.lo[v],
        });
    }
    Ok(report)
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
