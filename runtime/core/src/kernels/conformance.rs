//! The conformance suite: a kernel implementation against `reference`, bit for bit, on
//! random shapes and values and on the edge cases (extreme values, one row, one channel,
//! tails shorter than a SIMD block, strides and padding). `cargo test` runs it for every
//! implementation the CPU has (`tests.rs`); the Cortex-M harness
//! (`runtime/conformance-m`) runs the same functions under qemu-system-arm. Needs an
//! allocator (feature `conformance` on no_std targets).

use alloc::vec;
use alloc::vec::Vec;

use super::reference::Reference;
use super::{Add, Depthwise, Gemm, Kernels, MaxPool, PRelu, PadChannels, Requant};

/// xorshift64*: the suite needs no dependency and is repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn i8s(&mut self, n: usize, extreme: bool) -> Vec<i8> {
        (0..n)
            .map(|_| if extreme { [-128i8, 127, -127, 0][self.below(4)] } else { self.next() as i8 })
            .collect()
    }
}

struct Params {
    bias: Vec<i32>,
    mult: Vec<i32>,
    shift: Vec<u8>,
    wsum: Vec<i32>,
    zero_point: i32,
    min: i8,
    max: i8,
}

impl Params {
    fn random(rng: &mut Rng, n: usize) -> Params {
        let mut min = rng.next() as i8;
        let mut max = rng.next() as i8;
        if min > max {
            core::mem::swap(&mut min, &mut max);
        }
        // Half without a clamp, some with one bound only (a fused ReLU's, or a cap).
        match rng.below(8) {
            0..4 => (min, max) = (-128, 127),
            4 => max = 127,
            5 => min = -128,
            _ => {}
        }
        // One call in four has only odd multipliers (kernels drop the tie term then).
        let odd = rng.below(4) == 0;
        Params {
            bias: (0..n).map(|_| (rng.next() as i32) >> rng.below(20)).collect(),
            // Mostly realistic multipliers (2^29..2^31 with shifts near 31..45), some extreme.
            mult: (0..n)
                .map(|_| match rng.below(8) {
                    0 => rng.next() as i32,
                    1 => 0,
                    _ => ((1u32 << 29) + (rng.next() as u32 >> 3)) as i32,
                })
                .map(|m| if odd { m | 1 } else { m })
                .collect(),
            // One call in three has every shift 33 to 62, as real layers do (kernels
            // round those in i32 lanes), some at the bounds; half of those stay within
            // 54 (kernels add the zero point inside the rounding term then). Half of those
            // calls also have shifts of 32 (the AVX2 sets round them in i32 lanes too).
            shift: if rng.below(3) == 0 {
                let top = if rng.below(2) == 0 { 62 } else { 54 };
                let bottom = if rng.below(2) == 0 { 32 } else { 33 };
                (0..n)
                    .map(|_| match rng.below(8) {
                        0 => bottom,
                        1 => top,
                        _ => 33 + rng.below(13) as u8,
                    })
                    .collect()
            } else {
                (0..n)
                    .map(
                        |_| {
                            if rng.below(8) == 0 { 1 + rng.below(62) as u8 } else { 30 + rng.below(16) as u8 }
                        },
                    )
                    .collect()
            },
            wsum: vec![0; n],
            zero_point: rng.below(256) as i32 - 128,
            min,
            max,
        }
    }
    fn rq(&self) -> Requant<'_> {
        Requant {
            bias: &self.bias,
            mult: &self.mult,
            shift: &self.shift,
            wsum: &self.wsum,
            zero_point: self.zero_point,
            min: self.min,
            max: self.max,
        }
    }
}

/// `sum(w)` per output channel from packed weights (what the quantizer stores).
fn wsums(b: &[i8], k_pad: usize, n_pad: usize, n: usize) -> Vec<i32> {
    (0..n).map(|j| (0..k_pad).map(|k| b[((k / 4) * n_pad + j) * 4 + k % 4] as i32).sum()).collect()
}

fn check_gemm(k: &dyn Kernels, rng: &mut Rng, m: usize, n: usize, k_pad: usize, extreme: bool) {
    let n_pad = n.next_multiple_of(16);
    let ldo = n + rng.below(5);
    let a = rng.i8s(m * k_pad, extreme);
    // Weights within what a narrow set multiplies exactly (the extremes then at its
    // limit); the full int8 range, -128 included, for the others.
    let limit = k.gemm_weight_limit();
    let mut b = rng.i8s(k_pad * n_pad, extreme);
    if limit < 127 {
        b.iter_mut().for_each(|w| *w = (*w).clamp(-limit, limit));
    }
    let mut p = Params::random(rng, n);
    p.wsum = wsums(&b, k_pad, n_pad, n);
    let sentinel = 0x55u8 as i8;
    let mut want = vec![sentinel; m * ldo];
    let mut got = want.clone();
    let shape = Gemm { m, n, k_pad, n_pad, ldo };
    Reference.gemm(&shape, &a, &b, &p.rq(), &mut want);
    k.gemm(&shape, &a, &b, &p.rq(), &mut got);
    assert_eq!(got, want, "{} gemm m={m} n={n} k_pad={k_pad} ldo={ldo} extreme={extreme}", k.name());
}

/// Requantization at exact ties, negative ones included, through a GEMM whose
/// accumulators are `a * w` over every int8 `a`: multipliers `±2^30` and `3 * 2^29` make
/// products whose low 32 bits are zero (random ones almost never do, and kernels that
/// round in i32 lanes tell those apart), with every shift high (33-36) and then with one
/// low shift (the i64 path); then with shifts of 62, where the even multipliers can be
/// made odd (kernels drop the tie term there, and must round the same).
fn check_requant_ties(k: &dyn Kernels) {
    let (m, n, k_pad) = (256, 16, 4);
    let a: Vec<i8> = (0..m).flat_map(|r| [r as u8 as i8, 0, 0, 0]).collect();
    let mut b = vec![0i8; k_pad * n];
    for (j, &wj) in TIE_WEIGHTS.iter().enumerate() {
        b[j * 4] = wj;
    }
    for (low, base) in TIE_SHIFTS {
        let mut p = tie_params(n, low, base);
        p.wsum = wsums(&b, k_pad, n, n);
        let (mut want, mut got) = (vec![0i8; m * n], vec![0i8; m * n]);
        Reference.gemm(&Gemm { m, n, k_pad, n_pad: n, ldo: n }, &a, &b, &p.rq(), &mut want);
        k.gemm(&Gemm { m, n, k_pad, n_pad: n, ldo: n }, &a, &b, &p.rq(), &mut got);
        let first = got.iter().zip(&want).position(|(g, w)| g != w);
        assert_eq!(first, None, "{} requantization at ties, shifts from {base}, low shift {low:?}", k.name());
    }
}

/// One weight per channel for the tie checks.
const TIE_WEIGHTS: [i8; 16] = [1, -1, 2, -3, 4, 5, -7, 8, 1, 1, -2, 3, 6, -5, 9, -1];

/// The tie checks' shifts: `(one low shift in channel 5, the first shift)`; from 32, every
/// shift the AVX2 sets round in i32 lanes, 32 (the low half's carry) included.
const TIE_SHIFTS: [(Option<u8>, u8); 4] = [(None, 32), (None, 33), (Some(30), 33), (None, 59)];

/// Requantization whose products have zero low 32 bits: multipliers `±2^30` and
/// `3 * 2^29`, shifts `base..base + 4`, small biases.
fn tie_params(n: usize, low: Option<u8>, base: u8) -> Params {
    let mut p = Params::random(&mut Rng(7), n);
    p.bias = (0..n as i32).map(|j| 4 * (j % 3) - 4).collect();
    p.mult = (0..n).map(|j| [1 << 30, -(1 << 30), 3 << 29][j % 3]).collect();
    p.shift = (0..n).map(|j| base + (j % 4) as u8).collect();
    if let Some(s) = low {
        p.shift[5] = s;
    }
    p
}

/// Requantization at the extremes of the i32 accumulator and multiplier, every shift
/// from 32 to 62 (all lanes alike, as kernels decide per call how to round) and the
/// extreme zero points: where kernels add the zero point inside the rounding term, an
/// overflow there shows.
fn check_requant_extremes(k: &dyn Kernels) {
    let (m, n, k_pad) = (2, 16, 4);
    let (a, b) = (vec![0i8; m * k_pad], vec![0i8; k_pad * n]);
    let biases = [i32::MIN, i32::MAX, -(1 << 30), 1 << 30, -1, 0];
    let mults = [i32::MAX, (1 << 30) + 1, 1 << 30];
    for shift in 32..=62u8 {
        for zero_point in [-128, 127] {
            let mut p = Params::random(&mut Rng(shift as u64), n);
            p.bias = (0..n).map(|j| biases[j % biases.len()]).collect();
            p.mult = (0..n).map(|j| mults[j / biases.len() % mults.len()]).collect();
            (p.shift, p.zero_point, p.min, p.max) = (vec![shift; n], zero_point, -128, 127);
            let (mut want, mut got) = (vec![0i8; m * n], vec![0i8; m * n]);
            Reference.gemm(&Gemm { m, n, k_pad, n_pad: n, ldo: n }, &a, &b, &p.rq(), &mut want);
            k.gemm(&Gemm { m, n, k_pad, n_pad: n, ldo: n }, &a, &b, &p.rq(), &mut got);
            assert_eq!(
                got,
                want,
                "{} requantization extremes, shift {shift}, zero point {zero_point}",
                k.name()
            );
        }
    }
}

/// GEMM: edge cases, exact ties, extremes, then 200 random shapes.
pub fn gemm(k: &dyn Kernels) {
    let mut rng = Rng(0x5EED);
    check_requant_ties(k);
    check_requant_extremes(k);
    {
        // Edge cases: single row / channel, tails of every length around the 16-lane block.
        for (m, n, kp) in [
            (1, 1, 4),
            (1, 16, 4),
            (1, 17, 8),
            (3, 15, 12),
            (9, 33, 4),
            (17, 7, 36),
            (8, 16, 64),
            (1, 256, 1152),
            // The deepest GEMM whose weights the AVX2 kernel widens once (k_pad / 4 = 256).
            (5, 20, 1024),
        ] {
            check_gemm(k, &mut rng, m, n, kp, false);
            check_gemm(k, &mut rng, m, n, kp, true);
        }
        for _ in 0..200 {
            let (m, n, kp) = (1 + rng.below(40), 1 + rng.below(70), 4 * (1 + rng.below(150)));
            let extreme = rng.below(4) == 0;
            check_gemm(k, &mut rng, m, n, kp, extreme);
        }
    }
}

fn check_depthwise(k: &dyn Kernels, rng: &mut Rng, extreme: bool) {
    // One kernel in four up to 8 wide (two groups of four taps a row, the second partial).
    let widest = [5, 5, 5, 8][rng.below(4)];
    let kernel = [1 + rng.below(5), 1 + rng.below(widest)];
    let (mut dilation, mut stride) =
        ([1 + rng.below(2), 1 + rng.below(2)], [1 + rng.below(3), 1 + rng.below(3)]);
    // Half the cases have the mobile nets' unit stride and dilation (kernels specialize it).
    if rng.below(2) == 0 {
        (dilation, stride) = ([1, 1], [1, 1]);
    }
    let pad = [rng.below(kernel[0]), rng.below(kernel[1])];
    // One map in four is wide, so that long rows are cut in chunks where kernels do.
    let wide = [0, 0, 0, 70][rng.below(4)];
    let (h, w, c) = (
        dilation[0] * (kernel[0] - 1) + 1 + rng.below(9),
        dilation[1] * (kernel[1] - 1) + 1 + rng.below(9) + wide,
        1 + rng.below(40),
    );
    let oh = (h + 2 * pad[0] - dilation[0] * (kernel[0] - 1) - 1) / stride[0] + 1;
    let ow = (w + 2 * pad[1] - dilation[1] * (kernel[1] - 1) - 1) / stride[1] + 1;
    let p = Depthwise { h, w, c, oh, ow, kernel, stride, pad, dilation, x_zero: rng.next() as i8 };
    let x = rng.i8s(h * w * c, extreme);
    let wts = rng.i8s(kernel[0] * kernel[1] * c, extreme);
    let params = Params::random(rng, c);
    let mut want = vec![0x55u8 as i8; oh * ow * c];
    let mut got = want.clone();
    Reference.depthwise(&p, &x, &wts, &params.rq(), &mut want);
    k.depthwise(&p, &x, &wts, &params.rq(), &mut got);
    assert_eq!(got, want, "{} depthwise {p:?} extreme={extreme}", k.name());
}

/// [`check_requant_ties`] through a 1x1 depthwise convolution: the pixels it reads hold
/// the 256 int8 values, each in every channel, and each channel has one weight. Stride 1
/// and 2 (kernels take different paths).
fn check_depthwise_ties(k: &dyn Kernels) {
    let c = 16;
    for s in [1, 2] {
        let (h, w) = (16 * s, 16 * s);
        let x: Vec<i8> =
            (0..h * w).flat_map(|px| [((px / w / s) * 16 + px % w / s) as u8 as i8; 16]).collect();
        let p = Depthwise {
            h,
            w,
            c,
            oh: 16,
            ow: 16,
            kernel: [1, 1],
            stride: [s, s],
            pad: [0, 0],
            dilation: [1, 1],
            x_zero: 0,
        };
        for (low, base) in TIE_SHIFTS {
            let params = tie_params(c, low, base);
            let (mut want, mut got) = (vec![0i8; 256 * c], vec![0i8; 256 * c]);
            Reference.depthwise(&p, &x, &TIE_WEIGHTS, &params.rq(), &mut want);
            k.depthwise(&p, &x, &TIE_WEIGHTS, &params.rq(), &mut got);
            let first = got.iter().zip(&want).position(|(g, w)| g != w);
            assert_eq!(
                first,
                None,
                "{} depthwise at ties, stride {s}, shifts from {base}, low {low:?}",
                k.name()
            );
        }
    }
}

/// Depthwise: exact ties, then 300 random cases.
pub fn depthwise(k: &dyn Kernels) {
    check_depthwise_ties(k);
    let mut rng = Rng(0xD3F7);
    {
        for _ in 0..300 {
            let extreme = rng.below(4) == 0;
            check_depthwise(k, &mut rng, extreme);
        }
    }
}

fn check_prelu(k: &dyn Kernels, rng: &mut Rng, extreme: bool) {
    let (hw, c) = (1 + rng.below(70), 1 + rng.below(40));
    let slopes = [1, c, hw * c][rng.below(3)];
    let limit = crate::kernels::PRELU_MULT_LIMIT;
    let shift = 1 + rng.below(crate::kernels::PRELU_MAX_SHIFT as usize) as u8;
    let mult: Vec<i32> = (0..=slopes)
        .map(|_| match rng.below(6) {
            0 => limit - 1,
            1 => -(limit - 1),
            2 => 0,
            _ => (rng.next() % (2 * limit as u64 - 1)) as i32 - (limit - 1),
        })
        .collect();
    let (mut min, mut max) = (rng.next() as i8, rng.next() as i8);
    if min > max || rng.below(2) == 0 {
        (min, max) = (-128, 127);
    }
    let p = PRelu {
        c,
        slopes,
        mult: &mult,
        shift,
        x_zero: if extreme { [-128, 127][rng.below(2)] } else { rng.next() as i8 },
        y_zero: rng.next() as i8,
        min,
        max,
    };
    let x = rng.i8s(hw * c, extreme);
    let mut want = vec![0x55u8 as i8; hw * c];
    let mut got = want.clone();
    Reference.prelu(&p, &x, &mut want);
    k.prelu(&p, &x, &mut got);
    assert_eq!(got, want, "{} prelu {p:?} extreme={extreme}", k.name());
    // The reference itself against the i64 definition.
    for (i, (&v, &y)) in x.iter().zip(&want).enumerate() {
        let d = v as i64 - p.x_zero as i64;
        let j = if d >= 0 {
            slopes
        } else if slopes == 1 {
            0
        } else if slopes == c {
            i % c
        } else {
            i
        };
        let r = p.y_zero as i64 + crate::requant::rshift_round(d * mult[j] as i64, shift);
        assert_eq!(y as i64, r.clamp(min as i64, max as i64), "prelu reference at {i}: {p:?}");
    }
}

fn check_max_pool(k: &dyn Kernels, rng: &mut Rng, extreme: bool) {
    let kernel = [1 + rng.below(4), 1 + rng.below(4)];
    let stride = [1 + rng.below(3), 1 + rng.below(3)];
    let (h, w, c) = (kernel[0] + rng.below(9), kernel[1] + rng.below(9), 1 + rng.below(70));
    let (oh, ow) = ((h - kernel[0]) / stride[0] + 1, (w - kernel[1]) / stride[1] + 1);
    let (mut min, mut max) = (rng.next() as i8, rng.next() as i8);
    if min > max || rng.below(2) == 0 {
        (min, max) = (-128, 127);
    }
    let p = MaxPool { w, c, oh, ow, kernel, stride, min, max };
    let x = rng.i8s(h * w * c, extreme);
    let mut want = vec![0x55u8 as i8; oh * ow * c];
    let mut got = want.clone();
    Reference.max_pool(&p, &x, &mut want);
    k.max_pool(&p, &x, &mut got);
    assert_eq!(got, want, "{} max pool {p:?} extreme={extreme}", k.name());
    // The reference against the definition.
    for oy in 0..oh {
        for ox in 0..ow {
            for ch in 0..c {
                let mut m = i8::MIN;
                for ky in 0..kernel[0] {
                    for kx in 0..kernel[1] {
                        m = m.max(x[((oy * stride[0] + ky) * w + ox * stride[1] + kx) * c + ch]);
                    }
                }
                assert_eq!(want[(oy * ow + ox) * c + ch], m.clamp(min, max), "max pool reference: {p:?}");
            }
        }
    }
}

/// One random Add; whether it took the split path ([`Add::split`]).
fn check_add(k: &dyn Kernels, rng: &mut Rng, extreme: bool) -> bool {
    // Lengths around the vector widths, tails included.
    let n = 1 + rng.below(300);
    let mult = |rng: &mut Rng| match rng.below(7) {
        0 => i32::MAX,
        1 => 0,
        2 => -(rng.next() as i32 & i32::MAX),
        // Whole multiples of 2^16: exact ties, negative ones too (the split path's case).
        3 => (rng.next() as i16 as i32) << 16,
        _ => (1 << 29) + (rng.next() % (1 << 30)) as i32,
    };
    // The split path's bounds (17 and 46) and either side of them among the extremes.
    let shift = if extreme { [1, 16, 17, 31, 46, 47, 62][rng.below(7)] } else { 28 + rng.below(10) as u8 };
    let (mut min, mut max) = (rng.next() as i8, rng.next() as i8);
    if min > max || rng.below(2) == 0 {
        (min, max) = (-128, 127);
    }
    let zero = |rng: &mut Rng| if extreme { [-128, 127][rng.below(2)] } else { rng.next() as i8 };
    let p = Add {
        mult: [mult(rng), mult(rng)],
        shift,
        a_zero: zero(rng),
        b_zero: zero(rng),
        y_zero: rng.next() as i8,
        min,
        max,
    };
    let (a, b) = (rng.i8s(n, extreme), rng.i8s(n, extreme));
    let mut want = vec![0x55u8 as i8; n];
    let mut got = want.clone();
    Reference.add(&p, &a, &b, &mut want);
    k.add(&p, &a, &b, &mut got);
    assert_eq!(got, want, "{} add {p:?} extreme={extreme}", k.name());
    // The reference against the definition.
    for i in 0..n {
        let v = (a[i] as i64 - p.a_zero as i64) * p.mult[0] as i64
            + (b[i] as i64 - p.b_zero as i64) * p.mult[1] as i64;
        let r = p.y_zero as i64 + crate::requant::rshift_round(v, shift);
        assert_eq!(want[i] as i64, r.clamp(min as i64, max as i64), "add reference at {i}: {p:?}");
    }
    p.split().is_some()
}

/// Add over every pair of int8 inputs with multipliers whose low 16 bits are zero, so
/// that exact ties, negative ones included, occur all over (random multipliers almost
/// never make them, and the split path rounds those apart).
fn check_add_ties(k: &dyn Kernels) {
    let a: Vec<i8> = (0..1 << 16).map(|i| i as u8 as i8).collect();
    let b: Vec<i8> = (0..1 << 16).map(|i| (i >> 8) as u8 as i8).collect();
    for (shift, mult) in [
        (17, [3 << 16, -5 << 16]),
        (20, [-7 << 16, 9 << 16]),
        (31, [1 << 30, -(1 << 30)]),
        (46, [i32::MIN, 1 << 16]),
    ] {
        let p = Add { mult, shift, a_zero: -3, b_zero: 5, y_zero: -1, min: -128, max: 127 };
        let mut want = vec![0i8; a.len()];
        let mut got = want.clone();
        Reference.add(&p, &a, &b, &mut want);
        k.add(&p, &a, &b, &mut got);
        let first = got.iter().zip(&want).position(|(g, w)| g != w);
        assert_eq!(first, None, "{} add {p:?}: first difference at {first:?}", k.name());
    }
}

/// Add at the extremes, every shift of the split path (17-46) and the extreme output zero
/// points: inputs at -128, 0 and 127 against zero points -128 and 127 (|a - za| up to
/// 255), multipliers near ±2^31 (the split path's i32 sums at their largest).
fn check_add_extremes(k: &dyn Kernels) {
    let values = [-128i8, 0, 127];
    let a: Vec<i8> = (0..9).map(|i| values[i % 3]).cycle().take(64).collect();
    let b: Vec<i8> = (0..9).map(|i| values[i / 3]).cycle().take(64).collect();
    let mults = [[0x7FFF_7FFF, 0x7FFF_7FFF], [-0x7FFF_8000, -0x7FFF_8000], [0x7FFF_7FFF, -0x7FFF_8000]];
    for shift in 17..=46 {
        for (mult, y_zero, (a_zero, b_zero)) in
            mults.iter().flat_map(|&m| [(m, -128, (127, 127)), (m, 127, (-128, -128)), (m, 127, (127, -128))])
        {
            let p = Add { mult, shift, a_zero, b_zero, y_zero, min: -128, max: 127 };
            assert!(p.split().is_some(), "{p:?}");
            let mut want = vec![0i8; a.len()];
            let mut got = want.clone();
            Reference.add(&p, &a, &b, &mut want);
            k.add(&p, &a, &b, &mut got);
            assert_eq!(got, want, "{} add extremes {p:?}", k.name());
        }
    }
}

/// Input quantization: gray, RGB and other channel counts; values at exact ties (both
/// signs), beyond the int8 range, infinite and NaN. The reference against the rounding's
/// definition too (half away from zero, NaN to the zero point).
fn check_quantize_input(k: &dyn Kernels, rng: &mut Rng) {
    let c = [1, 3, 3, 2, 4][rng.below(5)];
    let n = c * (1 + rng.below(300));
    let inv = [1.0, 255.0, 127.5, 0.37][rng.below(4)];
    let zero_point = rng.next() as i8;
    let image: Vec<f32> = (0..n)
        .map(|_| match rng.below(10) {
            0 => f32::NAN,
            1 => [f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30][rng.below(4)],
            // Exact ties of `v * inv` when inv is 1.
            2 => (rng.below(600) as f32 - 300.0) + 0.5,
            _ => (rng.next() % 20_000) as f32 / 10_000.0 - 1.0,
        })
        .collect();
    let mut want = vec![0x55u8 as i8; n];
    let mut got = want.clone();
    Reference.quantize_input(&image, c, inv, zero_point, &mut want);
    k.quantize_input(&image, c, inv, zero_point, &mut got);
    assert_eq!(got, want, "{} quantize_input c={c} inv={inv} zero_point={zero_point}", k.name());
    let hw = n / c;
    for p in 0..hw {
        for ch in 0..c {
            let s = image[ch * hw + p] * inv;
            let r = if s.is_nan() {
                0
            } else if s >= 0.0 {
                (s + 0.5) as i32
            } else {
                (s - 0.5) as i32
            };
            let q = r.saturating_add(zero_point as i32).clamp(-128, 127) as i8;
            assert_eq!(want[p * c + ch], q, "quantize_input reference: {} at inv {inv}", image[ch * hw + p]);
        }
    }
}

/// Channel padding: channel counts either side of the 64-lane blocks, zero to a few
/// channels before, one pixel and several (a block stored whole runs onto the next).
fn check_pad_channels(k: &dyn Kernels, rng: &mut Rng) {
    let c = 1 + rng.below(140);
    let before = if rng.below(2) == 0 { 0 } else { rng.below(20) };
    let co = before + c + rng.below(40);
    let pixels = 1 + rng.below(12);
    let p = PadChannels { c, co, before, zero: rng.next() as i8 };
    let x = rng.i8s(pixels * c, false);
    let mut want = vec![0x55u8 as i8; pixels * co];
    let mut got = want.clone();
    Reference.pad_channels(&p, &x, &mut want);
    k.pad_channels(&p, &x, &mut got);
    assert_eq!(got, want, "{} pad channels {p:?} of {pixels} pixels", k.name());
    // The reference against the definition.
    for (i, &v) in want.iter().enumerate() {
        let (px, ch) = (i / co, i % co);
        let inside = (before..before + c).contains(&ch);
        assert_eq!(v, if inside { x[px * c + ch - before] } else { p.zero }, "pad reference: {p:?}");
    }
}

/// PReLU, max pooling, Add, input quantization and channel padding: 300 random cases each.
pub fn elementwise(k: &dyn Kernels) {
    let mut rng = Rng(0x9E1A);
    let mut split = 0;
    for _ in 0..300 {
        let extreme = rng.below(4) == 0;
        check_prelu(k, &mut rng, extreme);
        check_max_pool(k, &mut rng, extreme);
        split += check_add(k, &mut rng, extreme) as usize;
        check_quantize_input(k, &mut rng);
    }
    // Both Add paths of the SIMD kernels were taken.
    assert!((50..=250).contains(&split), "{split} of 300 Adds split");
    check_add_ties(k);
    check_add_extremes(k);
    let mut rng = Rng(0x9AD);
    (0..300).for_each(|_| check_pad_channels(k, &mut rng));
}

/// The whole suite.
pub fn all(k: &dyn Kernels) {
    gemm(k);
    depthwise(k);
    elementwise(k);
}
