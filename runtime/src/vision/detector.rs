//! The face detector: BlazeFace short range behind a small network trait, so the same
//! decoding runs on every backend that can execute the model.

use super::anchors;
use super::decode::{COORDS, DecodeOptions, Detection, decode, weighted_nms};
use super::frame::{RgbFrame, letterbox_into};

/// Runs the detector network on one `[3, size, size]` input.
pub trait DetectorNet {
    fn name(&self) -> String;
    /// Fills `regressors` (16 values per anchor) and `scores` (one logit per anchor).
    fn run(&mut self, input: &[f32], regressors: &mut Vec<f32>, scores: &mut Vec<f32>) -> Result<(), String>;
}

/// The two outputs of a BlazeFace-style net told apart by size: `COORDS` values per anchor
/// and one. Exporters name them differently (`regressors`/`classificators`, `Identity`...).
/// Copied into the caller's buffers, which keep their capacity from frame to frame.
pub fn split_outputs(
    outputs: &[Vec<f32>],
    anchors: usize,
    regressors: &mut Vec<f32>,
    scores: &mut Vec<f32>,
) -> Result<(), String> {
    let reg = outputs.iter().find(|o| o.len() == anchors * COORDS);
    let sc = outputs.iter().find(|o| o.len() == anchors);
    let (Some(r), Some(sc)) = (reg, sc) else {
        let sizes: Vec<usize> = outputs.iter().map(Vec::len).collect();
        return Err(format!(
            "not a BlazeFace-style detector: outputs of {sizes:?} values; need {} ({anchors} anchors x {COORDS}) and {anchors}",
            anchors * COORDS
        ));
    };
    regressors.clear();
    regressors.extend_from_slice(r);
    scores.clear();
    scores.extend_from_slice(sc);
    Ok(())
}

/// BlazeFace short range: 128x128 RGB scaled to [-1, 1], 896 anchors.
pub struct BlazeFace {
    net: Box<dyn DetectorNet>,
    anchors: Vec<[f32; 2]>,
    pub options: DecodeOptions,
    input: Vec<f32>,
    regressors: Vec<f32>,
    scores: Vec<f32>,
    found: Vec<Detection>,
}

/// Input side of the short-range model.
pub const INPUT: usize = 128;

impl BlazeFace {
    pub fn new(net: Box<dyn DetectorNet>) -> BlazeFace {
        BlazeFace {
            net,
            anchors: anchors::short_range(),
            options: DecodeOptions::default(),
            input: vec![0.0; 3 * INPUT * INPUT],
            regressors: Vec::new(),
            scores: Vec::new(),
            found: Vec::new(),
        }
    }

    pub fn name(&self) -> String {
        self.net.name()
    }

    /// Faces in `frame`, boxes and keypoints in frame pixels, best first.
    pub fn detect(&mut self, frame: &RgbFrame) -> Result<&[Detection], String> {
        let lb = letterbox_into(frame, INPUT, 1.0 / 127.5, -1.0, &mut self.input);
        self.net.run(&self.input, &mut self.regressors, &mut self.scores)?;
        decode(&self.regressors, &self.scores, &self.anchors, &self.options, &mut self.found)?;
        weighted_nms(&mut self.found, self.options.nms_iou);
        let (sx, ox, sy, oy) = lb.to_frame();
        for d in &mut self.found {
            *d = d.mapped(sx, ox, sy, oy);
        }
        Ok(&self.found)
    }

    /// Number of anchors the net must score.
    pub fn anchors(&self) -> usize {
        self.anchors.len()
    }
}

/// The own int8 engine on a quantized detector (`fer quantize` of the float ONNX).
pub struct Int8Net {
    own: crate::backends::Own,
    anchors: usize,
    outputs: Vec<Vec<f32>>,
}

impl Int8Net {
    pub fn load(path: &std::path::Path) -> Result<Int8Net, String> {
        let own = crate::backends::Own::load(path)?;
        let (shape, sizes) = {
            let e = own.engine()?;
            (
                e.input().shape,
                (0..e.outputs()).filter_map(|k| e.output_at(k)).map(|v| v.len()).collect::<Vec<_>>(),
            )
        };
        if shape != [3, INPUT, INPUT] {
            return Err(format!(
                "{}: the detector takes {shape:?}; BlazeFace short range takes [3, {INPUT}, {INPUT}]",
                path.display()
            ));
        }
        let anchors = anchors::short_range().len();
        // Told apart by size at every run: refuse a model that cannot be, here.
        let outputs: Vec<Vec<f32>> = sizes.iter().map(|&n| vec![0f32; n]).collect();
        split_outputs(&outputs, anchors, &mut Vec::new(), &mut Vec::new())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Int8Net { own, anchors, outputs })
    }
}

impl DetectorNet for Int8Net {
    fn name(&self) -> String {
        std::format!("own int8 ({})", crate::kernels::best().name())
    }

    fn run(&mut self, input: &[f32], regressors: &mut Vec<f32>, scores: &mut Vec<f32>) -> Result<(), String> {
        self.own.run_outputs(input, &mut self.outputs)?;
        split_outputs(&self.outputs, self.anchors, regressors, scores)
    }
}

/// The runtime's own f32 evaluator (`onnx::eval`): no second library, written for
/// clarity, not speed; the reference the int8 detector will be checked against.
pub struct EvalNet {
    graph: crate::onnx::FloatGraph,
    anchors: usize,
}

impl EvalNet {
    pub fn load(path: &std::path::Path) -> Result<EvalNet, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let graph = crate::onnx::read_onnx(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        if graph.input_shape != [3, INPUT, INPUT] {
            return Err(format!(
                "{}: the detector takes {:?}; BlazeFace short range takes [3, {INPUT}, {INPUT}]",
                path.display(),
                graph.input_shape
            ));
        }
        Ok(EvalNet { graph, anchors: anchors::short_range().len() })
    }
}

impl DetectorNet for EvalNet {
    fn name(&self) -> String {
        "own f32 evaluator".into()
    }

    fn run(&mut self, input: &[f32], regressors: &mut Vec<f32>, scores: &mut Vec<f32>) -> Result<(), String> {
        let outputs = crate::onnx::eval::run_outputs(&self.graph, input).map_err(|e| e.to_string())?;
        split_outputs(&outputs, self.anchors, regressors, scores)
    }
}

/// tract-onnx running the float detector.
#[cfg(feature = "tract")]
pub struct TractNet {
    model: std::sync::Arc<tract_onnx::prelude::TypedRunnableModel>,
    anchors: usize,
}

#[cfg(feature = "tract")]
impl TractNet {
    pub fn load(path: &std::path::Path) -> Result<TractNet, String> {
        use tract_onnx::prelude::*;
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let fact = InferenceFact::dt_shape(f32::datum_type(), [1, 3, INPUT, INPUT]);
        let model = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .and_then(|m| m.with_input_fact(0, fact))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| format!("{}: tract: {e}", path.display()))?;
        Ok(TractNet { model, anchors: anchors::short_range().len() })
    }
}

#[cfg(feature = "tract")]
impl DetectorNet for TractNet {
    fn name(&self) -> String {
        "tract f32".into()
    }

    fn run(&mut self, input: &[f32], regressors: &mut Vec<f32>, scores: &mut Vec<f32>) -> Result<(), String> {
        use tract_onnx::prelude::*;
        let t = tract_ndarray::Array4::from_shape_vec((1, 3, INPUT, INPUT), input.to_vec())
            .map_err(|e| e.to_string())?;
        let out = self.model.run(tvec!(t.into_tensor().into_tvalue())).map_err(|e| e.to_string())?;
        let outputs = out
            .iter()
            .map(|o| o.to_plain_array_view::<f32>().map(|v| v.iter().copied().collect()))
            .collect::<Result<Vec<Vec<f32>>, _>>()
            .map_err(|e| e.to_string())?;
        split_outputs(&outputs, self.anchors, regressors, scores)
    }
}

/// ONNX Runtime running the float detector on one thread.
#[cfg(feature = "ort")]
pub struct OrtNet {
    session: ort::session::Session,
    anchors: usize,
}

#[cfg(feature = "ort")]
impl OrtNet {
    pub fn load(path: &std::path::Path) -> Result<OrtNet, String> {
        let session = crate::backends::Ort::session(path)?;
        Ok(OrtNet { session, anchors: anchors::short_range().len() })
    }
}

#[cfg(feature = "ort")]
impl DetectorNet for OrtNet {
    fn name(&self) -> String {
        "ONNX Runtime f32".into()
    }

    fn run(&mut self, input: &[f32], regressors: &mut Vec<f32>, scores: &mut Vec<f32>) -> Result<(), String> {
        let t = ort::value::Tensor::from_array(([1usize, 3, INPUT, INPUT], input.to_vec()))
            .map_err(|e| e.to_string())?;
        let name = self.session.inputs()[0].name().to_string();
        let out = self.session.run(ort::inputs![name => t]).map_err(|e| e.to_string())?;
        let mut outputs = Vec::new();
        for (_, v) in out.iter() {
            let (_, data) = v.try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
            outputs.push(data.to_vec());
        }
        split_outputs(&outputs, self.anchors, regressors, scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A net that returns fixed outputs: one face at the input's centre.
    struct Fixed;

    impl DetectorNet for Fixed {
        fn name(&self) -> String {
            "fixed".into()
        }
        fn run(&mut self, input: &[f32], reg: &mut Vec<f32>, sc: &mut Vec<f32>) -> Result<(), String> {
            assert_eq!(input.len(), 3 * INPUT * INPUT);
            *reg = vec![0.0; 896 * COORDS];
            *sc = vec![-10.0; 896];
            // Anchor of 16x16 cell (8, 8) has centre (8.5/16, 8.5/16); move it to 0.5.
            let a = (8 * 16 + 8) * 2;
            reg[a * COORDS..][..4].copy_from_slice(&[-4.0, -4.0, 32.0, 32.0]);
            sc[a] = 3.0;
            Ok(())
        }
    }

    #[test]
    fn detections_come_back_in_frame_pixels() {
        // 200 wide, 100 high: letterboxed into a 200-pixel square with 50-pixel bars.
        let px = vec![128u8; 200 * 100 * 3];
        let frame = RgbFrame::new(200, 100, &px).unwrap();
        let mut bf = BlazeFace::new(Box::new(Fixed));
        let d = bf.detect(&frame).unwrap().to_vec();
        assert_eq!(d.len(), 1);
        // Centre of the square = centre of the frame; 32/128 of 200 px = 50 px.
        assert!((d[0].cx - 100.0).abs() < 1e-3 && (d[0].cy - 50.0).abs() < 1e-3, "{d:?}");
        assert!((d[0].w - 50.0).abs() < 1e-3 && (d[0].h - 50.0).abs() < 1e-3);
    }

    #[test]
    fn outputs_are_told_apart_by_size() {
        let (mut r, mut s) = (Vec::new(), Vec::new());
        split_outputs(&[vec![0.0; 10], vec![1.0; 10 * COORDS]], 10, &mut r, &mut s).unwrap();
        assert_eq!((r.len(), s.len()), (160, 10));
        let err = split_outputs(&[vec![0.0; 7]], 10, &mut r, &mut s).unwrap_err();
        assert!(err.contains("[7]"), "{err}");
    }
}
