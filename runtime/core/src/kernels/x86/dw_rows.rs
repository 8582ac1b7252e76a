//! Depthwise convolution for strides 1 and 2 without dilation, the mobile nets' case
//! (BlazeFace's 3x3 blocks), for AVX2 (AVX-512 VNNI has `dw_quads`). Two changes against
//! per-pixel kernels:
//! - an output row is one flat run of `(column, channel)` lanes: the input row is taken
//!   as `stride` decimated copies (columns `stride * j + r`), in which every tap is a fixed
//!   offset, so 24-channel maps fill every lane instead of leaving a third of a
//!   16-channel block idle; each lane's channel is `lane mod C`, so weights and
//!   requantization come in `C / gcd(C, 16)` phases of 16 lanes;
//! - the window's rows are interleaved in i16 pairs once per output row, not once per
//!   output pixel and tap: one `vpmaddwd` + `vpaddd` then takes two rows of a tap column.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::avx2::{requant8, store16};
use super::{high_shifts8, phases};
use crate::kernels::{Depthwise, Requant, block_starts};

/// Interleaved pairs per row pair, decimation and chunk of output columns (48 KiB of
/// stack in all).
const ROW_CAP: usize = 2048;
const MAX_ROW_PAIRS: usize = 3;
const MAX_STRIDE: usize = 2;
const MAX_KW: usize = 5;
/// Channel phases (`c / gcd(c, 16)`): 32 takes BlazeFace's 42-channel stride-2 block (21),
/// which the per-pixel kernel ran 3x slower; the tables then take 36 KiB of stack.
const MAX_PHASES: usize = 32;
/// The most channels [`fits`] lets in (four output columns per chunk at least).
const MAX_C: usize = ROW_CAP / 4;

/// 16 lanes of i32 (two 8-lane halves).
type Lanes = [i32; 16];
type Rows = [[MaybeUninit<i32>; ROW_CAP]; MAX_ROW_PAIRS * MAX_STRIDE];

/// Whether [`depthwise_rows_avx2`] takes this shape (else the per-pixel kernel runs).
pub(super) fn fits(p: &Depthwise) -> bool {
    (1..=MAX_STRIDE).contains(&p.stride[0])
        && (1..=MAX_STRIDE).contains(&p.stride[1])
        && p.dilation == [1, 1]
        && p.kernel[0] <= 2 * MAX_ROW_PAIRS
        && p.kernel[1] <= MAX_KW
        && p.c > 0
        && phases(p.c) <= MAX_PHASES
        // At least four output columns per chunk.
        && p.c * (p.kernel[1] + 3) <= ROW_CAP
}

/// One `vpdpwssd`/`vpmaddwd` operand lane: `a` in the low i16, `b` in the high one.
fn pair(a: i8, b: i8) -> i32 {
    (a as i16 as u16 as u32 | (b as i16 as u16 as u32) << 16) as i32
}

/// `dst[0..16] = pair(a[l], b[l])` for the 16 bytes of `a` and `b`.
///
/// # Safety
/// `dst` is valid for 16 i32 writes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn pair16(a: __m128i, b: __m128i, dst: *mut i32) {
    // SAFETY: the caller's.
    unsafe {
        _mm256_storeu_si256(dst as *mut __m256i, _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b)));
        _mm256_storeu_si256(dst.add(8) as *mut __m256i, _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(a, b)));
    }
}

/// Per-channel values repeated past the end (`buf[i] = row[i mod c]`), so that the 16
/// lanes of any phase, starting below `c`, are one contiguous load.
fn repeat<T: Copy>(row: &[T], buf: &mut [T]) {
    let c = row.len();
    buf[..c].copy_from_slice(row);
    for i in c..c + 16 {
        buf[i] = buf[i - c];
    }
}

/// Each phase's weights and requantization: lane `l` of phase `ph` holds channel
/// `(16 ph + l) mod c`; `weights[ph][pair * kw + kx]` are the pairs of window rows
/// `2 pair` and `2 pair + 1` (zero past an odd window's last row).
struct Tables {
    nph: usize,
    weights: [[Lanes; MAX_ROW_PAIRS * MAX_KW]; MAX_PHASES],
    bias: [Lanes; MAX_PHASES],
    mult: [Lanes; MAX_PHASES],
    shift: [Lanes; MAX_PHASES],
}

#[target_feature(enable = "avx2")]
fn phase_tables(p: &Depthwise, w: &[i8], rq: &Requant, t: &mut Tables) {
    let (c, [kh, kw]) = (p.c, p.kernel);
    t.nph = phases(c);
    let starts: [usize; MAX_PHASES] = core::array::from_fn(|ph| 16 * ph % c);
    let (mut a, mut b) = ([0i8; MAX_C + 16], [0i8; MAX_C + 16]);
    for v in 0..kh.div_ceil(2) {
        for kx in 0..kw {
            repeat(&w[(2 * v * kw + kx) * c..][..c], &mut a);
            if 2 * v + 1 < kh {
                repeat(&w[((2 * v + 1) * kw + kx) * c..][..c], &mut b);
            } else {
                b.fill(0);
            }
            for (ph, &k) in starts.iter().enumerate().take(t.nph) {
                // SAFETY: k + 16 <= c + 16 bytes of each buffer; 16 lanes of the table.
                unsafe {
                    let load = |r: &[i8]| _mm_loadu_si128(r.as_ptr().add(k) as *const __m128i);
                    pair16(load(&a), load(&b), t.weights[ph][v * kw + kx].as_mut_ptr());
                }
            }
        }
    }
    let mut lanes = [0i32; MAX_C + 16];
    let mut fill = |row: &[i32], table: &mut [Lanes; MAX_PHASES]| {
        repeat(row, &mut lanes);
        for (ph, &k) in starts.iter().enumerate().take(t.nph) {
            table[ph].copy_from_slice(&lanes[k..k + 16]);
        }
    };
    fill(&rq.bias[..c], &mut t.bias);
    fill(&rq.mult[..c], &mut t.mult);
    let mut shifts = [0i32; MAX_C];
    for (s, &r) in shifts.iter_mut().zip(&rq.shift[..c]) {
        *s = r as i32;
    }
    fill(&shifts[..c], &mut t.shift);
}

/// `dst[j * c + ch]` = the pair (row `ra`, row `rb`) at column `ix0 + step * j`, channel
/// `ch`; rows and columns outside the map read the zero point.
#[target_feature(enable = "avx2")]
fn interleave_rows(
    p: &Depthwise,
    x: &[i8],
    rows: [isize; 2],
    ix0: isize,
    step: usize,
    dst: &mut [MaybeUninit<i32>],
) {
    let c = p.c;
    let inside = |r: isize| (0..p.h as isize).contains(&r).then_some(r as usize);
    let (ra, rb) = (inside(rows[0]), inside(rows[1]));
    let zz = MaybeUninit::new(pair(p.x_zero, p.x_zero));
    if step > 1 {
        return interleave_columns(p, x, [ra, rb], ix0, step, dst);
    }
    let cols = (dst.len() / c) as isize;
    let (lo, hi) = (ix0.max(0), (ix0 + cols).min(p.w as isize));
    if (ra.is_none() && rb.is_none()) || lo >= hi {
        dst.fill(zz);
        return;
    }
    // Columns left and right of the map.
    dst[..(lo - ix0) as usize * c].fill(zz);
    dst[(hi - ix0) as usize * c..].fill(zz);
    let len = (hi - lo) as usize * c;
    let dst = &mut dst[(lo - ix0) as usize * c..][..len];
    let src = |r: Option<usize>| r.map(|r| &x[(r * p.w + lo as usize) * c..][..len]);
    pair_run(src(ra), src(rb), p.x_zero, dst);
}

/// `dst[k] = pair(a[k], b[k])` over a run of bytes, 16 at a time (the last block moved
/// back to end with the run: a stride-2 layer's 28 channels are two blocks, not one and
/// 12 bytes one by one); a missing row (`None`) reads `x_zero`.
#[inline]
#[target_feature(enable = "avx2")]
fn pair_run(a: Option<&[i8]>, b: Option<&[i8]>, x_zero: i8, dst: &mut [MaybeUninit<i32>]) {
    let len = dst.len();
    if len < 16 {
        for k in 0..len {
            let at = |s: Option<&[i8]>| s.map_or(x_zero, |s| s[k]);
            dst[k] = MaybeUninit::new(pair(at(a), at(b)));
        }
        return;
    }
    let xz = _mm_set1_epi8(x_zero);
    for k in block_starts(len, 16) {
        // SAFETY: 16 bytes at k <= len - 16 of each source (as long as dst), 16 i32 of dst.
        unsafe {
            let load = |s: Option<&[i8]>| {
                s.map_or(xz, |s| _mm_loadu_si128(s[..len].as_ptr().add(k) as *const __m128i))
            };
            pair16(load(a), load(b), (dst.as_mut_ptr() as *mut i32).add(k));
        }
    }
}

/// [`interleave_rows`] for a step over 1: column by column, 16 channels at a time.
#[target_feature(enable = "avx2")]
fn interleave_columns(
    p: &Depthwise,
    x: &[i8],
    [ra, rb]: [Option<usize>; 2],
    ix0: isize,
    step: usize,
    dst: &mut [MaybeUninit<i32>],
) {
    let c = p.c;
    let zz = MaybeUninit::new(pair(p.x_zero, p.x_zero));
    for (j, d) in dst.chunks_exact_mut(c).enumerate() {
        let ix = ix0 + (step * j) as isize;
        if !(0..p.w as isize).contains(&ix) || (ra.is_none() && rb.is_none()) {
            d.fill(zz);
            continue;
        }
        let px = |r: Option<usize>| r.map(|r| &x[(r * p.w + ix as usize) * c..][..c]);
        pair_run(px(ra), px(rb), p.x_zero, d);
    }
}

/// Shared state of one call, for the block kernels.
struct Flat<'a> {
    kw: usize,
    c: usize,
    pairs: usize,
    /// The horizontal stride: `rows[v * sx + r]` holds columns `sx * j + r` (less the pad).
    sx: usize,
    /// Initialized up to `(columns + (kw - 1) / sx) * c` by [`interleave_rows`].
    rows: &'a Rows,
    t: &'a Tables,
    zero_point: i32,
    min: i32,
    max: i32,
    /// Every shift 32 or more (`high_shifts8`).
    high: bool,
}

/// Phase `ph + step` of `nph` (no division: this runs per block).
#[inline]
fn phase_after(ph: usize, step: usize, nph: usize) -> usize {
    let mut next = ph + step;
    while next >= nph {
        next -= nph;
    }
    next
}

/// `N` consecutive 16-lane blocks of one chunk's flat output from lane `g` (`ph`: the
/// first block's phase), `N` independent accumulator chains; lanes `>= n` are not touched.
/// Each block is two 8-lane halves; `vpmaddwd` takes two rows of a tap column. The
/// horizontal stride `SX` is a constant: each tap's row and offset divide by it. `KW`:
/// the window's width, or 0 to read it from `f`; `FULL`: every block has 16 lanes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn blocks_avx2<const N: usize, const SX: usize, const KW: usize, const FULL: bool>(
    f: &Flat,
    g: usize,
    ph: usize,
    n: usize,
    dst: *mut i8,
) {
    let phases: [usize; N] = core::array::from_fn(|j| phase_after(ph, j, f.t.nph));
    let lanes: [usize; N] = core::array::from_fn(|j| if FULL { 16 } else { (n - (g + 16 * j)).min(16) });
    let kw = if KW > 0 { KW } else { f.kw };
    // Lane masks of the halves (maskload reads only the lanes < count).
    let half_mask = |count: usize, half: usize| {
        let k = count.saturating_sub(8 * half).min(8) as i32;
        _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
    };
    // SAFETY (loads from the tables): half h of a 16-lane array.
    let ld = |l: &Lanes, h: usize| unsafe { _mm256_loadu_si256(l.as_ptr().add(8 * h) as *const __m256i) };
    let mut acc: [[__m256i; 2]; N] = core::array::from_fn(|j| {
        let bias = &f.t.bias[phases[j]];
        [ld(bias, 0), ld(bias, 1)]
    });
    for v in 0..f.pairs {
        for kx in 0..kw {
            let row = f.rows[v * SX + kx % SX].as_ptr() as *const i32;
            for (j, a) in acc.iter_mut().enumerate() {
                let w = &f.t.weights[phases[j]][v * kw + kx];
                for (h, a) in a.iter_mut().enumerate() {
                    let at = g + 16 * j + 8 * h + kx / SX * f.c;
                    // SAFETY: lanes < n - g - 16 j of the chunk's interleaved rows, which
                    // hold (columns + kw - 1) * c pairs; a full half is read whole, a partial
                    // one through its mask.
                    let xs = unsafe {
                        if lanes[j] >= 8 * (h + 1) {
                            _mm256_loadu_si256(row.add(at) as *const __m256i)
                        } else {
                            _mm256_maskload_epi32(row.add(at), half_mask(lanes[j], h))
                        }
                    };
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(xs, ld(w, h)));
                }
            }
        }
    }
    let (zp, lo, hi) = (_mm256_set1_epi32(f.zero_point), _mm256_set1_epi32(f.min), _mm256_set1_epi32(f.max));
    for (j, a) in acc.iter().enumerate() {
        let (mult, shift) = (&f.t.mult[phases[j]], &f.t.shift[phases[j]]);
        // (Written out: through `[0, 1].map` the compiler called the requantization out of
        // line, reloading its constants each time.)
        let y0 = requant8(a[0], ld(mult, 0), ld(shift, 0), zp, lo, hi, f.high);
        let y1 = requant8(a[1], ld(mult, 1), ld(shift, 1), zp, lo, hi, f.high);
        // SAFETY: lanes < n - g - 16 j of the chunk's output run.
        unsafe { store16(dst.add(g + 16 * j), y0, y1, lanes[j]) };
    }
}

/// The row loop; `run(f, n, dst)` computes one chunk's blocks.
#[inline(always)]
fn for_each_chunk(
    p: &Depthwise,
    x: &[i8],
    w: &[i8],
    rq: &Requant,
    out: &mut [i8],
    mut run: impl FnMut(&Flat, usize, *mut i8),
) {
    let (c, [kh, kw]) = (p.c, p.kernel);
    let mut t = Tables {
        nph: 0,
        weights: [[[0; 16]; MAX_ROW_PAIRS * MAX_KW]; MAX_PHASES],
        bias: [[0; 16]; MAX_PHASES],
        mult: [[0; 16]; MAX_PHASES],
        shift: [[0; 16]; MAX_PHASES],
    };
    // SAFETY: the caller runs only where AVX2 was detected.
    unsafe { phase_tables(p, w, rq, &mut t) };
    // Not zeroed (48 KiB a call): every lane read is written first.
    let mut rows: Rows = [[MaybeUninit::uninit(); ROW_CAP]; MAX_ROW_PAIRS * MAX_STRIDE];
    let (pairs, [sy, sx]) = (kh.div_ceil(2), p.stride);
    // Columns of each decimated row beyond a chunk's outputs.
    let reach = (kw - 1) / sx;
    let chunk = ROW_CAP / c - reach;
    for oy in 0..p.oh {
        let iy0 = (oy * sy) as isize - p.pad[0] as isize;
        let mut ox0 = 0;
        while ox0 < p.ow {
            let cols = chunk.min(p.ow - ox0);
            for v in 0..pairs {
                let ra = iy0 + 2 * v as isize;
                // A missing second row of an odd window: its weights are zero.
                let rb = if 2 * v + 1 < kh { ra + 1 } else { -1 };
                for r in 0..sx {
                    let ix0 = (sx * ox0 + r) as isize - p.pad[1] as isize;
                    let row = &mut rows[v * sx + r][..(cols + reach) * c];
                    // SAFETY: as above.
                    unsafe { interleave_rows(p, x, [ra, rb], ix0, sx, row) };
                }
            }
            let f = Flat {
                kw,
                c,
                pairs,
                sx,
                rows: &rows,
                t: &t,
                zero_point: rq.zero_point,
                min: rq.min as i32,
                max: rq.max as i32,
                high: high_shifts8(rq, c),
            };
            let n = cols * c;
            run(&f, n, out[(oy * p.ow + ox0) * c..][..n].as_mut_ptr());
            ox0 += cols;
        }
    }
}

/// Depthwise convolution of a shape that [`fits`], AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn depthwise_rows_avx2(p: &Depthwise, x: &[i8], w: &[i8], rq: &Requant, out: &mut [i8]) {
    // The mobile nets' 3x3 and 5x5 windows get their width as a constant (the tap loop
    // unrolled); other widths read it at run time.
    // SAFETY: as the caller's.
    for_each_chunk(p, x, w, rq, out, |f, n, dst| unsafe {
        match (f.sx, f.kw) {
            (1, 3) => flat_run::<1, 3>(f, n, dst),
            (1, 5) => flat_run::<1, 5>(f, n, dst),
            (1, _) => flat_run::<1, 0>(f, n, dst),
            (_, 3) => flat_run::<2, 3>(f, n, dst),
            (_, 5) => flat_run::<2, 5>(f, n, dst),
            _ => flat_run::<2, 0>(f, n, dst),
        }
    });
}

/// One chunk's `n` output lanes, 32 then 16 at a time: whole blocks without lane masks,
/// a partial last block with them.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn flat_run<const SX: usize, const KW: usize>(f: &Flat, n: usize, dst: *mut i8) {
    let (mut g, mut ph) = (0, 0);
    // SAFETY: g < n throughout; the blocks touch lanes < n only.
    unsafe {
        while g + 32 <= n {
            blocks_avx2::<2, SX, KW, true>(f, g, ph, n, dst);
            (g, ph) = (g + 32, phase_after(ph, 2, f.t.nph));
        }
        if g + 16 <= n {
            blocks_avx2::<1, SX, KW, true>(f, g, ph, n, dst);
            (g, ph) = (g + 16, phase_after(ph, 1, f.t.nph));
        }
        if g < n {
            blocks_avx2::<1, SX, KW, false>(f, g, ph, n, dst);
        }
    }
}
