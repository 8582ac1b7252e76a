//! The shipped int8 BlazeFace against the float one on ONNX Runtime, on frames it was not
//! calibrated on. Its own test binary: ONNX Runtime allows one environment per process,
//! and `int8_detector.rs` makes its own.
#![cfg(feature = "ort")]

mod detector_frames;

use detector_frames::{frames, repo};

use fer_runtime::vision::RgbFrame;

/// 200 frames replayed from the photos (each panned and zoomed 20 ways, so that faces sit at
/// other places and scales than in the calibration frames): the shipped int8 detector
/// against the float one on ONNX Runtime.
#[test]
fn int8_blazeface_follows_float_on_200_replayed_frames() {
    use fer_runtime::vision::detector::{BlazeFace, Int8Net, OrtNet};
    let paths = frames();
    if paths.len() < 2 || fer_runtime::backends::Ort::available().is_err() {
        // CI requires both (FER_REQUIRE_SHARED, with ONNX Runtime installed).
        assert!(
            std::env::var_os("FER_REQUIRE_SHARED").is_none(),
            "needs ../shared/data/photos and ONNX Runtime"
        );
        eprintln!("skipped: needs ../shared/data/photos and ONNX Runtime");
        return;
    }
    let mut float = BlazeFace::new(Box::new(OrtNet::load(&repo("models/blazeface_short.onnx")).unwrap()));
    let mut int8 = BlazeFace::new(Box::new(Int8Net::load(&repo("models/blazeface_short.fer")).unwrap()));
    let (mut frames, mut mismatched, mut ious) = (0, Vec::new(), Vec::new());
    for p in &paths {
        let img = image::open(p).unwrap().into_rgb8();
        let (w, h) = (img.width(), img.height());
        for k in 0..20u32 {
            if frames == 200 {
                break;
            }
            // Crops from 100% down to 62% of the frame, sliding from one corner to the other.
            let scale = 1.0 - 0.02 * k as f32;
            let (cw, ch) = (((w as f32 * scale) as u32).max(16), ((h as f32 * scale) as u32).max(16));
            let (x, y) = ((w - cw) * k / 19, (h - ch) * (19 - k) / 19);
            let crop = image::imageops::crop_imm(&img, x, y, cw, ch).to_image();
            let frame = RgbFrame::new(cw as usize, ch as usize, crop.as_raw()).unwrap();
            let f = float.detect(&frame).unwrap().to_vec();
            let i = int8.detect(&frame).unwrap().to_vec();
            frames += 1;
            if f.len() != i.len() {
                mismatched.push(std::format!("{}#{k}: float {} int8 {}", p.display(), f.len(), i.len()));
                continue;
            }
            ious.extend(f.iter().map(|d| i.iter().map(|e| d.iou(e)).fold(0f32, f32::max)));
        }
    }
    ious.sort_by(f32::total_cmp);
    let at_least = |t: f32| ious.iter().filter(|&&v| v >= t).count();
    eprintln!(
        "int8 vs float (ORT) on {frames} replayed frames: {} with another face count {mismatched:?}; \
         {} faces, IoU worst {:.3}, median {:.3}, >= 0.9: {}, >= 0.8: {}",
        mismatched.len(),
        ious.len(),
        ious.first().copied().unwrap_or(1.0),
        ious.get(ious.len() / 2).copied().unwrap_or(1.0),
        at_least(0.9),
        at_least(0.8)
    );
    assert_eq!(frames, 200);
    // Measured (docs/runtime.md): 16 frames with another count (faces near the threshold,
    // drawn ones most), median IoU 0.92, 166 of 175 faces at 0.8 or more. Calibrating on
    // 200 more replayed frames, or by percentile, did not do better: the activations' int8
    // steps are the limit. The goal (same counts, IoU >= 0.9) is not reached; these keep
    // it from getting worse, with room for ONNX Runtime's own run-to-run differences.
    assert!(mismatched.len() <= 20, "{} frames", mismatched.len());
    assert!(ious[ious.len() / 2] >= 0.9, "median IoU {}", ious[ious.len() / 2]);
    assert!(at_least(0.8) * 100 >= ious.len() * 90, "{} of {} at 0.8 or more", at_least(0.8), ious.len());
}
