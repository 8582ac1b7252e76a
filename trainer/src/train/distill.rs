//! Knowledge distillation (Hinton et al. 2015): float ONNX teachers' softened probabilities
//! for every image of a run, and the KL term they add to the student's loss.
//!
//! Each teacher runs once over the data, on every image plain and mirrored (the mirrored
//! answer is the target when augmentation flips the image). Its logits are cached in a file
//! named by the teacher's bytes and the dataset's content (pixels, classes, order), so a
//! resumed or repeated run reuses them, and a changed dataset or teacher gets new ones.

use std::path::{Path, PathBuf};

use fer_runtime::backends::{Backend, BackendError, BackendKind, Ort};
use fer_runtime::fsutil::write_atomic;
use serde::{Deserialize, Serialize};

use super::loader::{Item, Loader};
use super::metrics::Confusion;
use crate::data::ALL_CLASSES;

/// `[distill]` of a recipe, or `--teacher` and friends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistillConfig {
    /// Float ONNX classifiers to learn from; several form an ensemble (their softened
    /// probabilities are averaged).
    pub teachers: Vec<PathBuf>,
    /// Softmax temperature of the KL term, for teacher and student alike.
    pub temperature: f32,
    /// Weight of the hard-label cross-entropy; the KL term gets `1 - alpha`, times T².
    pub alpha: f32,
    /// Folder of the teachers' cached logits [default: ~/.cache/fer-edge/teachers].
    pub cache: Option<PathBuf>,
}

impl Default for DistillConfig {
    fn default() -> Self {
        DistillConfig { teachers: Vec::new(), temperature: 4.0, alpha: 0.5, cache: None }
    }
}

impl DistillConfig {
    pub fn is_on(&self) -> bool {
        !self.teachers.is_empty()
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(format!("distill.temperature must be above 0, got {}", self.temperature));
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(format!("distill.alpha must be between 0 and 1, got {}", self.alpha));
        }
        Ok(())
    }

    fn cache_dir(&self) -> PathBuf {
        self.cache.clone().unwrap_or_else(|| {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
            home.join(".cache/fer-edge/teachers")
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TeacherError {
    /// The model cannot teach this run: another input, class count or label order.
    #[error("teacher {path}: {what}")]
    Unfit { path: PathBuf, what: String },
    #[error("teacher {path}: {source}")]
    Run { path: PathBuf, source: BackendError },
    #[error("teacher cache {path}: {source}")]
    Cache { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Data(String),
}

/// One teacher's logits for every image of a dataset: `[image][plain, mirrored][class]`.
#[derive(Clone, Debug, PartialEq)]
pub struct TeacherLogits {
    pub classes: usize,
    pub logits: Vec<f32>,
}

impl TeacherLogits {
    fn view(&self, image: usize, mirrored: bool) -> &[f32] {
        let at = (2 * image + mirrored as usize) * self.classes;
        &self.logits[at..at + self.classes]
    }
}

const CACHE_MAGIC: &[u8; 8] = b"FERKD\x01\0\0";
const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_XZ);

/// A loaded teacher, checked against the run.
struct Teacher {
    path: PathBuf,
    backend: Box<dyn Backend>,
    /// The model ends in a softmax (as Keras exports often do): its outputs are turned back
    /// into logits (log-probabilities) before the temperature applies.
    ends_in_softmax: bool,
    /// CRC-64 of the file's bytes, half of the cache key.
    file_key: u64,
}

impl Teacher {
    /// Opens `path` (ONNX Runtime when its library loads, else tract when built in, else the
    /// own f32 evaluator) and refuses a model that does not fit
    /// a run of `spec` images and `classes` classes in [`ALL_CLASSES`] order.
    fn open(path: &Path, spec: crate::data::ImageSpec, classes: usize) -> Result<Teacher, TeacherError> {
        let unfit = |what: String| TeacherError::Unfit { path: path.into(), what };
        let bytes = std::fs::read(path).map_err(|e| unfit(format!("cannot read it: {e}")))?;
        if fer_runtime::backends::is_fer(path) {
            return Err(unfit("a teacher is a float ONNX model; an int8 .fer file cannot teach".into()));
        }
        // Every teacher runs once per image and mirror: the fastest engine found.
        let kind = if Ort::available().is_ok() { BackendKind::Ort } else { BackendKind::Auto };
        let mut backend =
            kind.open(path).map_err(|source| TeacherError::Run { path: path.into(), source })?;
        let want = [spec.channels as usize, spec.height as usize, spec.width as usize];
        if backend.input_shape() != want {
            return Err(unfit(format!(
                "it takes [C, H, W] = {:?}, and this run feeds {want:?}",
                backend.input_shape()
            )));
        }
        let probe = backend
            .infer(&vec![0.5; want.iter().product()])
            .map_err(|source| TeacherError::Run { path: path.into(), source })?;
        if probe.len() != classes {
            return Err(unfit(format!(
                "it gives {} outputs, and this run has {classes} classes ({})",
                probe.len(),
                ALL_CLASSES[..classes].join(", ")
            )));
        }
        let labels = fer_runtime::onnx::read_onnx(&bytes)
            .ok()
            .and_then(|g| g.metadata("fer.labels").map(str::to_string))
            .and_then(|s| serde_json::from_str::<Vec<String>>(&s).ok());
        if let Some(labels) = labels
            && labels.iter().map(String::as_str).ne(ALL_CLASSES[..classes].iter().copied())
        {
            return Err(unfit(format!(
                "its classes (fer.labels) are [{}], and this run's are [{}]: the order must match",
                labels.join(", "),
                ALL_CLASSES[..classes].join(", ")
            )));
        }
        let ends_in_softmax =
            probe.iter().all(|&p| p >= 0.0) && (probe.iter().sum::<f32>() - 1.0).abs() < 1e-3;
        Ok(Teacher { path: path.into(), backend, ends_in_softmax, file_key: CRC64.checksum(&bytes) })
    }

    fn logits(&mut self, image: &[f32]) -> Result<Vec<f32>, TeacherError> {
        let mut out = self
            .backend
            .infer(image)
            .map_err(|source| TeacherError::Run { path: self.path.clone(), source })?;
        if self.ends_in_softmax {
            out.iter_mut().for_each(|p| *p = p.max(1e-12).ln());
        }
        Ok(out)
    }
}

/// Batches of every image of `loader`'s dataset, in order, as the model takes them
/// (no augmentation).
fn for_each_image(
    loader: &Loader,
    mut f: impl FnMut(&[f32], u8) -> Result<(), TeacherError>,
) -> Result<(), TeacherError> {
    let n = loader.ds.samples.len();
    let per = loader.spec.len();
    for start in (0..n).step_by(512) {
        let items: Vec<Item> = (start..(start + 512).min(n)).map(|i| (i, 1.0)).collect();
        let batch = loader.batch(&items, None, 0, 0).map_err(TeacherError::Data)?;
        for (k, image) in batch.images.chunks_exact(per).enumerate() {
            f(image, batch.targets[k] as u8)?;
        }
    }
    Ok(())
}

/// The dataset's content key: CRC-64 of the input size, and every image's class and
/// pixels in order.
pub fn dataset_key(loader: &Loader) -> Result<u64, TeacherError> {
    let mut digest = CRC64.digest();
    let s = loader.spec;
    digest.update(
        &[s.width.to_le_bytes(), s.height.to_le_bytes(), u32::from(s.channels).to_le_bytes()].concat(),
    );
    for_each_image(loader, |image, class| {
        digest.update(&[class]);
        image.iter().for_each(|v| digest.update(&v.to_le_bytes()));
        Ok(())
    })?;
    Ok(digest.finalize())
}

fn cache_file(dir: &Path, file_key: u64, data_key: u64) -> PathBuf {
    dir.join(format!("{file_key:016x}-{data_key:016x}.logits"))
}

/// The cached logits, when the file is whole and holds `images` x `classes`.
fn read_cache(path: &Path, images: usize, classes: usize) -> Option<TeacherLogits> {
    let bytes = std::fs::read(path).ok()?;
    let body = bytes.strip_prefix(CACHE_MAGIC.as_slice())?;
    let (head, data) = body.split_at_checked(8)?;
    let n = u32::from_le_bytes(head[..4].try_into().ok()?) as usize;
    let c = u32::from_le_bytes(head[4..].try_into().ok()?) as usize;
    if n != images || c != classes || data.len() != n * 2 * c * 4 {
        return None;
    }
    let logits = data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    Some(TeacherLogits { classes, logits })
}

fn write_cache(path: &Path, t: &TeacherLogits) -> Result<(), TeacherError> {
    let images = t.logits.len() / (2 * t.classes);
    let mut bytes = CACHE_MAGIC.to_vec();
    bytes.extend((images as u32).to_le_bytes());
    bytes.extend((t.classes as u32).to_le_bytes());
    t.logits.iter().for_each(|v| bytes.extend(v.to_le_bytes()));
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .and_then(|_| write_atomic(path, &bytes))
        .map_err(|source| TeacherError::Cache { path: path.into(), source })
}

/// Every teacher's logits for every image of `loader`'s dataset: from the cache when it
/// matches the teacher and the dataset, else computed (and cached).
pub fn teacher_logits(
    cfg: &DistillConfig,
    loader: &Loader,
    classes: usize,
) -> Result<Vec<(PathBuf, TeacherLogits)>, TeacherError> {
    let data_key = dataset_key(loader)?;
    let images = loader.ds.samples.len();
    let mut all = Vec::new();
    for path in &cfg.teachers {
        let mut teacher = Teacher::open(path, loader.spec, classes)?;
        let file = cache_file(&cfg.cache_dir(), teacher.file_key, data_key);
        if let Some(cached) = read_cache(&file, images, classes) {
            all.push((path.clone(), cached));
            continue;
        }
        let started = std::time::Instant::now();
        let mut logits = Vec::with_capacity(images * 2 * classes);
        let mut mirrored = Vec::new();
        let width = loader.spec.width as usize;
        for_each_image(loader, |image, _| {
            logits.extend(teacher.logits(image)?);
            fer_runtime::vision::classify::mirror_into(image, width, &mut mirrored);
            logits.extend(teacher.logits(&mirrored)?);
            Ok(())
        })?;
        let t = TeacherLogits { classes, logits };
        write_cache(&file, &t)?;
        eprintln!(
            "teacher {}: {} images, plain and mirrored, in {:.0} s on {}; cached in {}",
            path.display(),
            images,
            started.elapsed().as_secs_f64(),
            teacher.backend.name(),
            file.display()
        );
        all.push((path.clone(), t));
    }
    Ok(all)
}

/// The targets of the KL term: per image and view, the teachers' probabilities at the
/// temperature, averaged over the teachers.
#[derive(Clone, Debug)]
pub struct SoftTargets {
    pub classes: usize,
    pub temperature: f32,
    /// Weight of the hard-label term.
    pub alpha: f32,
    probs: Vec<f32>,
    /// Per image and view, `sum p ln p` of those probabilities: the KL's constant part, so
    /// that the reported term is the divergence itself (0 when the student matches).
    neg_entropy: Vec<f32>,
}

impl SoftTargets {
    pub fn new(teachers: &[TeacherLogits], temperature: f32, alpha: f32) -> SoftTargets {
        let classes = teachers[0].classes;
        let views = teachers[0].logits.len() / classes;
        let mut probs = vec![0f32; views * classes];
        let mut soft = vec![0f32; classes];
        for t in teachers {
            for (v, out) in probs.chunks_exact_mut(classes).enumerate() {
                let scaled: Vec<f32> =
                    t.logits[v * classes..(v + 1) * classes].iter().map(|z| z / temperature).collect();
                fer_runtime::scores::softmax_into(&scaled, &mut soft);
                out.iter_mut().zip(&soft).for_each(|(o, p)| *o += p / teachers.len() as f32);
            }
        }
        let neg_entropy = probs
            .chunks_exact(classes)
            .map(|p| p.iter().filter(|&&q| q > 0.0).map(|&q| q * q.ln()).sum())
            .collect();
        SoftTargets { classes, temperature, alpha, probs, neg_entropy }
    }

    /// Dataset image `image`'s target, `mirrored` when augmentation flipped it, with its
    /// `sum p ln p`.
    pub fn target(&self, image: usize, mirrored: bool) -> (&[f32], f32) {
        let v = 2 * image + mirrored as usize;
        (&self.probs[v * self.classes..(v + 1) * self.classes], self.neg_entropy[v])
    }
}

/// A teacher's (or the ensemble's) scores on the run's validation and test images.
#[derive(Clone, Debug, Serialize)]
pub struct TeacherScore {
    /// The file, or `ensemble`.
    pub teacher: String,
    pub val_accuracy: f64,
    pub val_balanced_accuracy: f64,
    /// With the mirrored image's logits averaged in.
    pub val_accuracy_flip: f64,
    pub test_accuracy: Option<f64>,
    pub test_balanced_accuracy: Option<f64>,
}

/// `confusion` of `logits` (one teacher, or the mean of several) over `indices`.
fn confusion_of(
    logits: &[&TeacherLogits],
    loader: &Loader,
    indices: &[usize],
    classes: usize,
    flip: bool,
) -> Confusion {
    let mut c = Confusion::new(classes);
    let mut mean = vec![0f32; classes];
    for &i in indices {
        mean.iter_mut().for_each(|m| *m = 0.0);
        for t in logits {
            let views: &[bool] = if flip { &[false, true] } else { &[false] };
            for &m in views {
                mean.iter_mut().zip(t.view(i, m)).for_each(|(a, z)| *a += z);
            }
        }
        c.add(loader.ds.samples[i].class as usize, fer_runtime::scores::argmax(&mean));
    }
    c
}

/// Each teacher's scores, then the ensemble's when there are several.
pub fn teacher_scores(
    teachers: &[(PathBuf, TeacherLogits)],
    val: (&Loader, &[usize]),
    test: Option<(&Loader, &[usize], &[TeacherLogits])>,
    classes: usize,
) -> Vec<TeacherScore> {
    let mut rows: Vec<(String, Vec<usize>)> =
        (0..teachers.len()).map(|k| (teachers[k].0.display().to_string(), vec![k])).collect();
    if teachers.len() > 1 {
        rows.push(("ensemble".into(), (0..teachers.len()).collect()));
    }
    rows.into_iter()
        .map(|(name, members)| {
            let val_logits: Vec<&TeacherLogits> = members.iter().map(|&k| &teachers[k].1).collect();
            let plain = confusion_of(&val_logits, val.0, val.1, classes, false);
            let flip = confusion_of(&val_logits, val.0, val.1, classes, true);
            let test_c = test.map(|(loader, idx, logits)| {
                let members: Vec<&TeacherLogits> = members.iter().map(|&k| &logits[k]).collect();
                confusion_of(&members, loader, idx, classes, false)
            });
            TeacherScore {
                teacher: name,
                val_accuracy: plain.accuracy(),
                val_balanced_accuracy: plain.balanced_accuracy(),
                val_accuracy_flip: flip.accuracy(),
                test_accuracy: test_c.as_ref().map(Confusion::accuracy),
                test_balanced_accuracy: test_c.as_ref().map(Confusion::balanced_accuracy),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::prelude::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::data::ImageSpec;
    use crate::model::{ModelConfig, ModelKind};
    use crate::train::fit::{Objective, forward_loss};
    use crate::train::loader::Batch;

    const CLASSES: usize = 7;

    fn random_logits(images: usize, scale: f32, seed: u64) -> TeacherLogits {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let logits = (0..images * 2 * CLASSES).map(|_| rng.random_range(-scale..scale)).collect();
        TeacherLogits { classes: CLASSES, logits }
    }

    #[test]
    fn targets_are_the_teachers_mean_probabilities_per_view() {
        let a = random_logits(3, 4.0, 1);
        let b = random_logits(3, 4.0, 2);
        let t = 2.0;
        let soft = SoftTargets::new(&[a.clone(), b.clone()], t, 0.5);
        for image in 0..3 {
            for mirrored in [false, true] {
                let (p, neg_entropy) = soft.target(image, mirrored);
                let softmax_t = |l: &TeacherLogits| {
                    let z: Vec<f32> = l.view(image, mirrored).iter().map(|v| v / t).collect();
                    fer_runtime::vision::classify::softmax(&z)
                };
                let (pa, pb) = (softmax_t(&a), softmax_t(&b));
                for c in 0..CLASSES {
                    assert!((p[c] - (pa[c] + pb[c]) / 2.0).abs() < 1e-6);
                }
                assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
                let h: f32 = p.iter().map(|q| q * q.ln()).sum();
                assert!((neg_entropy - h).abs() < 1e-5);
            }
        }
        assert_ne!(soft.target(1, false).0, soft.target(1, true).0, "each view has its own target");
    }

    #[test]
    fn a_truncated_or_foreign_cache_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.logits");
        let t = random_logits(5, 3.0, 3);
        write_cache(&path, &t).unwrap();
        assert_eq!(read_cache(&path, 5, CLASSES), Some(t));
        assert_eq!(read_cache(&path, 6, CLASSES), None, "another number of images");
        assert_eq!(read_cache(&path, 5, 8), None, "another number of classes");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
        assert_eq!(read_cache(&path, 5, CLASSES), None, "truncated");
    }

    fn batch(n: usize, spec: ImageSpec, rng: &mut ChaCha8Rng) -> Batch {
        Batch {
            images: (0..n * spec.len()).map(|_| rng.random::<f32>()).collect(),
            targets: (0..n).map(|_| rng.random_range(0..CLASSES as i64)).collect(),
            weights: vec![1.0; n],
            indices: (0..n).collect(),
            mirrored: (0..n).map(|i| i % 2 == 1).collect(),
            len: n,
        }
    }

    /// Mean KL(target || student at T) of `model` on `batch`, computed here from the
    /// model's logits (not through the loss under test).
    fn kl_term(model: &crate::model::FerModel, batch: &Batch, soft: &SoftTargets, spec: ImageSpec) -> f32 {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::from_data(
            TensorData::new(batch.images.clone(), [batch.len, 1, spec.height as usize, spec.width as usize]),
            &device,
        );
        let logits: Vec<f32> = model.forward(x).into_data().iter::<f32>().collect();
        let mut total = 0.0;
        for (k, z) in logits.chunks_exact(CLASSES).enumerate() {
            let scaled: Vec<f32> = z.iter().map(|v| v / soft.temperature).collect();
            let q = fer_runtime::vision::classify::softmax(&scaled);
            let (p, _) = soft.target(batch.indices[k], batch.mirrored[k]);
            total += p.iter().zip(&q).map(|(p, q)| p * (p.ln() - q.max(1e-30).ln())).sum::<f32>();
        }
        total / batch.len as f32
    }

    #[test]
    fn the_distilled_loss_moves_the_student_toward_the_teacher() {
        // Labels and teacher disagree (both random): training on the KL term alone must
        // bring the student's outputs toward the teacher's, and far closer than training
        // on the labels does from the same start.
        let spec = ImageSpec { width: 16, height: 16, channels: 1 };
        let n = 24;
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let batch = batch(n, spec, &mut rng);
        let teacher = random_logits(n, 6.0, 12);
        let device = Device::flex().autodiff();
        let mut config = ModelConfig::builtin(ModelKind::Edge, spec, CLASSES, 0.1);
        config.dropout = Some(0.0);
        let trained = |alpha: f32| {
            device.seed(1);
            let mut model = config.init(&device);
            let soft = SoftTargets::new(std::slice::from_ref(&teacher), 2.0, alpha);
            let objective = Objective { spec, classes: CLASSES, smoothing: 0.0, soft: Some(&soft) };
            let mut optim = AdamConfig::new().init();
            for _ in 0..40 {
                let s = forward_loss(&model, &batch, 0..n, &objective, &device);
                let grads = GradientsParams::from_grads(s.objective.backward(), &model);
                model = optim.step(3e-3, model, grads);
            }
            kl_term(&model, &batch, &soft, spec)
        };
        device.seed(1);
        let soft = SoftTargets::new(std::slice::from_ref(&teacher), 2.0, 0.0);
        let before = kl_term(&config.init(&device), &batch, &soft, spec);
        let distilled = trained(0.0);
        let labels_only = trained(1.0);
        assert!(distilled < 0.5 * before, "KL term {before} -> {distilled}");
        assert!(distilled < 0.5 * labels_only, "distilled {distilled}, labels only {labels_only}");
    }

    #[test]
    fn a_teacher_with_another_label_order_is_refused_and_one_with_ours_is_taken() {
        let spec = ImageSpec { width: 16, height: 16, channels: 1 };
        let config = ModelConfig::builtin(ModelKind::Edge, spec, CLASSES, 0.1);
        let model = config.init(&Device::flex());
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, card: &crate::train::checkpoint::ModelCard| {
            let path = dir.path().join(name);
            std::fs::write(&path, crate::export::to_onnx(&model, card).unwrap()).unwrap();
            path
        };
        let mut card = crate::train::checkpoint::ModelCard::new(config.clone(), 1, Default::default());
        let ours = write("ours.onnx", &card);
        let teacher = Teacher::open(&ours, spec, CLASSES).unwrap();
        assert!(!teacher.ends_in_softmax, "an exported model ends in logits");
        card.labels.swap(2, 3);
        let swapped = write("swapped.onnx", &card);
        let err = Teacher::open(&swapped, spec, CLASSES).err().unwrap().to_string();
        assert!(err.contains("swapped.onnx") && err.contains("angry, disgust, happy, fear"), "{err}");
        assert!(err.contains("the order must match"), "{err}");
    }

    #[test]
    fn alpha_one_is_plain_cross_entropy() {
        let spec = ImageSpec { width: 16, height: 16, channels: 1 };
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let batch = batch(6, spec, &mut rng);
        let device = Device::flex().autodiff();
        device.seed(2);
        let mut config = ModelConfig::builtin(ModelKind::Edge, spec, CLASSES, 0.1);
        config.dropout = Some(0.0);
        let model = config.init(&device);
        let soft = SoftTargets::new(&[random_logits(6, 5.0, 5)], 3.0, 1.0);
        let with = Objective { spec, classes: CLASSES, smoothing: 0.0, soft: Some(&soft) };
        let plain = Objective::plain(spec, CLASSES);
        let a = forward_loss(&model, &batch, 0..6, &with, &device);
        let b = forward_loss(&model, &batch, 0..6, &plain, &device);
        let (a, b) = (a.objective.into_scalar::<f32>(), b.objective.into_scalar::<f32>());
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        assert!(
            (a as f64 * 6.0 - forward_loss(&model, &batch, 0..6, &plain, &device).plain_loss_sum).abs()
                < 1e-3
        );
    }
}
