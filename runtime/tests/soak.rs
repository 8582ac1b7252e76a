//! The soak (docs/reliability.md): 10,000 frames through `fer live --input -`, as a camera
//! program would pipe them, with damaged frames among them and a source that stalls twice
//! for 1.5 s and comes back. Measured per 1,000 frames: resident memory and the pipeline's
//! p50/p99 latency. Checked: memory stays flat, every good frame is processed and every
//! damaged one named, and the one face keeps one track id from the first frame to the last
//! (the tracker's rules drop a track only after frames without its face, and a damaged or
//! late frame is not such a frame).
//!
//! About a minute, so it runs in CI's extended step rather than with the README's test command:
//! `cargo test -p fer-runtime --test soak -- --ignored --nocapture` (the dev profile builds
//! the runtime and its dependencies optimised).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const FRAMES: u64 = 10_000;
/// Every 50th frame is cut in half (a USB hiccup): 200 damaged frames.
const DAMAGED_EVERY: u64 = 50;
/// The source stalls before these frames.
const STALLS: [u64; 2] = [3_000, 7_000];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or("VmRSS: 0 kB");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
#[ignore = "extended: a minute of frames; CI's extended step runs it"]
fn ten_thousand_frames_with_damage_and_stalls_run_flat() {
    // The demo portrait at a webcam's size, a little different in every frame (the JPEG
    // quality cycles), so the decoder and the detector see changing bytes.
    let photo = image::open(root().join("demo/astronaut.jpg")).unwrap();
    let frame = photo.resize_exact(320, 240, image::imageops::FilterType::Triangle).into_rgb8();
    let jpegs: Vec<Vec<u8>> = (0..8u8)
        .map(|q| {
            let mut bytes = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 70 + 3 * q)
                .encode_image(&frame)
                .unwrap();
            bytes
        })
        .collect();

    let mut child = Command::new(env!("CARGO_BIN_EXE_fer"))
        .args(["live", "--input", "-", "--headless", "--json"])
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..FRAMES {
            if STALLS.contains(&i) {
                stdin.flush().unwrap();
                std::thread::sleep(Duration::from_millis(1500));
            }
            let jpeg = &jpegs[(i % 8) as usize];
            let bytes =
                if i % DAMAGED_EVERY == DAMAGED_EVERY - 1 { &jpeg[..jpeg.len() / 2] } else { &jpeg[..] };
            stdin.write_all(bytes).unwrap();
        }
    });
    let stderr = child.stderr.take().unwrap();
    let errors =
        std::thread::spawn(move || BufReader::new(stderr).lines().map(Result::unwrap).collect::<Vec<_>>());

    let mut blocks: Vec<(u64, Vec<f64>)> = Vec::new();
    let mut latencies = Vec::new();
    let (mut processed, mut tracks) = (0u64, std::collections::BTreeSet::new());
    let mut summary = serde_json::Value::Null;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v.get("summary").is_some() {
            summary = v;
            continue;
        }
        processed += 1;
        latencies.push(v["latency_ms"].as_f64().unwrap());
        let faces = v["faces"].as_array().unwrap();
        assert_eq!(faces.len(), 1, "frame {}: one face", v["frame"]);
        tracks.insert(faces[0]["track"].as_u64().unwrap());
        if processed % 1000 == 0 {
            blocks.push((rss_kb(pid), std::mem::take(&mut latencies)));
        }
    }
    writer.join().unwrap();
    let status = child.wait().unwrap();
    let errors = errors.join().unwrap();
    assert!(status.success(), "{}", errors.join("\n"));

    let damaged = FRAMES / DAMAGED_EVERY;
    assert_eq!(processed, FRAMES - damaged, "every good frame is processed");
    assert_eq!(summary["summary"]["skipped"], damaged, "{summary}");
    assert_eq!(
        errors.iter().filter(|l| l.contains("skipped: stdin#")).count() as u64,
        damaged,
        "each damaged frame named"
    );
    assert_eq!(tracks.len(), 1, "one face, one track id through damage and stalls: {tracks:?}");

    println!("| processed frames | RSS (MB) | p50 (ms) | p99 (ms) |\n|---|---|---|---|");
    for (i, (rss, mut lat)) in blocks.iter().cloned().enumerate() {
        lat.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
        println!(
            "| {}-{} | {:.1} | {p50:.2} | {p99:.2} |",
            i * 1000 + 1,
            (i + 1) * 1000,
            rss as f64 / 1024.0
        );
    }
    println!("{summary}");
    // Flat: after the first block (buffers and caches warm), memory grows by less than 4 MB
    // over the remaining 8,800 frames.
    let (first, last) = (blocks[0].0, blocks.last().unwrap().0);
    assert!(last < first + 4096, "RSS grew from {first} kB to {last} kB");
}
