//! `fer-train fit` and `cv` on small generated data: artifacts, determinism, resume after a
//! crash mid-epoch, divergence, cross-validation, config files.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use common::striped_tree;

fn fer_train(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fer-train"));
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("runs fer-train")
}

fn ok(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "failed: {err}");
    err
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Quick training settings: 16x16 input, the baseline net (small at that size), SGD.
const QUICK: [&str; 10] =
    ["--model", "baseline", "--image-size", "16", "--batch-size", "16", "--optimizer", "sgd", "--lr", "0.01"];

fn fit_args<'a>(data: &'a str, out: &'a str, epochs: &'a str) -> Vec<&'a str> {
    let mut args = vec!["fit", "--data", data, "--out", out, "--epochs", epochs];
    args.extend(QUICK);
    args.extend([
        "--val-split",
        "subject",
        "--val-fraction",
        "0.25",
        "--augment",
        "standard",
        "--no-progress",
    ]);
    args
}

fn report(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

#[test]
fn two_epochs_write_every_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    striped_tree(&data, 8);
    let out = dir.path().join("run");
    let log = ok(&fer_train(&fit_args(s(&data), s(&out), "2"), &[]));
    assert!(log.contains("epoch   2/2"), "{log}");

    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "header + one row per epoch: {csv}");
    assert!(lines[0].starts_with("epoch,lr,train_loss,train_acc,val_loss,val_acc,val_balanced_acc"));
    for png in ["curves.png", "confusion.png"] {
        let img = image::open(out.join(png)).unwrap_or_else(|e| panic!("{png}: {e}"));
        assert!(img.width() > 400 && img.height() > 400);
    }
    for f in [
        "best/model.bpk",
        "best/model.json",
        "last/model.bpk",
        "last/optimizer.bpk",
        "last/state.json",
        "split.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let r = report(&out);
    assert_eq!(r["status"], "completed");
    assert_eq!(r["epochs_run"], 2);
    assert_eq!(r["val_images"].as_u64().unwrap() + r["train_images"].as_u64().unwrap(), 8 * 4 * 3);
    for key in ["accuracy", "balanced_accuracy", "macro_f1", "per_class_recall", "loss"] {
        assert!(!r["val"][key].is_null(), "val.{key}");
    }
    assert_eq!(r["confusion"]["counts"].as_array().unwrap().len(), 7);
    assert!(r["diagnoses"]["notes"].is_array());
    let card: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("best/model.json")).unwrap()).unwrap();
    assert_eq!(card["labels"][0], "angry");
    assert_eq!(card["input"]["width"], 16);

    // The best checkpoint exports to ONNX with its labels and preprocessing inside.
    let onnx = dir.path().join("m.onnx");
    let o = fer_train(&["export", "--checkpoint", s(&out.join("best")), "--out", s(&onnx), "--json"], &[]);
    ok(&o);
    let e: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((e["input"].as_str(), e["output"].as_str()), (Some("input"), Some("logits")));
    assert_eq!(e["input_shape"], serde_json::json!(["batch", "1", "16", "16"]));
    assert!(std::fs::metadata(&onnx).unwrap().len() > 100_000);
    let o = fer_train(
        &["export", "--checkpoint", s(&out.join("last")), "--out", s(&dir.path().join("l.onnx"))],
        &[],
    );
    ok(&o);
    let bad = fer_train(&["export", "--checkpoint", s(&data), "--out", s(&dir.path().join("x.onnx"))], &[]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("best/ or last/"));

    // The same --out again is refused: nothing of the first run is overwritten.
    let again = fer_train(&fit_args(s(&data), s(&out), "2"), &[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));
}

#[test]
fn same_seed_same_run_and_resume_after_a_crash_mid_epoch_matches() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    striped_tree(&data, 8);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(&fer_train(&fit_args(s(&data), s(&a), "3"), &[]));

    // 72 training images / 16 = 5 batches per epoch: abort (like kill -9, no cleanup) in
    // the middle of epoch 2, then resume.
    let crashed = fer_train(&fit_args(s(&data), s(&b), "3"), &[("FER_TRAIN_ABORT_AFTER_BATCHES", "7")]);
    assert!(!crashed.status.success(), "the abort hook must kill the run");
    assert!(!b.join("report.json").exists());
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("last/state.json")).unwrap()).unwrap();
    assert_eq!(state["epochs_done"], 1, "the last checkpoint is epoch 1's");
    let log = ok(&fer_train(&["fit", "--resume", s(&b), "--no-progress"], &[]));
    assert!(log.contains("resuming"), "{log}");

    let (ra, rb) = (report(&a), report(&b));
    for key in ["val", "confusion", "epochs_run", "best_epoch"] {
        assert_eq!(ra[key], rb[key], "{key} differs after resume");
    }
    let csv = |d: &Path| {
        std::fs::read_to_string(d.join("metrics.csv"))
            .unwrap()
            .lines()
            .map(|l| l.split(',').take(10).collect::<Vec<_>>().join(","))
            .collect::<Vec<_>>()
    };
    assert_eq!(csv(&a), csv(&b), "every epoch's metrics match");
    let weights = |d: &Path| {
        let state: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("last/state.json")).unwrap()).unwrap();
        let config: fer_trainer::model::ModelConfig = serde_json::from_value(state["model"].clone()).unwrap();
        let model =
            fer_trainer::train::fit::load_model(&d.join("last"), &config, &burn::prelude::Device::flex())
                .unwrap();
        fer_trainer::model::flat_weights(&model)
    };
    let (wa, wb) = (weights(&a), weights(&b));
    // Baseline at 16x16: conv 320, BN 128, PReLU 8,192, dense 524,544, BN 1,024, PReLU 256, dense 1,799.
    assert_eq!((wa.len(), wb.len()), (536_263, 536_263));
    assert!(wa.iter().zip(&wb).all(|(x, y)| x.to_bits() == y.to_bits()), "final weights are bit-identical");
}

#[test]
fn a_diverging_run_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    striped_tree(&data, 6);
    let out = dir.path().join("run");
    // Epoch 1 finishes, then the run is killed in epoch 2.
    let crashed = fer_train(&fit_args(s(&data), s(&out), "3"), &[("FER_TRAIN_ABORT_AFTER_BATCHES", "5")]);
    assert!(!crashed.status.success());
    let state_path = out.join("last/state.json");
    let good = std::fs::read(out.join("last/model.bpk")).unwrap();
    // Someone raises the learning rate to something absurd before resuming.
    let mut state: Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    state["config"]["lr"] = 1e30.into();
    state["schedule"]["base_lr"] = 1e30.into();
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();

    let out2 = fer_train(&["fit", "--resume", s(&out), "--no-progress"], &[]);
    assert!(!out2.status.success());
    let err = String::from_utf8_lossy(&out2.stderr);
    assert!(err.contains("the loss became") && err.contains("epoch 2"), "{err}");
    assert!(err.contains("last good checkpoint") && err.contains("(epoch 1)"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        std::fs::read(out.join("last/model.bpk")).unwrap(),
        good,
        "the last good checkpoint is untouched"
    );
    assert_eq!(report(&out)["status"], "diverged");
}

#[test]
fn subject_grouped_cv_reports_mean_and_std() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    striped_tree(&data, 6);
    let out = dir.path().join("cv");
    let mut args = vec!["cv", "--data", s(&data), "--folds", "3", "--group-by", "subject", "--out", s(&out)];
    args.extend(QUICK);
    args.extend(["--epochs", "2", "--no-restore-best", "--no-progress", "--json"]);
    let o = fer_train(&args, &[]);
    ok(&o);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let folds = v["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 3);
    let mean: f64 = folds.iter().map(|f| f["accuracy"].as_f64().unwrap()).sum::<f64>() / 3.0;
    assert!((v["mean"]["accuracy"].as_f64().unwrap() - mean).abs() < 1e-9);
    assert!(v["std"]["accuracy"].as_f64().unwrap() >= 0.0);
    assert_eq!(v["split"]["subject_independent"], true);
    assert!(v["selection"].as_str().unwrap().starts_with("last epoch"));
    assert!(out.join("cv.json").is_file() && out.join("fold-03/report.json").is_file());
    // Every subject's 12 images are scored once, in its one validation fold; the folds'
    // correct predictions, summed per subject, are the folds' accuracies.
    let subjects = &v["subjects"];
    let per_subject = subjects["per_subject"].as_array().unwrap();
    assert_eq!(subjects["subjects"], 6);
    assert!(per_subject.iter().all(|p| p["images"] == 12), "{per_subject:?}");
    let correct: f64 = per_subject.iter().map(|p| p["accuracy"].as_f64().unwrap() * 12.0).sum();
    let fold_correct: f64 =
        folds.iter().map(|f| f["accuracy"].as_f64().unwrap() * f["val_images"].as_f64().unwrap()).sum();
    assert!((correct - fold_correct).abs() < 1e-6, "{correct} vs {fold_correct}");
    let acc: Vec<f64> = per_subject.iter().map(|p| p["accuracy"].as_f64().unwrap()).collect();
    assert!(acc.windows(2).all(|w| w[0] <= w[1]), "worst first: {acc:?}");
    assert_eq!((subjects["min"].as_f64(), subjects["max"].as_f64()), (Some(acc[0]), Some(acc[5])));
    // Resuming a finished cross-validation keeps every fold, and their subjects.
    let mut again = args.to_vec();
    again.push("--resume");
    let log = ok(&fer_train(&again, &[]));
    assert_eq!(log.matches("already finished").count(), 3, "{log}");
    let resumed: Value = serde_json::from_slice(&std::fs::read(out.join("cv.json")).unwrap()).unwrap();
    assert_eq!(resumed["subjects"], v["subjects"]);
}

#[test]
fn toml_config_with_flag_overrides_and_bad_settings() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    striped_tree(&data, 6);
    let cfg = dir.path().join("exp.toml");
    let text = format!(
        "data = {:?}\nmodel = \"baseline\"\nepochs = 5\nimage_size = 16\nbatch_size = 16\nlabel_smoothing = 0.1\n\
         early_stopping = 1\nmonitor = \"val_loss\"\nval_split = \"subject\"\nval_fraction = 0.25\n\
         [schedule]\nkind = \"plateau\"\nfactor = 0.5\npatience = 1\ncooldown = 0\nmin_lr = 1e-5\n",
        s(&data)
    );
    std::fs::write(&cfg, text).unwrap();
    let out = dir.path().join("run");
    ok(&fer_train(&["fit", "--config", s(&cfg), "--epochs", "2", "--out", s(&out), "--no-progress"], &[]));
    let r = report(&out);
    assert_eq!(r["config"]["epochs"], 2, "the flag overrides the file");
    assert!((r["config"]["label_smoothing"].as_f64().unwrap() - 0.1).abs() < 1e-6);
    assert_eq!(r["config"]["schedule"]["kind"], "plateau");

    std::fs::write(&cfg, "epoch = 3\n").unwrap();
    let bad = fer_train(&["fit", "--config", s(&cfg), "--out", s(&dir.path().join("x"))], &[]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown field `epoch`"));
    let bad = fer_train(
        &["fit", "--data", s(&data), "--out", s(&dir.path().join("y")), "--label-smoothing", "1.5"],
        &[],
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--label-smoothing"));
    let bad = fer_train(
        &["fit", "--data", s(&data), "--out", s(&dir.path().join("z")), "--devices", "cuda:0"],
        &[],
    );
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("without the `cuda` backend") || err.contains("cuda"), "{err}");
}

#[test]
fn data_parallel_over_two_devices_and_streaming_without_a_cache() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    striped_tree(&data, 6);
    let out = dir.path().join("dp");
    let mut args = fit_args(s(&data), s(&out), "1");
    // Two CPU devices exercise the multi-device path (shards, summed gradients) that
    // `--devices cuda:0,cuda:1` takes on a GPU host.
    args.extend(["--devices", "flex,flex", "--cache-mb", "0"]);
    ok(&fer_train(&args, &[]));
    let r = report(&out);
    assert_eq!(r["config"]["devices"], serde_json::json!(["flex", "flex"]));
    assert_eq!(r["config"]["cache_mb"], 0);
    assert_eq!(r["epochs_run"], 1);
}

#[test]
fn bench_reports_speed_per_model() {
    let o = fer_train(
        &[
            "bench",
            "--models",
            "baseline,edge",
            "--batch-size",
            "4",
            "--warmup",
            "0",
            "--reps",
            "1",
            "--json",
        ],
        &[],
    );
    ok(&o);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        assert!(r["train_images_per_second"].as_f64().unwrap() > 0.0);
        assert!(r["infer_images_per_second"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(results[1]["model"], "edge");
    let missing =
        fer_train(&["bench", "--models", "edge", "--reps", "1", "--keras", "/nonexistent/peer.py"], &[]);
    assert!(!missing.status.success());
}

#[test]
fn early_stopping_fires_in_a_run_and_a_resume_does_not_train_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    striped_tree(&data, 6);
    // A crafted monitor: with min_delta 100 nothing after epoch 1 counts as an improvement,
    // so patience 2 stops the run after epoch 3.
    let cfg = dir.path().join("stop.toml");
    std::fs::write(&cfg, "min_delta = 100.0\nearly_stopping = 2\nmonitor = \"val_loss\"\n").unwrap();
    let out = dir.path().join("run");
    let mut args = fit_args(s(&data), s(&out), "8");
    args.extend(["--config", s(&cfg)]);
    let log = ok(&fer_train(&args, &[]));
    assert!(log.contains("early stopping: val_loss did not improve for 2 epoch(s) after epoch 1"), "{log}");
    let r = report(&out);
    assert_eq!(
        (r["status"].as_str(), r["epochs_run"].as_u64(), r["best_epoch"].as_u64()),
        (Some("early-stopped"), Some(3), Some(1))
    );
    let log = ok(&fer_train(&["fit", "--resume", s(&out), "--no-progress"], &[]));
    assert!(!log.contains("epoch   4/8"), "resumed past the stop: {log}");
    assert_eq!(report(&out)["epochs_run"], 3);
    assert_eq!(report(&out)["status"], "early-stopped");
}

#[test]
fn fine_tune_from_an_exported_model_resumes_without_the_onnx_file_and_exports_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    striped_tree(&data, 8);
    let (pre, ft) = (dir.path().join("pre"), dir.path().join("ft"));
    ok(&fer_train(&fit_args(s(&data), s(&pre), "1"), &[]));
    let onnx = dir.path().join("pre.onnx");
    ok(&fer_train(&["export", "--checkpoint", s(&pre.join("best")), "--out", s(&onnx)], &[]));

    let layers = fer_train(&["layers", s(&onnx), "--json"], &[]);
    ok(&layers);
    let listed: Value = serde_json::from_slice(&layers.stdout).unwrap();
    assert_eq!(listed["input"], serde_json::json!([1, 16, 16]));
    assert_eq!(listed["fine_tunable"], true);

    // Fine-tune (input size taken from the file), killed mid-epoch 2, then resumed after the
    // ONNX file is gone: the checkpoint holds the layer list.
    let mut args = vec!["fit", "--data", s(&data), "--out", s(&ft), "--epochs", "2", "--init", s(&onnx)];
    args.extend(["--head", "keep", "--freeze-until", "2", "--batch-size", "16", "--val-split", "subject"]);
    args.extend(["--val-fraction", "0.25", "--no-progress"]);
    let crashed = fer_train(&args, &[("FER_TRAIN_ABORT_AFTER_BATCHES", "7")]);
    assert!(!crashed.status.success());
    let log = String::from_utf8_lossy(&crashed.stderr);
    assert!(log.contains("replaced the classifier") && log.contains("frozen"), "{log}");
    std::fs::remove_file(&onnx).unwrap();
    ok(&fer_train(&["fit", "--resume", s(&ft), "--no-progress"], &[]));
    let r = report(&ft);
    assert_eq!(r["model"]["kind"], "imported");
    assert_eq!(r["epochs_run"], 2);

    let again = dir.path().join("ft.onnx");
    ok(&fer_train(&["export", "--checkpoint", s(&ft.join("best")), "--out", s(&again)], &[]));
    ok(&fer_train(&["layers", s(&again)], &[]));
}

/// `fit --teacher`: an exported model teaches a student; its logits are computed once and
/// cached by teacher and dataset; a changed dataset or a damaged cache is recomputed; a
/// model that cannot teach the run is refused by name.
#[test]
fn distillation_caches_the_teacher_s_logits_and_refuses_teachers_that_do_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    striped_tree(&data, 8);
    let (teacher_run, cache) = (dir.path().join("teacher"), dir.path().join("cache"));
    ok(&fer_train(&fit_args(s(&data), s(&teacher_run), "2"), &[]));
    let teacher = dir.path().join("teacher.onnx");
    ok(&fer_train(&["export", "--checkpoint", s(&teacher_run.join("best")), "--out", s(&teacher)], &[]));

    let student = |out: &Path, extra: &[&str]| {
        let mut args = fit_args(s(&data), s(out), "1");
        args.extend(["--teacher", s(&teacher), "--teacher-cache", s(&cache), "--kd-temperature", "3"]);
        args.extend(extra);
        fer_train(&args, &[])
    };
    let log = ok(&student(&dir.path().join("s1"), &[]));
    assert!(log.contains("cached in"), "the first run computes the logits: {log}");
    assert!(log.contains("teacher ") && log.contains("validation"), "{log}");
    let r = report(&dir.path().join("s1"));
    let t = &r["teachers"][0];
    assert!(t["val_accuracy"].as_f64().unwrap() > 0.0, "{r}");
    assert_eq!(r["config"]["distill"]["temperature"], 3.0);
    let cached: Vec<_> = std::fs::read_dir(&cache).unwrap().collect();
    assert_eq!(cached.len(), 1);

    let log = ok(&student(&dir.path().join("s2"), &[]));
    assert!(!log.contains("cached in"), "the second run reads the cache: {log}");
    let log = ok(&student(&dir.path().join("s3"), &["--max-images", "80"]));
    assert!(log.contains("cached in"), "another dataset gets its own logits: {log}");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2);
    for entry in std::fs::read_dir(&cache).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    }
    let log = ok(&student(&dir.path().join("s4"), &[]));
    assert!(log.contains("cached in"), "a damaged cache is recomputed: {log}");

    // Misfits: another input size, another number of classes, an int8 file.
    let refused = |out: &str, size: &str, teacher: &Path, what: &str| {
        let mut args = fit_args(s(&data), out, "1");
        let at = args.iter().position(|a| *a == "--image-size").unwrap();
        args[at + 1] = size;
        args.extend(["--teacher", s(teacher), "--teacher-cache", s(&cache)]);
        let run = fer_train(&args, &[]);
        let err = String::from_utf8_lossy(&run.stderr).to_string();
        assert!(!run.status.success(), "{what}: {err}");
        assert!(err.contains(s(teacher)) && err.contains(what), "{what}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    };
    let bigger = dir.path().join("s5");
    refused(s(&bigger), "32", &teacher, "this run feeds [1, 32, 32]");
    let (eight, eight_onnx) = (dir.path().join("eight"), dir.path().join("eight.onnx"));
    let mut args = fit_args(s(&data), s(&eight), "1");
    args.push("--keep-contempt");
    ok(&fer_train(&args, &[]));
    ok(&fer_train(&["export", "--checkpoint", s(&eight.join("best")), "--out", s(&eight_onnx)], &[]));
    refused(s(&dir.path().join("s6")), "16", &eight_onnx, "gives 8 outputs");
    let int8 = dir.path().join("teacher.fer");
    std::fs::write(&int8, b"not a model").unwrap();
    refused(s(&dir.path().join("s7")), "16", &int8, "an int8 .fer file cannot teach");
}

/// `fer-train ship`: one command from data to the model files and a card whose figures are
/// the run's; run again, it reuses the finished fit and writes the same int8 model; other
/// settings for the same work folder are refused.
#[test]
fn ship_writes_models_and_a_card_from_one_run_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (data, test) = (dir.path().join("data"), dir.path().join("test"));
    let classes = ["anger", "disgust", "fear", "happy", "sadness", "surprise"];
    common::balanced_ckplus(&data, 8, &classes, 2);
    common::balanced_ckplus(&test, 2, &classes, 1);
    let (out, work) = (dir.path().join("models/tiny"), dir.path().join("work"));
    let mut args = vec![
        "ship",
        "--data",
        s(&data),
        "--test",
        s(&test),
        "--out",
        s(&out),
        "--work",
        s(&work),
        "--epochs",
        "2",
        "--calib-images",
        "20",
        "--bench-reps",
        "10",
        "--no-progress",
        "--json",
    ];
    args.extend(QUICK);
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_fer-train")).args(args).output().unwrap();
    let first = run(&args);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let models = dir.path().join("models");
    for f in [
        "tiny.onnx",
        "tiny.fer",
        "tiny.qdq.onnx",
        "tiny.md",
        "tiny-curves.png",
        "tiny-confusion-int8.png",
        "tiny-reliability.png",
    ] {
        assert!(models.join(f).is_file(), "{f} missing");
    }
    let int8 = &report["scores"][1];
    assert_eq!(int8["name"], "int8");
    assert_eq!(int8["images"], 12);
    let card = std::fs::read_to_string(models.join("tiny.md")).unwrap();
    let pct = |v: &serde_json::Value| format!("{:.2}%", 100.0 * v.as_f64().unwrap());
    assert!(
        card.contains(&format!(
            "| int8 | {} | {} |",
            pct(&int8["accuracy"]),
            pct(&int8["balanced_accuracy"])
        )),
        "{card}"
    );
    assert!(card.contains("fer-train ship --data"), "the card names its command");
    assert!(report["latency"]["engine_us"].as_f64().unwrap() > 0.0);
    // Temperature scaling: fitted on validation, never worse there in NLL (it minimises
    // it, and T = 1 is a candidate), baked into the model and named in its metadata.
    let cal = &report["calibration"];
    let t = cal["temperature"].as_f64().unwrap();
    assert!(t > 0.0 && t.is_finite(), "{cal}");
    let nll = |k: &str| cal[k]["nll"].as_f64().unwrap();
    assert!(nll("val_after") <= nll("val_before") + 1e-9, "{cal}");
    assert!(card.contains("## Confidence") && card.contains(&format!("T = {t:.3}")), "{card}");
    assert!(card.contains("tiny-reliability.png") && card.contains("--unsure-below"), "{card}");
    let onnx = std::fs::read(models.join("tiny.onnx")).unwrap();
    let graph = fer_runtime::onnx::read_onnx(&onnx).unwrap();
    assert_eq!(graph.metadata("fer.temperature"), Some(format!("{t:.4}").as_str()));

    let fer = std::fs::read(models.join("tiny.fer")).unwrap();
    // The finished fit scored again, now also on another dataset (contempt included, which
    // the model lacks): the fit is reused, the int8 model is the same.
    let cross = dir.path().join("cross");
    common::balanced_ckplus(&cross, 2, &["anger", "happy", "contempt"], 2);
    let mut with_cross = args.clone();
    with_cross.extend(["--cross-test", s(&cross)]);
    let second = run(&with_cross);
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert!(String::from_utf8_lossy(&second.stderr).contains("continuing the fit"));
    assert_eq!(
        std::fs::read(models.join("tiny.fer")).unwrap(),
        fer,
        "the same run gives the same int8 model"
    );
    let report: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    let cross_int8 = &report["cross_test"]["scores"][1];
    assert_eq!((cross_int8["name"].as_str(), cross_int8["images"].as_u64()), (Some("int8"), Some(8)));
    let card = std::fs::read_to_string(models.join("tiny.md")).unwrap();
    assert!(card.contains("## Another dataset") && card.contains(&pct(&cross_int8["accuracy"])), "{card}");

    let mut other = args.clone();
    let epochs_at = other.iter().position(|a| *a == "--epochs").unwrap() + 1;
    other[epochs_at] = "3";
    let refused = run(&other);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("other settings"));
}
