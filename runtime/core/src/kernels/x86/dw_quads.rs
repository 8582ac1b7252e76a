//! Depthwise convolution with `vpdpbusd` (AVX-512 VNNI), unit column stride, no
//! dilation (the mobile nets' stride-1 blocks; strided ones run per pixel): each
//! i32 lane holds four taps of one window row, so one instruction does 64 multiply-adds
//! (`vpdpwssd` on tap pairs does 32). A 3x3 window takes three instructions per 16
//! outputs, a 5x5 one ten.
//! - Inputs are offset by 128 (`x ^ 0x80`: `vpdpbusd` multiplies unsigned by signed
//!   bytes); the offset comes back exactly through the bias (`bias - 128 * sum(w)`, in
//!   wrapping i32 as the reference accumulates), as in the GEMM.
//! - Each input row is prepared once per chunk of columns, as flat `(column, channel)`
//!   lanes holding the four bytes its window row reads, and kept in a ring of `kh` rows
//!   while every output row that reads it is computed (three times for 3x3, stride 1).
//! - A flat row fills every lane whatever the channel count: lane `l` holds channel
//!   `l mod c`, so weights and requantization come in `c / gcd(c, 16)` phases. A row runs
//!   phase by phase, each phase's tables held in registers across its blocks.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::avx512::{OutRange, lane_mask, odd_multipliers, requant16, requant16_high};
use super::{high_shifts, phases};
use crate::kernels::{Depthwise, Requant};

/// u32 lanes of prepared rows, on the stack (48 KiB).
const Q_CAP: usize = 12 * 1024;
const MAX_KH: usize = 5;
/// Quads per window row: kernels up to 8 wide.
const MAX_NQ: usize = 2;
const MAX_PHASES: usize = 16;

type Lanes = [i32; 16];

/// Prepared rows (a ring of `kh`) and one row of the zero point, for one chunk.
fn slots(p: &Depthwise) -> usize {
    p.kernel[0] * p.kernel[1].div_ceil(4) + 1
}

/// Whether [`depthwise_quads`] takes this shape (`mod.rs` decides; else the other kernels).
pub(super) fn fits(p: &Depthwise) -> bool {
    // Columns two apart would be prepared for every output column (taps shared by two
    // of them): measured slower than the per-pixel kernel on BlazeFace's stride-2 blocks.
    p.dilation == [1, 1]
        && p.stride[0] >= 1
        && p.stride[1] == 1
        && (1..=MAX_KH).contains(&p.kernel[0])
        && (1..=4 * MAX_NQ).contains(&p.kernel[1])
        && p.c > 0
        && phases(p.c) <= MAX_PHASES
        // At least four output columns per chunk.
        && 4 * p.c * slots(p) <= Q_CAP
}

/// Each phase's weights and requantization; lane `l` of phase `ph` holds channel
/// `(16 ph + l) mod c`. `weights[ph][ky * nq + q]` packs taps `4q..4q + 4` of window row
/// `ky` (zero past the kernel's width); `bias` already takes back the inputs' offset.
struct Tables {
    nph: usize,
    weights: [[MaybeUninit<Lanes>; MAX_KH * MAX_NQ]; MAX_PHASES],
    bias: [MaybeUninit<Lanes>; MAX_PHASES],
    mult: [MaybeUninit<Lanes>; MAX_PHASES],
    shift: [MaybeUninit<Lanes>; MAX_PHASES],
    /// Where every shift is 33 or more ([`high_shifts`]): `requant16_high`'s constants,
    /// worked out once here rather than per block.
    high: Option<[[Lanes; 3]; MAX_PHASES]>,
    /// Per phase: some multiplier is even ([`odd_multipliers`]).
    ties: [bool; MAX_PHASES],
}

impl Tables {
    fn new(p: &Depthwise, w: &[i8], rq: &Requant, out: &OutRange) -> Tables {
        let (c, [kh, kw]) = (p.c, p.kernel);
        let nq = kw.div_ceil(4);
        let mut t = Tables {
            nph: phases(c),
            weights: [[MaybeUninit::uninit(); MAX_KH * MAX_NQ]; MAX_PHASES],
            bias: [MaybeUninit::uninit(); MAX_PHASES],
            mult: [MaybeUninit::uninit(); MAX_PHASES],
            shift: [MaybeUninit::uninit(); MAX_PHASES],
            high: high_shifts(rq, c).then_some([[[0; 16]; 3]; MAX_PHASES]),
            ties: [false; MAX_PHASES],
        };
        let tap = |ky: usize, kx: usize, ch: usize| if kx < kw { w[(ky * kw + kx) * c + ch] } else { 0 };
        for ph in 0..t.nph {
            let ch: [usize; 16] = core::array::from_fn(|l| (16 * ph + l) % c);
            for ky in 0..kh {
                for q in 0..nq {
                    let quad =
                        |ch| i32::from_le_bytes(core::array::from_fn(|k| tap(ky, 4 * q + k, ch) as u8));
                    t.weights[ph][ky * nq + q] = MaybeUninit::new(ch.map(quad));
                }
            }
            let sum = |ch: usize| (0..kh * kw).map(|k| w[k * c + ch] as i32).sum::<i32>();
            t.bias[ph] = MaybeUninit::new(ch.map(|ch| rq.bias[ch].wrapping_sub(128 * sum(ch))));
            let (mut mult, mut shift) = (ch.map(|ch| rq.mult[ch]), ch.map(|ch| rq.shift[ch] as i32));
            t.ties[ph] = odd_multipliers(&mut mult, &mut shift);
            (t.mult[ph], t.shift[ph]) = (MaybeUninit::new(mult), MaybeUninit::new(shift));
            if let Some(high) = &mut t.high {
                // As `high_constants`: each odd lane's multiplier in the even lane below
                // it (`vpmuldq` reads the even ones), t = shift - 32, 2^(t - 1) (plus
                // zp 2^t).
                let tl = shift.map(|s| s - 32);
                let odd = core::array::from_fn(|l| if l % 2 == 0 { mult[l + 1] } else { 0 });
                let zp = if out.zp_in_half { rq.zero_point } else { 0 };
                high[ph] = [odd, tl, tl.map(|t| (1 << (t - 1)) + (zp << t))];
            }
        }
        t
    }
}

/// Four 16-byte vectors as 16 lanes of four bytes (`v[k]` in byte `k`), offset by 128:
/// the vectors side by side in one register, a 4x4 transpose of their dwords across
/// 128-bit lanes, then of the bytes inside each dword group.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn quad16(v: [__m128i; 4]) -> __m512i {
    let lo = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(v[0]), v[1]);
    let hi = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(v[2]), v[3]);
    let all = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi);
    // Lane m, dword k <- input k's dword m.
    let dwords = _mm512_permutexvar_epi32(
        _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15),
        all,
    );
    // Byte 4j + k <- byte 4k + j, in each lane.
    let order = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    let bytes = _mm512_shuffle_epi8(dwords, _mm512_broadcast_i32x4(order));
    _mm512_xor_si512(bytes, _mm512_set1_epi32(0x8080_8080u32 as i32))
}

/// Quad `q` of input row `iy` for output columns `ox0..ox0 + dst.len() / c`: lane
/// `(j, ch)` holds the input at columns `ox0 + j - pad + 4q + k`, `k < 4`, of
/// channel `ch`; columns outside the map (and taps past the kernel) read the zero point.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn prepare(p: &Depthwise, x: &[i8], iy: usize, ox0: usize, q: usize, dst: &mut [MaybeUninit<u32>]) {
    let (c, kw) = (p.c, p.kernel[1]);
    let cols = dst.len() / c;
    let row = &x[iy * p.w * c..][..p.w * c];
    let (first, last) = (4 * q, (4 * q + 3).min(kw - 1));
    // Input column of tap `kx` for output column `j`.
    let ix = |j: usize, kx: usize| (ox0 + j + kx) as isize - p.pad[1] as isize;
    let inside = |j: usize| ix(j, first) >= 0 && ix(j, last) < p.w as isize;
    let xz = _mm_set1_epi8(p.x_zero);
    let out = dst.as_mut_ptr() as *mut i32;
    // The columns whose taps all lie inside the map are one contiguous run in the input
    // too, taken 16 lanes at a time.
    let lo = (0..cols).find(|&j| inside(j)).unwrap_or(cols);
    let hi = (lo..cols).find(|&j| !inside(j)).unwrap_or(cols);
    if hi > lo {
        // Tap k of lane l reads row byte ix(0, first + k) * c + l, inside the row for the
        // lanes of inside columns.
        let src: [*const i8; 4] = core::array::from_fn(|k| {
            row.as_ptr().wrapping_offset(ix(0, first + k) * c as isize + (lo * c) as isize)
        });
        let (len, out) = ((hi - lo) * c, out.wrapping_add(lo * c));
        // SAFETY: as above; the run's lanes lie inside dst.
        unsafe {
            match last - first + 1 {
                1 => inside_run::<1>(src, xz, len, out),
                2 => inside_run::<2>(src, xz, len, out),
                3 => inside_run::<3>(src, xz, len, out),
                _ => inside_run::<4>(src, xz, len, out),
            }
        }
    }
    // Every other column: 16 channels at a time, each tap inside or the zero point.
    for j in (0..lo).chain(hi..cols) {
        each_block(c, |c0, mask| {
            let v = core::array::from_fn(|k| {
                let at = ix(j, first + k);
                if first + k > last || at < 0 || at >= p.w as isize {
                    return xz;
                }
                // SAFETY: masked lanes < c - c0 of an input pixel.
                unsafe { _mm_maskz_loadu_epi8(mask, row.as_ptr().add(at as usize * c + c0)) }
            });
            // SAFETY: lanes < c - c0 of output column j, inside dst.
            unsafe { store_lanes(out.add(j * c + c0), mask, quad16(v)) };
        });
    }
}

/// `out[l] = quad16(src[0][l], .., src[T - 1][l], zero point..)` for `l < len`: the run
/// of inside columns, its tap count `T` known to the compiler (no test per tap and block).
///
/// # Safety
/// `src[k] + l` readable and `out + l` writable for `l < len`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn inside_run<const T: usize>(src: [*const i8; 4], xz: __m128i, len: usize, out: *mut i32) {
    each_block(len, |i, mask| {
        // SAFETY: the caller's.
        let v = core::array::from_fn(|k| {
            if k < T { unsafe { _mm_maskz_loadu_epi8(mask, src[k].add(i)) } } else { xz }
        });
        // SAFETY: the caller's.
        unsafe { store_lanes(out.add(i), mask, quad16(v)) };
    });
}

/// The lanes of `mask` to `dst`: a whole block with a plain store (masked stores are slow
/// on AMD Zen 4).
///
/// # Safety
/// `dst + l` writable for the lanes `l` of `mask`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn store_lanes(dst: *mut i32, mask: u16, v: __m512i) {
    // SAFETY: the caller's.
    unsafe {
        match mask {
            0xFFFF => _mm512_storeu_si512(dst as *mut __m512i, v),
            m => _mm512_mask_storeu_epi32(dst, m, v),
        }
    }
}

/// `f(i, mask)` over 16-lane blocks covering `0..len`: whole ones ([`block_starts`]:
/// masked stores are slow on AMD Zen 4); a run under 16 lanes takes one masked block.
///
/// [`block_starts`]: crate::kernels::block_starts
#[inline(always)]
fn each_block(len: usize, mut f: impl FnMut(usize, u16)) {
    if len < 16 {
        if len > 0 {
            f(0, lane_mask(len));
        }
        return;
    }
    crate::kernels::block_starts(len, 16).for_each(|i| f(i, 0xFFFF));
}

/// Shared state of one output row, for [`blocks`].
struct Row<'a> {
    /// Prepared quads in window order (`ky * nq + q`), each initialized for `n` lanes.
    quads: &'a [*const i32],
    /// The output's zero point, lower and upper bounds.
    out: OutRange,
}

/// One channel phase's weights and requantization, loaded once per output row and kept
/// in registers while every block of that phase runs (loading them per block made the
/// kernel wait on loads: 8 table loads against 3 `vpdpbusd`).
struct Phase {
    weights: [__m512i; MAX_KH * MAX_NQ],
    bias: __m512i,
    mult: __m512i,
    /// `requant16_high`'s constants, or `[shift, _, _]` where the shifts are not all high.
    rounding: [__m512i; 3],
    high: bool,
    ties: bool,
}

impl Phase {
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn load(t: &Tables, ph: usize, quads: usize) -> Phase {
        // SAFETY: every phase < nph was written by `Tables::new`; 16-lane arrays.
        let ld = |l: *const Lanes| unsafe { _mm512_loadu_si512(l as *const __m512i) };
        let weights = core::array::from_fn(|i| {
            if i < quads { ld(t.weights[ph][i].as_ptr()) } else { _mm512_setzero_si512() }
        });
        let rounding = match &t.high {
            Some(high) => core::array::from_fn(|k| ld(&high[ph][k])),
            None => [ld(t.shift[ph].as_ptr()), _mm512_setzero_si512(), _mm512_setzero_si512()],
        };
        Phase {
            weights,
            bias: ld(t.bias[ph].as_ptr()),
            mult: ld(t.mult[ph].as_ptr()),
            rounding,
            high: t.high.is_some(),
            ties: t.ties[ph],
        }
    }
}

/// `N` 16-lane blocks of one phase, from lanes `gs`, `N` independent accumulator chains;
/// lanes `>= n` are not touched.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn blocks<const N: usize>(r: &Row, k: &Phase, gs: [usize; N], n: usize, dst: *mut i8) {
    let masks: [u16; N] = core::array::from_fn(|j| lane_mask(n - gs[j]));
    let mut acc = [k.bias; N];
    for (i, &quad) in r.quads.iter().enumerate() {
        for (j, a) in acc.iter_mut().enumerate() {
            // SAFETY: lanes < n - gs[j] of a prepared row of n lanes.
            let xs = unsafe { _mm512_maskz_loadu_epi32(masks[j], quad.add(gs[j])) };
            *a = _mm512_dpbusd_epi32(*a, xs, k.weights[i]);
        }
    }
    for (j, a) in acc.iter().enumerate() {
        let y = if k.high {
            requant16_high(*a, k.mult, k.rounding, r.out, k.ties)
        } else {
            requant16(*a, k.mult, k.rounding[0], r.out, false, k.ties)
        };
        // SAFETY: lanes < n - gs[j] of the output run. A full block takes a plain
        // store: masked stores are slow on some cores (AMD Zen 4).
        unsafe {
            match masks[j] {
                0xFFFF => _mm_storeu_si128(dst.add(gs[j]) as *mut __m128i, y),
                m => _mm_mask_storeu_epi8(dst.add(gs[j]), m, y),
            }
        }
    }
}

/// Depthwise convolution of a shape that [`fits`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn depthwise_quads(p: &Depthwise, x: &[i8], w: &[i8], rq: &Requant, out: &mut [i8]) {
    let (c, [kh, kw], [sy, _]) = (p.c, p.kernel, p.stride);
    let nq = kw.div_ceil(4);
    let out_range = OutRange::new(rq, c);
    let t = Tables::new(p, w, rq, &out_range);
    // Not zeroed (48 KiB a call): every lane read is written first.
    let mut buf = [MaybeUninit::<u32>::uninit(); Q_CAP];
    let chunk = Q_CAP / (slots(p) * c);
    let mut ox0 = 0;
    while ox0 < p.ow {
        let n = chunk.min(p.ow - ox0) * c;
        let (ring, zero) = buf[..slots(p) * n].split_at_mut((slots(p) - 1) * n);
        zero.fill(MaybeUninit::new(u32::from_ne_bytes([p.x_zero as u8 ^ 0x80; 4])));
        // The input row each ring slot holds.
        let mut held = [usize::MAX; MAX_KH];
        for oy in 0..p.oh {
            let row_of = |ky: usize| {
                let iy = (oy * sy + ky) as isize - p.pad[0] as isize;
                (0..p.h as isize).contains(&iy).then_some(iy as usize)
            };
            // kh consecutive rows fall in kh distinct slots: slot `iy mod kh`.
            for iy in (0..kh).filter_map(row_of) {
                let s = iy % kh;
                if held[s] != iy {
                    for (q, dst) in ring[s * nq * n..][..nq * n].chunks_exact_mut(n).enumerate() {
                        prepare(p, x, iy, ox0, q, dst);
                    }
                    held[s] = iy;
                }
            }
            let (ring_at, zero_at) = (ring.as_ptr() as *const i32, zero.as_ptr() as *const i32);
            let mut quads = [zero_at; MAX_KH * MAX_NQ];
            for ky in 0..kh {
                if let Some(iy) = row_of(ky) {
                    for q in 0..nq {
                        // SAFETY: inside the ring (slot iy mod kh, quad q, n lanes each).
                        quads[ky * nq + q] = unsafe { ring_at.add(((iy % kh) * nq + q) * n) };
                    }
                }
            }
            let r = Row { quads: &quads[..kh * nq], out: out_range };
            let dst = out[(oy * p.ow + ox0) * c..][..n].as_mut_ptr();
            // Phase by phase: block g has phase (g / 16) mod nph.
            let step = 16 * t.nph;
            for ph in 0..t.nph {
                let k = Phase::load(&t, ph, kh * nq);
                let mut g = 16 * ph;
                // SAFETY: g < n throughout; the blocks touch lanes < n only.
                unsafe {
                    while g + 3 * step < n {
                        blocks::<4>(&r, &k, [g, g + step, g + 2 * step, g + 3 * step], n, dst);
                        g += 4 * step;
                    }
                    while g < n {
                        blocks::<1>(&r, &k, [g], n, dst);
                        g += step;
                    }
                }
            }
        }
        ox0 += n / c;
    }
}
