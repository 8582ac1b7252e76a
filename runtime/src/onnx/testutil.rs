//! Builders of small ONNX models for the reader's and the quantizer's tests.

use prost::Message;

use super::proto::*;

pub fn attr_i(name: &str, i: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: attribute_type::INT, i, ..Default::default() }
}
pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: attribute_type::INTS, ints: v.to_vec(), ..Default::default() }
}
pub fn attr_f(name: &str, f: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: attribute_type::FLOAT, f, ..Default::default() }
}
pub fn attr_s(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::STRING,
        s: s.as_bytes().to_vec(),
        ..Default::default()
    }
}
pub fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute,
        ..Default::default()
    }
}
pub fn f32s(name: &str, dims: &[i64], v: Vec<f32>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: data_type::FLOAT,
        float_data: v,
        ..Default::default()
    }
}
pub fn i64s(name: &str, v: &[i64]) -> TensorProto {
    let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    TensorProto {
        name: name.into(),
        dims: vec![v.len() as i64],
        data_type: data_type::INT64,
        raw_data: raw,
        ..Default::default()
    }
}
pub fn value(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| match d {
            Some(v) => Dimension { dim_value: Some(*v), dim_param: None },
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
pub fn model(nodes: Vec<NodeProto>, init: Vec<TensorProto>, input: [i64; 3], output: &str) -> Vec<u8> {
    let g = GraphProto {
        node: nodes,
        name: "t".into(),
        initializer: init,
        input: vec![value("x", &[None, Some(input[0]), Some(input[1]), Some(input[2])])],
        output: vec![value(output, &[None])],
        ..Default::default()
    };
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 18 }],
        graph: Some(g),
        ..Default::default()
    }
    .encode_to_vec()
}

/// A detector-style head: a channel Pad, a residual Add, two branches each transposed to
/// channels-last and reshaped, joined by Concat, and two graph outputs.
pub fn detector_style() -> Vec<u8> {
    let nodes = vec![
        node("Pad", "chpad", &["x", "pads"], &["p"], vec![attr_s("mode", "constant")]),
        node("Conv", "conv", &["x", "w"], &["c"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
        node("Add", "res", &["c", "p"], &["r"], vec![]),
        node("Transpose", "nhwc", &["r"], &["t"], vec![attr_ints("perm", &[0, 2, 3, 1])]),
        node("Reshape", "rows", &["t", "rows_shape"], &["a"], vec![]),
        node("Relu", "relu", &["x"], &["xr"], vec![]),
        node("Transpose", "nhwc2", &["xr"], &["t2"], vec![attr_ints("perm", &[0, 2, 3, 1])]),
        node("Reshape", "rows2", &["t2", "rows_shape"], &["b"], vec![]),
        node("Concat", "join", &["a", "b"], &["both"], vec![attr_i("axis", 1)]),
        node("Relu", "second", &["r"], &["y2"], vec![]),
    ];
    let init = vec![
        // x is [1, 2, 3, 3]: 2 zero channels after its own.
        i64s("pads", &[0, 0, 0, 0, 0, 2, 0, 0]),
        f32s("w", &[4, 2, 3, 3], (0..72).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.2).collect()),
        i64s("rows_shape", &[1, -1, 2]),
    ];
    let mut m = ModelProto::decode(&model(nodes, init, [2, 3, 3], "both")[..]).unwrap();
    m.graph.as_mut().unwrap().output.push(value("y2", &[None]));
    m.encode_to_vec()
}
