//! The rewrites after lowering: PReLU patterns, bias adds folded into the layer before
//! them, replaced values resolved, dead nodes removed, values renumbered.

use super::super::OnnxError;
use super::super::graph::{Node, Op};
use super::{Lowering, RawNode, RawOp, Result, broadcast_slope, err};

impl Lowering {
    /// Rewrites, dead-node removal and renumbering.
    pub(super) fn finish(self, outputs: &[usize]) -> Result<(Vec<Node>, Vec<usize>)> {
        let mut nodes = self.nodes;
        let n = nodes.len();
        // Value -> the value it now stands for (after a node was replaced by its input).
        let mut replace: Vec<usize> = (0..=n).collect();
        let producer = |nodes: &[RawNode], v: usize| -> Option<usize> {
            (v > 0).then(|| v - 1).filter(|&i| i < nodes.len())
        };
        // relu(x) - slope * relu(-x)  ->  PRelu(x, slope)
        for i in 0..n {
            let RawOp::Sub = nodes[i].op else { continue };
            let [pos, neg_scaled] = [nodes[i].inputs[0], nodes[i].inputs[1]];
            let m = (|| {
                let r1 = producer(&nodes, pos)?;
                let (RawOp::Op(Op::Relu), &[x]) = (&nodes[r1].op, nodes[r1].inputs.as_slice()) else {
                    return None;
                };
                let mul = producer(&nodes, neg_scaled)?;
                let (RawOp::MulConst(slope), &[b]) = (&nodes[mul].op, nodes[mul].inputs.as_slice()) else {
                    return None;
                };
                let r2 = producer(&nodes, b)?;
                let (RawOp::Op(Op::Relu), &[nv]) = (&nodes[r2].op, nodes[r2].inputs.as_slice()) else {
                    return None;
                };
                let ng = producer(&nodes, nv)?;
                let (RawOp::Neg, &[x2]) = (&nodes[ng].op, nodes[ng].inputs.as_slice()) else { return None };
                (x == x2).then(|| (x, slope.clone()))
            })();
            if let Some((x, slope)) = m {
                let shape = nodes[i].shape.clone();
                let slope = broadcast_slope(&slope, &shape)
                    .map_err(|e| OnnxError(format!("node `{}` (PReLU pattern): {}", nodes[i].name, e.0)))?;
                nodes[i].op = RawOp::Op(Op::PRelu { slope });
                nodes[i].inputs = vec![x];
                nodes[i].op_type = "PRelu".into();
            }
        }
        // Bias adds into the conv or dense layer they follow, when nothing else reads it.
        let uses = |nodes: &[RawNode], v: usize| nodes.iter().filter(|m| m.inputs.contains(&v)).count();
        for i in 0..n {
            let RawOp::BiasAdd(c) = nodes[i].op.clone() else { continue };
            let x = nodes[i].inputs[0];
            let name = nodes[i].name.clone();
            let fail = |why: &str| OnnxError(format!("node `{name}` (Add of a constant): {why}"));
            let p = producer(&nodes, x)
                .ok_or_else(|| fail("adding a constant to the image input is not supported"))?;
            if uses(&nodes, x) != 1 {
                return Err(fail("the layer before it is also read elsewhere"));
            }
            let channels = nodes[p].shape[0];
            let per_channel = {
                let d: Vec<usize> = c.dims().iter().copied().skip_while(|&d| d == 1).collect();
                let rank = nodes[p].shape.len();
                let mut full = vec![1usize; rank.saturating_sub(d.len())];
                full.extend(&d);
                full.len() == rank && full[0] == channels && full[1..].iter().all(|&d| d == 1)
            };
            if !per_channel {
                return Err(fail(&format!("a constant of dims {:?} is not a per-channel bias", c.dims())));
            }
            let b = c.as_f32();
            match &mut nodes[p].op {
                RawOp::Op(Op::Dense(d)) => add_bias(&mut d.bias, &b),
                RawOp::Op(Op::Conv(cv)) => add_bias(&mut cv.bias, &b),
                _ => return Err(fail("only a bias after Conv, Gemm or MatMul is supported")),
            }
            replace[i + 1] = x;
            nodes[i].inputs.clear();
        }
        // Resolve replacements, then keep what the output needs.
        let resolve = |replace: &[usize], mut v: usize| {
            while replace[v] != v {
                v = replace[v];
            }
            v
        };
        for nd in nodes.iter_mut() {
            for v in nd.inputs.iter_mut() {
                *v = resolve(&replace, *v);
            }
        }
        let outputs: Vec<usize> = outputs.iter().map(|&o| resolve(&replace, o)).collect();
        let mut live = vec![false; n + 1];
        for &o in &outputs {
            live[o] = true;
        }
        for i in (0..n).rev() {
            if live[i + 1] {
                for &v in &nodes[i].inputs {
                    live[v] = true;
                }
            }
        }
        let mut new_id = vec![usize::MAX; n + 1];
        new_id[0] = 0;
        let mut out = Vec::new();
        for (i, nd) in nodes.into_iter().enumerate() {
            if !live[i + 1] {
                continue;
            }
            let op = match nd.op {
                RawOp::Op(op) => op,
                _ => {
                    return err(format!(
                        "node `{}` ({}): not part of a pattern this reader knows (PReLU as relu(x) - a*relu(-x), bias Add)",
                        nd.name, nd.op_type
                    ));
                }
            };
            let inputs = nd.inputs.iter().map(|&v| new_id[v]).collect();
            out.push(Node { name: nd.name, op, inputs, shape: nd.shape });
            new_id[i + 1] = out.len();
        }
        if out.is_empty() {
            return err("the graph computes nothing from its input");
        }
        Ok((out, outputs.iter().map(|&o| new_id[o]).collect()))
    }
}

fn add_bias(bias: &mut Option<Vec<f32>>, b: &[f32]) {
    match bias {
        Some(v) => v.iter_mut().zip(b).for_each(|(x, y)| *x += y),
        None => *bias = Some(b.to_vec()),
    }
}
