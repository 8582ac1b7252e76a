//! The memory report: flash and static RAM from the linker's section symbols
//! (cortex-m-rt's `link.x`), and the stack's high-water mark by painting: every free stack
//! word is filled with a pattern before the work, and the deepest word no longer holding
//! it afterwards marks how far the stack grew.

const PAINT: u32 = 0xA5A5_5A5A;
/// Words below the current stack pointer left unpainted (the painter's own frame).
const MARGIN_WORDS: usize = 16;

unsafe extern "C" {
    static __sdata: u32;
    static __edata: u32;
    static __ebss: u32;
    static __euninit: u32;
    static __vector_table: u32;
    static __sidata: u32;
    static __sheap: u32;
    static _stack_start: u32;
}

fn addr(sym: &u32) -> usize {
    sym as *const u32 as usize
}

/// Bytes of the program's sections.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Code, read-only data (the model's weights) and the initial values of `.data`.
    pub flash: usize,
    /// `.data`, `.bss` and `.uninit`: every static, the arena and framebuffer included.
    pub static_ram: usize,
    /// Between the statics' end and the top of RAM: what the stack may use.
    pub stack_room: usize,
}

pub fn sizes() -> Sizes {
    // SAFETY: only the symbols' addresses are taken, never their contents.
    unsafe {
        let data = addr(&__edata) - addr(&__sdata);
        Sizes {
            // Flash holds the vector table first and the initial values of `.data` last.
            flash: addr(&__sidata) + data - addr(&__vector_table),
            static_ram: addr(&__euninit).max(addr(&__ebss)) - addr(&__sdata),
            stack_room: addr(&_stack_start) - addr(&__sheap),
        }
    }
}

/// Fills the free stack below the caller with the pattern. Call it first thing in `main`.
#[inline(never)]
pub fn paint_stack() {
    let sp = cortex_m::register::msp::read() as usize;
    // SAFETY: the words between the heap start (end of the statics) and just under the
    // current stack pointer belong to no live value: nothing uses a heap here, and the
    // stack grows down from above `sp`.
    unsafe {
        let mut p = addr(&__sheap) as *mut u32;
        let end = (sp as *mut u32).sub(MARGIN_WORDS);
        while p < end {
            p.write_volatile(PAINT);
            p = p.add(1);
        }
    }
}

/// Bytes of stack used since [`paint_stack`]: from the top of RAM down to the deepest word
/// that lost the pattern.
pub fn stack_high_water() -> usize {
    // SAFETY: reads the painted region only, word by word (no reference is formed).
    unsafe {
        let bottom = addr(&__sheap);
        let mut p = bottom as *const u32;
        let top = addr(&_stack_start) as *const u32;
        while p < top && p.read_volatile() == PAINT {
            p = p.add(1);
        }
        addr(&_stack_start) - p as usize
    }
}
