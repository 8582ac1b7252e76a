//! tract-onnx, f32, optimized, batch 1.

use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::{Backend, BackendError, onnx_input_map, read};

pub struct Tract {
    model: Arc<TypedRunnableModel>,
    shape: [usize; 3],
    channels_last: bool,
    input_map: Vec<(f32, f32)>,
}

impl Tract {
    pub fn load(path: &Path) -> Result<Tract, BackendError> {
        let bytes = read(path)?;
        let graph = crate::onnx::read_onnx(&bytes)
            .map_err(|source| BackendError::Onnx { path: path.into(), source })?;
        let (shape, channels_last) = (graph.input_shape, graph.input_channels_last);
        let input_map = onnx_input_map(&graph.metadata, path)?;
        let (dims, _) = crate::onnx::graph::file_input(shape, channels_last, &[]);
        let fact = InferenceFact::dt_shape(f32::datum_type(), dims);
        let model = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .and_then(|m| m.with_input_fact(0, fact))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| BackendError::Unfit { path: path.into(), what: format!("tract: {e}") })?;
        Ok(Tract { model, shape, channels_last, input_map })
    }
}

impl Backend for Tract {
    fn name(&self) -> String {
        "tract f32".into()
    }

    fn input_shape(&self) -> [usize; 3] {
        self.shape
    }

    fn input_map(&self) -> &[(f32, f32)] {
        &self.input_map
    }

    fn run(&mut self, input: &[f32], outputs: &mut Vec<Vec<f32>>) -> Result<(), BackendError> {
        let ([n, a, b, c], data) = crate::onnx::graph::file_input(self.shape, self.channels_last, input);
        let t = tract_ndarray::Array4::from_shape_vec((n, a, b, c), data).map_err(peer)?;
        let out = self.model.run(tvec!(t.into_tensor().into_tvalue())).map_err(peer)?;
        outputs.resize_with(out.len(), Vec::new);
        for (o, buf) in out.iter().zip(outputs.iter_mut()) {
            let view = o.to_plain_array_view::<f32>().map_err(peer)?;
            buf.clear();
            buf.extend(view.iter().copied());
        }
        Ok(())
    }
}

/// An error of tract itself.
fn peer(e: impl std::fmt::Display) -> BackendError {
    BackendError::peer("tract", e)
}
