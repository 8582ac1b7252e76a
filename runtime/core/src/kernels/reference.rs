//! The portable reference: plain loops, the definition every optimized kernel must match
//! bit for bit.

use super::{Add, Depthwise, Gemm, Kernels, MaxPool, PRelu, PadChannels, Requant};
use crate::requant::{clamp_i8, quantize_f32, requant};

pub struct Reference;

/// Requantizes one accumulator of output channel `j`.
#[inline(always)]
pub fn finish(acc: i32, j: usize, rq: &Requant) -> i8 {
    clamp_i8(rq.zero_point.wrapping_add(requant(acc, rq.mult[j], rq.shift[j])), rq.min, rq.max)
}

impl Kernels for Reference {
    fn name(&self) -> &'static str {
        "reference"
    }

    fn gemm(&self, p: &Gemm, a: &[i8], b: &[i8], rq: &Requant, out: &mut [i8]) {
        assert!(super::gemm_sizes_ok(p, a, b, rq, out));
        let Gemm { m, n, k_pad, n_pad, ldo } = *p;
        for i in 0..m {
            let row = &a[i * k_pad..(i + 1) * k_pad];
            for j in 0..n {
                let mut acc = rq.bias[j];
                for k4 in 0..k_pad / 4 {
                    let w = &b[(k4 * n_pad + j) * 4..][..4];
                    for t in 0..4 {
                        acc = acc.wrapping_add(row[k4 * 4 + t] as i32 * w[t] as i32);
                    }
                }
                out[i * ldo + j] = finish(acc, j, rq);
            }
        }
    }

    fn depthwise(&self, p: &Depthwise, x: &[i8], w: &[i8], rq: &Requant, out: &mut [i8]) {
        let c = p.c;
        for oy in 0..p.oh {
            for ox in 0..p.ow {
                for ch in 0..c {
                    let mut acc = rq.bias[ch];
                    for ky in 0..p.kernel[0] {
                        let iy = (oy * p.stride[0] + ky * p.dilation[0]) as isize - p.pad[0] as isize;
                        for kx in 0..p.kernel[1] {
                            let ix = (ox * p.stride[1] + kx * p.dilation[1]) as isize - p.pad[1] as isize;
                            let v = if iy < 0 || ix < 0 || iy >= p.h as isize || ix >= p.w as isize {
                                p.x_zero
                            } else {
                                x[(iy as usize * p.w + ix as usize) * c + ch]
                            };
                            acc = acc.wrapping_add(v as i32 * w[(ky * p.kernel[1] + kx) * c + ch] as i32);
                        }
                    }
                    out[(oy * p.ow + ox) * c + ch] = finish(acc, ch, rq);
                }
            }
        }
    }
}

/// PReLU (see [`PRelu`]); `#[inline(always)]` so each implementation's `target_feature`
/// wrapper compiles it with its own vector instructions.
#[inline(always)]
pub fn prelu(p: &PRelu, x: &[i8], out: &mut [i8]) {
    let c = p.c.max(1);
    assert!(
        x.len() == out.len()
            && x.len().is_multiple_of(c)
            && (p.slopes == 1 || p.slopes == c || p.slopes == x.len())
            && p.mult.len() > p.slopes
            && (1..=crate::kernels::PRELU_MAX_SHIFT).contains(&p.shift)
    );
    let s = p.shift as u32;
    let (pos, half) = (p.mult[p.slopes], 1i32 << (s - 1));
    let (zx, zy) = (p.x_zero as i32, p.y_zero as i32);
    let (lo, hi) = (p.min as i32, p.max as i32);
    let one = |v: i8, slope: i32| {
        let d = v as i32 - zx;
        // |d| <= 255 and |m| < 2^22: no overflow (wrapping only to keep the checks out).
        let prod = d.wrapping_mul(if d >= 0 { pos } else { slope });
        (zy + (prod.wrapping_add(half - (prod < 0) as i32) >> s)).clamp(lo, hi) as i8
    };
    if p.slopes == x.len() {
        out.iter_mut().zip(x).zip(&p.mult[..x.len()]).for_each(|((o, &v), &a)| *o = one(v, a));
    } else if p.slopes == 1 {
        out.iter_mut().zip(x).for_each(|(o, &v)| *o = one(v, p.mult[0]));
    } else {
        for (o, i) in out.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
            o.iter_mut().zip(i).zip(&p.mult[..c]).for_each(|((o, &v), &a)| *o = one(v, a));
        }
    }
}

/// See [`Kernels::quantize_input`]: one loop for any channel count (small, for
/// microcontrollers' flash); SIMD implementations call [`quantize_planes`] for the counts
/// they see, which their compiler vectorizes.
#[inline(always)]
pub fn quantize_input(image: &[f32], c: usize, inv: f32, zero_point: i8, dst: &mut [i8]) {
    assert!(c > 0 && image.len() == dst.len() && image.len().is_multiple_of(c));
    let hw = image.len() / c;
    for (p, px) in dst.chunks_exact_mut(c).enumerate() {
        for (ch, d) in px.iter_mut().enumerate() {
            *d = quantize_f32(image[ch * hw + p], inv, zero_point);
        }
    }
}

/// [`quantize_input`] with the channel count known at compile time.
#[inline(always)]
pub fn quantize_planes<const C: usize>(image: &[f32], inv: f32, zero_point: i8, dst: &mut [i8]) {
    assert!(C > 0 && image.len() == dst.len() && image.len().is_multiple_of(C));
    let hw = image.len() / C;
    let planes: [&[f32]; C] = core::array::from_fn(|ch| &image[ch * hw..][..hw]);
    for (p, px) in dst.chunks_exact_mut(C).enumerate().take(hw) {
        for ch in 0..C {
            px[ch] = quantize_f32(planes[ch][p], inv, zero_point);
        }
    }
}

/// Element-wise Add (see [`Add`]), branch-free i64 arithmetic that vectorizes where the
/// target has 64-bit lanes (`#[inline(always)]`, as [`prelu`]).
#[inline(always)]
pub fn add(p: &Add, a: &[i8], b: &[i8], out: &mut [i8]) {
    assert!(a.len() == out.len() && b.len() == out.len() && (1..=62).contains(&p.shift));
    let s = p.shift as u32;
    let half = 1i64 << (s - 1);
    let [ma, mb] = [p.mult[0] as i64, p.mult[1] as i64];
    let (za, zb, zy) = (p.a_zero as i64, p.b_zero as i64, p.y_zero as i64);
    let (lo, hi) = (p.min as i64, p.max as i64);
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        let v = (x as i64 - za) * ma + (y as i64 - zb) * mb;
        // Adding half - 1 for negatives rounds their ties away from zero too.
        *o = (zy + ((v + half - (v < 0) as i64) >> s)).clamp(lo, hi) as i8;
    }
}

/// Channel padding: the zero point everywhere, then each pixel's channels copied in.
pub fn pad_channels(p: &PadChannels, x: &[i8], out: &mut [i8]) {
    let PadChannels { c, co, before, zero } = *p;
    assert!(c > 0 && before + c <= co && x.len() == out.len() / co * c);
    out.fill(zero);
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "wasm32")) && c >= 16 {
        // 16 bytes at a time, the last block moved back to end at `c` (a byte copied
        // twice is the same): a call to `memcpy` per pixel costs more than a 24-channel
        // pixel's bytes.
        for (dst, src) in out.chunks_exact_mut(co).zip(x.chunks_exact(c)) {
            let dst = &mut dst[before..before + c];
            super::block_starts(c, 16).for_each(|b| dst[b..b + 16].copy_from_slice(&src[b..b + 16]));
        }
    } else {
        // A microcontroller keeps the flash.
        x.iter().enumerate().for_each(|(i, &v)| out[i / c * co + before + i % c] = v);
    }
}

/// Unpadded max pooling: no bounds per tap; channels 16 (or 8) at a time in registers,
/// each window's taps maxed before one store.
#[inline(always)]
pub fn max_pool(p: &MaxPool, x: &[i8], out: &mut [i8]) {
    let c = p.c;
    let ([kh, kw], [sy, sx]) = (p.kernel, p.stride);
    let last_in = |o: usize, s: usize, k: usize| if o == 0 { 0 } else { (o - 1) * s + k };
    assert!(
        kh > 0
            && kw > 0
            && last_in(p.ow, sx, kw) <= p.w
            && x.len() >= last_in(p.oh, sy, kh) * p.w * c
            && out.len() >= p.oh * p.ow * c
    );
    let clamp = (p.min, p.max) != (i8::MIN, i8::MAX);
    // Channel blocks of 16, the last one moved back to end at `c` (it overlaps the one
    // before, and a maximum taken twice is the same), so 24 or 28 channels take two
    // vector blocks, not 16 + 8 + scalar lanes. Under 16 channels, blocks of 8 where
    // there are vector registers; a microcontroller keeps the flash.
    let wide_tail = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));
    let block = if c >= 16 {
        16
    } else if wide_tail && c >= 8 {
        8
    } else {
        0
    };
    let row = p.w * c;
    for oy in 0..p.oh {
        for ox in 0..p.ow {
            let o = &mut out[(oy * p.ow + ox) * c..(oy * p.ow + ox + 1) * c];
            let at0 = (oy * sy * p.w + ox * sx) * c;
            // The window, as one slice: every tap below indexes inside it.
            let win = &x[at0..at0 + ((kh - 1) * p.w + kw) * c];
            let window = Window { win, row, c, kh, kw };
            if block > 0 {
                for at in super::block_starts(c, block) {
                    match block {
                        16 => o[at..at + 16].copy_from_slice(&window.max::<16>(at)),
                        _ => o[at..at + 8].copy_from_slice(&window.max::<8>(at)),
                    }
                }
            } else {
                for (ch, v) in o.iter_mut().enumerate() {
                    *v = window.max::<1>(ch)[0];
                }
            }
            if clamp {
                o.iter_mut().for_each(|v| *v = (*v).clamp(p.min, p.max));
            }
        }
    }
}

/// One pooling window: `kh` rows `row` bytes apart, `kw` pixels of `c` channels each.
struct Window<'a> {
    win: &'a [i8],
    row: usize,
    c: usize,
    kh: usize,
    kw: usize,
}

impl Window<'_> {
    /// The largest of each of `N` channels from `ch`, lane by lane.
    #[inline(always)]
    fn max<const N: usize>(&self, ch: usize) -> [i8; N] {
        let mut m = [i8::MIN; N];
        for ky in 0..self.kh {
            for kx in 0..self.kw {
                let at = ky * self.row + kx * self.c + ch;
                let v: &[i8; N] = self.win[at..at + N].try_into().unwrap();
                for k in 0..N {
                    m[k] = m[k].max(v[k]);
                }
            }
        }
        m
    }
}
