//! The own int8 engine on a `.fer` model.

use std::path::Path;

use super::{Backend, BackendError, mapped, read};
use crate::engine::Engine;
use crate::format::{AlignedBytes, FormatError, Model};
use crate::kernels::Kernels;

pub struct Own {
    bytes: AlignedBytes,
    arena: Vec<u8>,
    kernels: &'static dyn Kernels,
    input_map: Vec<(f32, f32)>,
    mapped: Vec<f32>,
}

impl Own {
    /// Loads and validates `path` (checksum included) on the fastest kernels this CPU has.
    pub fn load(path: &Path) -> Result<Own, BackendError> {
        Own::from_bytes(&read(path)?, None)
            .map_err(|source| BackendError::Format { path: path.into(), source })
    }

    /// The model in `raw` on `kernels`, or on the fastest set this CPU has for it (`None`).
    /// A set that cannot multiply the model's weights exactly (a 7-bit set, an 8-bit model)
    /// is refused.
    pub fn from_bytes(raw: &[u8], kernels: Option<&'static dyn Kernels>) -> Result<Own, FormatError> {
        let bytes = AlignedBytes::new(raw);
        let model = Model::new(bytes.as_slice())?;
        let kernels = kernels.unwrap_or_else(|| crate::kernels::best_for(model.weight_limit()));
        if !Engine::fits(&model, kernels) {
            return Err(FormatError::KernelsTooNarrow {
                kernels: kernels.name(),
                weight_limit: model.weight_limit(),
            });
        }
        let arena = vec![0u8; model.header.arena_size];
        let input_map = (0..model.input_map_len()).map(|k| model.input_map_at(k)).collect();
        Ok(Own { bytes, arena, kernels, input_map, mapped: Vec::new() })
    }

    /// The kernel set the model runs on (the fastest this CPU has for it, or the one asked).
    pub fn kernels(&self) -> &'static dyn Kernels {
        self.kernels
    }

    /// The engine on the loaded model.
    pub fn engine(&self) -> Engine<'_> {
        engine_on(&self.bytes, self.kernels)
    }
}

/// The engine on bytes `Own::from_bytes` validated (checksum included), immutable since: the
/// structural pass alone rebuilds the view, without hashing megabytes per image. A function
/// of the fields, so that `run` can borrow the arena mutably beside it.
fn engine_on<'a>(bytes: &'a AlignedBytes, kernels: &'static dyn Kernels) -> Engine<'a> {
    let model = Model::new_unchecked_crc(bytes.as_slice()).expect("validated at load");
    Engine::new(model, kernels)
}

impl Backend for Own {
    fn name(&self) -> String {
        format!("own int8 ({})", self.kernels.name())
    }

    fn input_shape(&self) -> [usize; 3] {
        self.engine().input().shape
    }

    fn input_map(&self) -> &[(f32, f32)] {
        &self.input_map
    }

    fn run(&mut self, input: &[f32], outputs: &mut Vec<Vec<f32>>) -> Result<(), BackendError> {
        Ok(engine_on(&self.bytes, self.kernels).infer_into(&mut self.arena, input, outputs)?)
    }

    /// As the default, without the output buffers: the classifier's hot path.
    fn infer(&mut self, image: &[f32]) -> Result<Vec<f32>, BackendError> {
        let input = mapped(image, &self.input_map, &mut self.mapped);
        Ok(engine_on(&self.bytes, self.kernels).infer(&mut self.arena, input)?)
    }
}
