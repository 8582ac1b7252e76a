//! What the firmware's programs share: files written to the host by semihosting (the QEMU
//! demo's screen dump) and the memory report (flash, static RAM, stack high-water mark).
#![no_std]

pub mod host_file;
pub mod memory;
