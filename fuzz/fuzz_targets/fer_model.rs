//! Any bytes through the `.fer` loader, and whatever loads through the engine: no panic,
//! no out-of-bounds access (AddressSanitizer), no hang.
//!
//! The structural checks are fuzzed without the checksum (a random mutation never has a
//! valid CRC, which would stop the fuzzer at the first check); the checked path runs too.
#![no_main]

use fer_core::engine::Engine;
use fer_core::format::Model;
use fer_core::kernels;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The loader needs 16-byte aligned bytes, as a model in flash or an aligned buffer is.
    let mut words = vec![0u128; data.len().div_ceil(16)];
    // SAFETY: the words own at least data.len() bytes.
    let buf = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, data.len()) };
    buf.copy_from_slice(data);
    let _ = Model::new(buf);
    if let Ok(model) = Model::new_unchecked_crc(buf) {
        // Bound the arena so a huge declared size is not an out-of-memory "crash".
        if model.header.arena_size > 1 << 22 {
            return;
        }
        let mut arena = vec![0u8; model.header.arena_size];
        let sets: [&'static dyn kernels::Kernels; 2] = [&kernels::reference::Reference, kernels::best()];
        for k in sets {
            let engine = Engine::new(model, k);
            let _ = engine.run(&mut arena);
            let mut out = vec![0f32; engine.output().len()];
            engine.output_f32(&arena, &mut out);
        }
    }
});
