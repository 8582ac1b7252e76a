//! The AVX2 kernel set (`vpmaddwd` on sign-extended int8): GEMM on weights widened once
//! per block, depthwise over flat rows (`dw_rows.rs`) or pixel by pixel, Add in
//! split i32 lanes; the path of every x86-64 CPU without AVX-512.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::{add_avx2, dw_rows, high_shifts8, max_pool_avx2, prelu_avx2, quantize_input_avx2, split_add};
use crate::kernels::{Add, Depthwise, Gemm, Kernels, MaxPool, PRelu, Requant};

pub struct Avx2;

impl Kernels for Avx2 {
    fn name(&self) -> &'static str {
        "avx2"
    }

    fn gemm(&self, p: &Gemm, a: &[i8], b: &[i8], rq: &Requant, out: &mut [i8]) {
        assert!(crate::kernels::gemm_sizes_ok(p, a, b, rq, out));
        let Gemm { m, n, k_pad, n_pad, ldo } = *p;
        // SAFETY: the CPU has AVX2 (only handed out by `detect`); sizes checked above.
        unsafe { gemm_avx2(m, n, k_pad, a, b, n_pad, rq, out, ldo) }
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
        // SAFETY: as above.
        unsafe {
            if let Some(m) = p.split() { add_split_avx2(p, m, a, b, out) } else { add_avx2(p, a, b, out) }
        }
    }

    fn depthwise(&self, p: &Depthwise, x: &[i8], w: &[i8], rq: &Requant, out: &mut [i8]) {
        assert!(crate::kernels::depthwise_sizes_ok(p, x, w, rq, out));
        // SAFETY: as above.
        unsafe {
            if dw_rows::fits(p) {
                dw_rows::depthwise_rows_avx2(p, x, w, rq, out)
            } else {
                depthwise_avx2(p, x, w, rq, out)
            }
        }
    }
}

/// [`add_split_avx512`] on 16 elements a step.
#[target_feature(enable = "avx2")]
fn add_split_avx2(p: &Add, m: [[i16; 2]; 2], a: &[i8], b: &[i8], out: &mut [i8]) {
    let n = out.len();
    assert!(a.len() == n && b.len() == n);
    let k = split_add(p, m);
    let (hi, lo, half) = (_mm256_set1_epi32(k.hi), _mm256_set1_epi32(k.lo), _mm256_set1_epi32(k.half));
    let (za, zb) = (_mm256_set1_epi16(p.a_zero as i16), _mm256_set1_epi16(p.b_zero as i16));
    let (zy, low16) = (_mm256_set1_epi32(p.y_zero as i32), _mm256_set1_epi32(0xFFFF));
    let (ylo, yhi) = (_mm_set1_epi8(p.min), _mm_set1_epi8(p.max));
    let rounded = |ab: __m256i| {
        let l = _mm256_madd_epi16(ab, lo);
        let n = _mm256_add_epi32(_mm256_madd_epi16(ab, hi), _mm256_srai_epi32::<16>(l));
        // All ones (-1) where n < 0 and the low bits are zero.
        let tie_below = _mm256_and_si256(
            _mm256_cmpgt_epi32(_mm256_setzero_si256(), n),
            _mm256_cmpeq_epi32(_mm256_and_si256(l, low16), _mm256_setzero_si256()),
        );
        let r = _mm256_sra_epi32(_mm256_add_epi32(_mm256_add_epi32(n, half), tie_below), k.count);
        _mm256_add_epi32(r, zy)
    };
    let blocks = n / 16;
    for i in 0..blocks {
        // SAFETY: 16 bytes at 16 * i < n of each slice (lengths checked above).
        unsafe {
            let x = _mm256_cvtepi8_epi16(_mm_loadu_si128(a.as_ptr().add(16 * i) as *const __m128i));
            let y = _mm256_cvtepi8_epi16(_mm_loadu_si128(b.as_ptr().add(16 * i) as *const __m128i));
            let (x, y) = (_mm256_sub_epi16(x, za), _mm256_sub_epi16(y, zb));
            let r = _mm256_packs_epi32(
                rounded(_mm256_unpacklo_epi16(x, y)),
                rounded(_mm256_unpackhi_epi16(x, y)),
            );
            // Bytes 0-7 and 16-23 hold the 16 results: gather them into the low half.
            let r = _mm256_permute4x64_epi64::<0b00_00_10_00>(_mm256_packs_epi16(r, r));
            let r = _mm_min_epi8(_mm_max_epi8(_mm256_castsi256_si128(r), ylo), yhi);
            _mm_storeu_si128(out.as_mut_ptr().add(16 * i) as *mut __m128i, r);
        }
    }
    let done = blocks * 16;
    crate::kernels::reference::add(p, &a[done..], &b[done..], &mut out[done..]);
}

/// Arithmetic right shift of 4 i64 lanes by per-lane counts (AVX2 has only the logical one).
#[inline]
#[target_feature(enable = "avx2")]
fn srav64(v: __m256i, s: __m256i) -> __m256i {
    let neg = _mm256_cmpgt_epi64(_mm256_setzero_si256(), v);
    let fill = _mm256_sllv_epi64(neg, _mm256_sub_epi64(_mm256_set1_epi64x(64), s));
    _mm256_or_si256(_mm256_srlv_epi64(v, s), fill)
}

/// 8 lanes: `clamp(zp + round_half_away(acc * mult / 2^shift))` as i32. `high`: every shift
/// is 32 to 62 ([`high_shifts8`]), so the rounding runs in i32 lanes on the product's high
/// half, as [`requant16`]'s does from 33; shift 32 is H plus the low half's carry. AVX2 has
/// no 64-bit arithmetic shift, and the i32 one saves its emulation.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn requant8(
    acc: __m256i,
    mult: __m256i,
    shift: __m256i,
    zp: __m256i,
    lo: __m256i,
    hi: __m256i,
    high: bool,
) -> __m256i {
    let even = _mm256_mul_epi32(acc, mult);
    let odd = _mm256_mul_epi32(_mm256_srli_epi64::<32>(acc), _mm256_srli_epi64::<32>(mult));
    let v = if high {
        let one = _mm256_set1_epi32(1);
        let h = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(even), odd);
        let l = _mm256_blend_epi32::<0b1010_1010>(even, _mm256_slli_epi64::<32>(odd));
        let t = _mm256_sub_epi32(shift, _mm256_set1_epi32(32));
        // 0 where t = 0 (a count past 31 shifts everything out).
        let half = _mm256_sllv_epi32(one, _mm256_sub_epi32(t, one));
        let zero = _mm256_setzero_si256();
        let negative = _mm256_cmpgt_epi32(zero, h);
        // All ones (-1) where H < 0 and L = 0.
        let tie_below = _mm256_and_si256(negative, _mm256_cmpeq_epi32(l, zero));
        let shifted = _mm256_srav_epi32(_mm256_add_epi32(_mm256_add_epi32(h, half), tie_below), t);
        // Shift 32 (t = 0): H plus the carry of adding 2^31 (less one if negative) to L,
        // which is L >= 2^31, or L > 2^31 if negative. As a mask, -1 where it carries.
        let min = _mm256_set1_epi32(i32::MIN);
        let carry = _mm256_andnot_si256(
            _mm256_and_si256(negative, _mm256_cmpeq_epi32(l, min)),
            _mm256_cmpgt_epi32(zero, l),
        );
        let at32 = _mm256_sub_epi32(h, carry);
        _mm256_blendv_epi8(shifted, at32, _mm256_cmpeq_epi32(t, zero))
    } else {
        let one = _mm256_set1_epi64x(1);
        let round = |v: __m256i, s: __m256i| {
            let half = _mm256_sllv_epi64(one, _mm256_sub_epi64(s, one));
            let neg = _mm256_cmpgt_epi64(_mm256_setzero_si256(), v);
            srav64(_mm256_add_epi64(_mm256_add_epi64(v, half), neg), s)
        };
        let low32 = _mm256_set1_epi64x(0xFFFF_FFFF);
        let even = round(even, _mm256_and_si256(shift, low32));
        let odd = round(odd, _mm256_srli_epi64::<32>(shift));
        _mm256_blend_epi32::<0b1010_1010>(even, _mm256_slli_epi64::<32>(odd))
    };
    _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(v, zp), lo), hi)
}

/// Stores the low `n` (<= 16) int8 of two 8-lane i32 vectors.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn store16(dst: *mut i8, v0: __m256i, v1: __m256i, n: usize) {
    let packed16 = _mm256_packs_epi32(v0, v1); // [a0-3 b0-3 | a4-7 b4-7]
    let packed16 = _mm256_permute4x64_epi64::<0b11_01_10_00>(packed16); // [a0-7 | b0-7]
    let bytes = _mm256_packs_epi16(packed16, packed16); // [a b | a b]
    let bytes = _mm256_castsi256_si128(_mm256_permute4x64_epi64::<0b00_00_10_00>(bytes));
    // SAFETY: n <= 16 bytes to dst (caller's bounds); a full block in one store, a
    // partial one through a buffer (a copy of a run-time length is a `memcpy` call).
    unsafe {
        if n == 16 {
            _mm_storeu_si128(dst as *mut __m128i, bytes);
        } else if n == 8 {
            _mm_storel_epi64(dst as *mut __m128i, bytes);
        } else {
            let mut buf = [0i8; 16];
            _mm_storeu_si128(buf.as_mut_ptr() as *mut __m128i, bytes);
            for (k, &b) in buf.iter().enumerate().take(n) {
                *dst.add(k) = b;
            }
        }
    }
}

/// Requantization vectors of channels j0..j0+16 as two 8-lane halves (zero beyond n).
#[inline]
fn rq_lanes(rq: &Requant, j0: usize, n: usize) -> ([i32; 16], [i32; 16], [i32; 16]) {
    let (mut bias, mut mult, mut shift) = ([0i32; 16], [0i32; 16], [1i32; 16]);
    for t in 0..16.min(n - j0) {
        bias[t] = rq.bias[j0 + t];
        mult[t] = rq.mult[j0 + t];
        shift[t] = rq.shift[j0 + t] as i32;
    }
    (bias, mult, shift)
}

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
unsafe fn gemm_avx2(
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
    let g = Avx2Gemm {
        m,
        n,
        k_pad,
        a,
        b,
        n_pad,
        rq,
        ldo,
        high: high_shifts8(rq, n),
        zp: _mm256_set1_epi32(rq.zero_point),
        lo: _mm256_set1_epi32(rq.min as i32),
        hi: _mm256_set1_epi32(rq.max as i32),
    };
    for j0 in (0..n).step_by(16) {
        // A last block of 4, 8 or 12 channels multiplies only the quads it has (BlazeFace's
        // 24- and 28-channel layers: a third and an eighth of their work).
        // SAFETY: as the caller's.
        unsafe {
            match (n - j0).div_ceil(4) {
                1 => avx2_block::<1>(&g, j0, out),
                2 => avx2_block::<2>(&g, j0, out),
                3 => avx2_block::<3>(&g, j0, out),
                _ => avx2_block::<4>(&g, j0, out),
            }
        }
    }
}

/// The AVX2 GEMM's operands and output constants.
struct Avx2Gemm<'a> {
    m: usize,
    n: usize,
    k_pad: usize,
    a: &'a [i8],
    b: &'a [i8],
    n_pad: usize,
    rq: &'a Requant<'a>,
    ldo: usize,
    high: bool,
    zp: __m256i,
    lo: __m256i,
    hi: __m256i,
}

/// The most `k_pad / 4` whose weights [`avx2_block`] widens once for all rows (32 KiB
/// of stack at 16 channels); deeper GEMMs widen them again for every row pair.
const WIDE_K4: usize = 256;

/// Output channels `j0..` (at most `4 * NQ` of them) of every row.
#[target_feature(enable = "avx2")]
unsafe fn avx2_block<const NQ: usize>(g: &Avx2Gemm, j0: usize, out: &mut [i8]) {
    let bcol = g.b.as_ptr().wrapping_add(j0 * 4);
    // SAFETY: 16 * NQ bytes at (k4 * n_pad + j0) * 4, within k_pad * n_pad.
    let widen = |k4: usize, q: usize| unsafe {
        _mm256_cvtepi8_epi16(_mm_loadu_si128(bcol.add(k4 * g.n_pad * 4 + 16 * q) as *const __m128i))
    };
    let k4s = g.k_pad / 4;
    // SAFETY: as the caller's.
    unsafe {
        if k4s <= WIDE_K4 {
            // Widened once here, the weights cost the row loop loads instead of a
            // sign extension each (`vpmovsxbw`, one a cycle: the loop's bound).
            let mut wide = [[MaybeUninit::<__m256i>::uninit(); NQ]; WIDE_K4];
            for (k4, w) in wide.iter_mut().enumerate().take(k4s) {
                for (q, w) in w.iter_mut().enumerate() {
                    w.write(widen(k4, q));
                }
            }
            // SAFETY: written above for every k4 < k4s.
            avx2_rows::<NQ>(g, j0, out, |k4, q| wide[k4][q].assume_init());
        } else {
            avx2_rows::<NQ>(g, j0, out, widen);
        }
    }
}

/// Rows of a GEMM tile in [`avx2_rows`]: 2 rows x 4 quads of accumulators, the 4 quads'
/// weights, the rows' inputs and a product take 16 registers. (3 rows spill an
/// accumulator, whose chain through the stack then bounds the loop.)
const AVX2_ROWS: usize = 2;

/// [`avx2_block`]'s row loop, [`AVX2_ROWS`] rows a tile; `weights(k4, q)` is quad `q`'s 4
/// channels x 4 inputs at `k4`, as i16.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn avx2_rows<const NQ: usize>(
    g: &Avx2Gemm,
    j0: usize,
    out: &mut [i8],
    weights: impl Fn(usize, usize) -> __m256i,
) {
    let (bias, mult, shift) = rq_lanes(g.rq, j0, g.n);
    let t = Avx2Tile { j0, width: 16.min(g.n - j0), bias, mult, shift };
    let mut i = 0;
    // SAFETY: every tile's rows are below m.
    unsafe {
        while i + AVX2_ROWS <= g.m {
            avx2_tile::<NQ, AVX2_ROWS>(g, &t, i, out, &weights);
            i += AVX2_ROWS;
        }
        if i < g.m {
            avx2_tile::<NQ, 1>(g, &t, i, out, &weights);
        }
    }
}

/// One 16-channel block's output constants.
struct Avx2Tile {
    j0: usize,
    width: usize,
    bias: [i32; 16],
    mult: [i32; 16],
    shift: [i32; 16],
}

/// Rows `i..i + R` of one 16-channel block.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn avx2_tile<const NQ: usize, const R: usize>(
    g: &Avx2Gemm,
    t: &Avx2Tile,
    i: usize,
    out: &mut [i8],
    weights: &impl Fn(usize, usize) -> __m256i,
) {
    // Per row, NQ accumulators of 4 channels x 2 partial sums (the rest stay 0).
    let mut acc = [[_mm256_setzero_si256(); 4]; R];
    for k4 in 0..g.k_pad / 4 {
        // SAFETY: rows i + rr < m, columns k4 * 4 .. + 4 <= k_pad.
        let a16: [__m256i; R] = core::array::from_fn(|rr| unsafe {
            let a4 = (g.a.as_ptr().add((i + rr) * g.k_pad + k4 * 4) as *const i32).read_unaligned();
            // Four int8 -> int16, repeated over the register: a0 a1 a2 a3 a0 a1 ...
            _mm256_cvtepi8_epi16(_mm_set1_epi32(a4))
        });
        for q in 0..NQ {
            let w = weights(k4, q);
            for (acc, &a16) in acc.iter_mut().zip(&a16) {
                acc[q] = _mm256_add_epi32(acc[q], _mm256_madd_epi16(w, a16));
            }
        }
    }
    // SAFETY: 16-lane local arrays.
    let ld = |v: &[i32; 16], h: usize| unsafe { _mm256_loadu_si256(v.as_ptr().add(8 * h) as *const __m256i) };
    // hadd leaves channels as [0 1 4 5 | 2 3 6 7]: this puts them back in order.
    let order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
    for (rr, acc) in acc.iter().enumerate() {
        // Half `h` of the 16 channels: bias, then requantization.
        let rq8 = |c: __m256i, h: usize| {
            let acc = _mm256_add_epi32(c, ld(&t.bias, h));
            requant8(acc, ld(&t.mult, h), ld(&t.shift, h), g.zp, g.lo, g.hi, g.high)
        };
        let v0 = rq8(_mm256_permutevar8x32_epi32(_mm256_hadd_epi32(acc[0], acc[1]), order), 0);
        let v1 = if NQ > 2 {
            rq8(_mm256_permutevar8x32_epi32(_mm256_hadd_epi32(acc[2], acc[3]), order), 1)
        } else {
            _mm256_setzero_si256()
        };
        // SAFETY: `width` bytes of row i + rr.
        unsafe { store16(out.as_mut_ptr().add((i + rr) * g.ldo + t.j0), v0, v1, t.width) };
    }
}

#[target_feature(enable = "avx2")]
unsafe fn depthwise_avx2(p: &Depthwise, x: &[i8], w: &[i8], rq: &Requant, out: &mut [i8]) {
    let c = p.c;
    let high = high_shifts8(rq, c);
    let zp = _mm256_set1_epi32(rq.zero_point);
    let (lo, hi) = (_mm256_set1_epi32(rq.min as i32), _mm256_set1_epi32(rq.max as i32));
    for c0 in (0..c).step_by(16) {
        let lanes = 16.min(c - c0);
        let (bias, mult, shift) = rq_lanes(rq, c0, c);
        // SAFETY: 16-lane local arrays.
        let ld =
            |v: &[i32; 16], h: usize| unsafe { _mm256_loadu_si256(v.as_ptr().add(8 * h) as *const __m256i) };
        let load16 = |src: *const i8| -> [i8; 16] {
            let mut buf = [0i8; 16];
            // SAFETY: `lanes` bytes from an in-bounds position (caller).
            unsafe { core::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), lanes) };
            buf
        };
        for oy in 0..p.oh {
            for ox in 0..p.ow {
                let (mut a0, mut a1) = (ld(&bias, 0), ld(&bias, 1));
                for ky in 0..p.kernel[0] {
                    let iy = (oy * p.stride[0] + ky * p.dilation[0]) as isize - p.pad[0] as isize;
                    for kx in 0..p.kernel[1] {
                        let ix = (ox * p.stride[1] + kx * p.dilation[1]) as isize - p.pad[1] as isize;
                        let tap = ky * p.kernel[1] + kx;
                        let xs = if iy < 0 || ix < 0 || iy >= p.h as isize || ix >= p.w as isize {
                            [p.x_zero; 16]
                        } else {
                            load16(x.as_ptr().wrapping_add((iy as usize * p.w + ix as usize) * c + c0))
                        };
                        let ws = load16(w.as_ptr().wrapping_add(tap * c + c0));
                        // SAFETY: 16-byte local buffers.
                        unsafe {
                            let xv = _mm_loadu_si128(xs.as_ptr() as *const __m128i);
                            let wv = _mm_loadu_si128(ws.as_ptr() as *const __m128i);
                            let x0 = _mm256_cvtepi8_epi32(xv);
                            let x1 = _mm256_cvtepi8_epi32(_mm_srli_si128::<8>(xv));
                            let w0 = _mm256_cvtepi8_epi32(wv);
                            let w1 = _mm256_cvtepi8_epi32(_mm_srli_si128::<8>(wv));
                            a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(x0, w0));
                            a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(x1, w1));
                        }
                    }
                }
                let v0 = requant8(a0, ld(&mult, 0), ld(&shift, 0), zp, lo, hi, high);
                let v1 = requant8(a1, ld(&mult, 1), ld(&shift, 1), zp, lo, hi, high);
                // SAFETY: `lanes` bytes of an output pixel.
                unsafe { store16(out.as_mut_ptr().add((oy * p.ow + ox) * c + c0), v0, v1, lanes) };
            }
        }
    }
}
