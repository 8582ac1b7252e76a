//! [`QModel`] -> `.fer` bytes: weights packed for the kernels, activations placed in one
//! arena by liveness, every section aligned.

use super::build::{QLayer, QModel};
use crate::format::{self, ALIGN, HEADER_LEN, MAGIC, N_BLOCK, NONE, OP_LEN, OpCode, VALUE_LEN, VERSION};
use crate::onnx::OnnxError;

/// Pixels per im2col tile.
pub const TILE_M: usize = 32;

fn align(v: usize) -> usize {
    v.next_multiple_of(ALIGN)
}

/// Conv weights `[O, I/g, kh, kw]` -> per group `[K_pad/4][N_pad][4]`, K in the patch
/// order `(ky, kx, ci)` the engine gathers, each window row padded to 4 ([`format::conv_k`]).
/// Dense weights `[O, I]` read a map `x` of `[C, H, W]` (ONNX flattens it in that order)
/// from the arena's `[H, W, C]`: their K is permuted to match.
pub fn pack_gemm(l: &QLayer, x: [usize; 3]) -> (Vec<i8>, usize, usize) {
    let d = &l.weight_dims;
    let (o, ig) = (d[0], d[1]);
    let g = l.groups;
    let og = o / g;
    let n_pad = og.next_multiple_of(N_BLOCK);
    // (source column, packed K index) pairs for one output channel.
    let (k_pad, order): (usize, Vec<(usize, usize)>) = if d.len() == 4 {
        let (kh, kw) = (d[2], d[3]);
        let (row, k_pad) = format::conv_k([kh, kw], ig);
        let mut order = Vec::with_capacity(kh * kw * ig);
        for ky in 0..kh {
            for kx in 0..kw {
                for ci in 0..ig {
                    order.push(((ci * kh + ky) * kw + kx, ky * row + kx * ig + ci));
                }
            }
        }
        (k_pad, order)
    } else {
        let [c, h, w] = x;
        let hw = if c * h * w == ig { h * w } else { 1 };
        let c = ig / hw;
        let order = (0..hw).flat_map(|p| (0..c).map(move |ch| (ch * hw + p, p * c + ch))).collect();
        (ig.next_multiple_of(4), order)
    };
    let mut out = vec![0i8; g * k_pad * n_pad];
    for gi in 0..g {
        let block = &mut out[gi * k_pad * n_pad..(gi + 1) * k_pad * n_pad];
        for j in 0..og {
            let row = &l.weights[(gi * og + j) * order.len()..][..order.len()];
            for &(src, kk) in &order {
                block[((kk / 4) * n_pad + j) * 4 + kk % 4] = row[src];
            }
        }
    }
    (out, k_pad, n_pad)
}

/// Depthwise weights `[C, 1, kh, kw]` -> `[kh * kw][C]`.
pub fn pack_depthwise(l: &QLayer) -> Vec<i8> {
    let d = &l.weight_dims;
    let (c, taps) = (d[0], d[2] * d[3]);
    let mut out = vec![0i8; taps * c];
    for ch in 0..c {
        for t in 0..taps {
            out[t * c + ch] = l.weights[ch * taps + t];
        }
    }
    out
}

struct Data(Vec<u8>);

impl Data {
    fn put(&mut self, bytes: &[u8]) -> usize {
        let at = align(self.0.len());
        self.0.resize(at, 0);
        self.0.extend_from_slice(bytes);
        at
    }
    fn i32s(&mut self, v: &[i32]) -> usize {
        self.put(&v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())
    }
    fn i8s(&mut self, v: &[i8]) -> usize {
        self.put(&v.iter().map(|&x| x as u8).collect::<Vec<u8>>())
    }
}

/// Where the activations and the im2col scratch lie in the arena.
struct Placement {
    offsets: Vec<usize>,
    scratch_off: usize,
    /// Bytes of arena the activations and the scratch need together.
    end: usize,
}

/// Arena offsets by first fit over live ranges, largest first (as TFLite's greedy-by-size
/// planner), with the scratch placed among the values as one more: it is live only during
/// the ops that use it, so it can lie over maps that are dead by then. On the edge model this
/// takes the arena from 66,816 to 64,512 bytes, under a 64 KB microcontroller's budget.
fn place(m: &QModel, scratch_len: usize) -> Placement {
    let n = m.values.len();
    // Value v is live from the op that writes it (input: before op 0) to its last reader.
    let mut first = vec![0usize; n];
    let mut last = vec![0usize; n];
    for (i, l) in m.layers.iter().enumerate() {
        first[l.output] = i + 1;
        last[l.output] = last[l.output].max(i + 1);
        for &v in &l.inputs {
            last[v] = last[v].max(i + 1);
        }
    }
    for &(_, v) in &m.outputs {
        last[v] = usize::MAX;
    }
    let scratch_times: Vec<usize> =
        m.layers.iter().enumerate().filter(|(_, l)| scratch_need(l) > 0).map(|(i, _)| i + 1).collect();
    // Item n is the scratch. Lifetimes clash when one is written while the other is still to
    // be read (an op's inputs and output always clash: last[input] == first[output]); the
    // scratch clashes with whatever is live during an op that uses it.
    let len = |v: usize| if v == n { scratch_len } else { m.values[v].len() };
    let clash = |a: usize, b: usize| match (a == n, b == n) {
        (false, false) => first[a] <= last[b] && first[b] <= last[a],
        (true, false) => scratch_times.iter().any(|&t| first[b] <= t && t <= last[b]),
        (false, true) => scratch_times.iter().any(|&t| first[a] <= t && t <= last[a]),
        (true, true) => true,
    };
    let mut order: Vec<usize> = (0..=n).filter(|&v| len(v) > 0 || v < n).collect();
    order.sort_by_key(|&v| std::cmp::Reverse(len(v)));
    let mut at_of = vec![0usize; n + 1];
    let mut placed: Vec<(usize, usize, usize)> = Vec::new(); // (start, end, item)
    let mut end = 0;
    for &v in &order {
        let mut at = 0;
        while let Some(&(_, e, _)) =
            placed.iter().filter(|&&(s, e, w)| at < e && s < at + len(v) && clash(v, w)).max_by_key(|p| p.1)
        {
            at = align(e);
        }
        placed.push((at, at + len(v), v));
        at_of[v] = at;
        end = end.max(at + len(v));
    }
    let scratch_off = if scratch_len > 0 { at_of[n] } else { align(end) };
    Placement { offsets: at_of[..n].to_vec(), scratch_off, end: align(end) }
}

/// Scratch bytes layer `l` needs, as the loader checks them: convs gather `TILE_M` patches
/// of `K_pad` bytes; dense layers whose input length is not a multiple of 4 copy their input
/// there, padded.
fn scratch_need(l: &QLayer) -> usize {
    match l.code {
        OpCode::Conv => {
            let d = &l.weight_dims;
            TILE_M * format::conv_k([d[2], d[3]], d[1]).1
        }
        OpCode::Dense => {
            let k = l.weights.len() / l.bias.len();
            if k.is_multiple_of(4) { 0 } else { k.next_multiple_of(4) }
        }
        _ => 0,
    }
}

fn put_u16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

fn u16_field(v: usize, what: &str) -> Result<u16, OnnxError> {
    u16::try_from(v).map_err(|_| OnnxError(format!("{what} ({v}) does not fit the .fer format")))
}

/// Serializes `m`.
pub fn write(m: &QModel) -> Result<Vec<u8>, OnnxError> {
    let scratch = m.layers.iter().map(scratch_need).max().unwrap_or(0);
    let Placement { offsets, scratch_off, end } = place(m, scratch);
    let mut data = Data(Vec::new());
    let labels = serde_json::to_string(&m.labels).map_err(|e| OnnxError(e.to_string()))?;
    let labels_off = data.put(labels.as_bytes());
    let input_map = m.input_map.as_ref().filter(|map| !crate::preprocess::is_pixel_over_255(map));
    if let Some(map) = input_map {
        // Right after the labels, where the reader looks (format::input_map_offset).
        let mut bytes = (map.len() as u32).to_le_bytes().to_vec();
        for (scale, offset) in map {
            bytes.extend(scale.to_le_bytes().into_iter().chain(offset.to_le_bytes()));
        }
        let at = data.put(&bytes);
        debug_assert_eq!(at, (labels_off + labels.len()).next_multiple_of(ALIGN));
    }
    let mut ops = vec![0u8; m.layers.len() * OP_LEN];
    for (i, l) in m.layers.iter().enumerate() {
        let o = &mut ops[i * OP_LEN..(i + 1) * OP_LEN];
        o[0] = l.code as u8;
        o[1] = l.act_min as u8;
        o[2] = l.act_max as u8;
        o[3] = l.count_include_pad as u8;
        put_u16(o, 4, u16_field(l.inputs[0], "value id")?);
        put_u16(o, 6, if l.inputs.len() > 1 { u16_field(l.inputs[1], "value id")? } else { NONE });
        put_u16(o, 8, u16_field(l.output, "value id")?);
        put_u16(o, 10, u16_field(l.groups, "groups")?);
        let small = |v: usize, what: &str| {
            u8::try_from(v).map_err(|_| OnnxError(format!("node `{}`: {what} {v} too large", l.name)))
        };
        o[12] = small(l.kernel[0], "kernel")?;
        o[13] = small(l.kernel[1], "kernel")?;
        o[14] = small(l.stride[0], "stride")?;
        o[15] = small(l.stride[1], "stride")?;
        for (k, p) in l.pads.iter().enumerate() {
            o[16 + k] = small(*p, "padding")?;
        }
        o[20] = small(l.dilation[0], "dilation")?;
        o[21] = small(l.dilation[1], "dilation")?;
        let x = &m.values[l.inputs[0]];
        let zx = x.zero_point as i32;
        match l.code {
            OpCode::Conv | OpCode::Dense => {
                let (packed, k_pad, n_pad) = pack_gemm(l, x.shape);
                let per = l.weights.len() / l.bias.len();
                let wsum: Vec<i32> =
                    l.weights.chunks(per).map(|c| c.iter().map(|&v| v as i32).sum()).collect();
                let bias: Vec<i32> =
                    l.bias.iter().zip(&wsum).map(|(&b, &s)| b.wrapping_sub(zx * s)).collect();
                let w = data.i8s(&packed);
                put_u32(o, 24, w as u32);
                put_u32(o, 28, packed.len() as u32);
                put_u32(o, 32, data.i32s(&bias) as u32);
                put_u32(o, 36, data.i32s(&l.mult) as u32);
                put_u32(o, 40, data.put(&l.shift) as u32);
                put_u32(o, 44, data.i32s(&wsum) as u32);
                put_u32(o, 48, k_pad as u32);
                put_u32(o, 52, n_pad as u32);
            }
            OpCode::DepthwiseConv => {
                let packed = pack_depthwise(l);
                let per = l.weights.len() / l.bias.len();
                let bias: Vec<i32> = l
                    .weights
                    .chunks(per)
                    .zip(&l.bias)
                    .map(|(c, &b)| b.wrapping_sub(zx * c.iter().map(|&v| v as i32).sum::<i32>()))
                    .collect();
                put_u32(o, 24, data.i8s(&packed) as u32);
                put_u32(o, 28, packed.len() as u32);
                put_u32(o, 32, data.i32s(&bias) as u32);
                put_u32(o, 36, data.i32s(&l.mult) as u32);
                put_u32(o, 40, data.put(&l.shift) as u32);
            }
            OpCode::Add | OpCode::Concat => {
                put_u32(o, 36, data.i32s(&l.mult) as u32);
                put_u32(o, 40, data.put(&l.shift) as u32);
                put_u32(o, 48, l.runs[0] as u32);
                put_u32(o, 52, l.runs[1] as u32);
            }
            OpCode::Pad => {
                put_u32(o, 48, l.runs[0] as u32);
                put_u32(o, 52, l.runs[1] as u32);
            }
            OpCode::Lut => {
                put_u32(o, 24, data.i8s(&l.weights) as u32);
                put_u32(o, 28, l.weights.len() as u32);
            }
            OpCode::Softmax => {
                put_u32(o, 32, data.i32s(&l.bias) as u32);
                put_u32(o, 48, l.runs[0] as u32);
            }
            OpCode::PRelu => {
                put_u32(o, 36, data.i32s(&l.mult) as u32);
                put_u32(o, 40, data.put(&l.shift) as u32);
                put_u32(o, 48, (l.mult.len() - 1) as u32);
            }
            _ => {}
        }
    }
    let arena = end;
    let mut values = vec![0u8; m.values.len() * VALUE_LEN];
    for (i, v) in m.values.iter().enumerate() {
        let b = &mut values[i * VALUE_LEN..(i + 1) * VALUE_LEN];
        b[0] = 3;
        for (k, d) in v.shape.iter().enumerate() {
            put_u16(b, 4 + 2 * k, u16_field(*d, "dimension")?);
        }
        put_u32(b, 12, offsets[i] as u32);
        put_u32(b, 16, v.len() as u32);
        put_u32(b, 20, v.scale.to_bits());
        put_u32(b, 24, v.zero_point as i32 as u32);
    }
    // Output slots, when there are several (a one-output file reads as before).
    if m.outputs.len() > 1 {
        for (k, (name, v)) in m.outputs.iter().enumerate() {
            if values[v * VALUE_LEN + 1] != 0 {
                return Err(OnnxError(format!("output `{name}` repeats another output's tensor")));
            }
            values[v * VALUE_LEN + 1] =
                u8::try_from(k + 1).ok().filter(|&s| s as usize <= format::MAX_OUTPUTS).ok_or_else(|| {
                    OnnxError(format!(
                        "{} outputs: the .fer format holds at most {}",
                        m.outputs.len(),
                        format::MAX_OUTPUTS
                    ))
                })?;
        }
    }
    let values_off = align(HEADER_LEN);
    let ops_off = align(values_off + values.len());
    let data_off = align(ops_off + ops.len());
    let total = align(data_off + data.0.len());
    let mut out = vec![0u8; total];
    out[..4].copy_from_slice(&MAGIC);
    put_u16(&mut out, 4, VERSION);
    put_u16(&mut out, 6, HEADER_LEN as u16);
    put_u32(&mut out, 8, total as u32);
    put_u16(&mut out, 16, u16_field(m.values.len(), "value count")?);
    put_u16(&mut out, 18, u16_field(m.layers.len(), "op count")?);
    put_u32(&mut out, 20, values_off as u32);
    put_u32(&mut out, 24, ops_off as u32);
    put_u32(&mut out, 28, data_off as u32);
    put_u32(&mut out, 32, data.0.len() as u32);
    put_u32(&mut out, 36, arena as u32);
    put_u32(&mut out, 40, scratch_off as u32);
    put_u32(&mut out, 44, scratch as u32);
    put_u16(&mut out, 48, 0);
    put_u16(&mut out, 50, u16_field(m.output, "value id")?);
    put_u32(&mut out, 52, labels_off as u32);
    put_u16(&mut out, 56, u16_field(labels.len(), "labels length")?);
    let flags = if m.softmax { format::FLAG_SOFTMAX } else { 0 }
        | if input_map.is_some() { format::FLAG_INPUT_MAP } else { 0 }
        | if m.weight_bits == 7 { format::FLAG_WEIGHTS_7BIT } else { 0 };
    put_u16(&mut out, 58, flags);
    put_u16(&mut out, 60, TILE_M as u16);
    put_u16(&mut out, 62, m.outputs.len().max(1) as u16);
    out[values_off..values_off + values.len()].copy_from_slice(&values);
    out[ops_off..ops_off + ops.len()].copy_from_slice(&ops);
    out[data_off..data_off + data.0.len()].copy_from_slice(&data.0);
    let crc = format::checksum(&out);
    put_u32(&mut out, 12, crc);
    Ok(out)
}
