//! kill -9 at chosen points of `fit`, `ship`, `data split` and `export` (docs/reliability.md):
//! after each kill every output is either complete and valid (equal to an uninterrupted
//! run's, where the command is deterministic) or absent, and a rerun, or `fit --resume`,
//! finishes with the uninterrupted run's result.
//!
//! The kill points are spread over each command's own uninterrupted duration (the median of
//! three runs after a warm-up; fractions from a fixed sequence, so a failure can be
//! replayed); `FER_KILLS` sets the kills per command (default 15: 60 here, and `fer
//! quantize`'s 15 in the runtime's kill loop). A kill point past the command's end kills
//! nothing; each loop prints how many runs it killed mid-way, and fails only if none (how
//! many depends on the machine's load, which a test must not assert).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fer_runtime::testdata::{kill_after, kill_points, uninterrupted_duration as timed};
use std::time::Duration;

fn fer_train(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fer-train"));
    c.args(args);
    c
}

fn ok(mut c: Command) -> Output {
    let out = c.output().expect("runs fer-train");
    assert!(out.status.success(), "{:?} failed: {}", c, String::from_utf8_lossy(&out.stderr));
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn kills() -> usize {
    std::env::var("FER_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(15)
}

fn report_kills(what: &str, killed: usize, took: Duration) {
    println!("{what}: {killed} of {} runs killed mid-way ({took:?} uninterrupted)", kills());
    assert!(killed > 0, "{what}: no run was killed before it finished");
}

/// `dir`'s own path in a file's text (a split names its manifests) made `OUT`, so that two
/// runs into two folders compare equal.
fn relative(bytes: Vec<u8>, dir: &Path) -> Vec<u8> {
    match String::from_utf8(bytes) {
        Ok(text) => text.replace(s(dir), "OUT").into_bytes(),
        Err(e) => e.into_bytes(),
    }
}

/// Every file under `dir` (relative path, bytes), sorted, leaving out the temporary files an
/// atomic write makes (`.tmp-*`, `*.tmp/`, `*.old/`), which a kill can leave and no reader
/// takes for output.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if !dir.exists() {
        return out;
    }
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
        let temporary = rel.components().any(|c| {
            let c = c.as_os_str().to_string_lossy();
            c.starts_with(".tmp-") || c.ends_with(".tmp") || c.ends_with(".old")
        });
        if e.file_type().is_file() && !temporary {
            out.push((rel, relative(std::fs::read(e.path()).unwrap(), dir)));
        }
    }
    out
}

/// Each file of `got` must be the reference's file of that name, byte for byte.
fn complete_or_absent(what: &str, got: &[(PathBuf, Vec<u8>)], reference: &[(PathBuf, Vec<u8>)]) {
    for (name, bytes) in got {
        let want = reference.iter().find(|(n, _)| n == name);
        let want = want.unwrap_or_else(|| panic!("{what}: {} is no output of the command", name.display()));
        assert!(&want.1 == bytes, "{what}: {} is not the complete file", name.display());
    }
}

#[test]
fn data_split_and_export_killed_anywhere_leave_whole_files_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("data");
    common::striped_tree(&data, 8);
    let split = |out: &Path| {
        let mut c = fer_train(&["data", "split", s(&data), "--out", s(out), "--method", "kfold"]);
        c.args(["--folds", "4", "--group-by", "subject", "--force"]);
        c
    };
    let reference = d.join("split-ref");
    let took = timed(|| split(&reference));
    let want = files(&reference);
    assert!(want.len() >= 9, "4 folds x 2 manifests and split.json: {want:?}");
    let mut killed = 0;
    for (i, f) in kill_points(kills()).into_iter().enumerate() {
        let out = d.join(format!("split-{i}"));
        killed += kill_after(split(&out), took.mul_f64(f)) as usize;
        complete_or_absent(&format!("data split killed at {f:.2}"), &files(&out), &want);
        ok(split(&out));
        assert!(files(&out) == want, "data split rerun after a kill at {f:.2} differs");
    }
    report_kills("data split", killed, took);

    let run = d.join("run");
    ok(fer_train(&quick_fit(&data, &run, "1")));
    let export = |out: &Path| fer_train(&["export", "--checkpoint", s(&run.join("best")), "--out", s(out)]);
    let reference = d.join("ref.onnx");
    let took = timed(|| export(&reference));
    let want = std::fs::read(&reference).unwrap();
    let mut killed = 0;
    for (i, f) in kill_points(kills()).into_iter().enumerate() {
        let out = d.join(format!("exported-{i}/model.onnx"));
        killed += kill_after(export(&out), took.mul_f64(f)) as usize;
        if let Ok(got) = std::fs::read(&out) {
            assert!(got == want, "export killed at {f:.2} left a partial model");
        }
        ok(export(&out));
        assert!(std::fs::read(&out).unwrap() == want, "export rerun after a kill at {f:.2}");
    }
    report_kills("export", killed, took);
}

fn quick_fit<'a>(data: &'a Path, out: &'a Path, epochs: &'a str) -> Vec<&'a str> {
    let mut args = vec!["fit", "--data", s(data), "--out", s(out), "--epochs", epochs];
    args.extend(["--model", "baseline", "--image-size", "16", "--batch-size", "16", "--optimizer", "sgd"]);
    args.extend(["--lr", "0.01", "--val-split", "subject", "--val-fraction", "0.25", "--no-progress"]);
    args
}

/// What a finished run must reproduce: every epoch's metrics (time columns left out) and
/// the last checkpoint's weights, bit for bit (the weights, not the record file, whose
/// bytes may differ in layout).
fn outcome(run: &Path) -> (Vec<String>, Vec<u32>) {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let metrics = csv.lines().map(|l| l.split(',').take(10).collect::<Vec<_>>().join(",")).collect();
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("last/state.json")).unwrap()).unwrap();
    let config: fer_trainer::model::ModelConfig = serde_json::from_value(state["model"].clone()).unwrap();
    let device = burn::prelude::Device::flex();
    let model = fer_trainer::train::fit::load_model(&run.join("last"), &config, &device).unwrap();
    (metrics, fer_trainer::model::flat_weights(&model).iter().map(|w| w.to_bits()).collect())
}

/// After a kill, every picture under `dir` is a whole PNG (plotters draws into memory; the
/// file is written atomically).
fn pictures_whole(dir: &Path, what: &str) {
    for e in walkdir::WalkDir::new(dir).into_iter().filter_map(Result::ok) {
        if e.path().extension().is_some_and(|x| x == "png") {
            image::open(e.path()).unwrap_or_else(|err| panic!("{what}: {}: {err}", e.path().display()));
        }
    }
}

/// After a kill, whatever checkpoint folders exist are whole: their records match their
/// checksums, and their JSON files parse.
fn checkpoints_whole(run: &Path, what: &str) {
    for folder in ["last", "best"] {
        let dir = run.join(folder);
        if !dir.exists() {
            continue;
        }
        let list = std::fs::read_to_string(dir.join("checksums.txt"))
            .unwrap_or_else(|e| panic!("{what}: {}/checksums.txt: {e}", dir.display()));
        assert!(list.contains("  model.bpk"), "{what}: {list}");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            let bytes = fer_trainer::train::checkpoint::read_file(&dir, &name)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            if name.ends_with(".json") {
                serde_json::from_slice::<serde_json::Value>(&bytes)
                    .unwrap_or_else(|e| panic!("{what}: {name}: {e}"));
            }
        }
    }
}

#[test]
fn fit_killed_anywhere_resumes_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::striped_tree(&data, 8);
    let reference = dir.path().join("ref");
    let took = timed(|| {
        let _ = std::fs::remove_dir_all(&reference);
        fer_train(&quick_fit(&data, &reference, "3"))
    });
    let want = outcome(&reference);
    let mut killed = 0;
    for (i, f) in kill_points(kills()).into_iter().enumerate() {
        let run = dir.path().join(format!("run-{i}"));
        killed += kill_after(fer_train(&quick_fit(&data, &run, "3")), took.mul_f64(f)) as usize;
        let what = format!("fit killed at {f:.2}");
        checkpoints_whole(&run, &what);
        pictures_whole(&run, &what);
        if run.join("last/state.json").exists() {
            ok(fer_train(&["fit", "--resume", s(&run), "--no-progress"]));
        } else {
            ok(fer_train(&quick_fit(&data, &run, "3")));
        }
        let (metrics, weights) = outcome(&run);
        assert_eq!(metrics, want.0, "{what}: the resumed run's metrics differ");
        assert!(weights == want.1, "{what}: the resumed run's weights differ");
    }
    report_kills("fit", killed, took);
}

#[test]
fn ship_killed_anywhere_reruns_to_the_uninterrupted_models() {
    let dir = tempfile::tempdir().unwrap();
    let (data, test) = (dir.path().join("data"), dir.path().join("test"));
    let classes = ["anger", "disgust", "fear", "happy", "sadness", "surprise"];
    common::balanced_ckplus(&data, 8, &classes, 2);
    common::balanced_ckplus(&test, 2, &classes, 1);
    let ship = |root: &Path| {
        let (out, work) = (root.join("models/tiny"), root.join("work"));
        let mut args =
            vec!["ship", "--data", s(&data), "--test", s(&test), "--out", s(&out), "--work", s(&work)];
        args.extend(["--epochs", "2", "--calib-images", "20", "--bench-reps", "10", "--no-progress"]);
        args.extend([
            "--model",
            "baseline",
            "--image-size",
            "16",
            "--batch-size",
            "16",
            "--optimizer",
            "sgd",
        ]);
        fer_train(&args)
    };
    let reference = dir.path().join("ref");
    let took = timed(|| {
        let _ = std::fs::remove_dir_all(&reference);
        ship(&reference)
    });
    // The models are deterministic; the card and its pictures carry timings.
    let models = |root: &Path| {
        let all = files(&root.join("models"));
        all.into_iter()
            .filter(|(n, _)| {
                n.to_string_lossy().contains(".onnx") || n.extension().is_some_and(|e| e == "fer")
            })
            .collect::<Vec<_>>()
    };
    let want = models(&reference);
    assert_eq!(
        want.len(),
        3,
        "tiny.onnx, tiny.qdq.onnx, tiny.fer: {:?}",
        want.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    let mut killed = 0;
    for (i, f) in kill_points(kills()).into_iter().enumerate() {
        let root = dir.path().join(format!("ship-{i}"));
        killed += kill_after(ship(&root), took.mul_f64(f)) as usize;
        let what = format!("ship killed at {f:.2}");
        complete_or_absent(&what, &models(&root), &want);
        checkpoints_whole(&root.join("work"), &what);
        pictures_whole(&root, &what);
        if let Ok(card) = std::fs::read_to_string(root.join("models/tiny.md")) {
            assert!(card.contains("## Confidence"), "{what}: the card is whole");
        }
        ok(ship(&root));
        assert!(models(&root) == want, "{what}: the rerun's models differ from the uninterrupted run's");
    }
    report_kills("ship", killed, took);
}

/// The window the kill loop found, made certain: a run killed after its last checkpoint but
/// before its metrics.csv and curves.png caught up (here: both rolled back by hand) must
/// bring them up to date when resumed, though no epoch is left to train.
#[test]
fn a_resume_with_no_epoch_left_rewrites_the_history_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::striped_tree(&data, 8);
    let run = dir.path().join("run");
    ok(fer_train(&quick_fit(&data, &run, "2")));
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "a header and two epochs: {csv}");
    let one_epoch: Vec<&str> = csv.lines().take(2).collect();
    std::fs::write(run.join("metrics.csv"), one_epoch.join("\n") + "\n").unwrap();
    std::fs::remove_file(run.join("curves.png")).unwrap();
    ok(fer_train(&["fit", "--resume", s(&run), "--no-progress"]));
    assert_eq!(std::fs::read_to_string(run.join("metrics.csv")).unwrap(), csv);
    image::open(run.join("curves.png")).expect("curves.png drawn again");
}
