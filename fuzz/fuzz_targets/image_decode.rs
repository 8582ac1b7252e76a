//! Any bytes as an image file given to `fer predict`, `eval`, `quantize` or a replay
//! (`preprocess::decode_image`: jpg, png or bmp told by content, within the decoders'
//! limits), then made into a model input: no panic, no allocation beyond the limits.
#![no_main]

use fer_runtime::preprocess::{decode_image, image_input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(img) = decode_image(data) else { return };
    let rgb = img.clone().into_rgb8();
    assert_eq!(rgb.as_raw().len(), rgb.width() as usize * rgb.height() as usize * 3);
    let _ = image_input(img, [1, 48, 48]);
});
