//! What the firmware's programs share: the shipped model and the demo face in flash, the
//! way a QEMU program ends, files written to the host by semihosting (the demo's screen
//! dump) and the memory report (flash, static RAM, stack high-water mark).
#![no_std]

pub mod host_file;
pub mod memory;

use cortex_m_semihosting::{debug, hprintln};
use fer_core::screen::FACE;

/// Bytes 16-byte aligned, as the `.fer` format requires of a model used in place.
#[repr(C, align(16))]
pub struct Aligned<T: ?Sized>(pub T);

/// The shipped `edge` model, read in place from flash.
pub static EDGE_MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../models/edge.fer"));
/// The demo photo's face as the host pipeline crops it (see the runtime's `firmware_screen`).
pub static DEMO_FACE: &[u8; FACE * FACE] = include_bytes!("../vectors/face48.gray");
/// The edge model's budget: 64 KB of RAM for its activations.
pub const EDGE_ARENA: usize = 64 * 1024;

/// Under QEMU: says what went wrong and exits with failure (semihosting).
pub fn fail(what: &str) -> ! {
    hprintln!("error: {}", what);
    exit(debug::EXIT_FAILURE)
}

/// Under QEMU: exits with `status` (semihosting).
pub fn exit(status: debug::ExitStatus) -> ! {
    debug::exit(status);
    loop {
        cortex_m::asm::wfi();
    }
}

/// Built together with the `conformance` feature (which links `alloc` for the suite's test
/// buffers), every program must name an allocator: this one refuses every request, so a
/// program fails if the engine ever allocates.
#[cfg(feature = "conformance")]
pub struct NoHeap;

#[cfg(feature = "conformance")]
// SAFETY: returning null is the allowed way to report an allocation failure.
unsafe impl core::alloc::GlobalAlloc for NoHeap {
    unsafe fn alloc(&self, _: core::alloc::Layout) -> *mut u8 {
        core::ptr::null_mut()
    }
    unsafe fn dealloc(&self, _: *mut u8, _: core::alloc::Layout) {}
}
