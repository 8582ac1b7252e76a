//! The data layer's hot path in training: bytes of a stored face -> model input.
//!
//! Run: `cargo bench --bench data_decode`. Uses real FER2013 and CK+ files from the
//! shared data folder when present, else generated images.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fer_edge::fer_trainer::data::ImageSpec;
use fer_edge::fer_trainer::data::decode::{decode_image, from_gray48};
use fer_edge::fer_trainer::data::fer_csv::parse_pixels;
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma};

fn first_file(dir: std::path::PathBuf) -> Option<Vec<u8>> {
    let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    std::fs::read(entries.first()?).ok()
}

fn generated(format: ImageFormat) -> Vec<u8> {
    let img = DynamicImage::ImageLuma8(ImageBuffer::from_fn(48, 48, |x, y| Luma([(x * 5 + y * 3) as u8])));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn bench(c: &mut Criterion) {
    let shared = fer_edge::shared_data();
    let jpg = shared
        .as_ref()
        .and_then(|d| first_file(d.join("fer2013/train/happy")))
        .unwrap_or_else(|| generated(ImageFormat::Jpeg));
    let png = shared
        .as_ref()
        .and_then(|d| first_file(d.join("ckplus48/happy")))
        .unwrap_or_else(|| generated(ImageFormat::Png));
    let row: String = (0..48 * 48).map(|i| ((i * 7) % 256).to_string()).collect::<Vec<_>>().join(" ");

    let mut g = c.benchmark_group("decode_to_48x48_gray");
    g.throughput(Throughput::Elements(1));
    g.bench_function("fer2013_jpeg", |b| b.iter(|| decode_image(&jpg, ImageSpec::FER48_GRAY).unwrap()));
    g.bench_function("ckplus_png", |b| b.iter(|| decode_image(&png, ImageSpec::FER48_GRAY).unwrap()));
    g.bench_function("fer2013_csv_row", |b| {
        b.iter(|| from_gray48(&parse_pixels(row.as_bytes()).unwrap(), ImageSpec::FER48_GRAY))
    });
    let rgb96 = ImageSpec { width: 96, height: 96, channels: 3 };
    g.bench_function("fer2013_jpeg_to_96x96_rgb", |b| b.iter(|| decode_image(&jpg, rgb96).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
