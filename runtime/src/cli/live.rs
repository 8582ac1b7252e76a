//! `fer live`: recognition on a stream of frames, with tracking and smoothing. Frames come
//! from a camera (`--camera N`, feature `camera`; reopened with backoff when it fails) or
//! a replay (`--input`: image folders, MJPEG streams; `-`: an MJPEG stream on stdin, read
//! as it arrives, e.g. from `rpicam-vid --codec mjpeg -o -`). Results go to stdout (JSON lines
//! with `--json`) and, unless `--headless`, to a window (feature `window`).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::Args;
use fer_runtime::video::{Frame, MjpegStream, Replay};
use fer_runtime::vision::track::{Tracker, TrackerOptions};
use fer_runtime::vision::{Pipeline, RgbFrame};
use serde::Serialize;

use super::latency::Latencies;
use super::models::PipelineArgs;

#[derive(Debug, Args)]
pub struct LiveArgs {
    #[command(flatten)]
    pipeline: PipelineArgs,
    /// Camera index (needs the `camera` feature; `--list-cameras` lists them).
    #[arg(long, conflicts_with = "input")]
    camera: Option<u32>,
    /// Camera resolution to ask for, WIDTHxHEIGHT (the camera gives its closest mode).
    #[arg(long, default_value = "640x480", value_parser = parse_size)]
    camera_size: (u32, u32),
    /// Camera frame rate to ask for.
    #[arg(long, default_value_t = 30)]
    camera_fps: u32,
    /// A camera that fails is reopened, pausing 0.25 s, 0.5 s, ... up to 4 s between tries,
    /// for this many seconds in all; then `fer live` ends with an error.
    #[arg(long, default_value_t = 30.0)]
    reconnect_secs: f64,
    /// List cameras and exit (needs the `camera` feature).
    #[arg(long)]
    list_cameras: bool,
    /// Replay frames instead of a camera: images, folders of images, .mjpeg streams; `-`
    /// reads an MJPEG stream from stdin as it arrives (a camera program's pipe).
    #[arg(long, num_args = 1..)]
    input: Vec<PathBuf>,
    /// Replay the input this many times (long runs from a short clip).
    #[arg(long, default_value_t = 1)]
    repeat: u64,
    /// Stop after this many frames.
    #[arg(long)]
    max_frames: Option<u64>,
    /// Pace the replay at this many frames per second [default: as fast as it runs].
    #[arg(long)]
    fps: Option<f64>,
    /// No window: print results only (the window needs the `window` feature).
    #[arg(long)]
    headless: bool,
    /// JSON lines, one per frame, then one summary line.
    #[arg(long)]
    json: bool,
    /// Weight of the newest frame in each track's moving average of probabilities (1: none).
    #[arg(long, default_value_t = TrackerOptions::default().smooth)]
    smooth: f32,
    /// A track is dropped after this many frames without its face.
    #[arg(long, default_value_t = TrackerOptions::default().max_missed)]
    track_max_missed: u32,
    /// Minimum box overlap (IoU) for a face to continue a track.
    #[arg(long, default_value_t = TrackerOptions::default().min_iou)]
    track_iou: f32,
}

#[derive(Serialize)]
struct FrameLine<'a> {
    frame: u64,
    source: &'a str,
    faces: &'a [fer_runtime::vision::Face],
    /// Detection, crops and classification; decoding is `decode_ms`.
    latency_ms: f64,
    detect_ms: f64,
    classify_ms: f64,
    decode_ms: f64,
}

#[derive(Serialize)]
struct Summary {
    /// Frames per second through the pipeline (decoding excluded).
    fps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Frames processed.
    frames: u64,
    /// Frames that could not be decoded (skipped, not fatal).
    skipped: u64,
    /// Times the camera was lost and reopened (0 for replays).
    reconnects: u64,
    decode_p50_ms: f64,
    faces: u64,
    tracks_started: u64,
    /// Resident memory after frame 100 and after the last frame (kB): flat means no leak.
    rss_kb_frame_100: Option<u64>,
    rss_kb_last: Option<u64>,
    backend: String,
    detector: String,
}

/// Resident set size of this process in kB (Linux; None elsewhere).
fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn parse_size(s: &str) -> anyhow::Result<(u32, u32)> {
    let parsed = s.split_once('x').and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
    match parsed {
        Some((w, h)) if w > 0 && h > 0 => Ok((w, h)),
        _ => Err(anyhow!("{s:?}: expected WIDTHxHEIGHT, e.g. 640x480")),
    }
}

/// Frames to recognize: `Ok` frames (possibly damaged, then skipped), or one `Err` when a
/// camera is lost for good.
type Frames = Box<dyn Iterator<Item = anyhow::Result<Frame>>>;

/// How many times the camera was lost and found again (0 for replays), for the summary.
type Reconnects = std::rc::Rc<std::cell::Cell<u64>>;

#[cfg(feature = "camera")]
mod camera {
    use std::time::Duration;

    use fer_runtime::video::camera::{self, CameraRequest, CameraStream};
    use fer_runtime::video::{Backoff, Reconnecting};

    use super::{Frames, LiveArgs, Reconnects};

    pub fn frames(a: &LiveArgs, index: u32, reconnects: Reconnects) -> anyhow::Result<Frames> {
        if !(a.reconnect_secs >= 0.0 && a.reconnect_secs.is_finite()) {
            return Err(anyhow::anyhow!("--reconnect-secs must be 0 or more, got {}", a.reconnect_secs));
        }
        let (width, height) = a.camera_size;
        let req = CameraRequest { index, width, height, fps: a.camera_fps };
        let first = CameraStream::open(req)?;
        eprintln!("camera {index}: {}", first.mode());
        let mut first = Some(first);
        let open = move || match first.take() {
            Some(stream) => Ok(stream),
            None => CameraStream::open(req),
        };
        let backoff =
            Backoff { give_up_after: Duration::from_secs_f64(a.reconnect_secs), ..Backoff::default() };
        let mut camera = Reconnecting::open(format!("camera {index}"), open, backoff)?;
        Ok(Box::new(std::iter::from_fn(move || {
            let frame = camera.next();
            reconnects.set(camera.reconnects);
            frame.map(|f| f.map_err(Into::into))
        })))
    }

    pub fn list(json: bool) -> anyhow::Result<()> {
        let cams = camera::list()?;
        if json {
            println!("{}", serde_json::to_string_pretty(&cams)?);
        } else if cams.is_empty() {
            println!("no cameras found");
        } else {
            for c in &cams {
                println!("{}\t{}\t{}", c.index, c.name, c.description);
            }
        }
        Ok(())
    }
}

#[cfg(not(feature = "camera"))]
mod camera {
    use super::{Frames, LiveArgs, Reconnects};

    const MISSING: &str = "camera capture is not in this build of `fer`: rebuild with `--features camera` \
                           (needs libclang: `apt-get install libclang-dev`), or replay recorded frames with --input";

    pub fn frames(_: &LiveArgs, _: u32, _: Reconnects) -> anyhow::Result<Frames> {
        Err(anyhow::anyhow!(MISSING))
    }

    pub fn list(_: bool) -> anyhow::Result<()> {
        Err(anyhow::anyhow!(MISSING))
    }
}

/// The window, opened at the first frame (feature `window`).
#[derive(Default)]
struct Screen {
    #[cfg(feature = "window")]
    window: Option<super::window::LiveWindow>,
}

impl Screen {
    /// Shows the frame and its faces; `false` when the user closed the window.
    #[cfg(feature = "window")]
    fn show(
        &mut self,
        img: &image::RgbImage,
        faces: &[fer_runtime::vision::Face],
        labels: &[String],
    ) -> anyhow::Result<bool> {
        if self.window.is_none() {
            self.window = Some(super::window::LiveWindow::open(img.width() as usize, img.height() as usize)?);
        }
        self.window.as_mut().map_or(Ok(false), |w| w.show(img, faces, labels))
    }

    #[cfg(not(feature = "window"))]
    fn show(
        &mut self,
        _: &image::RgbImage,
        _: &[fer_runtime::vision::Face],
        _: &[String],
    ) -> anyhow::Result<bool> {
        Ok(true)
    }
}

/// The camera or the replay that `a` names.
fn frames(a: &LiveArgs, reconnects: Reconnects) -> anyhow::Result<Frames> {
    match a.camera {
        Some(index) => camera::frames(a, index, reconnects),
        None if a.input.is_empty() => {
            Err(anyhow!("no frames: pass --camera N, or --input IMAGES|FOLDER|CLIP.mjpeg"))
        }
        None if a.input.len() == 1 && a.input[0].as_os_str() == "-" => {
            Ok(Box::new(MjpegStream::new(std::io::stdin(), "stdin").map(Ok)))
        }
        None => Ok(Box::new(Replay::open(&a.input, a.repeat)?.map(Ok))),
    }
}

pub fn run(a: LiveArgs) -> anyhow::Result<()> {
    if a.list_cameras {
        return camera::list(a.json);
    }
    if !a.headless && !cfg!(feature = "window") {
        return Err(anyhow!(
            "this build of `fer` has no window: rebuild with `--features window`, or pass --headless"
        ));
    }
    if !(a.smooth > 0.0 && a.smooth <= 1.0) {
        return Err(anyhow!("--smooth must be in (0, 1], got {}", a.smooth));
    }
    let mut pipeline = a.pipeline.pipeline(true)?;
    let labels = pipeline.classifier.labels.clone();
    let mut tracker = Tracker::new(TrackerOptions {
        min_iou: a.track_iou,
        max_missed: a.track_max_missed,
        smooth: a.smooth,
    });
    let reconnects = Reconnects::default();
    let mut source = frames(&a, reconnects.clone())?;
    let mut window = Screen::default();
    let mut lost = None;
    let mut first_damaged: Option<String> = None;
    let limit = a.max_frames.unwrap_or(u64::MAX);
    let period = a.fps.filter(|f| *f > 0.0).map(|f| Duration::from_secs_f64(1.0 / f));
    let mut stats = Stats::new();
    let mut out = std::io::stdout().lock();
    let started = Instant::now();
    for n in 0..limit {
        let due = period.map(|p| started + p.mul_f64(n as f64));
        // Reading and decoding the next frame (reported apart from the pipeline).
        let t0 = Instant::now();
        let f = match source.next() {
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                lost = Some(e);
                break;
            }
            None => break,
        };
        let img = match &f.image {
            Ok(img) => img,
            Err(e) => {
                stats.skipped += 1;
                eprintln!("frame {}: skipped: {e}", f.index);
                first_damaged.get_or_insert_with(|| e.clone());
                continue;
            }
        };
        let decode_ms = t0.elapsed().as_secs_f64() * 1e3;
        let t1 = Instant::now();
        let frame = RgbFrame::new(img.width() as usize, img.height() as usize, img.as_raw())?;
        let mut faces = pipeline.faces(&frame)?;
        tracker.update(&mut faces);
        // The smoothed probabilities name the face (the top class, or unsure).
        for face in &mut faces {
            face.label = pipeline.classifier.label_for(&face.probabilities);
        }
        let took = t1.elapsed();
        if !a.headless && !window.show(img, &faces, &labels)? {
            break;
        }
        stats.add(took, decode_ms, faces.len());
        let line = FrameLine {
            frame: f.index,
            source: &f.source,
            faces: &faces,
            latency_ms: took.as_secs_f64() * 1e3,
            detect_ms: pipeline.last.detect_ms,
            classify_ms: pipeline.last.classify_ms,
            decode_ms,
        };
        // A closed pipe (`fer live ... | head`) ends the run quietly.
        if write_line(&mut out, &line, a.json).is_err() {
            return Ok(());
        }
        if let Some(due) = due {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    }
    let summary = stats.summary(&pipeline, &tracker, reconnects.get());
    write_summary(&mut out, &summary, a.json);
    if let Some(e) = lost {
        return Err(e);
    }
    if stats.frames == 0 {
        return Err(match first_damaged {
            Some(first) => anyhow!("none of the {} frames could be decoded; first: {first}", stats.skipped),
            None => anyhow!("no frames came in (an empty stream or folder?)"),
        });
    }
    Ok(())
}

/// What a session has seen so far, in constant memory however long it runs.
struct Stats {
    latencies: Latencies,
    decodes: Latencies,
    frames: u64,
    skipped: u64,
    faces: u64,
    rss_kb_frame_100: Option<u64>,
    /// Time in the pipeline (decoding excluded), for the fps.
    busy: Duration,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            latencies: Latencies::new(),
            decodes: Latencies::new(),
            frames: 0,
            skipped: 0,
            faces: 0,
            rss_kb_frame_100: None,
            busy: Duration::ZERO,
        }
    }

    /// One frame through the pipeline in `took`, decoded in `decode_ms`, with `faces` faces.
    fn add(&mut self, took: Duration, decode_ms: f64, faces: usize) {
        self.busy += took;
        self.latencies.add(took.as_secs_f64() * 1e3);
        self.decodes.add(decode_ms);
        self.frames += 1;
        self.faces += faces as u64;
        if self.frames == 100 {
            self.rss_kb_frame_100 = rss_kb();
        }
    }

    fn summary(&self, pipeline: &Pipeline, tracker: &Tracker, reconnects: u64) -> Summary {
        Summary {
            fps: self.frames as f64 / self.busy.as_secs_f64().max(1e-9),
            p50_ms: self.latencies.percentile(0.5),
            p99_ms: self.latencies.percentile(0.99),
            frames: self.frames,
            skipped: self.skipped,
            reconnects,
            decode_p50_ms: self.decodes.percentile(0.5),
            faces: self.faces,
            tracks_started: tracker.started(),
            rss_kb_frame_100: self.rss_kb_frame_100,
            rss_kb_last: rss_kb(),
            backend: pipeline.classifier.name(),
            detector: pipeline.detector.as_ref().map(|d| d.name()).unwrap_or_default(),
        }
    }
}

/// One frame's line: JSON, or a line of text.
fn write_line(out: &mut impl Write, line: &FrameLine, json: bool) -> std::io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, line)?;
        return writeln!(out);
    }
    let desc: Vec<String> =
        line.faces.iter().map(|f| format!("{} (track {})", f.label, f.track.unwrap_or(0))).collect();
    writeln!(
        out,
        "frame {}: {} face(s) {} {:.1} ms",
        line.frame,
        line.faces.len(),
        desc.join(", "),
        line.latency_ms
    )
}

fn write_summary(out: &mut impl Write, summary: &Summary, json: bool) {
    if json {
        let _ = writeln!(out, "{}", serde_json::json!({ "summary": summary }));
    } else {
        let _ = writeln!(
            out,
            "{} frames ({} skipped): {:.0} fps, p50 {:.2} ms, p99 {:.2} ms (decoding apart: p50 {:.2} ms)",
            summary.frames,
            summary.skipped,
            summary.fps,
            summary.p50_ms,
            summary.p99_ms,
            summary.decode_p50_ms
        );
    }
}
