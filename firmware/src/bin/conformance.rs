//! The kernel conformance suite on a Cortex-M4 (under `qemu-system-arm -machine mps2-an386`):
//! the reference and the SMLAD kernels, bit for bit, on the same random and edge-case shapes
//! as `cargo test` runs on x86 and aarch64. Prints through semihosting; exits 0 when every
//! case matches, non-zero on the first mismatch (the panic message names the case).
//!
//! `cargo run --release --features conformance --bin conformance` (from `firmware/`).
#![no_std]
#![no_main]

use core::mem::MaybeUninit;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use embedded_alloc::LlffHeap as Heap;
use fer_core::kernels::{self, Kernels, conformance, reference::Reference};
use panic_semihosting as _;

#[global_allocator]
static HEAP: Heap = Heap::empty();

/// The suite's largest case (a 40 x 600 by 600 x 80 GEMM) needs well under 256 KB.
const HEAP_SIZE: usize = 1 << 20;

#[entry]
fn main() -> ! {
    static mut HEAP_MEM: [MaybeUninit<u8>; HEAP_SIZE] = [MaybeUninit::uninit(); HEAP_SIZE];
    // SAFETY: called once, before any allocation; `HEAP_MEM` is only used by the heap.
    unsafe { HEAP.init(HEAP_MEM.as_ptr() as usize, HEAP_SIZE) }
    let best = kernels::best();
    hprintln!("kernels under test: reference, {}", best.name());
    for k in [&Reference as &dyn Kernels, best] {
        conformance::gemm(k);
        hprintln!("{}: gemm bit-exact", k.name());
        conformance::depthwise(k);
        hprintln!("{}: depthwise bit-exact", k.name());
        conformance::elementwise(k);
        hprintln!("{}: prelu, max pool, add, input quantization, channel padding bit-exact", k.name());
    }
    if best.name() == Reference.name() {
        hprintln!("error: no Cortex-M kernels were picked (is the DSP extension enabled?)");
        debug::exit(debug::EXIT_FAILURE);
    }
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::wfi();
    }
}
