//! Times the engine on a model where `fer bench` cannot run, such as WebAssembly under
//! Node.js's WASI (the kernels this build has: scalar, or SIMD128 with
//! `-C target-feature=+simd128`):
//!
//! ```sh
//! cargo run --release -p fer-core --example engine_time --target wasm32-wasip1 -- models/edge.fer 300
//! ```
//!
//! Prints the kernels, then the median of `reps` runs (after `reps / 10` to warm up), in µs;
//! with `--layers` after the count, each op kind's summed median too.

use std::time::Instant;

use fer_core::engine::Engine;
use fer_core::format::{AlignedBytes, Model};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), reps) = (args.get(1), args.get(2).and_then(|r| r.parse::<usize>().ok()).unwrap_or(300))
    else {
        eprintln!("usage: engine_time MODEL.fer [REPS]");
        std::process::exit(2);
    };
    let raw = std::fs::read(path).unwrap_or_else(|e| fail(path, e));
    let bytes = AlignedBytes::new(&raw);
    let model = Model::new(bytes.as_slice()).unwrap_or_else(|e| fail(path, e));
    let engine = Engine::with_best_kernels(model);
    let mut arena = vec![0u8; engine.arena_size()];
    // A fixed pattern in [0, 1): the time does not depend on the values.
    let input: Vec<f32> = (0..engine.input().len()).map(|i| (i * 37 % 256) as f32 / 256.0).collect();
    let mut times = Vec::with_capacity(reps);
    for k in 0..reps + reps / 10 {
        let t = Instant::now();
        engine.set_input(&mut arena, &input).unwrap_or_else(|e| fail(path, e));
        engine.run(&mut arena).unwrap_or_else(|e| fail(path, e));
        if k >= reps / 10 {
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    println!(
        "{path}: kernels {}, median {:.1} µs over {reps} runs",
        engine.kernels.name(),
        median(&mut times)
    );
    if args.get(3).is_some_and(|a| a == "--layers") {
        per_op_kind(&engine, &mut arena, reps);
    }
}

/// Each op alone (its inputs left in the arena by the last full run), summed by op code.
fn per_op_kind(engine: &Engine, arena: &mut [u8], reps: usize) {
    let mut kinds: Vec<(String, f64)> = Vec::new();
    for i in 0..engine.model.header.n_ops as u16 {
        let Some(op) = engine.model.op(i) else { continue };
        let mut t: Vec<f64> = (0..reps)
            .map(|_| {
                let s = Instant::now();
                let _ = engine.run_op(i, arena);
                s.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        let name = format!("{:?}", op.code);
        match kinds.iter_mut().find(|(k, _)| *k == name) {
            Some((_, us)) => *us += median(&mut t),
            None => kinds.push((name, median(&mut t))),
        }
    }
    for (name, us) in kinds {
        println!("  {name:<16} {us:>9.1} µs");
    }
}

fn median(t: &mut [f64]) -> f64 {
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn fail<T>(path: &str, e: impl std::fmt::Display) -> T {
    eprintln!("{path}: {e}");
    std::process::exit(1)
}
