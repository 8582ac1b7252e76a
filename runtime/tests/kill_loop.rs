//! kill -9 at chosen points of `fer quantize` (docs/reliability.md; the trainer's commands
//! have their own loop): after each kill the `.fer` and QDQ models are either absent or the
//! uninterrupted run's, byte for byte, and a rerun writes exactly those.
//!
//! Kill points are fractions of the uninterrupted duration from a fixed sequence;
//! `FER_KILLS` sets how many (default 15). It prints how many runs it killed mid-way.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fer_runtime::testdata::{kill_after, kill_points, uninterrupted_duration};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn kills() -> usize {
    std::env::var("FER_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(15)
}

fn quantize(model: &Path, calib: &Path, out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fer"));
    c.args(["quantize", model.to_str().unwrap(), "--calib", calib.to_str().unwrap()]);
    c.args(["--out", out.to_str().unwrap(), "--qdq-out", out.with_extension("qdq.onnx").to_str().unwrap()]);
    c.current_dir(root()).stdout(Stdio::null()).stderr(Stdio::null());
    c
}

#[test]
fn quantize_killed_anywhere_leaves_whole_models_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let model = root().join("fuzz/seeds/onnx_model/tiny.onnx");
    let calib = dir.path().join("calib");
    std::fs::create_dir_all(&calib).unwrap();
    let photo = image::open(root().join("demo/astronaut.jpg")).unwrap();
    for i in 0..40u32 {
        let crop =
            photo.crop_imm(i * 7, i * 5, 200, 200).resize_exact(8, 8, image::imageops::FilterType::Triangle);
        crop.save(calib.join(format!("{i:02}.png"))).unwrap();
    }
    let reference = dir.path().join("ref.fer");
    let took = uninterrupted_duration(|| quantize(&model, &calib, &reference));
    let want =
        [std::fs::read(&reference).unwrap(), std::fs::read(reference.with_extension("qdq.onnx")).unwrap()];
    let mut killed = 0;
    for (i, f) in kill_points(kills()).into_iter().enumerate() {
        let out = dir.path().join(format!("run-{i}/model.fer"));
        killed += kill_after(quantize(&model, &calib, &out), took.mul_f64(f)) as usize;
        for (path, want) in [out.clone(), out.with_extension("qdq.onnx")].iter().zip(&want) {
            if let Ok(got) = std::fs::read(path) {
                assert!(&got == want, "a kill at {f:.2} left a partial {}", path.display());
            }
        }
        assert!(quantize(&model, &calib, &out).status().unwrap().success());
        assert!(std::fs::read(&out).unwrap() == want[0], "the rerun after a kill at {f:.2} differs");
        assert!(std::fs::read(out.with_extension("qdq.onnx")).unwrap() == want[1]);
    }
    println!("quantize: {killed} of {} runs killed mid-way ({took:?} uninterrupted)", kills());
    // How many depends on the machine's load, which a test must not assert; none would mean
    // the loop tested nothing.
    assert!(killed > 0, "no run was killed before it finished");
}
