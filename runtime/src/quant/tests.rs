//! The quantizer and the `.fer` loader on a tiny model with every op the engine has:
//! int8 close to float, and bad bytes (truncated, corrupted) refused without a panic.

use super::{Method, quantize};
use crate::engine::Engine;
use crate::format::{AlignedBytes, FormatError, Model};
use crate::kernels;
use crate::onnx::testutil::*;
use crate::onnx::{eval, read_onnx};

fn ramp(n: usize, scale: f32, phase: usize) -> Vec<f32> {
    (0..n).map(|i| (((i + phase) * 7 % 13) as f32 - 6.0) * scale).collect()
}

/// 1x8x8 -> conv 4 (+BN, ReLU) -> maxpool -> depthwise (ReLU) -> PReLU -> add (residual)
/// -> average pool -> global pool -> flatten -> dense 3.
pub fn tiny_model() -> Vec<u8> {
    let nodes = vec![
        node("Conv", "conv", &["x", "w1", "b1"], &["c1"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
        node("BatchNormalization", "bn", &["c1", "g", "beta", "mean", "var"], &["n1"], vec![]),
        node("Relu", "relu1", &["n1"], &["r1"], vec![]),
        node(
            "MaxPool",
            "pool",
            &["r1"],
            &["p1"],
            vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[2, 2])],
        ),
        node(
            "Conv",
            "dw",
            &["p1", "w2"],
            &["c2"],
            vec![attr_ints("pads", &[1, 1, 1, 1]), attr_i("group", 4)],
        ),
        node("Relu", "relu2", &["c2"], &["r2"], vec![]),
        node("PRelu", "prelu", &["r2", "slope"], &["pr"], vec![]),
        node("Add", "add", &["pr", "p1"], &["s"], vec![]),
        node(
            "AveragePool",
            "avg",
            &["s"],
            &["a"],
            vec![attr_ints("kernel_shape", &[3, 3]), attr_ints("pads", &[1, 1, 1, 1])],
        ),
        node("GlobalAveragePool", "gap", &["a"], &["g1"], vec![]),
        node("Flatten", "flat", &["g1"], &["f"], vec![]),
        node("Gemm", "fc", &["f", "fw", "fb"], &["y"], vec![attr_i("transB", 1)]),
    ];
    let init = vec![
        f32s("w1", &[4, 1, 3, 3], ramp(36, 0.2, 0)),
        f32s("b1", &[4], vec![0.1, -0.2, 0.05, 0.0]),
        f32s("g", &[4], vec![1.0, 0.8, 1.2, 0.9]),
        f32s("beta", &[4], vec![0.1, 0.0, -0.1, 0.2]),
        f32s("mean", &[4], vec![0.05, -0.1, 0.0, 0.2]),
        f32s("var", &[4], vec![0.5, 1.0, 2.0, 0.7]),
        f32s("w2", &[4, 1, 3, 3], ramp(36, 0.15, 3)),
        f32s("slope", &[4, 1, 1], vec![0.25, 0.0, -0.1, 0.5]),
        f32s("fw", &[3, 4], ramp(12, 0.4, 5)),
        f32s("fb", &[3], vec![0.3, -0.3, 0.0]),
    ];
    model(nodes, init, [1, 8, 8], "y")
}

fn images(n: usize) -> Vec<Vec<f32>> {
    (0..n).map(|k| (0..64).map(|i| ((i * (k + 3) + k * 11) % 17) as f32 / 16.0).collect()).collect()
}

#[test]
fn int8_follows_float_on_every_op() {
    let onnx = tiny_model();
    let q = quantize(&onnx, &images(32), Method::MinMax).unwrap();
    let codes: Vec<_> = q.model.layers.iter().map(|l| std::format!("{:?}", l.code)).collect();
    assert_eq!(
        codes,
        ["Conv", "MaxPool", "DepthwiseConv", "PRelu", "Add", "AvgPool", "GlobalAvgPool", "Dense"],
        "BN folded, ReLUs fused, the flatten before the dense layer dropped"
    );
    let g = read_onnx(&onnx).unwrap();
    let buf = AlignedBytes::new(&q.fer);
    for k in kernels::available_for(127) {
        let engine = Engine::new(Model::new(buf.as_slice()).unwrap(), k);
        let mut arena = vec![0u8; engine.arena_size()];
        let out = engine.output();
        for img in images(8) {
            let f = eval::run(&g, &img).unwrap();
            let i = engine.infer(&mut arena, &img).unwrap();
            for (a, b) in f.iter().zip(&i) {
                // A few output steps: the error of int8 activations through nine ops.
                assert!(
                    (a - b).abs() <= 4.0 * out.scale,
                    "{}: float {f:?} int8 {i:?} (step {})",
                    k.name(),
                    out.scale
                );
            }
        }
    }
    // Percentile calibration clips ranges: never wider than min/max.
    let p = quantize(&onnx, &images(32), Method::Percentile(99.0)).unwrap();
    for (a, b) in p.model.values.iter().zip(&q.model.values) {
        assert!(a.scale <= b.scale * 1.0001, "{a:?} vs {b:?}");
    }
}

/// A 3x3 conv over 3 channels (window rows of 9 bytes, padded to 12 in K) flattened into a
/// dense layer: the dense layer reads the [H, W, C] map with weights permuted from ONNX's
/// [C, H, W] order; a flatten that is the model's output is kept (it gives ONNX's order).
#[test]
fn padded_patch_rows_and_dense_layers_reading_maps() {
    let conv =
        |out: &str| node("Conv", "conv", &["x", "w1", "b1"], &[out], vec![attr_ints("pads", &[1, 1, 1, 1])]);
    let init = || {
        vec![
            f32s("w1", &[3, 3, 3, 3], ramp(81, 0.1, 1)),
            f32s("b1", &[3], vec![0.1, -0.2, 0.05]),
            f32s("fw", &[5, 48], ramp(240, 0.1, 2)),
            f32s("fb", &[5], vec![0.3, -0.3, 0.0, 0.1, 0.2]),
        ]
    };
    let dense = model(
        vec![
            conv("c"),
            node("Flatten", "flat", &["c"], &["f"], vec![]),
            node("Gemm", "fc", &["f", "fw", "fb"], &["y"], vec![attr_i("transB", 1)]),
        ],
        init(),
        [3, 4, 4],
        "y",
    );
    let flat_out =
        model(vec![conv("c"), node("Flatten", "flat", &["c"], &["y"], vec![])], init(), [3, 4, 4], "y");
    let imgs: Vec<Vec<f32>> =
        (0..16).map(|k| (0..48).map(|i| ((i * (k + 5) + 3 * k) % 11) as f32 / 10.0).collect()).collect();
    for (onnx, codes) in [(&dense, &["Conv", "Dense"][..]), (&flat_out, &["Conv", "Flatten"][..])] {
        let q = quantize(onnx, &imgs, Method::MinMax).unwrap();
        let got: Vec<_> = q.model.layers.iter().map(|l| std::format!("{:?}", l.code)).collect();
        assert_eq!(got, codes);
        let g = read_onnx(onnx).unwrap();
        let buf = AlignedBytes::new(&q.fer);
        for k in kernels::available_for(127) {
            let engine = Engine::new(Model::new(buf.as_slice()).unwrap(), k);
            let mut arena = vec![0u8; engine.arena_size()];
            let step = engine.output().scale;
            for img in &imgs[..6] {
                let f = eval::run(&g, img).unwrap();
                let i = engine.infer(&mut arena, img).unwrap();
                assert_eq!(f.len(), i.len());
                for (a, b) in f.iter().zip(&i) {
                    assert!(
                        (a - b).abs() <= 3.0 * step,
                        "{}: float {f:?} int8 {i:?} (step {step})",
                        k.name()
                    );
                }
            }
        }
    }
}

/// Corrupts `fer` field by field (1-3 bytes, 4,000 times) and runs whatever still passes
/// the structural checks (the checksum skipped); returns how many did.
fn corrupt_and_run(fer: &[u8]) -> usize {
    let mut state = 0x1234_5678u64;
    let mut loaded = 0;
    for round in 0..4000 {
        let mut bad = fer.to_vec();
        for _ in 0..1 + round % 3 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Mostly the header and tables, where the structure lives.
            let span = if state.is_multiple_of(4) { bad.len() } else { 1024.min(bad.len()) };
            let at = (state >> 8) as usize % span;
            bad[at] = (state >> 40) as u8;
        }
        let b = AlignedBytes::new(&bad);
        if let Ok(m) = Model::new_unchecked_crc(b.as_slice()) {
            loaded += 1;
            let engine = Engine::new(m, &kernels::reference::Reference);
            if engine.arena_size() <= 1 << 24 {
                let mut arena = vec![0u8; engine.arena_size()];
                let _ = engine.run(&mut arena);
            }
        }
    }
    loaded
}

/// Concat, Pad and two outputs: corrupted files refused or run in bounds, and output
/// slots that disagree with the header refused.
#[test]
fn concat_pad_and_output_tables_are_checked() {
    let imgs: Vec<Vec<f32>> = (0..4).map(|k| ramp(18, 0.3, k)).collect();
    let fer = quantize(&detector_style(), &imgs, Method::MinMax).unwrap().fer;
    let loaded = corrupt_and_run(&fer);
    std::eprintln!("{loaded} of 4000 corrupted detector-style models passed the structural checks and ran");
    let m = Model::new(AlignedBytes::new(&fer).as_slice()).unwrap().header;
    assert_eq!(m.n_outputs, 2);
    // One output claimed where two are marked, and a third slot that no value holds.
    for n in [1u16, 3] {
        let mut bad = fer.clone();
        bad[62..64].copy_from_slice(&n.to_le_bytes());
        let b = AlignedBytes::new(&bad);
        assert_eq!(Model::new_unchecked_crc(b.as_slice()).unwrap_err(), FormatError::BadSection("outputs"));
    }
}

#[test]
fn bad_bytes_are_refused_without_panicking() {
    let q = quantize(&tiny_model(), &images(8), Method::MinMax).unwrap();
    let fer = q.fer;
    // Truncated at every length.
    for len in 0..fer.len() {
        let b = AlignedBytes::new(&fer[..len]);
        assert!(Model::new(b.as_slice()).is_err(), "truncated to {len} bytes loaded");
    }
    // Any flipped byte is caught by the checksum (or the magic/version/size checks).
    for at in (0..fer.len()).step_by(7) {
        let mut bad = fer.clone();
        bad[at] ^= 0x5A;
        let b = AlignedBytes::new(&bad);
        assert!(Model::new(b.as_slice()).is_err(), "byte {at} flipped and loaded");
    }
    // Without the checksum, the structural checks alone must keep the engine in bounds.
    let loaded = corrupt_and_run(&fer);
    std::eprintln!("{loaded} of 4000 corrupted models passed the structural checks and ran");
    let misaligned = AlignedBytes::new(&[&[0u8][..], &fer].concat());
    assert_eq!(Model::new(&misaligned.as_slice()[1..]).unwrap_err(), FormatError::Misaligned);
}

/// The checksum is zlib's CRC-32 of everything after the 16-byte header start (its
/// catalogue check value), whichever table size this build uses.
#[test]
fn checksum_is_zlibs_crc32() {
    let bytes = [&[0xEEu8; 16][..], b"123456789"].concat();
    assert_eq!(crate::format::checksum(&bytes), 0xCBF4_3926);
}

#[test]
fn a_quantized_model_is_refused_with_a_reason() {
    let q = quantize(&tiny_model(), &images(8), Method::MinMax).unwrap();
    let e = quantize(&q.qdq, &images(8), Method::MinMax).err().unwrap().0;
    assert!(e.contains("(QuantizeLinear): this model is already quantized"), "{e}");
}

/// Writes the tiny model's `.fer` where `FER_WRITE_SEED` points (the fuzz corpus seed).
#[test]
fn write_fuzz_seed() {
    if let Some(path) = std::env::var_os("FER_WRITE_SEED") {
        let q = quantize(&tiny_model(), &images(8), Method::MinMax).unwrap();
        std::fs::write(path, q.fer).unwrap();
    }
}

/// Every file in `fuzz/seeds/fer_model` (the seed and past fuzzer crashes) goes through the
/// loader and the engine as the fuzz target does: no panic.
#[test]
fn fuzz_seeds_replay_without_panicking() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/fer_model");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let b = AlignedBytes::new(&bytes);
        let _ = Model::new(b.as_slice());
        if let Ok(m) = Model::new_unchecked_crc(b.as_slice())
            && m.header.arena_size <= 1 << 22
        {
            let mut arena = vec![0u8; m.header.arena_size];
            for k in kernels::available_for(127) {
                let _ = Engine::new(m, k).run(&mut arena);
            }
        }
        n += 1;
    }
    assert!(n >= 2, "{n} seeds in {}", dir.display());
}

/// Every op's output, in op order, each as the arena holds it (`[H, W, C]`), after running
/// the model op by op on `img`: what the firmware harness compares, op by op.
fn op_outputs(engine: &Engine, img: &[f32]) -> Vec<u8> {
    let mut arena = vec![0u8; engine.arena_size()];
    engine.set_input(&mut arena, img).unwrap();
    let mut all = Vec::new();
    for i in 0..engine.model.header.n_ops as u16 {
        engine.run_op(i, &mut arena).unwrap();
        let y = engine.model.value(engine.model.op(i).unwrap().output);
        all.extend_from_slice(&arena[y.offset..y.offset + y.len()]);
    }
    all
}

/// The firmware's end-to-end vector (`firmware/vectors/`): the tiny model quantized (every
/// op kind), one input image (f32, little-endian) and every op's int8 output on the host
/// engine. The Cortex-M harness (`cargo run --release --bin engine` in `firmware/`) must
/// reproduce them bit for bit; this test keeps the stored outputs equal to what every host
/// kernel set computes. `FER_WRITE_VECTORS=1 cargo test -p fer-runtime --lib
/// firmware_vector` rewrites the files (after a format change).
#[test]
fn firmware_vector_matches_the_host_engine() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/vectors");
    if std::env::var_os("FER_WRITE_VECTORS").is_some() {
        let q = quantize(&tiny_model(), &images(8), Method::MinMax).unwrap();
        let img = &images(11)[10];
        let buf = AlignedBytes::new(&q.fer);
        let engine = Engine::new(Model::new(buf.as_slice()).unwrap(), &kernels::reference::Reference);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tiny.fer"), &q.fer).unwrap();
        let input: Vec<u8> = img.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.join("tiny.input.f32"), input).unwrap();
        std::fs::write(dir.join("tiny.outputs.i8"), op_outputs(&engine, img)).unwrap();
    }
    let read = |name: &str| {
        std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()))
    };
    let (fer, input, want) = (read("tiny.fer"), read("tiny.input.f32"), read("tiny.outputs.i8"));
    let img: Vec<f32> = input.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let buf = AlignedBytes::new(&fer);
    for k in kernels::available_for(127) {
        let engine = Engine::new(Model::new(buf.as_slice()).unwrap(), k);
        assert_eq!(
            op_outputs(&engine, &img),
            want,
            "{}: the firmware vector's outputs (rewrite them with FER_WRITE_VECTORS=1)",
            k.name()
        );
    }
}

/// A residual shortcut that lives across two convs: the arena planner may lay the im2col
/// scratch over dead maps only, never over the shortcut.
fn shortcut_over_convs() -> Vec<u8> {
    let pads = || vec![attr_ints("pads", &[1, 1, 1, 1])];
    let nodes = vec![
        node("Conv", "stem", &["x", "w0"], &["a"], pads()),
        node("Relu", "r0", &["a"], &["ar"], vec![]),
        node("Conv", "c1", &["ar", "w1"], &["b"], pads()),
        node("Relu", "r1", &["b"], &["br"], vec![]),
        node("Conv", "c2", &["br", "w2"], &["c"], pads()),
        node("Add", "res", &["c", "ar"], &["s"], vec![]),
        node("GlobalAveragePool", "gap", &["s"], &["g"], vec![]),
        node("Flatten", "flat", &["g"], &["f"], vec![]),
        node("Gemm", "fc", &["f", "fw", "fb"], &["y"], vec![attr_i("transB", 1)]),
    ];
    let init = vec![
        f32s("w0", &[6, 1, 3, 3], ramp(54, 0.2, 0)),
        f32s("w1", &[6, 6, 3, 3], ramp(324, 0.05, 1)),
        f32s("w2", &[6, 6, 3, 3], ramp(324, 0.05, 2)),
        f32s("fw", &[3, 6], ramp(18, 0.3, 4)),
        f32s("fb", &[3], vec![0.1, 0.0, -0.1]),
    ];
    model(nodes, init, [1, 8, 8], "y")
}

/// Checks a written model's arena plan: values whose lifetimes overlap never share bytes,
/// and the scratch never lies over a value that is live during an op that uses it.
fn assert_arena_plan_is_safe(fer: &[u8]) {
    let buf = AlignedBytes::new(fer);
    let m = Model::new(buf.as_slice()).unwrap();
    let n_ops = m.header.n_ops;
    let n = m.header.n_values;
    let (mut first, mut last) = (vec![0usize; n], vec![0usize; n]);
    for i in 0..n_ops {
        let op = m.op(i as u16).unwrap();
        let o = op.output as usize;
        first[o] = i + 1;
        last[o] = last[o].max(i + 1);
        for &v in op.inputs.iter().filter(|&&v| v != u16::MAX) {
            last[v as usize] = last[v as usize].max(i + 1);
        }
    }
    for k in 0..m.header.n_outputs {
        last[m.output_id(k).unwrap() as usize] = usize::MAX;
    }
    let bytes = |v: usize| {
        let x = m.value(v as u16);
        x.offset..x.offset + x.len()
    };
    let meet = |a: &std::ops::Range<usize>, b: &std::ops::Range<usize>| a.start < b.end && b.start < a.end;
    for a in 0..n {
        for b in a + 1..n {
            let live_together = first[a] <= last[b] && first[b] <= last[a];
            assert!(!(live_together && meet(&bytes(a), &bytes(b))), "values {a} and {b} share bytes");
        }
    }
    let s = m.header.scratch_off..m.header.scratch_off + m.header.scratch_len;
    for i in 0..n_ops {
        let op = m.op(i as u16).unwrap();
        let gathers = match op.code {
            crate::format::OpCode::Conv => true,
            crate::format::OpCode::Dense => !m.value(op.inputs[0]).len().is_multiple_of(4),
            _ => false,
        };
        if !gathers {
            continue;
        }
        for v in (0..n).filter(|&v| first[v] <= i + 1 && i < last[v]) {
            assert!(!meet(&s, &bytes(v)), "op {i} gathers into the scratch over live value {v}");
        }
    }
}

#[test]
fn the_arena_plan_keeps_live_values_apart_and_off_the_scratch() {
    let detector_images: Vec<Vec<f32>> = (0..8).map(|k| ramp(18, 0.3, k)).collect();
    for (name, onnx, imgs) in [
        ("tiny", tiny_model(), images(8)),
        ("detector", detector_style(), detector_images),
        ("shortcut", shortcut_over_convs(), images(8)),
    ] {
        let q = quantize(&onnx, &imgs, Method::MinMax).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_arena_plan_is_safe(&q.fer);
    }
    // The shortcut model still computes what float does (the scratch spares the shortcut).
    let onnx = shortcut_over_convs();
    let q = quantize(&onnx, &images(16), Method::MinMax).unwrap();
    assert!(q.report.top1_agreement >= 0.9, "top-1 agreement {}", q.report.top1_agreement);
}

/// `Model::label` (what the firmware reads, without an allocator) gives the quantizer's
/// class names in order, and nothing past them.
#[test]
fn labels_read_without_an_allocator_match_the_written_ones() {
    let q = quantize(&tiny_model(), &images(8), Method::MinMax).unwrap();
    let buf = AlignedBytes::new(&q.fer);
    let m = Model::new(buf.as_slice()).unwrap();
    assert!(!q.model.labels.is_empty());
    for (k, name) in q.model.labels.iter().enumerate() {
        assert_eq!(m.label(k), Some(name.as_str()));
    }
    assert_eq!(m.label(q.model.labels.len()), None);
}

fn ranges(r: &[(String, f32, f32)]) -> super::Options<'_> {
    super::Options { output_ranges: r, ..Default::default() }
}

/// `--output-range`: the output and the values its Concat joins take the given range; an
/// unknown output or a range without 0 is refused with the outputs' names.
#[test]
fn an_output_range_set_by_hand_reaches_through_its_concat() {
    let onnx = detector_style();
    let imgs: Vec<Vec<f32>> = (0..8).map(|k| ramp(18, 0.3, k)).collect();
    let q = super::quantize_with(&onnx, &imgs, &ranges(&[("both".into(), -2.0, 2.0)])).unwrap();
    let (_, out) = q.model.outputs.iter().find(|(n, _)| n == "both").unwrap().clone();
    let step = 4.0 / 255.0;
    assert!((q.model.values[out].scale - step).abs() < 1e-6, "{}", q.model.values[out].scale);
    let join = q.model.layers.iter().find(|l| l.output == out).unwrap();
    for &v in &join.inputs {
        assert!((q.model.values[v].scale - step).abs() < 1e-6, "a joined value keeps its own range");
    }
    let e = super::quantize_with(&onnx, &imgs, &ranges(&[("scores".into(), -2.0, 2.0)])).err().unwrap();
    assert!(e.0.contains("both") && e.0.contains("y2"), "{e}");
    assert!(super::quantize_with(&onnx, &imgs, &ranges(&[("both".into(), 1.0, 2.0)])).is_err());
}

/// The requantization of Add and PReLU at the limits the loader accepts (the first fuzzing
/// campaign found an i32 overflow there; its crash file is a version-1 file now, refused
/// before it reaches the engine): extreme multipliers and shifts load, run on every kernel
/// set without a panic and saturate.
#[test]
fn add_and_prelu_at_their_limits_saturate_without_overflow() {
    let q = quantize(&tiny_model(), &images(8), Method::MinMax).unwrap();
    let limit = crate::kernels::PRELU_MULT_LIMIT - 1;
    for (add_mult, add_shift, prelu_mult, prelu_shift) in [
        (i32::MAX, 1u8, limit, 1u8),
        (i32::MIN, 1, -limit, 1),
        (i32::MAX, 62, limit, 30),
        (i32::MIN, 62, -limit, 30),
    ] {
        let mut m = q.model.clone();
        for l in &mut m.layers {
            match l.code {
                crate::format::OpCode::Add => (l.mult, l.shift) = (vec![add_mult, add_mult], vec![add_shift]),
                crate::format::OpCode::PRelu => {
                    l.mult.iter_mut().for_each(|v| *v = prelu_mult);
                    l.shift = vec![prelu_shift];
                }
                _ => {}
            }
        }
        let fer = super::write::write(&m).unwrap();
        let buf = AlignedBytes::new(&fer);
        for k in kernels::available_for(127) {
            let engine = Engine::new(Model::new(buf.as_slice()).unwrap(), k);
            let mut arena = vec![0u8; engine.arena_size()];
            for img in images(4) {
                let out = engine.infer(&mut arena, &img).unwrap();
                assert!(out.iter().all(|v| v.is_finite()));
            }
        }
    }
}

/// A detector's shape of graph: channel Pad, residual Add, heads transposed to channels-last
/// and reshaped (free in the arena's layout), joined by Concat, two outputs. Int8 follows
/// float on both outputs, on every kernel set, in the float model's element order.
#[test]
fn pad_concat_layout_ops_and_two_outputs_follow_float() {
    let onnx = detector_style();
    let imgs: Vec<Vec<f32>> = (0..16).map(|k| ramp(18, 0.3, k)).collect();
    let q = quantize(&onnx, &imgs, Method::MinMax).unwrap();
    let codes: Vec<_> = q.model.layers.iter().map(|l| std::format!("{:?}", l.code)).collect();
    assert_eq!(
        codes,
        ["Pad", "Conv", "Add", "PRelu", "Concat", "PRelu", "Flatten"],
        "Transpose and Reshape cost nothing; the ReLUs that fuse with nothing are PReLUs; the \
         map output y2 is flattened into the float model's [C, H, W] order"
    );
    assert_eq!(q.report.outputs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["both", "y2"]);
    let g = read_onnx(&onnx).unwrap();
    let buf = AlignedBytes::new(&q.fer);
    for k in kernels::available_for(127) {
        let engine = Engine::new(Model::new(buf.as_slice()).unwrap(), k);
        assert_eq!(engine.outputs(), 2);
        let mut arena = vec![0u8; engine.arena_size()];
        for img in &imgs[..6] {
            let f = eval::run_outputs(&g, img).unwrap();
            let mut i = Vec::new();
            engine.infer_into(&mut arena, img, &mut i).unwrap();
            for (o, (fo, io)) in f.iter().zip(&i).enumerate() {
                let step = engine.output_at(o).unwrap().scale;
                assert_eq!(fo.len(), io.len());
                for (a, b) in fo.iter().zip(io) {
                    assert!(
                        (a - b).abs() <= 3.0 * step,
                        "{}: output {o}: float {fo:?} int8 {io:?}",
                        k.name()
                    );
                }
            }
        }
    }
}

/// A conv as exporters leave them: output channel 1 has near-zero weights under a real bias
/// (its natural weight scale puts the bias at ~10^12 steps), channel 2 has no weights at all.
/// Both quantize, as ONNX Runtime and TFLite would, and int8 follows float.
#[test]
fn a_bias_over_near_zero_weights_widens_that_channels_scale() {
    let mut w = ramp(9, 0.2, 0);
    w.extend(ramp(9, 1e-9, 1));
    w.extend([0.0; 9]);
    let nodes = vec![node("Conv", "conv", &["x", "w", "b"], &["y"], vec![attr_ints("pads", &[1, 1, 1, 1])])];
    let init = vec![f32s("w", &[3, 1, 3, 3], w), f32s("b", &[3], vec![0.1, 0.5, -0.3])];
    let onnx = model(nodes, init, [1, 8, 8], "y");
    let q = quantize(&onnx, &images(16), Method::MinMax).unwrap();
    let conv = &q.report.per_layer[0];
    assert_eq!(conv.bias_widened_channels, [1], "only the near-zero channel needed widening");
    let layer = &q.model.layers[0];
    assert!(layer.bias.iter().all(|b| b.unsigned_abs() <= 1 << 30), "{:?}", layer.bias);
    let g = read_onnx(&onnx).unwrap();
    let buf = AlignedBytes::new(&q.fer);
    for k in kernels::available_for(127) {
        let engine = Engine::new(Model::new(buf.as_slice()).unwrap(), k);
        let mut arena = vec![0u8; engine.arena_size()];
        let step = engine.output().scale;
        for img in images(4) {
            let f = eval::run(&g, &img).unwrap();
            let i = engine.infer(&mut arena, &img).unwrap();
            for (a, b) in f.iter().zip(&i) {
                assert!((a - b).abs() <= 1.5 * step, "{}: float {a} int8 {b} (step {step})", k.name());
            }
        }
    }
}

/// Sigmoid, Tanh, HardSigmoid and HardSwish become 256-entry tables, on maps and on
/// row-major bytes alike (a detector's score head is sigmoid of reshaped logits). Each
/// output is within half its own step of float, plus what the conv's int8 error moves the
/// function by (its slope times the conv's error, at most 1.5 conv steps here).
#[test]
fn element_wise_functions_are_tables_that_follow_float() {
    use prost::Message;
    let nodes = vec![
        node("Conv", "conv", &["x", "w"], &["c"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
        node("Sigmoid", "sigmoid", &["c"], &["sg"], vec![]),
        node("Tanh", "tanh", &["c"], &["th"], vec![]),
        node("HardSigmoid", "hsig", &["c"], &["hs"], vec![attr_f("alpha", 0.3), attr_f("beta", 0.4)]),
        node("HardSwish", "hswish", &["c"], &["hw"], vec![]),
        node("Transpose", "nhwc", &["c"], &["cl"], vec![attr_ints("perm", &[0, 2, 3, 1])]),
        node("Reshape", "rows", &["cl", "rows_shape"], &["r"], vec![]),
        node("Sigmoid", "scores", &["r"], &["s"], vec![]),
    ];
    let init = vec![f32s("w", &[4, 2, 3, 3], ramp(72, 0.2, 3)), i64s("rows_shape", &[1, -1, 1])];
    let mut m = crate::onnx::proto::ModelProto::decode(&model(nodes, init, [2, 3, 3], "sg")[..]).unwrap();
    for out in ["th", "hs", "hw", "s"] {
        m.graph.as_mut().unwrap().output.push(value(out, &[None]));
    }
    let onnx = m.encode_to_vec();
    let slopes = [0.25, 1.0, 0.3, 1.5, 0.25];
    let imgs: Vec<Vec<f32>> = (0..16).map(|k| ramp(18, 0.4, k)).collect();
    let q = quantize(&onnx, &imgs, Method::MinMax).unwrap();
    let codes: Vec<_> = q.model.layers.iter().map(|l| std::format!("{:?}", l.code)).collect();
    assert_eq!(codes.iter().filter(|c| *c == "Lut").count(), 5, "{codes:?}");
    let conv_step = q.model.values[q.model.layers[0].output].scale;
    let g = read_onnx(&onnx).unwrap();
    let buf = AlignedBytes::new(&q.fer);
    for k in kernels::available_for(127) {
        let engine = Engine::new(Model::new(buf.as_slice()).unwrap(), k);
        let mut arena = vec![0u8; engine.arena_size()];
        for img in &imgs {
            let f = eval::run_outputs(&g, img).unwrap();
            let mut i = Vec::new();
            engine.infer_into(&mut arena, img, &mut i).unwrap();
            for (o, (fo, io)) in f.iter().zip(&i).enumerate() {
                let tol = 0.5 * engine.output_at(o).unwrap().scale + slopes[o] * 1.5 * conv_step;
                for (a, b) in fo.iter().zip(io) {
                    assert!((a - b).abs() <= tol, "{}: output {o}: float {fo:?} int8 {io:?}", k.name());
                }
            }
        }
    }
    // ONNX Runtime runs the QDQ twin's float functions between Dequantize and Quantize: the
    // tables agree with it op by op.
    assert_onnx_runtime_agrees(&q, &imgs[..4]);
    // A table of another length is refused at load (header bytes 24..28: where the ops
    // start; an op's bytes 28..32: its table's length).
    let lut = q.model.layers.iter().position(|l| l.code == crate::format::OpCode::Lut).unwrap();
    let mut bad = q.fer.clone();
    let op_at = u32::from_le_bytes(bad[24..28].try_into().unwrap()) as usize + lut * crate::format::OP_LEN;
    bad[op_at + 28] = 255;
    assert!(Model::new_unchecked_crc(AlignedBytes::new(&bad).as_slice()).is_err());
}

/// Builds without ONNX Runtime (`--no-default-features`, the aarch64 and Cortex-M checks)
/// skip the comparisons with it.
#[cfg(not(feature = "ort"))]
fn assert_onnx_runtime_agrees(_: &super::Quantized, _: &[Vec<f32>]) {}

/// The engine against ONNX Runtime on `q`'s QDQ twin, op by op, within 1 LSB (where its
/// library is found; CI requires it).
#[cfg(feature = "ort")]
fn assert_onnx_runtime_agrees(q: &super::Quantized, imgs: &[Vec<f32>]) {
    let lib = crate::backends::onnxruntime_library();
    if let Err(e) = lib {
        assert!(!std::env::var("FER_REQUIRE_ONNX_TOOLS").is_ok_and(|v| v == "1"), "{e}");
        std::eprintln!("ONNX Runtime check skipped: {e}");
        return;
    }
    let mut oracle = crate::backends::oracle::TwinOracle::new(&q.model).unwrap();
    let buf = AlignedBytes::new(&q.fer);
    let engine = Engine::new(Model::new(buf.as_slice()).unwrap(), kernels::best());
    for img in imgs {
        let values = oracle.values(img).unwrap();
        for d in super::op_by_op(&engine, &q.model, &values).unwrap() {
            let l = &q.model.layers[d.op];
            assert!(
                d.max_lsb <= 1,
                "op {} `{}` ({:?}): {} LSB from ONNX Runtime",
                d.op,
                l.name,
                l.code,
                d.max_lsb
            );
        }
    }
}

/// Resize by whole factors (nearest), by `scales` or by `sizes`, between convs: int8 follows
/// float, and ONNX Runtime's Resize gives the same bytes. Other modes are named errors.
#[test]
fn nearest_upsampling_by_whole_factors() {
    let resize = |inputs: &[&str], attrs| node("Resize", "up", inputs, &["u"], attrs);
    let build = |up: crate::onnx::proto::NodeProto, extra: Vec<crate::onnx::proto::TensorProto>| {
        let nodes = vec![
            node("Conv", "conv", &["x", "w"], &["c"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
            up,
            node("Conv", "head", &["u", "w2"], &["y"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
        ];
        let mut init =
            vec![f32s("w", &[4, 2, 3, 3], ramp(72, 0.2, 3)), f32s("w2", &[3, 4, 3, 3], ramp(108, 0.1, 5))];
        init.extend(extra);
        model(nodes, init, [2, 3, 3], "y")
    };
    let by_scales =
        build(resize(&["c", "", "scales"], vec![]), vec![f32s("scales", &[4], vec![1.0, 1.0, 2.0, 3.0])]);
    let by_sizes = build(
        resize(
            &["c", "", "", "sizes"],
            vec![attr_s("coordinate_transformation_mode", "asymmetric"), attr_s("nearest_mode", "floor")],
        ),
        vec![i64s("sizes", &[1, 4, 6, 9])],
    );
    let imgs: Vec<Vec<f32>> = (0..12).map(|k| ramp(18, 0.4, k)).collect();
    for onnx in [by_scales, by_sizes] {
        let g = read_onnx(&onnx).unwrap();
        assert_eq!(g.shape(2), [4, 6, 9]);
        // Output pixel (y, x) is input pixel (y / 2, x / 3).
        let all = eval::run_all(&g, &imgs[0]).unwrap();
        assert_eq!(all[2][(6 + 5) * 9 + 7], all[1][(3 + 2) * 3 + 2]);
        let q = quantize(&onnx, &imgs, Method::MinMax).unwrap();
        let codes: Vec<_> = q.model.layers.iter().map(|l| std::format!("{:?}", l.code)).collect();
        assert_eq!(codes, ["Conv", "Upsample", "Conv", "Flatten"]);
        assert_int8_within(&q, &g, &imgs, 3.0 * q.model.values[q.model.output].scale, "nearest");
        assert_onnx_runtime_agrees(&q, &imgs[..3]);
    }
    for (attrs, scales, want) in [
        (vec![attr_s("mode", "cubic")], vec![1.0, 1.0, 2.0, 2.0], "nearest, linear"),
        (
            vec![attr_s("coordinate_transformation_mode", "align_corners")],
            vec![1.0, 1.0, 2.0, 2.0],
            "align_corners",
        ),
        (vec![], vec![1.0, 1.0, 1.5, 2.0], "whole upsampling factors"),
    ] {
        let onnx = build(resize(&["c", "", "scales"], attrs), vec![f32s("scales", &[4], scales)]);
        let e = read_onnx(&onnx).unwrap_err().0;
        assert!(e.contains("node `up` (Resize)") && e.contains(want), "{e}");
    }
}

/// The largest |float - int8| of `q` over `imgs`, on kernel set `k`.
fn int8_error(
    q: &super::Quantized,
    g: &crate::onnx::FloatGraph,
    imgs: &[Vec<f32>],
    k: &'static dyn kernels::Kernels,
) -> f32 {
    let buf = AlignedBytes::new(&q.fer);
    let engine = Engine::new(Model::new(buf.as_slice()).unwrap(), k);
    let mut arena = vec![0u8; engine.arena_size()];
    imgs.iter()
        .map(|img| super::compare(&eval::run(g, img).unwrap(), &engine.infer(&mut arena, img).unwrap()).0)
        .fold(0f32, f32::max)
}

/// int8 within `bound` of float on every kernel set this machine has.
fn assert_int8_within(
    q: &super::Quantized,
    g: &crate::onnx::FloatGraph,
    imgs: &[Vec<f32>],
    bound: f32,
    what: &str,
) {
    for k in kernels::available_for(127) {
        let d = int8_error(q, g, imgs, k);
        assert!(d <= bound, "{what}, {}: int8 {d} from float (bound {bound})", k.name());
    }
}

/// The f32 evaluator against ONNX Runtime on the float model itself, within `tolerance`
/// (where ONNX Runtime is found; `assert_onnx_runtime_agrees` requires it in CI).
fn assert_evaluator_matches_onnx_runtime(onnx: &[u8], imgs: &[Vec<f32>], tolerance: f32, what: &str) {
    let g = read_onnx(onnx).unwrap();
    let [c, h, w] = g.input_shape;
    for img in imgs {
        let Some(theirs) = onnx_runtime_float(onnx, img, [1, c, h, w]) else { return };
        let (d, _) = super::compare(&eval::run(&g, img).unwrap(), &theirs);
        assert!(d < tolerance, "{what}: f32 evaluator {d} from ONNX Runtime");
    }
}

#[cfg(not(feature = "ort"))]
fn onnx_runtime_float(_: &[u8], _: &[f32], _: [usize; 4]) -> Option<Vec<f32>> {
    None
}

/// ONNX Runtime on a float model (input `x`, output `y`), where its library is found.
#[cfg(feature = "ort")]
fn onnx_runtime_float(onnx: &[u8], img: &[f32], dims: [usize; 4]) -> Option<Vec<f32>> {
    crate::backends::onnxruntime_library().ok()?;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("float.onnx");
    std::fs::write(&path, onnx).unwrap();
    let mut session = crate::backends::Ort::session(&path).unwrap();
    let input = ort::value::Tensor::from_array((dims, img.to_vec())).unwrap();
    let out = session.run(ort::inputs!["x" => input]).unwrap();
    Some(out["y"].try_extract_tensor::<f32>().unwrap().1.to_vec())
}

/// Resize `linear` by whole factors (half_pixel as PyTorch and TensorFlow 2 upsample, and
/// asymmetric) becomes op code 14, bilinear in integers; opset-10 Resize (scales as the
/// second of two inputs) reads `o / f`, nearest floored. For each: the f32 evaluator
/// equals ONNX Runtime on the float model, int8 follows float, and the engine equals
/// ONNX Runtime on the QDQ twin op by op.
#[test]
fn bilinear_and_opset_10_resize_follow_float_and_onnx_runtime() {
    use prost::Message;
    let build = |up: crate::onnx::proto::NodeProto, scales: Vec<f32>, opset: i64| {
        let nodes = vec![
            node("Conv", "conv", &["x", "w"], &["c"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
            up,
            node("Conv", "head", &["u", "w2"], &["y"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
        ];
        let init = vec![
            f32s("w", &[4, 2, 3, 3], ramp(72, 0.2, 3)),
            f32s("w2", &[3, 4, 3, 3], ramp(108, 0.1, 5)),
            f32s("scales", &[4], scales),
        ];
        let mut m =
            crate::onnx::proto::ModelProto::decode(model(nodes, init, [2, 3, 3], "y").as_slice()).unwrap();
        m.opset_import[0].version = opset;
        m.encode_to_vec()
    };
    let linear = attr_s("mode", "linear");
    let up = |inputs: &[&str], attrs| node("Resize", "up", inputs, &["u"], attrs);
    let cases = [
        ("half_pixel", up(&["c", "", "scales"], vec![linear.clone()]), [2.0, 3.0], 18, "UpsampleLinear"),
        (
            "asymmetric",
            up(
                &["c", "", "scales"],
                vec![linear.clone(), attr_s("coordinate_transformation_mode", "asymmetric")],
            ),
            [2.0, 2.0],
            18,
            "UpsampleLinear",
        ),
        ("Resize-10 nearest", up(&["c", "scales"], vec![]), [4.0, 3.0], 10, "Upsample"),
        ("Resize-10 linear", up(&["c", "scales"], vec![linear.clone()]), [2.0, 3.0], 10, "UpsampleLinear"),
    ];
    let imgs: Vec<Vec<f32>> = (0..12).map(|k| ramp(18, 0.4, k)).collect();
    for (what, node, [fy, fx], opset, code) in cases {
        let onnx = build(node, vec![1.0, 1.0, fy, fx], opset);
        let g = read_onnx(&onnx).unwrap();
        assert_evaluator_matches_onnx_runtime(&onnx, &imgs[..3], 1e-4, what);
        let q = quantize(&onnx, &imgs, Method::MinMax).unwrap();
        let codes: Vec<_> = q.model.layers.iter().map(|l| std::format!("{:?}", l.code)).collect();
        assert_eq!(codes[1], code, "{what}");
        assert_int8_within(&q, &g, &imgs, 3.0 * q.model.values[q.model.output].scale, what);
        assert_onnx_runtime_agrees(&q, &imgs[..3]);
    }
    let onnx = build(
        up(&["c", "", "scales"], vec![linear, attr_s("coordinate_transformation_mode", "align_corners")]),
        vec![1.0, 1.0, 2.0, 2.0],
        18,
    );
    let e = read_onnx(&onnx).unwrap_err().0;
    assert!(e.contains("node `up` (Resize)") && e.contains("align_corners"), "{e}");
}

/// Softmax inside a model is an int8 op (code 15) over runs of the engine's bytes: the last
/// axis of a reshaped head (`[1, 9, 4]`, as a detector's per-anchor classes) and a map's
/// channels. The f32 evaluator equals ONNX Runtime on the float model, int8 follows float
/// within 2 steps of 1/256, and the engine equals ONNX Runtime on the QDQ twin op by op.
/// Softmax over spatial axes, or opset 11's flattening one over a map, is refused.
#[test]
fn softmax_over_an_inner_axis_runs_in_int8() {
    use prost::Message;
    let conv = || node("Conv", "conv", &["x", "w"], &["c"], vec![attr_ints("pads", &[1, 1, 1, 1])]);
    let with_opset = |m: Vec<u8>, opset: i64| {
        let mut m = crate::onnx::proto::ModelProto::decode(m.as_slice()).unwrap();
        m.opset_import[0].version = opset;
        m.encode_to_vec()
    };
    let w = || f32s("w", &[4, 2, 3, 3], ramp(72, 0.3, 3));
    let head = model(
        vec![
            conv(),
            node("Transpose", "t", &["c"], &["t"], vec![attr_ints("perm", &[0, 2, 3, 1])]),
            node("Reshape", "r", &["t", "shape"], &["r"], vec![]),
            node("Softmax", "soft", &["r"], &["y"], vec![attr_i("axis", -1)]),
        ],
        vec![w(), i64s("shape", &[1, 9, 4])],
        [2, 3, 3],
        "y",
    );
    let channels = model(
        vec![
            conv(),
            node("Softmax", "soft", &["c"], &["s"], vec![attr_i("axis", 1)]),
            node("Conv", "head", &["s", "w2"], &["y"], vec![]),
        ],
        vec![w(), f32s("w2", &[3, 4, 1, 1], ramp(12, 0.5, 1))], // `rows` below
        [2, 3, 3],
        "y",
    );
    let imgs: Vec<Vec<f32>> = (0..12).map(|k| ramp(18, 0.4, k)).collect();
    for (what, onnx) in [("head", head), ("channels", channels)] {
        let g = read_onnx(&onnx).unwrap();
        assert_evaluator_matches_onnx_runtime(&onnx, &imgs[..3], 1e-5, what);
        let q = quantize(&onnx, &imgs, Method::MinMax).unwrap();
        assert!(q.model.layers.iter().any(|l| l.code == crate::format::OpCode::Softmax), "{what}");
        assert!(!q.model.softmax, "{what}: not the classifier's final softmax");
        // A logit off by half its step moves a probability by at most a quarter of that,
        // twice (its own and the run's others); the output rounds to 1/256 on top.
        let soft = q.model.layers.iter().find(|l| l.code == crate::format::OpCode::Softmax).unwrap();
        let bound = 0.5 * q.model.values[soft.inputs[0]].scale + 1.5 / 256.0;
        // Behind the 1x1 head, the probabilities' error is weighted by its rows.
        let rows = ramp(12, 0.5, 1);
        let gain = rows.chunks(4).map(|r| r.iter().map(|w| w.abs()).sum::<f32>()).fold(0.0, f32::max);
        let bound = if what == "head" { bound } else { gain * bound + q.model.values[q.model.output].scale };
        assert_int8_within(&q, &g, &imgs, bound, what);
        assert_onnx_runtime_agrees(&q, &imgs[..3]);
    }
    let spatial = model(
        vec![conv(), node("Softmax", "soft", &["c"], &["y"], vec![attr_i("axis", 2)])],
        vec![w()],
        [2, 3, 3],
        "y",
    );
    let e = super::quantize(&spatial, &imgs, Method::MinMax).err().unwrap().0;
    assert!(e.contains("soft") && e.contains("needs a copy"), "{e}");
    let old = with_opset(
        model(
            vec![conv(), node("Softmax", "soft", &["c"], &["y"], vec![attr_i("axis", 1)])],
            vec![w()],
            [2, 3, 3],
            "y",
        ),
        11,
    );
    let e = read_onnx(&old).unwrap_err().0;
    assert!(e.contains("node `soft` (Softmax)") && e.contains("flattened"), "{e}");
}

/// A per-channel input map (PyTorch's `Normalize(mean, std)`) travels in the `.fer` and the
/// QDQ twin's metadata; `Own::infer`, fed pixels / 255, maps each channel as the float
/// model was fed. One pair per channel or one for all; any other count is refused.
#[test]
fn a_per_channel_input_map_travels_with_the_model() {
    use crate::backends::{Backend, Own};
    let nodes = vec![node("Conv", "conv", &["x", "w"], &["y"], vec![attr_ints("pads", &[1, 1, 1, 1])])];
    let onnx = model(nodes, vec![f32s("w", &[4, 3, 3, 3], ramp(108, 0.2, 1))], [3, 4, 4], "y");
    let map =
        [(1.0 / (255.0 * 0.229), -0.485 / 0.229), (1.0 / (255.0 * 0.224), -0.456 / 0.224), (0.01, -1.0)];
    let pixels: Vec<Vec<f32>> =
        (0..8).map(|k| (0..48).map(|i| ((i * 37 + k * 11) % 256) as f32 / 255.0).collect()).collect();
    let apply = |img: &[f32]| -> Vec<f32> {
        img.chunks(16).zip(&map).flat_map(|(c, &(s, o))| c.iter().map(move |&v| v * 255.0 * s + o)).collect()
    };
    let imgs: Vec<Vec<f32>> = pixels.iter().map(|p| apply(p)).collect();
    let q =
        super::quantize_with(&onnx, &imgs, &super::Options { input_map: Some(&map), ..Default::default() })
            .unwrap();
    let buf = AlignedBytes::new(&q.fer);
    let m = Model::new(buf.as_slice()).unwrap();
    assert_eq!(m.input_map_len(), 3);
    assert_eq!((0..3).map(|k| m.input_map_at(k)).collect::<Vec<_>>(), map);
    let engine = Engine::new(m, kernels::best());
    let mut arena = vec![0u8; engine.arena_size()];
    let mut own = Own::from_bytes(&q.fer, None).unwrap();
    for (p, x) in pixels.iter().zip(&imgs) {
        assert_eq!(own.infer(p).unwrap(), engine.infer(&mut arena, x).unwrap());
    }
    // A count that is neither 1 nor the input's channels is refused at load.
    let mut pattern = 3u32.to_le_bytes().to_vec();
    pattern.extend(map[0].0.to_le_bytes());
    let at = q.fer.windows(8).position(|w| w == pattern).unwrap();
    let mut bad = q.fer.clone();
    bad[at] = 2;
    assert_eq!(
        Model::new_unchecked_crc(AlignedBytes::new(&bad).as_slice()).unwrap_err(),
        FormatError::BadSection("input map")
    );
    let twin = read_qdq_metadata(&q.qdq);
    assert_eq!(crate::onnx::graph::metadata_input_map(&twin).unwrap().unwrap(), map);
    let e = super::quantize_with(
        &onnx,
        &imgs,
        &super::Options { input_map: Some(&map[..2]), ..Default::default() },
    )
    .err()
    .unwrap()
    .0;
    assert!(e.contains("2 (scale, offset) pairs") && e.contains("3 channels"), "{e}");
    // A model without a map reads as pixel / 255.
    let plain = quantize(&onnx, &imgs, Method::MinMax).unwrap();
    let m = Model::new(AlignedBytes::new(&plain.fer).as_slice()).unwrap().input_map_at(0);
    assert_eq!(m, crate::format::DEFAULT_INPUT_MAP);
}

fn read_qdq_metadata(qdq: &[u8]) -> Vec<(std::string::String, std::string::String)> {
    use prost::Message;
    let m = crate::onnx::proto::ModelProto::decode(qdq).unwrap();
    m.metadata_props.iter().map(|e| (e.key.clone(), e.value.clone())).collect()
}

/// `--equalize`: a depthwise conv whose channels' ranges differ 50x feeds a pointwise one.
/// Each pair's channels are rescaled (the float function is the same), the depthwise
/// output's range shrinks, and int8 follows float closer than without; ONNX Runtime runs
/// the equalized twin op for op.
#[test]
fn equalizing_a_conv_pair_evens_its_channels_and_keeps_the_function() {
    let mut dw = ramp(18, 0.1, 2);
    dw.extend(ramp(9, 5.0, 4));
    let nodes = vec![
        node("Conv", "stem", &["x", "w1", "b1"], &["c1"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
        node("Relu", "relu", &["c1"], &["r1"], vec![]),
        node(
            "Conv",
            "dw",
            &["r1", "w2", "b2"],
            &["c2"],
            vec![attr_ints("pads", &[1, 1, 1, 1]), attr_i("group", 3)],
        ),
        node("Conv", "pw", &["c2", "w3", "b3"], &["y"], vec![]),
    ];
    let init = vec![
        f32s("w1", &[3, 1, 3, 3], ramp(27, 0.2, 0)),
        f32s("b1", &[3], vec![0.1, -0.1, 0.2]),
        f32s("w2", &[3, 1, 3, 3], dw),
        f32s("b2", &[3], vec![0.05, 0.0, -1.0]),
        f32s("w3", &[2, 3, 1, 1], vec![0.8, -0.5, 0.02, -0.3, 0.9, 0.01]),
        f32s("b3", &[2], vec![0.0, 0.1]),
    ];
    let onnx = model(nodes, init, [1, 8, 8], "y");
    let imgs = images(16);
    let plain = quantize(&onnx, &imgs, Method::MinMax).unwrap();
    let q =
        super::quantize_with(&onnx, &imgs, &super::Options { equalize: true, ..Default::default() }).unwrap();
    let range = |name: &str| q.report.per_layer.iter().find(|l| l.name == name).unwrap().equalized_range;
    let [before, after] = range("dw").expect("dw feeds pw alone: a pair");
    assert!(after < before / 3.0, "the depthwise output's range: {before} -> {after}");
    assert!(range("stem").is_some(), "stem's ReLU output feeds dw alone: a pair too");
    assert!(range("pw").is_none(), "pw is the output");
    let g = read_onnx(&onnx).unwrap();
    let worst = |q: &super::Quantized| int8_error(q, &g, &imgs, kernels::best());
    let (w_plain, w_eq) = (worst(&plain), worst(&q));
    // Measured: 0.71 plain (45 output steps), 0.055 equalized (3.5 steps).
    let step = q.model.values[q.model.output].scale;
    assert!(w_eq < w_plain / 5.0 && w_eq <= 5.0 * step, "int8 - float: {w_plain} plain, {w_eq} equalized");
    assert_onnx_runtime_agrees(&q, &imgs[..4]);
}

/// `--split-weights`: a 1x1 head whose weights mix one large value per channel with small
/// ones, its output range set to [-2, 2] by hand (BlazeFace's score head: weights up to
/// 38 beside a median under 1, logits kept to [-8, 8]). Split, the float function is the
/// same, the head's weights quantize about 254x finer, and int8 follows float closer
/// within that range; a ReLU layer split keeps its error. ONNX Runtime runs the split twin op
/// for op; names that are not weighted layers are refused with the layers there are.
#[test]
fn splitting_a_layers_weights_keeps_its_function_and_cuts_its_error() {
    let mut head = ramp(96, 0.05, 1);
    for (o, big) in [(0, 6.0), (40, -5.0), (70, 7.0)] {
        head[o] = big;
    }
    // 32 features of 1x1 (a head reads many channels), a layer with a ReLU before it.
    let nodes = vec![
        node("Conv", "stem", &["x", "w1", "b1"], &["c1"], vec![]),
        node("Relu", "relu", &["c1"], &["r1"], vec![]),
        node("Conv", "head", &["r1", "w2", "b2"], &["y"], vec![]),
    ];
    let init = vec![
        f32s("w1", &[32, 32, 1, 1], ramp(1024, 0.1, 0)),
        f32s("b1", &[32], ramp(32, 0.05, 3)),
        f32s("w2", &[3, 32, 1, 1], head),
        f32s("b2", &[3], vec![0.1, -0.2, 0.0]),
    ];
    let onnx = model(nodes, init, [32, 1, 1], "y");
    let imgs: Vec<Vec<f32>> =
        (0..64).map(|k| (0..32).map(|i| ((i * (k + 3) + k * 11) % 17) as f32 / 16.0).collect()).collect();
    let g = read_onnx(&onnx).unwrap();
    let names = |v: &[&str]| v.iter().map(|s| std::string::String::from(*s)).collect::<Vec<_>>();

    let mut split = g.clone();
    let s = super::split::split_weights(&mut split, &names(&["head"])).unwrap();
    let layers: Vec<&str> = split.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(layers, ["stem", "relu", "head.hi", "head.lo", "head"]);
    assert_eq!(s, [super::split::Split { hi: 3, add: 5 }]);
    for img in &imgs {
        let (d, _) = super::compare(&eval::run(&g, img).unwrap(), &eval::run(&split, img).unwrap());
        assert!(d < 1e-4, "the split model computes {d} away from the float one");
    }

    let range = [(std::string::String::from("y"), -2.0, 2.0)];
    let with = |layers: &[&str]| {
        let l = names(layers);
        let options = super::Options { split_weights: &l, output_ranges: &range, ..Default::default() };
        super::quantize_with(&onnx, &imgs, &options).unwrap()
    };
    // RMS of int8 - float over the output values within the range, in output steps.
    let rms_steps = |q: &super::Quantized| {
        let buf = AlignedBytes::new(&q.fer);
        let engine = Engine::new(Model::new(buf.as_slice()).unwrap(), kernels::best());
        let mut arena = vec![0u8; engine.arena_size()];
        let (mut sum, mut n) = (0f64, 0usize);
        for img in &imgs {
            let (f, i) = (eval::run(&g, img).unwrap(), engine.infer(&mut arena, img).unwrap());
            for (a, b) in f.iter().zip(&i).filter(|(a, _)| a.abs() < 2.0) {
                sum += ((a - b) as f64).powi(2);
                n += 1;
            }
        }
        (sum / n as f64).sqrt() as f32 / q.model.values[q.model.output].scale
    };
    let (plain, q) = (with(&[]), with(&["head", "head"]));
    let scale =
        |q: &super::Quantized, name: &str| q.report.per_layer.iter().find(|l| l.name == name).unwrap().scale;
    assert_eq!(scale(&q, "head.hi"), scale(&q, "head"), "hi takes the sum's range");
    let (e_plain, e_split) = (rms_steps(&plain), rms_steps(&q));
    eprintln!("int8 - float, RMS in output steps: {e_plain} plain, {e_split} split");
    assert!(e_split < e_plain / 3.0, "int8 - float, RMS in output steps: {e_plain} plain, {e_split} split");
    assert_onnx_runtime_agrees(&q, &imgs[..4]);
    // A layer with a fused ReLU: hi keeps its own negative range, and the error stays.
    let e_relu = rms_steps(&with(&["stem"]));
    eprintln!("with the ReLU layer split: {e_relu}");
    assert!(e_relu <= e_plain * 1.25, "int8 - float: {e_plain} plain, {e_relu} with the ReLU layer split");

    for (bad, want) in
        [("nope", "no such layer; conv and dense layers: [\"stem\", \"head\"]"), ("relu", "a Relu layer")]
    {
        let e = super::split::split_weights(&mut g.clone(), &names(&[bad])).unwrap_err().0;
        assert!(e.contains(&std::format!("--split-weights {bad}: {want}")), "{e}");
    }
}

/// `--weight-bits 7`: every weight within -63..=63 and the file says so; every kernel set
/// that takes such weights (the `vpmaddubsw` AVX2 set among them) gives the reference's
/// bytes; the loader refuses a flagged file with a wider weight, and a 7-bit set is refused
/// on an 8-bit model.
#[test]
fn seven_bit_weights_are_flagged_checked_and_run_on_the_narrow_kernels() {
    let onnx = tiny_model();
    let options = super::Options { weight_bits: 7, ..super::Options::default() };
    let q = super::quantize_with(&onnx, &images(32), &options).unwrap();
    assert!(q.model.layers.iter().flat_map(|l| &l.weights).all(|w| w.unsigned_abs() <= 63));
    assert!(
        q.model.layers.iter().flat_map(|l| &l.weights).any(|w| w.unsigned_abs() == 63),
        "the range is used"
    );
    let buf = AlignedBytes::new(&q.fer);
    let model = Model::new(buf.as_slice()).unwrap();
    assert_eq!(model.weight_limit(), crate::format::WEIGHT_LIMIT_7BIT);
    let narrow = kernels::available_for(64);
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        assert!(narrow.iter().any(|k| k.name() == "avx2-u7"), "the 7-bit set is among them");
    }
    let reference = Engine::new(model, &kernels::reference::Reference);
    let want: Vec<Vec<u8>> = images(8).iter().map(|img| op_outputs(&reference, img)).collect();
    for k in narrow {
        let engine = Engine::new(Model::new(buf.as_slice()).unwrap(), k);
        for (img, want) in images(8).iter().zip(&want) {
            assert_eq!(&op_outputs(&engine, img), want, "{}", k.name());
        }
    }

    // A flagged file whose first conv weight is widened to 100: refused at load.
    let mut bad = q.fer.clone();
    let m = Model::new(buf.as_slice()).unwrap();
    let conv = m.op(0).unwrap();
    bad[m.header.data_offset() + conv.weights.0] = 100;
    let crc = crate::format::checksum(&bad);
    bad[12..16].copy_from_slice(&crc.to_le_bytes());
    let bad = AlignedBytes::new(&bad);
    let e = Model::new(bad.as_slice()).unwrap_err().to_string();
    assert!(e.contains("beyond 7 bits"), "{e}");

    // An 8-bit model on a 7-bit set: refused by name.
    #[cfg(target_arch = "x86_64")]
    if let Some(u7) = kernels::available().into_iter().find(|k| k.name() == "avx2-u7") {
        let eight = quantize(&onnx, &images(32), Method::MinMax).unwrap();
        let e = crate::backends::Own::from_bytes(&eight.fer, Some(u7)).err().unwrap().to_string();
        assert!(e.contains("avx2-u7") && e.contains("--weight-bits 7"), "{e}");
    }
}
