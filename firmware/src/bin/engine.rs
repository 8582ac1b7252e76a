//! The `.fer` engine end to end on a Cortex-M4 (under `qemu-system-arm -machine mps2-an386`):
//! loads the test vector's model from flash in place, runs it op by op in a static arena
//! with the SMLAD kernels, and compares every op's int8 output with what the host engine
//! computed (`firmware/vectors/`, kept current by the runtime's
//! `firmware_vector_matches_the_host_engine` test). No heap: the engine allocates nothing.
//!
//! `cargo run --release --bin engine` (from `firmware/`).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use fer_core::engine::Engine;
use fer_core::format::Model;
use fer_core::kernels;
use fer_firmware::{Aligned, exit, fail};
use panic_semihosting as _;

/// With the `conformance` feature, an allocator that refuses every request (see `NoHeap`).
#[cfg(feature = "conformance")]
#[global_allocator]
static NO_HEAP: fer_firmware::NoHeap = fer_firmware::NoHeap;

static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../vectors/tiny.fer"));
static INPUT: &[u8] = include_bytes!("../../vectors/tiny.input.f32");
static OUTPUTS: &[u8] = include_bytes!("../../vectors/tiny.outputs.i8");

const ARENA: usize = 16 * 1024;

#[entry]
fn main() -> ! {
    static mut ARENA_MEM: [u8; ARENA] = [0; ARENA];
    let arena: &mut [u8] = ARENA_MEM;
    let model = match Model::new(&MODEL.0) {
        Ok(m) => m,
        Err(_) => fail("the vector's model does not load"),
    };
    let k = kernels::best();
    let engine = Engine::new(model, k);
    hprintln!("model: {} ops, arena {} bytes, kernels {}", model.header.n_ops, engine.arena_size(), k.name());
    if engine.arena_size() > ARENA {
        fail("the arena is too small for the vector's model");
    }
    let mut image = [0f32; 64];
    if INPUT.len() != 4 * image.len() {
        fail("the vector's input is not 64 floats");
    }
    for (v, b) in image.iter_mut().zip(INPUT.chunks_exact(4)) {
        *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    if engine.set_input(arena, &image).is_err() {
        fail("set_input");
    }
    let mut at = 0;
    for i in 0..model.header.n_ops as u16 {
        if engine.run_op(i, arena).is_err() {
            fail("run_op");
        }
        let Some(op) = model.op(i) else { fail("op") };
        let y = model.value(op.output);
        let want = OUTPUTS.get(at..at + y.len()).unwrap_or_else(|| fail("the vector has fewer outputs"));
        if &arena[y.offset..y.offset + y.len()] != want {
            hprintln!("op {} ({:?}): output differs from the host engine's", i, op.code);
            exit(debug::EXIT_FAILURE);
        }
        at += y.len();
    }
    if at != OUTPUTS.len() {
        fail("the vector has more outputs than the model's ops");
    }
    hprintln!("all {} ops give the host engine's int8 outputs ({} bytes)", model.header.n_ops, at);
    if k.name() == "reference" {
        fail("no Cortex-M kernels were picked");
    }
    exit(debug::EXIT_SUCCESS)
}
