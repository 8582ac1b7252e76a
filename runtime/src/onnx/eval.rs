//! Plain f32 execution of a [`FloatGraph`], batch 1: the quantizer's calibration pass and
//! the float reference for int8 results. Written for clarity, not speed.

use super::OnnxError;
use super::graph::{Conv, Dense, FloatGraph, Op, Pool, Sampling};

/// Every value of the graph for one image (`[C, H, W]`, as the model expects it): index 0
/// is the input, index `i + 1` node `i`'s output.
pub fn run_all(g: &FloatGraph, input: &[f32]) -> Result<Vec<Vec<f32>>, OnnxError> {
    let want: usize = g.input_shape.iter().product();
    if input.len() != want {
        return Err(OnnxError(format!(
            "input has {} values, the model takes {:?} = {want}",
            input.len(),
            g.input_shape
        )));
    }
    let mut values: Vec<Vec<f32>> = Vec::with_capacity(g.nodes.len() + 1);
    values.push(input.to_vec());
    for node in &g.nodes {
        let x = &values[node.inputs[0]];
        let in_shape = g.shape(node.inputs[0]);
        let y = match &node.op {
            Op::Conv(c) => conv(c, x, &in_shape, &node.shape),
            Op::BatchNorm(b) => {
                let plane = x.len() / b.scale.len();
                x.iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        let c = i / plane;
                        (v - b.mean[c]) / (b.var[c] + b.epsilon).sqrt() * b.scale[c] + b.bias[c]
                    })
                    .collect()
            }
            Op::Relu => x.iter().map(|&v| v.max(0.0)).collect(),
            Op::Clip { min, max } => x.iter().map(|&v| v.clamp(*min, *max)).collect(),
            Op::PRelu { slope } => {
                let idx = broadcast_index(&node.shape, &slope.dims);
                x.iter()
                    .enumerate()
                    .map(|(i, &v)| if v >= 0.0 { v } else { v * slope.data[idx(i)] })
                    .collect()
            }
            Op::MaxPool(p) => pool(p, x, &in_shape, &node.shape, true),
            Op::AvgPool(p) => pool(p, x, &in_shape, &node.shape, false),
            Op::GlobalAvgPool => {
                let plane = x.len() / in_shape[0];
                x.chunks(plane).map(|c| c.iter().sum::<f32>() / plane as f32).collect()
            }
            Op::Flatten => x.clone(),
            Op::Dense(d) => dense(d, x),
            Op::Add => x.iter().zip(&values[node.inputs[1]]).map(|(a, b)| a + b).collect(),
            Op::Softmax { axis } => softmax(x, &in_shape, *axis),
            Op::Pad { before, .. } => pad(x, &in_shape, before, &node.shape),
            Op::Transpose { perm } => transpose(x, &in_shape, perm),
            Op::Reshape => x.clone(),
            Op::Unary(u) => x.iter().map(|&v| u.apply(v)).collect(),
            Op::Upsample { factor, sampling } => upsample(x, &in_shape, *factor, *sampling),
            Op::Concat { axis } => {
                let parts: Vec<(&[f32], Vec<usize>)> =
                    node.inputs.iter().map(|&v| (values[v].as_slice(), g.shape(v))).collect();
                concat(&parts, *axis)
            }
        };
        values.push(y);
    }
    Ok(values)
}

/// The graph's output for one image.
pub fn run(g: &FloatGraph, input: &[f32]) -> Result<Vec<f32>, OnnxError> {
    let mut all = run_all(g, input)?;
    Ok(all.swap_remove(g.output))
}

/// Every output of the graph for one image, in the model's output order.
pub fn run_outputs(g: &FloatGraph, input: &[f32]) -> Result<Vec<Vec<f32>>, OnnxError> {
    let all = run_all(g, input)?;
    Ok(g.outputs.iter().map(|(_, id)| all[*id].clone()).collect())
}

/// Zero padding of a `[C, H, W]` value.
fn pad(x: &[f32], s: &[usize], before: &[usize; 3], o: &[usize]) -> Vec<f32> {
    let mut y = vec![0f32; o.iter().product()];
    for c in 0..s[0] {
        for h in 0..s[1] {
            let src = &x[(c * s[1] + h) * s[2]..][..s[2]];
            let at = ((c + before[0]) * o[1] + h + before[1]) * o[2] + before[2];
            y[at..at + s[2]].copy_from_slice(src);
        }
    }
    y
}

/// Upsampling of `[C, H, W]` by whole factors, nearest or bilinear (`Sampling::taps`).
fn upsample(x: &[f32], s: &[usize], [fy, fx]: [usize; 2], sampling: Sampling) -> Vec<f32> {
    let (c, h, w) = (s[0], s[1], s[2]);
    let (oh, ow) = (h * fy, w * fx);
    // Per output coordinate: the two clamped input indices and their weights.
    let axis = |o: usize, f: usize, n: usize| {
        let (i0, t, d) = sampling.taps(o, f);
        let clamp = |i: isize| i.clamp(0, n as isize - 1) as usize;
        let t = t as f32 / d as f32;
        (clamp(i0), clamp(i0 + 1), 1.0 - t, t)
    };
    let rows: Vec<_> = (0..oh).map(|o| axis(o, fy, h)).collect();
    let cols: Vec<_> = (0..ow).map(|o| axis(o, fx, w)).collect();
    let mut y = Vec::with_capacity(c * oh * ow);
    for ch in 0..c {
        let map = &x[ch * h * w..][..h * w];
        for &(r0, r1, a0, a1) in &rows {
            y.extend(cols.iter().map(|&(c0, c1, b0, b1)| {
                a0 * (b0 * map[r0 * w + c0] + b1 * map[r0 * w + c1])
                    + a1 * (b0 * map[r1 * w + c0] + b1 * map[r1 * w + c1])
            }));
        }
    }
    y
}

/// Softmax along `axis` of a row-major tensor of `shape`.
fn softmax(x: &[f32], shape: &[usize], axis: usize) -> Vec<f32> {
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut y = x.to_vec();
    for block in y.chunks_mut(n * inner) {
        for i in 0..inner {
            let at = |k: usize| k * inner + i;
            let m = (0..n).map(|k| block[at(k)]).fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for k in 0..n {
                block[at(k)] = (block[at(k)] - m).exp();
                sum += block[at(k)];
            }
            for k in 0..n {
                block[at(k)] /= sum;
            }
        }
    }
    y
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut st = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        st[i] = st[i + 1] * shape[i + 1];
    }
    st
}

/// Output axis `i` is input axis `perm[i]`.
fn transpose(x: &[f32], s: &[usize], perm: &[usize]) -> Vec<f32> {
    let out_shape: Vec<usize> = perm.iter().map(|&p| s[p]).collect();
    let (in_st, out_st) = (strides(s), strides(&out_shape));
    (0..x.len())
        .map(|flat| {
            let src: usize =
                (0..perm.len()).map(|i| (flat / out_st[i]) % out_shape[i] * in_st[perm[i]]).sum();
            x[src]
        })
        .collect()
}

/// Values of the same rank joined along `axis`.
fn concat(parts: &[(&[f32], Vec<usize>)], axis: usize) -> Vec<f32> {
    let outer: usize = parts[0].1[..axis].iter().product();
    let mut y = Vec::with_capacity(parts.iter().map(|p| p.0.len()).sum());
    for o in 0..outer {
        for (data, shape) in parts {
            let inner: usize = shape[axis..].iter().product();
            y.extend_from_slice(&data[o * inner..(o + 1) * inner]);
        }
    }
    y
}

/// Maps a flat index of `shape` to the flat index of a broadcast `small` (dims 1 or equal).
fn broadcast_index(shape: &[usize], small: &[usize]) -> impl Fn(usize) -> usize {
    let shape = shape.to_vec();
    let small = small.to_vec();
    move |mut i| {
        let mut out = 0;
        let mut stride = 1;
        for ax in (0..shape.len()).rev() {
            let coord = i % shape[ax];
            i /= shape[ax];
            if small[ax] != 1 {
                out += coord * stride;
            }
            stride *= small[ax];
        }
        out
    }
}

fn conv(c: &Conv, x: &[f32], s: &[usize], o: &[usize]) -> Vec<f32> {
    let (ci, h, w) = (s[0], s[1], s[2]);
    let (co, oh, ow) = (o[0], o[1], o[2]);
    let (kh, kw) = (c.weight.dims[2], c.weight.dims[3]);
    let (cig, cog) = (ci / c.groups, co / c.groups);
    let mut y = vec![0f32; co * oh * ow];
    for oc in 0..co {
        let g = oc / cog;
        let b = c.bias.as_ref().map_or(0.0, |b| b[oc]);
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = b;
                for icg in 0..cig {
                    let ic = g * cig + icg;
                    for ky in 0..kh {
                        let iy = (oy * c.stride[0] + ky * c.dilation[0]) as isize - c.pads[0] as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        for kx in 0..kw {
                            let ix = (ox * c.stride[1] + kx * c.dilation[1]) as isize - c.pads[1] as isize;
                            if ix < 0 || ix >= w as isize {
                                continue;
                            }
                            let wv = c.weight.data[((oc * cig + icg) * kh + ky) * kw + kx];
                            acc += wv * x[(ic * h + iy as usize) * w + ix as usize];
                        }
                    }
                }
                y[(oc * oh + oy) * ow + ox] = acc;
            }
        }
    }
    y
}

fn pool(p: &Pool, x: &[f32], s: &[usize], o: &[usize], max: bool) -> Vec<f32> {
    let (h, w) = (s[1], s[2]);
    let (c, oh, ow) = (o[0], o[1], o[2]);
    let mut y = vec![0f32; c * oh * ow];
    for ch in 0..c {
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut best, mut sum, mut count) = (f32::NEG_INFINITY, 0f32, 0usize);
                for ky in 0..p.kernel[0] {
                    for kx in 0..p.kernel[1] {
                        let iy = (oy * p.stride[0] + ky) as isize - p.pads[0] as isize;
                        let ix = (ox * p.stride[1] + kx) as isize - p.pads[1] as isize;
                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            if p.count_include_pad {
                                count += 1;
                            }
                            continue;
                        }
                        let v = x[(ch * h + iy as usize) * w + ix as usize];
                        best = best.max(v);
                        sum += v;
                        count += 1;
                    }
                }
                y[(ch * oh + oy) * ow + ox] = if max { best } else { sum / count.max(1) as f32 };
            }
        }
    }
    y
}

fn dense(d: &Dense, x: &[f32]) -> Vec<f32> {
    let (n, k) = (d.weight.dims[0], d.weight.dims[1]);
    (0..n)
        .map(|o| {
            let row = &d.weight.data[o * k..(o + 1) * k];
            row.iter().zip(x).map(|(a, b)| a * b).sum::<f32>() + d.bias.as_ref().map_or(0.0, |b| b[o])
        })
        .collect()
}
