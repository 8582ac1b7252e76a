//! The demo on a real board: an STM32F411 "Black Pill" (Cortex-M4F, 512 KB flash, 128 KB
//! RAM, 25 MHz crystal) driving a 240x240 ST7789 panel over SPI1. The same int8 engine and
//! `edge` model as the QEMU demo classify a face; the same scene code draws the result,
//! converted to the panel's RGB565 as it goes (no framebuffer: the panel holds the image).
//!
//! Wiring: SCK PA5, MOSI PA7, CS PB0, DC PB1, RST PB2. Compile-checked in CI:
//! `cargo build --release --features stm32f411 --bin board-stm32f411` (flash it with
//! `probe-rs run --chip STM32F411CEUx`). The face comes from flash; a board with a camera
//! gives `fer_core::face_source::CentreCrop` its driver (the `Camera` trait) instead.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_hal_bus::spi::ExclusiveDevice;
use fer_core::engine::Engine;
use fer_core::face_source::{FaceSource, StillFace};
use fer_core::format::Model;
use fer_core::kernels;
use fer_core::screen::{self, FACE};
use fer_firmware::{DEMO_FACE, EDGE_ARENA, EDGE_MODEL};
use mipidsi::Builder;
use mipidsi::interface::SpiInterface;
use mipidsi::models::ST7789;
use mipidsi::options::ColorInversion;
use panic_halt as _;
use stm32f4xx_hal::pac;
use stm32f4xx_hal::prelude::*;
use stm32f4xx_hal::spi::{Mode, NoMiso, Phase, Polarity, Spi};

#[entry]
fn main() -> ! {
    static mut ARENA_MEM: [u8; EDGE_ARENA] = [0; EDGE_ARENA];
    static mut SPI_BUFFER: [u8; 512] = [0; 512];
    let dp = pac::Peripherals::take().unwrap();
    let cp = cortex_m::Peripherals::take().unwrap();
    let clocks = dp.RCC.constrain().cfgr.use_hse(25.MHz()).sysclk(100.MHz()).freeze();
    let (gpioa, gpiob) = (dp.GPIOA.split(), dp.GPIOB.split());
    let mode = Mode { polarity: Polarity::IdleLow, phase: Phase::CaptureOnFirstTransition };
    let spi = Spi::new(dp.SPI1, (gpioa.pa5, NoMiso::new(), gpioa.pa7), mode, 25.MHz(), &clocks);
    let cs = gpiob.pb0.into_push_pull_output();
    let dc = gpiob.pb1.into_push_pull_output();
    let rst = gpiob.pb2.into_push_pull_output();
    let mut delay = cp.SYST.delay(&clocks);
    let spi = ExclusiveDevice::new_no_delay(spi, cs).unwrap();
    let mut panel = Builder::new(ST7789, SpiInterface::new(spi, dc, SPI_BUFFER))
        .display_size(240, 240)
        .invert_colors(ColorInversion::Inverted)
        .reset_pin(rst)
        .init(&mut delay)
        .unwrap();

    let model = Model::new(&EDGE_MODEL.0).unwrap();
    let engine = Engine::new(model, kernels::best());
    let arena: &mut [u8] = ARENA_MEM;
    let mut source = StillFace(DEMO_FACE);
    let mut face = [0u8; FACE * FACE];
    loop {
        let Ok(()) = source.next_face(&mut face);
        if let Ok(r) = screen::classify(&engine, arena, &face) {
            let labels = screen::labels(&model, r.classes);
            let _ = screen::draw(&mut panel.color_converted::<Rgb888>(), &face, &labels, &r);
        }
        delay.delay_ms(1000);
    }
}
