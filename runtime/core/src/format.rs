//! The `.fer` int8 model file: read and validated without allocation, used in place
//! (from flash through `include_bytes!`, or from a file read into aligned memory).
//!
//! Layout, all little-endian, every section 16-byte aligned:
//!
//! ```text
//! header   64 bytes   magic "FER8", version, sizes, CRC-32 of everything after byte 16
//! values   32 bytes each: shape [C, H, W] (vectors [K, 1, 1]), arena offset, scale, zero point,
//!          output slot (byte 1: 0, or k for the model's k-th output)
//! ops      64 bytes each: op code, value ids, window, fused clamp, offsets into data
//! data     weights (int8, packed for the kernels), biases / multipliers (i32), shifts (u8), labels
//! ```
//!
//! Activations are int8, stored channels-last (`[H, W, C]`) in one arena whose size the
//! header gives. Conv and dense weights are packed as `[K/4][N_pad][4]` per group (`K` the
//! patch length `kh * kw * c_in` rounded up to 4, `N_pad` the output channels rounded up
//! to 16), so SIMD kernels read 4 consecutive patch bytes for 16 output channels at once.
//! [`Model::new`] checks every offset, size and shape, so running a model that loaded
//! cannot index out of bounds.

use core::fmt;

use crate::kernels::{PRELU_MAX_SHIFT, PRELU_MULT_LIMIT};

pub const MAGIC: [u8; 4] = *b"FER8";
/// 2: conv window rows padded to 4 bytes in K, dense layers read maps directly, PReLU
/// multipliers share one shift (version 1 files: quantize the model again). Later additions
/// to version 2 are backward compatible: op codes 10 (Concat) and 11 (Pad), which older
/// readers refuse as unknown, 12 (Lut), 13 (Upsample), 14 (UpsampleLinear), 15 (Softmax), the input map (header flag 2, which older readers
/// ignore: they feed pixels / 255), and several outputs (header byte 62, value byte 1), which
/// older readers see as the first output alone.
pub const VERSION: u16 = 2;
pub const HEADER_LEN: usize = 64;
pub const VALUE_LEN: usize = 32;
pub const OP_LEN: usize = 64;
/// Sections and the model buffer itself are aligned to this.
pub const ALIGN: usize = 16;
/// Output channels are padded to a multiple of this in packed weights.
pub const N_BLOCK: usize = 16;
/// Softmax table entries are at most `1 << SOFTMAX_SHIFT` ([`SOFTMAX_ONE`], for the run's
/// largest input); a run's sum of them fits u32 up to [`SOFTMAX_MAX_RUN`] inputs.
pub const SOFTMAX_SHIFT: u32 = 16;
pub const SOFTMAX_ONE: i32 = 1 << SOFTMAX_SHIFT;
pub const SOFTMAX_MAX_RUN: usize = 1 << 15;
/// At most this many model outputs (a detector has two).
pub const MAX_OUTPUTS: usize = 16;
/// Marks an absent value id.
pub const NONE: u16 = u16::MAX;

/// Header flag: the float model ended in a softmax (apply one to the dequantized output).
pub const FLAG_SOFTMAX: u16 = 1;
/// Header flag: the model's input is `pixel * scale + offset` (pixels 0..=255), one pair for
/// all channels or one per channel, stored in the data section just after the labels (at
/// the next 16-byte boundary): a u32 count, then each pair's two f32. Without it,
/// `pixel / 255`.
pub const FLAG_INPUT_MAP: u16 = 2;

/// Header flag: every conv and dense weight is at most 64 in magnitude (`fer quantize
/// --weight-bits 7`), which the loader checks. AVX2 CPUs without VNNI multiply such weights
/// with `vpmaddubsw` (`kernels::x86::Avx2U7`), exactly. Older readers ignore it.
pub const FLAG_WEIGHTS_7BIT: u16 = 4;
/// The largest |weight| of a [`FLAG_WEIGHTS_7BIT`] model.
pub const WEIGHT_LIMIT_7BIT: i8 = 64;

/// The input map of models without [`FLAG_INPUT_MAP`]: pixels scaled to [0, 1].
pub const DEFAULT_INPUT_MAP: (f32, f32) = (1.0 / 255.0, 0.0);

/// Whether an input map is pixel / 255 for every channel (the image needs no mapping).
pub fn is_pixel_over_255(pairs: &[(f32, f32)]) -> bool {
    pairs.iter().all(|&p| p == DEFAULT_INPUT_MAP)
}

/// Maps a `[C, H, W]` image of pixels / 255 in place to a model's input,
/// `pixel * scale + offset`, with one `(scale, offset)` pair for every channel or one per
/// channel (nothing changes for pixel / 255 itself).
pub fn apply_input_map(image: &mut [f32], pairs: &[(f32, f32)]) {
    if is_pixel_over_255(pairs) || pairs.is_empty() {
        return;
    }
    let plane = (image.len() / pairs.len()).max(1);
    for (c, chunk) in image.chunks_mut(plane).enumerate() {
        let (scale, offset) = pairs[c.min(pairs.len() - 1)];
        chunk.iter_mut().for_each(|x| *x = *x * 255.0 * scale + offset);
    }
}

/// Where [`FLAG_INPUT_MAP`]'s count and pairs start in the data section.
pub fn input_map_offset(h: &Header) -> usize {
    (h.labels_off + h.labels_len).next_multiple_of(ALIGN)
}

/// A conv's patch length in its packed weights: each window row (`kw * c_in` bytes) padded
/// to a multiple of 4, so im2col copies whole 4-byte groups straight from the input map
/// (the pad bytes meet zero weights). Returns (row length, `K_pad = kh * row`).
pub fn conv_k(kernel: [usize; 2], cig: usize) -> (usize, usize) {
    let row = (kernel[1] * cig).next_multiple_of(4);
    (row, kernel[0] * row)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OpCode {
    /// Convolution via packed GEMM (any group count; depthwise has its own code).
    Conv = 1,
    /// One filter per channel (`groups == C_in == C_out`).
    DepthwiseConv = 2,
    Dense = 3,
    MaxPool = 4,
    AvgPool = 5,
    GlobalAvgPool = 6,
    Add = 7,
    PRelu = 8,
    /// `[H, W, C]` (our layout) to the float model's `[C * H * W]` order.
    Flatten = 9,
    /// Two values joined, each requantized to the output's scale: for each of `outer`
    /// blocks, `k_pad` bytes of the first then `n_pad` bytes of the second. Channels of
    /// two maps (`outer = H * W`) and row-major tensors along any axis are both this.
    Concat = 10,
    /// Zero padding (the input's zero point) of a map: `pads` spatially, `k_pad` channels
    /// before and `n_pad` after; the quantization is the input's.
    Pad = 11,
    /// An element-wise function as a table: `y = table[x + 128]`, `weights` its 256 bytes
    /// (Sigmoid, Tanh, HardSigmoid, HardSwish; any byte order, so any shape).
    Lut = 12,
    /// Nearest-neighbour upsampling of a map by whole factors `kernel` (rows, columns):
    /// output pixel `(y, x)` is input pixel `(y / f0, x / f1)`; the quantization is the input's.
    Upsample = 13,
    /// Bilinear upsampling by whole factors `kernel`, in integers (see
    /// `Sampling::taps`): byte 3 set reads `o / f` (asymmetric), clear `(o + 0.5) / f - 0.5`
    /// (half_pixel); edges clamped; the quantization is the input's.
    UpsampleLinear = 14,
    /// Softmax over each run of `k_pad` consecutive bytes (a row-major last axis, or a
    /// map's channels): `bias` holds 256 i32, `exp(-d * s_x)` in units of
    /// 2^-[`SOFTMAX_SHIFT`] for distance `d` below the run's largest; output
    /// `round(256 * e / sum) - 128` (scale 1/256, zero point -128).
    Softmax = 15,
}

impl OpCode {
    fn from_u8(v: u8) -> Option<OpCode> {
        Some(match v {
            1 => OpCode::Conv,
            2 => OpCode::DepthwiseConv,
            3 => OpCode::Dense,
            4 => OpCode::MaxPool,
            5 => OpCode::AvgPool,
            6 => OpCode::GlobalAvgPool,
            7 => OpCode::Add,
            8 => OpCode::PRelu,
            9 => OpCode::Flatten,
            10 => OpCode::Concat,
            11 => OpCode::Pad,
            12 => OpCode::Lut,
            13 => OpCode::Upsample,
            14 => OpCode::UpsampleLinear,
            15 => OpCode::Softmax,
            _ => return None,
        })
    }
}

/// Why bytes are not a usable model. Never a panic: every check returns one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    TooShort {
        len: usize,
    },
    BadMagic,
    UnsupportedVersion(u16),
    Misaligned,
    SizeMismatch {
        header: u32,
        actual: usize,
    },
    Checksum {
        stored: u32,
        computed: u32,
    },
    BadSection(&'static str),
    BadValue {
        index: u16,
        what: &'static str,
    },
    BadOp {
        index: u16,
        what: &'static str,
    },
    /// A kernel set asked for (`fer bench --kernels`) that cannot multiply this model's
    /// weights exactly: the 7-bit sets on a model with 8-bit weights.
    KernelsTooNarrow {
        kernels: &'static str,
        weight_limit: i8,
    },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::TooShort { len } => {
                write!(f, "{len} bytes is too short for a .fer model (truncated?)")
            }
            FormatError::BadMagic => f.write_str("not a .fer model (bad magic)"),
            FormatError::UnsupportedVersion(v) => {
                write!(
                    f,
                    ".fer version {v} is not supported (this runtime reads {VERSION}): quantize the ONNX model again with this `fer quantize`"
                )
            }
            FormatError::Misaligned => write!(f, "model bytes must start at a {ALIGN}-byte aligned address"),
            FormatError::SizeMismatch { header, actual } => {
                write!(f, "header says {header} bytes, the buffer holds {actual} (truncated or padded file)")
            }
            FormatError::Checksum { stored, computed } => {
                write!(
                    f,
                    "checksum mismatch (stored {stored:08x}, computed {computed:08x}): the file is corrupt"
                )
            }
            FormatError::BadSection(s) => write!(f, "section {s} lies outside the file or is misaligned"),
            FormatError::BadValue { index, what } => write!(f, "value {index}: {what}"),
            FormatError::BadOp { index, what } => write!(f, "op {index}: {what}"),
            FormatError::KernelsTooNarrow { kernels, weight_limit } => write!(
                f,
                "the {kernels} kernels need weights of 7 bits, this model's reach {weight_limit} \
                 (quantize it with `fer quantize --weight-bits 7`)"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FormatError {}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn i32_at(b: &[u8], o: usize) -> i32 {
    u32_at(b, o) as i32
}

/// An activation tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Value {
    /// `[C, H, W]`; vectors are `[K, 1, 1]`.
    pub shape: [usize; 3],
    /// Byte offset in the arena (data is `[H, W, C]`).
    pub offset: usize,
    pub scale: f32,
    pub zero_point: i8,
}

impl Value {
    pub fn len(&self) -> usize {
        self.shape[0] * self.shape[1] * self.shape[2]
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One op as stored (offsets into the data section already checked).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Op {
    pub code: OpCode,
    /// Average pooling: padded cells count in the divisor.
    pub count_include_pad: bool,
    pub act_min: i8,
    pub act_max: i8,
    pub inputs: [u16; 2],
    pub output: u16,
    pub groups: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// top, left, bottom, right
    pub pads: [usize; 4],
    pub dilation: [usize; 2],
    /// Byte ranges in the data section.
    pub weights: (usize, usize),
    pub bias: usize,
    pub mult: usize,
    pub shift: usize,
    pub wsum: usize,
    /// Conv/dense: padded patch length and output channels per group. PReLU: slope count.
    pub k_pad: usize,
    pub n_pad: usize,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Header {
    pub n_values: usize,
    pub n_ops: usize,
    values_off: usize,
    ops_off: usize,
    data_off: usize,
    data_len: usize,
    pub arena_size: usize,
    pub scratch_off: usize,
    pub scratch_len: usize,
    pub input: u16,
    pub output: u16,
    labels_off: usize,
    labels_len: usize,
    pub flags: u16,
    /// Pixels per im2col tile (the scratch holds `tile_m * K_pad` bytes).
    pub tile_m: usize,
    /// Number of outputs (at least 1; `output` is the first).
    pub n_outputs: usize,
}

impl Header {
    /// Where the data section starts in the file (op byte ranges are relative to it).
    pub fn data_offset(&self) -> usize {
        self.data_off
    }
}

/// A validated model, borrowing its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    bytes: &'a [u8],
    pub header: Header,
}

fn section(bytes: &[u8], off: usize, len: usize, name: &'static str) -> Result<(), FormatError> {
    let end = off.checked_add(len).ok_or(FormatError::BadSection(name))?;
    if end > bytes.len() || !off.is_multiple_of(ALIGN) || off < HEADER_LEN {
        return Err(FormatError::BadSection(name));
    }
    Ok(())
}

/// CRC-32 (IEEE, zlib's) with sixteen tables (16 KB) where there is room, one (1 KB, about
/// a third the speed) on a microcontroller, where it runs once at start-up.
#[cfg(feature = "std")]
const CRC32: crc::Crc<u32, crc::Table<16>> = crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISO_HDLC);
#[cfg(not(feature = "std"))]
const CRC32: crc::Crc<u32, crc::Table<1>> = crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32 (IEEE) of the bytes the checksum covers.
pub fn checksum(bytes: &[u8]) -> u32 {
    CRC32.checksum(&bytes[16..])
}

impl<'a> Model<'a> {
    /// Checks everything: header, checksum, tables, every offset and every op's shapes.
    pub fn new(bytes: &'a [u8]) -> Result<Model<'a>, FormatError> {
        if bytes.len() < HEADER_LEN {
            return Err(FormatError::TooShort { len: bytes.len() });
        }
        if bytes[..4] != MAGIC {
            return Err(FormatError::BadMagic);
        }
        let version = u16_at(bytes, 4);
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion(version));
        }
        if u16_at(bytes, 6) as usize != HEADER_LEN {
            return Err(FormatError::BadSection("header"));
        }
        if !(bytes.as_ptr() as usize).is_multiple_of(ALIGN) {
            return Err(FormatError::Misaligned);
        }
        let file_size = u32_at(bytes, 8);
        if file_size as usize != bytes.len() {
            return Err(FormatError::SizeMismatch { header: file_size, actual: bytes.len() });
        }
        let stored = u32_at(bytes, 12);
        let computed = checksum(bytes);
        if stored != computed {
            return Err(FormatError::Checksum { stored, computed });
        }
        let model = Model::new_unchecked_crc(bytes)?;
        model.check_weight_bits()?;
        Ok(model)
    }

    /// A [`FLAG_WEIGHTS_7BIT`] model's promise, kept: every conv, depthwise and dense
    /// weight within [`WEIGHT_LIMIT_7BIT`] (the 7-bit kernels are exact only then). A scan of
    /// every weight byte, so only [`Model::new`] makes it, once per load.
    fn check_weight_bits(&self) -> Result<(), FormatError> {
        if self.header.flags & FLAG_WEIGHTS_7BIT == 0 {
            return Ok(());
        }
        for i in 0..self.header.n_ops as u16 {
            let Some(op) = self.op(i) else { continue };
            if !matches!(op.code, OpCode::Conv | OpCode::Dense | OpCode::DepthwiseConv) {
                continue;
            }
            // In range: the structural checks passed.
            let weights = &self.data()[op.weights.0..op.weights.0 + op.weights.1];
            if weights.iter().any(|&w| (w as i8).unsigned_abs() > WEIGHT_LIMIT_7BIT as u8) {
                return Err(FormatError::BadOp {
                    index: i,
                    what: "a weight beyond 7 bits in a model flagged 7-bit",
                });
            }
        }
        Ok(())
    }

    /// [`Model::new`] without the checksum and without the 7-bit weights' scan: for bytes
    /// `Model::new` accepted already (a loader's per-image view), and for fuzzing the
    /// structural checks, which a checksum would otherwise shield.
    pub fn new_unchecked_crc(bytes: &'a [u8]) -> Result<Model<'a>, FormatError> {
        if bytes.len() < HEADER_LEN {
            return Err(FormatError::TooShort { len: bytes.len() });
        }
        if bytes[..4] != MAGIC {
            return Err(FormatError::BadMagic);
        }
        if !(bytes.as_ptr() as usize).is_multiple_of(ALIGN) {
            return Err(FormatError::Misaligned);
        }
        let h = Header {
            n_values: u16_at(bytes, 16) as usize,
            n_ops: u16_at(bytes, 18) as usize,
            values_off: u32_at(bytes, 20) as usize,
            ops_off: u32_at(bytes, 24) as usize,
            data_off: u32_at(bytes, 28) as usize,
            data_len: u32_at(bytes, 32) as usize,
            arena_size: u32_at(bytes, 36) as usize,
            scratch_off: u32_at(bytes, 40) as usize,
            scratch_len: u32_at(bytes, 44) as usize,
            input: u16_at(bytes, 48),
            output: u16_at(bytes, 50),
            labels_off: u32_at(bytes, 52) as usize,
            labels_len: u16_at(bytes, 56) as usize,
            flags: u16_at(bytes, 58),
            tile_m: u16_at(bytes, 60) as usize,
            // Files written before several outputs existed hold 0 here.
            n_outputs: (u16_at(bytes, 62) as usize).max(1),
        };
        section(bytes, h.values_off, h.n_values * VALUE_LEN, "values")?;
        section(bytes, h.ops_off, h.n_ops * OP_LEN, "ops")?;
        section(bytes, h.data_off, h.data_len, "data")?;
        if h.scratch_off.checked_add(h.scratch_len).is_none_or(|e| e > h.arena_size) {
            return Err(FormatError::BadSection("scratch"));
        }
        if h.labels_off.checked_add(h.labels_len).is_none_or(|e| e > h.data_len)
            || core::str::from_utf8(&bytes[h.data_off + h.labels_off..][..h.labels_len]).is_err()
        {
            return Err(FormatError::BadSection("labels"));
        }
        if h.n_ops == 0 || h.tile_m == 0 {
            return Err(FormatError::BadSection("ops"));
        }
        let m = Model { bytes, header: h };
        if h.flags & FLAG_INPUT_MAP != 0 {
            let at = input_map_offset(&h);
            let bad = Err(FormatError::BadSection("input map"));
            if at + 4 > h.data_len {
                return bad;
            }
            let n = u32_at(m.data(), at) as usize;
            if n == 0 || n > u16::MAX as usize || at + 4 + 8 * n > h.data_len {
                return bad;
            }
            let ok = |(scale, offset): (f32, f32)| scale.is_finite() && scale != 0.0 && offset.is_finite();
            if !(0..n).all(|c| ok(m.input_map_at(c))) {
                return bad;
            }
        }
        for i in 0..h.n_values {
            m.check_value(i as u16)?;
        }
        if h.input as usize >= h.n_values || h.output as usize >= h.n_values {
            return Err(FormatError::BadSection("input/output value ids"));
        }
        // One pair of the input map for every channel, or one per channel.
        let n = m.input_map_len();
        if n != 1 && n != m.value(h.input).shape[0] {
            return Err(FormatError::BadSection("input map"));
        }
        for i in 0..h.n_ops {
            m.check_op(i as u16)?;
        }
        m.check_outputs()?;
        Ok(m)
    }

    /// The output slot of value `id` (0: not an output; k: the k-th output).
    fn output_slot(&self, id: u16) -> usize {
        self.bytes[self.header.values_off + id as usize * VALUE_LEN + 1] as usize
    }

    /// Every slot 1..=n_outputs is held by exactly one value, slot 1 by the header's output
    /// (or, in files with one output, no value is marked).
    fn check_outputs(&self) -> Result<(), FormatError> {
        let h = &self.header;
        let marked = (0..h.n_values as u16).filter(|&v| self.output_slot(v) != 0).count();
        if marked == 0 && h.n_outputs == 1 {
            return Ok(());
        }
        let bad = Err(FormatError::BadSection("outputs"));
        if h.n_outputs > MAX_OUTPUTS || marked != h.n_outputs || self.output_slot(h.output) != 1 {
            return bad;
        }
        for k in 1..=h.n_outputs {
            if (0..h.n_values as u16).filter(|&v| self.output_slot(v) == k).count() != 1 {
                return bad;
            }
        }
        Ok(())
    }

    /// The value id of output `k` (0-based; `None` past the last).
    pub fn output_id(&self, k: usize) -> Option<u16> {
        if k >= self.header.n_outputs {
            return None;
        }
        if k == 0 {
            return Some(self.header.output);
        }
        (0..self.header.n_values as u16).find(|&v| self.output_slot(v) == k + 1)
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The largest |weight| of any layer: 64 for a [`FLAG_WEIGHTS_7BIT`] model (checked
    /// by [`Model::new`]), else 127.
    pub fn weight_limit(&self) -> i8 {
        if self.header.flags & FLAG_WEIGHTS_7BIT != 0 { WEIGHT_LIMIT_7BIT } else { 127 }
    }

    /// The data section.
    pub fn data(&self) -> &'a [u8] {
        &self.bytes[self.header.data_off..self.header.data_off + self.header.data_len]
    }

    /// Class names (JSON list as written by the quantizer).
    pub fn labels_json(&self) -> &'a str {
        let d = self.data();
        core::str::from_utf8(&d[self.header.labels_off..self.header.labels_off + self.header.labels_len])
            .unwrap_or("")
    }

    /// How many `(scale, offset)` pairs the input map has: 1 (all channels) or one per
    /// input channel.
    pub fn input_map_len(&self) -> usize {
        if self.header.flags & FLAG_INPUT_MAP == 0 {
            1
        } else {
            u32_at(self.data(), input_map_offset(&self.header)) as usize
        }
    }

    /// Pair `k` of the input map: the model takes `pixel * scale + offset`.
    pub fn input_map_at(&self, k: usize) -> (f32, f32) {
        if self.header.flags & FLAG_INPUT_MAP == 0 || k >= self.input_map_len() {
            return DEFAULT_INPUT_MAP;
        }
        let at = input_map_offset(&self.header) + 4 + 8 * k;
        (f32::from_bits(u32_at(self.data(), at)), f32::from_bits(u32_at(self.data(), at + 4)))
    }

    /// Class name `k`, read from the labels' JSON list without an allocator (names are
    /// plain strings as the quantizer writes them; one holding `"` or `,` is not split right).
    pub fn label(&self, k: usize) -> Option<&'a str> {
        let list = self.labels_json().trim().strip_prefix('[')?.strip_suffix(']')?;
        list.split(',').map(|s| s.trim().trim_matches('"')).filter(|s| !s.is_empty()).nth(k)
    }

    pub fn value(&self, id: u16) -> Value {
        let o = self.header.values_off + id as usize * VALUE_LEN;
        let b = self.bytes;
        Value {
            shape: [u16_at(b, o + 4) as usize, u16_at(b, o + 6) as usize, u16_at(b, o + 8) as usize],
            offset: u32_at(b, o + 12) as usize,
            scale: f32::from_bits(u32_at(b, o + 20)),
            zero_point: i32_at(b, o + 24) as i8,
        }
    }

    fn check_value(&self, id: u16) -> Result<(), FormatError> {
        let v = self.value(id);
        let bad = |what| Err(FormatError::BadValue { index: id, what });
        let o = self.header.values_off + id as usize * VALUE_LEN;
        let zp = i32_at(self.bytes, o + 24);
        let stored_len = u32_at(self.bytes, o + 16) as usize;
        if v.shape.contains(&0) {
            return bad("a dimension is zero");
        }
        if v.len() != stored_len {
            return bad("size disagrees with the shape");
        }
        if v.offset.checked_add(v.len()).is_none_or(|e| e > self.header.arena_size) {
            return bad("lies outside the arena");
        }
        if !(v.scale.is_finite() && v.scale > 0.0) {
            return bad("scale must be finite and positive");
        }
        if !(-128..=127).contains(&zp) {
            return bad("zero point outside int8");
        }
        Ok(())
    }

    fn raw_op(&self, i: u16) -> &'a [u8] {
        let o = self.header.ops_off + i as usize * OP_LEN;
        &self.bytes[o..o + OP_LEN]
    }

    /// Op `i`, as validated by [`Model::new`] (`None` only for an unknown code, which
    /// validation rejects).
    pub fn op(&self, i: u16) -> Option<Op> {
        let b = self.raw_op(i);
        Some(Op {
            code: OpCode::from_u8(b[0])?,
            count_include_pad: b[3] & 1 != 0,
            act_min: b[1] as i8,
            act_max: b[2] as i8,
            inputs: [u16_at(b, 4), u16_at(b, 6)],
            output: u16_at(b, 8),
            groups: u16_at(b, 10) as usize,
            kernel: [b[12] as usize, b[13] as usize],
            stride: [b[14] as usize, b[15] as usize],
            pads: [b[16] as usize, b[17] as usize, b[18] as usize, b[19] as usize],
            dilation: [b[20] as usize, b[21] as usize],
            weights: (u32_at(b, 24) as usize, u32_at(b, 28) as usize),
            bias: u32_at(b, 32) as usize,
            mult: u32_at(b, 36) as usize,
            shift: u32_at(b, 40) as usize,
            wsum: u32_at(b, 44) as usize,
            k_pad: u32_at(b, 48) as usize,
            n_pad: u32_at(b, 52) as usize,
        })
    }

    /// `len` bytes of data at `off`, or an error naming op `i`.
    fn range(
        &self,
        i: u16,
        off: usize,
        len: usize,
        align: usize,
        what: &'static str,
    ) -> Result<(), FormatError> {
        let end = off.checked_add(len);
        if end.is_none_or(|e| e > self.header.data_len) || !(self.header.data_off + off).is_multiple_of(align)
        {
            return Err(FormatError::BadOp { index: i, what });
        }
        Ok(())
    }

    fn check_op(&self, i: u16) -> Result<(), FormatError> {
        let bad = |what| Err(FormatError::BadOp { index: i, what });
        let Some(op) = self.op(i) else { return bad("unknown op code") };
        let n = self.header.n_values;
        let valid = |id: u16| (id as usize) < n;
        if !valid(op.inputs[0]) || !valid(op.output) {
            return bad("value id out of range");
        }
        if op.act_min > op.act_max {
            return bad("clamp min above max");
        }
        let x = self.value(op.inputs[0]);
        let y = self.value(op.output);
        // An op must not write over what it reads.
        if overlap(&x, &y) {
            return bad("output overlaps its input in the arena");
        }
        // A padding as large as the kernel gives windows of padding only (nothing to pool).
        let eff = |a: usize| op.kernel[a].max(1) * op.dilation[a].max(1);
        let windowed =
            matches!(op.code, OpCode::Conv | OpCode::DepthwiseConv | OpCode::MaxPool | OpCode::AvgPool);
        if windowed && (op.pads[0].max(op.pads[2]) >= eff(0) || op.pads[1].max(op.pads[3]) >= eff(1)) {
            return bad("padding at least as large as the kernel");
        }
        if !cfg!(feature = "graph-ops") && matches!(op.code, OpCode::UpsampleLinear | OpCode::Softmax) {
            return bad("bilinear upsampling and softmax are not built in (fer-core feature graph-ops)");
        }
        let [c, h, w] = x.shape;
        let same_quant = x.scale == y.scale && x.zero_point == y.zero_point;
        let shape_ok = match op.code {
            OpCode::Conv | OpCode::Dense => return self.check_gemm_layer(i, &op, &x, &y),
            OpCode::DepthwiseConv => return self.check_depthwise(i, &op, &x, &y),
            OpCode::Add | OpCode::Concat => return self.check_two_inputs(i, &op, &x, &y),
            OpCode::Softmax => return self.check_softmax(i, &op, &x, &y),
            OpCode::PRelu => return self.check_prelu(i, &op, &x, &y),
            OpCode::MaxPool | OpCode::AvgPool => {
                if op.dilation != [1, 1] {
                    return bad("pooling is not dilated");
                }
                y.shape[0] == c && out_hw(&op, &x) == Some([y.shape[1], y.shape[2]])
            }
            OpCode::GlobalAvgPool => y.shape == [c, 1, 1],
            OpCode::Flatten => y.shape == [x.len(), 1, 1],
            OpCode::Pad => {
                let [pt, pl, pb, pr] = op.pads;
                y.shape == [c + op.k_pad + op.n_pad, h + pt + pb, w + pl + pr]
            }
            OpCode::Upsample | OpCode::UpsampleLinear => {
                let [fy, fx] = op.kernel;
                fy != 0 && fx != 0 && y.shape == [c, h * fy, w * fx]
            }
            OpCode::Lut => {
                if y.len() != x.len() {
                    return bad("a table op keeps its length");
                }
                if op.weights.1 != 256 {
                    return bad("a table has 256 entries");
                }
                return self.range(i, op.weights.0, 256, 1, "table outside data");
            }
        };
        // The ops that move or pool values keep their input's quantization.
        if !shape_ok || !same_quant {
            return bad(match op.code {
                OpCode::MaxPool | OpCode::AvgPool if shape_ok => "pooling keeps its input's quantization",
                OpCode::MaxPool | OpCode::AvgPool => "pooling shapes",
                OpCode::GlobalAvgPool => "global pooling shapes or quantization",
                OpCode::Flatten => "flatten shapes or quantization",
                OpCode::Pad => "pad shapes or quantization",
                _ => "upsample shapes or quantization",
            });
        }
        Ok(())
    }

    /// Conv and Dense: the GEMM's packing, its parameters, and the scratch it gathers in.
    // The per-op checks are inlined into `check_op`, as they were written before it was
    // split: out of line they cost a Cortex-M build 360 bytes of flash.
    #[inline(always)]
    fn check_gemm_layer(&self, i: u16, op: &Op, x: &Value, y: &Value) -> Result<(), FormatError> {
        let bad = |what| Err(FormatError::BadOp { index: i, what });
        let c = x.shape[0];
        let (g, cout) = (op.groups, y.shape[0]);
        if g == 0 || !c.is_multiple_of(g) || !cout.is_multiple_of(g) {
            return bad("groups do not divide the channels");
        }
        let (k, k_pad) = if op.code == OpCode::Dense {
            (x.len(), x.len().next_multiple_of(4))
        } else {
            (op.kernel[0] * op.kernel[1] * (c / g), conv_k(op.kernel, c / g).1)
        };
        if op.k_pad != k_pad || op.n_pad != (cout / g).next_multiple_of(N_BLOCK) {
            return bad("packed weight sizes disagree with the shapes");
        }
        if op.code == OpCode::Dense {
            if y.shape[1] != 1 || y.shape[2] != 1 || g != 1 {
                return bad("dense layers give vectors");
            }
        } else if out_hw(op, x) != Some([y.shape[1], y.shape[2]]) {
            return bad("output shape disagrees with the window");
        }
        let wlen = g * op.k_pad * op.n_pad;
        if op.weights.1 != wlen {
            return bad("weights size");
        }
        self.range(i, op.weights.0, wlen, 4, "weights outside data")?;
        self.range(i, op.bias, 4 * cout, 4, "bias outside data")?;
        self.range(i, op.mult, 4 * cout, 4, "multipliers outside data")?;
        self.range(i, op.wsum, 4 * cout, 4, "weight sums outside data")?;
        self.range(i, op.shift, cout, 1, "shifts outside data")?;
        self.check_shifts(i, op.shift, cout)?;
        // Convs gather patches into the scratch; dense layers whose length is not a
        // multiple of 4 copy their input there.
        let scratch = match op.code {
            OpCode::Conv => self.header.tile_m * op.k_pad,
            _ if k % 4 != 0 => op.k_pad,
            _ => 0,
        };
        if scratch > self.header.scratch_len {
            return bad("scratch too small for this layer");
        }
        let s = self.header.scratch_off..self.header.scratch_off + self.header.scratch_len;
        let hits = |v: &Value| v.offset < s.end && s.start < v.offset + v.len();
        if scratch > 0 && (hits(x) || hits(y)) {
            return bad("scratch overlaps the layer's input or output");
        }
        Ok(())
    }

    #[inline(always)]
    fn check_depthwise(&self, i: u16, op: &Op, x: &Value, y: &Value) -> Result<(), FormatError> {
        let bad = |what| Err(FormatError::BadOp { index: i, what });
        let c = x.shape[0];
        if op.groups != c || y.shape[0] != c || out_hw(op, x) != Some([y.shape[1], y.shape[2]]) {
            return bad("depthwise shapes");
        }
        let wlen = op.kernel[0] * op.kernel[1] * c;
        if op.weights.1 != wlen {
            return bad("weights size");
        }
        self.range(i, op.weights.0, wlen, 1, "weights outside data")?;
        self.range(i, op.bias, 4 * c, 4, "bias outside data")?;
        self.range(i, op.mult, 4 * c, 4, "multipliers outside data")?;
        self.range(i, op.shift, c, 1, "shifts outside data")?;
        self.check_shifts(i, op.shift, c)
    }

    /// Add and Concat: a second input, and the two multipliers and one shift that rescale
    /// both inputs.
    #[inline(always)]
    fn check_two_inputs(&self, i: u16, op: &Op, x: &Value, y: &Value) -> Result<(), FormatError> {
        let bad = |what| Err(FormatError::BadOp { index: i, what });
        if op.inputs[1] as usize >= self.header.n_values {
            return bad("value id out of range");
        }
        let b = self.value(op.inputs[1]);
        if op.code == OpCode::Add && (b.shape != x.shape || y.shape != x.shape) {
            return bad("add needs equal shapes");
        }
        if op.code == OpCode::Concat {
            let (ca, cb) = (op.k_pad, op.n_pad);
            if ca == 0 || cb == 0 || !x.len().is_multiple_of(ca) {
                return bad("concat block sizes");
            }
            let outer = x.len() / ca;
            if b.len() != outer * cb || y.len() != outer * (ca + cb) {
                return bad("concat sizes disagree with its inputs");
            }
        }
        if overlap(&b, y) {
            return bad("output overlaps its input in the arena");
        }
        self.range(i, op.mult, 8, 4, "multipliers outside data")?;
        self.range(i, op.shift, 1, 1, "shift outside data")?;
        self.check_shifts(i, op.shift, 1)
    }

    #[inline(always)]
    fn check_softmax(&self, i: u16, op: &Op, x: &Value, y: &Value) -> Result<(), FormatError> {
        let bad = |what| Err(FormatError::BadOp { index: i, what });
        let run = op.k_pad;
        if y.shape != x.shape || run == 0 || run > SOFTMAX_MAX_RUN || !x.len().is_multiple_of(run) {
            return bad("softmax runs or shapes");
        }
        if y.scale != 1.0 / 256.0 || y.zero_point != -128 {
            return bad("a softmax output has scale 1/256 and zero point -128");
        }
        self.range(i, op.bias, 256 * 4, 4, "softmax table outside data")?;
        if self.i32s(op.bias, 256).iter().any(|&e| !(0..=SOFTMAX_ONE).contains(&e)) {
            return bad("softmax table entries are in 0..=65536");
        }
        Ok(())
    }

    #[inline(always)]
    fn check_prelu(&self, i: u16, op: &Op, x: &Value, y: &Value) -> Result<(), FormatError> {
        let bad = |what| Err(FormatError::BadOp { index: i, what });
        if y.shape != x.shape {
            return bad("prelu keeps its shape");
        }
        // Slopes: one, one per channel, or one per element; plus the positive side.
        let n = op.k_pad;
        if !(n == 1 || n == x.shape[0] || n == x.len()) {
            return bad("slope count");
        }
        self.range(i, op.mult, 4 * (n + 1), 4, "multipliers outside data")?;
        self.range(i, op.shift, 1, 1, "shift outside data")?;
        if !(1..=PRELU_MAX_SHIFT).contains(&self.data()[op.shift]) {
            return bad("prelu shift outside 1..=30");
        }
        if self.i32s(op.mult, n + 1).iter().any(|m| !(-PRELU_MULT_LIMIT + 1..PRELU_MULT_LIMIT).contains(m)) {
            return bad("prelu multiplier too large");
        }
        Ok(())
    }

    fn check_shifts(&self, i: u16, off: usize, n: usize) -> Result<(), FormatError> {
        let d = self.data();
        if d[off..off + n].iter().any(|&s| !(1..=62).contains(&s)) {
            return Err(FormatError::BadOp { index: i, what: "shift outside 1..=62" });
        }
        Ok(())
    }

    /// `n` little-endian i32 at data offset `off` (4-aligned: checked at load).
    pub fn i32s(&self, off: usize, n: usize) -> &'a [i32] {
        let b = &self.data()[off..off + 4 * n];
        // SAFETY: the model buffer is 16-aligned and `off` 4-aligned (both checked in
        // `new`), the range is in bounds, and every bit pattern is a valid i32. Targets
        // are little-endian (see lib.rs).
        unsafe { core::slice::from_raw_parts(b.as_ptr() as *const i32, n) }
    }

    /// `n` i8 at data offset `off`.
    pub fn i8s(&self, off: usize, n: usize) -> &'a [i8] {
        let b = &self.data()[off..off + n];
        // SAFETY: u8 and i8 have the same size, alignment and validity.
        unsafe { core::slice::from_raw_parts(b.as_ptr() as *const i8, n) }
    }

    pub fn u8s(&self, off: usize, n: usize) -> &'a [u8] {
        &self.data()[off..off + n]
    }
}

/// Whether two values share bytes of the arena.
fn overlap(a: &Value, b: &Value) -> bool {
    a.offset < b.offset + b.len() && b.offset < a.offset + a.len()
}

/// The output height and width of `op`'s window over `x`, or `None` for a window that does
/// not fit (or a zero kernel, stride or dilation).
fn out_hw(op: &Op, x: &Value) -> Option<[usize; 2]> {
    let window = |k: usize, s: usize, d: usize, inp: usize, pad: usize| -> Option<usize> {
        if k == 0 || s == 0 || d == 0 {
            return None;
        }
        (inp + pad).checked_sub(d * (k - 1) + 1).map(|v| v / s + 1)
    };
    let [_, h, w] = x.shape;
    Some([
        window(op.kernel[0], op.stride[0], op.dilation[0], h, op.pads[0] + op.pads[2])?,
        window(op.kernel[1], op.stride[1], op.dilation[1], w, op.pads[1] + op.pads[3])?,
    ])
}

/// Model bytes copied into 16-byte aligned memory (what [`Model::new`] needs when the
/// bytes come from a file rather than an aligned static).
#[cfg(feature = "alloc")]
pub struct AlignedBytes {
    words: alloc::vec::Vec<u128>,
    len: usize,
}

#[cfg(feature = "alloc")]
impl AlignedBytes {
    pub fn new(bytes: &[u8]) -> AlignedBytes {
        let mut words = alloc::vec![0u128; bytes.len().div_ceil(16)];
        // SAFETY: the words own at least `bytes.len()` bytes; u8 has no alignment needs.
        let dst = unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, bytes.len()) };
        dst.copy_from_slice(bytes);
        AlignedBytes { words, len: bytes.len() }
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the words hold `len` initialised bytes.
        unsafe { core::slice::from_raw_parts(self.words.as_ptr() as *const u8, self.len) }
    }
}
