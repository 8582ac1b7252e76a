//! The Cortex-M demo: the shipped `edge` model, embedded in flash, classifies a face and
//! draws the result the way `fer live` does (the face, its label and probability bars) on
//! a display. Under QEMU (`cargo run --release`, machine mps2-an386) the display is a
//! framebuffer in RAM, dumped to the host as `fer-screen.ppm` by semihosting, with the label
//! in its header; the host test `firmware_screen` checks both against its own rendering.
//! Then the memory report: flash, static RAM, arena and stack high-water mark.
#![no_std]
#![no_main]

use core::fmt::Write;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use fer_core::engine::Engine;
use fer_core::face_source::{FaceSource, StillFace};
use fer_core::format::Model;
use fer_core::kernels;
use fer_core::overlay::RgbBuffer;
use fer_core::screen::{self, FACE, HEIGHT, WIDTH};
use fer_firmware::host_file::{HostFile, HostRefused};
use fer_firmware::memory;
use fer_firmware::{DEMO_FACE, EDGE_ARENA, EDGE_MODEL, exit, fail};
use panic_semihosting as _;

/// With the `conformance` feature, an allocator that refuses every request (see `NoHeap`).
#[cfg(feature = "conformance")]
#[global_allocator]
static NO_HEAP: fer_firmware::NoHeap = fer_firmware::NoHeap;

const SCREEN: usize = (WIDTH * HEIGHT * 3) as usize;

/// The screen as a binary PPM, its label line in the header's comment.
fn dump(pixels: &[u8], label: &str, permille: u32) -> Result<(), HostRefused> {
    let mut f = HostFile::create("fer-screen.ppm\0")?;
    let (whole, frac) = (permille / 1000, permille % 1000);
    write!(f, "P6\n# label {} {}.{:03}\n{} {}\n255\n", label, whole, frac, WIDTH, HEIGHT)
        .map_err(|_| HostRefused)?;
    f.write_all(pixels)
}

#[entry]
fn main() -> ! {
    static mut ARENA_MEM: [u8; EDGE_ARENA] = [0; EDGE_ARENA];
    static mut SCREEN_MEM: [u8; SCREEN] = [0; SCREEN];
    memory::paint_stack();
    let arena: &mut [u8] = ARENA_MEM;
    let Ok(model) = Model::new(&EDGE_MODEL.0) else { fail("models/edge.fer does not load") };
    let engine = Engine::new(model, kernels::best());
    if engine.arena_size() > EDGE_ARENA {
        fail("the model needs more than its 64 KB arena");
    }

    let mut face = [0u8; FACE * FACE];
    let mut source = StillFace(DEMO_FACE);
    let Ok(()) = source.next_face(&mut face);
    let r = match screen::classify(&engine, arena, &face) {
        Ok(r) => r,
        Err(_) => fail("the model does not classify a 48x48 gray face"),
    };
    let labels = screen::labels(&model, r.classes);
    let Some(mut fb) = RgbBuffer::new(WIDTH, HEIGHT, SCREEN_MEM) else { fail("screen size") };
    let Ok(()) = screen::draw(&mut fb, &face, &labels, &r);
    let p = screen::permille(r.probabilities[r.best]);
    hprintln!("label: {} {}.{:03}", labels[r.best], p / 1000, p % 1000);
    if dump(SCREEN_MEM, labels[r.best], p).is_err() {
        fail("could not write fer-screen.ppm on the host");
    }

    let s = memory::sizes();
    hprintln!("kernels: {}", kernels::best().name());
    hprintln!("flash: {} bytes (model {} bytes)", s.flash, EDGE_MODEL.0.len());
    hprintln!(
        "static RAM: {} bytes (arena {} of {} used; screen framebuffer {}, QEMU only)",
        s.static_ram,
        engine.arena_size(),
        EDGE_ARENA,
        SCREEN
    );
    hprintln!("stack high-water mark: {} bytes", memory::stack_high_water());
    exit(debug::EXIT_SUCCESS)
}
