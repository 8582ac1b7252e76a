//! The bad-input corpus through every `fer-train` command (docs/reliability.md): datasets
//! that are zero-byte, truncated, of the wrong type or full of NaN pixels, missing paths,
//! ONNX models to fine-tune from that are zero-byte, truncated, of the wrong type, with an
//! unsupported op or NaN weights, damaged checkpoints, and recipes that are not TOML, given
//! to `data inspect`, `data split`, `fit`, `export` and `ship`.
//!
//! Every case must end with a non-zero exit (not a panic's), one `error:` line on stderr as
//! its last line that names the file at fault, and no output left behind. The table of
//! cases is printed, and written to `$FER_BAD_INPUT_TABLE` when that is set.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fer_runtime::onnx::proto::ModelProto;
use fer_runtime::testdata::BadInputCase;
use prost::Message;

fn fer_train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fer-train")).args(args).output().expect("runs fer-train")
}

/// Runs `fer-train args`: it must fail cleanly, naming `culprit`, and leave nothing in
/// `outputs` (a file absent, a folder absent or empty).
fn expect_named_failure(
    cases: &mut Vec<BadInputCase>,
    input: &str,
    args: &[&str],
    culprit: &str,
    outputs: &[&Path],
) {
    let words = args.iter().take_while(|a| !a.starts_with('-') && !a.contains('/')).copied();
    let command = format!("fer-train {}", words.collect::<Vec<_>>().join(" "));
    cases.push(BadInputCase::check(&command, input, &fer_train(args), culprit, outputs));
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Quick training settings on the 16x16 striped tree.
const QUICK: [&str; 12] = [
    "--model",
    "baseline",
    "--image-size",
    "16",
    "--batch-size",
    "16",
    "--epochs",
    "1",
    "--val-split",
    "subject",
    "--no-progress",
    "--seed",
];

fn fit<'a>(data: &'a str, out: &'a str) -> Vec<&'a str> {
    let mut args = vec!["fit", "--data", data, "--out", out];
    args.extend(QUICK);
    args.extend(["1", "--val-fraction", "0.25"]);
    args
}

/// The bad datasets, written into `dir`: (file name, what it is).
fn bad_datasets(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let good_row = format!("3,{},Training\n", common::pixels(1));
    let cut = format!("emotion,pixels,Usage\n{}", &good_row[..good_row.len() / 2]);
    let nan_pixels = vec!["nan"; 48 * 48].join(" ");
    let files: Vec<(&str, Vec<u8>, &str)> = vec![
        ("zero.csv", Vec::new(), "a zero-byte CSV"),
        ("truncated.csv", cut.into_bytes(), "a CSV cut off mid-row"),
        ("picture.csv", common::image_bytes(8, 8, false, image::ImageFormat::Png, 1), "a PNG named .csv"),
        (
            "nan.csv",
            format!("emotion,pixels,Usage\n3,{nan_pixels},Training\n").into_bytes(),
            "a CSV of NaN pixels",
        ),
    ];
    let mut out = Vec::new();
    for (name, bytes, what) in files {
        common::write(&dir.join(name), &bytes);
        out.push((dir.join(name), what));
    }
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    out.push((dir.join("empty"), "an empty folder"));
    out.push((dir.join("missing"), "a path that does not exist"));
    out
}

/// Damaged copies of the ONNX model at `good`, written into `dir`.
fn bad_onnx(dir: &Path, good: &Path) -> Vec<(PathBuf, &'static str)> {
    let bytes = std::fs::read(good).unwrap();
    let model = ModelProto::decode(bytes.as_slice()).unwrap();
    let mut unsupported = model.clone();
    unsupported.graph.as_mut().unwrap().node[0].op_type = "LSTM".into();
    let mut nan = model;
    for t in &mut nan.graph.as_mut().unwrap().initializer {
        t.float_data.iter_mut().for_each(|v| *v = f32::NAN);
        if t.data_type == 1 && !t.raw_data.is_empty() {
            t.raw_data = t.raw_data.chunks(4).flat_map(|_| f32::NAN.to_le_bytes()).collect();
        }
    }
    let files: Vec<(&str, Vec<u8>, &str)> = vec![
        ("zero.onnx", Vec::new(), "a zero-byte ONNX"),
        ("truncated.onnx", bytes[..bytes.len() / 2].to_vec(), "a truncated ONNX"),
        ("picture.onnx", common::image_bytes(8, 8, false, image::ImageFormat::Png, 1), "a PNG named .onnx"),
        ("unsupported-op.onnx", unsupported.encode_to_vec(), "an ONNX with an unsupported op"),
        ("nan.onnx", nan.encode_to_vec(), "an ONNX with NaN weights"),
    ];
    files
        .into_iter()
        .map(|(name, bytes, what)| {
            common::write(&dir.join(name), &bytes);
            (dir.join(name), what)
        })
        .collect()
}

/// Damaged copies of the checkpoint folder `good`: (folder, the file damaged, what).
fn bad_checkpoints(dir: &Path, good: &Path) -> Vec<(PathBuf, String, &'static str)> {
    let copy = |name: &str| {
        let to = dir.join(name);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(good).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
        to
    };
    let mut out = Vec::new();
    let c = copy("truncated-model");
    let m = std::fs::read(c.join("model.bpk")).unwrap();
    std::fs::write(c.join("model.bpk"), &m[..m.len() / 2]).unwrap();
    out.push((c, "model.bpk".to_string(), "a truncated model.bpk"));
    let c = copy("zero-card");
    std::fs::write(c.join("model.json"), b"").unwrap();
    out.push((c, "model.json".to_string(), "a zero-byte model.json"));
    let c = copy("flipped-model");
    let mut m = std::fs::read(c.join("model.bpk")).unwrap();
    let middle = m.len() / 2;
    m[middle] ^= 0x40;
    std::fs::write(c.join("model.bpk"), &m).unwrap();
    out.push((c, "model.bpk".to_string(), "a model.bpk with a flipped bit"));
    let c = copy("no-model");
    std::fs::remove_file(c.join("model.bpk")).unwrap();
    out.push((c, "model.bpk".to_string(), "a checkpoint without model.bpk"));
    out.push((dir.join("missing-run"), "missing-run".to_string(), "a folder that does not exist"));
    out
}

#[test]
fn every_bad_input_is_named_with_a_clean_exit_and_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut rows = Vec::new();

    for (data, what) in bad_datasets(&d.join("datasets")) {
        let name = data.file_name().unwrap().to_str().unwrap().to_string();
        expect_named_failure(&mut rows, what, &["data", "inspect", s(&data)], &name, &[]);
        let split = d.join(format!("split-{name}"));
        expect_named_failure(
            &mut rows,
            what,
            &["data", "split", s(&data), "--out", s(&split)],
            &name,
            &[&split],
        );
        let run = d.join(format!("run-{name}"));
        expect_named_failure(&mut rows, what, &fit(s(&data), s(&run)), &name, &[&run]);
        let model = d.join(format!("models-{name}/edge"));
        let work = d.join(format!("work-{name}"));
        let mut ship =
            vec!["ship", "--data", s(&data), "--test", s(&data), "--out", s(&model), "--work", s(&work)];
        ship.extend(&QUICK[..8]);
        ship.push("--no-progress");
        expect_named_failure(&mut rows, what, &ship, &name, &[model.parent().unwrap(), &work]);
    }

    // A good run and its model, to damage.
    let data = d.join("striped");
    common::striped_tree(&data, 8);
    let good_run = d.join("good-run");
    let ok = fer_train(&fit(s(&data), s(&good_run)));
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let good_onnx = d.join("good.onnx");
    let ok = fer_train(&["export", "--checkpoint", s(&good_run.join("best")), "--out", s(&good_onnx)]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));

    for (onnx, what) in bad_onnx(&d.join("onnx"), &good_onnx) {
        let name = onnx.file_name().unwrap().to_str().unwrap().to_string();
        let run = d.join(format!("ft-{name}"));
        let mut args = vec!["fit", "--data", s(&data), "--out", s(&run), "--init", s(&onnx)];
        args.extend(&QUICK[4..]);
        args.extend(["1", "--val-fraction", "0.25"]);
        expect_named_failure(&mut rows, what, &args, &name, &[&run]);
    }

    for (checkpoint, culprit, what) in bad_checkpoints(&d.join("checkpoints"), &good_run.join("best")) {
        let out = d.join("exported.onnx");
        let args = ["export", "--checkpoint", s(&checkpoint), "--out", s(&out)];
        expect_named_failure(&mut rows, what, &args, &culprit, &[&out]);
        if what.contains("flipped") || what.contains("truncated") {
            let last = &rows.last().unwrap().message;
            assert!(last.contains("checksum mismatch"), "the checksum caught {what}: {last}");
        }
    }

    let recipes: [(&str, &[u8], &str); 3] = [
        ("zero.toml", b"", "a zero-byte recipe"),
        ("broken.toml", b"model = \"edge\"\nepochs = [\n", "a recipe that is not TOML"),
        ("unknown.toml", b"model = \"edge\"\nepoch = 3\n", "a recipe with an unknown key"),
    ];
    for (name, bytes, what) in recipes {
        let recipe = d.join("recipes").join(name);
        common::write(&recipe, bytes);
        let model = d.join(format!("models-{name}/edge"));
        let work = d.join(format!("work-{name}"));
        let args = ["ship", "--config", s(&recipe), "--out", s(&model), "--work", s(&work), "--no-progress"];
        expect_named_failure(&mut rows, what, &args, name, &[model.parent().unwrap(), &work]);
    }

    BadInputCase::report(&rows, d);
}
