//! x86-64 kernels: AVX2 (`vpmaddwd` on sign-extended int8) and AVX-512 VNNI (`vpdpbusd`),
//! chosen at run time. Both compute exactly what `reference` does (same wrapping i32
//! accumulation, same integer requantization), checked by the conformance suite.
//!
//! GEMM: 16 output channels per block (the packed `[K/4][N_pad][4]` layout gives 64
//! consecutive bytes per 4-deep slice), several rows (pixels) at once so each weight load
//! serves them all. VNNI multiplies unsigned by signed bytes: inputs are offset by 128
//! (`x ^ 0x80`) and the offset is taken back with the stored weight sums.
//!
//! Depthwise over flat `(column, channel)` rows: AVX-512 VNNI with `vpdpbusd` on four
//! taps of a window row (`dw_quads`, unit column stride), AVX2 with `vpmaddwd` on two
//! window rows (`dw_rows`, strides 1 and 2); the rest pixel by pixel, 16 channels at a
//! time. Add: i32 lanes from 16-bit halves of its multipliers where they split
//! ([`Add::split`]). Requantization: i64 products, rounded in i32 lanes where every
//! shift is 33 or more (`requant16`), the clamp and the zero point's add skipped where
//! they may be (`OutRange`). Channel padding (AVX-512): a masked load into a register
//! of zero points per pixel.
//!
//! One file per kernel set: [`avx2`] (every x86-64 CPU of the last decade), [`avx2_u7`]
//! (the same CPUs on models with 7-bit weights: `vpmaddubsw`) and [`avx512`] (AVX-512
//! VNNI); here, what both share: run-time detection, the elementwise
//! loops compiled with AVX2, and the flat depthwise kernels' channel phases.

use core::arch::x86_64::*;

pub mod avx2;
pub mod avx2_u7;
pub mod avx512;
mod dw_quads;
mod dw_rows;

pub use avx2::Avx2;
pub use avx2_u7::Avx2U7;
pub use avx512::Avx512Vnni;

use super::{Add, Kernels, MaxPool, PRelu, Requant};

static AVX2: Avx2 = Avx2;
static AVX2_U7: Avx2U7 = Avx2U7;
static AVX512_VNNI: Avx512Vnni = Avx512Vnni;

#[cfg(feature = "std")]
fn has_avx512_vnni() -> bool {
    std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512vnni")
}

#[cfg(not(feature = "std"))]
fn has_avx512_vnni() -> bool {
    cfg!(all(
        target_feature = "avx512f",
        target_feature = "avx512bw",
        target_feature = "avx512vl",
        target_feature = "avx512vnni"
    ))
}

#[cfg(feature = "std")]
fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2")
}

#[cfg(not(feature = "std"))]
fn has_avx2() -> bool {
    cfg!(target_feature = "avx2")
}

/// The fastest x86 kernels this CPU runs.
pub fn detect() -> Option<&'static dyn Kernels> {
    // The VNNI set also runs the AVX2 elementwise loops (every AVX-512 CPU has AVX2).
    if has_avx512_vnni() && has_avx2() {
        Some(&AVX512_VNNI)
    } else if has_avx2() {
        Some(&AVX2)
    } else {
        None
    }
}

/// The fastest x86 kernels this CPU runs on a model whose GEMM weights are at most
/// `weight_limit` in magnitude: on AVX2 without VNNI, the 7-bit set where the weights
/// allow it (VNNI multiplies 8-bit weights as fast).
pub fn detect_for(weight_limit: i8) -> Option<&'static dyn Kernels> {
    let avx2_is_best = has_avx2() && !has_avx512_vnni();
    if avx2_is_best && weight_limit <= avx2_u7::WEIGHT_LIMIT {
        return Some(&AVX2_U7);
    }
    detect()
}

/// Every x86 implementation this CPU runs.
pub fn all_supported() -> impl Iterator<Item = &'static dyn Kernels> {
    let mut v: [Option<&'static dyn Kernels>; 3] = [None, None, None];
    if has_avx2() {
        v[0] = Some(&AVX2);
        v[1] = Some(&AVX2_U7);
    }
    if has_avx512_vnni() && has_avx2() {
        v[2] = Some(&AVX512_VNNI);
    }
    v.into_iter().flatten()
}

/// The portable elementwise loops, compiled with AVX2 (`vpmulld`, `vpmaxsb`, ...).
#[target_feature(enable = "avx2")]
fn prelu_avx2(p: &PRelu, x: &[i8], out: &mut [i8]) {
    crate::kernels::reference::prelu(p, x, out)
}

#[target_feature(enable = "avx2")]
fn quantize_input_avx2(image: &[f32], c: usize, inv: f32, zero_point: i8, dst: &mut [i8]) {
    use crate::kernels::reference::{quantize_input, quantize_planes};
    match c {
        1 => quantize_planes::<1>(image, inv, zero_point, dst),
        3 => quantize_planes::<3>(image, inv, zero_point, dst),
        _ => quantize_input(image, c, inv, zero_point, dst),
    }
}

#[target_feature(enable = "avx2")]
fn max_pool_avx2(p: &MaxPool, x: &[i8], out: &mut [i8]) {
    crate::kernels::reference::max_pool(p, x, out)
}

/// The i64 products as `vpmuldq`; the arithmetic shift emulated (AVX2 has no `vpsraq`).
#[target_feature(enable = "avx2")]
fn add_avx2(p: &Add, a: &[i8], b: &[i8], out: &mut [i8]) {
    crate::kernels::reference::add(p, a, b, out)
}

/// The constants of an Add whose multipliers split ([`Add::split`]), as i32 lanes.
struct SplitAdd {
    /// `(hi_a, hi_b)` and `(lo_a, lo_b)`, each an i16 pair.
    hi: i32,
    lo: i32,
    /// `2^(t-1)` and `t = shift - 16`, the rounding shift of `n` below.
    half: i32,
    count: __m128i,
}

#[inline(always)]
fn split_add(p: &Add, [[ha, la], [hb, lb]]: [[i16; 2]; 2]) -> SplitAdd {
    let pair = |a: i16, b: i16| (a as u16 as u32 | (b as u16 as u32) << 16) as i32;
    let t = p.shift as i32 - 16;
    // SAFETY: SSE2, part of x86-64.
    SplitAdd {
        hi: pair(ha, hb),
        lo: pair(la, lb),
        half: 1 << (t - 1),
        count: unsafe { _mm_cvtsi32_si128(t) },
    }
}

/// Distinct channel alignments of 16-lane blocks over a flat `(column, channel)` row of
/// `c` channels (lane `l` holds channel `l mod c`): the flat depthwise kernels' phases.
fn phases(c: usize) -> usize {
    let (mut a, mut b) = (c, 16);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    c / a
}

/// Whether every shift of channels `..n` is 33 to 62, as real layers' are (a factor of
/// 2^-3 to 2^-31 with a 31-bit multiplier): then the AVX-512 sets' requantization
/// (`avx512::requant16`) rounds in i32 lanes. The AVX2 sets also take 32: [`high_shifts8`].
fn high_shifts(rq: &Requant, n: usize) -> bool {
    rq.shift[..n].iter().all(|s| (33..=62).contains(s))
}

/// Whether every shift of channels `..n` is 32 to 62: then the AVX2 sets' requantization
/// (`avx2::requant8`) rounds in i32 lanes (a shift of 32 takes the low half's carry).
/// Channels whose factor is 1/4 to 1/2 have shift 32, common in 7-bit models, whose weight
/// scales double their factors.
fn high_shifts8(rq: &Requant, n: usize) -> bool {
    rq.shift[..n].iter().all(|s| (32..=62).contains(s))
}
