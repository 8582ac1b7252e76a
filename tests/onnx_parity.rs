//! The ONNX that `fer-train export` writes passes the ONNX checker, and ONNX Runtime and
//! tract (with the `tract` feature, as CI runs it) give burn's outputs (within 1e-4) for every
//! model kind; names and metadata are there.

use burn::prelude::*;
use fer_edge::fer_trainer::export::{INPUT_NAME, OUTPUT_NAME, to_onnx};
use fer_edge::fer_trainer::model::ModelKind;
use fer_edge::fer_trainer::train::checkpoint::ModelCard;
use fer_edge::fer_trainer::train::metrics::SetMetrics;
use ort::session::Session;
use ort::value::Tensor as OrtTensor;
use protobuf::Message;

use fer_edge::testing::model;

/// One parity case: the exported bytes, a seeded random batch of 3, and burn's logits for it.
fn case(kind: ModelKind, device: &Device) -> (Vec<u8>, Vec<f32>, Vec<f32>) {
    let (m, card) = model(kind, device);
    let bytes = to_onnx(&m, &card).unwrap();
    device.seed(5);
    let x = Tensor::<4>::random([3, 1, 48, 48], burn::tensor::Distribution::Uniform(0.0, 1.0), device);
    let input: Vec<f32> = x.clone().into_data().iter::<f32>().collect();
    let expected: Vec<f32> = m.forward(x).into_data().iter::<f32>().collect();
    (bytes, input, expected)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn exported_models_are_named_and_described() {
    let device = Device::flex();
    for kind in [ModelKind::Baseline, ModelKind::Edge, ModelKind::Large] {
        let (m, card) = model(kind, &device);
        let bytes = to_onnx(&m, &card).unwrap();
        let proto = onnx_ir::ModelProto::parse_from_bytes(&bytes).unwrap();
        let graph = proto.graph.as_ref().unwrap();
        assert_eq!(graph.input[0].name, INPUT_NAME);
        assert_eq!(graph.output[0].name, OUTPUT_NAME);
        let keys: Vec<&str> = proto.metadata_props.iter().map(|e| e.key.as_str()).collect();
        for k in ["fer.labels", "fer.input", "fer.layout", "fer.scale", "fer.preprocessing"] {
            assert!(keys.contains(&k), "{kind:?}: {k} missing from {keys:?}");
        }
        let labels = &proto.metadata_props.iter().find(|e| e.key == "fer.labels").unwrap().value;
        assert_eq!(labels, r#"["angry","disgust","fear","happy","sad","surprise","neutral"]"#);
        assert_eq!(proto.opset_import[0].version, 18);
    }
}

#[test]
fn onnx_runtime_gives_burns_outputs_for_every_model_kind() {
    let Some(lib) = fer_edge::onnxruntime_library() else { return };
    let env =
        ort::init_from(&lib).unwrap_or_else(|e| panic!("loading {}: {e}", lib.display())).build().unwrap();
    let device = Device::flex();
    for kind in [ModelKind::Baseline, ModelKind::Edge, ModelKind::Large] {
        let (bytes, input, expected) = case(kind, &device);

        let mut session = Session::builder(&env).unwrap().commit_from_memory(&bytes).unwrap();
        let outputs = session
            .run(ort::inputs![INPUT_NAME => OrtTensor::from_array(([3usize, 1, 48, 48], input)).unwrap()])
            .unwrap();
        let (shape, got) = outputs[OUTPUT_NAME].try_extract_tensor::<f32>().unwrap();
        assert_eq!(shape.iter().copied().collect::<Vec<i64>>(), vec![3, 7], "{kind:?}");
        let diff = max_abs_diff(&expected, got);
        eprintln!("{kind:?}: max |burn - ORT| = {diff:e}");
        assert!(diff < 1e-4, "{kind:?}: ORT differs from burn by {diff}");
    }
}

#[test]
#[cfg(feature = "tract")]
fn tract_gives_burns_outputs_for_every_model_kind() {
    use tract_onnx::prelude::*;
    let device = Device::flex();
    for kind in [ModelKind::Baseline, ModelKind::Edge, ModelKind::Large] {
        let (bytes, input, expected) = case(kind, &device);

        let fact = InferenceFact::dt_shape(f32::datum_type(), [3usize, 1, 48, 48]);
        let runnable = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .unwrap()
            .with_input_fact(0, fact)
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        let t = tract_ndarray::Array4::from_shape_vec((3, 1, 48, 48), input).unwrap().into_tensor();
        let out = runnable.run(tvec!(t.into_tvalue())).unwrap();
        let view = out[0].to_plain_array_view::<f32>().unwrap();
        let got: Vec<f32> = view.iter().copied().collect();
        assert_eq!(got.len(), 3 * 7);
        let diff = expected.iter().zip(got).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        eprintln!("{kind:?}: max |burn - tract| = {diff:e}");
        assert!(diff < 1e-4, "{kind:?}: tract differs from burn by {diff}");
    }
}

#[test]
fn exported_models_pass_the_onnx_checker() {
    let Some(python) = fer_edge::venv_python(&["onnx"]) else { return };
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    for kind in [ModelKind::Baseline, ModelKind::Edge, ModelKind::Large] {
        let (m, card) = model(kind, &device);
        let path = dir.path().join(format!("{kind:?}.onnx"));
        std::fs::write(&path, to_onnx(&m, &card).unwrap()).unwrap();
        let out = std::process::Command::new(&python)
            .args([
                "-c",
                "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)",
            ])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{kind:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Export -> import -> identical outputs: the trainer's importer (`fit --init`) rebuilds
/// every model kind from its ONNX file, and re-exporting the imported model gives the same
/// layers and weights again. The runtime's f32 reading of the file agrees too.
#[test]
fn export_then_import_gives_identical_outputs() {
    use fer_edge::fer_runtime::onnx::{eval, read_onnx};
    use fer_edge::fer_trainer::transfer::{build, import_whole};
    let device = Device::flex();
    for kind in [ModelKind::Baseline, ModelKind::Edge, ModelKind::Large] {
        let (bytes, input, expected) = case(kind, &device);
        let graph = read_onnx(&bytes).unwrap();

        // The runtime's float reference, image by image.
        let per = 48 * 48;
        let reference: Vec<f32> =
            (0..3).flat_map(|i| eval::run(&graph, &input[i * per..(i + 1) * per]).unwrap()).collect();
        let diff = max_abs_diff(&expected, &reference);
        eprintln!("{kind:?}: max |burn - runtime f32 reader| = {diff:e}");
        assert!(diff < 1e-4, "{kind:?}: {diff}");

        // Imported into the trainer.
        let prepared = import_whole(graph.clone(), 7, 0.1).unwrap();
        let imported = build(&prepared, &device).unwrap().valid();
        let x = Tensor::<4>::from_data(TensorData::new(input.clone(), [3, 1, 48, 48]), &device);
        let got: Vec<f32> = imported.forward(x).into_data().iter::<f32>().collect();
        let diff = max_abs_diff(&expected, &got);
        eprintln!("{kind:?}: max |burn - burn after export + import| = {diff:e}");
        assert_eq!(diff, 0.0, "{kind:?}: the imported model differs from the exported one");

        // And out again: the same ops and weights.
        let card = ModelCard::new(prepared.config.clone(), 1, SetMetrics::default());
        let again = read_onnx(&to_onnx(&imported, &card).unwrap()).unwrap();
        let ops = |g: &fer_edge::fer_runtime::onnx::FloatGraph| {
            g.nodes.iter().map(|n| (n.op.clone(), n.shape.clone())).collect::<Vec<_>>()
        };
        assert_eq!(ops(&again), ops(&graph), "{kind:?}: re-export changed the graph");
    }
}
