//! `fer predict`, `fer eval` and `fer live` end to end: the shipped BlazeFace detector on the
//! photos, and the bad inputs users hit. The classifier is the small test model the
//! firmware also runs (`firmware/vectors/tiny.fer`): these tests check the pipeline, not
//! the expression model's accuracy.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

use fer_runtime::testdata::shared_data;

fn fer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fer")).args(args).current_dir(root()).output().expect("run fer")
}

fn tiny() -> String {
    root().join("firmware/vectors/tiny.fer").display().to_string()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "fer failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn predict_finds_the_real_faces_in_the_photos_and_draws_them() {
    let Some(data) = shared_data() else { return };
    let photos = data.join("photos");
    let annotated = tempfile::tempdir().unwrap();
    let out = fer(&[
        "predict",
        photos.to_str().unwrap(),
        "--model",
        &tiny(),
        "--json",
        "--annotate",
        annotated.path().to_str().unwrap(),
    ]);
    let doc = json(&out);
    let images = doc.as_array().expect("one entry per image");
    assert_eq!(images.len(), 9);
    let mut real_faces = 0;
    for img in images {
        let path = img["path"].as_str().unwrap();
        let stem = Path::new(path).file_stem().unwrap().to_str().unwrap().to_string();
        let faces = img["faces"].as_array().unwrap();
        let (w, h) = (img["width"].as_f64().unwrap(), img["height"].as_f64().unwrap());
        // Photos 3 and 4 are drawings: whatever the detector says about them is fine. The
        // wide ones are composites (photo, bar chart, emoji): the real face is in the left
        // third, and the emoji on the right may be found too.
        let in_real_face_area = |b: &[f64]| {
            let cx = b[0] + b[2] / 2.0;
            let cy = b[1] + b[3] / 2.0;
            let right = if w > 1.5 * h { w / 3.0 } else { w };
            cx > 0.0 && cx < right && cy > 0.0 && cy < h && b[2] > 0.1 * h
        };
        for f in faces {
            let p: f64 = f["probabilities"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).sum();
            assert!((p - 1.0).abs() < 1e-4, "{path}: probabilities sum to {p}");
            assert!(f["label"].is_string() && f["keypoints"].as_array().unwrap().len() == 6, "{f}");
        }
        if ["3", "4"].contains(&stem.as_str()) {
            continue;
        }
        let real: Vec<&serde_json::Value> = faces
            .iter()
            .filter(|f| {
                in_real_face_area(
                    &f["box"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(real.len(), 1, "{path}: one real face expected, got {faces:?}");
        real_faces += 1;
        // The annotated copy exists, has the photo's size, and differs from it.
        let png = image::open(img["annotated"].as_str().unwrap()).unwrap().into_rgb8();
        let orig = image::open(path).unwrap().into_rgb8();
        assert_eq!(png.dimensions(), orig.dimensions());
        assert_ne!(png.as_raw(), orig.as_raw(), "{path}: nothing was drawn");
    }
    assert_eq!(real_faces, 7);
}

#[test]
fn predict_reports_an_image_without_a_face_as_an_empty_list() {
    let dir = tempfile::tempdir().unwrap();
    let blank = dir.path().join("wall.png");
    image::RgbImage::from_pixel(320, 240, image::Rgb([90, 120, 150])).save(&blank).unwrap();
    let doc = json(&fer(&["predict", blank.to_str().unwrap(), "--model", &tiny(), "--json"]));
    assert_eq!(doc[0]["faces"], serde_json::json!([]));
}

#[test]
fn bad_inputs_are_named_and_nothing_panics() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("broken.jpg");
    std::fs::write(&corrupt, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let good = dir.path().join("ok.png");
    image::RgbImage::from_pixel(64, 64, image::Rgb([0, 0, 0])).save(&good).unwrap();

    // A corrupt image among good ones: the good one is still reported, the bad one named.
    let out =
        fer(&["predict", corrupt.to_str().unwrap(), good.to_str().unwrap(), "--model", &tiny(), "--json"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.jpg") && !stderr.contains("panicked"), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc[0]["error"].as_str().unwrap().contains("broken.jpg"));
    assert_eq!(doc[1]["faces"], serde_json::json!([]));

    for (args, needle) in [
        (vec!["predict", "/no/such/image.png", "--model", &tiny()], "/no/such/image.png"),
        (vec!["predict", good.to_str().unwrap(), "--model", "/no/model.fer"], "/no/model.fer"),
        (vec!["predict", good.to_str().unwrap(), "--model", corrupt.to_str().unwrap()], "broken.jpg"),
        (
            vec![
                "predict",
                good.to_str().unwrap(),
                "--model",
                &tiny(),
                "--detector",
                corrupt.to_str().unwrap(),
            ],
            "broken.jpg",
        ),
        (vec!["eval", "--data", dir.path().to_str().unwrap(), "--model", &tiny()], "class folders"),
        (vec!["predict", dir.path().join("empty").to_str().unwrap(), "--model", &tiny()], "no jpg/png"),
    ] {
        let out = fer(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(needle) && !stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn eval_scores_class_folders_with_the_contract_keys() {
    let dir = tempfile::tempdir().unwrap();
    // Crops of the model's own input size are scored whole, without the detector. The test
    // model knows angry, disgust and fear: happy images are counted apart.
    for (class, v) in [("angry", 200u8), ("fear", 40), ("happy", 120)] {
        std::fs::create_dir_all(dir.path().join(class)).unwrap();
        for i in 0..3 {
            image::GrayImage::from_pixel(8, 8, image::Luma([v.saturating_add(i)]))
                .save(dir.path().join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    // A corrupt image is listed and left out, not fatal.
    std::fs::write(dir.path().join("angry/broken.png"), b"\x89PNG not really").unwrap();
    let doc = json(&fer(&["eval", "--data", dir.path().to_str().unwrap(), "--model", &tiny(), "--json"]));
    assert_eq!(doc["skipped"].as_array().unwrap().len(), 1, "{doc}");
    assert!(doc["skipped"][0]["path"].as_str().unwrap().ends_with("broken.png"));
    for key in ["images", "accuracy", "balanced_accuracy", "macro_f1", "per_class_recall", "confusion"] {
        assert!(doc.get(key).is_some(), "missing {key}: {doc}");
    }
    assert_eq!(doc["images"], 6);
    assert_eq!(doc["whole_images"], 6);
    assert_eq!(doc["skipped_classes"], 3);
    assert_eq!(doc["per_class_recall"]["disgust"], serde_json::Value::Null);
    let confusion = doc["confusion"].as_array().unwrap();
    let total: u64 = confusion.iter().flat_map(|r| r.as_array().unwrap()).map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(total, 6);
}

/// `--unsure-below P`: `predict` labels a face `unsure` under P, `eval` counts the faces
/// answered and their accuracy; P out of [0, 1] is refused.
#[test]
fn unsure_below_a_threshold_in_predict_and_eval() {
    let Some(data) = shared_data() else { return };
    let photo = data.join("photos/9.jpg");
    let labels = |p: &str| -> Vec<(String, f64)> {
        let doc = json(&fer(&[
            "predict",
            photo.to_str().unwrap(),
            "--model",
            &tiny(),
            "--json",
            "--unsure-below",
            p,
        ]));
        doc[0]["faces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let top = f["probabilities"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap());
                (f["label"].as_str().unwrap().to_string(), top.fold(0.0, f64::max))
            })
            .collect()
    };
    let answered = labels("0");
    assert!(!answered.is_empty() && answered.iter().all(|(l, _)| l != "unsure"), "{answered:?}");
    let top = answered[0].1;
    let under = labels(&format!("{}", top + 1e-3));
    assert_eq!(under[0].0, "unsure", "{under:?}");
    let at = labels(&format!("{}", top - 1e-3));
    assert_eq!(at[0].0, answered[0].0);

    let dir = tempfile::tempdir().unwrap();
    for (class, v) in [("angry", 200u8), ("fear", 40)] {
        std::fs::create_dir_all(dir.path().join(class)).unwrap();
        for i in 0..3 {
            image::GrayImage::from_pixel(8, 8, image::Luma([v.saturating_add(i)]))
                .save(dir.path().join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let eval = |p: &str| {
        json(&fer(&[
            "eval",
            "--data",
            dir.path().to_str().unwrap(),
            "--model",
            &tiny(),
            "--json",
            "--unsure-below",
            p,
        ]))
    };
    let all = eval("0");
    assert_eq!(all["unsure"]["answered"], 6, "{all}");
    assert_eq!(all["unsure"]["accuracy"], all["accuracy"], "{all}");
    let none = eval("1");
    assert_eq!(none["unsure"]["answered"], 0, "{none}");
    // live: the tracker's smoothed label goes through the same threshold.
    let live = fer(&[
        "live",
        "--input",
        photo.to_str().unwrap(),
        "--headless",
        "--json",
        "--model",
        &tiny(),
        "--unsure-below",
        "1",
    ]);
    assert!(live.status.success(), "{}", String::from_utf8_lossy(&live.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&live.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let faces: Vec<&serde_json::Value> =
        lines.iter().filter_map(|l| l["faces"].as_array()).flatten().collect();
    assert!(!faces.is_empty() && faces.iter().all(|f| f["label"] == "unsure"), "{lines:?}");
    let bad = fer(&["predict", photo.to_str().unwrap(), "--model", &tiny(), "--unsure-below", "1.5"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--unsure-below must be between 0 and 1"));
}

/// A 40-frame MJPEG clip panning across photo 9 (one real face), with one damaged frame.
fn panning_clip(dir: &Path, data: &Path) -> PathBuf {
    let photo = image::open(data.join("photos/9.jpg")).unwrap().into_rgb8();
    let (w, h) = (photo.width() - 60, photo.height() - 60);
    let mut clip = Vec::new();
    for i in 0..40u32 {
        let frame = image::imageops::crop_imm(&photo, i.min(60), (i / 2).min(60), w, h).to_image();
        let mut jpeg = Vec::new();
        frame.write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
        if i == 20 {
            jpeg.truncate(200);
        }
        clip.extend(jpeg);
    }
    let path = dir.join("pan.mjpeg");
    std::fs::write(&path, clip).unwrap();
    path
}

#[test]
fn live_replays_a_clip_with_one_stable_track_and_skips_the_damaged_frame() {
    let Some(data) = shared_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let clip = panning_clip(dir.path(), &data);
    let out = fer(&["live", "--input", clip.to_str().unwrap(), "--headless", "--json", "--model", &tiny()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (frames, summary) = lines.split_at(lines.len() - 1);
    let summary = &summary[0]["summary"];
    assert_eq!(summary["frames"], 39);
    assert_eq!(summary["skipped"], 1);
    assert_eq!(summary["reconnects"], 0, "a replay has no camera to lose");
    for key in ["fps", "p50_ms", "p99_ms"] {
        assert!(summary[key].as_f64().unwrap() > 0.0, "{key}: {summary}");
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("pan.mjpeg#"), "the damaged frame is named");
    for f in frames {
        for key in ["frame", "faces", "latency_ms", "detect_ms", "classify_ms"] {
            assert!(f.get(key).is_some(), "missing {key}: {f}");
        }
        let faces = f["faces"].as_array().unwrap();
        assert_eq!(faces.len(), 1, "frame {}: {faces:?}", f["frame"]);
        assert_eq!(faces[0]["track"], 1, "the panning face keeps its id (frame {})", f["frame"]);
    }
}

/// The default detector is the shipped int8 one (`blazeface_short.fer`) on the own engine,
/// with or without ONNX Runtime, and finds the demo face; a float engine asked for
/// (`--detector-backend eval`) runs the float original instead.
#[test]
fn the_default_detector_runs_in_int8_and_a_float_engine_takes_the_onnx() {
    let live = |extra: &[&str], ort: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fer"));
        cmd.args(["live", "--input", "demo/astronaut.jpg", "--headless", "--json"])
            .args(extra)
            .current_dir(root());
        if let Some(lib) = ort {
            cmd.env("ORT_DYLIB_PATH", lib);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let lines: Vec<serde_json::Value> =
            String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["faces"].as_array().unwrap().len(), 1, "{}", lines[0]);
        assert_eq!(lines[0]["faces"][0]["label"], "happy");
        lines.last().unwrap()["summary"]["detector"].as_str().unwrap().to_string()
    };
    for ort in [Some("/nonexistent/libonnxruntime.so"), None] {
        let name = live(&[], ort);
        assert!(name.starts_with("own int8"), "{name}");
    }
    let name = live(&["--detector-backend", "eval"], None);
    assert!(!name.starts_with("own int8"), "{name}");
}

#[test]
fn live_reads_an_mjpeg_stream_from_a_pipe() {
    let Some(data) = shared_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let clip = std::fs::read(panning_clip(dir.path(), &data)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fer"))
        .args(["live", "--input", "-", "--headless", "--json", "--model", &tiny()])
        .current_dir(root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Written in pieces, as a camera program does.
    let writer = std::thread::spawn(move || {
        for piece in clip.chunks(5000) {
            stdin.write_all(piece).unwrap();
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let last = String::from_utf8_lossy(&out.stdout).lines().last().map(str::to_string).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(summary["summary"]["frames"], 39, "{summary}");
    assert_eq!(summary["summary"]["skipped"], 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdin#20"), "the damaged frame is named");
}

#[test]
fn a_long_replay_runs_in_flat_memory() {
    let Some(data) = shared_data() else { return };
    let out = fer(&[
        "live",
        "--input",
        data.join("photos").to_str().unwrap(),
        "--repeat",
        "120",
        "--headless",
        "--json",
        "--model",
        &tiny(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let s = &summary["summary"];
    assert_eq!(s["frames"], 1080);
    let (at_100, last) = (s["rss_kb_frame_100"].as_u64().unwrap(), s["rss_kb_last"].as_u64().unwrap());
    // Buffers are reused: nothing grows with the number of frames beyond allocator noise.
    assert!(last < at_100 + 4096, "RSS grew from {at_100} kB at frame 100 to {last} kB at frame 1080");
}

#[test]
fn live_without_frames_or_camera_says_what_to_do() {
    for (args, needle) in [
        (vec!["live", "--headless", "--model", &tiny()], "--input"),
        (vec!["live", "--camera", "0", "--headless", "--model", &tiny()], "camera"),
        (vec!["live", "--input", "/no/clip.mjpeg", "--headless", "--model", &tiny()], "/no/clip.mjpeg"),
    ] {
        let out = fer(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(needle) && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    }
}

/// With the `camera` feature, on a machine without cameras (as our build machines are):
/// the list is empty and `--camera 0` names the problem. Without it, both say how to build it.
#[test]
fn cameras_are_listed_and_a_missing_camera_is_named() {
    let list = fer(&["live", "--list-cameras"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&list.stdout), String::from_utf8_lossy(&list.stderr));
    if !cfg!(feature = "camera") {
        assert!(!list.status.success() && stderr.contains("--features camera"), "{stderr}");
        return;
    }
    assert!(list.status.success(), "{stderr}");
    if std::path::Path::new("/dev/video0").exists() {
        eprintln!("this machine has a camera; the no-camera checks are skipped:\n{stdout}");
        return;
    }
    assert_eq!(stdout.trim(), "no cameras found");
    let out = fer(&["live", "--camera", "0", "--headless", "--model", &tiny()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("camera 0: no camera found") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

/// An X server for the window test, stopped on drop. Xvfb picks a free display itself and
/// writes its number on stdout once it accepts clients (`-displayfd`): a fixed display
/// number raced a stale socket left by an earlier run that was killed.
struct Xvfb {
    child: std::process::Child,
    display: String,
}

impl Xvfb {
    /// `None` with a note when Xvfb is not installed; a panic when `FER_REQUIRE_XVFB=1` (CI).
    fn start() -> Option<Xvfb> {
        use std::io::BufRead;
        let spawned = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "800x600x24", "-nolisten", "tcp"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(mut child) = spawned else {
            assert!(std::env::var("FER_REQUIRE_XVFB").map_or(true, |v| v != "1"), "Xvfb is missing");
            eprintln!("SKIPPED: no Xvfb (apt-get install xvfb)");
            return None;
        };
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        std::io::BufReader::new(stdout).read_line(&mut line).expect("read Xvfb's display number");
        let number: u32 = line.trim().parse().unwrap_or_else(|_| panic!("Xvfb did not start: {line:?}"));
        Some(Xvfb { child, display: format!(":{number}") })
    }
}

impl Drop for Xvfb {
    /// SIGTERM, not SIGKILL: Xvfb then removes its socket and lock file.
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// Without `--headless`, frames go to a window (feature `window`): with no display that is
/// a clear error, on an X server the frames are shown and the run ends normally.
#[test]
fn the_window_needs_a_display_and_shows_frames_on_one() {
    let photo = root().join("demo/astronaut.jpg").display().to_string();
    let args = ["live", "--input", &photo, "--repeat", "3", "--json", "--model", &tiny()];
    let run = |display: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fer"));
        cmd.args(args).current_dir(root()).env_remove("WAYLAND_DISPLAY");
        match display {
            Some(d) => cmd.env("DISPLAY", d),
            None => cmd.env_remove("DISPLAY"),
        };
        cmd.output().expect("run fer")
    };
    let out = run(None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !cfg!(feature = "window") {
        assert!(!out.status.success() && stderr.contains("--features window"), "{stderr}");
        return;
    }
    assert!(
        !out.status.success() && stderr.contains("pass --headless") && !stderr.contains("panicked"),
        "{stderr}"
    );
    let Some(x) = Xvfb::start() else { return };
    let out = run(Some(&x.display));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4, "three frames and the summary: {stdout}");
    assert_eq!(lines[3]["summary"]["frames"], 3);
}

/// `fer bench --litert SCRIPT --tflite FILE` runs the peer script once and reports its time
/// beside the engine's; a peer that fails (LiteRT not installed) is named with the fix.
/// The scripts here stand in for `benches/litert_peer.py`, so no LiteRT is needed.
#[test]
fn bench_reports_a_litert_peer_and_names_a_failing_one() {
    let dir = tempfile::tempdir().unwrap();
    let ok = dir.path().join("peer.py");
    std::fs::write(&ok, "print('loading...')\nprint('{\"us\": 250.0, \"runtime\": \"fake LiteRT\"}')\n")
        .unwrap();
    let broken = dir.path().join("broken.py");
    std::fs::write(&broken, "import ai_edge_litert_missing\n").unwrap();
    let tflite = dir.path().join("m.tflite");
    std::fs::write(&tflite, b"").unwrap();
    let bench = |script: &Path| {
        let (s, t) = (script.display().to_string(), tflite.display().to_string());
        fer(&[
            "bench",
            "--model",
            &tiny(),
            "--peers",
            "",
            "--reps",
            "20",
            "--litert",
            &s,
            "--tflite",
            &t,
            "--json",
        ])
    };
    let v = json(&bench(&ok));
    assert_eq!(v["litert_us"], 250.0);
    let ratio = v["ratio_vs_litert"].as_f64().unwrap();
    assert!((ratio - v["engine_us"].as_f64().unwrap() / 250.0).abs() < 1e-9, "{v}");
    let out = bench(&broken);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("ai_edge_litert_missing")
            && stderr.contains("ai-edge-litert"),
        "{stderr}"
    );
}

#[test]
fn bench_runs_a_chosen_kernel_set_and_names_the_ones_this_cpu_has() {
    let bench = |kernels: &str| {
        fer(&["bench", "--model", &tiny(), "--peers", "", "--reps", "5", "--kernels", kernels, "--json"])
    };
    let v = json(&bench("reference"));
    assert_eq!(v["kernels"], "reference", "{v}");
    assert!(v["engine_us"].as_f64().unwrap() > 0.0, "{v}");
    let out = bench("no-such-set");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--kernels no-such-set: this CPU runs reference"), "{err}");
}

/// The two faces of the project's photos with hands over them, read by the shipped model:
/// the afraid woman (6.png) and the crying one (2.png). BlazeFace put their eye keypoints
/// 45 and 27 degrees apart, and levelling the crop by that turned each face sideways: they
/// read `happy` until the crop stopped levelling rolls past `MAX_ROLL` (docs/app.md).
#[test]
fn the_shipped_model_reads_the_hand_covered_faces_as_afraid_and_sad() {
    let Some(data) = shared_data() else { return };
    for (photo, expected) in [("6.png", "fear"), ("2.png", "sad")] {
        let path = data.join("photos").join(photo);
        let out = json(&fer(&["predict", path.to_str().unwrap(), "--json"]));
        // Each composite has the photo on the left and its emoji on the right.
        let faces = out[0]["faces"].as_array().unwrap();
        let photo_face = faces
            .iter()
            .min_by(|a, b| a["box"][0].as_f64().unwrap().total_cmp(&b["box"][0].as_f64().unwrap()))
            .unwrap();
        assert_eq!(photo_face["label"], expected, "{photo}: {photo_face}");
    }
}
