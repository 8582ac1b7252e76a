//! What the web tests share: paths, the images they run, and the native pipeline they
//! compare with (`fer predict`'s: the int8 detector and `edge` on the own engine).
#![allow(dead_code)] // each test file uses its part

use std::path::{Path, PathBuf};

use fer_runtime::backends::BackendKind;
use fer_runtime::vision::{BlazeFace, Classifier, Pipeline};

pub fn web() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The demo image, then the nine photos of `../shared/data/photos` when present.
pub fn images() -> Vec<PathBuf> {
    let mut v = vec![web().join("../demo/astronaut.jpg")];
    if let Some(data) = fer_runtime::testdata::shared_data() {
        let mut photos: Vec<PathBuf> =
            std::fs::read_dir(data.join("photos")).unwrap().map(|e| e.unwrap().path()).collect();
        photos.sort();
        v.extend(photos);
    }
    v
}

/// The native app's pipeline on the shipped int8 models.
pub fn native_pipeline() -> Pipeline {
    let models = web().join("../models");
    let detector = BlazeFace::load(&models.join("blazeface_short.fer"), BackendKind::Own).unwrap();
    let classifier = Classifier::load(&models.join("edge.fer"), BackendKind::Own).unwrap();
    Pipeline::new(Some(detector), classifier)
}
