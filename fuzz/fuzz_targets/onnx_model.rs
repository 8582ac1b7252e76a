//! Any bytes through the ONNX reader (protobuf, lowering, constant folding, rewrites), the
//! quantizer's planning of what it read, and the f32 evaluator on a zero image: no panic
//! (arithmetic overflow included: fuzz builds keep debug assertions), no out-of-bounds
//! access, no allocation beyond what the file's size can justify.
#![no_main]

use fer_runtime::onnx::{eval, read_onnx};
use fer_runtime::quant::fuse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(graph) = read_onnx(data) else { return };
    let _ = fuse::plan(&graph);
    // A graph that reads is bounded by the file: run it when its input is small enough for
    // the fuzzer's pace (real models take 48x48 or 128x128x3).
    let n = graph.input_shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if let Some(n) = n.filter(|&n| n <= 1 << 16) {
        let _ = eval::run_outputs(&graph, &vec![0.0; n]);
    }
});
