//! The LibTorch backend (`--features tch`) against flex: one seed gives one run, within
//! float noise, on either backend. `.ci/run` builds and runs it after scripts/setup-tch.sh.
#![cfg(feature = "tch")]

mod common;

use std::path::Path;
use std::process::Command;

use common::striped_tree;

/// metrics.csv's columns 2..=5 (train loss and accuracy, validation loss and accuracy) per epoch.
fn curves(run: &Path) -> Vec<[f64; 4]> {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    csv.lines()
        .skip(1)
        .map(|line| {
            let cols: Vec<f64> = line.split(',').skip(2).take(4).map(|v| v.parse().unwrap()).collect();
            [cols[0], cols[1], cols[2], cols[3]]
        })
        .collect()
}

fn fit(data: &Path, out: &Path, device: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_fer-train"))
        .args(["fit", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(["--epochs", "4", "--model", "baseline", "--image-size", "16", "--batch-size", "16"])
        .args(["--optimizer", "sgd", "--lr", "0.01", "--val-split", "subject", "--val-fraction", "0.25"])
        // Dropout masks come from each backend's own generator; everything else (the initial
        // weights, the image order, every augmentation) is drawn the same way on both.
        .args(["--augment", "standard", "--dropout", "0", "--no-progress", "--devices", device])
        .output()
        .expect("runs fer-train");
    assert!(out.status.success(), "{device}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn libtorch_and_flex_give_the_same_curves_from_one_seed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    striped_tree(&data, 8);
    let (flex, torch) = (dir.path().join("flex"), dir.path().join("libtorch"));
    fit(&data, &flex, "flex");
    fit(&data, &torch, "libtorch");
    let (a, b) = (curves(&flex), curves(&torch));
    assert_eq!(a.len(), 4);
    assert_eq!(a.len(), b.len());
    // 72 training and 24 validation images: an accuracy may move by one image at most.
    for (epoch, (x, y)) in a.iter().zip(&b).enumerate() {
        for (what, i) in [("train loss", 0), ("val loss", 2)] {
            let tol = 1e-3 + 1e-2 * x[i].abs();
            assert!(
                (x[i] - y[i]).abs() <= tol,
                "epoch {}: {what} {} (flex) vs {} (libtorch)",
                epoch + 1,
                x[i],
                y[i]
            );
        }
        assert!((x[1] - y[1]).abs() <= 1.0 / 72.0 + 1e-9, "epoch {}: train acc {x:?} vs {y:?}", epoch + 1);
        assert!((x[3] - y[3]).abs() <= 1.0 / 24.0 + 1e-9, "epoch {}: val acc {x:?} vs {y:?}", epoch + 1);
    }
    // And the runs learned: the backends agree on something that moved.
    assert!(a[3][0] < a[0][0], "train loss fell: {a:?}");
}

#[test]
fn a_cuda_device_libtorch_does_not_see_is_a_clear_error() {
    // No machine of ours has 8 GPUs: asking for the eighth must end in an error naming it.
    let out = Command::new(env!("CARGO_BIN_EXE_fer-train"))
        .args([
            "bench",
            "--models",
            "baseline",
            "--reps",
            "1",
            "--warmup",
            "0",
            "--device",
            "libtorch-cuda:7",
        ])
        .output()
        .expect("runs fer-train");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("libtorch-cuda:7: LibTorch sees"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
