//! ONNX protobuf -> [`FloatGraph`]: op lowering with shape checks here, constant folding
//! in `fold`, then the rewrites (PReLU pattern, bias adds, dead nodes) in `rewrite`.

mod fold;
mod rewrite;

use std::collections::BTreeMap;

use prost::Message;

use super::OnnxError;
use super::graph::*;
use super::proto::{AttributeProto, ModelProto, NodeProto, TensorProto, data_type};

type Result<T> = core::result::Result<T, OnnxError>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(OnnxError(msg.into()))
}

/// The most values one tensor may hold (256 MiB of f32): far above any edge model's
/// (BlazeFace's largest is 98,304; a 640x640x64 map is 26 M), and a bound on what a
/// malformed file's dims can make the reader or the evaluator allocate.
pub const MAX_VALUES: usize = 1 << 26;

/// The number of values of `dims`, or an error naming `what` when it overflows or passes
/// [`MAX_VALUES`].
fn numel(dims: &[usize], what: &str) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_VALUES)
        .ok_or_else(|| OnnxError(format!("{what}: dims {dims:?} hold more than {MAX_VALUES} values")))
}

/// Parses ONNX bytes and lowers the graph. Errors name the node, input or field at fault.
pub fn read_onnx(bytes: &[u8]) -> Result<FloatGraph> {
    let model = ModelProto::decode(bytes).map_err(|e| {
        OnnxError(format!("not an ONNX model (protobuf: {e}); is the file truncated or of another format?"))
    })?;
    Lowering::run(model)
}

/// A constant known while reading (initializers, Constant nodes, folded shape arithmetic).
#[derive(Clone, Debug)]
enum Const {
    F32(Vec<usize>, Vec<f32>),
    I64(Vec<usize>, Vec<i64>),
}

impl Const {
    fn dims(&self) -> &[usize] {
        match self {
            Const::F32(d, _) | Const::I64(d, _) => d,
        }
    }
    fn as_f32(&self) -> Vec<f32> {
        match self {
            Const::F32(_, v) => v.clone(),
            Const::I64(_, v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
    fn as_i64(&self) -> Vec<i64> {
        match self {
            Const::F32(_, v) => v.iter().map(|&x| x as i64).collect(),
            Const::I64(_, v) => v.clone(),
        }
    }
    fn with_dims(self, dims: Vec<usize>) -> Const {
        match self {
            Const::F32(_, v) => Const::F32(dims, v),
            Const::I64(_, v) => Const::I64(dims, v),
        }
    }
}

#[derive(Clone, Debug)]
enum Val {
    Const(Const),
    /// Value id in the graph being built.
    Act(usize),
}

/// Ops that only exist until the rewrites have run.
#[derive(Clone, Debug)]
enum RawOp {
    Op(Op),
    Neg,
    MulConst(Const),
    Sub,
    BiasAdd(Const),
}

#[derive(Clone, Debug)]
struct RawNode {
    name: String,
    op_type: String,
    op: RawOp,
    inputs: Vec<usize>,
    shape: Vec<usize>,
}

struct Lowering {
    values: BTreeMap<String, Val>,
    nodes: Vec<RawNode>,
    input_shape: [usize; 3],
    /// The default domain's opset (Softmax's meaning changed at 13).
    opset: i64,
}

/// A NaN weight makes every output NaN, which would be read as a confident answer. (An
/// infinity can be meant, as a Clip without an upper bound, so it is left to the checks
/// that need finite values.)
fn refuse_nan(values: &[f32], what: &str) -> Result<()> {
    match values.iter().filter(|v| v.is_nan()).count() {
        0 => Ok(()),
        n => err(format!("{what}: {n} of its {} values are NaN", values.len())),
    }
}

fn tensor_const(t: &TensorProto, what: &str) -> Result<Const> {
    if !t.external_data.is_empty() {
        return err(format!("{what}: external data (a side file) is not supported"));
    }
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| OnnxError(format!("{what}: negative dimension {d}"))))
        .collect::<Result<_>>()?;
    let n = numel(&dims, what)?;
    let raw = &t.raw_data;
    let c = match t.data_type {
        data_type::FLOAT => {
            let v: Vec<f32> = if !raw.is_empty() {
                raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            } else {
                t.float_data.clone()
            };
            refuse_nan(&v, what)?;
            Const::F32(dims, v)
        }
        data_type::DOUBLE => {
            let v: Vec<f32> = if !raw.is_empty() {
                raw.chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                    .collect()
            } else {
                t.double_data.iter().map(|&x| x as f32).collect()
            };
            refuse_nan(&v, what)?;
            Const::F32(dims, v)
        }
        data_type::INT64 => {
            let v: Vec<i64> = if !raw.is_empty() {
                raw.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))).collect()
            } else {
                t.int64_data.clone()
            };
            Const::I64(dims, v)
        }
        data_type::INT32 => {
            let v: Vec<i64> = if !raw.is_empty() {
                raw.chunks_exact(4)
                    .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")) as i64)
                    .collect()
            } else {
                t.int32_data.iter().map(|&x| x as i64).collect()
            };
            Const::I64(dims, v)
        }
        other => {
            return err(format!(
                "{what}: tensor data type {other} is not supported (float, double, int32, int64 are)"
            ));
        }
    };
    let len = match &c {
        Const::F32(_, v) => v.len(),
        Const::I64(_, v) => v.len(),
    };
    if len != n {
        return err(format!("{what}: {len} values for dims {:?} ({n} expected)", c.dims()));
    }
    Ok(c)
}

/// Reads attributes of one node.
struct Attrs<'a> {
    node: &'a NodeProto,
}

impl<'a> Attrs<'a> {
    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }
    fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).map_or(default, |a| a.i)
    }
    fn float(&self, name: &str, default: f32) -> f32 {
        self.get(name).map_or(default, |a| a.f)
    }
    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name).map(|a| a.ints.clone())
    }
    fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }
}

fn pair(v: Option<Vec<i64>>, default: usize, what: &str) -> Result<[usize; 2]> {
    match v {
        None => Ok([default, default]),
        Some(v) if v.len() == 2 && v.iter().all(|&x| x >= 1) => Ok([v[0] as usize, v[1] as usize]),
        Some(v) => err(format!("{what} must be two positive numbers, got {v:?}")),
    }
}

/// ONNX pads `[top, left, bottom, right]`, or computed from `auto_pad`.
fn pads(
    a: &Attrs,
    input_hw: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    dil: [usize; 2],
) -> Result<[usize; 4]> {
    let auto = a.string("auto_pad").unwrap_or_default();
    match auto.as_str() {
        "" | "NOTSET" => match a.ints("pads") {
            None => Ok([0; 4]),
            Some(p) if p.len() == 4 && p.iter().all(|&x| x >= 0) => {
                Ok([p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize])
            }
            Some(p) => err(format!("pads must be four non-negative numbers, got {p:?}")),
        },
        "VALID" => Ok([0; 4]),
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut out = [0usize; 4];
            for i in 0..2 {
                let o = input_hw[i].div_ceil(stride[i]);
                let eff = dil[i] * (kernel[i] - 1) + 1;
                let total = ((o - 1) * stride[i] + eff).saturating_sub(input_hw[i]);
                let (small, big) = (total / 2, total - total / 2);
                let (begin, end) = if auto == "SAME_UPPER" { (small, big) } else { (big, small) };
                out[i] = begin;
                out[i + 2] = end;
            }
            Ok(out)
        }
        other => err(format!("auto_pad {other:?} is not supported")),
    }
}

/// The nodes that turn an NHWC image input (`[N, H, W, C]`, tf2onnx's layout) into NCHW,
/// when they are its only readers: `Transpose(perm = [0, 3, 1, 2])`, or, for one channel, a
/// Reshape to `[N, 1, H, W]` (the same bytes). None when the input is NCHW.
fn nhwc_layout_readers(
    nodes: &[NodeProto],
    input: &str,
    [h, w, c]: [usize; 3],
    values: &BTreeMap<String, Val>,
) -> Option<Vec<usize>> {
    let readers: Vec<usize> =
        (0..nodes.len()).filter(|&i| nodes[i].input.iter().any(|n| n == input)).collect();
    let to_nchw = |node: &NodeProto| match node.op_type.as_str() {
        "Transpose" => Attrs { node }.ints("perm") == Some(vec![0, 3, 1, 2]),
        "Reshape" if c == 1 && node.input.first().map(String::as_str) == Some(input) => {
            let Some(Val::Const(target)) = node.input.get(1).and_then(|n| values.get(n)) else {
                return false;
            };
            let allowzero = Attrs { node }.int("allowzero", 0) != 0;
            reshape_dims(&[1, h, w, c], &target.as_i64(), allowzero).is_ok_and(|out| out == [1, c, h, w])
        }
        _ => false,
    };
    let nhwc = c <= 4 && h > 4 && w > 4 && !readers.is_empty() && readers.iter().all(|&i| to_nchw(&nodes[i]));
    nhwc.then_some(readers)
}

fn window_out(input: usize, pad: usize, kernel: usize, stride: usize, dil: usize) -> Option<usize> {
    let eff = dil * (kernel - 1) + 1;
    (input + pad).checked_sub(eff).map(|v| v / stride + 1)
}

impl Lowering {
    fn run(model: ModelProto) -> Result<FloatGraph> {
        let graph = model.graph.ok_or_else(|| OnnxError("the ONNX model has no graph".into()))?;
        let metadata: Vec<(String, String)> =
            model.metadata_props.iter().map(|e| (e.key.clone(), e.value.clone())).collect();
        // An already quantized model (QDQ or QOperator) is not a float model to start from.
        if let Some(n) = graph.node.iter().find(|n| {
            matches!(n.op_type.as_str(), "QuantizeLinear" | "DequantizeLinear" | "DynamicQuantizeLinear")
                || n.op_type.starts_with("QLinear")
        }) {
            return err(format!(
                "node `{}` ({}): this model is already quantized; give the float model it was made from",
                n.name, n.op_type
            ));
        }
        let mut values = BTreeMap::new();
        for t in &graph.initializer {
            values.insert(t.name.clone(), Val::Const(tensor_const(t, &format!("initializer `{}`", t.name))?));
        }
        // The image input: the one graph input that is not an initializer.
        let inputs: Vec<_> = graph.input.iter().filter(|i| !values.contains_key(&i.name)).collect();
        let [input] = inputs.as_slice() else {
            return err(format!("expected one image input, the graph has {}", inputs.len()));
        };
        let dims: Vec<Option<i64>> = input
            .r#type
            .as_ref()
            .and_then(|t| t.tensor_type.as_ref())
            .and_then(|t| t.shape.as_ref())
            .map(|s| s.dim.iter().map(|d| d.dim_value.filter(|&v| v > 0)).collect())
            .unwrap_or_default();
        let [_, Some(d1), Some(d2), Some(d3)] = dims.as_slice() else {
            return err(format!(
                "input `{}`: expected a [batch, channels, height, width] image input with fixed channels and size, got {dims:?}",
                input.name
            ));
        };
        let dims = [*d1 as usize, *d2 as usize, *d3 as usize];
        numel(&dims, &format!("input `{}`", input.name))?;
        let nhwc_readers = nhwc_layout_readers(&graph.node, &input.name, dims, &values);
        // Our arena stores images channels-last, so an NHWC input is already in our layout:
        // its NHWC -> NCHW readers become the image itself.
        let input_shape = match &nhwc_readers {
            Some(_) => [dims[2], dims[0], dims[1]],
            None => dims,
        };
        values.insert(input.name.clone(), Val::Act(0));
        let skipped = nhwc_readers.unwrap_or_default();
        for &i in &skipped {
            for out in &graph.node[i].output {
                values.insert(out.clone(), Val::Act(0));
            }
        }
        let opset = model
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map_or(13, |o| o.version);
        let mut l = Lowering { values, nodes: Vec::new(), input_shape, opset };
        for (i, node) in graph.node.iter().enumerate() {
            if skipped.contains(&i) {
                continue;
            }
            let label = if node.name.is_empty() { format!("#{i}") } else { node.name.clone() };
            l.node(node, &label)
                .map_err(|e| OnnxError(format!("node `{label}` ({}): {}", node.op_type, e.0)))?;
        }
        if graph.output.is_empty() {
            return err("the graph has no output");
        }
        let mut outs = Vec::new();
        for output in &graph.output {
            outs.push(match l.values.get(&output.name) {
                Some(Val::Act(id)) => *id,
                Some(Val::Const(_)) => return err(format!("output `{}` is a constant", output.name)),
                None => return err(format!("output `{}` is produced by no node", output.name)),
            });
        }
        let (nodes, output_ids) = l.finish(&outs)?;
        Ok(FloatGraph {
            input_name: input.name.clone(),
            output_name: graph.output[0].name.clone(),
            input_shape,
            input_channels_last: !skipped.is_empty(),
            nodes,
            output: output_ids[0],
            outputs: graph.output.iter().map(|o| o.name.clone()).zip(output_ids).collect(),
            metadata,
        })
    }

    fn shape(&self, id: usize) -> Vec<usize> {
        if id == 0 { self.input_shape.to_vec() } else { self.nodes[id - 1].shape.clone() }
    }

    fn input(&self, node: &NodeProto, i: usize) -> Result<Option<&Val>> {
        match node.input.get(i) {
            None => Ok(None),
            Some(name) if name.is_empty() => Ok(None),
            Some(name) => self
                .values
                .get(name)
                .map(Some)
                .ok_or_else(|| OnnxError(format!("input `{name}` is produced by no earlier node"))),
        }
    }

    fn konst(&self, node: &NodeProto, i: usize, what: &str) -> Result<Const> {
        match self.input(node, i)? {
            Some(Val::Const(c)) => Ok(c.clone()),
            Some(Val::Act(_)) => err(format!("{what} (input {i}) must be a constant (an initializer)")),
            None => err(format!("{what} (input {i}) is missing")),
        }
    }

    fn act(&self, node: &NodeProto, i: usize) -> Result<usize> {
        match self.input(node, i)? {
            Some(Val::Act(id)) => Ok(*id),
            _ => err(format!("input {i} must come from the image, not a constant")),
        }
    }

    fn emit(
        &mut self,
        node: &NodeProto,
        label: &str,
        op: RawOp,
        inputs: Vec<usize>,
        shape: Vec<usize>,
    ) -> Result<()> {
        numel(&shape, &format!("node `{label}` ({}) output", node.op_type))?;
        // Name layers after their weights where the exporter did (`Baseline.conv.weight` ->
        // `Baseline.conv`), which is what users recognise.
        let name = node
            .input
            .get(1)
            .filter(|n| matches!(self.values.get(*n), Some(Val::Const(_))))
            .and_then(|n| n.strip_suffix(".weight").or_else(|| n.strip_suffix(".gamma")))
            .map(str::to_string)
            .unwrap_or_else(|| label.to_string());
        self.nodes.push(RawNode { name, op_type: node.op_type.clone(), op, inputs, shape });
        let id = self.nodes.len();
        let out = node.output.first().ok_or_else(|| OnnxError("node has no output".into()))?;
        self.values.insert(out.clone(), Val::Act(id));
        Ok(())
    }

    fn set_const(&mut self, node: &NodeProto, c: Const) -> Result<()> {
        let out = node.output.first().ok_or_else(|| OnnxError("node has no output".into()))?;
        self.values.insert(out.clone(), Val::Const(c));
        Ok(())
    }

    fn node(&mut self, node: &NodeProto, label: &str) -> Result<()> {
        if !node.domain.is_empty() && node.domain != "ai.onnx" {
            return err(format!("operator domain `{}` is not supported", node.domain));
        }
        let a = Attrs { node };
        let all_const = node
            .input
            .iter()
            .filter(|n| !n.is_empty())
            .all(|n| matches!(self.values.get(n), Some(Val::Const(_))));
        match node.op_type.as_str() {
            "Constant" => {
                let c = if let Some(t) = a.get("value").and_then(|x| x.t.as_ref()) {
                    tensor_const(t, "value")?
                } else if let Some(x) = a.get("value_float") {
                    Const::F32(vec![], vec![x.f])
                } else if let Some(x) = a.get("value_floats") {
                    Const::F32(vec![x.floats.len()], x.floats.clone())
                } else if let Some(x) = a.get("value_int") {
                    Const::I64(vec![], vec![x.i])
                } else if let Some(x) = a.get("value_ints") {
                    Const::I64(vec![x.ints.len()], x.ints.clone())
                } else {
                    return err("Constant without a supported value attribute");
                };
                self.set_const(node, c)
            }
            "Shape" => {
                let dims: Vec<i64> = match self.input(node, 0)? {
                    Some(Val::Act(id)) => {
                        let id = *id;
                        core::iter::once(1).chain(self.shape(id).iter().map(|&d| d as i64)).collect()
                    }
                    Some(Val::Const(c)) => c.dims().iter().map(|&d| d as i64).collect(),
                    None => return err("missing input"),
                };
                let (start, end) = (a.int("start", 0), a.int("end", dims.len() as i64));
                let r = dims.len() as i64;
                let s = (if start < 0 { start + r } else { start }).clamp(0, r) as usize;
                let e = (if end < 0 { end + r } else { end }).clamp(0, r) as usize;
                let v = dims[s..e.max(s)].to_vec();
                self.set_const(node, Const::I64(vec![v.len()], v))
            }
            op if all_const => self.fold(node, op, &a),
            "Conv" => self.conv(node, label, &a),
            "BatchNormalization" => {
                let x = self.act(node, 0)?;
                let shape = self.shape(x);
                if a.int("training_mode", 0) != 0 {
                    return err("training_mode=1 is not supported: export in inference mode");
                }
                let c = shape[0];
                let get = |i, what| -> Result<Vec<f32>> {
                    let k = self.konst(node, i, what)?;
                    let v = k.as_f32();
                    if v.len() != c {
                        return err(format!("{what} has {} values for {c} channels", v.len()));
                    }
                    Ok(v)
                };
                let bn = BatchNorm {
                    scale: get(1, "scale")?,
                    bias: get(2, "B")?,
                    mean: get(3, "mean")?,
                    var: get(4, "var")?,
                    epsilon: a.float("epsilon", 1e-5),
                };
                self.emit(node, label, RawOp::Op(Op::BatchNorm(bn)), vec![x], shape)
            }
            "Relu" => self.unary(node, label, RawOp::Op(Op::Relu)),
            "Sigmoid" => self.unary(node, label, RawOp::Op(Op::Unary(Unary::Sigmoid))),
            "Tanh" => self.unary(node, label, RawOp::Op(Op::Unary(Unary::Tanh))),
            "HardSwish" => self.unary(node, label, RawOp::Op(Op::Unary(Unary::HardSwish))),
            "HardSigmoid" => {
                let a = Attrs { node };
                let u = Unary::HardSigmoid { alpha: a.float("alpha", 0.2), beta: a.float("beta", 0.5) };
                self.unary(node, label, RawOp::Op(Op::Unary(u)))
            }
            "Neg" => self.unary(node, label, RawOp::Neg),
            "Clip" => {
                let x = self.act(node, 0)?;
                let bound = |i: usize, attr: &str, default: f32| -> Result<f32> {
                    Ok(match self.input(node, i)? {
                        Some(Val::Const(c)) => c.as_f32().first().copied().unwrap_or(default),
                        Some(Val::Act(_)) => return err("Clip bounds must be constants"),
                        None => a.float(attr, default),
                    })
                };
                let (min, max) = (bound(1, "min", f32::NEG_INFINITY)?, bound(2, "max", f32::INFINITY)?);
                if min > max {
                    return err(format!("Clip min {min} > max {max}"));
                }
                let shape = self.shape(x);
                self.emit(node, label, RawOp::Op(Op::Clip { min, max }), vec![x], shape)
            }
            "PRelu" => {
                let x = self.act(node, 0)?;
                let slope = self.konst(node, 1, "slope")?;
                let shape = self.shape(x);
                let slope = broadcast_slope(&slope, &shape)?;
                self.emit(node, label, RawOp::Op(Op::PRelu { slope }), vec![x], shape)
            }
            "LeakyRelu" => {
                let x = self.act(node, 0)?;
                let shape = self.shape(x);
                let slope = Tensor::new(vec![1; shape.len()], vec![a.float("alpha", 0.01)]);
                self.emit(node, label, RawOp::Op(Op::PRelu { slope }), vec![x], shape)
            }
            "MaxPool" | "AveragePool" => self.pool(node, label, &a),
            "GlobalAveragePool" => {
                let x = self.act(node, 0)?;
                let s = self.shape(x);
                if s.len() != 3 {
                    return err(format!("expects [C, H, W], got {s:?}"));
                }
                self.emit(node, label, RawOp::Op(Op::GlobalAvgPool), vec![x], vec![s[0], 1, 1])
            }
            "Flatten" => {
                let x = self.act(node, 0)?;
                if a.int("axis", 1) != 1 {
                    return err("only axis=1 (keep the batch axis) is supported");
                }
                let n = self.shape(x).iter().product();
                self.emit(node, label, RawOp::Op(Op::Flatten), vec![x], vec![n])
            }
            "Reshape" => {
                let x = self.act(node, 0)?;
                let target = self.konst(node, 1, "shape")?.as_i64();
                let mut full = vec![1usize];
                full.extend(self.shape(x));
                let out = reshape_dims(&full, &target, a.int("allowzero", 0) != 0)?;
                let flat = [1usize, full[1..].iter().product()];
                if out == full {
                    self.alias(node, x)
                } else if out == flat {
                    self.emit(node, label, RawOp::Op(Op::Flatten), vec![x], vec![flat[1]])
                } else if out.first() == Some(&1) && out.len() >= 2 {
                    self.emit(node, label, RawOp::Op(Op::Reshape), vec![x], out[1..].to_vec())
                } else {
                    err(format!("reshaping {full:?} to {out:?} changes the batch axis"))
                }
            }
            "Squeeze" | "Unsqueeze" => {
                // Accept the no-op forms around dense layers ([1, K, 1, 1] <-> [1, K]).
                let x = self.act(node, 0)?;
                let s = self.shape(x);
                if node.op_type == "Squeeze" && s.len() == 3 && s[1] == 1 && s[2] == 1 {
                    self.emit(node, label, RawOp::Op(Op::Flatten), vec![x], vec![s[0]])
                } else {
                    err(format!("{} of an activation {s:?} is not supported", node.op_type))
                }
            }
            "Pad" => self.pad(node, label, &a),
            "Resize" | "Upsample" => self.resize(node, label, &a),
            "Transpose" => {
                let x = self.act(node, 0)?;
                let s = self.shape(x);
                let perm = a.ints("perm").unwrap_or_else(|| (0..=s.len() as i64).rev().collect());
                let mut sorted = perm.clone();
                sorted.sort();
                if perm.len() != s.len() + 1
                    || sorted != (0..perm.len() as i64).collect::<Vec<_>>()
                    || perm[0] != 0
                {
                    return err(format!(
                        "perm {perm:?} must keep the batch axis first and reorder all {} axes",
                        s.len() + 1
                    ));
                }
                let perm: Vec<usize> = perm[1..].iter().map(|&p| p as usize - 1).collect();
                let shape = perm.iter().map(|&p| s[p]).collect();
                self.emit(node, label, RawOp::Op(Op::Transpose { perm }), vec![x], shape)
            }
            "Concat" => {
                let xs: Vec<usize> =
                    (0..node.input.len()).map(|i| self.act(node, i)).collect::<Result<_>>()?;
                let shapes: Vec<Vec<usize>> = xs.iter().map(|&x| self.shape(x)).collect();
                let rank = shapes[0].len() as i64 + 1;
                let axis = a.int("axis", 1);
                let axis = if axis < 0 { axis + rank } else { axis };
                if axis < 1 || axis >= rank {
                    return err(format!(
                        "axis {} must be a non-batch axis of a rank-{rank} tensor",
                        a.int("axis", 1)
                    ));
                }
                let ax = axis as usize - 1;
                let mut shape = shapes[0].clone();
                for sh in &shapes[1..] {
                    let same = sh.len() == shape.len()
                        && sh.iter().zip(&shape).enumerate().all(|(i, (p, q))| i == ax || p == q);
                    if !same {
                        return err(format!("inputs of shapes {shapes:?} do not join along axis {axis}"));
                    }
                    shape[ax] += sh[ax];
                }
                self.emit(node, label, RawOp::Op(Op::Concat { axis: ax }), xs, shape)
            }
            "Dropout" | "Identity" => {
                let x = self.act(node, 0)?;
                self.alias(node, x)
            }
            "MatMul" => {
                let x = self.act(node, 0)?;
                let w = self.konst(node, 1, "weight")?;
                let s = self.shape(x);
                let (&[k, n], &[k_in]) = (w.dims(), s.as_slice()) else {
                    return err(format!("expects [batch, K] x [K, N], got {s:?} x {:?}", w.dims()));
                };
                if k != k_in {
                    return err(format!("weight is [{k}, {n}] but the input has {k_in} features"));
                }
                let weight = transpose2(&w.as_f32(), k, n);
                let dense = Dense { weight: Tensor::new(vec![n, k], weight), bias: None };
                self.emit(node, label, RawOp::Op(Op::Dense(dense)), vec![x], vec![n])
            }
            "Gemm" => {
                let x = self.act(node, 0)?;
                if a.int("transA", 0) != 0 {
                    return err("transA=1 is not supported");
                }
                let w = self.konst(node, 1, "B (weight)")?;
                let &[r, c] = w.dims() else { return err(format!("weight must be 2-D, got {:?}", w.dims())) };
                let (alpha, beta) = (a.float("alpha", 1.0), a.float("beta", 1.0));
                let trans_b = a.int("transB", 0) != 0;
                let (n, k) = if trans_b { (r, c) } else { (c, r) };
                let s = self.shape(x);
                if s != [k] {
                    return err(format!("weight expects {k} input features, the input is {s:?}"));
                }
                let mut weight = if trans_b { w.as_f32() } else { transpose2(&w.as_f32(), k, n) };
                weight.iter_mut().for_each(|v| *v *= alpha);
                let bias = match self.input(node, 2)? {
                    None => None,
                    Some(Val::Const(b)) => {
                        let b = b.as_f32();
                        let b: Vec<f32> = if b.len() == 1 { vec![b[0]; n] } else { b };
                        if b.len() != n {
                            return err(format!("bias C has {} values for {n} outputs", b.len()));
                        }
                        Some(b.iter().map(|v| v * beta).collect())
                    }
                    Some(Val::Act(_)) => return err("bias C must be a constant"),
                };
                let dense = Dense { weight: Tensor::new(vec![n, k], weight), bias };
                self.emit(node, label, RawOp::Op(Op::Dense(dense)), vec![x], vec![n])
            }
            "Add" | "Sub" | "Mul" => self.binary(node, label),
            "Softmax" => self.softmax(node, label, &a),
            other => err(format!(
                "operator {other} is not supported (supported: Conv, BatchNormalization, Relu, PRelu, LeakyRelu, Clip, Sigmoid, Tanh, HardSigmoid, HardSwish, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape, Squeeze, Unsqueeze, Transpose, Pad, Concat, Resize (nearest and linear, whole factors), Gemm, MatMul, Add, Sub, Mul, Softmax, Dropout, Identity, and constant shape arithmetic)"
            )),
        }
    }

    fn alias(&mut self, node: &NodeProto, x: usize) -> Result<()> {
        let out = node.output.first().ok_or_else(|| OnnxError("node has no output".into()))?;
        self.values.insert(out.clone(), Val::Act(x));
        Ok(())
    }

    fn unary(&mut self, node: &NodeProto, label: &str, op: RawOp) -> Result<()> {
        let x = self.act(node, 0)?;
        let shape = self.shape(x);
        self.emit(node, label, op, vec![x], shape)
    }

    fn binary(&mut self, node: &NodeProto, label: &str) -> Result<()> {
        let (l, r) = (self.input(node, 0)?.cloned(), self.input(node, 1)?.cloned());
        match (node.op_type.as_str(), l, r) {
            ("Add", Some(Val::Act(x)), Some(Val::Act(y))) => {
                let (sx, sy) = (self.shape(x), self.shape(y));
                if sx != sy {
                    return err(format!("adding {sx:?} and {sy:?}: shapes must match"));
                }
                self.emit(node, label, RawOp::Op(Op::Add), vec![x, y], sx)
            }
            ("Add", Some(Val::Act(x)), Some(Val::Const(c)))
            | ("Add", Some(Val::Const(c)), Some(Val::Act(x))) => {
                let s = self.shape(x);
                self.emit(node, label, RawOp::BiasAdd(c), vec![x], s)
            }
            ("Mul", Some(Val::Act(x)), Some(Val::Const(c)))
            | ("Mul", Some(Val::Const(c)), Some(Val::Act(x))) => {
                let s = self.shape(x);
                self.emit(node, label, RawOp::MulConst(c), vec![x], s)
            }
            ("Sub", Some(Val::Act(x)), Some(Val::Act(y))) => {
                let s = self.shape(x);
                if s != self.shape(y) {
                    return err("subtracting values of different shapes");
                }
                self.emit(node, label, RawOp::Sub, vec![x, y], s)
            }
            (op, _, _) => err(format!("{op} of these inputs is not supported")),
        }
    }

    /// Softmax over one axis of `[batch, ...]`. Before opset 13 it ran over the input
    /// flattened from `axis` on (default 1), which is one axis where the rest are 1.
    fn softmax(&mut self, node: &NodeProto, label: &str, a: &Attrs) -> Result<()> {
        let x = self.act(node, 0)?;
        let s = self.shape(x);
        let rank = s.len() as i64 + 1;
        let default = if self.opset >= 13 { -1 } else { 1 };
        let given = a.int("axis", default);
        let axis = if given < 0 { given + rank } else { given };
        if axis < 1 || axis >= rank {
            return err(format!("axis {given} of [batch, {s:?}] is not supported (not the batch axis)"));
        }
        let axis = axis as usize - 1;
        let trailing = s[axis + 1..].iter().product::<usize>();
        if self.opset < 13 && trailing != 1 {
            return err(format!(
                "softmax (opset {}) over [batch, {s:?}] flattened from axis {given} is not supported (one axis only)",
                self.opset
            ));
        }
        self.emit(node, label, RawOp::Op(Op::Softmax { axis }), vec![x], s)
    }

    /// Resize (and opset-9 Upsample) by whole factors: nearest neighbour in the coordinate
    /// modes where that is output `o` reading input `o / factor`, bilinear at half_pixel or
    /// asymmetric coordinates.
    fn resize(&mut self, node: &NodeProto, label: &str, a: &Attrs) -> Result<()> {
        let x = self.act(node, 0)?;
        let s = self.shape(x);
        let &[c, h, w] = s.as_slice() else { return err(format!("expects a [C, H, W] map, got {s:?}")) };
        let mode = a.string("mode").unwrap_or_else(|| "nearest".into());
        if mode != "nearest" && mode != "linear" {
            return err(format!("mode {mode:?} is not supported (nearest, linear)"));
        }
        // Upsample-9 and Resize-10 (two inputs): scales at input 1, coordinates `o / f`, nearest
        // floored (as ONNX Runtime runs them). Resize-11+: roi, scales, sizes at 1, 2, 3.
        let given = |i: usize| node.input.get(i).is_some_and(|n| !n.is_empty());
        let legacy = node.op_type == "Upsample" || node.input.len() == 2;
        let dims: Vec<f64> = if legacy {
            self.konst(node, 1, "scales")?.as_f32().iter().map(|&v| v as f64).collect()
        } else if given(3) {
            let sizes = self.konst(node, 3, "sizes")?.as_i64();
            let full = [1, c, h, w];
            if sizes.len() != 4 {
                return err(format!("sizes {sizes:?} must give [N, C, H, W]"));
            }
            sizes.iter().zip(full).map(|(&o, i)| o as f64 / i as f64).collect()
        } else if given(2) {
            self.konst(node, 2, "scales")?.as_f32().iter().map(|&v| v as f64).collect()
        } else {
            return err("neither scales nor sizes are given");
        };
        let whole = |f: f64| (f >= 1.0 && f.fract() == 0.0 && f <= 64.0).then_some(f as usize);
        let factor = match dims.as_slice() {
            [n, ch, fy, fx] if *n == 1.0 && *ch == 1.0 => whole(*fy).zip(whole(*fx)).map(|(a, b)| [a, b]),
            _ => None,
        };
        let Some(factor) = factor else {
            return err(format!("scales {dims:?}: only whole upsampling factors of H and W are supported"));
        };
        let coords = if legacy {
            "asymmetric".to_string()
        } else {
            a.string("coordinate_transformation_mode").unwrap_or_else(|| "half_pixel".into())
        };
        let sampling = if mode == "linear" {
            match coords.as_str() {
                "half_pixel" | "pytorch_half_pixel" => Sampling::LinearHalfPixel,
                "asymmetric" => Sampling::LinearAsymmetric,
                _ => {
                    return err(format!(
                        "linear with coordinate_transformation_mode {coords:?} is not supported (half_pixel, asymmetric)"
                    ));
                }
            }
        } else {
            let nearest = if legacy {
                "floor".to_string()
            } else {
                a.string("nearest_mode").unwrap_or_else(|| "round_prefer_floor".into())
            };
            // half_pixel reads (o + 0.5) / f - 0.5, which every rounding takes to o / f for a
            // whole f; asymmetric reads o / f, which is o / f when floored (or, for f = 2,
            // rounded with ties down).
            let floors = match coords.as_str() {
                "half_pixel" | "pytorch_half_pixel" => true,
                "asymmetric" => {
                    nearest == "floor" || (nearest == "round_prefer_floor" && factor.iter().all(|&f| f <= 2))
                }
                _ => false,
            };
            if !floors {
                return err(format!(
                    "coordinate_transformation_mode {coords:?} with nearest_mode {nearest:?} is not supported (half_pixel, or asymmetric with floor)"
                ));
            }
            Sampling::Nearest
        };
        let shape = vec![c, h * factor[0], w * factor[1]];
        self.emit(node, label, RawOp::Op(Op::Upsample { factor, sampling }), vec![x], shape)
    }

    /// Zero `Pad` (opset 11+: pads as input 1; earlier: the `pads` attribute) of the
    /// channel and spatial axes; the batch axis stays.
    fn pad(&mut self, node: &NodeProto, label: &str, a: &Attrs) -> Result<()> {
        let x = self.act(node, 0)?;
        let s = self.shape(x);
        let mode = a.string("mode").unwrap_or_else(|| "constant".into());
        if mode != "constant" {
            return err(format!("mode {mode:?} is not supported (only constant zero padding)"));
        }
        if node.input.len() > 2 && !node.input[2].is_empty() {
            let v = self.konst(node, 2, "constant_value")?.as_f32();
            if v.iter().any(|&v| v != 0.0) {
                return err(format!("padding with {v:?} is not supported (only zeros)"));
            }
        }
        let pads = match node.input.get(1).filter(|n| !n.is_empty()) {
            Some(_) => self.konst(node, 1, "pads")?.as_i64(),
            None => a.ints("pads").ok_or_else(|| OnnxError("no pads".into()))?,
        };
        if s.len() != 3 || pads.len() != 8 || pads.iter().any(|&p| p < 0) || pads[0] != 0 || pads[4] != 0 {
            return err(format!(
                "pads {pads:?} of a {s:?} activation: only non-negative C/H/W pads of [batch, C, H, W] are supported"
            ));
        }
        let before = [pads[1] as usize, pads[2] as usize, pads[3] as usize];
        let after = [pads[5] as usize, pads[6] as usize, pads[7] as usize];
        let shape = (0..3).map(|i| s[i] + before[i] + after[i]).collect();
        self.emit(node, label, RawOp::Op(Op::Pad { before, after }), vec![x], shape)
    }

    fn conv(&mut self, node: &NodeProto, label: &str, a: &Attrs) -> Result<()> {
        let x = self.act(node, 0)?;
        let w = self.konst(node, 1, "weight")?;
        let s = self.shape(x);
        let &[o, ig, kh, kw] = w.dims() else {
            return err(format!("only 2-D convolutions are supported; weight dims {:?}", w.dims()));
        };
        let &[c, h, wd] = s.as_slice() else { return err(format!("expects [C, H, W], got {s:?}")) };
        let groups = a.int("group", 1);
        if groups < 1 || c % groups as usize != 0 || o % groups as usize != 0 || c / groups as usize != ig {
            return err(format!("weight {:?} with group={groups} does not fit {c} input channels", w.dims()));
        }
        if let Some(k) = a.ints("kernel_shape")
            && k != [kh as i64, kw as i64]
        {
            return err(format!("kernel_shape {k:?} disagrees with the weight {:?}", w.dims()));
        }
        let stride = pair(a.ints("strides"), 1, "strides")?;
        let dilation = pair(a.ints("dilations"), 1, "dilations")?;
        let pads = pads(a, [h, wd], [kh, kw], stride, dilation)?;
        let oh = window_out(h, pads[0] + pads[2], kh, stride[0], dilation[0]);
        let ow = window_out(wd, pads[1] + pads[3], kw, stride[1], dilation[1]);
        let (Some(oh), Some(ow)) = (oh, ow) else {
            return err(format!("a {kh}x{kw} kernel does not fit the {h}x{wd} input"));
        };
        let bias = match self.input(node, 2)? {
            None => None,
            Some(Val::Const(b)) if b.as_f32().len() == o => Some(b.as_f32()),
            Some(_) => return err(format!("bias must be a constant of {o} values")),
        };
        let conv = Conv {
            weight: Tensor::new(vec![o, ig, kh, kw], w.as_f32()),
            bias,
            stride,
            pads,
            dilation,
            groups: groups as usize,
        };
        self.emit(node, label, RawOp::Op(Op::Conv(conv)), vec![x], vec![o, oh, ow])
    }

    fn pool(&mut self, node: &NodeProto, label: &str, a: &Attrs) -> Result<()> {
        let x = self.act(node, 0)?;
        let s = self.shape(x);
        let &[c, h, w] = s.as_slice() else { return err(format!("expects [C, H, W], got {s:?}")) };
        let kernel = pair(a.ints("kernel_shape"), 0, "kernel_shape")?;
        if kernel[0] == 0 {
            return err("kernel_shape is missing");
        }
        let stride = pair(a.ints("strides"), 1, "strides")?;
        if pair(a.ints("dilations"), 1, "dilations")? != [1, 1] {
            return err("dilated pooling is not supported");
        }
        if a.int("ceil_mode", 0) != 0 {
            return err("ceil_mode=1 is not supported");
        }
        let pads = pads(a, [h, w], kernel, stride, [1, 1])?;
        let (Some(oh), Some(ow)) = (
            window_out(h, pads[0] + pads[2], kernel[0], stride[0], 1),
            window_out(w, pads[1] + pads[3], kernel[1], stride[1], 1),
        ) else {
            return err(format!("a {kernel:?} window does not fit the {h}x{w} input"));
        };
        let pool = Pool { kernel, stride, pads, count_include_pad: a.int("count_include_pad", 0) != 0 };
        let op = if node.op_type == "MaxPool" { Op::MaxPool(pool) } else { Op::AvgPool(pool) };
        if node.output.len() > 1 && node.output[1..].iter().any(|o| !o.is_empty()) {
            return err("MaxPool's Indices output is not supported");
        }
        self.emit(node, label, RawOp::Op(op), vec![x], vec![c, oh, ow])
    }
}

fn transpose2(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

/// ONNX Reshape's target: `0` copies a dim (unless `allowzero`), one `-1` is inferred.
fn reshape_dims(from: &[usize], target: &[i64], allowzero: bool) -> Result<Vec<usize>> {
    let total = numel(from, "Reshape input")?;
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(
                *from.get(i).ok_or_else(|| OnnxError(format!("Reshape: 0 at {i} has no dim to copy")))?,
            ),
            t if t >= 0 => out.push(t as usize),
            t => return err(format!("Reshape: bad target dim {t}")),
        }
    }
    let known = numel(&out, "Reshape target")?;
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return err(format!("Reshape: cannot infer -1 reshaping {from:?} to {target:?}"));
        }
        out[i] = total / known;
    }
    if numel(&out, "Reshape target")? != total {
        return err(format!("Reshape: {from:?} has {total} values, target {target:?} does not"));
    }
    Ok(out)
}

/// Slope of a PReLU as the activation's shape without batch, each dim 1 or the activation's.
fn broadcast_slope(slope: &Const, act: &[usize]) -> Result<Tensor> {
    let mut d: Vec<usize> = slope.dims().to_vec();
    // Right-align against [batch, act...]; a leading batch axis must be 1.
    let rank = act.len() + 1;
    if d.len() > rank {
        return err(format!("slope dims {d:?} do not broadcast to [batch, {act:?}]"));
    }
    while d.len() < rank {
        d.insert(0, 1);
    }
    if d[0] != 1 {
        return err(format!("slope dims {:?} vary over the batch", slope.dims()));
    }
    d.remove(0);
    // ONNX PRelu also takes [C] for [C, H, W]... only as unidirectional broadcasting, which
    // right-aligns; PyTorch exports per-channel slopes as [C, 1, 1].
    for (s, a) in d.iter().zip(act) {
        if *s != 1 && s != a {
            return err(format!("slope dims {:?} do not broadcast to [batch, {act:?}]", slope.dims()));
        }
    }
    Ok(Tensor::new(d, slope.as_f32()))
}
