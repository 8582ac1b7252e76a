//! The browser's recognizer against the native app's pipeline on the same pixels: every
//! photo of `../shared/data/photos` and the demo image, every face's box, score, keypoints
//! and probabilities equal to the bit, and the same labels.

mod common;

use common::{images, native_pipeline, web};
use fer_runtime::vision::RgbFrame;
use fer_web::Recognizer;

#[test]
fn the_browser_recognizer_finds_the_native_faces_to_the_bit() {
    let mut native = native_pipeline();
    let mut browser = Recognizer::new().unwrap();
    let mut faces_seen = 0;
    for path in images() {
        let rgb = image::open(&path).unwrap().into_rgb8();
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let want = native.faces(&RgbFrame::new(w, h, rgb.as_raw()).unwrap()).unwrap();
        let got = browser.recognize_rgb(rgb.as_raw(), w, h).unwrap();
        assert_eq!(got.len(), want.len(), "{}", path.display());
        for (g, n) in got.iter().zip(&want) {
            let what = path.display();
            assert_eq!(g.bbox.map(f32::to_bits), n.bbox.map(f32::to_bits), "{what}: box");
            assert_eq!(g.score.to_bits(), n.score.to_bits(), "{what}: score");
            let kp: Vec<[f32; 2]> = g.keypoints.to_vec();
            assert_eq!(kp, n.keypoints, "{what}: keypoints");
            let bits = |p: &[f32]| p.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&g.probabilities), bits(&n.probabilities), "{what}: probabilities");
            assert_eq!(browser.label(&g.probabilities, None), n.label, "{what}: label");
        }
        faces_seen += got.len();
    }
    assert!(faces_seen >= 1, "the demo image alone has a face");
}

#[test]
fn the_overlay_is_drawn_as_fer_draws_it() {
    let mut native = native_pipeline();
    let mut browser = Recognizer::new().unwrap();
    let rgb = image::open(web().join("../demo/astronaut.jpg")).unwrap().into_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let faces = native.faces(&RgbFrame::new(w, h, rgb.as_raw()).unwrap()).unwrap();
    let mut drawn = rgb.as_raw().clone();
    fer_runtime::vision::draw_faces(&mut drawn, w as u32, h as u32, &faces, &native.classifier.labels);
    assert_ne!(&drawn, rgb.as_raw(), "something is drawn");
    let web_faces = browser.recognize_rgb(rgb.as_raw(), w, h).unwrap();
    let rgba = browser.draw(&web_faces, w, h);
    let web_rgb: Vec<u8> = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    assert!(web_rgb == drawn, "the browser's overlay differs from fer's");
}
