//! Writes the memory map as `memory.x` where cortex-m-rt's `link.x` includes it: the MPS2
//! AN386 board's under QEMU, or the STM32F411's with the `stm32f411` feature. (No file in
//! the crate root is named `memory.x`: the linker would find that one first.)
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let map: &[u8] = if env::var_os("CARGO_FEATURE_STM32F411").is_some() {
        include_bytes!("memory-stm32f411.x")
    } else {
        include_bytes!("memory-mps2-an386.x")
    };
    fs::write(out.join("memory.x"), map).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory-mps2-an386.x");
    println!("cargo:rerun-if-changed=memory-stm32f411.x");
}
