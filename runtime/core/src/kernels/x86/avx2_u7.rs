//! The AVX2 set for models with 7-bit weights (`fer quantize --weight-bits 7`): the GEMM
//! multiplies with `vpmaddubsw`, unsigned input bytes by signed weight bytes, 32 products
//! an instruction with each pair's sum kept in i16, as ONNX Runtime does on CPUs without
//! VNNI. The pair sum is exact only while it fits i16: inputs offset to 0..=255 (`x ^ 0x80`,
//! taken back with the weight sums as in the VNNI set) times weights of at most
//! [`WEIGHT_LIMIT`] in magnitude give at most 255 * 64 * 2 = 32,640. With 8-bit weights it
//! would saturate, so this set is only handed to models whose loader checked the limit
//! (`format::FLAG_WEIGHTS_7BIT`); `vpmaddwd` by ones then sums the pairs of each channel's
//! 4-deep slice in i32, in channel order. Everything but the GEMM is the AVX2 set's.

use core::arch::x86_64::*;

use super::Avx2;
use super::avx2::{requant8, store16};
use crate::kernels::{Add, Depthwise, Gemm, Kernels, MaxPool, PRelu, Requant};

/// The largest |weight| this set's GEMM multiplies exactly.
pub const WEIGHT_LIMIT: i8 = 64;

pub struct Avx2U7;

impl Kernels for Avx2U7 {
    fn name(&self) -> &'static str {
        "avx2-u7"
    }

    fn gemm_weight_limit(&self) -> i8 {
        WEIGHT_LIMIT
    }

    fn gemm(&self, p: &Gemm, a: &[i8], b: &[i8], rq: &Requant, out: &mut [i8]) {
        assert!(crate::kernels::gemm_sizes_ok(p, a, b, rq, out));
        // SAFETY: the CPU has AVX2 (only handed out where it was detected); sizes checked
        // above; the weights' limit is the caller's contract (the loader checks it).
        unsafe { gemm_u7(p, a, b, rq, out) }
    }

    fn depthwise(&self, p: &Depthwise, x: &[i8], w: &[i8], rq: &Requant, out: &mut [i8]) {
        Avx2.depthwise(p, x, w, rq, out)
    }

    fn prelu(&self, p: &PRelu, x: &[i8], out: &mut [i8]) {
        Avx2.prelu(p, x, out)
    }

    fn add(&self, p: &Add, a: &[i8], b: &[i8], out: &mut [i8]) {
        Avx2.add(p, a, b, out)
    }

    fn quantize_input(&self, image: &[f32], c: usize, inv: f32, zero_point: i8, dst: &mut [i8]) {
        Avx2.quantize_input(image, c, inv, zero_point, dst)
    }

    fn max_pool(&self, p: &MaxPool, x: &[i8], out: &mut [i8]) {
        Avx2.max_pool(p, x, out)
    }
}

/// Rows a tile: 4 rows x 2 accumulators of 8 channels, the 2 weight registers, the
/// broadcast input, a product and the ones fit the 16 registers.
const ROWS: usize = 4;

#[target_feature(enable = "avx2")]
unsafe fn gemm_u7(p: &Gemm, a: &[i8], b: &[i8], rq: &Requant, out: &mut [i8]) {
    let high = super::high_shifts8(rq, p.n);
    for j0 in (0..p.n).step_by(16) {
        let block = Block::new(p, rq, j0, high);
        let mut i = 0;
        // SAFETY: every tile's rows are below m, its channels' weights within k_pad * n_pad.
        unsafe {
            while i + ROWS <= p.m {
                tile::<ROWS>(p, a, b, &block, i, out);
                i += ROWS;
            }
            while i < p.m {
                tile::<1>(p, a, b, &block, i, out);
                i += 1;
            }
        }
    }
}

/// One 16-channel block's output constants, as two 8-lane halves: the bias with the
/// inputs' offset of 128 taken back (`bias - 128 * sum(w)`), the requantization.
struct Block {
    j0: usize,
    width: usize,
    bias: [__m256i; 2],
    mult: [__m256i; 2],
    shift: [__m256i; 2],
    zp: __m256i,
    lo: __m256i,
    hi: __m256i,
    high: bool,
}

impl Block {
    #[target_feature(enable = "avx2")]
    fn new(p: &Gemm, rq: &Requant, j0: usize, high: bool) -> Block {
        let width = 16.min(p.n - j0);
        let (mut bias, mut mult, mut shift) = ([0i32; 16], [0i32; 16], [1i32; 16]);
        for t in 0..width {
            bias[t] = rq.bias[j0 + t].wrapping_sub(rq.wsum[j0 + t].wrapping_mul(128));
            mult[t] = rq.mult[j0 + t];
            shift[t] = rq.shift[j0 + t] as i32;
        }
        // SAFETY: 16-lane local arrays, read as two 8-lane halves.
        let halves = |v: &[i32; 16]| unsafe {
            [0, 1].map(|h| _mm256_loadu_si256(v.as_ptr().add(8 * h) as *const __m256i))
        };
        Block {
            j0,
            width,
            bias: halves(&bias),
            mult: halves(&mult),
            shift: halves(&shift),
            zp: _mm256_set1_epi32(rq.zero_point),
            lo: _mm256_set1_epi32(rq.min as i32),
            hi: _mm256_set1_epi32(rq.max as i32),
            high,
        }
    }
}

/// Rows `i..i + R` of one 16-channel block.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn tile<const R: usize>(p: &Gemm, a: &[i8], b: &[i8], t: &Block, i: usize, out: &mut [i8]) {
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_si256(); 2]; R];
    let bcol = b.as_ptr().wrapping_add(t.j0 * 4);
    for k4 in 0..p.k_pad / 4 {
        // SAFETY: 64 bytes at (k4 * n_pad + j0) * 4, within k_pad * n_pad (n_pad >= j0 + 16).
        let w = unsafe {
            let at = bcol.add(k4 * p.n_pad * 4);
            [_mm256_loadu_si256(at as *const __m256i), _mm256_loadu_si256(at.add(32) as *const __m256i)]
        };
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: row i + r < m, columns k4 * 4 .. + 4 <= k_pad.
            let a4 = unsafe { (a.as_ptr().add((i + r) * p.k_pad + k4 * 4) as *const i32).read_unaligned() };
            // Four inputs offset to unsigned, repeated over the register: x0 x1 x2 x3 x0 ...
            let x = _mm256_set1_epi32(a4 ^ 0x8080_8080u32 as i32);
            for h in 0..2 {
                let pairs = _mm256_maddubs_epi16(x, w[h]);
                acc[h] = _mm256_add_epi32(acc[h], _mm256_madd_epi16(pairs, ones));
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let v = [0, 1].map(|h| {
            let sum = _mm256_add_epi32(acc[h], t.bias[h]);
            requant8(sum, t.mult[h], t.shift[h], t.zp, t.lo, t.hi, t.high)
        });
        // SAFETY: `width` bytes of row i + r.
        unsafe { store16(out.as_mut_ptr().add((i + r) * p.ldo + t.j0), v[0], v[1], t.width) };
    }
}
