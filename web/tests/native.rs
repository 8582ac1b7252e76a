//! The browser's recognizer against the native app's pipeline on the same pixels: every
//! photo of `../shared/data/photos` and the demo image, every face's box, score, keypoints
//! and probabilities equal to the bit, and the same labels.

use std::path::{Path, PathBuf};

use fer_runtime::backends::BackendKind;
use fer_runtime::vision::{BlazeFace, Classifier, Pipeline, RgbFrame};
use fer_web::Recognizer;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn images() -> Vec<PathBuf> {
    let mut v = vec![root().join("demo/astronaut.jpg")];
    if let Some(data) = fer_runtime::testdata::shared_data() {
        let mut photos: Vec<PathBuf> =
            std::fs::read_dir(data.join("photos")).unwrap().map(|e| e.unwrap().path()).collect();
        photos.sort();
        v.extend(photos);
    }
    v
}

#[test]
fn the_browser_recognizer_finds_the_native_faces_to_the_bit() {
    let models = root().join("models");
    let detector = BlazeFace::load(&models.join("blazeface_short.fer"), BackendKind::Own).unwrap();
    let classifier = Classifier::load(&models.join("edge.fer"), BackendKind::Own).unwrap();
    let mut native = Pipeline::new(Some(detector), classifier);
    let mut web = Recognizer::new().unwrap();
    let mut faces_seen = 0;
    for path in images() {
        let rgb = image::open(&path).unwrap().into_rgb8();
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let want = native.faces(&RgbFrame::new(w, h, rgb.as_raw()).unwrap()).unwrap();
        let got = web.recognize_rgb(rgb.as_raw(), w, h).unwrap();
        assert_eq!(got.len(), want.len(), "{}", path.display());
        for (g, n) in got.iter().zip(&want) {
            let what = path.display();
            assert_eq!(g.bbox.map(f32::to_bits), n.bbox.map(f32::to_bits), "{what}: box");
            assert_eq!(g.score.to_bits(), n.score.to_bits(), "{what}: score");
            let kp: Vec<[f32; 2]> = g.keypoints.to_vec();
            assert_eq!(kp, n.keypoints, "{what}: keypoints");
            let bits = |p: &[f32]| p.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&g.probabilities), bits(&n.probabilities), "{what}: probabilities");
            assert_eq!(web.label(&g.probabilities, None), n.label, "{what}: label");
        }
        faces_seen += got.len();
    }
    assert!(faces_seen >= 1, "the demo image alone has a face");
}

#[test]
fn the_overlay_is_drawn_as_fer_draws_it() {
    let models = root().join("models");
    let detector = BlazeFace::load(&models.join("blazeface_short.fer"), BackendKind::Own).unwrap();
    let classifier = Classifier::load(&models.join("edge.fer"), BackendKind::Own).unwrap();
    let mut native = Pipeline::new(Some(detector), classifier);
    let mut web = Recognizer::new().unwrap();
    let rgb = image::open(root().join("demo/astronaut.jpg")).unwrap().into_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let faces = native.faces(&RgbFrame::new(w, h, rgb.as_raw()).unwrap()).unwrap();
    let mut drawn = rgb.as_raw().clone();
    fer_runtime::vision::draw_faces(&mut drawn, w as u32, h as u32, &faces, &native.classifier.labels);
    assert_ne!(&drawn, rgb.as_raw(), "something is drawn");
    let web_faces = web.recognize_rgb(rgb.as_raw(), w, h).unwrap();
    let rgba = web.draw(&web_faces, w, h);
    let web_rgb: Vec<u8> = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    assert!(web_rgb == drawn, "the browser's overlay differs from fer's");
}
