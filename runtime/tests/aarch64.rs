//! `fer predict` cross-built for aarch64 (scripts/cross-aarch64.sh), run under qemu-user on
//! a CPU with the dot-product extension (`-cpu max`) and on a Raspberry Pi 4's Cortex-A72
//! (without it), gives the same JSON as this machine's build: the same face box, keypoints
//! and probabilities, with the float detector (the own f32 evaluator on both) and with the
//! int8 detector. So the int8 outputs of the NEON and dot-product kernels equal the x86
//! ones bit for bit, for both networks. Only the timing keys may differ.
//!
//! `FER_AARCH64_FER=PATH` names the cross-built binary (`.ci/run` sets it); without it the
//! test is skipped unless `FER_REQUIRE_AARCH64=1`.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The JSON without the keys that measure time.
fn without_timings(mut v: Value) -> Value {
    match &mut v {
        Value::Object(map) => {
            map.retain(|k, _| !k.ends_with("_ms"));
            for x in map.values_mut() {
                *x = without_timings(x.take());
            }
        }
        Value::Array(items) => {
            for x in items.iter_mut() {
                *x = without_timings(x.take());
            }
        }
        _ => {}
    }
    v
}

fn predict(cmd: &mut Command, detector: &[&str]) -> Value {
    let out = cmd
        .args(["predict", "demo/astronaut.jpg", "--json"])
        .args(detector)
        .current_dir(root())
        .output()
        .expect("run fer");
    assert!(out.status.success(), "{:?}: {}", cmd, String::from_utf8_lossy(&out.stderr));
    without_timings(serde_json::from_slice(&out.stdout).expect("JSON"))
}

#[test]
fn aarch64_predicts_what_x86_does_with_and_without_dotprod() {
    let Some(cross) = std::env::var_os("FER_AARCH64_FER") else {
        assert!(
            std::env::var_os("FER_REQUIRE_AARCH64").is_none(),
            "FER_REQUIRE_AARCH64 is set but FER_AARCH64_FER is not"
        );
        eprintln!("skipped: set FER_AARCH64_FER to a binary from scripts/cross-aarch64.sh");
        return;
    };
    // The float detector on the own evaluator, then the int8 detector on the engine.
    let detectors: [&[&str]; 2] =
        [&["--detector-backend", "eval"], &["--detector", "models/blazeface_short.fer"]];
    for detector in detectors {
        let host = predict(&mut Command::new(env!("CARGO_BIN_EXE_fer")), detector);
        let faces = host[0]["faces"].as_array().expect("faces");
        assert_eq!(faces.len(), 1, "{host}");
        for cpu in ["max", "cortex-a72"] {
            let qemu = ["-cpu", cpu, "-L", "/usr/aarch64-linux-gnu"];
            let arm = predict(Command::new("qemu-aarch64").args(qemu).arg(&cross), detector);
            assert_eq!(arm, host, "-cpu {cpu}, {detector:?}");
        }
    }
}
