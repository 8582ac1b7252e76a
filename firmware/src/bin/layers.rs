//! The edge model layer by layer, for counting instructions under QEMU: runs the demo face
//! through the engine one op at a time, calling `fer_mark` before the first op and after
//! each one, and prints each op's shapes and multiply-accumulates. The counting plugin
//! (`insn-count/`) reports the instruction count at every `fer_mark`:
//!
//! `CARGO_TARGET_THUMBV7EM_NONE_EABIHF_RUNNER=insn-count/qemu-counted.sh cargo run --release --bin layers`
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use fer_core::engine::Engine;
use fer_core::format::{Model, OpCode};
use fer_core::kernels;
use fer_core::screen;
use fer_firmware::{DEMO_FACE, EDGE_ARENA, EDGE_MODEL, exit, fail};
use panic_semihosting as _;

/// With the `conformance` feature, an allocator that refuses every request (see `NoHeap`).
#[cfg(feature = "conformance")]
#[global_allocator]
static NO_HEAP: fer_firmware::NoHeap = fer_firmware::NoHeap;

/// The counting plugin watches this function's address.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn fer_mark(i: u32) {
    core::hint::black_box(i);
}

#[entry]
fn main() -> ! {
    static mut ARENA_MEM: [u8; EDGE_ARENA] = [0; EDGE_ARENA];
    let arena: &mut [u8] = ARENA_MEM;
    let Ok(model) = Model::new(&EDGE_MODEL.0) else { fail("models/edge.fer does not load") };
    let engine = Engine::new(model, kernels::best());
    if engine.arena_size() > EDGE_ARENA {
        fail("the model needs more than its 64 KB arena");
    }
    let n = model.header.n_ops as u16;
    for i in 0..n {
        let Some(op) = model.op(i) else { fail("op") };
        let (x, y) = (model.value(op.inputs[0]), model.value(op.output));
        let [c, h, w] = x.shape;
        let [co, oh, ow] = y.shape;
        let [kh, kw] = op.kernel;
        let macs = match op.code {
            OpCode::Conv | OpCode::DepthwiseConv => co * oh * ow * kh * kw * (c / op.groups.max(1)),
            OpCode::Dense => x.len() * y.len(),
            _ => 0,
        };
        hprintln!(
            "op {} {:?} {}x{}x{} -> {}x{}x{} k{}x{} macs {}",
            i,
            op.code,
            c,
            h,
            w,
            co,
            oh,
            ow,
            kh,
            kw,
            macs
        );
    }
    if screen::set_face(&engine, arena, DEMO_FACE).is_err() {
        fail("set_input");
    }
    fer_mark(0);
    for i in 0..n {
        if engine.run_op(i, arena).is_err() {
            fail("run_op");
        }
        fer_mark(i as u32 + 1);
    }
    hprintln!("ops: {} (kernels {})", n, kernels::best().name());
    exit(debug::EXIT_SUCCESS)
}
