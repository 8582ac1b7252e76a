//! The recognition pipeline stage by stage on a 640x480 frame (the demo photo, letterboxed
//! into a webcam-sized frame): letterboxing into the detector input, the detector network on
//! each backend this build has, decoding with weighted NMS, the aligned face crop, the
//! int8 classifier, and the whole `frame -> faces` step. JPEG decoding is measured apart.
//!
//! `cargo bench -p fer-runtime --bench pipeline` (the classifier: `models/edge.fer`, or
//! `$FER_BENCH_MODEL`; ONNX Runtime stages need its library, see the README).

use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use fer_runtime::backends::{Backend, BackendKind, Ort};
use fer_runtime::vision::decode::{DecodeOptions, decode, weighted_nms};
use fer_runtime::vision::detector::{BlazeFace, INPUT, split_outputs};
use fer_runtime::vision::frame::{crop_into, letterbox_into};
use fer_runtime::vision::pipeline::{CropOptions, crop_of};
use fer_runtime::vision::{Classifier, Pipeline, RgbFrame, anchors};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The demo photo centred in a 640x480 grey frame.
fn frame_pixels() -> (Vec<u8>, Vec<u8>) {
    let jpeg = std::fs::read(root().join("demo/astronaut.jpg")).unwrap();
    let photo = image::load_from_memory(&jpeg).unwrap().into_rgb8();
    let photo = image::imageops::resize(&photo, 420, 420, image::imageops::FilterType::Triangle);
    let mut frame = image::RgbImage::from_pixel(640, 480, image::Rgb([120, 120, 120]));
    image::imageops::overlay(&mut frame, &photo, 110, 30);
    (frame.into_raw(), jpeg)
}

fn classifier_path() -> PathBuf {
    std::env::var_os("FER_BENCH_MODEL").map(PathBuf::from).unwrap_or_else(|| root().join("models/edge.fer"))
}

fn detector_path() -> PathBuf {
    root().join("models/blazeface_short.onnx")
}

fn stages(c: &mut Criterion) {
    let (px, jpeg) = frame_pixels();
    let frame = RgbFrame::new(640, 480, &px).unwrap();
    c.bench_function("decode demo jpeg 512x512", |b| b.iter(|| image::load_from_memory(&jpeg).unwrap()));

    let mut input = vec![0f32; 3 * INPUT * INPUT];
    c.bench_function("letterbox 640x480 -> 128x128", |b| {
        b.iter(|| letterbox_into(&frame, INPUT, 1.0 / 127.5, -1.0, &mut input))
    });

    // The shipped int8 detector on the own engine, then the float one on the other runtimes.
    let mut nets: Vec<Box<dyn Backend>> =
        vec![BackendKind::Own.open(&detector_path().with_extension("fer")).unwrap()];
    match Ort::load(&detector_path(), "ONNX Runtime f32") {
        Ok(n) => nets.push(Box::new(n)),
        Err(e) => eprintln!("ONNX Runtime stages skipped: {e}"),
    }
    #[cfg(feature = "tract")]
    nets.push(BackendKind::Tract.open(&detector_path()).unwrap());
    let mut outputs = Vec::new();
    for net in &mut nets {
        c.bench_function(&format!("blazeface on {}", net.name()), |b| {
            b.iter(|| net.run(&input, &mut outputs).unwrap())
        });
    }

    let anchors = anchors::short_range();
    let (mut reg, mut scores) = (Vec::new(), Vec::new());
    if let Some(net) = nets.first_mut() {
        net.run(&input, &mut outputs).unwrap();
        split_outputs(&outputs, anchors.len(), &mut reg, &mut scores).unwrap();
        let mut dets = Vec::new();
        c.bench_function("decode 896 anchors + weighted NMS", |b| {
            b.iter(|| {
                decode(&reg, &scores, &anchors, &DecodeOptions::default(), &mut dets).unwrap();
                weighted_nms(&mut dets, 0.3);
            })
        });
    }

    let Ok(mut classifier) = Classifier::load(&classifier_path(), BackendKind::Own) else {
        eprintln!("classifier stages skipped: no {}", classifier_path().display());
        return;
    };
    let [ch, h, w] = classifier.input_shape();
    let mut crop = vec![0f32; ch * h * w];
    let mut detectors: Vec<BlazeFace> = nets.into_iter().map(|n| BlazeFace::new(n).unwrap()).collect();
    let face = detectors[0].detect(&frame).unwrap()[0];
    let geometry = crop_of(&face, &CropOptions::default());
    c.bench_function("aligned crop -> 48x48 gray", |b| {
        b.iter(|| crop_into(&frame, &geometry, ch, h, &mut crop))
    });
    c.bench_function("classify one face (own int8)", |b| b.iter(|| classifier.classify(&crop).unwrap()));

    // The whole pipeline with each detector, the classifier on the own engine.
    for detector in detectors {
        let classifier = Classifier::load(&classifier_path(), BackendKind::Own).unwrap();
        let mut pipeline = Pipeline::new(Some(detector), classifier);
        c.bench_function(
            &format!("pipeline 640x480 frame -> faces ({})", pipeline.detector.as_ref().unwrap().name()),
            |b| b.iter(|| pipeline.faces(&frame).unwrap()),
        );
    }
}

criterion_group!(benches, stages);
criterion_main!(benches);
