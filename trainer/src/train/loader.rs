//! Batches for training and evaluation, streamed from disk.
//!
//! Pixels are decoded in parallel (rayon) on a background thread that stays two batches
//! ahead of the model, through a bounded cache of decoded images. The cache fills up to its
//! budget and then stops admitting: epochs read every image in a new order, and for that
//! pattern "keep the first N" hits as often as any eviction policy and costs no churn.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, RwLock};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::augment::{Augment, augment_into, to_input};
use crate::data::{Dataset, ImageSpec};

/// Decoded images kept in memory, up to a byte budget.
pub struct PixelCache {
    capacity: usize,
    images: RwLock<HashMap<usize, Arc<[u8]>>>,
}

impl PixelCache {
    pub fn new(budget_bytes: usize, spec: ImageSpec) -> PixelCache {
        PixelCache { capacity: budget_bytes / spec.len().max(1), images: RwLock::new(HashMap::new()) }
    }

    pub fn len(&self) -> usize {
        self.images.read().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, ds: &Dataset, index: usize, spec: ImageSpec) -> Result<Arc<[u8]>, String> {
        if let Some(px) = self.images.read().ok().and_then(|m| m.get(&index).cloned()) {
            return Ok(px);
        }
        let px: Arc<[u8]> = ds
            .load_pixels(index, spec)
            .map_err(|e| {
                format!(
                    "{}: {e} (did the dataset change during training?)",
                    ds.sample_path(&ds.samples[index])
                )
            })?
            .into();
        if let Ok(mut m) = self.images.write()
            && m.len() < self.capacity
        {
            m.insert(index, px.clone());
        }
        Ok(px)
    }
}

/// One batch, ready to become tensors.
#[derive(Clone, Debug)]
pub struct Batch {
    /// `[len, C, H, W]`, in [0, 1].
    pub images: Vec<f32>,
    pub targets: Vec<i64>,
    /// Per-image loss weights (1.0 unless balancing by loss weights).
    pub weights: Vec<f32>,
    /// Each image's index in the dataset, and whether augmentation mirrored it (the keys of
    /// its distillation target).
    pub indices: Vec<usize>,
    pub mirrored: Vec<bool>,
    pub len: usize,
}

/// An image to put in a batch: dataset index and loss weight.
pub type Item = (usize, f32);

/// Mixes a seed with a counter (SplitMix64), so every image of every epoch has its own
/// augmentation stream whatever thread draws it.
pub fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Clone)]
pub struct Loader {
    pub ds: Arc<Dataset>,
    pub cache: Arc<PixelCache>,
    pub spec: ImageSpec,
}

impl Loader {
    pub fn new(ds: Arc<Dataset>, spec: ImageSpec, cache_bytes: usize) -> Loader {
        Loader { ds, cache: Arc::new(PixelCache::new(cache_bytes, spec)), spec }
    }

    /// Builds one batch; `aug` with `seed` augments image `k` of `items` with stream
    /// `mix(seed, first + k)`.
    pub fn batch(
        &self,
        items: &[Item],
        aug: Option<&Augment>,
        seed: u64,
        first: usize,
    ) -> Result<Batch, String> {
        let per = self.spec.len();
        let mut images = vec![0f32; items.len() * per];
        let mut mirrored = vec![false; items.len()];
        images.par_chunks_mut(per).zip(&mut mirrored).zip(items.par_iter().enumerate()).try_for_each(
            |((out, mirrored), (k, &(idx, _)))| {
                let px = self.cache.get(&self.ds, idx, self.spec)?;
                *mirrored = match aug {
                    Some(a) => {
                        let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, (first + k) as u64));
                        augment_into(&px, self.spec, a, &mut rng, out)
                    }
                    None => {
                        to_input(&px, self.spec, out);
                        false
                    }
                };
                Ok::<(), String>(())
            },
        )?;
        Ok(Batch {
            images,
            targets: items.iter().map(|&(i, _)| self.ds.samples[i].class as i64).collect(),
            weights: items.iter().map(|&(_, w)| w).collect(),
            indices: items.iter().map(|&(i, _)| i).collect(),
            mirrored,
            len: items.len(),
        })
    }

    /// Streams `items` in batches of `batch_size`, prepared on a background thread.
    pub fn stream(
        &self,
        items: Vec<Item>,
        batch_size: usize,
        aug: Option<Augment>,
        seed: u64,
    ) -> Receiver<Result<Batch, String>> {
        let (tx, rx) = sync_channel(2);
        let this = self.clone();
        std::thread::spawn(move || {
            for (b, chunk) in items.chunks(batch_size.max(1)).enumerate() {
                let batch = this.batch(chunk, aug.as_ref(), seed, b * batch_size);
                let failed = batch.is_err();
                if tx.send(batch).is_err() || failed {
                    return;
                }
            }
        });
        rx
    }
}
