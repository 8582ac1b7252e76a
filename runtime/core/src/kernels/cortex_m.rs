//! Cortex-M4/M7 (Armv7E-M, the DSP extension): `SMLAD` dual 16-bit multiply-accumulates
//! through `asm!` (`__smlad` is unstable). Four int8 values in one word are split by
//! `SXTB16` into two words of two sign-extended int16 each (bytes 0, 2 and, rotated,
//! bytes 1, 3); two `SMLAD`s then add all four products. Input rows and weight words use
//! the packed `[K/4][N_pad][4]` layout directly. `SMLAD` wraps like the reference's i32
//! accumulation (it only sets the Q flag), so results are bit-exact.
//!
//! Checked by the conformance suite under `qemu-system-arm -cpu cortex-m4`
//! (`firmware/`, `cargo run --release --bin conformance`).

use core::arch::asm;

use super::reference::{self, finish};
use super::{Depthwise, Gemm, Kernels, Requant};

pub struct CortexM;

/// (bytes 0 and 2, bytes 1 and 3) of `v`, each sign-extended to 16 bits.
#[inline(always)]
fn split(v: u32) -> (u32, u32) {
    let (even, odd): (u32, u32);
    // SAFETY: register-only DSP instructions, present on every target this module builds
    // for (`cfg(fer_arm_dsp)`, see build.rs).
    unsafe {
        asm!(
            "sxtb16 {e}, {v}",
            "sxtb16 {o}, {v}, ror #8",
            v = in(reg) v,
            e = out(reg) even,
            o = out(reg) odd,
            options(pure, nomem, nostack),
        );
    }
    (even, odd)
}

/// `acc + a.lo * b.lo + a.hi * b.hi` (16-bit halves, wrapping i32 sum).
#[inline(always)]
fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let r: i32;
    // SAFETY: as above.
    unsafe {
        asm!(
            "smlad {r}, {a}, {b}, {acc}",
            r = lateout(reg) r,
            a = in(reg) a,
            b = in(reg) b,
            acc = in(reg) acc,
            options(pure, nomem, nostack),
        );
    }
    r
}

/// `acc + a.lo * b.lo` (`SMLABB`) and `acc + a.hi * b.hi` (`SMLATT`), 16-bit halves,
/// wrapping i32 sums.
macro_rules! smla_half {
    ($name:ident, $insn:literal) => {
        #[inline(always)]
        fn $name(a: u32, b: u32, acc: i32) -> i32 {
            let r: i32;
            // SAFETY: register-only DSP instructions, as `smlad`.
            unsafe {
                asm!(
                    concat!($insn, " {r}, {a}, {b}, {acc}"),
                    r = lateout(reg) r,
                    a = in(reg) a,
                    b = in(reg) b,
                    acc = in(reg) acc,
                    options(pure, nomem, nostack),
                );
            }
            r
        }
    };
}
smla_half!(smla_bottom, "smlabb");
smla_half!(smla_top, "smlatt");

/// Four bytes at `p` as one little-endian word (Armv7E-M loads words at any alignment).
///
/// # Safety
/// `p..p + 4` is inside one slice.
#[inline(always)]
unsafe fn load(p: *const i8) -> u32 {
    // SAFETY: the caller's contract.
    unsafe { core::ptr::read_unaligned(p as *const u32) }
}

impl Kernels for CortexM {
    fn name(&self) -> &'static str {
        "cortex-m-dsp"
    }

    fn gemm(&self, p: &Gemm, a: &[i8], b: &[i8], rq: &Requant, out: &mut [i8]) {
        assert!(super::gemm_sizes_ok(p, a, b, rq, out));
        let Gemm { m, n, k_pad, n_pad, ldo } = *p;
        // Blocks of two rows by two columns: each pass loads two activation and two weight
        // words, splits each once, and feeds eight SMLADs (16 MACs in ~20 instructions).
        let (ap, bp) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        while i < m {
            let two = i + 1 < m;
            let r0 = i * k_pad;
            let r1 = if two { r0 + k_pad } else { r0 };
            let mut j = 0;
            while j < n {
                let pair = j + 1 < n;
                let bias1 = if pair { rq.bias[j + 1] } else { 0 };
                let (mut c00, mut c01, mut c10, mut c11) = (rq.bias[j], bias1, rq.bias[j], bias1);
                for k4 in 0..k_pad / 4 {
                    let w = (k4 * n_pad + j) * 4;
                    // SAFETY: checked above: rows r0 and r1 end by m * k_pad <= a.len(); j is
                    // even and n_pad a multiple of 16, so column j + 1 < n_pad and both
                    // weight words end by k_pad * n_pad <= b.len().
                    let (a0, a1, b0, b1) = unsafe {
                        (
                            load(ap.add(r0 + k4 * 4)),
                            load(ap.add(r1 + k4 * 4)),
                            load(bp.add(w)),
                            load(bp.add(w + 4)),
                        )
                    };
                    let ((a0e, a0o), (a1e, a1o)) = (split(a0), split(a1));
                    let ((b0e, b0o), (b1e, b1o)) = (split(b0), split(b1));
                    c00 = smlad(a0o, b0o, smlad(a0e, b0e, c00));
                    c01 = smlad(a0o, b1o, smlad(a0e, b1e, c01));
                    c10 = smlad(a1o, b0o, smlad(a1e, b0e, c10));
                    c11 = smlad(a1o, b1o, smlad(a1e, b1e, c11));
                }
                out[i * ldo + j] = finish(c00, j, rq);
                if pair {
                    out[i * ldo + j + 1] = finish(c01, j + 1, rq);
                }
                if two {
                    out[(i + 1) * ldo + j] = finish(c10, j, rq);
                    if pair {
                        out[(i + 1) * ldo + j + 1] = finish(c11, j + 1, rq);
                    }
                }
                j += 2;
            }
            i += 2;
        }
    }

    fn depthwise(&self, p: &Depthwise, x: &[i8], w: &[i8], rq: &Requant, out: &mut [i8]) {
        if !p.c.is_multiple_of(4) {
            return reference::Reference.depthwise(p, x, w, rq, out);
        }
        assert!(super::depthwise_sizes_ok(p, x, w, rq, out));
        // Four channels per word: SXTB16 splits the input and weight words into channels
        // (0, 2) and (1, 3), and SMLABB / SMLATT add each channel's product to its own
        // accumulator (10 instructions per 4 MACs). A tap outside the map reads the zero
        // point, as in the reference (the bias assumes every tap is read).
        let (c, [kh, kw]) = (p.c, p.kernel);
        let x_zero = (p.x_zero as u8 as u32) * 0x0101_0101;
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        for oy in 0..p.oh {
            for ox in 0..p.ow {
                let px = (oy * p.ow + ox) * c;
                for c0 in (0..c).step_by(4) {
                    let mut acc = [rq.bias[c0], rq.bias[c0 + 1], rq.bias[c0 + 2], rq.bias[c0 + 3]];
                    for ky in 0..kh {
                        let iy = (oy * p.stride[0] + ky * p.dilation[0]).wrapping_sub(p.pad[0]);
                        for kx in 0..kw {
                            let ix = (ox * p.stride[1] + kx * p.dilation[1]).wrapping_sub(p.pad[1]);
                            // SAFETY: checked above: a pixel inside the map ends by
                            // h * w * c <= x.len(), a tap's weights by kh * kw * c <= w.len().
                            let (xv, wv) = unsafe {
                                let xv = if iy < p.h && ix < p.w {
                                    load(xp.add((iy * p.w + ix) * c + c0))
                                } else {
                                    x_zero
                                };
                                (xv, load(wp.add((ky * kw + kx) * c + c0)))
                            };
                            let ((xe, xo), (we, wo)) = (split(xv), split(wv));
                            acc[0] = smla_bottom(xe, we, acc[0]);
                            acc[2] = smla_top(xe, we, acc[2]);
                            acc[1] = smla_bottom(xo, wo, acc[1]);
                            acc[3] = smla_top(xo, wo, acc[3]);
                        }
                    }
                    for (k, &a) in acc.iter().enumerate() {
                        out[px + c0 + k] = finish(a, c0 + k, rq);
                    }
                }
            }
        }
    }
}
