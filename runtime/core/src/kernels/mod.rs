//! int8 kernels, laid out as tract-linalg's: `reference` is the portable truth; each
//! architecture module implements the same [`Kernels`] contract faster, and one
//! conformance suite (`tests`) checks every implementation against the reference,
//! bit for bit, on random and edge-case shapes. [`best`] picks one at run time.

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
#[cfg(fer_arm_dsp)]
pub mod cortex_m;
pub mod reference;
#[cfg(test)]
mod tests;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod wasm32;
#[cfg(target_arch = "x86_64")]
pub mod x86;

/// The shape of a [`Kernels::gemm`]: `m` rows (pixels) of `k_pad` inputs times `n` output
/// channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gemm {
    pub m: usize,
    pub n: usize,
    /// The depth, zero-padded to a multiple of 4 (the packed weights' 4-deep slices).
    pub k_pad: usize,
    /// The packed weights' width: `n` rounded up to a multiple of 16.
    pub n_pad: usize,
    /// The output's row stride (`>= n`: a grouped conv writes its group's columns).
    pub ldo: usize,
}

/// Per-output-channel requantization of a GEMM or depthwise result.
#[derive(Clone, Copy, Debug)]
pub struct Requant<'a> {
    /// Bias with the input zero point folded in: `b_q - z_x * sum(w)`.
    pub bias: &'a [i32],
    pub mult: &'a [i32],
    pub shift: &'a [u8],
    /// `sum(w)` per output channel (kernels that offset inputs to u8 correct with it).
    pub wsum: &'a [i32],
    pub zero_point: i32,
    /// Fused activation clamp (ReLU is `min = zero_point`).
    pub min: i8,
    pub max: i8,
}

/// A depthwise convolution over a whole `[H, W, C]` map.
#[derive(Clone, Copy, Debug)]
pub struct Depthwise {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub oh: usize,
    pub ow: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// top, left (bottom and right follow from the output size)
    pub pad: [usize; 2],
    pub dilation: [usize; 2],
    /// The input zero point, read where the window leaves the map.
    pub x_zero: i8,
}

/// PReLU multipliers are below this in magnitude and share one shift of at most
/// [`PRELU_MAX_SHIFT`], so `(x - zx) * m` and its rounding fit i32.
pub const PRELU_MULT_LIMIT: i32 = 1 << 22;
pub const PRELU_MAX_SHIFT: u8 = 30;

/// PReLU over a `[H, W, C]` map: `y = clamp(zy + round(d * m / 2^shift))`, `d = x - zx`,
/// `m` the positive side's multiplier (`mult[slopes]`) where `d >= 0`, else the slope's.
#[derive(Clone, Copy, Debug)]
pub struct PRelu<'a> {
    pub c: usize,
    /// 1 (shared), `c` (per channel) or the map's length (per element, `[H, W, C]` order).
    pub slopes: usize,
    /// `slopes + 1` multipliers below [`PRELU_MULT_LIMIT`] in magnitude.
    pub mult: &'a [i32],
    /// `1..=`[`PRELU_MAX_SHIFT`], so the arithmetic fits i32.
    pub shift: u8,
    pub x_zero: i8,
    pub y_zero: i8,
    pub min: i8,
    pub max: i8,
}

/// Max pooling of a `[H, W, C]` map whose windows all lie inside it (no padding).
#[derive(Clone, Copy, Debug)]
pub struct MaxPool {
    pub w: usize,
    pub c: usize,
    pub oh: usize,
    pub ow: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Fused clamp.
    pub min: i8,
    pub max: i8,
}

/// Zero padding of the channel axis only: each pixel's `c` channels placed at channel
/// `before` of `co`, the other channels `zero` (the zero point).
#[derive(Clone, Copy, Debug)]
pub struct PadChannels {
    pub c: usize,
    pub co: usize,
    pub before: usize,
    pub zero: i8,
}

/// Add of two int8 tensors into a third scale:
/// `y = clamp(zy + round_half_away(((a - za) * mult[0] + (b - zb) * mult[1]) / 2^shift))`,
/// computed in i64 (the multipliers use all 31 bits).
#[derive(Clone, Copy, Debug)]
pub struct Add {
    pub mult: [i32; 2],
    /// `1..=62`.
    pub shift: u8,
    pub a_zero: i8,
    pub b_zero: i8,
    pub y_zero: i8,
    /// Fused clamp.
    pub min: i8,
    pub max: i8,
}

impl Add {
    /// Each multiplier as `m = hi * 2^16 + lo`, `[[hi_a, lo_a], [hi_b, lo_b]]`, both halves
    /// in i16, where the shift is 17 to 46 (the quantizer's Adds: about 30). Then SIMD
    /// kernels get the exact i64 result from 16-bit products and i32 sums (see
    /// `x86::add_split_avx512`); `None` otherwise (the i64 path).
    pub fn split(&self) -> Option<[[i16; 2]; 2]> {
        if !(17..=46).contains(&self.shift) {
            return None;
        }
        let half = |m: i32| -> Option<[i16; 2]> {
            let hi = (m as i64 + (1 << 15)) >> 16;
            Some([i16::try_from(hi).ok()?, (m as i64 - (hi << 16)) as i16])
        };
        Some([half(self.mult[0])?, half(self.mult[1])?])
    }
}

/// The operations every implementation provides.
pub trait Kernels: Sync {
    fn name(&self) -> &'static str;

    /// The largest |weight| [`Kernels::gemm`] multiplies exactly: 127 (every int8 weight,
    /// -128 included) but for sets that need narrower weights (`x86::Avx2U7`: 64, the 7-bit models'
    /// `format::FLAG_WEIGHTS_7BIT`). The engine hands such a set only models within it.
    fn gemm_weight_limit(&self) -> i8 {
        127
    }

    /// `out[i * ldo + j] = clamp(zp + requant(bias[j] + sum_k a[i * k_pad + k] * B[k][j]))`
    /// for `i < m`, `j < n` (see [`Gemm`]), where `B` is packed `[k_pad / 4][n_pad][4]`
    /// (see `format`). Accumulation wraps in i32 like the SIMD versions.
    fn gemm(&self, p: &Gemm, a: &[i8], b: &[i8], rq: &Requant, out: &mut [i8]);

    /// Depthwise convolution; weights `[kh * kw][C]`.
    fn depthwise(&self, p: &Depthwise, x: &[i8], w: &[i8], rq: &Requant, out: &mut [i8]);

    /// PReLU; `x` and `out` of equal length, a multiple of `p.c`. The portable loop by
    /// default (implementations recompile it with their CPU's vector instructions).
    fn prelu(&self, p: &PRelu, x: &[i8], out: &mut [i8]) {
        reference::prelu(p, x, out)
    }

    /// Element-wise Add (see [`Add`]); `a`, `b` and `out` of equal length.
    fn add(&self, p: &Add, a: &[i8], b: &[i8], out: &mut [i8]) {
        reference::add(p, a, b, out)
    }

    /// A float image in the model's `[C, H, W]` quantized into the arena's `[H, W, C]`:
    /// `dst[p * c + ch] = quantize_f32(image[ch * hw + p], inv, zero_point)`
    /// ([`crate::requant::quantize_f32`]); `image` and `dst` of equal length, a multiple
    /// of `c`.
    fn quantize_input(&self, image: &[f32], c: usize, inv: f32, zero_point: i8, dst: &mut [i8]) {
        reference::quantize_input(image, c, inv, zero_point, dst)
    }

    /// Unpadded max pooling (see [`MaxPool`]).
    fn max_pool(&self, p: &MaxPool, x: &[i8], out: &mut [i8]) {
        reference::max_pool(p, x, out)
    }

    /// Channel padding (see [`PadChannels`]) of `out.len() / p.co` pixels;
    /// `x.len() == out.len() / p.co * p.c`.
    fn pad_channels(&self, p: &PadChannels, x: &[i8], out: &mut [i8]) {
        reference::pad_channels(p, x, out)
    }
}

/// Checks the slice sizes a [`Kernels::gemm`] call needs (so implementations can index
/// without further checks). Panics only on an engine bug, never on model bytes: the
/// loader has checked shapes already.
pub fn gemm_sizes_ok(p: &Gemm, a: &[i8], b: &[i8], rq: &Requant, out: &[i8]) -> bool {
    let Gemm { m, n, k_pad, n_pad, ldo } = *p;
    k_pad.is_multiple_of(4)
        && n <= n_pad
        && n_pad.is_multiple_of(16)
        && a.len() >= m * k_pad
        && b.len() >= k_pad * n_pad
        && rq.bias.len() >= n
        && rq.mult.len() >= n
        && rq.shift.len() >= n
        && rq.wsum.len() >= n
        && ldo >= n
        && (m == 0 || out.len() >= (m - 1) * ldo + n)
}

/// Starts of `n`-wide blocks covering `0..len` (`len >= n`): `0, n, 2n, ..`, the last one
/// moved back to end at `len`, overlapping the one before. For work that may be done
/// twice (a copy, a maximum, a store of the same values): every block is whole.
#[inline(always)]
pub fn block_starts(len: usize, n: usize) -> impl Iterator<Item = usize> {
    debug_assert!(len >= n && n > 0);
    (0..len.div_ceil(n)).map(move |i| (i * n).min(len - n))
}

/// Checks the slice sizes a [`Kernels::depthwise`] call needs.
pub fn depthwise_sizes_ok(p: &Depthwise, x: &[i8], w: &[i8], rq: &Requant, out: &[i8]) -> bool {
    x.len() >= p.h * p.w * p.c
        && w.len() >= p.kernel[0] * p.kernel[1] * p.c
        && out.len() >= p.oh * p.ow * p.c
        && rq.bias.len() >= p.c
        && rq.mult.len() >= p.c
        && rq.shift.len() >= p.c
}

/// The fastest implementation this CPU runs.
pub fn best() -> &'static dyn Kernels {
    #[cfg(target_arch = "x86_64")]
    if let Some(k) = x86::detect() {
        return k;
    }
    #[cfg(target_arch = "aarch64")]
    if let Some(k) = aarch64::detect() {
        return k;
    }
    #[cfg(fer_arm_dsp)]
    return &cortex_m::CortexM;
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return &wasm32::Simd128;
    #[allow(unreachable_code)]
    &reference::Reference
}

/// The fastest implementation this CPU runs for a model whose GEMM weights are at most
/// `weight_limit` in magnitude (7-bit models: 64, which AVX2 CPUs without VNNI multiply
/// with `vpmaddubsw`, twice the products an instruction of the 8-bit path).
pub fn best_for(weight_limit: i8) -> &'static dyn Kernels {
    #[cfg(target_arch = "x86_64")]
    if let Some(k) = x86::detect_for(weight_limit) {
        return k;
    }
    let _ = weight_limit;
    best()
}

/// Every implementation this CPU can run on a model whose weights are at most
/// `weight_limit` in magnitude (8-bit models: 127), reference first.
#[cfg(feature = "alloc")]
pub fn available_for(weight_limit: i8) -> alloc::vec::Vec<&'static dyn Kernels> {
    available().into_iter().filter(|k| k.gemm_weight_limit() >= weight_limit).collect()
}

/// Every implementation this CPU can run, reference first (for tests and benches).
#[cfg(feature = "alloc")]
pub fn available() -> alloc::vec::Vec<&'static dyn Kernels> {
    #[allow(unused_mut)]
    let mut v: alloc::vec::Vec<&'static dyn Kernels> = alloc::vec![&reference::Reference];
    #[cfg(target_arch = "x86_64")]
    v.extend(x86::all_supported());
    #[cfg(target_arch = "aarch64")]
    v.extend(aarch64::all_supported());
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    v.push(&wasm32::Simd128);
    v
}
