//! ONNX Runtime as the oracle of the engine: it runs a model's QDQ twin with every tensor
//! exposed and hands back each value's int8 bytes, which [`crate::quant::op_by_op`] feeds the
//! engine one op at a time (tests of the quantizer, the detector and imported models).

use std::path::Path;

use super::{BackendError, Ort};
use crate::quant::build::QModel;
use crate::quant::qdq::qdq_onnx_with;

pub struct TwinOracle {
    session: ort::session::Session,
    values: usize,
    dims: [usize; 4],
}

impl TwinOracle {
    /// A one-thread session on `model`'s twin (fails where ONNX Runtime is not found).
    pub fn new(model: &QModel) -> Result<TwinOracle, BackendError> {
        let twin = qdq_onnx_with(model, &[], true);
        let session = Ort::session_from(Path::new("the QDQ twin"), &twin)?;
        let [c, h, w] = model.values[0].shape;
        Ok(TwinOracle { session, values: model.values.len(), dims: [1, c, h, w] })
    }

    /// Every value's int8 bytes (`[C, H, W]` order) for one `[C, H, W]` float image.
    pub fn values(&mut self, image: &[f32]) -> Result<Vec<Vec<i8>>, BackendError> {
        let input = ort::value::Tensor::from_array((self.dims, image.to_vec())).map_err(peer)?;
        let outputs = self.session.run(ort::inputs!["input" => input]).map_err(peer)?;
        (0..self.values)
            .map(|id| {
                let name = format!("v{id}.q");
                let t = outputs[name.as_str()]
                    .try_extract_tensor::<i8>()
                    .map_err(|e| peer(format!("{name}: {e}")))?;
                Ok(t.1.to_vec())
            })
            .collect()
    }
}

/// An error of ONNX Runtime itself.
fn peer(e: impl std::fmt::Display) -> BackendError {
    BackendError::peer("ONNX Runtime", e)
}
