//! The int8 engine against ONNX Runtime on the QDQ twin `fer quantize` writes, for every
//! model kind the trainer exports and every kernel set this CPU runs:
//!
//! - op by op: each op, fed ONNX Runtime's int8 inputs, gives ONNX Runtime's int8 output
//!   within 1 LSB (ORT requantizes in f32, we in exact integers: they differ on near-ties);
//! - whole model: the final int8 outputs, with how far those 1-LSB differences carry.

use burn::prelude::*;
use fer_edge::fer_runtime::engine::Engine;
use fer_edge::fer_runtime::format::{AlignedBytes, Model};
use fer_edge::fer_runtime::kernels;
use fer_edge::fer_runtime::quant::{self, Method, qdq};
use fer_edge::fer_trainer::export::to_onnx;
use fer_edge::fer_trainer::model::ModelKind;
use fer_edge::testing::{images, model};
use ort::session::Session;
use ort::value::Tensor as OrtTensor;

#[test]
fn engine_equals_onnx_runtime_on_the_qdq_twin() {
    engine_equals_onnx_runtime_for(&[ModelKind::Edge, ModelKind::Baseline]);
}

/// `large` (eight 3x3 convolutions up to 512 channels) takes a minute on two cores, most
/// of it in the reference kernels: CI's extended step runs it
/// (`cargo test -p fer-edge --test int8_parity -- --ignored`).
#[test]
#[ignore = "extended: a minute; CI's extended step runs it"]
fn engine_equals_onnx_runtime_on_the_qdq_twin_for_large() {
    engine_equals_onnx_runtime_for(&[ModelKind::Large]);
}

fn engine_equals_onnx_runtime_for(kinds: &[ModelKind]) {
    let Some(lib) = fer_edge::onnxruntime_library() else { return };
    let env =
        ort::init_from(&lib).unwrap_or_else(|e| panic!("loading {}: {e}", lib.display())).build().unwrap();
    let device = Device::flex();
    let calib = images(24, 1);
    let test = images(6, 2);
    for &kind in kinds {
        let (m, card) = model(kind, &device);
        let q = quant::quantize(&to_onnx(&m, &card).unwrap(), &calib, Method::MinMax).unwrap();
        let twin = qdq::qdq_onnx_with(&q.model, &[], true);
        let buf = AlignedBytes::new(&q.fer);
        let mut session = Session::builder(&env).unwrap().commit_from_memory(&twin).unwrap();
        let n_values = q.model.values.len();
        // ORT's int8 tensors per test image, and its final logits.
        let runs: Vec<(Vec<Vec<i8>>, Vec<f32>)> = test
            .iter()
            .map(|img| {
                let outputs = session
                    .run(ort::inputs!["input" => OrtTensor::from_array(([1usize, 1, 48, 48], img.clone())).unwrap()])
                    .unwrap();
                let values =
                    (0..n_values).map(|id| outputs[format!("v{id}.q").as_str()].try_extract_tensor::<i8>().unwrap().1.to_vec()).collect();
                (values, outputs["logits"].try_extract_tensor::<f32>().unwrap().1.to_vec())
            })
            .collect();
        for k in kernels::available_for(127) {
            let engine = Engine::new(Model::new(buf.as_slice()).unwrap(), k);
            let mut arena = vec![0u8; engine.arena_size()];
            // Op by op.
            let (mut worst_op, mut ties, mut total) = (0i32, 0usize, 0usize);
            for (values, _) in &runs {
                for d in quant::op_by_op(&engine, &q.model, values).unwrap() {
                    let l = &q.model.layers[d.op];
                    assert!(
                        d.max_lsb <= 1,
                        "{kind:?}, {} kernels, op {} `{}` ({:?}): {} LSB from ONNX Runtime",
                        k.name(),
                        d.op,
                        l.name,
                        l.code,
                        d.max_lsb
                    );
                    worst_op = worst_op.max(d.max_lsb);
                    // Within 1 LSB, each differing value is off by one.
                    ties += d.differing;
                    total += d.values;
                }
            }
            // The whole model.
            let (mut worst, mut over_one, mut logits_total) = (0i32, 0usize, 0usize);
            let out = q.model.values[q.model.output];
            for (img, (_, logits)) in test.iter().zip(&runs) {
                let y = engine.infer(&mut arena, img).unwrap();
                for (a, b) in y.iter().zip(logits) {
                    let d = ((a - b) / out.scale).abs().round() as i32;
                    worst = worst.max(d);
                    over_one += (d > 1) as usize;
                    logits_total += 1;
                }
            }
            eprintln!(
                "{kind:?} ({}): op by op max {worst_op} LSB ({ties} of {total} values off by one); whole model max {worst} LSB ({over_one} of {logits_total} logits more than 1 LSB off)",
                k.name()
            );
            // The shallow models stay within 1 LSB end to end. Eight convolutions deep
            // (`large`, random weights), a near-tie rounded differently early on can grow
            // by the gains of the layers after it: bounded at 3 here (see docs/runtime.md).
            let bound = if kind == ModelKind::Large { 3 } else { 1 };
            assert!(worst <= bound, "{kind:?}: the whole model drifts {worst} LSB from ONNX Runtime");
        }
    }
}
