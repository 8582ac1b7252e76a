//! The WebAssembly builds themselves (scalar and SIMD128, as `scripts/web-build.sh` makes
//! them), run by Node.js through `web/fer.js`, against the native app's pipeline on the
//! same pixels: the same faces, every value equal to the bit, the same labels.
//! Skipped when the builds are missing, unless FER_REQUIRE_WEB=1 (CI sets it).

mod common;

use std::process::Command;

use common::{images, native_pipeline, web};
use fer_runtime::vision::{Face, RgbFrame};
use serde_json::Value;

fn built() -> bool {
    let have = ["pkg", "pkg-simd"].iter().all(|d| web().join(d).join("fer_bg.wasm").is_file());
    if !have && std::env::var_os("FER_REQUIRE_WEB").is_some() {
        panic!("FER_REQUIRE_WEB is set but web/pkg or web/pkg-simd is missing: run scripts/web-build.sh");
    }
    have
}

fn f32s(v: &Value) -> Vec<u32> {
    let flat: Vec<f64> = match v {
        Value::Array(a) => a
            .iter()
            .flat_map(|x| match x {
                Value::Array(inner) => inner.iter().map(|y| y.as_f64().unwrap()).collect::<Vec<_>>(),
                other => vec![other.as_f64().unwrap()],
            })
            .collect(),
        other => vec![other.as_f64().unwrap()],
    };
    flat.into_iter().map(|x| (x as f32).to_bits()).collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn compare(what: &str, got: &Value, want: &[Face]) {
    let got = got["faces"].as_array().unwrap();
    assert_eq!(got.len(), want.len(), "{what}: faces");
    for (g, n) in got.iter().zip(want) {
        assert_eq!(f32s(&g["box"]), bits(&n.bbox), "{what}: box");
        assert_eq!(f32s(&g["score"]), bits(&[n.score]), "{what}: score");
        let kp: Vec<f32> = n.keypoints.iter().flatten().copied().collect();
        assert_eq!(f32s(&g["keypoints"]), bits(&kp), "{what}: keypoints");
        assert_eq!(f32s(&g["probabilities"]), bits(&n.probabilities), "{what}: probabilities");
        assert_eq!(g["label"], n.label.as_str(), "{what}: label");
    }
}

#[test]
fn the_webassembly_builds_find_the_native_faces_to_the_bit() {
    if !built() {
        eprintln!("skipped: web/pkg or web/pkg-simd missing (scripts/web-build.sh)");
        return;
    }
    // The package a page loads, both models inside: at most 1 MB per build.
    for build in ["pkg", "pkg-simd"] {
        let bytes: u64 = ["fer_bg.wasm", "fer.js"]
            .iter()
            .map(|f| web().join(build).join(f).metadata().unwrap().len())
            .sum();
        let bytes = bytes + web().join("fer.js").metadata().unwrap().len();
        assert!(bytes <= 1 << 20, "{build}: {bytes} bytes");
    }
    let mut native = native_pipeline();
    let dir = tempfile::tempdir().unwrap();
    let (mut manifest, mut want) = (Vec::new(), Vec::new());
    for (i, path) in images().iter().enumerate() {
        let img = image::open(path).unwrap();
        let rgb = img.to_rgb8();
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        want.push(native.faces(&RgbFrame::new(w, h, rgb.as_raw()).unwrap()).unwrap());
        let raw = dir.path().join(format!("{i}.rgba"));
        std::fs::write(&raw, img.to_rgba8().as_raw()).unwrap();
        manifest.push(serde_json::json!({"rgba": raw, "width": w, "height": h, "path": path}));
    }
    let manifest_path = dir.path().join("frames.json");
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    for (build, kernels) in [("simd", "simd128"), ("scalar", "reference")] {
        let out = Command::new("node")
            .arg(web().join("test/recognize-node.mjs"))
            .arg(&manifest_path)
            .arg(build)
            .output()
            .expect("node runs (apt-get install nodejs)");
        assert!(out.status.success(), "{build}: {}", String::from_utf8_lossy(&out.stderr));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["kernels"], kernels, "{build}");
        let frames = doc["frames"].as_array().unwrap();
        assert_eq!(frames.len(), want.len());
        for ((frame, faces), m) in frames.iter().zip(&want).zip(&manifest) {
            compare(&format!("{build}, {}", m["path"]), frame, faces);
        }
    }
}
