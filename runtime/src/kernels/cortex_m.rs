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
use super::{Depthwise, Kernels, Requant};

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

#[inline(always)]
fn word(s: &[i8], at: usize) -> u32 {
    u32::from_le_bytes([s[at] as u8, s[at + 1] as u8, s[at + 2] as u8, s[at + 3] as u8])
}

impl Kernels for CortexM {
    fn name(&self) -> &'static str {
        "cortex-m-dsp"
    }

    fn gemm(
        &self,
        m: usize,
        n: usize,
        k_pad: usize,
        a: &[i8],
        b: &[i8],
        n_pad: usize,
        rq: &Requant,
        out: &mut [i8],
        ldo: usize,
    ) {
        assert!(super::gemm_sizes_ok(m, n, k_pad, a, b, n_pad, rq, out, ldo));
        // Two rows per pass share each weight word's split.
        let mut i = 0;
        while i < m {
            let two = i + 1 < m;
            let (r0, r1) = (i * k_pad, if two { (i + 1) * k_pad } else { i * k_pad });
            for j in 0..n {
                let (mut acc0, mut acc1) = (rq.bias[j], rq.bias[j]);
                for k4 in 0..k_pad / 4 {
                    let (we, wo) = split(word(b, (k4 * n_pad + j) * 4));
                    let (ae, ao) = split(word(a, r0 + k4 * 4));
                    acc0 = smlad(ao, wo, smlad(ae, we, acc0));
                    if two {
                        let (ae, ao) = split(word(a, r1 + k4 * 4));
                        acc1 = smlad(ao, wo, smlad(ae, we, acc1));
                    }
                }
                out[i * ldo + j] = finish(acc0, j, rq);
                if two {
                    out[(i + 1) * ldo + j] = finish(acc1, j, rq);
                }
            }
            i += 2;
        }
    }

    fn depthwise(&self, p: &Depthwise, x: &[i8], w: &[i8], rq: &Requant, out: &mut [i8]) {
        // One tap per channel and pixel: nothing to pair for SMLAD; the portable loop.
        reference::Reference.depthwise(p, x, w, rq, out)
    }
}
