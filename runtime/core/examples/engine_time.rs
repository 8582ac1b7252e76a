//! Times the engine on a model where `fer bench` cannot run, such as WebAssembly under
//! Node.js's WASI (the kernels this build has: scalar, or SIMD128 with
//! `-C target-feature=+simd128`):
//!
//! ```sh
//! cargo run --release -p fer-core --example engine_time --target wasm32-wasip1 -- models/edge.fer 300
//! ```
//!
//! Prints the kernels, then the median of `reps` runs (after `reps / 10` to warm up), in µs.

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
    times.sort_by(f64::total_cmp);
    println!(
        "{path}: kernels {}, median {:.1} µs over {reps} runs",
        engine.kernels.name(),
        times[times.len() / 2]
    );
}

fn fail<T>(path: &str, e: impl std::fmt::Display) -> T {
    eprintln!("{path}: {e}");
    std::process::exit(1)
}
