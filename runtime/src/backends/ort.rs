//! ONNX Runtime on one thread (int8 when given a QDQ model), loaded at run time from the
//! PyPI wheel's `libonnxruntime.so`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use prost::Message;

use super::{Backend, BackendError, onnx_input_map, read};

const ORT: &str = "ONNX Runtime";

/// `libonnxruntime.so`: `$ORT_DYLIB_PATH`, else the PyPI wheel in the project's tools venv
/// (`~/.cache/fer-edge/venv`, where `.ci/run` and the tests install it).
pub fn onnxruntime_library() -> Result<PathBuf, BackendError> {
    let not_found = |what: String| BackendError::Peer { engine: ORT, message: what };
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = std::path::absolute(PathBuf::from(p)).map_err(|e| not_found(e.to_string()))?;
        if !p.is_file() {
            return Err(not_found(format!("ORT_DYLIB_PATH names {}, which is not a file", p.display())));
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
        not_found(
            "not found: `pip install onnxruntime` and set ORT_DYLIB_PATH to the absolute path of \
             site-packages/onnxruntime/capi/libonnxruntime.so.<version>"
                .into(),
        )
    })
}

pub struct Ort {
    session: ort::session::Session,
    shape: [usize; 3],
    /// The file's input is NHWC (see `FloatGraph::input_channels_last`).
    channels_last: bool,
    input_map: Vec<(f32, f32)>,
    label: String,
}

impl Ort {
    /// ONNX Runtime allows one environment per process: made once, shared by every session.
    fn environment() -> Result<&'static ort::environment::Environment, BackendError> {
        static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
        ENV.get_or_init(|| {
            let lib = onnxruntime_library().map_err(|e| match e {
                BackendError::Peer { message, .. } => message,
                e => e.to_string(),
            })?;
            ort::init_from(&lib)
                .map_err(|e| format!("loading {}: {e}", lib.display()))?
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|message| BackendError::Peer { engine: ORT, message: message.clone() })
    }

    /// Whether ONNX Runtime's library is found and loads (once per process).
    pub fn available() -> Result<(), BackendError> {
        Ort::environment().map(|_| ())
    }

    /// `path` in a session; `label` names it in reports ("ONNX Runtime int8 (QDQ)").
    pub fn load(path: &Path, label: &str) -> Result<Ort, BackendError> {
        let bytes = read(path)?;
        let (shape, channels_last, metadata) = crate::onnx::read_onnx(&bytes)
            .map(|g| (g.input_shape, g.input_channels_last, g.metadata))
            .or_else(|_| qdq_input_shape(&bytes))
            .map_err(|what| BackendError::Unfit { path: path.into(), what })?;
        let input_map = onnx_input_map(&metadata, path)?;
        let session = Ort::session_from(path, &bytes)?;
        Ok(Ort { session, shape, channels_last, input_map, label: label.into() })
    }

    /// A one-thread session on the model at `path` (any ONNX model, several outputs too).
    pub fn session(path: &Path) -> Result<ort::session::Session, BackendError> {
        Ort::session_from(path, &read(path)?)
    }

    /// [`Ort::session`] on bytes in memory (`path` names them in errors).
    pub(crate) fn session_from(path: &Path, bytes: &[u8]) -> Result<ort::session::Session, BackendError> {
        let env = Ort::environment()?;
        ort::session::Session::builder(env)
            .and_then(|b| b.with_intra_threads(1).map_err(Into::into))
            .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
            .and_then(|mut b| b.commit_from_memory(bytes))
            .map_err(|e| BackendError::Unfit { path: path.into(), what: format!("{ORT}: {e}") })
    }
}

/// What [`Ort`] needs of a file: its input `[C, H, W]`, whether the file takes it NHWC, and
/// its metadata.
type InputFacts = ([usize; 3], bool, Vec<(String, String)>);

/// The input shape from a model's first graph input, and the model's metadata (QDQ models
/// are not for the reader).
fn qdq_input_shape(bytes: &[u8]) -> Result<InputFacts, String> {
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

impl Backend for Ort {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn input_shape(&self) -> [usize; 3] {
        self.shape
    }

    fn input_map(&self) -> &[(f32, f32)] {
        &self.input_map
    }

    fn run(&mut self, input: &[f32], outputs: &mut Vec<Vec<f32>>) -> Result<(), BackendError> {
        let (dims, data) = crate::onnx::graph::file_input(self.shape, self.channels_last, input);
        let input = ort::value::Tensor::from_array((dims, data)).map_err(peer)?;
        let name = self.session.inputs()[0].name().to_string();
        let out = self.session.run(ort::inputs![name => input]).map_err(peer)?;
        outputs.resize_with(out.len(), Vec::new);
        for ((_, v), buf) in out.iter().zip(outputs.iter_mut()) {
            let (_, data) = v.try_extract_tensor::<f32>().map_err(peer)?;
            buf.clear();
            buf.extend_from_slice(data);
        }
        Ok(())
    }
}

/// An error of ONNX Runtime itself.
fn peer(e: impl std::fmt::Display) -> BackendError {
    BackendError::peer(ORT, e)
}
