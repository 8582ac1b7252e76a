//! The QDQ ONNX twin of a quantized model: the same integer weights, biases, scales and
//! zero points, written as QuantizeLinear/DequantizeLinear around float ops, so ONNX
//! Runtime (which runs such graphs in int8) can check the engine layer by layer.

use prost::Message;

use super::build::{QLayer, QModel, QValue};
use crate::format::OpCode;
use crate::onnx::Unary;
use crate::onnx::proto::*;

struct G {
    nodes: Vec<NodeProto>,
    init: Vec<TensorProto>,
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: attribute_type::INTS, ints: v.to_vec(), ..Default::default() }
}
fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: attribute_type::INT, i: v, ..Default::default() }
}
fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::STRING,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}
fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: attribute_type::FLOAT, f: v, ..Default::default() }
}

impl G {
    fn node(&mut self, op: &str, name: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) {
        self.nodes.push(NodeProto {
            op_type: op.into(),
            name: name.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute,
            ..Default::default()
        });
    }
    fn f32s(&mut self, name: &str, dims: &[usize], v: &[f32]) {
        self.init.push(TensorProto {
            name: name.into(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: data_type::FLOAT,
            raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ..Default::default()
        });
    }
    fn i8s(&mut self, name: &str, dims: &[usize], v: &[i8]) {
        self.init.push(TensorProto {
            name: name.into(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: data_type::INT8,
            raw_data: v.iter().map(|&x| x as u8).collect(),
            ..Default::default()
        });
    }
    fn i64s(&mut self, name: &str, v: &[i64]) {
        self.init.push(TensorProto {
            name: name.into(),
            dims: vec![v.len() as i64],
            data_type: data_type::INT64,
            raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ..Default::default()
        });
    }
    /// `x` (`[1, C, H, W]`, or `[1, K]` when `rank2`) as the engine's bytes: `[1, blocks, run]`
    /// in `[H, W, C]` order.
    fn hwc_blocks(&mut self, x: &str, rank2: bool, blocks: usize, run: usize) -> String {
        let src = if rank2 {
            x.to_string()
        } else {
            let t = format!("{x}.hwc");
            self.node("Transpose", &t, &[x], &t, vec![ints("perm", &[0, 2, 3, 1])]);
            t
        };
        let (shape, out) = (format!("{x}.blocks.shape"), format!("{x}.blocks{run}"));
        self.i64s(&shape, &[1, blocks as i64, run as i64]);
        self.node("Reshape", &out, &[&src, &shape], &out, vec![]);
        out
    }
    /// Bytes in the engine's `[H, W, C]` order (any `[1, .., ..]` of them) back to the
    /// `[1, C, H, W]` map `out` of `shape`.
    fn hwc_to_map(&mut self, n: &str, src: &str, out: &str, [c, h, w]: [usize; 3]) {
        let (shape, nhwc) = (format!("{n}.nhwc.shape"), format!("{n}.nhwc"));
        self.i64s(&shape, &[1, h as i64, w as i64, c as i64]);
        self.node("Reshape", &nhwc, &[src, &shape], &nhwc, vec![]);
        self.node("Transpose", n, &[&nhwc], out, vec![ints("perm", &[0, 3, 1, 2])]);
    }
    /// `Resize` of the map `x` by whole factors `[rows, columns]`, in the mode `attrs` give.
    fn resize(&mut self, n: &str, x: &str, out: &str, factor: [usize; 2], attrs: Vec<AttributeProto>) {
        let scales = format!("{n}.scales");
        self.f32s(&scales, &[4], &[1.0, 1.0, factor[0] as f32, factor[1] as f32]);
        self.node("Resize", n, &[x, "", &scales], out, attrs);
    }
    fn i32s(&mut self, name: &str, dims: &[usize], v: &[i32]) {
        self.init.push(TensorProto {
            name: name.into(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: data_type::INT32,
            raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ..Default::default()
        });
    }
    /// `float -> Q -> DQ` with `v`'s scale and zero point; returns the dequantized name.
    fn qdq(&mut self, float: &str, id: usize, v: &QValue) -> String {
        self.qdq_as(float, &format!("v{id}"), v)
    }
    /// [`G::qdq`] with names from `tag` (`<tag>.q` is the int8 tensor).
    fn qdq_as(&mut self, float: &str, tag: &str, v: &QValue) -> String {
        let (s, z) = (format!("{tag}.scale"), format!("{tag}.zero"));
        self.f32s(&s, &[], &[v.scale]);
        self.i8s(&z, &[], &[v.zero_point]);
        let q = format!("{tag}.q");
        self.node("QuantizeLinear", &format!("quantize {tag}"), &[float, &s, &z], &q, vec![]);
        self.node("DequantizeLinear", &format!("dequantize {tag}"), &[&q, &s, &z], tag, vec![]);
        tag.into()
    }
    /// Per-channel int8 weights and int32 bias, dequantized.
    fn weights(&mut self, l: &QLayer, sx: f32) -> (String, String) {
        let o = l.weight_scales.len();
        let n = &l.name;
        self.i8s(&format!("{n}.w.q"), &l.weight_dims, &l.weights);
        self.f32s(&format!("{n}.w.scale"), &[o], &l.weight_scales);
        self.i8s(&format!("{n}.w.zero"), &[o], &vec![0; o]);
        let w = format!("{n}.w");
        self.node(
            "DequantizeLinear",
            &format!("{n}.w.dq"),
            &[&format!("{n}.w.q"), &format!("{n}.w.scale"), &format!("{n}.w.zero")],
            &w,
            vec![int("axis", 0)],
        );
        let bs: Vec<f32> = l.weight_scales.iter().map(|&sw| (sx as f64 * sw as f64) as f32).collect();
        self.i32s(&format!("{n}.b.q"), &[o], &l.bias);
        self.f32s(&format!("{n}.b.scale"), &[o], &bs);
        self.i32s(&format!("{n}.b.zero"), &[o], &vec![0; o]);
        let b = format!("{n}.b");
        self.node(
            "DequantizeLinear",
            &format!("{n}.b.dq"),
            &[&format!("{n}.b.q"), &format!("{n}.b.scale"), &format!("{n}.b.zero")],
            &b,
            vec![int("axis", 0)],
        );
        (w, b)
    }
}

fn value_info(name: &str, dims: &[Option<usize>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| match d {
            Some(v) => Dimension { dim_value: Some(*v as i64), dim_param: None },
            None => Dimension { dim_value: None, dim_param: Some("batch".into()) },
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}

/// The QDQ ONNX bytes of `m` (input `input` `[batch, C, H, W]`, output `logits`).
pub fn qdq_onnx(m: &QModel, metadata: &[(String, String)]) -> Vec<u8> {
    qdq_onnx_with(m, metadata, false)
}

/// With `expose`, every quantized tensor is also a graph output (`v<id>.q`, int8), for
/// checking the engine one op at a time.
pub fn qdq_onnx_with(m: &QModel, metadata: &[(String, String)], expose: bool) -> Vec<u8> {
    let mut g = G { nodes: Vec::new(), init: Vec::new() };
    let mut names: Vec<String> = vec![String::new(); m.values.len()];
    names[0] = g.qdq("input", 0, &m.values[0]);
    // Which values are [1, K] in ONNX (the rest are [1, C, H, W]).
    let mut rank2 = vec![false; m.values.len()];
    for l in &m.layers {
        rank2[l.output] = matches!(l.code, OpCode::Dense | OpCode::Flatten) || rank2[l.inputs[0]];
        let x = names[l.inputs[0]].clone();
        let sx = m.values[l.inputs[0]].scale;
        let y = &m.values[l.output];
        let n = l.name.clone();
        let out = format!("{n}.out");
        let window = |l: &QLayer| {
            vec![
                ints("kernel_shape", &[l.kernel[0] as i64, l.kernel[1] as i64]),
                ints("strides", &[l.stride[0] as i64, l.stride[1] as i64]),
                ints("pads", &l.pads.map(|p| p as i64)),
            ]
        };
        match l.code {
            OpCode::Conv | OpCode::DepthwiseConv => {
                let (w, b) = g.weights(l, sx);
                let mut attrs = window(l);
                attrs.push(ints("dilations", &[l.dilation[0] as i64, l.dilation[1] as i64]));
                attrs.push(int("group", l.groups as i64));
                g.node("Conv", &n, &[&x, &w, &b], &out, attrs);
            }
            OpCode::Dense => {
                let (w, b) = g.weights(l, sx);
                // The engine's dense layers read maps directly; Gemm wants [1, K]. The
                // flattened int8 values are the map's (ORT moves them without requantizing).
                let x = if rank2[l.inputs[0]] {
                    x
                } else {
                    let flat = format!("{n}.flatten");
                    g.node("Flatten", &flat, &[&x], &flat, vec![int("axis", 1)]);
                    g.qdq_as(&flat, &format!("{n}.flat"), &m.values[l.inputs[0]])
                };
                g.node("Gemm", &n, &[&x, &w, &b], &out, vec![int("transB", 1)]);
            }
            OpCode::MaxPool => g.node("MaxPool", &n, &[&x], &out, window(l)),
            OpCode::AvgPool => {
                let mut a = window(l);
                a.push(int("count_include_pad", l.count_include_pad as i64));
                g.node("AveragePool", &n, &[&x], &out, a)
            }
            OpCode::GlobalAvgPool => g.node("GlobalAveragePool", &n, &[&x], &out, vec![]),
            OpCode::Flatten => g.node("Flatten", &n, &[&x], &out, vec![int("axis", 1)]),
            OpCode::Add => {
                let b = names[l.inputs[1]].clone();
                g.node("Add", &n, &[&x, &b], &out, vec![]);
            }
            OpCode::Pad => {
                let pads = format!("{n}.pads");
                let [pt, pl, pb, pr] = l.pads.map(|p| p as i64);
                let [cb, ca] = l.runs.map(|p| p as i64);
                g.i64s(&pads, &[0, cb, pt, pl, 0, ca, pb, pr]);
                g.node("Pad", &n, &[&x, &pads], &out, vec![]);
            }
            OpCode::Concat => {
                // In the engine's byte order: blocks of each input's run, joined, then back
                // to [1, C, H, W] of the output's shape.
                let [ra, rb] = l.runs;
                let blocks = y.len() / (ra + rb);
                let a = g.hwc_blocks(&x, rank2[l.inputs[0]], blocks, ra);
                let b = g.hwc_blocks(&names[l.inputs[1]].clone(), rank2[l.inputs[1]], blocks, rb);
                let joined = format!("{n}.joined");
                g.node("Concat", &joined, &[&a, &b], &joined, vec![int("axis", 2)]);
                g.hwc_to_map(&n, &joined, &out, y.shape);
                rank2[l.output] = false;
            }
            OpCode::Upsample => {
                // Output pixel o reads input o / factor: asymmetric coordinates, floored.
                let attrs = vec![
                    string("mode", "nearest"),
                    string("coordinate_transformation_mode", "asymmetric"),
                    string("nearest_mode", "floor"),
                ];
                g.resize(&n, &x, &out, l.kernel, attrs);
            }
            OpCode::Softmax => {
                // In the engine's byte order: runs of `run` bytes, softmax over each, then
                // back to [1, C, H, W] of the output's shape.
                let run = l.runs[0];
                let blocks = g.hwc_blocks(&x, rank2[l.inputs[0]], y.len() / run, run);
                let soft = format!("{n}.softmax");
                g.node("Softmax", &soft, &[&blocks], &soft, vec![int("axis", -1)]);
                g.hwc_to_map(&n, &soft, &out, y.shape);
                rank2[l.output] = false;
            }
            OpCode::UpsampleLinear => {
                let coords = if l.count_include_pad { "asymmetric" } else { "half_pixel" };
                let attrs = vec![string("mode", "linear"), string("coordinate_transformation_mode", coords)];
                g.resize(&n, &x, &out, l.kernel, attrs);
            }
            OpCode::Lut => {
                let u = l.unary.expect("a Lut layer has its function");
                let attrs = match u {
                    Unary::HardSigmoid { alpha, beta } => vec![float("alpha", alpha), float("beta", beta)],
                    _ => vec![],
                };
                g.node(u.name(), &n, &[&x], &out, attrs);
            }
            OpCode::PRelu => {
                let slope = format!("{n}.slope");
                g.f32s(&slope, &l.slope_dims, &l.slope);
                g.node("PRelu", &n, &[&x, &slope], &out, vec![]);
            }
        }
        names[l.output] = g.qdq(&out, l.output, y);
    }
    // The graph outputs, `[1, K]` in the engine's byte order: one is named `logits`,
    // several keep the float model's names.
    let mut outputs = Vec::new();
    for (name, v) in &m.outputs {
        let out_name = if m.outputs.len() == 1 { "logits".to_string() } else { name.clone() };
        let [c, h, w] = m.values[*v].shape;
        let src = names[*v].clone();
        let src = if rank2[*v] || c == 1 || h * w == 1 {
            src
        } else {
            let t = format!("{out_name}.hwc");
            g.node("Transpose", &t, &[&src], &t, vec![ints("perm", &[0, 2, 3, 1])]);
            t
        };
        g.node("Flatten", &format!("output {out_name}"), &[&src], &out_name, vec![int("axis", 1)]);
        outputs.push(value_info(&out_name, &[None, Some(m.values[*v].len())]));
    }
    let [c, h, w] = m.values[0].shape;
    let graph = GraphProto {
        node: g.nodes,
        name: "fer-qdq".into(),
        initializer: g.init,
        input: vec![value_info("input", &[None, Some(c), Some(h), Some(w)])],
        output: {
            let mut o = outputs;
            if expose {
                for id in 0..m.values.len() {
                    let mut v = value_info(&format!("v{id}.q"), &[]);
                    if let Some(t) = v.r#type.as_mut().and_then(|t| t.tensor_type.as_mut()) {
                        t.elem_type = data_type::INT8;
                        t.shape = None;
                    }
                    o.push(v);
                }
            }
            o
        },
        ..Default::default()
    };
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 17 }],
        producer_name: "fer-edge quantizer".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        metadata_props: metadata
            .iter()
            .map(|(k, v)| StringStringEntryProto { key: k.clone(), value: v.clone() })
            .collect(),
        ..Default::default()
    }
    .encode_to_vec()
}
