//! The conformance suite: every kernel implementation this CPU runs against `reference`,
//! bit for bit, on random shapes and values and on the edge cases (extreme values, one
//! row, one channel, tails shorter than a SIMD block, strides and padding).

use std::vec;
use std::vec::Vec;

use super::reference::Reference;
use super::{Depthwise, Kernels, Requant, available};

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
        if rng.below(2) == 0 {
            (min, max) = (-128, 127);
        }
        Params {
            bias: (0..n).map(|_| (rng.next() as i32) >> rng.below(20)).collect(),
            // Mostly realistic multipliers (2^29..2^31 with shifts near 31..45), some extreme.
            mult: (0..n)
                .map(|_| match rng.below(8) {
                    0 => rng.next() as i32,
                    1 => 0,
                    _ => ((1u32 << 29) + (rng.next() as u32 >> 3)) as i32,
                })
                .collect(),
            shift: (0..n)
                .map(|_| if rng.below(8) == 0 { 1 + rng.below(62) as u8 } else { 30 + rng.below(16) as u8 })
                .collect(),
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
    let b = rng.i8s(k_pad * n_pad, extreme);
    let mut p = Params::random(rng, n);
    p.wsum = wsums(&b, k_pad, n_pad, n);
    let sentinel = 0x55u8 as i8;
    let mut want = vec![sentinel; m * ldo];
    let mut got = want.clone();
    Reference.gemm(m, n, k_pad, &a, &b, n_pad, &p.rq(), &mut want, ldo);
    k.gemm(m, n, k_pad, &a, &b, n_pad, &p.rq(), &mut got, ldo);
    assert_eq!(got, want, "{} gemm m={m} n={n} k_pad={k_pad} ldo={ldo} extreme={extreme}", k.name());
}

#[test]
fn gemm_matches_the_reference() {
    let mut rng = Rng(0x5EED);
    for k in available() {
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
    let kernel = [1 + rng.below(5), 1 + rng.below(5)];
    let dilation = [1 + rng.below(2), 1 + rng.below(2)];
    let stride = [1 + rng.below(3), 1 + rng.below(3)];
    let pad = [rng.below(kernel[0]), rng.below(kernel[1])];
    let (h, w, c) = (
        dilation[0] * (kernel[0] - 1) + 1 + rng.below(9),
        dilation[1] * (kernel[1] - 1) + 1 + rng.below(9),
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

#[test]
fn depthwise_matches_the_reference() {
    let mut rng = Rng(0xD3F7);
    for k in available() {
        for _ in 0..300 {
            let extreme = rng.below(4) == 0;
            check_depthwise(k, &mut rng, extreme);
        }
    }
}

#[test]
fn every_kernel_set_this_cpu_runs_is_tested() {
    let names: Vec<&str> = available().iter().map(|k| k.name()).collect();
    std::eprintln!("kernels under test: {names:?}");
    assert_eq!(names[0], "reference");
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        assert!(names.contains(&"avx2"), "{names:?}");
    }
    #[cfg(target_arch = "aarch64")]
    {
        assert!(names.contains(&"neon"), "{names:?}");
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            assert!(names.contains(&"neon-dotprod"), "{names:?}");
        }
    }
}
