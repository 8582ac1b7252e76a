//! Inference backends behind one trait: the own int8 engine (default); the runtime's own
//! f32 evaluator (float ONNX, no other library); and as second backends and oracles
//! tract-onnx (f32, feature `tract`) and ONNX Runtime (int8 QDQ or f32, loaded at run time
//! from `libonnxruntime.so`, feature `ort`).

use std::path::Path;
#[cfg(feature = "ort")]
use std::path::PathBuf;
use std::string::{String, ToString};
use std::vec::Vec;

use crate::engine::Engine;
use crate::format::{AlignedBytes, Model};

/// Runs one image (`[C, H, W]` floats in [0, 1]) to the model's outputs (logits).
pub trait Backend {
    fn name(&self) -> String;
    /// `[C, H, W]` of the image `infer` takes.
    fn input_shape(&self) -> [usize; 3];
    /// `image` holds pixels / 255, as the pipeline crops them; each backend maps them to
    /// its model's own input (`pixel * scale + offset`, from the `.fer` or the ONNX metadata).
    fn infer(&mut self, image: &[f32]) -> Result<Vec<f32>, String>;
}

/// The own int8 engine on a `.fer` model.
pub struct Own {
    bytes: AlignedBytes,
    arena: Vec<u8>,
    kernels: &'static dyn crate::kernels::Kernels,
    input_map: Vec<(f32, f32)>,
    mapped: Vec<f32>,
}

impl Own {
    pub fn load(path: &Path) -> Result<Own, String> {
        let raw = std::fs::read(path).map_err(|e| std::format!("{}: {e}", path.display()))?;
        Own::from_bytes(&raw, crate::kernels::best()).map_err(|e| std::format!("{}: {e}", path.display()))
    }

    pub fn from_bytes(raw: &[u8], kernels: &'static dyn crate::kernels::Kernels) -> Result<Own, String> {
        let bytes = AlignedBytes::new(raw);
        let model = Model::new(bytes.as_slice()).map_err(|e| e.to_string())?;
        let arena = vec![0u8; model.header.arena_size];
        let input_map = (0..model.input_map_len()).map(|k| model.input_map_at(k)).collect();
        Ok(Own { bytes, arena, kernels, input_map, mapped: Vec::new() })
    }

    pub fn engine(&self) -> Result<Engine<'_>, String> {
        let model = Model::new_unchecked_crc(self.bytes.as_slice()).map_err(|e| e.to_string())?;
        Ok(Engine::new(model, self.kernels))
    }

    pub fn input_shape(&self) -> Result<[usize; 3], String> {
        Ok(self.engine()?.input().shape)
    }

    /// Runs one image; fills `outputs` (one buffer per model output, resized to fit).
    pub fn run_outputs(&mut self, image: &[f32], outputs: &mut Vec<Vec<f32>>) -> Result<(), String> {
        let model = Model::new_unchecked_crc(self.bytes.as_slice()).map_err(|e| e.to_string())?;
        crate::quant::run_fer_into(&Engine::new(model, self.kernels), &mut self.arena, image, outputs)
    }
}

impl Backend for Own {
    fn name(&self) -> String {
        std::format!("own int8 ({})", self.kernels.name())
    }

    fn input_shape(&self) -> [usize; 3] {
        Own::input_shape(self).unwrap_or_default()
    }

    fn infer(&mut self, image: &[f32]) -> Result<Vec<f32>, String> {
        // The bytes were validated (checksum included) at load and are immutable since:
        // the structural pass alone rebuilds the view without hashing megabytes per image.
        let model = Model::new_unchecked_crc(self.bytes.as_slice()).map_err(|e| e.to_string())?;
        let engine = Engine::new(model, self.kernels);
        crate::quant::run_fer(&engine, &mut self.arena, mapped(image, &self.input_map, &mut self.mapped))
    }
}

/// The pipeline's image (`[C, H, W]`, `pixel / 255`) as a model taking `map` wants it:
/// mapped in `buf` (reused from call to call), or the image itself for `pixel / 255`.
fn mapped<'a>(image: &'a [f32], map: &[(f32, f32)], buf: &'a mut Vec<f32>) -> &'a [f32] {
    if crate::preprocess::is_pixel_over_255(map) {
        return image;
    }
    buf.clear();
    buf.extend_from_slice(image);
    crate::preprocess::apply_input_map(buf, map);
    buf
}

/// A float ONNX model's input map (`fer.input_*` metadata), named in the error.
fn onnx_input_map(metadata: &[(String, String)], path: &Path) -> Result<Vec<(f32, f32)>, String> {
    Ok(crate::onnx::graph::metadata_input_map(metadata)
        .map_err(|e| std::format!("{}: {e}", path.display()))?
        .unwrap_or_else(|| std::vec![crate::format::DEFAULT_INPUT_MAP]))
}

/// A float ONNX model on the runtime's own f32 evaluator (`onnx::eval`): slow, but needs
/// nothing else.
pub struct F32Eval {
    graph: crate::onnx::FloatGraph,
    input_map: Vec<(f32, f32)>,
    mapped: Vec<f32>,
}

impl F32Eval {
    pub fn load(path: &Path) -> Result<F32Eval, String> {
        let bytes = std::fs::read(path).map_err(|e| std::format!("{}: {e}", path.display()))?;
        let graph = crate::onnx::read_onnx(&bytes).map_err(|e| std::format!("{}: {e}", path.display()))?;
        let input_map = onnx_input_map(&graph.metadata, path)?;
        Ok(F32Eval { graph, input_map, mapped: Vec::new() })
    }
}

impl Backend for F32Eval {
    fn name(&self) -> String {
        "own f32 evaluator".into()
    }

    fn input_shape(&self) -> [usize; 3] {
        self.graph.input_shape
    }

    fn infer(&mut self, image: &[f32]) -> Result<Vec<f32>, String> {
        let x = mapped(image, &self.input_map, &mut self.mapped);
        crate::onnx::eval::run(&self.graph, x).map_err(|e| e.to_string())
    }
}

/// tract-onnx, f32, optimized, batch 1.
#[cfg(feature = "tract")]
pub struct Tract {
    model: std::sync::Arc<tract_onnx::prelude::TypedRunnableModel>,
    shape: [usize; 3],
    channels_last: bool,
    input_map: Vec<(f32, f32)>,
    mapped: Vec<f32>,
}

#[cfg(feature = "tract")]
impl Tract {
    pub fn load(path: &Path) -> Result<Tract, String> {
        use tract_onnx::prelude::*;
        let bytes = std::fs::read(path).map_err(|e| std::format!("{}: {e}", path.display()))?;
        let graph = crate::onnx::read_onnx(&bytes).map_err(|e| std::format!("{}: {e}", path.display()))?;
        let (shape, channels_last) = (graph.input_shape, graph.input_channels_last);
        let input_map = onnx_input_map(&graph.metadata, path)?;
        let (dims, _) = crate::onnx::graph::file_input(shape, channels_last, &[]);
        let fact = InferenceFact::dt_shape(f32::datum_type(), dims);
        let model = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .and_then(|m| m.with_input_fact(0, fact))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| std::format!("{}: tract: {e}", path.display()))?;
        Ok(Tract { model, shape, channels_last, input_map, mapped: Vec::new() })
    }
}

#[cfg(feature = "tract")]
impl Backend for Tract {
    fn name(&self) -> String {
        "tract f32".into()
    }

    fn input_shape(&self) -> [usize; 3] {
        self.shape
    }

    fn infer(&mut self, image: &[f32]) -> Result<Vec<f32>, String> {
        use tract_onnx::prelude::*;
        let image = mapped(image, &self.input_map, &mut self.mapped);
        let ([n, a, b, c], data) = crate::onnx::graph::file_input(self.shape, self.channels_last, image);
        let t = tract_ndarray::Array4::from_shape_vec((n, a, b, c), data).map_err(|e| e.to_string())?;
        let out = self.model.run(tvec!(t.into_tensor().into_tvalue())).map_err(|e| e.to_string())?;
        let view = out[0].to_plain_array_view::<f32>().map_err(|e| e.to_string())?;
        Ok(view.iter().copied().collect())
    }
}

/// `libonnxruntime.so`: `$ORT_DYLIB_PATH`, else the PyPI wheel in the project's tools venv.
#[cfg(feature = "ort")]
pub fn onnxruntime_library() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = std::path::absolute(PathBuf::from(p)).map_err(|e| e.to_string())?;
        if !p.is_file() {
            return Err(std::format!("ORT_DYLIB_PATH names {}, which is not a file", p.display()));
        }
        return Ok(p);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let lib = home.join(".cache/fer-edge/venv/lib");
    let found = std::fs::read_dir(&lib).ok().into_iter().flatten().filter_map(Result::ok).find_map(|py| {
        let capi = py.path().join("site-packages/onnxruntime/capi");
        std::fs::read_dir(capi).ok()?.filter_map(Result::ok).map(|e| e.path()).find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libonnxruntime.so"))
        })
    });
    found.ok_or_else(|| {
        "ONNX Runtime not found: `pip install onnxruntime` and set ORT_DYLIB_PATH to the absolute path of \
         site-packages/onnxruntime/capi/libonnxruntime.so.<version>"
            .into()
    })
}

/// ONNX Runtime on one thread (int8 when given a QDQ model).
#[cfg(feature = "ort")]
pub struct Ort {
    session: ort::session::Session,
    shape: [usize; 3],
    /// The file's input is NHWC (see `FloatGraph::input_channels_last`).
    channels_last: bool,
    input_map: Vec<(f32, f32)>,
    mapped: Vec<f32>,
    label: String,
}

#[cfg(feature = "ort")]
impl Ort {
    /// ONNX Runtime allows one environment per process: made once, shared by every session.
    fn environment() -> Result<&'static ort::environment::Environment, String> {
        static ENV: std::sync::OnceLock<Result<ort::environment::Environment, String>> =
            std::sync::OnceLock::new();
        ENV.get_or_init(|| {
            let lib = onnxruntime_library()?;
            ort::init_from(&lib)
                .map_err(|e| std::format!("loading {}: {e}", lib.display()))?
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
    }

    /// Whether ONNX Runtime's library is found and loads (once per process).
    pub fn available() -> Result<(), String> {
        Ort::environment().map(|_| ())
    }

    pub fn load(path: &Path, label: &str) -> Result<Ort, String> {
        let bytes = std::fs::read(path).map_err(|e| std::format!("{}: {e}", path.display()))?;
        let (shape, channels_last, metadata) = crate::onnx::read_onnx(&bytes)
            .map(|g| (g.input_shape, g.input_channels_last, g.metadata))
            .or_else(|_| qdq_input_shape(&bytes))
            .map_err(|e| std::format!("{}: {e}", path.display()))?;
        let input_map = onnx_input_map(&metadata, path)?;
        let session = Ort::session_from(path, &bytes)?;
        Ok(Ort { session, shape, channels_last, input_map, mapped: Vec::new(), label: label.into() })
    }

    /// A one-thread session on the model at `path` (any ONNX model, several outputs too).
    pub fn session(path: &Path) -> Result<ort::session::Session, String> {
        let bytes = std::fs::read(path).map_err(|e| std::format!("{}: {e}", path.display()))?;
        Ort::session_from(path, &bytes)
    }

    /// [`Ort::session`] on bytes in memory (`path` names them in errors).
    pub(crate) fn session_from(path: &Path, bytes: &[u8]) -> Result<ort::session::Session, String> {
        let env = Ort::environment()?;
        ort::session::Session::builder(env)
            .and_then(|b| b.with_intra_threads(1).map_err(Into::into))
            .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
            .and_then(|mut b| b.commit_from_memory(bytes))
            .map_err(|e| std::format!("{}: ONNX Runtime: {e}", path.display()))
    }
}

/// What [`Ort`] needs of a file: its input `[C, H, W]`, whether the file takes it NHWC, and
/// its metadata.
#[cfg(feature = "ort")]
type InputFacts = ([usize; 3], bool, Vec<(String, String)>);

/// The input shape from a model's first graph input, and the model's metadata (QDQ models
/// are not for the reader).
#[cfg(feature = "ort")]
fn qdq_input_shape(bytes: &[u8]) -> Result<InputFacts, String> {
    use prost::Message;
    let m = crate::onnx::proto::ModelProto::decode(bytes).map_err(|e| e.to_string())?;
    let metadata = m.metadata_props.iter().map(|e| (e.key.clone(), e.value.clone())).collect();
    let dims: Vec<usize> = m
        .graph
        .and_then(|g| g.input.into_iter().next())
        .and_then(|i| i.r#type)
        .and_then(|t| t.tensor_type)
        .and_then(|t| t.shape)
        .map(|s| s.dim.iter().map(|d| d.dim_value.unwrap_or(1) as usize).collect())
        .unwrap_or_default();
    match dims.as_slice() {
        [_, c, h, w] => Ok(([*c, *h, *w], false, metadata)),
        _ => Err("the input is not [batch, C, H, W]".into()),
    }
}

#[cfg(feature = "ort")]
impl Backend for Ort {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn input_shape(&self) -> [usize; 3] {
        self.shape
    }

    fn infer(&mut self, image: &[f32]) -> Result<Vec<f32>, String> {
        let image = mapped(image, &self.input_map, &mut self.mapped);
        let (dims, data) = crate::onnx::graph::file_input(self.shape, self.channels_last, image);
        let input = ort::value::Tensor::from_array((dims, data)).map_err(|e| e.to_string())?;
        let name = self.session.inputs()[0].name().to_string();
        let outputs = self.session.run(ort::inputs![name => input]).map_err(|e| e.to_string())?;
        let (_, v) = outputs[0].try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
        Ok(v.to_vec())
    }
}
