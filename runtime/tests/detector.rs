//! The shipped detector read by the runtime's own ONNX reader: the same outputs as tract
//! and the same faces, so the reader and f32 evaluator cover every op BlazeFace uses (Pad
//! of channels, SAME max pooling, residual Add, Transpose, Reshape, Concat, two outputs).
#![cfg(feature = "tract")]

use std::path::Path;

use fer_runtime::backends::{Backend, BackendKind, F32Eval, Tract};
use fer_runtime::vision::RgbFrame;
use fer_runtime::vision::detector::{BlazeFace, INPUT, split_outputs};
use fer_runtime::vision::frame::letterbox_into;

fn detector() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/blazeface_short.onnx")
}

fn demo() -> image::RgbImage {
    image::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/astronaut.jpg")).unwrap().into_rgb8()
}

#[test]
fn the_own_reader_runs_blazeface_as_tract_does() {
    let img = demo();
    let frame = RgbFrame::new(img.width() as usize, img.height() as usize, img.as_raw()).unwrap();
    let mut input = vec![0f32; 3 * INPUT * INPUT];
    letterbox_into(&frame, INPUT, 1.0 / 127.5, -1.0, &mut input);
    let (mut r_own, mut s_own, mut r_tract, mut s_tract) = (vec![], vec![], vec![], vec![]);
    let (mut own_out, mut tract_out) = (vec![], vec![]);
    F32Eval::load(&detector()).unwrap().run(&input, &mut own_out).unwrap();
    Tract::load(&detector()).unwrap().run(&input, &mut tract_out).unwrap();
    split_outputs(&own_out, 896, &mut r_own, &mut s_own).unwrap();
    split_outputs(&tract_out, 896, &mut r_tract, &mut s_tract).unwrap();
    let max_diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    let (dr, ds) = (max_diff(&r_own, &r_tract), max_diff(&s_own, &s_tract));
    eprintln!("own f32 vs tract: regressors max |diff| {dr:.2e}, scores {ds:.2e}");
    assert!(dr < 1e-3 && ds < 1e-3, "regressors {dr}, scores {ds}");

    let own = BlazeFace::load(&detector(), BackendKind::Eval).unwrap().detect(&frame).unwrap().to_vec();
    let tract = BlazeFace::load(&detector(), BackendKind::Tract).unwrap().detect(&frame).unwrap().to_vec();
    assert_eq!(own.len(), 1, "the astronaut: one face, got {own:?}");
    assert_eq!(own.len(), tract.len());
    assert!(own[0].iou(&tract[0]) > 0.999);
}

#[test]
fn a_detector_that_is_not_blazeface_is_refused_with_its_shape() {
    let classifier = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/vectors/tiny.fer");
    let e = BlazeFace::load(&classifier, BackendKind::Own).err().unwrap().to_string();
    assert!(e.contains("tiny.fer") && e.contains("BlazeFace short range takes [3, 128, 128]"), "{e}");
}
