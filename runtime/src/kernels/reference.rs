//! The portable reference: plain loops, the definition every optimized kernel must match
//! bit for bit.

use super::{Depthwise, Kernels, Requant};
use crate::requant::{clamp_i8, requant};

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
