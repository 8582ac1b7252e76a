//! The FER models, one file each, behind one enum the training loop drives.

pub mod baseline;
pub mod blocks;
pub mod edge;
pub mod large;
pub mod sequential;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::ImageSpec;

/// Which architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// The classic Keras FER net (Conv 32 -> Dense 256), 4.8 M parameters at 48x48.
    Baseline,
    /// Compact CNN for microcontrollers: <= 256 KB int8 weights, <= 64 KB activations.
    Edge,
    /// `edge` with a wider head (192 channels): the whole 256 KB flash budget, same arena.
    #[serde(rename = "edge-wide")]
    #[value(name = "edge-wide")]
    EdgeWide,
    /// VGG-style net for GPU hosts.
    Large,
    /// A chain of layers read from ONNX (`fit --init`), with its own head.
    Imported,
}

impl ModelKind {
    /// The name a recipe, a flag and the ONNX metadata use.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Baseline => "baseline",
            ModelKind::Edge => "edge",
            ModelKind::EdgeWide => "edge-wide",
            ModelKind::Large => "large",
            ModelKind::Imported => "imported",
        }
    }
}

/// Everything needed to rebuild a model before loading its weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub kind: ModelKind,
    pub input: ImageSpec,
    pub classes: usize,
    /// How far BatchNorm running statistics move per batch (Keras' 0.99 is 0.01 here).
    #[serde(default = "default_bn_momentum")]
    pub bn_momentum: f64,
    /// Dropout before the classifier of a built-in model (none: the architecture's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
    /// `imported` only: the layer list (from the ONNX file, plus the new head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<sequential::NamedLayer>>,
}

/// burn's (and PyTorch's) BatchNorm momentum.
pub fn default_bn_momentum() -> f64 {
    0.1
}

impl ModelConfig {
    /// A built-in architecture.
    pub fn builtin(kind: ModelKind, input: ImageSpec, classes: usize, bn_momentum: f64) -> ModelConfig {
        ModelConfig { kind, input, classes, bn_momentum, dropout: None, layers: None }
    }

    pub fn validate(&self) -> Result<(), String> {
        let ImageSpec { width, height, channels } = self.input;
        if let Some(layers) = &self.layers {
            if self.kind != ModelKind::Imported {
                return Err("only imported models carry a layer list".into());
            }
            let input = [channels as usize, height as usize, width as usize];
            return sequential::check_chain(layers, input, self.classes).map(|_| ());
        }
        if self.kind == ModelKind::Imported {
            return Err("an imported model needs --init FILE.onnx".into());
        }
        if channels != 1 && channels != 3 {
            return Err(format!("input channels must be 1 or 3, got {channels}"));
        }
        if width < 16 || height < 16 || width % 16 != 0 || height % 16 != 0 {
            return Err(format!(
                "input size must be a multiple of 16 and at least 16 (four 2x poolings), got {width}x{height}"
            ));
        }
        if !(self.bn_momentum > 0.0 && self.bn_momentum <= 1.0) {
            return Err(format!("bn_momentum must be in (0, 1], got {}", self.bn_momentum));
        }
        if !(2..=8).contains(&self.classes) {
            return Err(format!("classes must be 2 to 8, got {}", self.classes));
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> FerModel {
        let ch = self.input.channels as usize;
        match self.kind {
            ModelKind::Baseline => FerModel::Baseline(baseline::Baseline::new(
                ch,
                self.input.height as usize,
                self.input.width as usize,
                self.classes,
                self.bn_momentum,
                self.dropout.unwrap_or(baseline::DROPOUT),
                device,
            )),
            ModelKind::Edge | ModelKind::EdgeWide => FerModel::Edge(edge::Edge::new(
                ch,
                if self.kind == ModelKind::Edge { edge::HEAD } else { edge::HEAD_WIDE },
                self.classes,
                self.bn_momentum,
                self.dropout.unwrap_or(edge::DROPOUT),
                device,
            )),
            ModelKind::Large => FerModel::Large(large::Large::new(
                ch,
                self.classes,
                self.bn_momentum,
                self.dropout.unwrap_or(large::DROPOUT),
                device,
            )),
            ModelKind::Imported => FerModel::Imported(sequential::Sequential::new(
                self.layers.as_deref().unwrap_or_default(),
                self.bn_momentum,
                device,
            )),
        }
    }
}

#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one model per run: boxing buys nothing
pub enum FerModel {
    Baseline(baseline::Baseline),
    Edge(edge::Edge),
    Large(large::Large),
    Imported(sequential::Sequential),
}

impl FerModel {
    /// Logits `[N, classes]` for images `[N, C, H, W]` scaled to [0, 1].
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            FerModel::Baseline(m) => m.forward(x),
            FerModel::Edge(m) => m.forward(x),
            FerModel::Large(m) => m.forward(x),
            FerModel::Imported(m) => m.forward(x),
        }
    }
}

/// Every float parameter of a model, flattened in visiting order: for comparing weights
/// (records also carry parameter ids, which differ between two builds of one model).
pub fn flat_weights<M: Module>(model: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            self.0.extend(param.val().into_data().iter::<f32>());
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kind: ModelKind) -> ModelConfig {
        ModelConfig::builtin(kind, ImageSpec::FER48_GRAY, 7, 0.1)
    }

    #[test]
    fn every_model_maps_a_batch_to_logits() {
        let device = Device::flex();
        for kind in [ModelKind::Baseline, ModelKind::Edge, ModelKind::EdgeWide, ModelKind::Large] {
            let m = config(kind).init(&device).valid();
            let y = m.forward(Tensor::zeros([2, 1, 48, 48], &device));
            assert_eq!(y.dims(), [2, 7], "{kind:?}");
        }
        let rgb =
            ModelConfig::builtin(ModelKind::Edge, ImageSpec { width: 64, height: 64, channels: 3 }, 8, 0.1);
        let y = rgb.init(&device).valid().forward(Tensor::zeros([1, 3, 64, 64], &device));
        assert_eq!(y.dims(), [1, 8]);
    }

    #[test]
    fn a_kind_s_name_is_its_recipe_and_flag_spelling() {
        use clap::ValueEnum;
        #[derive(Deserialize)]
        struct Recipe {
            model: ModelKind,
        }
        for kind in ModelKind::value_variants() {
            let parsed: Recipe = toml::from_str(&format!("model = \"{}\"", kind.name())).unwrap();
            assert_eq!(parsed.model, *kind);
            assert_eq!(kind.to_possible_value().unwrap().get_name(), kind.name());
        }
    }

    #[test]
    fn baseline_has_the_keras_parameter_count() {
        // Keras' summary of the same net at 48x48x1: conv 320, BN 128 (half of it moving
        // statistics, which burn counts too), PReLU 73,728, dense 4,718,848, BN 1,024, PReLU 256,
        // dense 1,799: "Total params: 4,796,103".
        let m = config(ModelKind::Baseline).init(&Device::flex());
        assert_eq!(m.num_params(), 320 + 128 + 73_728 + 4_718_848 + 1_024 + 256 + 1_799);
        assert_eq!(m.num_params(), 4_796_103);
    }

    #[test]
    fn both_edges_fit_the_microcontroller_budget() {
        let device = Device::flex();
        for (kind, params) in [(ModelKind::Edge, 163_799), (ModelKind::EdgeWide, 222_935)] {
            let FerModel::Edge(m) = config(kind).init(&device) else { unreachable!() };
            // int8 weights: one byte per conv/dense weight (BN folds into the convs); the
            // parameter count also holds BN's four vectors, an upper bound of the int8 bytes.
            let weights = m.num_params();
            assert_eq!(weights, params, "{kind:?}");
            assert!(weights <= 256 * 1024, "{kind:?}: {weights} parameters");
            let mut trace = Vec::new();
            m.valid().forward_traced(Tensor::zeros([1, 1, 48, 48], &device), Some(&mut trace));
            let bytes: Vec<usize> = trace.iter().map(|d| d.iter().product()).collect();
            // A layer's input and output live at once.
            let peak = bytes.windows(2).map(|w| w[0] + w[1]).max().unwrap();
            assert!(peak <= 64 * 1024, "{kind:?}: peak activations {peak} bytes: {trace:?}");
        }
    }
}
