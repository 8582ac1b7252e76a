//! BlazeFace on the int8 engine: quantized from the shipped float ONNX with face frames
//! (`fer quantize --letterbox`), checked op by op against ONNX Runtime on its QDQ twin, and
//! finding the faces the float detector finds.
#![cfg(feature = "ort")]

mod detector_frames;

use std::path::Path;

use detector_frames::{frames, repo};

use fer_runtime::engine::Engine;
use fer_runtime::format::{AlignedBytes, Model};
use fer_runtime::kernels;
use fer_runtime::quant::{self, Method};
use fer_runtime::vision::RgbFrame;
use fer_runtime::vision::detector::INPUT;
use fer_runtime::vision::frame::letterbox_into;

/// A frame letterboxed into the detector's input, as the pipeline feeds it.
fn input(path: &Path) -> Vec<f32> {
    let img = image::open(path).unwrap().into_rgb8();
    let frame = RgbFrame::new(img.width() as usize, img.height() as usize, img.as_raw()).unwrap();
    let mut x = vec![0f32; 3 * INPUT * INPUT];
    letterbox_into(&frame, INPUT, 1.0 / 127.5, -1.0, &mut x);
    x
}

/// The shipped recipe (scripts/blazeface-int8.sh): the score logits' range set to [-8, 8]
/// (background anchors reach -200, and a full range left 0.65 logits per step at the
/// threshold), percentile ranges, channels equalized between convs, the 8x8 score head's
/// weights split in two int8 passes, and the input map `pixel / 127.5 - 1` written into
/// the model.
fn quantize_as_shipped(onnx: &[u8], inputs: &[Vec<f32>]) -> quant::Quantized {
    let scores = [("classificators".to_string(), -8.0, 8.0)];
    let split = ["classificator_16".to_string()];
    let options = quant::Options {
        method: Method::Percentile(99.99),
        output_ranges: &scores,
        input_map: Some(&[(0.007_843_138, -1.0)]), // the script's 0.0078431373 as f32
        equalize: true,
        split_weights: &split,
        weight_bits: 8,
    };
    quant::quantize_with(onnx, inputs, &options).unwrap()
}

#[test]
fn int8_blazeface_equals_onnx_runtime_op_by_op() {
    if let Err(e) = fer_runtime::backends::onnxruntime_library() {
        // CI sets FER_REQUIRE_ONNX_TOOLS=1: there, a missing library is a failure.
        let required = std::env::var("FER_REQUIRE_ONNX_TOOLS").is_ok_and(|v| v == "1");
        assert!(!required, "{e}; FER_REQUIRE_ONNX_TOOLS=1 requires it");
        eprintln!("skipped: {e}");
        return;
    }
    let onnx = std::fs::read(repo("models/blazeface_short.onnx")).unwrap();
    let inputs: Vec<Vec<f32>> = frames().iter().map(|p| input(p)).collect();
    let q = quantize_as_shipped(&onnx, &inputs);
    let mut oracle = fer_runtime::backends::oracle::TwinOracle::new(&q.model).unwrap();
    let buf = AlignedBytes::new(&q.fer);
    for x in inputs.iter().take(3) {
        let values = oracle.values(x).unwrap();
        for k in kernels::available_for(127) {
            let engine = Engine::new(Model::new(buf.as_slice()).unwrap(), k);
            let mut worst = 0;
            for d in quant::op_by_op(&engine, &q.model, &values).unwrap() {
                let l = &q.model.layers[d.op];
                let lsb = d.max_lsb;
                assert!(
                    lsb <= 1,
                    "{} kernels, op {} `{}` ({:?}): {lsb} LSB from ONNX Runtime",
                    k.name(),
                    d.op,
                    l.name,
                    l.code
                );
                worst = worst.max(lsb);
            }
            eprintln!("{}: op by op within {worst} LSB of ONNX Runtime", k.name());
        }
    }
}

/// Faces found by the int8 detector against the float one (the runtime's own f32
/// evaluator) on the same frames: the count per frame, and the IoU of matched boxes.
#[test]
fn int8_blazeface_finds_the_faces_the_float_one_finds() {
    use fer_runtime::backends::BackendKind;
    use fer_runtime::vision::detector::BlazeFace;
    let onnx_path = repo("models/blazeface_short.onnx");
    let onnx = std::fs::read(&onnx_path).unwrap();
    let paths = frames();
    let inputs: Vec<Vec<f32>> = paths.iter().map(|p| input(p)).collect();
    let q = quantize_as_shipped(&onnx, &inputs);
    if paths.len() > 1 {
        // The shipped int8 detector is this one (scripts/blazeface-int8.sh, same frames).
        let shipped = std::fs::read(repo("models/blazeface_short.fer")).unwrap();
        assert!(shipped == q.fer, "models/blazeface_short.fer is stale: rerun scripts/blazeface-int8.sh");
    }
    let dir = tempfile::tempdir().unwrap();
    let fer = dir.path().join("blazeface_short.fer");
    std::fs::write(&fer, &q.fer).unwrap();
    let mut float = BlazeFace::load(&onnx_path, BackendKind::Eval).unwrap();
    let mut int8 = BlazeFace::load(&fer, BackendKind::Own).unwrap();
    let (mut mismatched, mut worst, mut faces) = (Vec::new(), 1f32, 0);
    for p in &paths {
        let img = image::open(p).unwrap().into_rgb8();
        let frame = RgbFrame::new(img.width() as usize, img.height() as usize, img.as_raw()).unwrap();
        let f = float.detect(&frame).unwrap().to_vec();
        let i = int8.detect(&frame).unwrap().to_vec();
        if f.len() != i.len() {
            mismatched.push(p.file_name().unwrap().to_string_lossy().into_owned());
            continue;
        }
        for d in &f {
            let best = i.iter().map(|e| d.iou(e)).fold(0f32, f32::max);
            worst = worst.min(best);
            faces += 1;
        }
        if p.ends_with("demo/astronaut.jpg") {
            assert_eq!(i.len(), 1, "the astronaut: one face");
            assert!(f[0].iou(&i[0]) >= 0.9, "the astronaut's box: IoU {}", f[0].iou(&i[0]));
        }
    }
    eprintln!(
        "int8 vs float detector on {} frames: {} with another face count ({mismatched:?}); worst IoU {worst:.3} over {faces} faces",
        paths.len(),
        mismatched.len()
    );
    // Measured with 10 calibration frames (docs/runtime.md): the same face count on every
    // frame, worst box IoU 0.91 (a drawn face; 0.87 before the score head's weights were
    // split, 0.83 before channels were equalized): the goal, IoU >= 0.9 everywhere, on
    // these frames. Both detectors run in this process's own arithmetic, so the figure
    // does not move between runs.
    assert!(mismatched.is_empty(), "{mismatched:?}");
    assert!(worst >= 0.9, "worst IoU {worst}");
}
