//! What the firmware's programs share: files written to the host by semihosting (the QEMU
//! demo's screen dump) and the memory report (flash, static RAM, stack high-water mark).
#![no_std]

pub mod host_file;
pub mod memory;

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
