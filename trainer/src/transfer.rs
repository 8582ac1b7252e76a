//! Transfer learning from an ONNX model: `fer-train fit --init FILE.onnx`.
//!
//! The file is read by the runtime's ONNX reader (the same one the int8 quantizer uses),
//! turned into a chain of burn layers with its weights, and given a head:
//!
//! - `--head keep`: every layer stays, fully connected ones included; only the last
//!   classifier is replaced by a fresh one for this run's classes (after dropout).
//! - `--head new --cut LAYER`: layers after LAYER are dropped; a new head goes on LAYER's
//!   output: global average pooling (or flatten), an optional hidden dense layer, dropout
//!   and the classifier.
//!
//! `--freeze-until LAYER` keeps that layer and those before it fixed until
//! `--unfreeze-epoch`; `--body-lr-mult` scales the learning rate of the pretrained layers
//! while they train. New layers always train at the full rate.

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param, ParamId, RunningState};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::Gradients;
use fer_runtime::onnx::{self, FloatGraph, Node, Op};
use serde::{Deserialize, Serialize};

use crate::data::ImageSpec;
use crate::model::sequential::{Layer, LayerSpec, NamedLayer, Sequential};
use crate::model::{FerModel, ModelConfig, ModelKind};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum HeadMode {
    /// Keep all layers (the fully connected ones too); replace only the last classifier.
    #[default]
    Keep,
    /// Cut after --cut LAYER and put a new head there.
    New,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum HeadPool {
    /// Global average pooling: one value per channel (few weights, any input size).
    #[default]
    Gap,
    /// Flatten the whole feature map (as Keras' `Flatten()`; many weights).
    Flatten,
}

/// The `[transfer]` section of an experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransferConfig {
    /// A float ONNX classifier to start from.
    pub init: Option<PathBuf>,
    pub head: HeadMode,
    /// `--head new`: the last layer kept (name or index, as `fer-train layers` lists them).
    pub cut: Option<String>,
    pub head_pool: HeadPool,
    /// Units of a hidden dense layer (with ReLU) in a new head; 0: none.
    pub head_hidden: usize,
    /// Dropout before the new classifier.
    pub head_dropout: f64,
    /// Keep this layer and those before it fixed...
    pub freeze_until: Option<String>,
    /// ...until this epoch (1-based; none: for the whole run).
    pub unfreeze_epoch: Option<usize>,
    /// Learning-rate factor for pretrained layers while they train.
    pub body_lr_mult: f64,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            init: None,
            head: HeadMode::Keep,
            cut: None,
            head_pool: HeadPool::Gap,
            head_hidden: 0,
            head_dropout: 0.5,
            freeze_until: None,
            unfreeze_epoch: None,
            body_lr_mult: 1.0,
        }
    }
}

impl TransferConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.init.is_none() {
            let set = self.cut.is_some() || self.freeze_until.is_some() || self.head == HeadMode::New;
            if set {
                return Err("--head new, --cut and --freeze-until need --init FILE.onnx".into());
            }
            return Ok(());
        }
        match (self.head, &self.cut) {
            (HeadMode::New, None) => {
                return Err("--head new needs --cut LAYER (see `fer-train layers FILE.onnx`)".into());
            }
            (HeadMode::Keep, Some(_)) => return Err("--cut goes with --head new".into()),
            _ => {}
        }
        if !(0.0..1.0).contains(&self.head_dropout) {
            return Err(format!("--head-dropout must be in [0, 1), got {}", self.head_dropout));
        }
        if !(self.body_lr_mult >= 0.0 && self.body_lr_mult.is_finite()) {
            return Err(format!("--body-lr-mult must be >= 0, got {}", self.body_lr_mult));
        }
        if self.unfreeze_epoch.is_some() && self.freeze_until.is_none() {
            return Err("--unfreeze-epoch goes with --freeze-until".into());
        }
        Ok(())
    }
}

/// An ONNX file's layers as the trainer sees them.
#[derive(Clone, Debug, Serialize)]
pub struct LayerRow {
    pub index: usize,
    pub name: String,
    pub op: String,
    pub output: Vec<usize>,
    pub parameters: usize,
}

/// Reads `path` with the runtime's ONNX reader.
pub fn read_graph(path: &Path) -> Result<FloatGraph, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    onnx::read_onnx(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The graph as a chain of trainer layers, each with the graph node it came from. A
/// trailing softmax is dropped (training works on logits).
pub fn import_layers(g: &FloatGraph) -> Result<Vec<(NamedLayer, Option<usize>)>, String> {
    if !g.is_chain() {
        let join = g.nodes.iter().enumerate().find(|(i, n)| n.inputs != [*i]).map(|(_, n)| n.name.clone());
        return Err(format!(
            "node `{}` joins two branches: --init takes plain chains of layers (VGG-style CNNs); \
             residual models can still be quantized with `fer quantize`",
            join.unwrap_or_default()
        ));
    }
    let mut out = Vec::with_capacity(g.nodes.len());
    for (i, node) in g.nodes.iter().enumerate() {
        let input = g.shape(i);
        let spec = match &node.op {
            Op::Conv(c) => LayerSpec::Conv {
                c_in: input[0],
                c_out: c.weight.dims[0],
                kernel: [c.weight.dims[2], c.weight.dims[3]],
                stride: c.stride,
                pads: c.pads,
                dilation: c.dilation,
                groups: c.groups,
                bias: c.bias.is_some(),
            },
            Op::BatchNorm(b) => LayerSpec::BatchNorm { features: b.scale.len(), epsilon: b.epsilon as f64 },
            Op::Relu => LayerSpec::Relu,
            Op::Clip { min, max } if *min == 0.0 && max.is_infinite() => LayerSpec::Relu,
            Op::PRelu { slope } => {
                let mut s = slope.dims.clone();
                s.resize(3, 1);
                LayerSpec::PRelu { shape: [s[0], s[1], s[2]] }
            }
            Op::MaxPool(p) => LayerSpec::MaxPool { kernel: p.kernel, stride: p.stride, pads: p.pads },
            Op::AvgPool(p) => LayerSpec::AvgPool {
                kernel: p.kernel,
                stride: p.stride,
                pads: p.pads,
                count_include_pad: p.count_include_pad,
            },
            Op::GlobalAvgPool => LayerSpec::GlobalAvgPool,
            Op::Flatten => LayerSpec::Flatten,
            Op::Dense(d) => {
                LayerSpec::Dense { d_in: d.weight.dims[1], d_out: d.weight.dims[0], bias: d.bias.is_some() }
            }
            Op::Softmax { .. } if i + 1 == g.nodes.len() => continue,
            other => {
                return Err(format!("node `{}` ({}): not trainable here", node.name, other.kind()));
            }
        };
        out.push((NamedLayer { name: node.name.clone(), spec, pretrained: true }, Some(i)));
    }
    Ok(out)
}

/// The table `fer-train layers` prints.
pub fn layer_rows(g: &FloatGraph) -> Vec<LayerRow> {
    g.nodes
        .iter()
        .enumerate()
        .map(|(i, n)| LayerRow {
            index: i,
            name: n.name.clone(),
            op: n.op.kind().to_string(),
            output: n.shape.clone(),
            parameters: FloatGraph { nodes: vec![n.clone()], ..g.clone() }.parameters(),
        })
        .collect()
}

/// Finds a layer by name or index.
pub fn find_layer(layers: &[(NamedLayer, Option<usize>)], key: &str, flag: &str) -> Result<usize, String> {
    if let Some(i) = layers.iter().position(|(l, _)| l.name == key) {
        return Ok(i);
    }
    match key.parse::<usize>() {
        Ok(i) if i < layers.len() => Ok(i),
        _ => Err(format!(
            "{flag} {key:?}: no such layer; layers are {} (names or indices 0..{})",
            layers.iter().map(|(l, _)| l.name.as_str()).collect::<Vec<_>>().join(", "),
            layers.len()
        )),
    }
}

/// The index of `--freeze-until`'s layer in an imported model's layer list (by name, or
/// an index), for a run resumed from its checkpoint.
pub fn freeze_index(config: &ModelConfig, tc: &TransferConfig) -> Option<usize> {
    let key = tc.freeze_until.as_deref()?;
    let layers = config.layers.as_ref()?;
    layers.iter().position(|l| l.name == key).or_else(|| key.parse().ok().filter(|&i| i < layers.len()))
}

/// A model to fine-tune: its config (the layer list) and where its pretrained weights are.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub config: ModelConfig,
    pub graph: FloatGraph,
    /// Per layer of `config`, the graph node holding its weights (None: new layer).
    pub sources: Vec<Option<usize>>,
    /// Index of the last frozen layer.
    pub freeze_until: Option<usize>,
    /// What was kept, cut and added, for the log.
    pub summary: Vec<String>,
}

fn new_layer(name: &str, spec: LayerSpec) -> (NamedLayer, Option<usize>) {
    (NamedLayer { name: name.into(), spec, pretrained: false }, None)
}

/// Builds the model `tc` describes for `classes` classes on images of `spec`.
pub fn prepare(
    tc: &TransferConfig,
    spec: ImageSpec,
    classes: usize,
    bn_momentum: f64,
) -> Result<Prepared, String> {
    tc.validate()?;
    let path = tc.init.as_ref().ok_or("no --init model")?;
    let graph = read_graph(path)?;
    let want = [spec.channels as usize, spec.height as usize, spec.width as usize];
    if graph.input_shape != want {
        return Err(format!(
            "{} takes {:?} (channels, height, width) but this run feeds {want:?}: pass --channels {} --image-size {}",
            path.display(),
            graph.input_shape,
            graph.input_shape[0],
            graph.input_shape[1]
        ));
    }
    let mut layers = import_layers(&graph).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut summary = Vec::new();
    match tc.head {
        HeadMode::Keep => {
            let last = layers.iter().rposition(|(l, _)| matches!(l.spec, LayerSpec::Dense { .. }));
            let Some(last) = last else {
                return Err(format!(
                    "{}: no dense classifier to replace; use --head new --cut LAYER",
                    path.display()
                ));
            };
            let (old, _) = layers.remove(last);
            let LayerSpec::Dense { d_in, d_out, .. } = old.spec else { unreachable!("found as Dense") };
            layers.truncate(last);
            summary.push(format!(
                "kept {} pretrained layers; replaced the classifier `{}` ({d_in} -> {d_out}) by a new one ({d_in} -> {classes})",
                layers.len(),
                old.name
            ));
            layers.push(new_layer("head.dropout", LayerSpec::Dropout { prob: tc.head_dropout }));
            layers.push(new_layer("head.classifier", LayerSpec::Dense { d_in, d_out: classes, bias: true }));
        }
        HeadMode::New => {
            let cut = find_layer(&layers, tc.cut.as_deref().unwrap_or_default(), "--cut")?;
            let dropped: Vec<String> = layers[cut + 1..].iter().map(|(l, _)| l.name.clone()).collect();
            layers.truncate(cut + 1);
            let shape = graph.nodes[layers[cut].1.expect("imported")].shape.clone();
            let mut features: usize = shape.iter().product();
            if shape.len() == 3 {
                match tc.head_pool {
                    HeadPool::Gap => {
                        layers.push(new_layer("head.pool", LayerSpec::GlobalAvgPool));
                        features = shape[0];
                    }
                    HeadPool::Flatten => {}
                }
                layers.push(new_layer("head.flatten", LayerSpec::Flatten));
            }
            if tc.head_hidden > 0 {
                layers.push(new_layer(
                    "head.hidden",
                    LayerSpec::Dense { d_in: features, d_out: tc.head_hidden, bias: true },
                ));
                layers.push(new_layer("head.relu", LayerSpec::Relu));
                features = tc.head_hidden;
            }
            layers.push(new_layer("head.dropout", LayerSpec::Dropout { prob: tc.head_dropout }));
            layers.push(new_layer(
                "head.classifier",
                LayerSpec::Dense { d_in: features, d_out: classes, bias: true },
            ));
            summary.push(format!(
                "kept {} pretrained layers up to `{}` (output {shape:?}); dropped {}; new head: {}",
                cut + 1,
                layers[cut].0.name,
                if dropped.is_empty() { "nothing".into() } else { dropped.join(", ") },
                layers[cut + 1..]
                    .iter()
                    .map(|(l, _)| l.name.trim_start_matches("head."))
                    .collect::<Vec<_>>()
                    .join(" -> ")
            ));
        }
    }
    let freeze_until = match &tc.freeze_until {
        Some(key) => {
            let i = find_layer(&layers, key, "--freeze-until")?;
            if !layers[i].0.pretrained {
                return Err(format!(
                    "--freeze-until {key:?} names a new layer; freeze pretrained layers only"
                ));
            }
            summary.push(format!(
                "layers 0..={i} (up to `{}`) frozen {}; pretrained layers train at {}x the learning rate",
                layers[i].0.name,
                tc.unfreeze_epoch.map_or("for the whole run".into(), |e| format!("until epoch {e}")),
                tc.body_lr_mult
            ));
            Some(i)
        }
        None => {
            if tc.body_lr_mult != 1.0 {
                summary.push(format!("pretrained layers train at {}x the learning rate", tc.body_lr_mult));
            }
            None
        }
    };
    let (named, sources): (Vec<NamedLayer>, Vec<Option<usize>>) = layers.into_iter().unzip();
    let config = ModelConfig {
        kind: ModelKind::Imported,
        input: spec,
        classes,
        bn_momentum,
        dropout: None,
        layers: Some(named),
    };
    config.validate()?;
    Ok(Prepared { config, graph, sources, freeze_until, summary })
}

/// The whole graph as a trainable model, classifier included (no new layers): for a
/// model whose labels already fit, and for checking that export and import are exact.
pub fn import_whole(graph: FloatGraph, classes: usize, bn_momentum: f64) -> Result<Prepared, String> {
    let [c, h, w] = graph.input_shape;
    let input = ImageSpec { width: w as u32, height: h as u32, channels: c as u8 };
    let (named, sources): (Vec<NamedLayer>, Vec<Option<usize>>) = import_layers(&graph)?.into_iter().unzip();
    let config = ModelConfig {
        kind: ModelKind::Imported,
        input,
        classes,
        bn_momentum,
        dropout: None,
        layers: Some(named),
    };
    config.validate()?;
    Ok(Prepared { config, graph, sources, freeze_until: None, summary: Vec::new() })
}

fn tensor<const D: usize>(data: &[f32], dims: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(data.to_vec(), dims), device)
}

/// Copies one graph node's weights into the matching trainer layer.
pub fn load_layer(layer: Layer, node: &Node, device: &Device) -> Result<Layer, String> {
    let t1 = |v: &[f32]| tensor(v, [v.len()], device);
    Ok(match (layer, &node.op) {
        (Layer::Conv(mut c), Op::Conv(src)) => {
            let d = &src.weight.dims;
            c.weight = Param::from_tensor(tensor(&src.weight.data, [d[0], d[1], d[2], d[3]], device));
            c.bias = src.bias.as_ref().map(|b| Param::from_tensor(t1(b)));
            Layer::Conv(c)
        }
        (Layer::BatchNorm(mut b), Op::BatchNorm(src)) => {
            b.gamma = Param::from_tensor(t1(&src.scale));
            b.beta = Param::from_tensor(t1(&src.bias));
            b.running_mean = RunningState::new(t1(&src.mean));
            b.running_var = RunningState::new(t1(&src.var));
            Layer::BatchNorm(b)
        }
        (Layer::PRelu(mut p), Op::PRelu { slope }) => {
            let mut s = slope.dims.clone();
            s.resize(3, 1);
            p.alpha = Param::from_tensor(tensor(&slope.data, [s[0], s[1], s[2]], device));
            Layer::PRelu(p)
        }
        (Layer::Dense(mut l), Op::Dense(src)) => {
            let (n, k) = (src.weight.dims[0], src.weight.dims[1]);
            // burn keeps [in, out]; the graph [out, in].
            let mut w = vec![0f32; n * k];
            for o in 0..n {
                for i in 0..k {
                    w[i * n + o] = src.weight.data[o * k + i];
                }
            }
            l.weight = Param::from_tensor(tensor(&w, [k, n], device));
            l.bias = src.bias.as_ref().map(|b| Param::from_tensor(t1(b)));
            Layer::Dense(l)
        }
        (layer, _) => layer,
    })
}

/// A freshly built model of `p.config` with the pretrained layers' weights loaded.
pub fn build(p: &Prepared, device: &Device) -> Result<FerModel, String> {
    let FerModel::Imported(seq) = p.config.init(device) else { return Err("not an imported model".into()) };
    let mut layers = Vec::with_capacity(seq.layers.len());
    for (layer, source) in seq.layers.into_iter().zip(&p.sources) {
        layers.push(match source {
            Some(i) => load_layer(layer, &p.graph.nodes[*i], device)?,
            None => layer,
        });
    }
    Ok(FerModel::Imported(Sequential { layers }))
}

fn param_ids<M: Module>(m: &M) -> Vec<ParamId> {
    struct Ids(Vec<ParamId>);
    impl ModuleVisitor for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.id);
        }
    }
    let mut ids = Ids(Vec::new());
    m.visit(&mut ids);
    ids.0
}

/// Which parameters train at which rate: frozen (until `unfreeze_epoch`), the rest of
/// the pretrained body, and the new layers.
#[derive(Clone, Debug)]
pub struct ParamGroups {
    frozen: Vec<ParamId>,
    body: Vec<ParamId>,
    head: Vec<ParamId>,
    unfreeze_epoch: Option<usize>,
    body_lr_mult: f64,
}

impl ParamGroups {
    /// None when every parameter trains at the base rate (the plain optimizer step applies).
    pub fn new(
        model: &FerModel,
        config: &ModelConfig,
        tc: &TransferConfig,
        freeze_until: Option<usize>,
    ) -> Option<ParamGroups> {
        let (FerModel::Imported(seq), Some(layers)) = (model, &config.layers) else { return None };
        if freeze_until.is_none() && tc.body_lr_mult == 1.0 {
            return None;
        }
        let mut g = ParamGroups {
            frozen: Vec::new(),
            body: Vec::new(),
            head: Vec::new(),
            unfreeze_epoch: tc.unfreeze_epoch,
            body_lr_mult: tc.body_lr_mult,
        };
        for (i, (layer, spec)) in seq.layers.iter().zip(layers).enumerate() {
            let ids = param_ids(layer);
            if freeze_until.is_some_and(|f| i <= f) {
                g.frozen.extend(ids);
            } else if spec.pretrained {
                g.body.extend(ids);
            } else {
                g.head.extend(ids);
            }
        }
        Some(g)
    }

    /// Whether frozen layers train in `epoch` (0-based).
    pub fn unfrozen(&self, epoch: usize) -> bool {
        self.unfreeze_epoch.is_some_and(|e| epoch + 1 >= e)
    }

    /// One optimizer step: the body at `lr * body_lr_mult`, new layers at `lr`.
    pub fn step(
        &self,
        optim: &mut ModuleOptimizer,
        model: FerModel,
        mut grads: Gradients,
        lr: f64,
        epoch: usize,
    ) -> FerModel {
        let mut body_ids = self.body.clone();
        if self.unfrozen(epoch) {
            body_ids.extend(&self.frozen);
        }
        let body = GradientsParams::from_params(&mut grads, &model, &body_ids);
        let head = GradientsParams::from_params(&mut grads, &model, &self.head);
        let model = if body.is_empty() || self.body_lr_mult == 0.0 {
            model
        } else {
            optim.step(lr * self.body_lr_mult, model, body)
        };
        if head.is_empty() { model } else { optim.step(lr, model, head) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::to_onnx;
    use crate::model::flat_weights;
    use crate::train::checkpoint::ModelCard;
    use crate::train::metrics::SetMetrics;

    /// An exported edge model (random weights) written to a temporary file.
    fn edge_onnx(dir: &Path) -> PathBuf {
        let config = ModelConfig::builtin(ModelKind::Edge, ImageSpec::FER48_GRAY, 7, 0.1);
        let device = Device::flex();
        let m = config.init(&device).valid();
        let bytes = to_onnx(&m, &ModelCard::new(config, 1, SetMetrics::default())).unwrap();
        let path = dir.join("edge.onnx");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn names(p: &Prepared) -> Vec<String> {
        p.config.layers.as_ref().unwrap().iter().map(|l| l.name.clone()).collect()
    }

    #[test]
    fn heads_keep_and_new_reshape_the_layer_list() {
        let dir = tempfile::tempdir().unwrap();
        let init = Some(edge_onnx(dir.path()));
        let spec = ImageSpec::FER48_GRAY;
        // keep: all 30 layers but the classifier, then dropout + a new 8-class classifier.
        let keep =
            prepare(&TransferConfig { init: init.clone(), ..Default::default() }, spec, 8, 0.1).unwrap();
        let n = names(&keep);
        assert_eq!(n.len(), 31, "{n:?}");
        assert_eq!(&n[28..], ["node_29", "head.dropout", "head.classifier"]);
        let layers = keep.config.layers.as_ref().unwrap();
        assert_eq!(layers[30].spec, LayerSpec::Dense { d_in: 128, d_out: 8, bias: true });
        assert!(
            layers[..29].iter().all(|l| l.pretrained) && !layers[29].pretrained && !layers[30].pretrained
        );

        // new: cut after the last 3x3 conv, gap + hidden 32 head.
        let tc = TransferConfig {
            init: init.clone(),
            head: HeadMode::New,
            cut: Some("Edge.b4a.conv".into()),
            head_hidden: 32,
            ..Default::default()
        };
        let new = prepare(&tc, spec, 7, 0.1).unwrap();
        let n = names(&new);
        assert_eq!(n[18], "Edge.b4a.conv");
        assert_eq!(
            &n[19..],
            ["head.pool", "head.flatten", "head.hidden", "head.relu", "head.dropout", "head.classifier"]
        );
        // By index, with flatten instead of pooling: 128 * 6 * 6 features.
        let tc =
            TransferConfig { cut: Some("18".into()), head_pool: HeadPool::Flatten, head_hidden: 0, ..tc };
        let flat = prepare(&tc, spec, 7, 0.1).unwrap();
        let last = flat.config.layers.as_ref().unwrap().last().unwrap().clone();
        assert_eq!(last.spec, LayerSpec::Dense { d_in: 128 * 36, d_out: 7, bias: true });

        // Mistakes are named.
        let bad = |tc: TransferConfig| prepare(&tc, spec, 7, 0.1).unwrap_err();
        assert!(
            bad(TransferConfig { cut: Some("nope".into()), ..tc.clone() })
                .contains("--cut \"nope\": no such layer")
        );
        assert!(
            bad(TransferConfig { head: HeadMode::Keep, ..tc.clone() }).contains("--cut goes with --head new")
        );
        assert!(
            bad(TransferConfig { freeze_until: Some("head.classifier".into()), ..tc.clone() })
                .contains("names a new layer")
        );
        let wrong_size = prepare(
            &TransferConfig { init, ..Default::default() },
            ImageSpec { width: 64, height: 64, channels: 1 },
            7,
            0.1,
        )
        .unwrap_err();
        assert!(wrong_size.contains("--channels 1 --image-size 48"), "{wrong_size}");
    }

    #[test]
    fn pretrained_weights_load_and_frozen_layers_stay_fixed() {
        let dir = tempfile::tempdir().unwrap();
        let tc = TransferConfig {
            init: Some(edge_onnx(dir.path())),
            freeze_until: Some("Edge.b3b.conv".into()),
            body_lr_mult: 0.5,
            ..Default::default()
        };
        let p = prepare(&tc, ImageSpec::FER48_GRAY, 7, 0.1).unwrap();
        let device = Device::flex().autodiff();
        let model = build(&p, &device).unwrap();
        // The stem conv holds the file's weights.
        let FerModel::Imported(seq) = &model else { unreachable!() };
        let Op::Conv(stem) = &p.graph.nodes[0].op else { unreachable!() };
        assert_eq!(flat_weights(&seq.layers[0]), stem.weight.data);

        let groups = ParamGroups::new(&model, &p.config, &tc, p.freeze_until).expect("groups");
        let mut optim = burn::optim::AdamConfig::new().init();
        let snapshot = |m: &FerModel| -> Vec<Vec<f32>> {
            let FerModel::Imported(s) = m else { unreachable!() };
            s.layers.iter().map(flat_weights).collect()
        };
        let train = |model: FerModel, optim: &mut ModuleOptimizer, epoch: usize| {
            let x =
                Tensor::<4>::random([4, 1, 48, 48], burn::tensor::Distribution::Uniform(0.0, 1.0), &device);
            let loss = model.forward(x).powf_scalar(2.0).mean();
            groups.step(optim, model, loss.backward(), 1e-2, epoch)
        };
        let before = snapshot(&model);
        let model = train(model, &mut optim, 0);
        let after = snapshot(&model);
        let conv_b3b = 14;
        for i in [0, 4, 7, 11, conv_b3b] {
            assert_eq!(before[i], after[i], "layer {i} is frozen");
        }
        for i in [18, 21, 24, 30] {
            assert_ne!(before[i], after[i], "layer {i} trains");
        }
        // Frozen for the whole run (no --unfreeze-epoch).
        assert!(!groups.unfrozen(5));
        let g2 = ParamGroups::new(
            &model,
            &p.config,
            &TransferConfig { unfreeze_epoch: Some(2), ..tc.clone() },
            p.freeze_until,
        )
        .unwrap();
        assert!(!g2.unfrozen(0) && g2.unfrozen(1));
        let x = Tensor::<4>::random([4, 1, 48, 48], burn::tensor::Distribution::Uniform(0.0, 1.0), &device);
        let grads = model.forward(x).powf_scalar(2.0).mean().backward();
        let model = g2.step(&mut optim, model, grads, 1e-2, 1);
        assert_ne!(snapshot(&model)[0], after[0], "unfrozen from epoch 2");
        // No freezing and the full rate: the plain optimizer step applies.
        let plain = TransferConfig { freeze_until: None, body_lr_mult: 1.0, ..tc };
        assert!(ParamGroups::new(&model, &p.config, &plain, None).is_none());
    }
}
