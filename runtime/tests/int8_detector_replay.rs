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
    use fer_runtime::backends::{Backend, BackendKind, Ort};
    use fer_runtime::vision::detector::{BlazeFace, split_outputs};
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
    let float_net = || Ort::load(&repo("models/blazeface_short.onnx"), "ONNX Runtime f32").unwrap();
    let mut float = BlazeFace::new(Box::new(float_net())).unwrap();
    let mut int8 = BlazeFace::load(&repo("models/blazeface_short.fer"), BackendKind::Own).unwrap();
    // The score logits themselves, near the threshold (|float logit| < 2): what moves faces
    // across it.
    let mut nets: [Box<dyn Backend>; 2] =
        [Box::new(float_net()), BackendKind::Own.open(&repo("models/blazeface_short.fer")).unwrap()];
    let mut outputs = Vec::new();
    let (mut input, mut reg, mut logits) = (vec![0f32; 3 * 128 * 128], Vec::new(), [Vec::new(), Vec::new()]);
    let (mut near, mut worst_missed) = (Vec::new(), 0f32);
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
            fer_runtime::vision::frame::letterbox_into(&frame, 128, 1.0 / 127.5, -1.0, &mut input);
            for (net, out) in nets.iter_mut().zip(&mut logits) {
                net.run(&input, &mut outputs).unwrap();
                split_outputs(&outputs, 896, &mut reg, out).unwrap();
            }
            near.extend(logits[0].iter().zip(&logits[1]).filter(|(f, _)| f.abs() < 2.0).map(|(f, i)| i - f));
            let f = float.detect(&frame).unwrap().to_vec();
            let i = int8.detect(&frame).unwrap().to_vec();
            frames += 1;
            // The best score among the faces one detector finds and the other does not.
            let unmatched = |a: &[fer_runtime::vision::decode::Detection],
                             b: &[fer_runtime::vision::decode::Detection]| {
                a.iter().filter(|d| b.iter().all(|e| d.iou(e) < 0.5)).map(|d| d.score).fold(0f32, f32::max)
            };
            worst_missed = worst_missed.max(unmatched(&f, &i)).max(unmatched(&i, &f));
            if f.len() != i.len() {
                let scores = |d: &[fer_runtime::vision::decode::Detection]| {
                    d.iter().map(|d| std::format!("{:.2}", d.score)).collect::<Vec<_>>().join(",")
                };
                let name = p.file_name().unwrap().to_string_lossy();
                mismatched.push(std::format!("{name}#{k}: float [{}] int8 [{}]", scores(&f), scores(&i)));
                continue;
            }
            ious.extend(f.iter().map(|d| i.iter().map(|e| d.iou(e)).fold(0f32, f32::max)));
        }
    }
    ious.sort_by(f32::total_cmp);
    let rms = (near.iter().map(|e| e * e).sum::<f32>() / near.len().max(1) as f32).sqrt();
    let bias = near.iter().sum::<f32>() / near.len().max(1) as f32;
    eprintln!(
        "score logits near the threshold: {} anchors, int8 - float RMS {rms:.3}, mean {bias:.3}",
        near.len()
    );
    eprintln!("the best-scored face one detector finds and the other does not: {worst_missed:.2}");
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
    // Measured (docs/runtime.md), with channels equalized between convs, percentile
    // ranges and the 8x8 score head's weights split in two int8 passes: 9 frames with
    // another count, every one over a face scored below 0.6 by the detector that finds it;
    // near-threshold logits 0.18 RMS off (0.25 before the split, 0.49 before equalizing);
    // median IoU 0.95, 177 of 180 faces at 0.8 or more. The goal (same counts, IoU >= 0.9
    // everywhere) is not reached, and int8 weights alone rule it out on these frames
    // (`scripts/detector-int8-error.py`: float activations with 8-bit weights still give 9
    // frames; 12-bit weights give none). These keep it from getting worse, with room for
    // ONNX Runtime's own run-to-run differences.
    assert!(mismatched.len() <= 12, "{} frames", mismatched.len());
    assert!(worst_missed < 0.65, "a face scored {worst_missed} by one detector is missed by the other");
    assert!(rms < 0.22, "near-threshold logits {rms} RMS off");
    assert!(ious[ious.len() / 2] >= 0.93, "median IoU {}", ious[ious.len() / 2]);
    assert!(at_least(0.8) * 100 >= ious.len() * 95, "{} of {} at 0.8 or more", at_least(0.8), ious.len());
}
