//! Float graph -> the layers the int8 engine runs: BatchNorm folded into the conv or
//! dense layer before it, ReLU and Clip fused into the layer they follow, a flatten that
//! only feeds dense layers dropped (they read the map), a final softmax dropped (the
//! engine gives logits; the flag says to apply it).

use std::string::String;
use std::vec::Vec;

use crate::onnx::{BatchNorm, FloatGraph, OnnxError, Op, Pool, Tensor};

/// A layer of the int8 plan, still in float.
#[derive(Clone, Debug, PartialEq)]
pub enum QOp {
    /// `weight` `[O, I / groups, kh, kw]`.
    Conv {
        weight: Tensor,
        bias: Vec<f32>,
        stride: [usize; 2],
        pads: [usize; 4],
        dilation: [usize; 2],
        groups: usize,
    },
    /// `weight` `[out, in]`.
    Dense {
        weight: Tensor,
        bias: Vec<f32>,
    },
    MaxPool(Pool),
    AvgPool(Pool),
    GlobalAvgPool,
    Flatten,
    Add,
    PRelu {
        slope: Tensor,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct QNode {
    pub name: String,
    pub op: QOp,
    /// Plan value ids (0 is the input; node `i` makes value `i + 1`).
    pub inputs: Vec<usize>,
    pub shape: Vec<usize>,
    /// Fused clamp in float units (ReLU: `(0, inf)`).
    pub clamp: Option<(f32, f32)>,
    /// The float graph value that holds this node's result (for calibration).
    pub float_value: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub nodes: Vec<QNode>,
    pub input_shape: [usize; 3],
    /// The float model ended in a softmax (dropped here).
    pub softmax: bool,
    pub output: usize,
}

fn fold_bn(weight: &mut Tensor, bias: &mut [f32], bn: &BatchNorm) {
    let per = weight.data.len() / bias.len();
    for (o, b) in bias.iter_mut().enumerate() {
        let k = bn.scale[o] / (bn.var[o] + bn.epsilon).sqrt();
        for w in &mut weight.data[o * per..(o + 1) * per] {
            *w *= k;
        }
        *b = (*b - bn.mean[o]) * k + bn.bias[o];
    }
}

/// Builds the plan; errors name the node that cannot be run in int8.
pub fn plan(g: &FloatGraph) -> Result<Plan, OnnxError> {
    if g.outputs.len() > 1 {
        let names: Vec<&str> = g.outputs.iter().map(|(n, _)| n.as_str()).collect();
        return Err(OnnxError(format!(
            "the model has {} outputs ({}); the int8 quantizer takes classifiers with one",
            names.len(),
            names.join(", ")
        )));
    }
    let uses = |v: usize| g.nodes.iter().filter(|n| n.inputs.contains(&v)).count() + (v == g.output) as usize;
    // Float value id -> plan value id.
    let mut map = vec![usize::MAX; g.nodes.len() + 1];
    map[0] = 0;
    let mut nodes: Vec<QNode> = Vec::new();
    let mut softmax = false;
    let err = |n: &crate::onnx::Node, why: &str| {
        Err(OnnxError(format!("node `{}` ({}): {why}", n.name, n.op.kind())))
    };
    for (i, n) in g.nodes.iter().enumerate() {
        let fv = i + 1;
        let x = map[n.inputs[0]];
        // The plan node that made this node's input, when only this node reads it.
        let sole_producer = |nodes: &mut Vec<QNode>| -> Option<usize> {
            (x > 0 && uses(n.inputs[0]) == 1 && nodes[x - 1].float_value == n.inputs[0]).then_some(x - 1)
        };
        let q = match &n.op {
            Op::Conv(c) => QOp::Conv {
                weight: c.weight.clone(),
                bias: c.bias.clone().unwrap_or_else(|| vec![0.0; c.weight.dims[0]]),
                stride: c.stride,
                pads: c.pads,
                dilation: c.dilation,
                groups: c.groups,
            },
            Op::Dense(d) => QOp::Dense {
                weight: d.weight.clone(),
                bias: d.bias.clone().unwrap_or_else(|| vec![0.0; d.weight.dims[0]]),
            },
            Op::BatchNorm(bn) => {
                let Some(p) = sole_producer(&mut nodes) else {
                    return err(
                        n,
                        "BatchNormalization must follow a Conv or dense layer that nothing else reads",
                    );
                };
                let clamp = nodes[p].clamp;
                match (&mut nodes[p].op, clamp) {
                    (QOp::Conv { weight, bias, .. } | QOp::Dense { weight, bias }, None) => {
                        fold_bn(weight, bias, bn)
                    }
                    _ => {
                        return err(
                            n,
                            "BatchNormalization must follow a Conv or dense layer (before any activation)",
                        );
                    }
                }
                nodes[p].float_value = fv;
                map[fv] = map[n.inputs[0]];
                continue;
            }
            Op::Relu | Op::Clip { .. } => {
                let (lo, hi) = match n.op {
                    Op::Clip { min, max } => (min, max),
                    _ => (0.0, f32::INFINITY),
                };
                if let Some(p) = sole_producer(&mut nodes)
                    && matches!(nodes[p].op, QOp::Conv { .. } | QOp::Dense { .. } | QOp::Add)
                {
                    let (a, b) = nodes[p].clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
                    nodes[p].clamp = Some((a.max(lo), b.min(hi)));
                    nodes[p].float_value = fv;
                    map[fv] = map[n.inputs[0]];
                    continue;
                }
                if lo != 0.0 || hi.is_finite() {
                    return err(n, "Clip must follow a Conv, dense layer or Add");
                }
                // A lone ReLU is a PReLU with slope 0.
                QOp::PRelu { slope: Tensor::new(vec![1; n.shape.len()], vec![0.0]) }
            }
            Op::PRelu { slope } => QOp::PRelu { slope: slope.clone() },
            Op::MaxPool(p) => QOp::MaxPool(p.clone()),
            Op::AvgPool(p) => QOp::AvgPool(p.clone()),
            Op::GlobalAvgPool => QOp::GlobalAvgPool,
            Op::Flatten => {
                // Dense layers read the map itself (their weights are packed for the arena's
                // [H, W, C] order), so a flatten that only feeds them costs nothing.
                let readers = || g.nodes.iter().filter(|m| m.inputs.contains(&fv));
                if fv != g.output && readers().count() > 0 && readers().all(|m| matches!(m.op, Op::Dense(_)))
                {
                    map[fv] = map[n.inputs[0]];
                    continue;
                }
                QOp::Flatten
            }
            Op::Add => QOp::Add,
            Op::Pad { .. } | Op::Transpose { .. } | Op::Reshape | Op::Concat { .. } => {
                return err(n, "not in the int8 engine yet (the float model runs on tract or ONNX Runtime)");
            }
            Op::Softmax => {
                if fv != g.output {
                    return err(n, "a softmax is only supported as the last op");
                }
                softmax = true;
                map[fv] = map[n.inputs[0]];
                continue;
            }
        };
        let inputs = n.inputs.iter().map(|&v| map[v]).collect();
        nodes.push(QNode {
            name: n.name.clone(),
            op: q,
            inputs,
            shape: n.shape.clone(),
            clamp: None,
            float_value: fv,
        });
        map[fv] = nodes.len();
    }
    let output = map[g.output];
    if output == 0 {
        return Err(OnnxError("the model computes nothing from its input".into()));
    }
    Ok(Plan { nodes, input_shape: g.input_shape, softmax, output })
}
