//! The bad-input corpus through every `fer` command (docs/reliability.md): truncated,
//! zero-byte, wrong-type, wrong-size and NaN-filled files, ONNX models with an unsupported
//! op or a dynamic shape, `.fer` models with a flipped bit, and a calibration folder with no
//! images, each given to `predict`, `eval`, `live --input`, `quantize` and `bench`.
//!
//! Every case must end with a non-zero exit (not a panic's), one `error:` line on stderr as
//! its last line that names the file at fault, and no output file left behind. The table of
//! cases is printed, and written to `$FER_BAD_INPUT_TABLE` when that is set.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fer_runtime::onnx::proto::{Dimension, ModelProto};
use fer_runtime::testdata::BadInputCase;
use prost::Message;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fer")).args(args).current_dir(root()).output().expect("run fer")
}

/// The corpus, written into a temporary folder.
struct Corpus {
    dir: tempfile::TempDir,
}

impl Corpus {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn s(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        let p = self.path(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    fn new() -> Corpus {
        let c = Corpus { dir: tempfile::tempdir().unwrap() };
        c.write_images();
        c.write_models();
        c
    }

    fn write_images(&self) {
        let face = image::open(root().join("demo/astronaut.jpg")).unwrap().resize(
            96,
            96,
            image::imageops::FilterType::Triangle,
        );
        face.save(self.path("good.png")).unwrap();
        std::fs::create_dir_all(self.path("calib")).unwrap();
        face.save(self.path("calib/good.png")).unwrap();
        let mut jpg = Vec::new();
        face.write_to(&mut std::io::Cursor::new(&mut jpg), image::ImageFormat::Jpeg).unwrap();
        self.write("zero.jpg", b"");
        self.write("truncated.jpg", &jpg[..jpg.len() / 2]);
        self.write("text.png", b"this is a note, not a picture\n");
        self.write("huge.png", &png_declaring(100_000, 100_000));
        // Streams for `live --input`: empty, and every frame cut off.
        self.write("zero.mjpeg", b"");
        let cut = &jpg[..jpg.len() / 2];
        self.write("truncated.mjpeg", &[cut, cut, cut].concat());
        // Folders: calibration and evaluation sets with nothing usable in them.
        std::fs::create_dir_all(self.path("no-images")).unwrap();
        for (i, name) in ["zero.jpg", "truncated.jpg", "text.png"].iter().enumerate() {
            let bytes = std::fs::read(self.path(name)).unwrap();
            self.write(&format!("unreadable/angry/{i}-{name}"), &bytes);
        }
    }

    fn write_models(&self) {
        let fer_model = std::fs::read(root().join("firmware/vectors/tiny.fer")).unwrap();
        self.write("zero.fer", b"");
        self.write("truncated.fer", &fer_model[..fer_model.len() / 2]);
        let mut flipped = fer_model.clone();
        flipped[fer_model.len() / 2] ^= 0x10;
        self.write("flipped.fer", &flipped);
        self.write("picture.fer", &std::fs::read(self.path("good.png")).unwrap());

        let onnx = std::fs::read(root().join("fuzz/seeds/onnx_model/tiny.onnx")).unwrap();
        self.write("good.onnx", &onnx);
        self.write("zero.onnx", b"");
        self.write("truncated.onnx", &onnx[..onnx.len() / 2]);
        self.write("picture.onnx", &std::fs::read(self.path("good.png")).unwrap());
        let model = ModelProto::decode(onnx.as_slice()).unwrap();
        let mut unsupported = model.clone();
        unsupported.graph.as_mut().unwrap().node[0].op_type = "LSTM".into();
        self.write("unsupported-op.onnx", &unsupported.encode_to_vec());
        let mut dynamic = model.clone();
        let input = &mut dynamic.graph.as_mut().unwrap().input[0];
        let shape = input.r#type.as_mut().unwrap().tensor_type.as_mut().unwrap().shape.as_mut().unwrap();
        shape.dim[2] = Dimension { dim_value: None, dim_param: Some("height".into()) };
        self.write("dynamic.onnx", &dynamic.encode_to_vec());
        let mut nan = model;
        for t in &mut nan.graph.as_mut().unwrap().initializer {
            t.float_data.iter_mut().for_each(|v| *v = f32::NAN);
            if t.data_type == 1 && !t.raw_data.is_empty() {
                t.raw_data = t.raw_data.chunks(4).flat_map(|_| f32::NAN.to_le_bytes()).collect();
            }
        }
        self.write("nan.onnx", &nan.encode_to_vec());
    }
}

/// A PNG whose header declares `w` x `h` pixels (with a valid checksum) and holds none.
fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(13u32.to_be_bytes());
    png.extend(&ihdr);
    png.extend(crc32(&ihdr).to_be_bytes());
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Runs `fer args`: it must fail cleanly, naming `culprit`, and leave none of `outputs`.
fn expect_named_failure(
    cases: &mut Vec<BadInputCase>,
    input: &str,
    args: &[&str],
    culprit: &str,
    outputs: &[PathBuf],
) {
    let outputs: Vec<&Path> = outputs.iter().map(PathBuf::as_path).collect();
    let command = format!("fer {}", args[0]);
    cases.push(BadInputCase::check(&command, input, &fer(args), culprit, &outputs));
}

#[test]
fn every_bad_input_is_named_with_a_clean_exit_and_nothing_half_written() {
    let c = Corpus::new();
    let tiny = root().join("firmware/vectors/tiny.fer").display().to_string();
    let mut rows = Vec::new();

    let bad_images = ["zero.jpg", "truncated.jpg", "text.png", "huge.png"];
    for img in bad_images {
        let annotate = c.path(&format!("annotated-{img}"));
        let args = ["predict", &c.s(img), "--model", &tiny, "--annotate", annotate.to_str().unwrap()];
        expect_named_failure(&mut rows, img, &args, img, std::slice::from_ref(&annotate));
        let args = ["live", "--input", &c.s(img), "--model", &tiny, "--headless", "--json"];
        expect_named_failure(&mut rows, img, &args, img, &[]);
    }
    for stream in ["zero.mjpeg", "truncated.mjpeg"] {
        let args = ["live", "--input", &c.s(stream), "--model", &tiny, "--headless", "--json"];
        expect_named_failure(&mut rows, stream, &args, stream, &[]);
    }
    let args = ["eval", "--data", &c.s("unreadable"), "--model", &tiny, "--json"];
    expect_named_failure(&mut rows, "a folder of unreadable images", &args, "unreadable", &[]);

    let bad_fer = ["zero.fer", "truncated.fer", "flipped.fer", "picture.fer"];
    for m in bad_fer {
        expect_named_failure(&mut rows, m, &["predict", &c.s("good.png"), "--model", &c.s(m)], m, &[]);
        expect_named_failure(&mut rows, m, &["predict", &c.s("good.png"), "--detector", &c.s(m)], m, &[]);
        expect_named_failure(
            &mut rows,
            m,
            &["eval", "--data", &c.s("unreadable"), "--model", &c.s(m)],
            m,
            &[],
        );
        let args = ["live", "--input", &c.s("good.png"), "--model", &c.s(m), "--headless"];
        expect_named_failure(&mut rows, m, &args, m, &[]);
        expect_named_failure(&mut rows, m, &["bench", "--model", &c.s(m), "--reps", "1"], m, &[]);
    }

    let bad_onnx =
        ["zero.onnx", "truncated.onnx", "picture.onnx", "unsupported-op.onnx", "dynamic.onnx", "nan.onnx"];
    for m in bad_onnx {
        let (out, qdq) = (c.path(&format!("{m}.fer")), c.path(&format!("{m}.qdq.onnx")));
        let args = [
            "quantize",
            &c.s(m),
            "--calib",
            &c.s("calib"),
            "--out",
            out.to_str().unwrap(),
            "--qdq-out",
            qdq.to_str().unwrap(),
        ];
        expect_named_failure(&mut rows, m, &args, m, &[out.clone(), qdq.clone()]);
        let args = ["predict", &c.s("good.png"), "--model", &c.s(m), "--backend", "eval"];
        expect_named_failure(&mut rows, m, &args, m, &[]);
    }
    for (calib, culprit) in [("no-images", "no-images"), ("unreadable", "0-zero.jpg")] {
        let out = c.path(&format!("calib-{calib}.fer"));
        let args = ["quantize", &c.s("good.onnx"), "--calib", &c.s(calib), "--out", out.to_str().unwrap()];
        let input = format!("calibration folder `{calib}`");
        expect_named_failure(&mut rows, &input, &args, culprit, std::slice::from_ref(&out));
    }

    BadInputCase::report(&rows, c.dir.path());
}
