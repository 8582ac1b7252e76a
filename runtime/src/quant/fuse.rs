//! Float graph -> the layers the int8 engine runs: BatchNorm folded into the conv or
//! dense layer before it, ReLU and Clip fused into the layer they follow, a flatten that
//! only feeds dense layers dropped (they read the map), a final softmax dropped (the
//! engine gives logits; the flag says to apply it).
//!
//! Layout ops cost nothing where the engine's channels-last arena already holds the bytes
//! in the order they ask for: a map `[C, H, W]` is stored `[H, W, C]`, which is exactly a
//! Transpose to `[H, W, C]`, and any Reshape of that is the same bytes again (a detector's
//! heads: Transpose, Reshape, Concat). Each float value is tracked as a map or as
//! row-major bytes; a flatten is inserted where a map must become row-major.

use crate::onnx::{BatchNorm, FloatGraph, OnnxError, Op, Pool, Sampling, Tensor, Unary};

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
    /// Two values' bytes joined: per block (`outer` of them), `runs[0]` of the first then
    /// `runs[1]` of the second.
    Concat {
        runs: [usize; 2],
    },
    /// Zero padding of a map's `[C, H, W]` axes.
    Pad {
        before: [usize; 3],
        after: [usize; 3],
    },
    /// An element-wise function, as a table of the 256 int8 inputs (any byte order).
    Lut(Unary),
    /// Upsampling of a map by whole factors.
    Upsample([usize; 2], Sampling),
    /// Softmax over each run of `run` consecutive bytes.
    Softmax {
        run: usize,
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
    /// The first output.
    pub output: usize,
    /// Every output: the float model's name and the plan value, whose bytes are in the
    /// float output's row-major order.
    pub outputs: Vec<(String, usize)>,
}

/// How a plan value's bytes hold a float value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// The float value is the map `[C, H, W]` (or vector) of the plan value's shape.
    Map,
    /// The bytes are the float value in row-major order.
    RowMajor,
}

/// `[C, H, W]` of a shape (vectors `[K, 1, 1]`).
fn as3(s: &[usize]) -> [usize; 3] {
    match *s {
        [c, h, w] => [c, h, w],
        _ => [s.iter().product(), 1, 1],
    }
}

/// Channels-last and row-major orders agree (one channel, or one pixel).
fn trivial(s: [usize; 3]) -> bool {
    s[0] == 1 || s[1] * s[2] == 1
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
    let mut b = Builder {
        g,
        map: vec![usize::MAX; g.nodes.len() + 1],
        layout: vec![Layout::Map; g.nodes.len() + 1],
        nodes: Vec::new(),
        softmax: false,
    };
    b.map[0] = 0;
    for (i, n) in g.nodes.iter().enumerate() {
        b.node(i + 1, n)?;
    }
    let mut outputs = Vec::with_capacity(g.outputs.len());
    for (name, fv) in &g.outputs {
        if b.map[*fv] == 0 {
            return Err(OnnxError(format!("output `{name}` is the input: the model computes nothing")));
        }
        outputs.push((name.clone(), b.row_major_value(*fv, name)));
    }
    let output = outputs.first().map_or(0, |o| o.1);
    if output == 0 {
        return Err(OnnxError("the model computes nothing from its input".into()));
    }
    if b.softmax && outputs.len() > 1 {
        return Err(OnnxError("a final softmax is only supported on models with one output".into()));
    }
    Ok(Plan { nodes: b.nodes, input_shape: g.input_shape, softmax: b.softmax, output, outputs })
}

/// The plan under construction: float value ids mapped to plan values and their layouts.
struct Builder<'g> {
    g: &'g FloatGraph,
    /// Float value id -> plan value id.
    map: Vec<usize>,
    layout: Vec<Layout>,
    nodes: Vec<QNode>,
    softmax: bool,
}

fn node_err<T>(n: &crate::onnx::Node, why: &str) -> Result<T, OnnxError> {
    Err(OnnxError(format!("node `{}` ({}): {why}", n.name, n.op.kind())))
}

impl Builder<'_> {
    /// `[C, H, W]` of plan value `pv`.
    fn pshape(&self, pv: usize) -> [usize; 3] {
        if pv == 0 { self.g.input_shape } else { as3(&self.nodes[pv - 1].shape) }
    }

    /// Float value `fv` can be read as the map its plan value holds.
    fn is_map(&self, fv: usize) -> bool {
        let p = self.pshape(self.map[fv]);
        self.layout[fv] == Layout::Map || (as3(&self.g.shape(fv)) == p && trivial(p))
    }

    /// Float value `fv`'s bytes are its row-major order.
    fn is_row_major(&self, fv: usize) -> bool {
        self.layout[fv] == Layout::RowMajor || trivial(self.pshape(self.map[fv]))
    }

    /// Float value `fv` aliases plan value `pv` with `layout`.
    fn alias(&mut self, fv: usize, pv: usize, layout: Layout) {
        self.map[fv] = pv;
        self.layout[fv] = layout;
    }

    fn push(&mut self, name: &str, op: QOp, inputs: Vec<usize>, shape: Vec<usize>, fv: usize) -> usize {
        self.nodes.push(QNode { name: name.into(), op, inputs, shape, clamp: None, float_value: fv });
        self.nodes.len()
    }

    /// Float value `fv` as row-major bytes: itself, or a flatten of its map.
    fn row_major_value(&mut self, fv: usize, name: &str) -> usize {
        if self.is_row_major(fv) {
            return self.map[fv];
        }
        let len = self.g.shape(fv).iter().product();
        let pv = self.map[fv];
        self.push(&format!("{name}.flatten"), QOp::Flatten, vec![pv], vec![len], fv)
    }

    /// Readers of float value `v` (and one for being a graph output).
    fn uses(&self, v: usize) -> usize {
        let g = self.g;
        g.nodes.iter().filter(|n| n.inputs.contains(&v)).count() + g.outputs.iter().any(|o| o.1 == v) as usize
    }

    /// The plan node that made `n`'s input, when only `n` reads it.
    fn sole_producer(&self, n: &crate::onnx::Node) -> Option<usize> {
        let x = self.map[n.inputs[0]];
        (x > 0 && self.uses(n.inputs[0]) == 1 && self.nodes[x - 1].float_value == n.inputs[0]).then(|| x - 1)
    }

    /// Adds float node `n`, which makes float value `fv`.
    fn node(&mut self, fv: usize, n: &crate::onnx::Node) -> Result<(), OnnxError> {
        let g = self.g;
        let x = self.map[n.inputs[0]];
        let layout_op = matches!(
            n.op,
            Op::Transpose { .. }
                | Op::Reshape
                | Op::Concat { .. }
                | Op::Flatten
                | Op::Softmax { .. }
                | Op::Unary(_)
        );
        if !layout_op && let Some(&v) = n.inputs.iter().find(|&&v| !self.is_map(v)) {
            return node_err(
                n,
                &format!(
                    "reads `{}` in a transposed or reshaped layout; the int8 engine runs [C, H, W] maps, with layout ops only before a Concat or an output",
                    self.value_name(v)
                ),
            );
        }
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
                let Some(p) = self.sole_producer(n) else {
                    return node_err(
                        n,
                        "BatchNormalization must follow a Conv or dense layer that nothing else reads",
                    );
                };
                let clamp = self.nodes[p].clamp;
                match (&mut self.nodes[p].op, clamp) {
                    (QOp::Conv { weight, bias, .. } | QOp::Dense { weight, bias }, None) => {
                        fold_bn(weight, bias, bn)
                    }
                    _ => {
                        return node_err(
                            n,
                            "BatchNormalization must follow a Conv or dense layer (before any activation)",
                        );
                    }
                }
                self.nodes[p].float_value = fv;
                self.alias(fv, x, Layout::Map);
                return Ok(());
            }
            Op::Relu | Op::Clip { .. } => {
                let (lo, hi) = match n.op {
                    Op::Clip { min, max } => (min, max),
                    _ => (0.0, f32::INFINITY),
                };
                if let Some(p) = self.sole_producer(n)
                    && matches!(self.nodes[p].op, QOp::Conv { .. } | QOp::Dense { .. } | QOp::Add)
                {
                    let (a, b) = self.nodes[p].clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
                    self.nodes[p].clamp = Some((a.max(lo), b.min(hi)));
                    self.nodes[p].float_value = fv;
                    self.alias(fv, x, Layout::Map);
                    return Ok(());
                }
                if lo != 0.0 || hi.is_finite() {
                    return node_err(n, "Clip must follow a Conv, dense layer or Add");
                }
                // A lone ReLU is a PReLU with slope 0.
                QOp::PRelu { slope: Tensor::new(vec![1; n.shape.len()], vec![0.0]) }
            }
            Op::PRelu { slope } => QOp::PRelu { slope: slope.clone() },
            Op::MaxPool(p) => QOp::MaxPool(p.clone()),
            Op::AvgPool(p) => QOp::AvgPool(p.clone()),
            Op::GlobalAvgPool => QOp::GlobalAvgPool,
            Op::Add => QOp::Add,
            Op::Pad { before, after } => QOp::Pad { before: *before, after: *after },
            Op::Upsample { factor, sampling } => QOp::Upsample(*factor, *sampling),
            Op::Flatten => {
                // Dense layers read the map itself (their weights are packed for the arena's
                // [H, W, C] order), so a flatten that only feeds them costs nothing.
                let readers = || g.nodes.iter().filter(|m| m.inputs.contains(&fv));
                let is_output = g.outputs.iter().any(|o| o.1 == fv);
                if !is_output
                    && self.is_map(n.inputs[0])
                    && readers().count() > 0
                    && readers().all(|m| matches!(m.op, Op::Dense(_)))
                {
                    self.alias(fv, x, Layout::Map);
                    return Ok(());
                }
                let pv = self.row_major_value(n.inputs[0], &n.name);
                self.alias(fv, pv, Layout::RowMajor);
                return Ok(());
            }
            Op::Reshape => {
                let pv = self.row_major_value(n.inputs[0], &n.name);
                self.alias(fv, pv, Layout::RowMajor);
                return Ok(());
            }
            Op::Transpose { perm } => {
                let s = g.shape(n.inputs[0]);
                let identity = perm.iter().enumerate().all(|(i, &p)| i == p);
                let layout = if identity {
                    self.layout[n.inputs[0]]
                } else if perm == &[1, 2, 0] && self.is_map(n.inputs[0]) {
                    // [C, H, W] -> [H, W, C]: the arena's own order.
                    Layout::RowMajor
                } else if perm == &[2, 0, 1]
                    && self.is_row_major(n.inputs[0])
                    && self.pshape(x) == [s[2], s[0], s[1]]
                {
                    // Back from [H, W, C] to the map the bytes hold.
                    Layout::Map
                } else {
                    return node_err(
                        n,
                        &format!(
                            "perm {perm:?} of {s:?} needs a copy, which the int8 engine does not make yet"
                        ),
                    );
                };
                self.alias(fv, x, layout);
                return Ok(());
            }
            Op::Concat { axis } => return self.concat(fv, n, *axis),
            Op::Unary(u) => {
                // Element-wise, so the bytes keep their order (a map's or row-major).
                let pv = self.push(&n.name, QOp::Lut(*u), vec![x], self.pshape(x).to_vec(), fv);
                self.alias(fv, pv, self.layout[n.inputs[0]]);
                return Ok(());
            }
            Op::Softmax { axis } => return self.softmax(fv, n, *axis),
        };
        let inputs = n.inputs.iter().map(|&v| self.map[v]).collect();
        let pv = self.push(&n.name, q, inputs, n.shape.clone(), fv);
        self.alias(fv, pv, Layout::Map);
        Ok(())
    }

    /// Softmax: dropped when it ends a one-output model over the whole output (a
    /// classifier; the file's flag says to apply it), else an int8 op over runs of the
    /// engine's bytes: the last axis of row-major bytes, or a map's channels.
    fn softmax(&mut self, fv: usize, n: &crate::onnx::Node, axis: usize) -> Result<(), OnnxError> {
        let (x, s) = (n.inputs[0], self.g.shape(n.inputs[0]).to_vec());
        let one_run = s.iter().enumerate().all(|(i, &d)| i == axis || d == 1);
        if one_run && fv == self.g.output && self.g.outputs.len() == 1 {
            self.softmax = true;
            self.alias(fv, self.map[x], self.layout[x]);
            return Ok(());
        }
        // The runs are consecutive bytes: one run, the last axis of row-major bytes, or the
        // channels of a map (the arena is channels-last).
        let contiguous = one_run
            || (self.is_row_major(x) && axis + 1 == s.len())
            || (self.is_map(x) && s.len() == 3 && axis == 0);
        if !contiguous {
            return node_err(
                n,
                "softmax over this axis needs a copy (supported: the last axis, or a map's channels)",
            );
        }
        let run = s[axis];
        let pv = self.push(
            &n.name,
            QOp::Softmax { run },
            vec![self.map[x]],
            self.pshape(self.map[x]).to_vec(),
            fv,
        );
        self.alias(fv, pv, self.layout[x]);
        Ok(())
    }

    /// The float model's name of value `v` (its producer's node name).
    fn value_name(&self, v: usize) -> String {
        if v == 0 { self.g.input_name.clone() } else { self.g.nodes[v - 1].name.clone() }
    }

    /// Concat as two-input joins of bytes: along an axis of maps (channels: per pixel; rows
    /// or columns: per map or per row), or along any axis of row-major tensors. More than
    /// two inputs join left to right.
    fn concat(&mut self, fv: usize, n: &crate::onnx::Node, axis: usize) -> Result<(), OnnxError> {
        let g = self.g;
        let maps = n.inputs.iter().all(|&v| self.is_map(v) && g.shape(v).len() == 3);
        let rows = n.inputs.iter().all(|&v| self.is_row_major(v));
        // Bytes per block of each input, and the number of blocks.
        let (outer, layout) = if maps {
            let [_, h, w] = as3(&g.shape(n.inputs[0]));
            ([h * w, 1, h][axis.min(2)], Layout::Map)
        } else if rows {
            (g.shape(n.inputs[0])[..axis].iter().product::<usize>(), Layout::RowMajor)
        } else {
            return node_err(n, "joins a map with a transposed tensor: not in the int8 engine yet");
        };
        let run = |v: usize| g.shape(v).iter().product::<usize>() / outer;
        let mut left = self.map[n.inputs[0]];
        let mut left_run = run(n.inputs[0]);
        for (k, &v) in n.inputs.iter().enumerate().skip(1) {
            let last = k + 1 == n.inputs.len();
            let joined = left_run + run(v);
            // A partial join's shape: the final one with the axis cut at what it holds so far.
            let shape = match layout {
                Layout::Map => {
                    let mut s = n.shape.clone();
                    s[axis] = joined * s[axis] / (n.shape.iter().product::<usize>() / outer);
                    s
                }
                Layout::RowMajor => vec![outer * joined],
            };
            let name = if last { n.name.clone() } else { format!("{}.{k}", n.name) };
            // Partial joins take the final join's range (a subset of its values).
            left = self.push(
                &name,
                QOp::Concat { runs: [left_run, run(v)] },
                vec![left, self.map[v]],
                shape,
                fv,
            );
            left_run = joined;
        }
        self.alias(fv, left, layout);
        Ok(())
    }
}
