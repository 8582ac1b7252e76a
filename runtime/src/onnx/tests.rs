//! The reader on small hand-built graphs: exporters' spellings, folding, and errors.

use super::proto::{NodeProto, TensorProto};
use super::testutil::*;
use super::{Op, eval, read_onnx};

fn ramp(n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|i| ((i * 7 % 11) as f32 - 5.0) * scale).collect()
}

/// Conv 2 -> 3 channels, stride 2, SAME_UPPER; bias as a separate Add; PReLU as
/// relu(x) - a * relu(-x) with a reshaped slope; global pooling; flatten through shape
/// arithmetic; MatMul + Add.
fn exporter_style() -> Vec<u8> {
    let nodes = vec![
        node(
            "Conv",
            "conv",
            &["x", "w"],
            &["c"],
            vec![attr_ints("strides", &[2, 2]), attr_s("auto_pad", "SAME_UPPER")],
        ),
        node("Add", "bias", &["c", "b"], &["cb"], vec![]),
        node("Reshape", "slope_shape", &["alpha", "alpha_shape"], &["a"], vec![]),
        node("Relu", "pos", &["cb"], &["p"], vec![]),
        node("Neg", "neg", &["cb"], &["n"], vec![]),
        node("Relu", "negrelu", &["n"], &["nr"], vec![]),
        node("Mul", "scale", &["a", "nr"], &["m"], vec![]),
        node("Sub", "prelu", &["p", "m"], &["pr"], vec![]),
        node("GlobalAveragePool", "gap", &["pr"], &["g"], vec![]),
        node("Shape", "shape", &["x"], &["s"], vec![]),
        node("Gather", "batch", &["s", "zero"], &["bdim"], vec![attr_i("axis", 0)]),
        node("Concat", "target", &["bdim", "minus1"], &["t"], vec![attr_i("axis", 0)]),
        node("Reshape", "flatten", &["g", "t"], &["f"], vec![]),
        node("MatMul", "fc", &["f", "fw"], &["y0"], vec![]),
        node("Add", "fc_bias", &["y0", "fb"], &["y"], vec![]),
    ];
    let init = vec![
        f32s("w", &[3, 2, 3, 3], ramp(54, 0.1)),
        f32s("b", &[1, 3, 1, 1], vec![0.5, -0.25, 0.0]),
        f32s("alpha", &[3], vec![0.1, 0.2, 0.3]),
        i64s("alpha_shape", &[3, 1, 1]),
        i64s("zero", &[0]),
        i64s("minus1", &[-1]),
        f32s("fw", &[3, 4], ramp(12, 0.3)),
        f32s("fb", &[4], vec![1.0, 2.0, 3.0, 4.0]),
    ];
    model(nodes, init, [2, 5, 5], "y")
}

/// The same network written plainly: Conv with bias and pads, PRelu, Flatten, Gemm.
fn plain_style() -> Vec<u8> {
    let fw = ramp(12, 0.3);
    let mut fwt = vec![0f32; 12];
    for k in 0..3 {
        for n in 0..4 {
            fwt[n * 3 + k] = fw[k * 4 + n];
        }
    }
    let nodes = vec![
        node(
            "Conv",
            "conv",
            &["x", "w", "b"],
            &["c"],
            vec![attr_ints("strides", &[2, 2]), attr_ints("pads", &[1, 1, 1, 1])],
        ),
        node("PRelu", "prelu", &["c", "alpha"], &["pr"], vec![]),
        node("GlobalAveragePool", "gap", &["pr"], &["g"], vec![]),
        node("Flatten", "flatten", &["g"], &["f"], vec![attr_i("axis", 1)]),
        node("Gemm", "fc", &["f", "fw", "fb"], &["y"], vec![attr_i("transB", 1)]),
    ];
    let init = vec![
        f32s("w", &[3, 2, 3, 3], ramp(54, 0.1)),
        f32s("b", &[3], vec![0.5, -0.25, 0.0]),
        f32s("alpha", &[3, 1, 1], vec![0.1, 0.2, 0.3]),
        f32s("fw", &[4, 3], fwt),
        f32s("fb", &[4], vec![1.0, 2.0, 3.0, 4.0]),
    ];
    model(nodes, init, [2, 5, 5], "y")
}

#[test]
fn exporter_spellings_fold_into_plain_ops() {
    let g = read_onnx(&exporter_style()).unwrap();
    let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds, ["Conv", "PRelu", "GlobalAveragePool", "Flatten", "Dense"]);
    assert!(g.is_chain());
    let Op::Conv(c) = &g.nodes[0].op else { unreachable!() };
    assert_eq!(c.pads, [1, 1, 1, 1], "SAME_UPPER, 3x3 stride 2 on 5x5");
    assert_eq!(c.bias.as_deref(), Some(&[0.5, -0.25, 0.0][..]), "bias Add folded into the conv");
    assert_eq!(g.nodes[0].shape, [3, 3, 3]);
    let Op::PRelu { slope } = &g.nodes[1].op else { unreachable!() };
    assert_eq!(slope.dims, [3, 1, 1]);
    let Op::Dense(d) = &g.nodes[4].op else { unreachable!() };
    assert_eq!(d.bias.as_deref(), Some(&[1.0, 2.0, 3.0, 4.0][..]));
    assert_eq!(g.output, 5);

    let plain = read_onnx(&plain_style()).unwrap();
    let x = ramp(50, 0.05);
    let (a, b) = (eval::run(&g, &x).unwrap(), eval::run(&plain, &x).unwrap());
    assert_eq!(a.len(), 4);
    for (p, q) in a.iter().zip(&b) {
        assert!((p - q).abs() < 1e-6, "{a:?} vs {b:?}");
    }
}

#[test]
fn conv_and_pool_evaluate_by_hand() {
    let nodes = vec![
        node("Conv", "conv", &["x", "w"], &["c"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
        node(
            "MaxPool",
            "pool",
            &["c"],
            &["p"],
            vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[1, 1])],
        ),
        node("AveragePool", "avg", &["c"], &["a"], vec![attr_ints("kernel_shape", &[3, 3])]),
    ];
    let init = vec![f32s("w", &[1, 1, 3, 3], vec![1.0; 9])];
    let g = read_onnx(&model(nodes.clone(), init.clone(), [1, 3, 3], "p")).unwrap();
    let all = eval::run_all(&g, &[1.0; 9]).unwrap();
    // A 3x3 box sum of ones with zero padding: corners 4, edges 6, centre 9.
    assert_eq!(all[1], [4.0, 6.0, 4.0, 6.0, 9.0, 6.0, 4.0, 6.0, 4.0]);
    assert_eq!(all[2], [9.0, 9.0, 9.0, 9.0]);
    let g = read_onnx(&model(nodes, init, [1, 3, 3], "a")).unwrap();
    assert_eq!(eval::run(&g, &[1.0; 9]).unwrap(), [(4.0 * 4.0 + 6.0 * 4.0 + 9.0) / 9.0]);
}

#[test]
fn bad_models_are_named_errors() {
    let e = read_onnx(&exporter_style()[..200]).unwrap_err().0;
    assert!(e.contains("not an ONNX model"), "{e}");
    let e = read_onnx(b"definitely not protobuf").unwrap_err().0;
    assert!(e.contains("not an ONNX model"), "{e}");

    let unsupported = model(vec![node("LSTM", "rnn", &["x"], &["y"], vec![])], vec![], [1, 4, 4], "y");
    let e = read_onnx(&unsupported).unwrap_err().0;
    assert!(e.starts_with("node `rnn` (LSTM): operator LSTM is not supported"), "{e}");

    let missing = model(vec![node("Relu", "r", &["nothing"], &["y"], vec![])], vec![], [1, 4, 4], "y");
    let e = read_onnx(&missing).unwrap_err().0;
    assert!(e.contains("node `r` (Relu): input `nothing` is produced by no earlier node"), "{e}");

    let big_kernel = model(
        vec![node("Conv", "c", &["x", "w"], &["y"], vec![])],
        vec![f32s("w", &[1, 1, 5, 5], vec![0.0; 25])],
        [1, 3, 3],
        "y",
    );
    let e = read_onnx(&big_kernel).unwrap_err().0;
    assert!(e.contains("node `c` (Conv): a 5x5 kernel does not fit the 3x3 input"), "{e}");

    let short = model(
        vec![node("Conv", "c", &["x", "w"], &["y"], vec![])],
        vec![f32s("w", &[1, 1, 3, 3], vec![0.0; 8])],
        [1, 3, 3],
        "y",
    );
    let e = read_onnx(&short).unwrap_err().0;
    assert!(e.contains("initializer `w`: 8 values for dims [1, 1, 3, 3]"), "{e}");

    let lone_neg = model(vec![node("Neg", "n", &["x"], &["y"], vec![])], vec![], [1, 2, 2], "y");
    let e = read_onnx(&lone_neg).unwrap_err().0;
    assert!(e.contains("node `n` (Neg): not part of a pattern"), "{e}");

    let g = read_onnx(&exporter_style()).unwrap();
    let e = eval::run(&g, &[0.0; 3]).unwrap_err().0;
    assert!(e.contains("input has 3 values"), "{e}");
}

#[test]
fn pad_transpose_reshape_concat_and_two_outputs() {
    let g = read_onnx(&detector_style()).unwrap();
    assert_eq!(g.outputs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["both", "y2"]);
    let both = g.shape(g.outputs[0].1);
    // [4, 3, 3] -> [3, 3, 4] -> [18, 2]; [2, 3, 3] -> [9, 2]; joined: [27, 2].
    assert_eq!(both, vec![27, 2]);
    let x = ramp(18, 0.5);
    let outs = eval::run_outputs(&g, &x).unwrap();
    let all = eval::run_all(&g, &x).unwrap();
    // The pad: the input's 2 channels, then 2 channels of zeros.
    let pad_id = g.nodes.iter().position(|n| matches!(n.op, Op::Pad { .. })).unwrap() + 1;
    assert_eq!(&all[pad_id][..18], &x[..]);
    assert!(all[pad_id][18..].iter().all(|&v| v == 0.0));
    // Channels-last rows: row (h, w) of the first branch holds channels 0-1 then 2-3 of r.
    let r_id = g.nodes.iter().position(|n| matches!(n.op, Op::Add)).unwrap() + 1;
    let r = &all[r_id];
    let chw = |c: usize, h: usize, w: usize| r[(c * 3 + h) * 3 + w];
    assert_eq!(outs[0][0..2], [chw(0, 0, 0), chw(1, 0, 0)]);
    assert_eq!(outs[0][2..4], [chw(2, 0, 0), chw(3, 0, 0)]);
    assert_eq!(outs[0][4..6], [chw(0, 0, 1), chw(1, 0, 1)]);
    // The second branch follows the first: relu(x) channels-last.
    assert_eq!(outs[0][36..38], [x[0].max(0.0), x[9].max(0.0)]);
    assert_eq!(outs[1], r.iter().map(|v| v.max(0.0)).collect::<Vec<_>>());
}

/// A 3x3 conv on a `[1, 6, 6, c]` NHWC input behind `to_nchw`, and the same conv on NCHW.
fn nhwc_and_nchw(c: i64, to_nchw: NodeProto, extra: Vec<TensorProto>) -> (Vec<u8>, Vec<u8>) {
    let conv =
        |input: &str| node("Conv", "conv", &[input, "w"], &["y"], vec![attr_ints("pads", &[1, 1, 1, 1])]);
    let w = || f32s("w", &[2, c, 3, 3], ramp(18 * c as usize, 0.1));
    let mut init = extra;
    init.push(w());
    let nhwc = model(vec![to_nchw, conv("t")], init, [6, 6, c], "y");
    let nchw = model(vec![conv("x")], vec![w()], [c, 6, 6], "y");
    (nhwc, nchw)
}

#[test]
fn nhwc_inputs_read_as_the_nchw_model() {
    let transpose = node("Transpose", "to_nchw", &["x"], &["t"], vec![attr_ints("perm", &[0, 3, 1, 2])]);
    let (nhwc, nchw) = nhwc_and_nchw(3, transpose, vec![]);
    let (g, plain) = (read_onnx(&nhwc).unwrap(), read_onnx(&nchw).unwrap());
    assert_eq!(g.input_shape, [3, 6, 6]);
    assert!(g.input_channels_last && !plain.input_channels_last);
    assert_eq!(g.nodes.len(), 1, "the Transpose is the input itself");
    let x = ramp(108, 0.3);
    assert_eq!(eval::run(&g, &x).unwrap(), eval::run(&plain, &x).unwrap());
    // A runtime that runs the file gets the image interleaved: pixel 0's three channels first.
    let (dims, data) = g.file_input(&x);
    assert_eq!(dims, [1, 6, 6, 3]);
    assert_eq!(data[..4], [x[0], x[36], x[72], x[1]]);
    assert_eq!(plain.file_input(&x), ([1, 3, 6, 6], x.clone()));

    // One channel: tf2onnx writes a Reshape to [N, 1, H, W] (the same bytes).
    let reshape = node("Reshape", "to_nchw", &["x", "shape"], &["t"], vec![]);
    let (nhwc, nchw) = nhwc_and_nchw(1, reshape, vec![i64s("shape", &[-1, 1, 6, 6])]);
    let (g, plain) = (read_onnx(&nhwc).unwrap(), read_onnx(&nchw).unwrap());
    assert_eq!(g.input_shape, [1, 6, 6]);
    assert!(g.input_channels_last);
    let x = ramp(36, 0.3);
    assert_eq!(eval::run(&g, &x).unwrap(), eval::run(&plain, &x).unwrap());
    assert_eq!(g.file_input(&x), ([1, 6, 6, 1], x.clone()));
}

#[test]
fn nhwc_needs_every_reader_to_be_the_layout_change() {
    // The input also feeds a Relu directly: it is not only an NHWC image, so it is read as
    // the NCHW [6, 6, 3] its dims say.
    let nodes = vec![
        node("Transpose", "to_nchw", &["x"], &["t"], vec![attr_ints("perm", &[0, 3, 1, 2])]),
        node("Relu", "raw", &["x"], &["r"], vec![]),
    ];
    let g = read_onnx(&model(nodes, vec![], [6, 6, 3], "r")).unwrap();
    assert!(!g.input_channels_last);
    assert_eq!(g.input_shape, [6, 6, 3]);
    // A Reshape that is not [N, 1, H, W] keeps the model NCHW.
    let reshape = node("Reshape", "rows", &["x", "shape"], &["y"], vec![]);
    let g = read_onnx(&model(vec![reshape], vec![i64s("shape", &[1, -1])], [6, 6, 1], "y")).unwrap();
    assert!(!g.input_channels_last);
    assert_eq!(g.input_shape, [6, 6, 1]);
}

#[test]
fn unsupported_pads_and_perms_are_named() {
    let bad_pad = model(
        vec![node("Pad", "edgepad", &["x", "pads"], &["y"], vec![attr_s("mode", "edge")])],
        vec![i64s("pads", &[0, 0, 1, 1, 0, 0, 1, 1])],
        [1, 3, 3],
        "y",
    );
    let e = read_onnx(&bad_pad).unwrap_err().0;
    assert!(e.contains("edgepad") && e.contains("edge"), "{e}");
    let bad_perm = model(
        vec![node("Transpose", "swapbatch", &["x"], &["y"], vec![attr_ints("perm", &[1, 0, 2, 3])])],
        vec![],
        [1, 3, 3],
        "y",
    );
    let e = read_onnx(&bad_perm).unwrap_err().0;
    assert!(e.contains("swapbatch") && e.contains("batch"), "{e}");
}

/// `FER_WRITE_ONNX_SEEDS=DIR cargo test -p fer-runtime --lib write_onnx_fuzz_seeds` writes the
/// small models the tests read (exporter spellings, plain ops, every quantizer op, the
/// detector's layout ops and two outputs) as seeds for the
/// `onnx_model` fuzz target.
#[test]
fn write_onnx_fuzz_seeds() {
    if let Some(dir) = std::env::var_os("FER_WRITE_ONNX_SEEDS") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("exporter_style.onnx"), exporter_style()).unwrap();
        std::fs::write(dir.join("plain_style.onnx"), plain_style()).unwrap();
        std::fs::write(dir.join("tiny.onnx"), crate::quant::tests::tiny_model()).unwrap();
        std::fs::write(dir.join("detector_style.onnx"), detector_style()).unwrap();
    }
}

/// Every file in `fuzz/seeds/onnx_model` (the seeds and the inputs that once crashed the
/// reader) goes through it as the fuzz target does: no panic.
#[test]
fn onnx_fuzz_seeds_replay_without_panicking() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/onnx_model");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        if let Ok(graph) = read_onnx(&bytes) {
            let _ = crate::quant::fuse::plan(&graph);
            let n = graph.input_shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
            if let Some(n) = n.filter(|&n| n <= 1 << 16) {
                let _ = super::eval::run_outputs(&graph, &vec![0.0; n]);
            }
        }
        n += 1;
    }
    assert!(n >= 4, "{n} seeds in {}", dir.display());
}

/// Dims that multiply past `usize` (the first input the `onnx_model` fuzz target crashed
/// on: a Reshape to [3, 7782220156096217089, 1]) or past MAX_VALUES are named errors.
#[test]
fn dims_too_large_to_hold_are_named_errors() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/onnx_model");
    let bytes = std::fs::read(dir.join("crash-reshape-product-overflow.onnx")).unwrap();
    let e = read_onnx(&bytes).unwrap_err().0;
    assert!(e.contains("node `slope_shape` (Reshape)") && e.contains("more than 67108864 values"), "{e}");
    let huge = model(vec![node("Relu", "r", &["x"], &["y"], vec![])], vec![], [64, 4096, 4096], "y");
    let e = read_onnx(&huge).unwrap_err().0;
    assert!(e.contains("input `x`") && e.contains("more than"), "{e}");
}
