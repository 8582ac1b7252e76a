//! aarch64 kernels (Raspberry Pi class boards): NEON with `sdot` where the CPU has the
//! dot-product extension (Cortex-A55/A76 and later), and a `smull` + `sadalp` path for
//! those without it (Cortex-A72 in the Pi 4, Cortex-A53). `vdotq_s32` is unstable on Rust
//! 1.95, so `sdot` is emitted with `asm!` inside a `dotprod` function.
//!
//! Same contract as `reference`, bit for bit (checked under qemu for both CPU kinds).

use core::arch::aarch64::*;
use core::arch::asm;

use super::{Depthwise, Gemm, Kernels, Requant};

pub struct Neon;
pub struct NeonDot;

static NEON: Neon = Neon;
static NEON_DOT: NeonDot = NeonDot;

#[cfg(feature = "std")]
fn has_dotprod() -> bool {
    std::arch::is_aarch64_feature_detected!("dotprod")
}

#[cfg(not(feature = "std"))]
fn has_dotprod() -> bool {
    cfg!(target_feature = "dotprod")
}

/// The fastest aarch64 kernels this CPU runs (NEON is part of every aarch64 core).
pub fn detect() -> Option<&'static dyn Kernels> {
    Some(if has_dotprod() { &NEON_DOT } else { &NEON })
}

pub fn all_supported() -> impl Iterator<Item = &'static dyn Kernels> {
    let dot: Option<&'static dyn Kernels> = if has_dotprod() { Some(&NEON_DOT) } else { None };
    core::iter::once(&NEON as &'static dyn Kernels).chain(dot)
}

impl Kernels for Neon {
    fn name(&self) -> &'static str {
        "neon"
    }
    fn gemm(&self, p: &Gemm, a: &[i8], b: &[i8], rq: &Requant, out: &mut [i8]) {
        assert!(super::gemm_sizes_ok(p, a, b, rq, out));
        let Gemm { m, n, k_pad, n_pad, ldo } = *p;
        // SAFETY: NEON is always present on aarch64; sizes checked above.
        unsafe { gemm_neon::<false>(m, n, k_pad, a, b, n_pad, rq, out, ldo) }
    }
    fn depthwise(&self, p: &Depthwise, x: &[i8], w: &[i8], rq: &Requant, out: &mut [i8]) {
        assert!(super::depthwise_sizes_ok(p, x, w, rq, out));
        // SAFETY: as above.
        unsafe { depthwise_neon(p, x, w, rq, out) }
    }
}

impl Kernels for NeonDot {
    fn name(&self) -> &'static str {
        "neon-dotprod"
    }
    fn gemm(&self, p: &Gemm, a: &[i8], b: &[i8], rq: &Requant, out: &mut [i8]) {
        assert!(super::gemm_sizes_ok(p, a, b, rq, out));
        let Gemm { m, n, k_pad, n_pad, ldo } = *p;
        // SAFETY: handed out only when the CPU has dotprod; sizes checked above.
        unsafe { gemm_dot(m, n, k_pad, a, b, n_pad, rq, out, ldo) }
    }
    fn depthwise(&self, p: &Depthwise, x: &[i8], w: &[i8], rq: &Requant, out: &mut [i8]) {
        assert!(super::depthwise_sizes_ok(p, x, w, rq, out));
        // SAFETY: as above.
        unsafe { depthwise_neon(p, x, w, rq, out) }
    }
}

/// `acc += a . b` per 4-byte group (signed), the `sdot` instruction.
#[inline(always)]
unsafe fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: a register-only instruction; callers enable `dotprod`.
    unsafe {
        asm!("sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b", acc = inout(vreg) acc, a = in(vreg) a, b = in(vreg) b,
             options(pure, nomem, nostack));
    }
    acc
}

/// 16 accumulators of channels `j0..j0 + 16` requantized to int8 and stored (`n` of them).
#[inline(always)]
unsafe fn finish16(acc: [int32x4_t; 4], rq: &Requant, j0: usize, n: usize, dst: *mut i8) {
    let mut vals = [0i32; 16];
    let mut out = [0i8; 16];
    // SAFETY: 16-lane local buffers.
    unsafe {
        for (q, a) in acc.iter().enumerate() {
            vst1q_s32(vals.as_mut_ptr().add(4 * q), *a);
        }
    }
    let lanes = 16.min(n - j0);
    // The requantization in i64 lanes: (v * m + 2^(s-1) - (v < 0)) >> s.
    for q in 0..lanes.div_ceil(4) {
        let mut m = [0i32; 4];
        let mut s = [1i64; 4];
        let mut b = [0i32; 4];
        for t in 0..4 {
            let j = j0 + 4 * q + t;
            if j < n {
                m[t] = rq.mult[j];
                s[t] = rq.shift[j] as i64;
                b[t] = rq.bias[j];
            }
        }
        // SAFETY: local arrays of 4 lanes.
        unsafe {
            let v = vaddq_s32(vld1q_s32(vals.as_ptr().add(4 * q)), vld1q_s32(b.as_ptr()));
            let mv = vld1q_s32(m.as_ptr());
            let round = |p: int64x2_t, sh: int64x2_t| {
                let half = vshlq_s64(vdupq_n_s64(1), vsubq_s64(sh, vdupq_n_s64(1)));
                let neg = vshrq_n_s64::<63>(p);
                vshlq_s64(vaddq_s64(vaddq_s64(p, half), neg), vnegq_s64(sh))
            };
            let lo = round(vmull_s32(vget_low_s32(v), vget_low_s32(mv)), vld1q_s64(s.as_ptr()));
            let hi = round(vmull_high_s32(v, mv), vld1q_s64(s.as_ptr().add(2)));
            let r = vcombine_s32(vmovn_s64(lo), vmovn_s64(hi));
            let r = vaddq_s32(r, vdupq_n_s32(rq.zero_point));
            let r = vminq_s32(vmaxq_s32(r, vdupq_n_s32(rq.min as i32)), vdupq_n_s32(rq.max as i32));
            let mut o = [0i32; 4];
            vst1q_s32(o.as_mut_ptr(), r);
            for t in 0..4 {
                out[4 * q + t] = o[t] as i8;
            }
        }
    }
    // SAFETY: `lanes` bytes at dst (caller's bounds).
    unsafe { core::ptr::copy_nonoverlapping(out.as_ptr(), dst, lanes) };
}

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "neon,dotprod")]
unsafe fn gemm_dot(
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
    for j0 in (0..n).step_by(16) {
        for i in 0..m {
            let mut acc = [vdupq_n_s32(0); 4];
            for k4 in 0..k_pad / 4 {
                // SAFETY: row i < m, k4 * 4 + 4 <= k_pad; 64 weight bytes of block j0.
                unsafe {
                    let a4 = (a.as_ptr().add(i * k_pad + k4 * 4) as *const i32).read_unaligned();
                    let av = vreinterpretq_s8_s32(vdupq_n_s32(a4));
                    let bp = b.as_ptr().add((k4 * n_pad + j0) * 4);
                    for (q, acc) in acc.iter_mut().enumerate() {
                        *acc = sdot(*acc, av, vld1q_s8(bp.add(16 * q)));
                    }
                }
            }
            // SAFETY: row i of out holds n - j0 bytes from j0.
            unsafe { finish16(acc, rq, j0, n, out.as_mut_ptr().add(i * ldo + j0)) };
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "neon")]
unsafe fn gemm_neon<const UNUSED: bool>(
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
    for j0 in (0..n).step_by(16) {
        for i in 0..m {
            // Per 4 channels: pairs of partial sums (k0 + k1, k2 + k3) per channel.
            let mut acc = [vdupq_n_s32(0); 8];
            for k4 in 0..k_pad / 4 {
                // SAFETY: as in gemm_dot.
                unsafe {
                    let a4 = (a.as_ptr().add(i * k_pad + k4 * 4) as *const i32).read_unaligned();
                    let av = vreinterpretq_s8_s32(vdupq_n_s32(a4));
                    let bp = b.as_ptr().add((k4 * n_pad + j0) * 4);
                    for q in 0..4 {
                        let bw = vld1q_s8(bp.add(16 * q));
                        acc[2 * q] = vpadalq_s16(acc[2 * q], vmull_s8(vget_low_s8(bw), vget_low_s8(av)));
                        acc[2 * q + 1] = vpadalq_s16(acc[2 * q + 1], vmull_high_s8(bw, av));
                    }
                }
            }
            // SAFETY: register ops; then row i's n - j0 bytes.
            unsafe {
                let sums = [
                    vpaddq_s32(acc[0], acc[1]),
                    vpaddq_s32(acc[2], acc[3]),
                    vpaddq_s32(acc[4], acc[5]),
                    vpaddq_s32(acc[6], acc[7]),
                ];
                finish16(sums, rq, j0, n, out.as_mut_ptr().add(i * ldo + j0));
            }
        }
    }
}

#[target_feature(enable = "neon")]
unsafe fn depthwise_neon(p: &Depthwise, x: &[i8], w: &[i8], rq: &Requant, out: &mut [i8]) {
    let c = p.c;
    for c0 in (0..c).step_by(16) {
        let lanes = 16.min(c - c0);
        for oy in 0..p.oh {
            for ox in 0..p.ow {
                let mut acc = [vdupq_n_s32(0); 4];
                for ky in 0..p.kernel[0] {
                    let iy = (oy * p.stride[0] + ky * p.dilation[0]) as isize - p.pad[0] as isize;
                    for kx in 0..p.kernel[1] {
                        let ix = (ox * p.stride[1] + kx * p.dilation[1]) as isize - p.pad[1] as isize;
                        let tap = ky * p.kernel[1] + kx;
                        let mut xs = [p.x_zero; 16];
                        let mut ws = [0i8; 16];
                        // SAFETY: `lanes` bytes from in-bounds positions into 16-byte buffers.
                        unsafe {
                            if !(iy < 0 || ix < 0 || iy >= p.h as isize || ix >= p.w as isize) {
                                let at = x.as_ptr().add((iy as usize * p.w + ix as usize) * c + c0);
                                core::ptr::copy_nonoverlapping(at, xs.as_mut_ptr(), lanes);
                            }
                            core::ptr::copy_nonoverlapping(
                                w.as_ptr().add(tap * c + c0),
                                ws.as_mut_ptr(),
                                lanes,
                            );
                            let (xv, wv) = (vld1q_s8(xs.as_ptr()), vld1q_s8(ws.as_ptr()));
                            let lo = vmull_s8(vget_low_s8(xv), vget_low_s8(wv));
                            let hi = vmull_high_s8(xv, wv);
                            acc[0] = vaddw_s16(acc[0], vget_low_s16(lo));
                            acc[1] = vaddw_high_s16(acc[1], lo);
                            acc[2] = vaddw_s16(acc[2], vget_low_s16(hi));
                            acc[3] = vaddw_high_s16(acc[3], hi);
                        }
                    }
                }
                // SAFETY: `lanes` bytes of the output pixel.
                unsafe { finish16(acc, rq, c0, c, out.as_mut_ptr().add((oy * p.ow + ox) * c + c0)) };
            }
        }
    }
}
