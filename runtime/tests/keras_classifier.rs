//! A classifier as Keras users make them, converted by tf2onnx: NHWC input, pixels scaled to
//! [-1, 1], depthwise-separable convs, residual Adds, GlobalAveragePool, Softmax. The fixture
//! (`tests/fixtures/keras_mini_xception.onnx`, 0.24 MB) was trained and converted by
//! `scripts/keras-classifier.py`; its `.json` records the command and Keras' own accuracy.
#![cfg(feature = "ort")]

use std::path::{Path, PathBuf};
use std::process::Command;

use fer_runtime::backends::{Backend, Ort};
use fer_runtime::engine::Engine;
use fer_runtime::format::{AlignedBytes, Model};
use fer_runtime::kernels;
use fer_runtime::onnx::{eval, read_onnx};
use fer_runtime::quant::{self, Method};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// `None` (the test skips) without ONNX Runtime, unless CI requires it.
fn onnxruntime() -> Option<PathBuf> {
    match fer_runtime::backends::onnxruntime_library() {
        Ok(lib) => Some(lib),
        Err(e) if std::env::var("FER_REQUIRE_ONNX_TOOLS").is_ok_and(|v| v == "1") => {
            panic!("{e}; FER_REQUIRE_ONNX_TOOLS=1 requires it")
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

/// Smooth 48x48 images in [-1, 1], different enough to exercise every channel.
fn images() -> Vec<Vec<f32>> {
    (0..6)
        .map(|k| {
            (0..48 * 48)
                .map(|i| {
                    let (y, x) = ((i / 48) as f32, (i % 48) as f32);
                    ((x * (0.11 + 0.03 * k as f32)).sin() * (y * 0.07 + k as f32).cos()).clamp(-1.0, 1.0)
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_nhwc_input_reads_as_one_gray_channel_and_onnx_runtime_agrees() {
    if onnxruntime().is_none() {
        return;
    }
    let path = fixture("keras_mini_xception.onnx");
    let onnx = std::fs::read(&path).unwrap();
    let g = read_onnx(&onnx).unwrap();
    assert_eq!(g.input_shape, [1, 48, 48]);
    assert!(g.input_channels_last, "tf2onnx's [N, 48, 48, 1] input");

    // ONNX Runtime runs the file itself (fed [1, 48, 48, 1]); our f32 evaluator runs the
    // graph the reader made of it. They must agree to float noise.
    let mut ort = Ort::load(&path, "ort f32").unwrap();
    for x in images() {
        let (ours, theirs) = (eval::run(&g, &x).unwrap(), ort.infer(&x).unwrap());
        assert_eq!(ours.len(), 7);
        let diff = ours.iter().zip(&theirs).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(diff < 1e-4, "{ours:?} vs {theirs:?}");
    }

    // Quantized, the engine equals ONNX Runtime on the QDQ twin op by op, on every kernel set
    // (one ONNX Runtime environment per process: the backends' own).
    let q = quant::quantize(&onnx, &images(), Method::MinMax).unwrap();
    let mut oracle = fer_runtime::backends::oracle::TwinOracle::new(&q.model).unwrap();
    let buf = AlignedBytes::new(&q.fer);
    for x in images().into_iter().take(2) {
        let values = oracle.values(&x).unwrap();
        for k in kernels::available_for(127) {
            let engine = Engine::new(Model::new(buf.as_slice()).unwrap(), k);
            for d in quant::op_by_op(&engine, &q.model, &values).unwrap() {
                let l = &q.model.layers[d.op];
                assert!(
                    d.max_lsb <= 1,
                    "{}: op `{}` ({:?}) {} LSB from ONNX Runtime",
                    k.name(),
                    l.name,
                    l.code,
                    d.max_lsb
                );
            }
        }
    }
}

use fer_runtime::testdata::shared_data;

/// Two minutes on two cores (calibration, then 3,589 images in float and in int8): CI's
/// extended step runs it (`cargo test -p fer-runtime --test keras_classifier -- --ignored`).
#[test]
#[ignore = "extended: two minutes on FER2013; CI's extended step runs it"]
fn int8_scores_within_half_a_point_of_float_on_public_test() {
    let Some(data) = shared_data() else { return };
    let out = tempfile::tempdir().unwrap();
    let fer_path = out.path().join("keras.fer");
    let model = fixture("keras_mini_xception.onnx");
    let run = Command::new(env!("CARGO_BIN_EXE_fer"))
        .arg("quantize")
        .arg(&model)
        .arg("--calib")
        .arg(data.join("fer2013/train"))
        .arg("--eval")
        .arg(data.join("fer2013/public_test"))
        .arg("--out")
        .arg(&fer_path)
        // Keras' preprocessing, x / 127.5 - 1, absorbed by the first layer.
        .args(["--input-scale", "0.0078431373", "--input-offset", "-1", "--json"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let eval = &report["eval"];
    assert_eq!(eval["images"], 3589);
    let (float, int8) = (eval["float_accuracy"].as_f64().unwrap(), eval["int8_accuracy"].as_f64().unwrap());
    eprintln!("public_test: float {:.2}% -> int8 {:.2}%", 100.0 * float, 100.0 * int8);
    assert!((float - int8).abs() <= 0.005, "int8 {int8} vs float {float}");

    // The .fer carries the input map: `fer eval`, which feeds every model pixels / 255,
    // scores it as the quantizer's own evaluation did (the same images, the same bytes).
    let run = Command::new(env!("CARGO_BIN_EXE_fer"))
        .args(["eval", "--no-detect", "--no-flip-tta", "--json", "--model"])
        .arg(&fer_path)
        .arg("--data")
        .arg(data.join("fer2013/public_test"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let scored: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let accuracy = scored["accuracy"].as_f64().unwrap();
    assert!((accuracy - int8).abs() < 1e-9, "fer eval {accuracy} vs fer quantize --eval {int8}");

    // The float figure is Keras' own (its JPEG decoder may move a pixel: a few images).
    let made: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("keras_mini_xception.json")).unwrap()).unwrap();
    let keras = made["keras_float_accuracy"].as_f64().unwrap();
    assert!((float - keras).abs() <= 0.001, "our f32 reading {float} vs Keras {keras}");
}
