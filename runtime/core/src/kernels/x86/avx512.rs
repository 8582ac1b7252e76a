//! The AVX-512 VNNI kernel set (`vpdpbusd`, 64 products an instruction): GEMM in row
//! tiles, depthwise over flat rows (`dw_quads.rs`) or pixel by pixel, Add in i64 or
//! split i32 lanes, and channel padding by masked loads.

use core::arch::x86_64::*;

use super::{dw_quads, high_shifts, max_pool_avx2, prelu_avx2, quantize_input_avx2, split_add};
use crate::kernels::reference::Reference;
use crate::kernels::{Add, Depthwise, Gemm, Kernels, MaxPool, PRelu, PadChannels, Requant};

pub struct Avx512Vnni;

impl Kernels for Avx512Vnni {
    fn name(&self) -> &'static str {
        "avx512-vnni"
    }

    fn gemm(&self, p: &Gemm, a: &[i8], b: &[i8], rq: &Requant, out: &mut [i8]) {
        assert!(crate::kernels::gemm_sizes_ok(p, a, b, rq, out));
        let Gemm { m, n, k_pad, n_pad, ldo } = *p;
        // SAFETY: the CPU has the features (this value is only handed out by `detect`), and
        // the sizes were checked above.
        unsafe { gemm_vnni(m, n, k_pad, a, b, n_pad, rq, out, ldo) }
    }

    fn prelu(&self, p: &PRelu, x: &[i8], out: &mut [i8]) {
        // SAFETY: this implementation is only handed out where AVX2 was detected.
        unsafe { prelu_avx2(p, x, out) }
    }

    fn max_pool(&self, p: &MaxPool, x: &[i8], out: &mut [i8]) {
        // SAFETY: as above.
        unsafe { max_pool_avx2(p, x, out) }
    }

    fn quantize_input(&self, image: &[f32], c: usize, inv: f32, zero_point: i8, dst: &mut [i8]) {
        // SAFETY: as above.
        unsafe { quantize_input_avx2(image, c, inv, zero_point, dst) }
    }

    fn add(&self, p: &Add, a: &[i8], b: &[i8], out: &mut [i8]) {
        // SAFETY: only handed out where AVX-512 F/BW/VL were detected.
        unsafe {
            if let Some(m) = p.split() { add_split_avx512(p, m, a, b, out) } else { add_avx512(p, a, b, out) }
        }
    }

    fn pad_channels(&self, p: &PadChannels, x: &[i8], out: &mut [i8]) {
        // SAFETY: as above.
        unsafe { pad_channels_avx512(p, x, out) }
    }

    fn depthwise(&self, p: &Depthwise, x: &[i8], w: &[i8], rq: &Requant, out: &mut [i8]) {
        assert!(crate::kernels::depthwise_sizes_ok(p, x, w, rq, out));
        // SAFETY: as above.
        unsafe {
            if dw_quads::fits(p) {
                dw_quads::depthwise_quads(p, x, w, rq, out)
            } else {
                depthwise_avx512(p, x, w, rq, out)
            }
        }
    }
}

/// Add with 31-bit multipliers, exactly as the reference's i64 arithmetic, in i32 lanes,
/// 32 elements a step. With `A = a - za`, `B = b - zb` interleaved as i16 pairs, two
/// `vpmaddwd` give `hi = A hi_a + B hi_b` and `lo = A lo_a + B lo_b` (each under 2^24), and
/// `v = A m_a + B m_b = n 2^16 + l` with `n = hi + (lo >> 16)`, `l = lo & 0xFFFF`. Since
/// `0 <= l < 2^16` and the shift `s = t + 16`, `round_half_away(v / 2^s)` is
/// `(n + 2^(t-1) - [n < 0 and l = 0]) >> t`: the low bits only decide a negative tie.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn add_split_avx512(p: &Add, m: [[i16; 2]; 2], a: &[i8], b: &[i8], out: &mut [i8]) {
    let n = out.len();
    assert!(a.len() == n && b.len() == n);
    let k = split_add(p, m);
    let (hi, lo, half) = (_mm512_set1_epi32(k.hi), _mm512_set1_epi32(k.lo), _mm512_set1_epi32(k.half));
    let (za, zb) = (_mm512_set1_epi16(p.a_zero as i16), _mm512_set1_epi16(p.b_zero as i16));
    let (zy, one, low16) =
        (_mm512_set1_epi32(p.y_zero as i32), _mm512_set1_epi32(1), _mm512_set1_epi32(0xFFFF));
    let (ylo, yhi) = (_mm256_set1_epi8(p.min), _mm256_set1_epi8(p.max));
    let rounded = |ab: __m512i| {
        let l = _mm512_madd_epi16(ab, lo);
        let n = _mm512_add_epi32(_mm512_madd_epi16(ab, hi), _mm512_srai_epi32::<16>(l));
        let tie_below =
            _mm512_cmplt_epi32_mask(n, _mm512_setzero_si512()) & _mm512_testn_epi32_mask(l, low16);
        let r = _mm512_add_epi32(n, half);
        let r = _mm512_sra_epi32(_mm512_mask_sub_epi32(r, tie_below, r, one), k.count);
        _mm512_add_epi32(r, zy)
    };
    let blocks = n / 32;
    for i in 0..blocks {
        // SAFETY: 32 bytes at 32 * i < n of each slice (lengths checked above).
        unsafe {
            let x = _mm512_cvtepi8_epi16(_mm256_loadu_si256(a.as_ptr().add(32 * i) as *const __m256i));
            let y = _mm512_cvtepi8_epi16(_mm256_loadu_si256(b.as_ptr().add(32 * i) as *const __m256i));
            let (x, y) = (_mm512_sub_epi16(x, za), _mm512_sub_epi16(y, zb));
            // unpack and pack both work within 128-bit lanes: the order comes back.
            let r = _mm512_packs_epi32(
                rounded(_mm512_unpacklo_epi16(x, y)),
                rounded(_mm512_unpackhi_epi16(x, y)),
            );
            let r = _mm256_min_epi8(_mm256_max_epi8(_mm512_cvtsepi16_epi8(r), ylo), yhi);
            _mm256_storeu_si256(out.as_mut_ptr().add(32 * i) as *mut __m256i, r);
        }
    }
    let done = blocks * 32;
    crate::kernels::reference::add(p, &a[done..], &b[done..], &mut out[done..]);
}

/// Eight i64 lanes a vector: `vpmuldq` products (exact: `|a - za| <= 255`, `|m| < 2^31`),
/// the reference's rounding with `vpsraq`, saturated by `vpmovsqb` after the clamp.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn add_avx512(p: &Add, a: &[i8], b: &[i8], out: &mut [i8]) {
    let n = out.len();
    assert!(a.len() == n && b.len() == n && (1..=62).contains(&p.shift));
    let (za, zb) = (_mm512_set1_epi64(p.a_zero as i64), _mm512_set1_epi64(p.b_zero as i64));
    let (ma, mb) = (_mm512_set1_epi64(p.mult[0] as i64), _mm512_set1_epi64(p.mult[1] as i64));
    let half = _mm512_set1_epi64(1i64 << (p.shift - 1));
    let count = _mm_set_epi64x(0, p.shift as i64);
    let zy = _mm512_set1_epi64(p.y_zero as i64);
    let (lo, hi) = (_mm512_set1_epi64(p.min as i64), _mm512_set1_epi64(p.max as i64));
    let blocks = n / 8;
    for i in 0..blocks {
        // SAFETY: 8 bytes at 8 * i < n of each slice (lengths checked above).
        unsafe {
            let x = _mm512_cvtepi8_epi64(_mm_loadl_epi64(a.as_ptr().add(8 * i) as *const __m128i));
            let y = _mm512_cvtepi8_epi64(_mm_loadl_epi64(b.as_ptr().add(8 * i) as *const __m128i));
            let v = _mm512_add_epi64(
                _mm512_mul_epi32(_mm512_sub_epi64(x, za), ma),
                _mm512_mul_epi32(_mm512_sub_epi64(y, zb), mb),
            );
            let r = _mm512_sra_epi64(
                _mm512_add_epi64(_mm512_add_epi64(v, half), _mm512_srai_epi64::<63>(v)),
                count,
            );
            let r = _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(r, zy), lo), hi);
            _mm_storel_epi64(out.as_mut_ptr().add(8 * i) as *mut __m128i, _mm512_cvtepi64_epi8(r));
        }
    }
    let done = blocks * 8;
    crate::kernels::reference::add(p, &a[done..], &b[done..], &mut out[done..]);
}

/// A pixel at a time: the input's bytes loaded under a mask into a register of zero
/// points, stored whole, 32 channels a step up to 32 channels (a 64-byte store per pixel
/// costs store bandwidth), else 64. A block that runs past the pixel lands on the next
/// pixel's first channels, stored after it (masked stores are slow on AMD Zen 4); the last
/// pixel's last block is stored under a mask. Each block's load mask is worked out once
/// (per pixel, it cost 3x on BlazeFace's 28-channel shortcut).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn pad_channels_avx512(p: &PadChannels, x: &[i8], out: &mut [i8]) {
    let PadChannels { c, co, before, zero } = *p;
    assert!(c > 0 && before + c <= co && x.len() == out.len() / co * c);
    const MAX_BLOCKS: usize = 4;
    if co > 64 * MAX_BLOCKS {
        return crate::kernels::reference::pad_channels(p, x, out);
    }
    // Lanes `lo..hi` (both clamped to 0..=64).
    let lanes = |lo: usize, hi: usize| {
        let upto = |n: usize| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
        upto(hi) & !upto(lo)
    };
    let (src, dst, len) = (x.as_ptr(), out.as_mut_ptr(), out.len());
    // The pointers below are only read at the loaded lanes: input channels 0..c of pixel px
    // (x holds every pixel's c channels); stores stay within out (the last pixel's last
    // block under a mask).
    if co <= 32 {
        let (zeros, load) = (_mm256_set1_epi8(zero), lanes(before, before + c) as u32);
        for px in 0..len / co {
            let at = px * co;
            // SAFETY: see above.
            unsafe {
                let v = _mm256_mask_loadu_epi8(zeros, load, src.wrapping_add(px * c).wrapping_sub(before));
                if at + 32 <= len {
                    _mm256_storeu_si256(dst.add(at) as *mut __m256i, v);
                } else {
                    _mm256_mask_storeu_epi8(dst.add(at), lanes(0, len - at) as u32, v);
                }
            }
        }
        return;
    }
    // Block b's output channels 64 b + l, before <= 64 b + l < before + c, read input
    // channel 64 b + l - before.
    let blocks = co.div_ceil(64);
    let mut load = [0u64; MAX_BLOCKS];
    for (b, m) in load.iter_mut().enumerate().take(blocks) {
        *m = lanes(before.saturating_sub(64 * b), (before + c).saturating_sub(64 * b));
    }
    let zeros = _mm512_set1_epi8(zero);
    for px in 0..len / co {
        for (b, &m) in load[..blocks].iter().enumerate() {
            let at = px * co + 64 * b;
            // SAFETY: see above.
            unsafe {
                let v =
                    _mm512_mask_loadu_epi8(zeros, m, src.wrapping_add(px * c + 64 * b).wrapping_sub(before));
                if at + 64 <= len {
                    _mm512_storeu_si512(dst.add(at) as *mut __m512i, v);
                } else {
                    _mm512_mask_storeu_epi8(dst.add(at), lanes(0, len - at), v);
                }
            }
        }
    }
}

/// Lanes `< n` of a 16-lane block.
#[inline(always)]
pub(super) fn lane_mask(n: usize) -> u16 {
    if n >= 16 { 0xFFFF } else { (1u16 << n) - 1 }
}

/// The output's zero point and clamp, for [`requant16`]: two vector operations of its
/// eleven, skipped where they may be.
#[derive(Clone, Copy)]
pub(super) struct OutRange {
    zp: __m512i,
    lo: __m512i,
    hi: __m512i,
    /// The clamp is narrower than int8 (a fused ReLU); else the narrowing's saturation is
    /// the clamp.
    clamp: bool,
    /// The zero point is added inside the rounding term ([`high_constants`]).
    pub(super) zp_in_half: bool,
}

impl OutRange {
    /// With every shift 33 to 54 (`t = s - 32 <= 22`), `(h + 2^(t-1) + zp 2^t) >> t` is
    /// `((h + 2^(t-1)) >> t) + zp` without overflow (`|h| <= 2^30`, `|zp| <= 128`).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn new(rq: &Requant, n: usize) -> OutRange {
        OutRange {
            zp: _mm512_set1_epi32(rq.zero_point),
            lo: _mm512_set1_epi32(rq.min as i32),
            hi: _mm512_set1_epi32(rq.max as i32),
            clamp: (rq.min, rq.max) != (i8::MIN, i8::MAX),
            zp_in_half: rq.shift[..n].iter().all(|s| (33..=54).contains(s)),
        }
    }
}

/// `clamp(zp + round_half_away(acc * mult / 2^shift))` on 16 lanes, saturated to int8.
/// The products are i64 (`vpmuldq` on even and odd lanes). With `high` (every shift 33 or
/// more: [`high_shifts`]) only their high halves are shifted: with `v = H 2^32 + L`,
/// `0 <= L < 2^32`, `t = s - 32`, the reference's `(v + 2^(s-1) - (v < 0)) >> s` is
/// `(H + 2^(t-1) - [H < 0 and L = 0]) >> t`, an i32 shift per lane (and `|H| < 2^30`).
/// Without `ties` (every multiplier odd: [`odd_multipliers`]) the tie term is zero.
/// `out`: the output's zero point, lower and upper bounds.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) fn requant16(
    acc: __m512i,
    mult: __m512i,
    shift: __m512i,
    out: OutRange,
    high: bool,
    ties: bool,
) -> __m128i {
    if high {
        return requant16_high(acc, mult, high_constants(mult, shift, &out), out, ties);
    }
    let one = _mm512_set1_epi64(1);
    let round = |v: __m512i, s: __m512i| {
        // (v + 2^(s-1) - (v < 0)) >> s, arithmetic.
        let half = _mm512_sllv_epi64(one, _mm512_sub_epi64(s, one));
        let neg = _mm512_srai_epi64::<63>(v);
        _mm512_srav_epi64(_mm512_add_epi64(_mm512_add_epi64(v, half), neg), s)
    };
    let low32 = _mm512_set1_epi64(0xFFFF_FFFF);
    let even = round(_mm512_mul_epi32(acc, mult), _mm512_and_si512(shift, low32));
    let odd = round(
        _mm512_mul_epi32(_mm512_srli_epi64::<32>(acc), _mm512_srli_epi64::<32>(mult)),
        _mm512_srli_epi64::<32>(shift),
    );
    let v = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64::<32>(odd));
    narrow(_mm512_add_epi32(v, out.zp), &out)
}

/// `v` clamped where [`OutRange::clamp`] says so, saturated to int8 in a register
/// (`vpmovsdb` straight to memory, as the compiler would fuse it with the store, is slow
/// on AMD Zen 4).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn narrow(v: __m512i, out: &OutRange) -> __m128i {
    let v = if out.clamp { _mm512_min_epi32(_mm512_max_epi32(v, out.lo), out.hi) } else { v };
    let mut r = _mm512_cvtsepi32_epi8(v);
    // SAFETY: an empty template; it only pins `r` to a register.
    unsafe {
        core::arch::asm!("/* {0} */", inout(xmm_reg) r, options(pure, nomem, nostack, preserves_flags))
    };
    r
}

/// Per-lane constants of [`requant16`] where every shift is 33 or more, for kernels that
/// work them out once per channel: the odd lanes' multipliers moved to the even ones (as
/// `vpmuldq` reads them), `t = shift - 32` and `2^(t - 1)` (plus `zp 2^t` with
/// [`OutRange::zp_in_half`]).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn high_constants(mult: __m512i, shift: __m512i, out: &OutRange) -> [__m512i; 3] {
    let one = _mm512_set1_epi32(1);
    let t = _mm512_sub_epi32(shift, _mm512_set1_epi32(32));
    let mut half = _mm512_sllv_epi32(one, _mm512_sub_epi32(t, one));
    if out.zp_in_half {
        half = _mm512_add_epi32(half, _mm512_sllv_epi32(out.zp, t));
    }
    [_mm512_srli_epi64::<32>(mult), t, half]
}

/// [`requant16`] with every shift 33 or more and its [`high_constants`] given:
/// `(h + 2^(t-1) - [h < 0 and l = 0]) >> t` from the products' high halves `h` and low
/// halves `l` (the last term only with `ties`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) fn requant16_high(
    acc: __m512i,
    mult: __m512i,
    [mult_odd, t, half]: [__m512i; 3],
    out: OutRange,
    ties: bool,
) -> __m128i {
    let even = _mm512_mul_epi32(acc, mult);
    let odd = _mm512_mul_epi32(_mm512_srli_epi64::<32>(acc), mult_odd);
    let h = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64::<32>(even), odd);
    let mut r = _mm512_add_epi32(h, half);
    if ties {
        // (`vpmulld` for the low halves was not faster than this blend on AMD Zen 4.)
        let l = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64::<32>(odd));
        let zero = _mm512_setzero_si512();
        let tie_below = _mm512_cmplt_epi32_mask(h, zero) & _mm512_cmpeq_epi32_mask(l, zero);
        r = _mm512_mask_sub_epi32(r, tie_below, r, _mm512_set1_epi32(1));
    }
    let v = _mm512_srav_epi32(r, t);
    narrow(if out.zp_in_half { v } else { _mm512_add_epi32(v, out.zp) }, &out)
}

/// Each multiplier made odd where its shift allows: `(m >> z, s - z)`, `z` the trailing
/// zeros of `m` but at most `s - 33` (a high shift stays high), rounds exactly as
/// `(m, s)`: both round the same real number `acc * m / 2^s` half away from zero. An odd
/// `m` leaves `acc * m` with zero low 32 bits only at `acc = 0`, so [`requant16`]'s tie
/// term vanishes; returns whether some multiplier stays even (ties remain possible).
/// Real layers' multipliers (`round(f 2^s)`) are even half the time; their shifts leave
/// room to make them odd.
pub(super) fn odd_multipliers(mult: &mut [i32], shift: &mut [i32]) -> bool {
    let mut ties = false;
    for (m, s) in mult.iter_mut().zip(shift.iter_mut()) {
        let z = (m.trailing_zeros() as i32).min(*s - 33).max(0);
        (*m, *s) = (*m >> z, *s - z);
        ties |= *m & 1 == 0 && *m != 0;
    }
    ties
}

/// Requantization vectors of output channels `j0..j0 + 16` (`mask`: those `< n`).
#[derive(Clone, Copy)]
struct Rq16 {
    bias: __m512i,
    mult: __m512i,
    shift: __m512i,
    /// Some multiplier is even ([`odd_multipliers`]).
    ties: bool,
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn rq16(rq: &Requant, j0: usize, mask: u16, with_offset: bool) -> Rq16 {
    // SAFETY: masked loads read only lanes < n, which the caller's size check covers.
    unsafe {
        let mut bias = _mm512_maskz_loadu_epi32(mask, rq.bias.as_ptr().add(j0));
        if with_offset {
            let wsum = _mm512_maskz_loadu_epi32(mask, rq.wsum.as_ptr().add(j0));
            bias = _mm512_sub_epi32(bias, _mm512_slli_epi32::<7>(wsum));
        }
        let mult = _mm512_maskz_loadu_epi32(mask, rq.mult.as_ptr().add(j0));
        let shift8 = _mm_maskz_loadu_epi8(mask, rq.shift.as_ptr().add(j0) as *const i8);
        // Lanes beyond n get shift 1 (any valid shift: their results are not stored).
        let shift = _mm512_mask_blend_epi32(mask, _mm512_set1_epi32(1), _mm512_cvtepu8_epi32(shift8));
        let (mut m, mut s) = ([0i32; 16], [0i32; 16]);
        _mm512_storeu_si512(m.as_mut_ptr() as *mut __m512i, mult);
        _mm512_storeu_si512(s.as_mut_ptr() as *mut __m512i, shift);
        // Lanes beyond n hold multiplier 0: no tie there.
        let ties = odd_multipliers(&mut m, &mut s);
        let load = |v: &[i32; 16]| _mm512_loadu_si512(v.as_ptr() as *const __m512i);
        Rq16 { bias, mult: load(&m), shift: load(&s), ties }
    }
}

/// Operands of one GEMM call, for the tile functions.
struct GemmArgs<'a> {
    k_pad: usize,
    a: &'a [i8],
    b: &'a [i8],
    n_pad: usize,
    out: *mut i8,
    ldo: usize,
    /// Every shift 33 or more ([`high_shifts`]).
    high: bool,
    /// Rows below this one may store a partial last block whole: its extra bytes land on
    /// the next row's first channels, which are stored after it (rows are contiguous,
    /// `ldo == n`, and one pass covers every channel). Masked stores are slow on AMD Zen 4.
    whole_tail_rows: usize,
}

/// Rows `i..i + R` times the `NB` 16-channel blocks from `j0`: each broadcast input word
/// feeds `NB` `vpdpbusd`, each weight load `R` of them.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile_vnni<const R: usize, const NB: usize>(
    g: &GemmArgs,
    i: usize,
    j0: usize,
    rqs: &[Rq16; 4],
    masks: &[u16; 4],
    consts: &OutRange,
) {
    let mut acc = [[_mm512_setzero_si512(); NB]; R];
    for row in acc.iter_mut() {
        for (q, a) in row.iter_mut().enumerate() {
            *a = rqs[q].bias;
        }
    }
    let bcol = g.b.as_ptr().wrapping_add(j0 * 4);
    let arow = g.a.as_ptr().wrapping_add(i * g.k_pad);
    for k4 in 0..g.k_pad / 4 {
        let mut bw = [_mm512_setzero_si512(); NB];
        for (q, w) in bw.iter_mut().enumerate() {
            // SAFETY: block q of slice k4 lies within k_pad * n_pad (j0 + 16 * NB <= n_pad).
            *w = unsafe { _mm512_loadu_si512(bcol.add((k4 * g.n_pad + 16 * q) * 4) as *const __m512i) };
        }
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: row i + r < m, columns k4 * 4 .. + 4 <= k_pad (caller).
            let a4 = unsafe { (arow.add(r * g.k_pad + k4 * 4) as *const i32).read_unaligned() };
            // int8 -> uint8 (+128) on the scalar side: keeps a vector port free.
            let av = _mm512_set1_epi32(a4 ^ 0x8080_8080u32 as i32);
            for (q, a) in row.iter_mut().enumerate() {
                *a = _mm512_dpbusd_epi32(*a, av, bw[q]);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (q, a) in row.iter().enumerate() {
            let v = requant16(*a, rqs[q].mult, rqs[q].shift, *consts, g.high, rqs[q].ties);
            let dst = g.out.wrapping_add((i + r) * g.ldo + j0 + 16 * q);
            // SAFETY: lanes < n - (j0 + 16 q) of row i + r (caller's bounds), or a whole
            // block that ends inside the next row (`whole_tail_rows`). A full block takes
            // a plain store: masked stores are slow on some cores (AMD Zen 4).
            unsafe {
                if masks[q] == 0xFFFF || i + r < g.whole_tail_rows {
                    _mm_storeu_si128(dst as *mut __m128i, v)
                } else {
                    _mm_mask_storeu_epi8(dst, masks[q], v)
                }
            };
        }
    }
}

/// [`tile_vnni`] for a pass whose last block has at most 8 channels (24-, 36- or
/// 56-channel layers): `NF` full blocks per row, and each row's last block accumulated in a
/// 256-bit register (on AMD Zen 4 half the cost of a 512-bit `vpdpbusd`), two rows' then
/// requantized together, lanes 0-7 for row `i + 2p`, 8-15 for row `i + 2p + 1`. 24 channels
/// take three 512-bit blocks' work per two rows instead of four. (The tails used to share
/// one 512-bit accumulator, their inputs blended: 5-10% slower on BlazeFace's stem.)
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile_pairs<const R: usize, const NF: usize>(g: &GemmArgs, i: usize, j0: usize, p: &Paired) {
    let mut acc = [[_mm512_setzero_si512(); NF]; R];
    for row in acc.iter_mut() {
        for (q, a) in row.iter_mut().enumerate() {
            *a = p.rqs[q].bias;
        }
    }
    // Each row's tail in a 256-bit register (half the cost of a 512-bit one on AMD Zen 4);
    // two rows' tails meet in one register for requantization.
    let mut tail = [_mm512_castsi512_si256(p.tail.bias); R];
    let bcol = g.b.as_ptr().wrapping_add(j0 * 4);
    let arow = g.a.as_ptr().wrapping_add(i * g.k_pad);
    for k4 in 0..g.k_pad / 4 {
        let mut bw = [_mm512_setzero_si512(); NF];
        for (q, w) in bw.iter_mut().enumerate() {
            // SAFETY: block q of slice k4 lies within k_pad * n_pad.
            *w = unsafe { _mm512_loadu_si512(bcol.add((k4 * g.n_pad + 16 * q) * 4) as *const __m512i) };
        }
        // SAFETY: the first 8 lanes of block NF (which n_pad holds whole).
        let bt = unsafe { _mm256_loadu_si256(bcol.add((k4 * g.n_pad + 16 * NF) * 4) as *const __m256i) };
        let mut av = [_mm512_setzero_si512(); R];
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: row i + r < m, columns k4 * 4 .. + 4 <= k_pad (caller).
            let a4 = unsafe { (arow.add(r * g.k_pad + k4 * 4) as *const i32).read_unaligned() };
            av[r] = _mm512_set1_epi32(a4 ^ 0x8080_8080u32 as i32);
            for (q, a) in row.iter_mut().enumerate() {
                *a = _mm512_dpbusd_epi32(*a, av[r], bw[q]);
            }
        }
        for (t, a) in tail.iter_mut().zip(av) {
            *t = _mm256_dpbusd_epi32(*t, _mm512_castsi512_si256(a), bt);
        }
    }
    let rq = |a: __m512i, r: &Rq16| requant16(a, r.mult, r.shift, p.consts, g.high, r.ties);
    let mut tails = [_mm_setzero_si128(); R];
    for pair in 0..R / 2 {
        let t = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(tail[2 * pair]), tail[2 * pair + 1]);
        let v = rq(t, &p.tail);
        (tails[2 * pair], tails[2 * pair + 1]) = (v, _mm_unpackhi_epi64(v, v));
    }
    // Row by row, each row's tail after its full blocks: a tail stored 8 bytes wide may
    // run onto the next row's first channels, stored after it.
    for (r, row) in acc.iter().enumerate() {
        let dst = g.out.wrapping_add((i + r) * g.ldo + j0);
        for (q, a) in row.iter().enumerate() {
            // SAFETY: a full block of row i + r.
            unsafe { _mm_storeu_si128(dst.wrapping_add(16 * q) as *mut __m128i, rq(*a, &p.rqs[q])) };
        }
        // SAFETY: the tail's lanes of row i + r; 8 bytes where the tail has 8 lanes or the
        // extra ones land on the next row's first channels (`whole_tail_rows`).
        unsafe {
            let dst = dst.wrapping_add(16 * NF);
            if p.tail_lanes == 8 || i + r < g.whole_tail_rows {
                _mm_storel_epi64(dst as *mut __m128i, tails[r])
            } else {
                _mm_mask_storeu_epi8(dst, lane_mask(p.tail_lanes), tails[r])
            }
        }
    }
}

/// One pass's requantization for [`tile_pairs`]: the full blocks', and the tail's with
/// its 8 lanes repeated in both halves.
struct Paired {
    rqs: [Rq16; 4],
    tail: Rq16,
    tail_lanes: usize,
    consts: OutRange,
}

/// Rows of a pass whose last block has at most 8 channels, two at a time ([`tile_pairs`]);
/// an odd last row through [`tile_vnni`].
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn rows_pairs<const NF: usize, const NB: usize>(
    g: &GemmArgs,
    m: usize,
    j0: usize,
    p: &Paired,
    masks: &[u16; 4],
) {
    let mut i = 0;
    // SAFETY (all calls): rows i..i + R exist; the caller checked the rest.
    unsafe {
        // Up to 20 accumulators and broadcasts either way.
        if NF <= 1 {
            while i + 8 <= m {
                tile_pairs::<8, NF>(g, i, j0, p);
                i += 8;
            }
        }
        while i + 4 <= m {
            tile_pairs::<4, NF>(g, i, j0, p);
            i += 4;
        }
        if i + 2 <= m {
            tile_pairs::<2, NF>(g, i, j0, p);
            i += 2;
        }
        if i < m {
            let mut rqs = p.rqs;
            rqs[NF] = p.tail;
            tile_vnni::<1, NB>(g, i, j0, &rqs, masks, &p.consts);
        }
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn rows_vnni<const NB: usize>(
    g: &GemmArgs,
    m: usize,
    j0: usize,
    rqs: &[Rq16; 4],
    masks: &[u16; 4],
    consts: &OutRange,
) {
    let mut i = 0;
    // SAFETY (all calls): rows i..i + R exist; the caller checked the rest.
    unsafe {
        // Narrow layers take 8 rows at a time: up to 16 accumulators either way.
        if NB <= 2 {
            while i + 8 <= m {
                tile_vnni::<8, NB>(g, i, j0, rqs, masks, consts);
                i += 8;
            }
        }
        while i + 4 <= m {
            tile_vnni::<4, NB>(g, i, j0, rqs, masks, consts);
            i += 4;
        }
        match m - i {
            3 => tile_vnni::<3, NB>(g, i, j0, rqs, masks, consts),
            2 => tile_vnni::<2, NB>(g, i, j0, rqs, masks, consts),
            1 => tile_vnni::<1, NB>(g, i, j0, rqs, masks, consts),
            _ => {}
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn gemm_vnni(
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
    let consts = OutRange::new(rq, n);
    let whole_tail_rows = if ldo == n && n <= 64 { m.saturating_sub(1) } else { 0 };
    let g = GemmArgs {
        k_pad,
        a,
        b,
        n_pad,
        out: out.as_mut_ptr(),
        ldo,
        high: high_shifts(rq, n),
        whole_tail_rows,
    };
    // Up to four 16-channel blocks per pass.
    for j0 in (0..n).step_by(64) {
        let nb = (n - j0).div_ceil(16).min(4);
        let mut masks = [0u16; 4];
        let zero = Rq16 {
            bias: _mm512_setzero_si512(),
            mult: _mm512_setzero_si512(),
            shift: _mm512_set1_epi32(1),
            ties: false,
        };
        let mut rqs = [zero, zero, zero, zero];
        for q in 0..nb {
            masks[q] = lane_mask(n - j0 - 16 * q);
            // SAFETY: j0 + 16 q < n <= the checked lengths.
            rqs[q] = unsafe { rq16(rq, j0 + 16 * q, masks[q], true) };
        }
        // SAFETY: sizes checked by the caller (`gemm_sizes_ok`).
        unsafe {
            let tail_lanes = n - j0 - 16 * (nb - 1);
            if tail_lanes <= 8 && m >= 2 {
                // The tail's lanes 0-7 repeated in 8-15 (128-bit chunks 0, 1, 0, 1).
                let dup = |v: __m512i| _mm512_shuffle_i64x2::<0x44>(v, v);
                let t = rqs[nb - 1];
                let tail = Rq16 { bias: dup(t.bias), mult: dup(t.mult), shift: dup(t.shift), ties: t.ties };
                let p = Paired { rqs, tail, tail_lanes, consts };
                match nb {
                    4 => rows_pairs::<3, 4>(&g, m, j0, &p, &masks),
                    3 => rows_pairs::<2, 3>(&g, m, j0, &p, &masks),
                    2 => rows_pairs::<1, 2>(&g, m, j0, &p, &masks),
                    _ => rows_pairs::<0, 1>(&g, m, j0, &p, &masks),
                }
            } else {
                match nb {
                    4 => rows_vnni::<4>(&g, m, j0, &rqs, &masks, &consts),
                    3 => rows_vnni::<3>(&g, m, j0, &rqs, &masks, &consts),
                    2 => rows_vnni::<2>(&g, m, j0, &rqs, &masks, &consts),
                    _ => rows_vnni::<1>(&g, m, j0, &rqs, &masks, &consts),
                }
            }
        }
    }
}

/// 16 channels of two taps as 32 i16, each channel's pair adjacent (`vpdpwssd`'s operand).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn tap_pair(t0: __m128i, t1: __m128i) -> __m512i {
    _mm512_cvtepi8_epi16(_mm256_set_m128i(_mm_unpackhi_epi8(t0, t1), _mm_unpacklo_epi8(t0, t1)))
}

/// The geometry of one depthwise call, for [`dw_pixels`].
struct DwGeom {
    taps: usize,
    pairs: usize,
    /// Each tap's (row, column) offset in the input.
    offs: [(isize, isize); 2 * DW_MAX_PAIRS],
    /// Each tap's offset in bytes (`(row * w + column) * c`), for windows inside the map.
    bytes: [usize; 2 * DW_MAX_PAIRS],
    /// The window's extent below and right of its first tap.
    reach: (isize, isize),
}

const DW_MAX_PAIRS: usize = 32;

/// `N` adjacent output pixels of one 16-channel block: `N` independent accumulator chains
/// (one chain of `vpdpwssd` would wait on its latency), each weight pair loaded once.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
#[allow(clippy::too_many_arguments)]
fn dw_pixels<const N: usize, const INSIDE: bool>(
    p: &Depthwise,
    g: &DwGeom,
    x: &[i8],
    c0: usize,
    mask: u16,
    wp: &[__m512i; DW_MAX_PAIRS],
    bias: __m512i,
    (y0, x0): (isize, isize),
) -> [__m512i; N] {
    let xz = _mm_set1_epi8(p.x_zero);
    let tap = |t: usize, j: usize| {
        if INSIDE {
            if t >= g.taps {
                return xz;
            }
            let at = (y0 as usize * p.w + x0 as usize + j * p.stride[1]) * p.c + c0 + g.bytes[t];
            // SAFETY: the caller checked that all N windows lie inside the map.
            return unsafe { _mm_maskz_loadu_epi8(mask, x.as_ptr().add(at)) };
        }
        let (iy, ix) = (y0 + g.offs[t].0, x0 + (j * p.stride[1]) as isize + g.offs[t].1);
        if t >= g.taps || iy < 0 || ix < 0 || iy >= p.h as isize || ix >= p.w as isize {
            xz
        } else {
            // SAFETY: an in-bounds pixel's masked lanes < c - c0.
            unsafe {
                _mm_maskz_loadu_epi8(mask, x.as_ptr().add((iy as usize * p.w + ix as usize) * p.c + c0))
            }
        }
    };
    let mut acc = [bias; N];
    for (k, wv) in wp.iter().enumerate().take(g.pairs) {
        for (j, a) in acc.iter_mut().enumerate() {
            *a = _mm512_dpwssd_epi32(*a, tap_pair(tap(2 * k, j), tap(2 * k + 1, j)), *wv);
        }
    }
    acc
}

/// Taps are taken two at a time (`vpdpwssd`: 32 MAC an instruction), their weights
/// interleaved once per channel block (an odd last tap pairs with a zero weight); four
/// output pixels at a time.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn depthwise_avx512(p: &Depthwise, x: &[i8], w: &[i8], rq: &Requant, out: &mut [i8]) {
    let (c, kw) = (p.c, p.kernel[1]);
    let taps = p.kernel[0] * kw;
    let pairs = taps.div_ceil(2);
    if pairs > DW_MAX_PAIRS {
        // Kernels over 8x8: the portable loop (no model of ours has one).
        return Reference.depthwise(p, x, w, rq, out);
    }
    let reach = (((p.kernel[0] - 1) * p.dilation[0]) as isize, ((kw - 1) * p.dilation[1]) as isize);
    let mut g = DwGeom { taps, pairs, offs: [(0, 0); 2 * DW_MAX_PAIRS], bytes: [0; 2 * DW_MAX_PAIRS], reach };
    for t in 0..taps {
        let (dy, dx) = ((t / kw) * p.dilation[0], (t % kw) * p.dilation[1]);
        g.offs[t] = (dy as isize, dx as isize);
        g.bytes[t] = (dy * p.w + dx) * c;
    }
    let high = high_shifts(rq, c);
    let out_range = OutRange::new(rq, c);
    let mut wp = [_mm512_setzero_si512(); DW_MAX_PAIRS];
    for c0 in (0..c).step_by(16) {
        let mask = lane_mask(c - c0);
        // SAFETY: masked lanes < c - c0 of rows the size check covers.
        let load_w = |t: usize| unsafe { _mm_maskz_loadu_epi8(mask, w.as_ptr().add(t * c + c0)) };
        for (k, v) in wp.iter_mut().enumerate().take(pairs) {
            let second = if 2 * k + 1 < taps { load_w(2 * k + 1) } else { _mm_setzero_si128() };
            *v = tap_pair(load_w(2 * k), second);
        }
        // SAFETY: c0 < c <= the checked lengths.
        let r = unsafe { rq16(rq, c0, mask, false) };
        let mut store = |oy: usize, ox: usize, acc: &[__m512i]| {
            for (j, a) in acc.iter().enumerate() {
                let v = requant16(*a, r.mult, r.shift, out_range, high, r.ties);
                // SAFETY: lanes < c - c0 of an output pixel.
                unsafe { _mm_mask_storeu_epi8(out.as_mut_ptr().add((oy * p.ow + ox + j) * c + c0), mask, v) };
            }
        };
        for oy in 0..p.oh {
            let y0 = (oy * p.stride[0]) as isize - p.pad[0] as isize;
            let at = |ox: usize| (y0, (ox * p.stride[1]) as isize - p.pad[1] as isize);
            // Four windows wholly inside the map need no bounds per tap.
            let inside = |(y0, x0): (isize, isize)| {
                y0 >= 0
                    && x0 >= 0
                    && y0 + g.reach.0 < p.h as isize
                    && x0 + 3 * p.stride[1] as isize + g.reach.1 < p.w as isize
            };
            let mut ox = 0;
            while ox + 4 <= p.ow {
                let acc = if inside(at(ox)) {
                    dw_pixels::<4, true>(p, &g, x, c0, mask, &wp, r.bias, at(ox))
                } else {
                    dw_pixels::<4, false>(p, &g, x, c0, mask, &wp, r.bias, at(ox))
                };
                store(oy, ox, &acc);
                ox += 4;
            }
            while ox < p.ow {
                store(oy, ox, &dw_pixels::<1, false>(p, &g, x, c0, mask, &wp, r.bias, at(ox)));
                ox += 1;
            }
        }
    }
}
