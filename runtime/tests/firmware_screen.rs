//! The Cortex-M demo (`cd firmware && cargo run --release`) against the host:
//!
//! - its test frame, `firmware/vectors/face48.gray`, is the demo photo's face as the host
//!   pipeline crops it (BlazeFace, eyes levelled, 48x48 gray);
//! - the screen it draws (the face, the shipped `edge` model's label and bars), dumped by
//!   semihosting to a PPM, equals the host's rendering of the same scene pixel for pixel,
//!   and the label it reports is the host's.
//!
//! `FER_WRITE_VECTORS=1` rewrites the frame. `FER_FIRMWARE_SCREEN=PATH` (absolute, or
//! relative to the repository root) names the firmware's dump (`.ci/run` sets it after running the demo under QEMU); without it the
//! comparison is skipped unless `FER_REQUIRE_FIRMWARE=1`.

use std::path::{Path, PathBuf};

use fer_runtime::backends::BackendKind;
use fer_runtime::engine::Engine;
use fer_runtime::format::{AlignedBytes, Model};
use fer_runtime::overlay::RgbBuffer;
use fer_runtime::screen;
use fer_runtime::vision::RgbFrame;
use fer_runtime::vision::detector::BlazeFace;
use fer_runtime::vision::frame::crop_into;
use fer_runtime::vision::pipeline::{CropOptions, crop_of};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The demo photo's face, 48x48 gray, as the host pipeline crops it for the classifier.
fn demo_face() -> Vec<u8> {
    let img = image::open(root().join("demo/astronaut.jpg")).unwrap().into_rgb8();
    let frame = RgbFrame::new(img.width() as usize, img.height() as usize, img.as_raw()).unwrap();
    let mut detector =
        BlazeFace::load(&root().join("models/blazeface_short.onnx"), BackendKind::Eval).unwrap();
    let faces = detector.detect(&frame).unwrap().to_vec();
    assert_eq!(faces.len(), 1, "the astronaut has one face");
    let mut crop = vec![0f32; screen::FACE * screen::FACE];
    crop_into(&frame, &crop_of(&faces[0], &CropOptions::default()), 1, screen::FACE, &mut crop);
    crop.iter().map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8).collect()
}

/// The host's rendering of the firmware's screen, and its label line.
fn host_screen(face: &[u8]) -> (Vec<u8>, String) {
    let bytes = std::fs::read(root().join("models/edge.fer")).unwrap();
    let buf = AlignedBytes::new(&bytes);
    let model = Model::new(buf.as_slice()).unwrap();
    let engine = Engine::with_best_kernels(model);
    let mut arena = vec![0u8; engine.arena_size()];
    let r = screen::classify(&engine, &mut arena, face).unwrap();
    let labels = screen::labels(&model, r.classes);
    let mut px = vec![0u8; (screen::WIDTH * screen::HEIGHT * 3) as usize];
    let mut fb = RgbBuffer::new(screen::WIDTH, screen::HEIGHT, &mut px).unwrap();
    screen::draw(&mut fb, face, &labels, &r).unwrap();
    let pm = screen::permille(r.probabilities[r.best]);
    let label = format!("{} {}.{:03}", labels[r.best], pm / 1000, pm % 1000);
    (px, label)
}

/// A binary PPM's (`P6`) comment lines, size and pixels.
fn read_ppm(bytes: &[u8]) -> (Vec<String>, [u32; 2], &[u8]) {
    let mut comments = Vec::new();
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        let end = at + bytes[at..].iter().position(|&b| b == b'\n').expect("a PPM header line");
        let line = std::str::from_utf8(&bytes[at..end]).unwrap();
        match line.strip_prefix('#') {
            Some(c) => comments.push(c.trim().to_string()),
            None => fields.extend(line.split_whitespace().map(str::to_string)),
        }
        at = end + 1;
    }
    assert_eq!(fields[0], "P6");
    let size = [fields[1].parse().unwrap(), fields[2].parse().unwrap()];
    (comments, size, &bytes[at..])
}

#[test]
fn the_firmware_frame_is_the_demo_face_as_the_host_crops_it() {
    let path = root().join("firmware/vectors/face48.gray");
    let face = demo_face();
    if std::env::var_os("FER_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &face).unwrap();
    }
    let stored = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(stored, face, "{}: rewrite it with FER_WRITE_VECTORS=1", path.display());
}

#[test]
fn the_firmware_draws_the_hosts_screen_pixel_for_pixel() {
    let face = std::fs::read(root().join("firmware/vectors/face48.gray")).unwrap();
    let (want, label) = host_screen(&face);
    eprintln!("host: {label}");
    let Some(dump) = std::env::var_os("FER_FIRMWARE_SCREEN") else {
        assert!(
            std::env::var_os("FER_REQUIRE_FIRMWARE").is_none(),
            "FER_REQUIRE_FIRMWARE is set but FER_FIRMWARE_SCREEN names no dump"
        );
        eprintln!("skipped: set FER_FIRMWARE_SCREEN to the firmware's dump (see docs/firmware.md)");
        return;
    };
    // Relative to the repository root (cargo runs tests in the package's folder).
    let dump = root().join(dump);
    let bytes = std::fs::read(&dump).unwrap_or_else(|e| panic!("{}: {e}", dump.display()));
    let (comments, size, pixels) = read_ppm(&bytes);
    assert_eq!(size, [screen::WIDTH, screen::HEIGHT]);
    assert!(
        comments.iter().any(|c| *c == format!("label {label}")),
        "firmware says {comments:?}, host {label}"
    );
    let differ = want.chunks(3).zip(pixels.chunks(3)).filter(|(a, b)| a != b).count();
    assert_eq!(pixels.len(), want.len());
    assert_eq!(differ, 0, "{differ} pixels differ from the host's rendering");
}
