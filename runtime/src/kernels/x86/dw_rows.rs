//! AVX-512 VNNI depthwise convolution for stride-1 windows, the common case of mobile
//! nets (BlazeFace's 3x3 blocks). Two changes against the per-pixel kernel in `mod.rs`:
//! - an output row is one flat run of `(column, channel)` lanes (stride 1 keeps every tap
//!   a fixed offset into the input row), so 24-channel maps fill all 16 lanes of each
//!   vector instead of leaving a third of them idle; each lane's channel is
//!   `lane mod C`, so weights and requantization come in `C / gcd(C, 16)` phases;
//! - the window's rows are interleaved in pairs for `vpdpwssd` once per output row, not
//!   once per output pixel and tap.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::{Rq16, lane_mask, requant16, tap_pair};
use crate::kernels::{Depthwise, Requant};

/// Interleaved pairs per row pair and chunk of output columns (24 KiB of stack in all).
const ROW_CAP: usize = 2048;
const MAX_ROW_PAIRS: usize = 3;
const MAX_KW: usize = 5;
const MAX_PHASES: usize = 16;
/// The most channels [`fits`] lets in (four output columns per chunk at least).
const MAX_C: usize = ROW_CAP / 4;

type Weights = [[__m512i; MAX_ROW_PAIRS * MAX_KW]; MAX_PHASES];

/// Distinct channel alignments of 16-lane blocks over a flat row of `c` channels.
fn phases(c: usize) -> usize {
    let (mut a, mut b) = (c, 16);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    c / a
}

/// Whether [`depthwise_rows`] takes this shape (else the per-pixel kernel does).
pub(super) fn fits(p: &Depthwise) -> bool {
    p.stride == [1, 1]
        && p.dilation == [1, 1]
        && p.kernel[0] <= 2 * MAX_ROW_PAIRS
        && p.kernel[1] <= MAX_KW
        && p.c > 0
        && phases(p.c) <= MAX_PHASES
        // At least four output columns per chunk.
        && p.c * (p.kernel[1] + 3) <= ROW_CAP
}

/// One `vpdpwssd` operand lane: `a` in the low i16, `b` in the high one.
fn pair(a: i8, b: i8) -> i32 {
    (a as i16 as u16 as u32 | (b as i16 as u16 as u32) << 16) as i32
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

/// Each phase's weights (`wt[phase][pair * kw + kx]`) and requantization: lane `l` of
/// phase `ph` holds channel `(16 ph + l) mod c`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn phase_tables(p: &Depthwise, w: &[i8], rq: &Requant, wt: &mut Weights, rqs: &mut [Rq16; MAX_PHASES]) {
    let (c, [kh, kw]) = (p.c, p.kernel);
    let nph = phases(c);
    let starts: [usize; MAX_PHASES] = core::array::from_fn(|ph| 16 * ph % c);
    let (mut a, mut b) = ([0i8; MAX_C + 16], [0i8; MAX_C + 16]);
    for v in 0..kh.div_ceil(2) {
        for kx in 0..kw {
            repeat(&w[(2 * v * kw + kx) * c..][..c], &mut a);
            // A missing second row of an odd window weighs zero.
            if 2 * v + 1 < kh {
                repeat(&w[((2 * v + 1) * kw + kx) * c..][..c], &mut b);
            } else {
                b.fill(0);
            }
            for (ph, &k) in starts.iter().enumerate().take(nph) {
                // SAFETY: k + 16 <= c + 16 bytes of each buffer.
                let load = |r: &[i8]| unsafe { _mm_loadu_si128(r.as_ptr().add(k) as *const __m128i) };
                wt[ph][v * kw + kx] = tap_pair(load(&a), load(&b));
            }
        }
    }
    let (mut bias, mut mult, mut shift) = ([0i32; MAX_C + 16], [0i32; MAX_C + 16], [0i32; MAX_C + 16]);
    repeat(&rq.bias[..c], &mut bias);
    repeat(&rq.mult[..c], &mut mult);
    let mut shifts = [0i32; MAX_C];
    for (s, &r) in shifts.iter_mut().zip(&rq.shift[..c]) {
        *s = r as i32;
    }
    repeat(&shifts[..c], &mut shift);
    for (ph, &k) in starts.iter().enumerate().take(nph) {
        // SAFETY: k + 16 <= c + 16 lanes of each buffer.
        let load = |r: &[i32]| unsafe { _mm512_loadu_si512(r.as_ptr().add(k) as *const __m512i) };
        rqs[ph] = Rq16 { bias: load(&bias), mult: load(&mult), shift: load(&shift) };
    }
}

/// `dst[k]` = the pair (row `ra`, row `rb`) at flat position `k` of columns `ix0..` of the
/// input (`k = column * c + channel`); rows and columns outside the map read the zero point.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn interleave_rows(p: &Depthwise, x: &[i8], rows: [isize; 2], ix0: isize, dst: &mut [MaybeUninit<i32>]) {
    let c = p.c;
    let inside = |r: isize| (0..p.h as isize).contains(&r).then_some(r as usize);
    let (ra, rb) = (inside(rows[0]), inside(rows[1]));
    let zz = MaybeUninit::new(pair(p.x_zero, p.x_zero));
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
    let (a, b) = (src(ra), src(rb));
    let xz = _mm_set1_epi8(p.x_zero);
    let blocks = len / 16;
    for i in 0..blocks {
        // SAFETY: 16 bytes at 16 i < len of each source, 16 i32 at 16 i of dst.
        unsafe {
            let load = |s: Option<&[i8]>| {
                s.map_or(xz, |s| _mm_loadu_si128(s.as_ptr().add(16 * i) as *const __m128i))
            };
            let (va, vb) = (load(a), load(b));
            let out = (dst.as_mut_ptr() as *mut i32).add(16 * i);
            _mm256_storeu_si256(out as *mut __m256i, _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(va, vb)));
            _mm256_storeu_si256(out.add(8) as *mut __m256i, _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(va, vb)));
        }
    }
    for k in 16 * blocks..len {
        let at = |s: Option<&[i8]>| s.map_or(p.x_zero, |s| s[k]);
        dst[k] = MaybeUninit::new(pair(at(a), at(b)));
    }
}

/// Shared state of one call, for [`blocks`].
struct Flat<'a> {
    kw: usize,
    c: usize,
    pairs: usize,
    nph: usize,
    /// Initialized up to `(columns + kw - 1) * c` by [`interleave_rows`].
    rows: &'a [[MaybeUninit<i32>; ROW_CAP]; MAX_ROW_PAIRS],
    wt: &'a Weights,
    rqs: &'a [Rq16; MAX_PHASES],
    consts: [__m512i; 3],
}

/// `N` consecutive 16-lane blocks of one chunk's flat output from lane `g` (`ph`: the
/// first block's phase), `N` independent accumulator chains; lanes `>= n` are not touched.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn blocks<const N: usize>(f: &Flat, g: usize, ph: usize, n: usize, dst: *mut i8) {
    // Each block's phase and lanes, worked out once (not per tap: `%` is a division).
    let phases: [usize; N] = core::array::from_fn(|j| (ph + j) % f.nph);
    let masks: [u16; N] = core::array::from_fn(|j| lane_mask(n - (g + 16 * j)));
    let (phase, mask) = (|j: usize| phases[j], |j: usize| masks[j]);
    let mut acc: [__m512i; N] = core::array::from_fn(|j| f.rqs[phase(j)].bias);
    for v in 0..f.pairs {
        let row = f.rows[v].as_ptr() as *const i32;
        for kx in 0..f.kw {
            for (j, a) in acc.iter_mut().enumerate() {
                let at = g + 16 * j + kx * f.c;
                // SAFETY: lanes < n - g - 16 j of the chunk's interleaved rows, which hold
                // (columns + kw - 1) * c pairs.
                let xs = unsafe { _mm512_maskz_loadu_epi32(mask(j), row.add(at)) };
                *a = _mm512_dpwssd_epi32(*a, xs, f.wt[phase(j)][v * f.kw + kx]);
            }
        }
    }
    let [zp, lo, hi] = f.consts;
    for (j, a) in acc.iter().enumerate() {
        let r = &f.rqs[phase(j)];
        let y = requant16(*a, r.mult, r.shift, zp, lo, hi);
        // SAFETY: lanes < n - g - 16 j of the chunk's output run. A full block takes a
        // plain store: masked stores are slow on some cores (AMD Zen 4).
        unsafe {
            match mask(j) {
                0xFFFF => _mm_storeu_si128(dst.add(g + 16 * j) as *mut __m128i, y),
                m => _mm_mask_storeu_epi8(dst.add(g + 16 * j), m, y),
            }
        }
    }
}

/// Depthwise convolution of a shape that [`fits`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn depthwise_rows(p: &Depthwise, x: &[i8], w: &[i8], rq: &Requant, out: &mut [i8]) {
    let (c, [kh, kw]) = (p.c, p.kernel);
    let nph = phases(c);
    let zero = _mm512_setzero_si512();
    let mut wt = [[zero; MAX_ROW_PAIRS * MAX_KW]; MAX_PHASES];
    let mut rqs = [Rq16 { bias: zero, mult: zero, shift: zero }; MAX_PHASES];
    phase_tables(p, w, rq, &mut wt, &mut rqs);
    let consts = [
        _mm512_set1_epi32(rq.zero_point),
        _mm512_set1_epi32(rq.min as i32),
        _mm512_set1_epi32(rq.max as i32),
    ];
    // Not zeroed (24 KiB a call): every lane read is written first.
    let mut rows = [[MaybeUninit::<i32>::uninit(); ROW_CAP]; MAX_ROW_PAIRS];
    let pairs = kh.div_ceil(2);
    let chunk = ROW_CAP / c - (kw - 1);
    for oy in 0..p.oh {
        let iy0 = oy as isize - p.pad[0] as isize;
        let mut ox0 = 0;
        while ox0 < p.ow {
            let cols = chunk.min(p.ow - ox0);
            let ix0 = ox0 as isize - p.pad[1] as isize;
            for (v, row) in rows.iter_mut().enumerate().take(pairs) {
                let ra = iy0 + 2 * v as isize;
                // A missing second row of an odd window: its weights are zero.
                let rb = if 2 * v + 1 < kh { ra + 1 } else { -1 };
                interleave_rows(p, x, [ra, rb], ix0, &mut row[..(cols + kw - 1) * c]);
            }
            let f = Flat { kw, c, pairs, nph, rows: &rows, wt: &wt, rqs: &rqs, consts };
            let n = cols * c;
            let dst = out[(oy * p.ow + ox0) * c..][..n].as_mut_ptr();
            let (mut g, mut ph) = (0, 0);
            // SAFETY: g < n throughout; `blocks` touches lanes < n only.
            unsafe {
                while g + 64 <= n {
                    blocks::<4>(&f, g, ph, n, dst);
                    (g, ph) = (g + 64, (ph + 4) % nph);
                }
                while g < n {
                    blocks::<1>(&f, g, ph, n, dst);
                    (g, ph) = (g + 16, (ph + 1) % nph);
                }
            }
            ox0 += cols;
        }
    }
}
