//! `fer-train export`: a checkpoint to a self-describing ONNX model.
//!
//! burn-onnx captures the model's forward pass (opset 18, dynamic batch axis). The graph's
//! input and output are then renamed `input` and `logits` (the exporter numbers them), and
//! the label order and preprocessing go into `metadata_props`, so the runtime, ONNX Runtime
//! or any other tool needs no side file.

use std::path::Path;

use burn::prelude::*;
use burn_onnx::export::{AxisSpec, InputSpec, OnnxExporter};
use fer_runtime::fsutil::write_atomic;
use protobuf::Message;
use serde::Serialize;

use crate::model::FerModel;
use crate::train::checkpoint::{self, MODEL_JSON, ModelCard, STATE_FILE, TrainState};
use crate::train::fit::load_model;

/// Names every exported model uses.
pub const INPUT_NAME: &str = "input";
pub const OUTPUT_NAME: &str = "logits";

/// What `export` wrote.
#[derive(Clone, Debug, Serialize)]
pub struct ExportReport {
    pub path: String,
    pub bytes: usize,
    pub input: String,
    pub output: String,
    pub input_shape: [String; 4],
    pub metadata: Vec<(String, String)>,
}

/// The metadata every exported model carries (`metadata_props`).
pub fn metadata(card: &ModelCard) -> Vec<(String, String)> {
    let i = card.input;
    let mut pairs = vec![
        ("fer.labels".into(), serde_json::to_string(&card.labels).unwrap_or_default()),
        (
            "fer.input".into(),
            format!("{{\"width\":{},\"height\":{},\"channels\":{}}}", i.width, i.height, i.channels),
        ),
        ("fer.layout".into(), "NCHW".into()),
        ("fer.scale".into(), "0.00392156862745098".into()),
        ("fer.preprocessing".into(), card.preprocessing.clone()),
        ("fer.output".into(), "logits (apply softmax for probabilities)".into()),
        ("fer.model".into(), card.model.kind.name().to_string()),
        ("fer.epoch".into(), card.epoch.to_string()),
        ("fer.val_accuracy".into(), format!("{:.4}", card.val.accuracy)),
    ];
    if let Some(t) = card.temperature {
        // Informational: the logits already are divided by it.
        pairs.push(("fer.temperature".into(), format!("{t:.4}")));
    }
    pairs
}

/// Captures `model` (evaluation mode) as ONNX bytes with a dynamic batch axis.
pub fn to_onnx(model: &FerModel, card: &ModelCard) -> Result<Vec<u8>, String> {
    // The exporter moves what it captures onto a private device, and state that burn holds
    // lazily (BatchNorm running statistics) would stay stranded there: export a copy rebuilt
    // from the weights, so the caller's model is untouched.
    let device = Device::flex();
    let copy = card
        .model
        .init(&device)
        .try_load_record(model.clone().into_record())
        .map_err(|e| format!("copying the model for export: {e}"))?
        .valid();
    let model = &copy;
    let i = card.input;
    let sample =
        |n: usize| Tensor::<4>::zeros([n, i.channels as usize, i.height as usize, i.width as usize], &device);
    let spec =
        InputSpec::new([AxisSpec::dynamic("batch"), AxisSpec::Static, AxisSpec::Static, AxisSpec::Static]);
    let onnx = OnnxExporter::new()
        .export_dynamic(model, sample(1), sample(3), &[spec], |m: &FerModel, x: Tensor<4>| m.forward(x))
        .map_err(|e| format!("ONNX export failed: {e}"))?;
    name_and_describe(onnx.as_bytes(), &metadata(card))
}

/// Renames the graph's single input and output and adds `metadata`.
pub fn name_and_describe(bytes: &[u8], metadata: &[(String, String)]) -> Result<Vec<u8>, String> {
    let mut model = onnx_ir::ModelProto::parse_from_bytes(bytes)
        .map_err(|e| format!("reading the exported ONNX: {e}"))?;
    let graph = model.graph.as_mut().ok_or("the exported ONNX has no graph")?;
    if graph.input.len() != 1 || graph.output.len() != 1 {
        return Err(format!(
            "expected one input and one output, got {} and {}",
            graph.input.len(),
            graph.output.len()
        ));
    }
    let renames = [(graph.input[0].name.clone(), INPUT_NAME), (graph.output[0].name.clone(), OUTPUT_NAME)];
    for (old, new) in &renames {
        for node in graph.node.iter_mut() {
            for name in node.input.iter_mut().chain(node.output.iter_mut()) {
                if name == old {
                    *name = new.to_string();
                }
            }
        }
    }
    graph.input[0].name = INPUT_NAME.into();
    graph.output[0].name = OUTPUT_NAME.into();
    graph.name = "fer".into();
    model.producer_name = "fer-edge".into();
    model.producer_version = env!("CARGO_PKG_VERSION").into();
    for (k, v) in metadata {
        model.metadata_props.push(Default::default());
        let entry = model.metadata_props.last_mut().expect("just pushed");
        entry.key = k.clone();
        entry.value = v.clone();
    }
    model.write_to_bytes().map_err(|e| format!("writing ONNX: {e}"))
}

/// The model card of a checkpoint folder: `best/model.json`, or built from `last/state.json`.
pub fn read_card(dir: &Path) -> Result<ModelCard, String> {
    let card_path = dir.join(MODEL_JSON);
    if card_path.exists() {
        let bytes = checkpoint::read_file(dir, MODEL_JSON)?;
        return serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", card_path.display()));
    }
    let state_path = dir.join(STATE_FILE);
    if !state_path.is_file() {
        return Err(format!(
            "{} holds neither {MODEL_JSON} nor {STATE_FILE}: pass a run's best/ or last/ folder",
            dir.display()
        ));
    }
    let bytes = checkpoint::read_file(dir, STATE_FILE)?;
    let state: TrainState =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", state_path.display()))?;
    let last = state.history.last().ok_or_else(|| format!("{}: no finished epoch", state_path.display()))?;
    Ok(ModelCard::new(state.model, last.epoch, last.val.clone()))
}

/// Exports the checkpoint folder `dir` (a run's `best/` or `last/`) to `out`.
pub fn export(dir: &Path, out: &Path) -> Result<ExportReport, String> {
    let card = read_card(dir)?;
    let model = load_model(dir, &card.model, &Device::flex()).map_err(|e| e.to_string())?.valid();
    let bytes = to_onnx(&model, &card)?;
    write_atomic(out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    let i = card.input;
    Ok(ExportReport {
        path: out.display().to_string(),
        bytes: bytes.len(),
        input: INPUT_NAME.into(),
        output: OUTPUT_NAME.into(),
        input_shape: ["batch".into(), i.channels.to_string(), i.height.to_string(), i.width.to_string()],
        metadata: metadata(&card),
    })
}
