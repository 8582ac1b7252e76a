//! `fer-train data ...` as a user runs it: exit codes, JSON keys, files written.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use image::ImageFormat;
use serde_json::Value;

fn fer_train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fer-train")).args(args).output().expect("runs fer-train")
}

fn json_of(out: &Output) -> Value {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// 12 subjects x 7 classes (CK+ names), 2 images each, plus a corrupt file.
fn tree(root: &Path) {
    let classes = ["anger", "disgust", "fear", "happy", "sadness", "surprise", "contempt"];
    balanced_ckplus(root, 12, &classes, 2);
    write(&root.join("happy/S099_001_00000001.png"), b"\x89PNG\r\n\x1a\n truncated");
}

#[test]
fn inspect_json_has_the_contract_keys() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let v = json_of(&fer_train(&["data", "inspect", s(dir.path()), "--json"]));
    assert_eq!(v["images"], 12 * 7 * 2);
    assert_eq!(v["classes"]["angry"], 24);
    assert_eq!(v["classes"]["contempt"], 24);
    assert_eq!(v["classes"]["neutral"], 0);
    assert_eq!(v["left_out"]["contempt"], 24);
    assert_eq!(v["subjects"], 12);
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0]["path"].as_str().unwrap().ends_with("S099_001_00000001.png"));
    assert!(skipped[0]["reason"].as_str().unwrap().contains("corrupt"));
    let keys: Vec<&str> = v["classes"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt"]);
}

#[test]
fn inspect_text_and_subjects_null_without_pattern_match() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("happy/a.jpg"), &image_bytes(48, 48, false, ImageFormat::Jpeg, 1));
    let out = fer_train(&["data", "inspect", s(dir.path())]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1 images") && text.contains("happy") && text.contains("subjects: none found"),
        "{text}"
    );
    let v = json_of(&fer_train(&["data", "inspect", s(dir.path()), "--json"]));
    assert_eq!(v["subjects"], Value::Null);
}

#[test]
fn strict_fails_naming_the_file_and_nothing_is_modified() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let before = snapshot(dir.path());
    let out = fer_train(&["data", "inspect", s(dir.path()), "--strict"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--strict") && err.contains("S099_001_00000001.png"), "{err}");
    let _ = fer_train(&["data", "inspect", s(dir.path()), "--json"]);
    assert_eq!(snapshot(dir.path()), before, "the dataset is untouched");
}

#[test]
fn bad_csv_row_is_reported_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = fer_csv(dir.path(), &[("0", "Training"), ("x", "Training"), ("6", "PublicTest")]);
    let v = json_of(&fer_train(&["data", "inspect", s(&p), "--json"]));
    assert_eq!(v["images"], 2);
    assert_eq!(v["format"], "fer2013-csv");
    assert_eq!(v["usage"]["Training"], 1);
    let path = v["skipped"][0]["path"].as_str().unwrap();
    assert!(path.ends_with("fer2013.csv:3"), "{path}");
    let out = fer_train(&["data", "inspect", s(&p), "--strict"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("fer2013.csv:3"));
}

#[test]
fn usage_errors_exit_non_zero_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let out = fer_train(&["data", "inspect", s(&missing)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));
    tree(dir.path());
    let out = fer_train(&["data", "inspect", s(dir.path()), "--subject-regex", "S(\\d+"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid --subject-regex"));
    let o = dir.path().join("o");
    for bad in [
        vec!["--method", "keras", "--group-by", "subject"],
        vec!["--method", "kfold"],
        vec!["--method", "holdout", "--folds", "3"],
        vec!["--val-fraction", "1.5"],
    ] {
        let mut args = vec!["data", "split", s(dir.path()), "--out", s(&o)];
        args.extend(bad.iter());
        let out = fer_train(&args);
        assert!(!out.status.success(), "{bad:?} should fail");
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "), "{bad:?}");
    }
}

#[test]
fn subject_kfold_writes_leak_free_manifests_that_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tree(&data);
    let before = snapshot(&data);
    let out = dir.path().join("split");
    let args = [
        "data",
        "split",
        s(&data),
        "--folds",
        "4",
        "--group-by",
        "subject",
        "--out",
        s(&out),
        "--json",
        "--balance",
        "class",
    ];
    let v = json_of(&fer_train(&args));
    assert_eq!(v["method"], "group-kfold");
    assert_eq!(v["subject_independent"], true);
    assert_eq!(v["images"], 12 * 6 * 2, "contempt left out by default");
    assert_eq!(v["left_out"]["contempt"], 24);
    assert_eq!(v["folds"].as_array().unwrap().len(), 4);
    assert_eq!(v["balance"].as_array().unwrap().len(), 4);
    for f in v["folds"].as_array().unwrap() {
        assert_eq!(f["shared_subject_count"], 0);
        assert_eq!(f["train"]["subjects"].as_u64().unwrap() + f["val"]["subjects"].as_u64().unwrap(), 12);
    }
    assert_eq!(snapshot(&data), before, "the dataset is untouched");
    assert!(out.join("split.json").is_file());

    // Each fold's manifests are datasets too, and train + val cover the dataset.
    let mut val_subjects = std::collections::BTreeSet::new();
    for k in 1..=4 {
        let fold = out.join(format!("fold-{k:02}"));
        let tr = json_of(&fer_train(&["data", "inspect", s(&fold.join("train.csv")), "--json"]));
        let va = json_of(&fer_train(&["data", "inspect", s(&fold.join("val.csv")), "--json"]));
        assert_eq!(tr["images"].as_u64().unwrap() + va["images"].as_u64().unwrap(), 144);
        assert_eq!(tr["skipped"].as_array().unwrap().len(), 0);
        let text = std::fs::read_to_string(fold.join("val.csv")).unwrap();
        assert!(text.starts_with("path,label,subject\n"), "{}", &text[..40]);
        for line in text.lines().skip(1) {
            val_subjects.insert(line.split(',').nth(2).unwrap().to_string());
        }
        let train = std::fs::read_to_string(fold.join("train.csv")).unwrap();
        assert!(train.starts_with("path,label,subject,weight\n"));
    }
    assert_eq!(val_subjects.len(), 12, "every subject validated once");

    // Existing manifests are kept unless --force.
    let again = fer_train(&args);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let mut forced = args.to_vec();
    forced.push("--force");
    json_of(&fer_train(&forced));
}

#[test]
fn keras_split_of_a_class_sorted_tree_warns() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tree(&data);
    let out = dir.path().join("k");
    let v =
        json_of(&fer_train(&["data", "split", s(&data), "--method", "keras", "--out", s(&out), "--json"]));
    assert_eq!(v["method"], "keras");
    assert_eq!(v["folds"][0]["val"]["images"], 29); // 144 - floor(144 * 0.8)
    let warnings: Vec<&str> = v["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert!(warnings.iter().any(|w| w.contains("class angry has no validation images")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("subjects on both sides")));
}

#[test]
fn csv_rows_split_into_manifests_that_point_at_rows() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<(&str, &str)> = (0..40)
        .map(|i| (["0", "3", "6"][i % 3], ["Training", "PublicTest"][usize::from(i % 5 == 0)]))
        .collect();
    let p = fer_csv(dir.path(), &rows);
    let out = dir.path().join("u");
    let v = json_of(&fer_train(&["data", "split", s(&p), "--method", "usage", "--out", s(&out), "--json"]));
    assert_eq!(v["folds"][0]["train"]["images"], 32);
    assert_eq!(v["folds"][0]["val"]["images"], 8);
    let text = std::fs::read_to_string(out.join("val.csv")).unwrap();
    assert!(text.lines().nth(1).unwrap().contains("fer2013.csv#L2,"), "{text}");
    let back = json_of(&fer_train(&["data", "inspect", s(&out.join("val.csv")), "--json"]));
    assert_eq!(back["images"], 8);
    assert_eq!(back["usage"]["PublicTest"], 8);
}
