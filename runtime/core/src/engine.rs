//! Runs a validated `.fer` model: batch 1, no allocation, all activations in one
//! caller-provided arena (a static buffer on a microcontroller).

use core::fmt;

use crate::format::{Model, Op, OpCode, Value};
use crate::kernels::{Add, Depthwise, Gemm, Kernels, MaxPool, PRelu, PadChannels, Requant};
use crate::requant::{clamp_i8, clamp_i8_wide, div_round, quantize_f32, rshift_round};
#[cfg(feature = "graph-ops")]
use crate::resize::linear_taps;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineError {
    ArenaTooSmall { need: usize, got: usize },
    InputSize { need: usize, got: usize },
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::ArenaTooSmall { need, got } => {
                write!(f, "the arena holds {got} bytes; the model needs {need}")
            }
            EngineError::InputSize { need, got } => {
                write!(f, "the input has {got} values; the model takes {need}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EngineError {}

/// A model and the kernels that run it.
#[derive(Clone, Copy)]
pub struct Engine<'m> {
    pub model: Model<'m>,
    pub kernels: &'static dyn Kernels,
}

/// A float image in, every output dequantized out: what a host (the app's backend, the
/// quantizer's checks) asks of the engine. A microcontroller calls `set_input`, `run` and
/// `output_f32` itself, with buffers it owns.
#[cfg(feature = "alloc")]
impl Engine<'_> {
    /// Runs `image` (`[C, H, W]` as the float model takes it) and fills `outputs`, one
    /// buffer per model output in the model's order, resized to fit (no allocation once
    /// they have their sizes).
    pub fn infer_into(
        &self,
        arena: &mut [u8],
        image: &[f32],
        outputs: &mut alloc::vec::Vec<alloc::vec::Vec<f32>>,
    ) -> Result<(), EngineError> {
        self.set_input(arena, image)?;
        self.run(arena)?;
        outputs.resize_with(self.outputs(), alloc::vec::Vec::new);
        for (k, out) in outputs.iter_mut().enumerate() {
            out.resize(self.output_at(k).map_or(0, |v| v.len()), 0.0);
            self.output_f32_at(k, arena, out);
        }
        Ok(())
    }

    /// Runs `image` to the first output, dequantized.
    pub fn infer(&self, arena: &mut [u8], image: &[f32]) -> Result<alloc::vec::Vec<f32>, EngineError> {
        self.set_input(arena, image)?;
        self.run(arena)?;
        let mut out = alloc::vec![0f32; self.output().len()];
        self.output_f32(arena, &mut out);
        Ok(out)
    }
}

/// Read views of up to two values and a write view of a third, all in one arena.
///
/// # Safety
/// The write range must not overlap either read range, and all must be in bounds (the
/// loader checks both for every op; `run` checks the arena's length).
unsafe fn views<'a>(
    base: *mut u8,
    reads: [(usize, usize); 2],
    write: (usize, usize),
) -> ([&'a [i8]; 2], &'a mut [i8]) {
    // SAFETY: in bounds and non-overlapping with the write view (caller's contract); the
    // bytes are plain integers.
    unsafe {
        let r = |(o, l): (usize, usize)| core::slice::from_raw_parts(base.add(o) as *const i8, l);
        ([r(reads[0]), r(reads[1])], core::slice::from_raw_parts_mut(base.add(write.0) as *mut i8, write.1))
    }
}

impl<'m> Engine<'m> {
    /// `kernels` must multiply the model's weights exactly
    /// ([`Kernels::gemm_weight_limit`] at least [`Model::weight_limit`]; only the 7-bit
    /// sets are narrower): a caller that lets users choose checks with [`Engine::fits`].
    pub fn new(model: Model<'m>, kernels: &'static dyn Kernels) -> Engine<'m> {
        assert!(Engine::fits(&model, kernels), "{} cannot run a model with 8-bit weights", kernels.name());
        Engine { model, kernels }
    }

    /// Whether `kernels` computes `model` exactly.
    pub fn fits(model: &Model, kernels: &dyn Kernels) -> bool {
        kernels.gemm_weight_limit() >= model.weight_limit()
    }

    /// With the fastest kernels this CPU has for this model (7-bit models get `vpmaddubsw`
    /// on AVX2 CPUs without VNNI).
    pub fn with_best_kernels(model: Model<'m>) -> Engine<'m> {
        let kernels = crate::kernels::best_for(model.weight_limit());
        Engine::new(model, kernels)
    }

    pub fn arena_size(&self) -> usize {
        self.model.header.arena_size
    }

    pub fn input(&self) -> Value {
        self.model.value(self.model.header.input)
    }

    pub fn output(&self) -> Value {
        self.model.value(self.model.header.output)
    }

    /// The number of outputs (a detector has two: boxes and scores).
    pub fn outputs(&self) -> usize {
        self.model.header.n_outputs
    }

    /// Output `k` (0-based), or `None` past the last.
    pub fn output_at(&self, k: usize) -> Option<Value> {
        self.model.output_id(k).map(|id| self.model.value(id))
    }

    /// Output `k` dequantized into `out` (as many values as both hold). Values are in the
    /// float model's order: the quantizer ends map outputs with a flatten.
    pub fn output_f32_at(&self, k: usize, arena: &[u8], out: &mut [f32]) {
        let Some(v) = self.output_at(k) else { return };
        for (o, &q) in out.iter_mut().zip(&arena[v.offset..v.offset + v.len()]) {
            *o = (q as i8 as i32 - v.zero_point as i32) as f32 * v.scale;
        }
    }

    /// The input value's bytes in `arena` (`[H, W, C]`), after checking the arena's size.
    fn input_slot<'a>(&self, arena: &'a mut [u8]) -> Result<&'a mut [i8], EngineError> {
        if arena.len() < self.arena_size() {
            return Err(EngineError::ArenaTooSmall { need: self.arena_size(), got: arena.len() });
        }
        let v = self.input();
        let b = &mut arena[v.offset..v.offset + v.len()];
        // SAFETY: same size and validity for u8 and i8.
        Ok(unsafe { core::slice::from_raw_parts_mut(b.as_mut_ptr() as *mut i8, b.len()) })
    }

    /// Quantizes an image given as the float model takes it (`[C, H, W]`, f32) into the arena.
    pub fn set_input(&self, arena: &mut [u8], image: &[f32]) -> Result<(), EngineError> {
        let v = self.input();
        if image.len() != v.len() {
            return Err(EngineError::InputSize { need: v.len(), got: image.len() });
        }
        let dst = self.input_slot(arena)?;
        self.kernels.quantize_input(image, v.shape[0], 1.0 / v.scale, v.zero_point, dst);
        Ok(())
    }

    /// Like [`set_input`](Self::set_input), the float input's element `i` (in `[C, H, W]`
    /// order) given by `value(i)`: a microcontroller maps its 8-bit pixels on the fly
    /// instead of holding the whole float image.
    pub fn set_input_fn(&self, arena: &mut [u8], value: impl Fn(usize) -> f32) -> Result<(), EngineError> {
        let v = self.input();
        let dst = self.input_slot(arena)?;
        let [c, h, w] = v.shape;
        let inv = 1.0 / v.scale;
        for ch in 0..c {
            for p in 0..h * w {
                dst[p * c + ch] = quantize_f32(value(ch * h * w + p), inv, v.zero_point);
            }
        }
        Ok(())
    }

    /// The output's int8 values (after `run`).
    pub fn output_i8<'a>(&self, arena: &'a [u8]) -> &'a [i8] {
        let v = self.output();
        let b = &arena[v.offset..v.offset + v.len()];
        // SAFETY: same size and validity for u8 and i8.
        unsafe { core::slice::from_raw_parts(b.as_ptr() as *const i8, b.len()) }
    }

    /// The output dequantized into `out` (logits, or scores in the float model's units).
    pub fn output_f32(&self, arena: &[u8], out: &mut [f32]) {
        let v = self.output();
        for (o, &q) in out.iter_mut().zip(self.output_i8(arena)) {
            *o = (q as i32 - v.zero_point as i32) as f32 * v.scale;
        }
    }

    /// Writes value `id` from `[C, H, W]`-ordered int8 data (tests feed ONNX Runtime's
    /// intermediate results this way to check one op at a time).
    pub fn write_value_chw(&self, arena: &mut [u8], id: u16, chw: &[i8]) {
        let v = self.model.value(id);
        let [c, h, w] = v.shape;
        for ch in 0..c {
            for p in 0..h * w {
                arena[v.offset + p * c + ch] = chw[ch * h * w + p] as u8;
            }
        }
    }

    /// Reads value `id` into `[C, H, W]` order.
    pub fn read_value_chw(&self, arena: &[u8], id: u16, chw: &mut [i8]) {
        let v = self.model.value(id);
        let [c, h, w] = v.shape;
        for ch in 0..c {
            for p in 0..h * w {
                chw[ch * h * w + p] = arena[v.offset + p * c + ch] as i8;
            }
        }
    }

    /// Runs op `i` alone (its inputs must be in the arena).
    pub fn run_op(&self, i: u16, arena: &mut [u8]) -> Result<(), EngineError> {
        if arena.len() < self.arena_size() {
            return Err(EngineError::ArenaTooSmall { need: self.arena_size(), got: arena.len() });
        }
        if let Some(op) = self.model.op(i) {
            self.op(&op, arena);
        }
        Ok(())
    }

    /// Runs every op on the input already in the arena.
    pub fn run(&self, arena: &mut [u8]) -> Result<(), EngineError> {
        if arena.len() < self.arena_size() {
            return Err(EngineError::ArenaTooSmall { need: self.arena_size(), got: arena.len() });
        }
        for i in 0..self.model.header.n_ops {
            // Validated at load: every op parses.
            if let Some(op) = self.model.op(i as u16) {
                self.op(&op, arena);
            }
        }
        Ok(())
    }

    fn op(&self, op: &Op, arena: &mut [u8]) {
        let m = &self.model;
        let x = m.value(op.inputs[0]);
        let y = m.value(op.output);
        let second = if matches!(op.code, OpCode::Add | OpCode::Concat) { m.value(op.inputs[1]) } else { x };
        // SAFETY: the loader checked that outputs do not overlap inputs and all lie in the
        // arena, whose length `run` checked.
        let base = arena.as_mut_ptr();
        let ([xs, bs], ys) =
            unsafe { views(base, [(x.offset, x.len()), (second.offset, second.len())], (y.offset, y.len())) };
        match op.code {
            // SAFETY (scratch): see `arena_scratch`.
            OpCode::Conv => self.conv(op, &x, &y, unsafe { arena_scratch(base, m) }, xs, ys),
            OpCode::Dense => self.dense(op, &x, &y, unsafe { arena_scratch(base, m) }, xs, ys),
            OpCode::DepthwiseConv => self.depthwise(op, &x, &y, xs, ys),
            OpCode::MaxPool if op.pads == [0; 4] => self.max_pool(op, &x, &y, xs, ys),
            OpCode::MaxPool | OpCode::AvgPool => pool(op, &x, &y, xs, ys),
            OpCode::GlobalAvgPool => global_avg_pool(&x, xs, ys),
            OpCode::Flatten => flatten(&x, xs, ys),
            OpCode::Add => self.add(op, [&x, &second], &y, [xs, bs], ys),
            OpCode::Concat => {
                let mult = m.i32s(op.mult, 2);
                let s = m.u8s(op.shift, 1)[0];
                concat(op, [(x, mult[0]), (second, mult[1])], s, y.zero_point, [xs, bs], ys);
            }
            OpCode::Pad => pad(self.kernels, op, &x, &y, xs, ys),
            OpCode::Upsample => upsample_nearest(op, &x, &y, xs, ys),
            #[cfg(feature = "graph-ops")]
            OpCode::UpsampleLinear => upsample_linear(op, &x, &y, xs, ys),
            #[cfg(feature = "graph-ops")]
            OpCode::Softmax => softmax(m.i32s(op.bias, 256), op.k_pad, xs, ys),
            // The loader refuses them in builds without the feature.
            #[cfg(not(feature = "graph-ops"))]
            OpCode::UpsampleLinear | OpCode::Softmax => {}
            OpCode::Lut => lut(m.i8s(op.weights.0, 256), xs, ys),
            OpCode::PRelu => self.prelu(op, &x, &y, xs, ys),
        }
    }

    fn depthwise(&self, op: &Op, x: &Value, y: &Value, xs: &[i8], ys: &mut [i8]) {
        let [c, h, w] = x.shape;
        let p = Depthwise {
            h,
            w,
            c,
            oh: y.shape[1],
            ow: y.shape[2],
            kernel: op.kernel,
            stride: op.stride,
            pad: [op.pads[0], op.pads[1]],
            dilation: op.dilation,
            x_zero: x.zero_point,
        };
        let rq = self.requant(op, y, c);
        self.kernels.depthwise(&p, xs, self.model.i8s(op.weights.0, op.weights.1), &rq, ys);
    }

    /// Unpadded max pooling (the kernels' own; padded pooling is [`pool`]'s).
    fn max_pool(&self, op: &Op, x: &Value, y: &Value, xs: &[i8], ys: &mut [i8]) {
        let p = MaxPool {
            w: x.shape[2],
            c: x.shape[0],
            oh: y.shape[1],
            ow: y.shape[2],
            kernel: op.kernel,
            stride: op.stride,
            min: op.act_min,
            max: op.act_max,
        };
        self.kernels.max_pool(&p, xs, ys);
    }

    fn add(&self, op: &Op, [a, b]: [&Value; 2], y: &Value, [xs, bs]: [&[i8]; 2], ys: &mut [i8]) {
        let m = &self.model;
        let mult = m.i32s(op.mult, 2);
        let p = Add {
            mult: [mult[0], mult[1]],
            shift: m.u8s(op.shift, 1)[0],
            a_zero: a.zero_point,
            b_zero: b.zero_point,
            y_zero: y.zero_point,
            min: op.act_min,
            max: op.act_max,
        };
        self.kernels.add(&p, xs, bs, ys);
    }

    fn prelu(&self, op: &Op, x: &Value, y: &Value, xs: &[i8], ys: &mut [i8]) {
        let m = &self.model;
        let n = op.k_pad;
        let p = PRelu {
            c: x.shape[0],
            slopes: n,
            mult: m.i32s(op.mult, n + 1),
            shift: m.u8s(op.shift, 1)[0],
            x_zero: x.zero_point,
            y_zero: y.zero_point,
            min: op.act_min,
            max: op.act_max,
        };
        self.kernels.prelu(&p, xs, ys);
    }

    fn requant<'a>(&self, op: &Op, y: &Value, n: usize) -> Requant<'a>
    where
        'm: 'a,
    {
        let m = &self.model;
        let wsum = if op.code == OpCode::DepthwiseConv { m.i32s(op.bias, n) } else { m.i32s(op.wsum, n) };
        Requant {
            bias: m.i32s(op.bias, n),
            mult: m.i32s(op.mult, n),
            shift: m.u8s(op.shift, n),
            wsum,
            zero_point: y.zero_point as i32,
            min: op.act_min,
            max: op.act_max,
        }
    }

    fn conv(&self, op: &Op, x: &Value, y: &Value, scratch: &mut [i8], xs: &[i8], ys: &mut [i8]) {
        let m = &self.model;
        let c = x.shape[0];
        let [co, oh, ow] = y.shape;
        let g = op.groups;
        let (cig, cog) = (c / g, co / g);
        let [kh, kw] = op.kernel;
        let (k_pad, n_pad) = (op.k_pad, op.n_pad);
        let k_row = k_pad / kh.max(1);
        let rq_all = self.requant(op, y, co);
        let weights = m.i8s(op.weights.0, op.weights.1);
        let pointwise =
            kh == 1 && kw == 1 && op.stride == [1, 1] && op.pads == [0; 4] && g == 1 && cig == k_pad;
        for gi in 0..g {
            let rq = Requant {
                bias: &rq_all.bias[gi * cog..],
                mult: &rq_all.mult[gi * cog..],
                shift: &rq_all.shift[gi * cog..],
                wsum: &rq_all.wsum[gi * cog..],
                ..rq_all
            };
            let b = &weights[gi * k_pad * n_pad..(gi + 1) * k_pad * n_pad];
            if pointwise {
                self.kernels.gemm(&Gemm { m: oh * ow, n: cog, k_pad, n_pad, ldo: co }, xs, b, &rq, ys);
                continue;
            }
            // As many pixels per im2col tile as the scratch holds (at least `tile_m`, checked
            // at load): thin layers then gather long before the GEMM reads, so its 4-byte
            // loads never wait on the gather's narrower stores.
            let tile = (m.header.scratch_len / k_pad).max(1);
            let mut p0 = 0;
            while p0 < oh * ow {
                let rows = tile.min(oh * ow - p0);
                if g == 1 && op.dilation == [1, 1] {
                    im2col(op, x, ow, k_row, p0, &mut scratch[..rows * k_pad], xs);
                } else {
                    // Output coordinates stepped, not divided, per pixel.
                    let (mut oy, mut ox) = (p0 / ow, p0 % ow);
                    for row in scratch[..rows * k_pad].chunks_exact_mut(k_pad) {
                        gather_patch(op, x, gi * cig, cig, k_row, oy, ox, xs, row);
                        ox += 1;
                        if ox == ow {
                            (oy, ox) = (oy + 1, 0);
                        }
                    }
                }
                let shape = Gemm { m: rows, n: cog, k_pad, n_pad, ldo: co };
                self.kernels.gemm(&shape, &scratch[..rows * k_pad], b, &rq, &mut ys[p0 * co + gi * cog..]);
                p0 += rows;
            }
        }
    }

    fn dense(&self, op: &Op, x: &Value, y: &Value, scratch: &mut [i8], xs: &[i8], ys: &mut [i8]) {
        let m = &self.model;
        let (k, n) = (x.len(), y.len());
        let rq = self.requant(op, y, n);
        let b = m.i8s(op.weights.0, op.weights.1);
        let shape = Gemm { m: 1, n, k_pad: op.k_pad, n_pad: op.n_pad, ldo: n };
        if k == op.k_pad {
            self.kernels.gemm(&shape, xs, b, &rq, ys);
        } else {
            let a = &mut scratch[..op.k_pad];
            a[..k].copy_from_slice(xs);
            a[k..].fill(0);
            self.kernels.gemm(&shape, a, b, &rq, ys);
        }
    }
}

/// The scratch region of the arena.
///
/// # Safety
/// `base` is an arena of at least `arena_size` bytes (so the region is in bounds: checked
/// at load), and the region is disjoint from the current op's views (checked at load for
/// every op that uses scratch). Use it only within that op.
unsafe fn arena_scratch<'a>(base: *mut u8, m: &Model) -> &'a mut [i8] {
    let (o, l) = (m.header.scratch_off, m.header.scratch_len);
    // SAFETY: the caller's contract; u8 and i8 share layout.
    unsafe { core::slice::from_raw_parts_mut(base.add(o) as *mut i8, l) }
}

/// The im2col rows of output pixels `p0..p0 + tile.len() / k_pad` of an ungrouped,
/// undilated conv, a window row (`ky`) at a time across each output row: the pixels whose
/// window row lies inside the map copy `k_row` bytes each with a constant length (the pad
/// bytes past `kw * c` meet zero weights), the few at the borders go tap by tap.
fn im2col(op: &Op, x: &Value, ow: usize, k_row: usize, p0: usize, tile: &mut [i8], xs: &[i8]) {
    let [c, h, w] = x.shape;
    let [kh, kw] = op.kernel;
    let ([sy, sx], [pt, pl]) = (op.stride, [op.pads[0], op.pads[1]]);
    let (k_pad, span, zp) = (kh * k_row, kw * c, x.zero_point);
    // Output columns whose window row lies inside the map: ox * sx >= pl and
    // ox * sx - pl + kw <= w.
    let inner_lo = pl.div_ceil(sx);
    let inner_hi = if w + pl >= kw { ((w + pl - kw) / sx + 1).min(ow) } else { 0 };
    let rows = tile.len() / k_pad;
    let mut i = 0;
    while i < rows {
        let (oy, ox0) = ((p0 + i) / ow, (p0 + i) % ow);
        let n = (ow - ox0).min(rows - i);
        let seg = &mut tile[i * k_pad..(i + n) * k_pad];
        for ky in 0..kh {
            let iy = (oy * sy + ky) as isize - pt as isize;
            if iy < 0 || iy >= h as isize {
                seg.chunks_exact_mut(k_pad)
                    .for_each(|r| fill_small(&mut r[ky * k_row..(ky + 1) * k_row], zp));
                continue;
            }
            let line = iy as usize * w * c;
            let src_of = |ox: usize| line + (ox * sx - pl) * c;
            let a = inner_lo.clamp(ox0, ox0 + n);
            let mut b = inner_hi.clamp(a, ox0 + n);
            // The last row's last pixels may not have `k_row` bytes left to read.
            while b > a && src_of(b - 1) + k_row > xs.len() {
                b -= 1;
            }
            if b > a {
                let dst = &mut seg[(a - ox0) * k_pad + ky * k_row..];
                copy_rows(dst, k_pad, &xs[src_of(a)..], sx * c, b - a, k_row);
            }
            for ox in (ox0..a).chain(b..ox0 + n) {
                let r = &mut seg[(ox - ox0) * k_pad + ky * k_row..][..k_row];
                for kx in 0..kw {
                    let ix = (ox * sx + kx) as isize - pl as isize;
                    let dst = &mut r[kx * c..(kx + 1) * c];
                    if ix < 0 || ix >= w as isize {
                        fill_small(dst, zp);
                    } else {
                        copy_small(dst, &xs[line + ix as usize * c..][..c]);
                    }
                }
                fill_small(&mut r[span..], 0);
            }
        }
        i += n;
    }
}

/// `count` rows of `len` bytes from `src` (rows `src_step` apart) to `dst` (rows
/// `dst_step` apart), with a constant length for the usual padded window rows.
#[inline(always)]
fn copy_rows(dst: &mut [i8], dst_step: usize, src: &[i8], src_step: usize, count: usize, len: usize) {
    #[inline(always)]
    fn rows<const N: usize>(dst: &mut [i8], ds: usize, src: &[i8], ss: usize, count: usize) {
        if count == 0 {
            return;
        }
        // One bounds check for all rows (per-row slicing doubled the stem's im2col time).
        assert!((count - 1) * ds + N <= dst.len() && (count - 1) * ss + N <= src.len());
        let (d, s) = (dst.as_mut_ptr(), src.as_ptr());
        for j in 0..count {
            // SAFETY: rows j * ds .. + N and j * ss .. + N lie within the slices (asserted
            // for the last row; offsets grow with j), and `dst` and `src` do not overlap
            // (one is the scratch, the other an arena value: `&mut` and `&` borrows).
            unsafe { core::ptr::copy_nonoverlapping(s.add(j * ss), d.add(j * ds), N) };
        }
    }
    match len {
        4 => rows::<4>(dst, dst_step, src, src_step, count),
        8 => rows::<8>(dst, dst_step, src, src_step, count),
        12 => rows::<12>(dst, dst_step, src, src_step, count),
        16 => rows::<16>(dst, dst_step, src, src_step, count),
        48 => rows::<48>(dst, dst_step, src, src_step, count),
        96 => rows::<96>(dst, dst_step, src, src_step, count),
        192 => rows::<192>(dst, dst_step, src, src_step, count),
        384 => rows::<384>(dst, dst_step, src, src_step, count),
        _ => (0..count).for_each(|j| {
            dst[j * dst_step..j * dst_step + len].copy_from_slice(&src[j * src_step..j * src_step + len])
        }),
    }
}

/// One im2col row: the `(ky, kx, ci)` patch of output pixel `(oy, ox)` over channels
/// `c0..c0 + cig`, the input zero point where the window leaves the map. Each window row
/// fills `k_row` bytes (`kw * cig` rounded up to 4, see [`crate::format::conv_k`]); the pad
/// bytes meet zero weights, so inside the map they are copied along with the row (one
/// 4-byte move per row of a 1-channel 3x3 stem) rather than zeroed.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gather_patch(
    op: &Op,
    x: &Value,
    c0: usize,
    cig: usize,
    k_row: usize,
    oy: usize,
    ox: usize,
    xs: &[i8],
    row: &mut [i8],
) {
    let [c, h, w] = x.shape;
    let [kh, kw] = op.kernel;
    let ix0 = (ox * op.stride[1]) as isize - op.pads[1] as isize;
    // With one group and no dilation, a window row is one run of kw * c bytes.
    let runs = cig == c && op.dilation[1] == 1 && ix0 >= 0 && ix0 as usize + kw <= w;
    let span = kw * cig;
    for ky in 0..kh {
        let seg = &mut row[ky * k_row..(ky + 1) * k_row];
        let iy = (oy * op.stride[0] + ky * op.dilation[0]) as isize - op.pads[0] as isize;
        if iy < 0 || iy >= h as isize {
            fill_small(&mut seg[..span], x.zero_point);
        } else if runs {
            let src = (iy as usize * w + ix0 as usize) * c;
            if src + k_row <= xs.len() {
                copy_run(seg, &xs[src..src + k_row]);
                continue;
            }
            copy_small(&mut seg[..span], &xs[src..src + span]);
        } else {
            for kx in 0..kw {
                let ix = ix0 + (kx * op.dilation[1]) as isize;
                let dst = &mut seg[kx * cig..(kx + 1) * cig];
                if ix < 0 || ix >= w as isize {
                    fill_small(dst, x.zero_point);
                } else {
                    let src = (iy as usize * w + ix as usize) * c + c0;
                    copy_small(dst, &xs[src..src + cig]);
                }
            }
        }
        fill_small(&mut seg[span..], 0);
    }
}

/// Copies `N` bytes: a constant length compiles to a few moves, not a `memcpy` call.
#[inline(always)]
fn copy_n<const N: usize>(dst: &mut [i8], src: &[i8]) {
    dst[..N].copy_from_slice(&src[..N]);
}

/// A padded window row of the usual layers (3x3 over 1, 3, 16, 32, 64, 128 channels, 5x5
/// over 1 or 3) copied with a constant length; others as [`copy_small`].
#[inline(always)]
fn copy_run(dst: &mut [i8], src: &[i8]) {
    match dst.len() {
        4 => copy_n::<4>(dst, src),
        8 => copy_n::<8>(dst, src),
        12 => copy_n::<12>(dst, src),
        16 => copy_n::<16>(dst, src),
        48 => copy_n::<48>(dst, src),
        96 => copy_n::<96>(dst, src),
        192 => copy_n::<192>(dst, src),
        384 => copy_n::<384>(dst, src),
        _ => copy_small(dst, src),
    }
}

/// `copy_from_slice` without a `memcpy` call for the few-byte runs of thin layers.
#[inline(always)]
fn copy_small(dst: &mut [i8], src: &[i8]) {
    if dst.len() <= 16 {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    } else {
        dst.copy_from_slice(src);
    }
}

#[inline(always)]
fn fill_small(dst: &mut [i8], v: i8) {
    if dst.len() <= 16 {
        for d in dst.iter_mut() {
            *d = v;
        }
    } else {
        dst.fill(v);
    }
}

/// Concat: per block, each input's run requantized (`zy + ((v - z) * mult) >> s`, as Add
/// with one term) or copied when its quantization is the output's (multiplier `1 << s`).
/// The requantization of each of the 256 input bytes is worked out once, into a table.
/// Not inlined: the tables (514 bytes) would sit in `Engine::op`'s stack frame for every
/// op (the Cortex-M demo's stack grew by 1.4 KB).
#[inline(never)]
fn concat(op: &Op, inputs: [(Value, i32); 2], s: u8, zy: i8, xs: [&[i8]; 2], ys: &mut [i8]) {
    let runs = [op.k_pad, op.n_pad];
    let outer = ys.len() / (runs[0] + runs[1]);
    let tables = inputs.map(|(v, mult)| {
        let copy = v.zero_point == zy && mult as i64 == 1i64 << s;
        let z = v.zero_point as i64;
        let table: [i8; 256] = core::array::from_fn(|q| {
            let r = zy as i64 + rshift_round((q as u8 as i8 as i64 - z) * mult as i64, s);
            clamp_i8_wide(r, op.act_min, op.act_max)
        });
        (copy, table)
    });
    let mut at = 0;
    for o in 0..outer {
        for ((&(copy, ref table), src), &n) in tables.iter().zip(xs).zip(&runs) {
            let (src, dst) = (&src[o * n..(o + 1) * n], &mut ys[at..at + n]);
            if copy {
                dst.copy_from_slice(src);
            } else {
                for (d, &q) in dst.iter_mut().zip(src) {
                    *d = table[q as u8 as usize];
                }
            }
            at += n;
        }
    }
}

/// Bilinear upsampling of `[H, W, C]` bytes by whole factors (op code 14): each output is
/// `z + (sum of w_y * w_x * (x - z)) / (d_y * d_x)`, rounded half to even as ONNX
/// Runtime's QuantizeLinear rounds the float Resize's result. Input and output share their
/// quantization.
#[cfg(feature = "graph-ops")]
fn upsample_linear(op: &Op, x: &Value, y: &Value, xs: &[i8], ys: &mut [i8]) {
    let ([c, h, w], [_, oh, ow]) = (x.shape, y.shape);
    let [fy, fx] = op.kernel;
    let asymmetric = op.count_include_pad;
    let z = x.zero_point as i32;
    let clamp = |i: isize, n: usize| i.clamp(0, n as isize - 1) as usize;
    for oy in 0..oh {
        let (r0, ty, dy) = linear_taps(oy, fy, asymmetric);
        let (r1, r0) = (clamp(r0 + 1, h), clamp(r0, h));
        let (a0, a1) = ((dy - ty) as i32, ty as i32);
        for ox in 0..ow {
            let (c0, tx, dx) = linear_taps(ox, fx, asymmetric);
            let (c1, c0) = (clamp(c0 + 1, w), clamp(c0, w));
            let (b0, b1) = ((dx - tx) as i32, tx as i32);
            let d = (dy * dx) as i32;
            let at = |r: usize, col: usize, ch: usize| xs[(r * w + col) * c + ch] as i32 - z;
            for ch in 0..c {
                let acc = a0 * (b0 * at(r0, c0, ch) + b1 * at(r0, c1, ch))
                    + a1 * (b0 * at(r1, c0, ch) + b1 * at(r1, c1, ch));
                ys[(oy * ow + ox) * c + ch] = (z + div_round_half_even(acc, d)).clamp(-128, 127) as i8;
            }
        }
    }
}

/// Softmax over each run of `run` bytes (op code 15): `e = table[max - x]` (`exp` of the
/// distance below the run's largest, in units of 2^-16), output `round(256 * e / sum)`
/// from zero point -128, ties to even. Sums fit u32: the loader caps runs at
/// `SOFTMAX_MAX_RUN` and entries at 2^16.
#[cfg(feature = "graph-ops")]
fn softmax(table: &[i32], run: usize, xs: &[i8], ys: &mut [i8]) {
    for (x, y) in xs.chunks_exact(run).zip(ys.chunks_exact_mut(run)) {
        let top = x.iter().copied().max().unwrap_or(0) as i32;
        // At most 2^15 entries of at most 2^16: u32 holds the sum, and `e << 8` too, so
        // no 64-bit division is linked into Cortex-M builds.
        let sum: u32 = x.iter().map(|&v| table[(top - v as i32) as usize] as u32).sum::<u32>().max(1);
        for (o, &v) in y.iter_mut().zip(x) {
            let e = (table[(top - v as i32) as usize] as u32) << 8;
            // `e / sum <= 256` fits i32.
            let q = round_quotient((e / sum) as i32, e % sum, sum);
            *o = (q - 128).clamp(-128, 127) as i8;
        }
    }
}

/// `n / d` rounded to the nearest whole number, ties to even (`d > 0`).
#[cfg(feature = "graph-ops")]
fn div_round_half_even(n: i32, d: i32) -> i32 {
    round_quotient(n.div_euclid(d), n.rem_euclid(d) as u32, d as u32)
}

/// A quotient rounded down, `q`, with remainder `r` of divisor `d`, rounded to the nearest
/// whole number, ties to even (as ONNX Runtime's QuantizeLinear). `2 * r` fits u32 for any
/// `d <= 2^31`.
#[cfg(feature = "graph-ops")]
fn round_quotient(q: i32, r: u32, d: u32) -> i32 {
    match (2 * r).cmp(&d) {
        core::cmp::Ordering::Less => q,
        core::cmp::Ordering::Greater => q + 1,
        core::cmp::Ordering::Equal => q + (q & 1),
    }
}

/// Zero padding: the border rows and columns, and the channels before and after each
/// pixel's own, hold the zero point (the quantization is the input's). Each input row
/// lands on a run of output pixels: channel padding of that run ([`Kernels::pad_channels`]).
fn pad(kernels: &dyn Kernels, op: &Op, x: &Value, y: &Value, xs: &[i8], ys: &mut [i8]) {
    let [c, h, w] = x.shape;
    let [co, _, wo] = y.shape;
    let [pt, pl, ..] = op.pads;
    if op.pads != [0; 4] {
        ys.fill(x.zero_point);
    }
    let p = PadChannels { c, co, before: op.k_pad, zero: x.zero_point };
    for iy in 0..h {
        let at = ((iy + pt) * wo + pl) * co;
        kernels.pad_channels(&p, &xs[iy * w * c..][..w * c], &mut ys[at..at + w * co]);
    }
}

/// Channels handled per pass by the pooling loops (their i32 sums live on the stack).
const POOL_CHUNK: usize = 64;

/// The mean of each channel over the map, rounded, in the input's quantization.
fn global_avg_pool(x: &Value, xs: &[i8], ys: &mut [i8]) {
    let [c, h, w] = x.shape;
    let z = x.zero_point as i32;
    for c0 in (0..c).step_by(POOL_CHUNK) {
        let n = POOL_CHUNK.min(c - c0);
        let mut acc = [0i32; POOL_CHUNK];
        for p in 0..h * w {
            let src = &xs[p * c + c0..p * c + c0 + n];
            acc.iter_mut().zip(src).for_each(|(a, &v)| *a = a.wrapping_add(v as i32 - z));
        }
        for (d, &a) in ys[c0..c0 + n].iter_mut().zip(acc.iter()) {
            *d = clamp_i8(div_round(a, (h * w) as i32).wrapping_add(z), -128, 127);
        }
    }
}

/// `[H, W, C]` to the `[C, H, W]` order a float model flattens in.
fn flatten(x: &Value, xs: &[i8], ys: &mut [i8]) {
    let [c, h, w] = x.shape;
    for ch in 0..c {
        for p in 0..h * w {
            ys[ch * h * w + p] = xs[p * c + ch];
        }
    }
}

/// Nearest-neighbour upsampling by whole factors (op code 13).
fn upsample_nearest(op: &Op, x: &Value, y: &Value, xs: &[i8], ys: &mut [i8]) {
    let ([c, _, w], [_, oh, ow]) = (x.shape, y.shape);
    let [fy, fx] = op.kernel;
    for oy in 0..oh {
        let src = &xs[(oy / fy) * w * c..][..w * c];
        for ox in 0..ow {
            ys[(oy * ow + ox) * c..][..c].copy_from_slice(&src[(ox / fx) * c..][..c]);
        }
    }
}

/// A 256-entry table op (sigmoid, tanh, ...), indexed by the input byte offset to u8.
fn lut(table: &[i8], xs: &[i8], ys: &mut [i8]) {
    for (o, &v) in ys.iter_mut().zip(xs) {
        *o = table[(v as u8 ^ 0x80) as usize];
    }
}

/// Padded max pooling and average pooling, a channel vector at a time (channels are
/// contiguous). Unpadded max pooling, the common case, is [`Kernels::max_pool`].
fn pool(op: &Op, x: &Value, y: &Value, xs: &[i8], ys: &mut [i8]) {
    let [c, h, w] = x.shape;
    let [_, oh, ow] = y.shape;
    let z = x.zero_point as i32;
    let max = op.code == OpCode::MaxPool;
    for oy in 0..oh {
        for ox in 0..ow {
            let out = &mut ys[(oy * ow + ox) * c..(oy * ow + ox + 1) * c];
            if max {
                // In int8 directly: max commutes with the (shared) quantization.
                out.fill(i8::MIN);
                for ky in 0..op.kernel[0] {
                    let iy = (oy * op.stride[0] + ky) as isize - op.pads[0] as isize;
                    for kx in 0..op.kernel[1] {
                        let ix = (ox * op.stride[1] + kx) as isize - op.pads[1] as isize;
                        if iy >= 0 && ix >= 0 && iy < h as isize && ix < w as isize {
                            let at = (iy as usize * w + ix as usize) * c;
                            out.iter_mut().zip(&xs[at..at + c]).for_each(|(o, &v)| *o = (*o).max(v));
                        }
                    }
                }
                out.iter_mut().for_each(|o| *o = (*o).clamp(op.act_min, op.act_max));
                continue;
            }
            for c0 in (0..c).step_by(POOL_CHUNK) {
                let n = POOL_CHUNK.min(c - c0);
                let mut acc = [0i32; POOL_CHUNK];
                let acc = &mut acc[..n];
                if max {
                    acc.fill(i32::MIN);
                }
                let mut count = 0i32;
                for ky in 0..op.kernel[0] {
                    let iy = (oy * op.stride[0] + ky) as isize - op.pads[0] as isize;
                    for kx in 0..op.kernel[1] {
                        let ix = (ox * op.stride[1] + kx) as isize - op.pads[1] as isize;
                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            count += op.count_include_pad as i32;
                            continue;
                        }
                        count += 1;
                        let at = (iy as usize * w + ix as usize) * c + c0;
                        let src = &xs[at..at + n];
                        if max {
                            acc.iter_mut().zip(src).for_each(|(a, &v)| *a = (*a).max(v as i32));
                        } else {
                            acc.iter_mut().zip(src).for_each(|(a, &v)| *a = a.wrapping_add(v as i32 - z));
                        }
                    }
                }
                let dst = &mut out[c0..c0 + n];
                if max {
                    dst.iter_mut()
                        .zip(acc.iter())
                        .for_each(|(d, &a)| *d = clamp_i8(a, op.act_min, op.act_max));
                } else {
                    let count = count.max(1);
                    dst.iter_mut().zip(acc.iter()).for_each(|(d, &a)| {
                        *d = clamp_i8(div_round(a, count).wrapping_add(z), op.act_min, op.act_max)
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::vec;

    use super::*;
    use crate::format::conv_k;

    /// The row-at-a-time im2col against the tap-by-tap gather, on random convs (kernels
    /// 1..5, strides 1..3, uneven padding, thin and wide channels) and tiles that start and
    /// end mid-row. Pad bytes after each window row are free (zero weights) and not compared.
    #[test]
    fn im2col_rows_equal_the_tap_by_tap_gather() {
        let mut s = 0x2545_F491u64;
        let mut next = |n: usize| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % n as u64) as usize
        };
        for _ in 0..400 {
            let kernel = [1 + next(5), 1 + next(5)];
            let stride = [1 + next(3), 1 + next(3)];
            let pads = [next(kernel[0]), next(kernel[1]), next(kernel[0]), next(kernel[1])];
            let c = [1, 2, 3, 4, 5, 16, 32][next(7)];
            let (h, w) = (kernel[0] + next(8), kernel[1] + next(8));
            let oh = (h + pads[0] + pads[2] - kernel[0]) / stride[0] + 1;
            let ow = (w + pads[1] + pads[3] - kernel[1]) / stride[1] + 1;
            let x = Value { shape: [c, h, w], offset: 0, scale: 1.0, zero_point: next(256) as u8 as i8 };
            let op = Op {
                code: OpCode::Conv,
                count_include_pad: false,
                act_min: -128,
                act_max: 127,
                inputs: [0, 0],
                output: 1,
                groups: 1,
                kernel,
                stride,
                pads,
                dilation: [1, 1],
                weights: (0, 0),
                bias: 0,
                mult: 0,
                shift: 0,
                wsum: 0,
                k_pad: 0,
                n_pad: 0,
            };
            let xs: Vec<i8> = (0..h * w * c).map(|_| next(256) as u8 as i8).collect();
            let (k_row, k_pad) = conv_k(kernel, c);
            let p0 = next(oh * ow);
            let rows = 1 + next(oh * ow - p0);
            let mut fast = vec![0x55u8 as i8; rows * k_pad];
            im2col(&op, &x, ow, k_row, p0, &mut fast, &xs);
            for (i, got) in fast.chunks_exact(k_pad).enumerate() {
                let p = p0 + i;
                let mut want = vec![0i8; k_pad];
                gather_patch(&op, &x, 0, c, k_row, p / ow, p % ow, &xs, &mut want);
                for k in 0..k_pad {
                    if k % k_row < kernel[1] * c {
                        assert_eq!(got[k], want[k], "pixel {p}, k {k}: {op:?} {x:?}");
                    }
                }
            }
        }
    }
}
