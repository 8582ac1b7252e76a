//! The live page in headless Chromium (Debian's `chromium`, driven by playwright-core
//! through `web/test/page.mjs`), its camera a clip made here from the demo image and the
//! photos. The faces the page reports for the frame it shows equal the native app's on
//! the same pixels, to the bit; the canvas shows that frame with `fer`'s overlay, pixel
//! for pixel; the page loads in under a second. Skipped when Chromium, playwright-core or
//! the WebAssembly builds are missing, unless FER_REQUIRE_BROWSER=1 (CI sets it).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{native_pipeline, web};
use fer_runtime::vision::{RgbFrame, draw_faces};
use serde_json::Value;

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/chromium".into())
}

fn ready() -> bool {
    let have = chromium().is_file()
        && web().join("node_modules/playwright-core").is_dir()
        && web().join("pkg-simd/fer_bg.wasm").is_file();
    if !have && std::env::var_os("FER_REQUIRE_BROWSER").is_some() {
        panic!(
            "FER_REQUIRE_BROWSER is set, but chromium, web/node_modules (npm ci in web/) or web/pkg-simd is missing"
        );
    }
    have
}

/// A 640x480 Y4M clip (I420): each image letterboxed, shown for `hold` frames.
fn clip(images: &[PathBuf], hold: usize, path: &Path) {
    let (w, h) = (640u32, 480u32);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg").unwrap();
    for img in images {
        let img = image::open(img).unwrap().into_rgb8();
        let fitted = image::imageops::resize(
            &img,
            w.min(img.width() * h / img.height()),
            h.min(img.height() * w / img.width()),
            image::imageops::FilterType::Triangle,
        );
        let mut canvas = image::RgbImage::new(w, h);
        image::imageops::overlay(
            &mut canvas,
            &fitted,
            ((w - fitted.width()) / 2) as i64,
            ((h - fitted.height()) / 2) as i64,
        );
        let px = |x: u32, y: u32| canvas.get_pixel(x, y).0.map(i32::from);
        let mut y_plane = Vec::with_capacity((w * h) as usize);
        let (mut u_plane, mut v_plane) = (Vec::new(), Vec::new());
        for y in 0..h {
            for x in 0..w {
                let [r, g, b] = px(x, y);
                y_plane.push(((66 * r + 129 * g + 25 * b + 128) >> 8) as u8 + 16);
            }
        }
        for y in (0..h).step_by(2) {
            for x in (0..w).step_by(2) {
                let mut s = [0i32; 3];
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let p = px(x + dx, y + dy);
                    (0..3).for_each(|c| s[c] += p[c]);
                }
                let [r, g, b] = s.map(|v| v / 4);
                u_plane.push((((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128) as u8);
                v_plane.push((((112 * r - 94 * g - 18 * b + 128) >> 8) + 128) as u8);
            }
        }
        for _ in 0..hold {
            out.write_all(b"FRAME\n").unwrap();
            out.write_all(&y_plane).unwrap();
            out.write_all(&u_plane).unwrap();
            out.write_all(&v_plane).unwrap();
        }
    }
}

fn b64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        acc = (acc << 6) | ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn bits(v: &Value) -> Vec<u32> {
    let mut flat = Vec::new();
    let mut walk = vec![v];
    while let Some(x) = walk.pop() {
        match x {
            Value::Array(a) => walk.extend(a.iter().rev()),
            other => flat.push((other.as_f64().unwrap() as f32).to_bits()),
        }
    }
    flat
}

#[test]
fn the_page_in_chromium_shows_the_native_faces_with_fer_s_overlay() {
    if !ready() {
        eprintln!("skipped: chromium, web/node_modules or web/pkg-simd missing (docs/web.md)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut images = vec![web().join("../demo/astronaut.jpg")];
    if let Some(data) = fer_runtime::testdata::shared_data() {
        images.push(data.join("photos/9.jpg"));
    }
    let clip_path = dir.path().join("clip.y4m");
    clip(&images, 40, &clip_path);
    let out = Command::new("node")
        .arg(web().join("test/page.mjs"))
        .arg(&clip_path)
        .arg(dir.path())
        .arg("20")
        .env("CHROMIUM", chromium())
        .output()
        .expect("node runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&std::fs::read(dir.path().join("result.json")).unwrap()).unwrap();
    assert_eq!(r["errors"], serde_json::json!([]), "page errors");
    assert_eq!(r["kernels"], "simd128", "Chromium has SIMD: {r:#}");
    assert_eq!(r["message"], "", "no warning shown");
    assert!(r["loadMs"].as_f64().unwrap() < 1000.0, "loads in under a second: {}", r["loadMs"]);
    assert!(dir.path().join("page.png").is_file());
    if let Some(keep) = std::env::var_os("FER_BROWSER_KEEP") {
        // To look at: the screenshot and the result.
        std::fs::create_dir_all(&keep).unwrap();
        for f in ["page.png", "result.json"] {
            std::fs::copy(dir.path().join(f), Path::new(&keep).join(f)).unwrap();
        }
    }

    let (w, h) = (r["width"].as_u64().unwrap() as usize, r["height"].as_u64().unwrap() as usize);
    let rgba = b64(r["frame"].as_str().unwrap());
    assert_eq!(rgba.len(), w * h * 4);
    let rgb: Vec<u8> = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    let mut native = native_pipeline();
    let want = native.faces(&RgbFrame::new(w, h, &rgb).unwrap()).unwrap();
    assert!(!want.is_empty(), "the clip's frame has a face");
    let (got, shown) = (r["faces"].as_array().unwrap(), r["tracked"].as_array().unwrap());
    assert_eq!((got.len(), shown.len()), (want.len(), want.len()));
    for ((g, s), n) in got.iter().zip(shown).zip(&want) {
        let kp: Vec<f32> = n.keypoints.iter().flatten().copied().collect();
        for face in [g, s] {
            // Boxes and keypoints are the frame's in the tracked faces too.
            assert_eq!(bits(&face["box"]), n.bbox.map(f32::to_bits).to_vec(), "box");
            assert_eq!(
                bits(&face["keypoints"]),
                kp.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "keypoints"
            );
        }
        assert_eq!(bits(&g["score"]), vec![n.score.to_bits()], "score");
        assert_eq!(
            bits(&g["probabilities"]),
            n.probabilities.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(g["label"], n.label.as_str());
    }
    // The canvas: that frame with the overlay fer draws for the faces the page showed.
    let canvas = b64(r["canvas"].as_str().unwrap());
    let canvas_rgb: Vec<u8> = canvas.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    let mut tracked = want.clone();
    for (t, s) in tracked.iter_mut().zip(shown) {
        t.probabilities =
            s["probabilities"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    }
    let mut expected = rgb.clone();
    draw_faces(&mut expected, w as u32, h as u32, &tracked, &native.classifier.labels);
    assert_ne!(expected, rgb, "an overlay is drawn");
    assert!(canvas_rgb == expected, "the canvas shows the frame with fer's overlay");
}

/// fer against face-api.js (TinyFaceDetector + FaceExpressionNet on tfjs's wasm backend)
/// in the same headless Chromium, on the same 60 frames of the clip (docs/web.md):
/// `cargo test --release -p fer-web --test browser -- --ignored --nocapture`. Timing, so
/// not part of the test run; it prints the figures.
#[test]
#[ignore]
fn side_by_side_with_face_api() {
    assert!(ready(), "needs chromium, web/node_modules and web/pkg-simd (docs/web.md)");
    assert!(web().join("node_modules/@vladmandic/face-api").is_dir(), "npm ci in web/");
    let dir = tempfile::tempdir().unwrap();
    let mut images = vec![web().join("../demo/astronaut.jpg")];
    if let Some(data) = fer_runtime::testdata::shared_data() {
        let photos = data.join("photos");
        images.extend(["9.jpg", "6.png", "8.jpg", "2.png"].iter().map(|p| photos.join(p)));
    }
    let clip_path = dir.path().join("clip.y4m");
    clip(&images, 15, &clip_path);
    let out = Command::new("node")
        .arg(web().join("test/bench.mjs"))
        .arg(&clip_path)
        .arg("60")
        .env("CHROMIUM", chromium())
        .output()
        .expect("node runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("{r:#}");
    assert_eq!(r["errors"], serde_json::json!([]));
    assert!(r.get("error").is_none(), "{r:#}");
}

/// Both classifiers' accuracy on FER2013 `public_test`, through the same page: our `edge`
/// on its 48x48 input, face-api.js's FaceExpressionNet on the same crop as RGB
/// (`cargo test --release -p fer-web --test browser -- --ignored --nocapture`).
#[test]
#[ignore]
fn accuracy_beside_face_api_on_public_test() {
    assert!(ready() && web().join("node_modules/@vladmandic/face-api").is_dir(), "docs/web.md");
    let data = fer_runtime::testdata::shared_data().expect("../shared/data").join("fer2013/public_test");
    let labels = fer_core::labels::ALL_CLASSES;
    let dir = tempfile::tempdir().unwrap();
    let mut crops = Vec::new();
    for (class, name) in labels.iter().enumerate().take(7) {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(data.join(name)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            let gray = image::open(&f).unwrap().into_luma8();
            assert_eq!(gray.dimensions(), (48, 48), "{}", f.display());
            crops.push(class as u8);
            crops.extend_from_slice(gray.as_raw());
        }
    }
    std::fs::write(dir.path().join("crops.bin"), &crops).unwrap();
    let clip_path = dir.path().join("clip.y4m");
    clip(&[web().join("../demo/astronaut.jpg")], 2, &clip_path);
    let out = Command::new("node")
        .arg(web().join("test/bench.mjs"))
        .arg(&clip_path)
        .arg("crops")
        .env("CHROMIUM", chromium())
        .env("FER_SERVE_EXTRA", dir.path())
        .output()
        .expect("node runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("{r:#}");
    assert!(r.get("error").is_none(), "{r:#}");
}

/// What the page says when the camera cannot start: Chromium with no camera at all, then
/// with a camera whose permission is refused.
#[test]
fn the_page_says_when_there_is_no_camera_or_no_permission() {
    if !ready() {
        eprintln!("skipped: chromium, web/node_modules or web/pkg-simd missing (docs/web.md)");
        return;
    }
    let out = Command::new("node")
        .arg(web().join("test/messages.mjs"))
        .env("CHROMIUM", chromium())
        .output()
        .expect("node runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let none = r["none"]["message"].as_str().unwrap();
    assert!(none.starts_with("No camera was found"), "{r:#}");
    let refused = r["refused"]["message"].as_str().unwrap();
    assert!(refused.starts_with("Camera permission was refused"), "{r:#}");
    assert_eq!(
        (&r["none"]["errors"], &r["refused"]["errors"]),
        (&serde_json::json!([]), &serde_json::json!([]))
    );
}
