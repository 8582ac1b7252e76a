//! WebAssembly SIMD128 kernels (compiled in with `-C target-feature=+simd128`; a browser
//! without SIMD runs the scalar build, whose kernels are the reference). Exact like every
//! other set: `i32x4.dot_i16x8_s` on sign-extended int8 (relaxed SIMD's 7-bit dot would
//! not be), i32 lanes that wrap as the reference's accumulator does, and the reference's
//! requantization per output.
//!
//! GEMM: two rows (pixels) against 8 output channels a pass, each weight vector (four
//! channels x four taps of a 4-deep slice) widened once for both rows; each row's four
//! inputs are broadcast as `[a0 a1 a2 a3 a0 a1 a2 a3]`, so one dot gives each channel's
//! two pair sums. Depthwise: eight channels a pass, `i32x4.extmul_*_i16x8_s` per tap. Add:
//! the reference's i64 arithmetic in `i64x2` lanes (`extmul` products are exact).

use core::arch::wasm32::*;

use super::reference::{self, finish};
use super::{Add, Depthwise, Gemm, Kernels, Requant};

pub struct Simd128;

impl Kernels for Simd128 {
    fn name(&self) -> &'static str {
        "simd128"
    }

    fn gemm(&self, p: &Gemm, a: &[i8], b: &[i8], rq: &Requant, out: &mut [i8]) {
        assert!(super::gemm_sizes_ok(p, a, b, rq, out));
        let row = |i: usize| &a[i * p.k_pad..(i + 1) * p.k_pad];
        let mut i = 0;
        while i < p.m {
            // Two rows share each weight load and widening; a last odd row runs alone.
            let rows = if i + 1 < p.m { 2 } else { 1 };
            for j0 in (0..p.n).step_by(8) {
                let sums = block8(row(i), row(i + rows - 1), b, p.n_pad, j0);
                for (r, sums) in sums.iter().enumerate().take(rows) {
                    for (dj, &s) in sums.iter().enumerate().take(p.n - j0) {
                        let j = j0 + dj;
                        out[(i + r) * p.ldo + j] = finish(rq.bias[j].wrapping_add(s), j, rq);
                    }
                }
            }
            i += rows;
        }
    }

    fn depthwise(&self, p: &Depthwise, x: &[i8], w: &[i8], rq: &Requant, out: &mut [i8]) {
        assert!(super::depthwise_sizes_ok(p, x, w, rq, out));
        for oy in 0..p.oh {
            for ox in 0..p.ow {
                depthwise_pixel(p, x, w, rq, oy, ox, out);
            }
        }
    }

    fn add(&self, p: &Add, a: &[i8], b: &[i8], out: &mut [i8]) {
        assert!(a.len() == out.len() && b.len() == out.len() && (1..=62).contains(&p.shift));
        let whole = out.len() - out.len() % 4;
        let (a4, b4, o4) =
            (a[..whole].chunks_exact(4), b[..whole].chunks_exact(4), out[..whole].chunks_exact_mut(4));
        let c = AddLanes::new(p);
        for ((a, b), o) in a4.zip(b4).zip(o4) {
            o.copy_from_slice(&c.four(a, b));
        }
        reference::add(p, &a[whole..], &b[whole..], &mut out[whole..]);
    }
}

/// An Add's constants as lanes: the reference's i64 arithmetic, two elements a vector
/// (`i64x2.extmul_*_i32x4_s` products are exact).
struct AddLanes {
    za: v128,
    zb: v128,
    ma: v128,
    mb: v128,
    half: v128,
    zy: v128,
    lo: v128,
    hi: v128,
    shift: u32,
}

impl AddLanes {
    fn new(p: &Add) -> AddLanes {
        AddLanes {
            za: i32x4_splat(p.a_zero as i32),
            zb: i32x4_splat(p.b_zero as i32),
            ma: i32x4_splat(p.mult[0]),
            mb: i32x4_splat(p.mult[1]),
            half: i64x2_splat(1i64 << (p.shift - 1)),
            zy: i64x2_splat(p.y_zero as i64),
            lo: i64x2_splat(p.min as i64),
            hi: i64x2_splat(p.max as i64),
            shift: p.shift as u32,
        }
    }

    /// `clamp(zy + round_half_away(((a - za) ma + (b - zb) mb) / 2^shift))` of four elements.
    #[inline(always)]
    fn four(&self, a: &[i8], b: &[i8]) -> [i8; 4] {
        let widen = |v: &[i8]| i32x4(v[0] as i32, v[1] as i32, v[2] as i32, v[3] as i32);
        let (da, db) = (i32x4_sub(widen(a), self.za), i32x4_sub(widen(b), self.zb));
        let lanes = |v: v128| {
            // Adding half - 1 for negatives (the all-ones mask is -1) rounds ties away from 0.
            let t = i64x2_add(i64x2_add(v, self.half), i64x2_lt(v, i64x2_splat(0)));
            let y = i64x2_add(i64x2_shr(t, self.shift), self.zy);
            let y = v128_bitselect(self.lo, y, i64x2_lt(y, self.lo));
            v128_bitselect(self.hi, y, i64x2_gt(y, self.hi))
        };
        let low = lanes(i64x2_add(i64x2_extmul_low_i32x4(da, self.ma), i64x2_extmul_low_i32x4(db, self.mb)));
        let high =
            lanes(i64x2_add(i64x2_extmul_high_i32x4(da, self.ma), i64x2_extmul_high_i32x4(db, self.mb)));
        // Clamped to int8: the low halves of the i64 lanes are the values.
        let y = i32x4_shuffle::<0, 2, 4, 6>(low, high);
        [lane(y, 0) as i8, lane(y, 1) as i8, lane(y, 2) as i8, lane(y, 3) as i8]
    }
}

/// The sums (bias not added) of two rows against output channels `j0..j0 + 8`: the packed
/// weights hold `n_pad` (a multiple of 16) channels per 4-deep slice, zeros past `n`.
#[inline(always)]
fn block8(row0: &[i8], row1: &[i8], b: &[i8], n_pad: usize, j0: usize) -> [[i32; 8]; 2] {
    let broadcast = |a: &[i8]| {
        let quad = i32::from_le_bytes([a[0] as u8, a[1] as u8, a[2] as u8, a[3] as u8]);
        i16x8_extend_low_i8x16(i32x4_splat(quad))
    };
    // acc[r][q]: row r, channels j0 + 2q and j0 + 2q + 1 (their two pair sums each).
    let mut acc = [[i32x4_splat(0); 4]; 2];
    for (k4, (a0, a1)) in row0.chunks_exact(4).zip(row1.chunks_exact(4)).enumerate() {
        let (x0, x1) = (broadcast(a0), broadcast(a1));
        let w = &b[(k4 * n_pad + j0) * 4..][..32];
        for (h, v) in w.chunks_exact(16).enumerate() {
            // SAFETY: `v` holds 16 bytes; wasm loads have no alignment requirement.
            let wv = unsafe { v128_load(v.as_ptr() as *const v128) };
            let (lo, hi) = (i16x8_extend_low_i8x16(wv), i16x8_extend_high_i8x16(wv));
            acc[0][2 * h] = i32x4_add(acc[0][2 * h], i32x4_dot_i16x8(x0, lo));
            acc[0][2 * h + 1] = i32x4_add(acc[0][2 * h + 1], i32x4_dot_i16x8(x0, hi));
            acc[1][2 * h] = i32x4_add(acc[1][2 * h], i32x4_dot_i16x8(x1, lo));
            acc[1][2 * h + 1] = i32x4_add(acc[1][2 * h + 1], i32x4_dot_i16x8(x1, hi));
        }
    }
    // Each channel's two pair sums sit side by side: add them.
    acc.map(|r| {
        let mut sums = [0i32; 8];
        for (q, pair) in r.chunks_exact(2).enumerate() {
            let s = i32x4_add(
                i32x4_shuffle::<0, 2, 4, 6>(pair[0], pair[1]),
                i32x4_shuffle::<1, 3, 5, 7>(pair[0], pair[1]),
            );
            for (l, out) in sums[q * 4..q * 4 + 4].iter_mut().enumerate() {
                *out = lane(s, l);
            }
        }
        sums
    })
}

#[inline(always)]
fn lane(v: v128, l: usize) -> i32 {
    match l {
        0 => i32x4_extract_lane::<0>(v),
        1 => i32x4_extract_lane::<1>(v),
        2 => i32x4_extract_lane::<2>(v),
        _ => i32x4_extract_lane::<3>(v),
    }
}

/// One output pixel of a depthwise convolution: eight channels a pass, the rest one by one.
fn depthwise_pixel(p: &Depthwise, x: &[i8], w: &[i8], rq: &Requant, oy: usize, ox: usize, out: &mut [i8]) {
    let c = p.c;
    let zero = [p.x_zero; 8];
    let at = |ky: usize, kx: usize| -> Option<usize> {
        let iy = (oy * p.stride[0] + ky * p.dilation[0]) as isize - p.pad[0] as isize;
        let ix = (ox * p.stride[1] + kx * p.dilation[1]) as isize - p.pad[1] as isize;
        let inside = iy >= 0 && ix >= 0 && iy < p.h as isize && ix < p.w as isize;
        inside.then(|| (iy as usize * p.w + ix as usize) * c)
    };
    let whole = c - c % 8;
    for c0 in (0..whole).step_by(8) {
        let (mut lo, mut hi) = (i32x4_splat(0), i32x4_splat(0));
        for ky in 0..p.kernel[0] {
            for kx in 0..p.kernel[1] {
                let xs = at(ky, kx).map_or(&zero[..], |o| &x[o + c0..o + c0 + 8]);
                let ws = &w[(ky * p.kernel[1] + kx) * c + c0..][..8];
                // SAFETY: both slices hold 8 bytes; wasm loads have no alignment requirement.
                let (xv, wv) =
                    unsafe { (i16x8_load_extend_i8x8(xs.as_ptr()), i16x8_load_extend_i8x8(ws.as_ptr())) };
                lo = i32x4_add(lo, i32x4_extmul_low_i16x8(xv, wv));
                hi = i32x4_add(hi, i32x4_extmul_high_i16x8(xv, wv));
            }
        }
        for l in 0..8 {
            let ch = c0 + l;
            let s = if l < 4 { lane(lo, l) } else { lane(hi, l - 4) };
            out[(oy * p.ow + ox) * c + ch] = finish(rq.bias[ch].wrapping_add(s), ch, rq);
        }
    }
    for ch in whole..c {
        let mut acc = rq.bias[ch];
        for ky in 0..p.kernel[0] {
            for kx in 0..p.kernel[1] {
                let v = at(ky, kx).map_or(p.x_zero, |o| x[o + ch]);
                acc = acc.wrapping_add(v as i32 * w[(ky * p.kernel[1] + kx) * c + ch] as i32);
            }
        }
        out[(oy * p.ow + ox) * c + ch] = finish(acc, ch, rq);
    }
}
