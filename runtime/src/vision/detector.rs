//! The face detector: BlazeFace short range on any backend of the seam, so the same
//! decoding runs on every engine that can execute the model.

use std::path::Path;

use fer_core::vision::blazeface::Decoder;
pub use fer_core::vision::blazeface::{INPUT, split_outputs};

use super::VisionError;
use super::decode::Detection;
use super::frame::RgbFrame;
use crate::backends::{Backend, BackendKind};

/// BlazeFace short range: 128x128 RGB scaled to [-1, 1], 896 anchors.
pub struct BlazeFace {
    net: Box<dyn Backend>,
    /// Anchors, decoding settings (`decoder.options`) and buffers, shared with the browser.
    pub decoder: Decoder,
    input: Vec<f32>,
    outputs: Vec<Vec<f32>>,
}

impl BlazeFace {
    /// The detector on `net`, which must take `[3, 128, 128]` and give outputs that
    /// [`split_outputs`] tells apart: one dry run checks both (and that the model runs).
    pub fn new(net: Box<dyn Backend>) -> Result<BlazeFace, VisionError> {
        let shape = net.input_shape();
        if shape != [3, INPUT, INPUT] {
            let what =
                format!("the detector takes {shape:?}; BlazeFace short range takes [3, {INPUT}, {INPUT}]");
            return Err(VisionError::Detector(what));
        }
        let mut d = BlazeFace {
            net,
            decoder: Decoder::short_range(),
            input: vec![0.0; 3 * INPUT * INPUT],
            outputs: Vec::new(),
        };
        d.net.run(&d.input, &mut d.outputs)?;
        d.decoder.check(&d.outputs)?;
        Ok(d)
    }

    /// The detector in `path` on the engine `kind` names ([`BackendKind::open`]).
    pub fn load(path: &Path, kind: BackendKind) -> Result<BlazeFace, VisionError> {
        BlazeFace::named(kind.open(path)?, path)
    }

    /// [`BlazeFace::new`] with its errors naming `path`, the file `net` was loaded from.
    pub fn named(net: Box<dyn Backend>, path: &Path) -> Result<BlazeFace, VisionError> {
        BlazeFace::new(net).map_err(|e| VisionError::Unfit { path: path.into(), what: e.to_string() })
    }

    pub fn name(&self) -> String {
        self.net.name()
    }

    /// Faces in `frame`, boxes and keypoints in frame pixels, best first.
    pub fn detect(&mut self, frame: &RgbFrame) -> Result<&[Detection], VisionError> {
        let lb = Decoder::input(frame, &mut self.input);
        self.net.run(&self.input, &mut self.outputs)?;
        Ok(self.decoder.faces(&self.outputs, &lb)?)
    }

    /// Number of anchors the net must score.
    pub fn anchors(&self) -> usize {
        self.decoder.anchors()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A net that returns fixed outputs: one face at the input's centre.
    struct Fixed;

    impl Backend for Fixed {
        fn name(&self) -> String {
            "fixed".into()
        }
        fn input_shape(&self) -> [usize; 3] {
            [3, INPUT, INPUT]
        }
        fn input_map(&self) -> &[(f32, f32)] {
            &[(1.0 / 127.5, -1.0)]
        }
        fn run(
            &mut self,
            input: &[f32],
            outputs: &mut Vec<Vec<f32>>,
        ) -> Result<(), crate::backends::BackendError> {
            assert_eq!(input.len(), 3 * INPUT * INPUT);
            let coords = fer_core::vision::decode::COORDS;
            let mut reg = vec![0.0; 896 * coords];
            let mut sc = vec![-10.0; 896];
            // Anchor of 16x16 cell (8, 8) has centre (8.5/16, 8.5/16); move it to 0.5.
            let a = (8 * 16 + 8) * 2;
            reg[a * coords..][..4].copy_from_slice(&[-4.0, -4.0, 32.0, 32.0]);
            sc[a] = 3.0;
            *outputs = vec![sc, reg];
            Ok(())
        }
    }

    #[test]
    fn detections_come_back_in_frame_pixels() {
        // 200 wide, 100 high: letterboxed into a 200-pixel square with 50-pixel bars.
        let px = vec![128u8; 200 * 100 * 3];
        let frame = RgbFrame::new(200, 100, &px).unwrap();
        let mut bf = BlazeFace::new(Box::new(Fixed)).unwrap();
        let d = bf.detect(&frame).unwrap().to_vec();
        assert_eq!(d.len(), 1);
        // Centre of the square = centre of the frame; 32/128 of 200 px = 50 px.
        assert!((d[0].cx - 100.0).abs() < 1e-3 && (d[0].cy - 50.0).abs() < 1e-3, "{d:?}");
        assert!((d[0].w - 50.0).abs() < 1e-3 && (d[0].h - 50.0).abs() < 1e-3);
    }
}
