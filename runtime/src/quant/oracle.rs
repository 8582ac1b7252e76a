//! ONNX Runtime as the oracle of the engine: it runs a model's QDQ twin with every tensor
//! exposed and hands back each value's int8 bytes, which [`super::op_by_op`] feeds the
//! engine one op at a time (tests of the quantizer, the detector and imported models).

use std::format;
use std::path::Path;
use std::vec::Vec;

use super::build::QModel;
use super::qdq::qdq_onnx_with;
use crate::backends::Ort;

pub struct TwinOracle {
    session: ort::session::Session,
    values: usize,
    dims: [usize; 4],
}

impl TwinOracle {
    /// A one-thread session on `model`'s twin (fails where ONNX Runtime is not found).
    pub fn new(model: &QModel) -> Result<TwinOracle, String> {
        let twin = qdq_onnx_with(model, &[], true);
        let session = Ort::session_from(Path::new("the QDQ twin"), &twin)?;
        let [c, h, w] = model.values[0].shape;
        Ok(TwinOracle { session, values: model.values.len(), dims: [1, c, h, w] })
    }

    /// Every value's int8 bytes (`[C, H, W]` order) for one `[C, H, W]` float image.
    pub fn values(&mut self, image: &[f32]) -> Result<Vec<Vec<i8>>, String> {
        let input = ort::value::Tensor::from_array((self.dims, image.to_vec())).map_err(|e| e.to_string())?;
        let outputs = self.session.run(ort::inputs!["input" => input]).map_err(|e| e.to_string())?;
        (0..self.values)
            .map(|id| {
                let name = format!("v{id}.q");
                let t =
                    outputs[name.as_str()].try_extract_tensor::<i8>().map_err(|e| format!("{name}: {e}"))?;
                Ok(t.1.to_vec())
            })
            .collect()
    }
}
