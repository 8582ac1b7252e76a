//! The int8 hot path: each kernel set's GEMM (conv as im2col tiles) on the `edge` model's
//! layer shapes, its depthwise conv, PReLU and max pooling. Criterion's throughput is in multiply-accumulates
//! per second (`elem/s` = MAC/s), comparable with the CPU's int8 peak (`peak`, measured
//! here on x86 with AVX-512 VNNI).
//!
//! `cargo bench --bench int8_kernels`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fer_edge::fer_runtime::kernels::{self, Add, Depthwise, Gemm, MaxPool, PRelu, Requant};

/// (name, pixels, output channels, patch length) of the edge CNN's convolutions at 48x48.
const LAYERS: [(&str, usize, usize, usize); 8] = [
    ("stem 48x48 1->16 3x3", 2304, 16, 9),
    ("b2a 24x24 16->32 3x3", 576, 32, 144),
    ("b2b 24x24 32->32 3x3", 576, 32, 288),
    ("b3b 12x12 64->64 3x3", 144, 64, 576),
    ("b4a 6x6 64->128 3x3", 36, 128, 576),
    ("b4pw 6x6 128->128 1x1", 36, 128, 128),
    // BlazeFace: its 5x5 stride-2 stem on RGB, and a thin 1x1 (24 channels: a block and a
    // half of 16 lanes).
    ("blazeface stem 64x64 3->24 5x5", 4096, 24, 75),
    ("blazeface 64x64 24->24 1x1", 4096, 24, 24),
];

fn bytes(n: usize, seed: u32) -> Vec<i8> {
    (0..n).map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 24) as i8).collect()
}

fn gemm(c: &mut Criterion) {
    for (name, m, n, k) in LAYERS {
        let k_pad = k.next_multiple_of(4);
        let n_pad = n.next_multiple_of(16);
        let a = bytes(m * k_pad, 1);
        let b = bytes(k_pad * n_pad, 2);
        let (bias, mult, shift, wsum) = (vec![100i32; n], vec![1 << 30; n], vec![38u8; n], vec![0i32; n]);
        let rq = Requant {
            bias: &bias,
            mult: &mult,
            shift: &shift,
            wsum: &wsum,
            zero_point: -128,
            min: -128,
            max: 127,
        };
        let mut out = vec![0i8; m * n];
        let mut g = c.benchmark_group(format!("gemm {name}"));
        g.throughput(Throughput::Elements((m * n * k) as u64));
        for kern in kernels::available() {
            g.bench_function(kern.name(), |bch| {
                bch.iter(|| {
                    // In tiles of 32 rows, as the engine calls it.
                    for (i, tile) in a.chunks(32 * k_pad).enumerate() {
                        let rows = tile.len() / k_pad;
                        kern.gemm(
                            &Gemm { m: rows, n, k_pad, n_pad, ldo: n },
                            tile,
                            &b,
                            &rq,
                            &mut out[i * 32 * n..],
                        );
                    }
                })
            });
        }
        g.finish();
    }
}

/// Depthwise 3x3 at three shapes: a deep block's 6x6x128, BlazeFace's first 64x64x24
/// (thin channels) and its first stride-2 block. Throughput in MACs.
fn depthwise(c: &mut Criterion) {
    for (name, h, ch, s) in [
        ("depthwise b4dw 6x6x128 3x3", 6, 128, 1),
        ("depthwise blazeface 64x64x24 3x3", 64, 24, 1),
        ("depthwise blazeface 64x64x28 3x3 stride 2", 64, 28, 2),
    ] {
        let p = Depthwise {
            h,
            w: h,
            c: ch,
            oh: h / s,
            ow: h / s,
            kernel: [3, 3],
            stride: [s, s],
            // TensorFlow's SAME: stride 2 pads only below and right.
            pad: [2 - s, 2 - s],
            dilation: [1, 1],
            x_zero: -128,
        };
        let x = bytes(h * h * ch, 3);
        let w = bytes(9 * ch, 4);
        let (bias, mult, shift) = (vec![100i32; ch], vec![1 << 30; ch], vec![38u8; ch]);
        let rq = Requant {
            bias: &bias,
            mult: &mult,
            shift: &shift,
            wsum: &bias,
            zero_point: -128,
            min: -128,
            max: 127,
        };
        let mut out = vec![0i8; h * h / (s * s) * ch];
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements((h * h / (s * s) * ch * 9) as u64));
        for kern in kernels::available() {
            g.bench_function(kern.name(), |bch| bch.iter(|| kern.depthwise(&p, &x, &w, &rq, &mut out)));
        }
        g.finish();
    }
}

/// The elementwise ops at the shapes where they cost the most: the baseline's per-element
/// PReLU on its 32x48x48 stem output, and the edge's first 2x2 max pool (48x48x16).
/// Throughput in values read.
fn elementwise(c: &mut Criterion) {
    let n = 32 * 48 * 48;
    let x = bytes(n, 5);
    let mult: Vec<i32> =
        (0..=n as u32).map(|i| ((i.wrapping_mul(2654435761) >> 11) as i32) - (1 << 20)).collect();
    let p = PRelu { c: 32, slopes: n, mult: &mult, shift: 21, x_zero: -3, y_zero: 5, min: -128, max: 127 };
    let mut out = vec![0i8; n];
    let mut g = c.benchmark_group("prelu per element 32x48x48");
    g.throughput(Throughput::Elements(n as u64));
    for kern in kernels::available() {
        g.bench_function(kern.name(), |bch| bch.iter(|| kern.prelu(&p, &x, &mut out)));
    }
    g.finish();
    // BlazeFace's first residual Add (64x64x24), multipliers as the quantizer writes them.
    let (a, b) = (bytes(64 * 64 * 24, 7), bytes(64 * 64 * 24, 8));
    let p = Add {
        mult: [1_518_500_250, 1_073_741_824],
        shift: 31,
        a_zero: -100,
        b_zero: 3,
        y_zero: -90,
        min: -90,
        max: 127,
    };
    let mut out = vec![0i8; a.len()];
    let mut g = c.benchmark_group("add residual 64x64x24");
    g.throughput(Throughput::Elements(a.len() as u64));
    for kern in kernels::available() {
        g.bench_function(kern.name(), |bch| bch.iter(|| kern.add(&p, &a, &b, &mut out)));
    }
    g.finish();
    let x = bytes(48 * 48 * 16, 6);
    let p = MaxPool { w: 48, c: 16, oh: 24, ow: 24, kernel: [2, 2], stride: [2, 2], min: -128, max: 127 };
    let mut out = vec![0i8; 24 * 24 * 16];
    let mut g = c.benchmark_group("max pool 2x2 48x48x16");
    g.throughput(Throughput::Elements(x.len() as u64));
    for kern in kernels::available() {
        g.bench_function(kern.name(), |bch| bch.iter(|| kern.max_pool(&p, &x, &mut out)));
    }
    g.finish();
}

/// The core's int8 peak: 16 independent `vpdpbusd zmm` chains (no loads, no dependencies
/// between them), 64 MACs each. The GEMM figures above divided by this are the fraction of
/// peak the kernels reach.
#[cfg(target_arch = "x86_64")]
fn peak(c: &mut Criterion) {
    use std::arch::x86_64::*;
    if !(is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni")) {
        return;
    }
    const ITERS: usize = 10_000;
    #[target_feature(enable = "avx512f,avx512vnni")]
    fn chains(a: __m512i, b: __m512i) -> [__m512i; 16] {
        let mut acc = [_mm512_setzero_si512(); 16];
        for _ in 0..ITERS {
            for x in acc.iter_mut() {
                *x = _mm512_dpbusd_epi32(*x, a, b);
            }
        }
        acc
    }
    let mut g = c.benchmark_group("peak vpdpbusd zmm");
    g.throughput(Throughput::Elements((ITERS * 16 * 64) as u64));
    g.bench_function("avx512-vnni", |bch| {
        // SAFETY: the features were detected above.
        bch.iter(|| unsafe {
            chains(
                _mm512_set1_epi32(std::hint::black_box(0x0102_0304)),
                _mm512_set1_epi32(std::hint::black_box(5)),
            )
        })
    });
    g.finish();
}

#[cfg(not(target_arch = "x86_64"))]
fn peak(_: &mut Criterion) {}

criterion_group!(benches, gemm, depthwise, elementwise, peak);
criterion_main!(benches);
