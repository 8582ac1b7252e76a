//! A float ONNX model on the runtime's own f32 evaluator (`onnx::eval`): written for
//! clarity, not speed; needs no other library, and is the reference the int8 models are
//! checked against.

use std::path::Path;

use super::{Backend, BackendError, onnx_input_map, read};
use crate::onnx::FloatGraph;

pub struct F32Eval {
    graph: FloatGraph,
    input_map: Vec<(f32, f32)>,
}

impl F32Eval {
    pub fn load(path: &Path) -> Result<F32Eval, BackendError> {
        let graph = crate::onnx::read_onnx(&read(path)?)
            .map_err(|source| BackendError::Onnx { path: path.into(), source })?;
        let input_map = onnx_input_map(&graph.metadata, path)?;
        Ok(F32Eval { graph, input_map })
    }
}

impl Backend for F32Eval {
    fn name(&self) -> String {
        "own f32 evaluator".into()
    }

    fn input_shape(&self) -> [usize; 3] {
        self.graph.input_shape
    }

    fn input_map(&self) -> &[(f32, f32)] {
        &self.input_map
    }

    fn run(&mut self, input: &[f32], outputs: &mut Vec<Vec<f32>>) -> Result<(), BackendError> {
        *outputs = crate::onnx::eval::run_outputs(&self.graph, input)?;
        Ok(())
    }
}
