//! Weights split in two int8 layers (`--split-weights NAME`): about 16-bit weights for a
//! layer that needs them, with the engine's own int8 ops.
//!
//! A conv or dense layer `y = W x + b` becomes `hi = W_hi x + b`, `lo = W_lo x` and
//! `y = hi + lo`: `W_hi` is `W` rounded to the int8 grid the quantizer would give it (per
//! output channel, largest |weight| over 127), so it quantizes exactly, and `W_lo = W -
//! W_hi` is the rounding error, quantized on its own grid, 254 times finer. The float
//! model computes the same function. `hi` takes the range of `y` (below 0 its own, where
//! a ReLU follows), `lo` its own calibrated range, and the Add requantizes both into `y`.
//!
//! BlazeFace's 8x8 score head has weights up to 38 beside a median of 0.4-1.3: its int8
//! weights alone make 0.13 of the 0.18 logit error near the threshold that int8 weights
//! cause (`scripts/detector-int8-error.py --each-weight`). Split, it costs one more 96 -> 6
//! conv on 8x8 and an Add of 384 values (docs/runtime.md).

use super::calibrate::Ranges;
use super::fuse::{Plan, QOp};
use crate::onnx::{Conv, Dense, FloatGraph, Node, OnnxError, Op, Tensor};

/// One split layer, as float graph value ids: the `hi` conv and the Add that makes `y`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    pub hi: usize,
    pub add: usize,
}

/// `w` split per output channel (its first axis) into the int8 grid and the rest.
fn split_rows(w: &Tensor) -> (Tensor, Tensor) {
    let per = w.data.len() / w.dims[0].max(1);
    let (mut hi, mut lo) = (Vec::with_capacity(w.data.len()), Vec::with_capacity(w.data.len()));
    for row in w.data.chunks(per.max(1)) {
        let s = row.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
        for &v in row {
            let h = if s > 0.0 { (v / s).round() * s } else { 0.0 };
            hi.push(h);
            lo.push(v - h);
        }
    }
    (Tensor::new(w.dims.clone(), hi), Tensor::new(w.dims.clone(), lo))
}

/// Splits each layer of `names` in `g` (in place) and returns where the halves went.
pub fn split_weights(g: &mut FloatGraph, names: &[String]) -> Result<Vec<Split>, OnnxError> {
    let mut splits: Vec<Split> = Vec::new();
    // A name given twice is split once (the second would find the Add made of it).
    for (k, name) in names.iter().enumerate() {
        if names[..k].contains(name) {
            continue;
        }
        let Some(a) = g.nodes.iter().position(|n| &n.name == name) else {
            let layers: Vec<&str> = g
                .nodes
                .iter()
                .filter(|n| matches!(n.op, Op::Conv(_) | Op::Dense(_)))
                .map(|n| n.name.as_str())
                .collect();
            return Err(OnnxError(format!(
                "--split-weights {name}: no such layer; conv and dense layers: {layers:?}"
            )));
        };
        let node = g.nodes[a].clone();
        let (hi_op, lo_op) = match node.op {
            Op::Conv(c) => {
                let (wh, wl) = split_rows(&c.weight);
                let lo = Conv { weight: wl, bias: None, ..c.clone() };
                (Op::Conv(Conv { weight: wh, ..c }), Op::Conv(lo))
            }
            Op::Dense(d) => {
                let (wh, wl) = split_rows(&d.weight);
                (Op::Dense(Dense { weight: wh, bias: d.bias }), Op::Dense(Dense { weight: wl, bias: None }))
            }
            op => {
                return Err(OnnxError(format!(
                    "--split-weights {name}: a {} layer has no weights to split",
                    op.kind()
                )));
            }
        };
        // Node a makes value a + 1; the two new nodes go before it, so every later value
        // moves up by two.
        let shift = |v: usize| if v > a { v + 2 } else { v };
        for n in &mut g.nodes {
            n.inputs.iter_mut().for_each(|v| *v = shift(*v));
        }
        g.output = shift(g.output);
        g.outputs.iter_mut().for_each(|(_, v)| *v = shift(*v));
        for s in &mut splits {
            (s.hi, s.add) = (shift(s.hi), shift(s.add));
        }
        let (hi, lo) = (a + 1, a + 2);
        let half = |suffix: &str, op| Node {
            name: format!("{name}.{suffix}"),
            op,
            inputs: node.inputs.clone(),
            shape: node.shape.clone(),
        };
        g.nodes[a] =
            Node { name: name.clone(), op: Op::Add, inputs: vec![hi, lo], shape: node.shape.clone() };
        g.nodes.insert(a, half("lo", lo_op));
        g.nodes.insert(a, half("hi", hi_op));
        splits.push(Split { hi, add: a + 3 });
    }
    Ok(splits)
}

/// Sets each split's `hi` range from its sum's: `hi` is `y` to within `lo`, and its own
/// calibrated range may be far wider than the one `y` was given (a score head's
/// background logits reach -200 where `--output-range` keeps [-8, 8]). Where the sum
/// clamps (a fused ReLU), `hi` keeps its own lower end: clamped at the sum's 0 first,
/// `relu(max(hi, 0) + lo)` would pass every small positive `lo` where `y` is 0.
pub fn give_hi_the_sums_range(plan: &Plan, ranges: &mut Ranges, splits: &[Split]) {
    for s in splits {
        let Some(hi) = plan.nodes.iter().position(|n| n.float_value == s.hi).map(|i| i + 1) else { continue };
        // The Add that reads `hi` (a ReLU after it is fused into it).
        let Some(sum) = plan.nodes.iter().position(|n| matches!(n.op, QOp::Add) && n.inputs.contains(&hi))
        else {
            continue;
        };
        if plan.nodes[sum].clamp.is_none() {
            ranges.lo[hi] = ranges.lo[sum + 1];
        }
        ranges.hi[hi] = ranges.hi[sum + 1];
    }
}
