//! Small generated datasets for the trainer's tests: no test needs ../shared.
#![allow(dead_code)]

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgb};

/// Encodes a `w`x`h` test image (gray or RGB) whose pixels depend on `seed`.
pub fn image_bytes(w: u32, h: u32, rgb: bool, format: ImageFormat, seed: u32) -> Vec<u8> {
    let img = if rgb {
        DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| {
            Rgb([(x * 3 + seed) as u8, (y * 5 + seed) as u8, (x + y) as u8])
        }))
    } else {
        DynamicImage::ImageLuma8(ImageBuffer::from_fn(w, h, |x, y| Luma([(x * 7 + y * 3 + seed * 11) as u8])))
    };
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

pub fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A CK+-like tree: `root/<class>/S<subject>_<seq>_<frame>.png`, `per_cell` images for each
/// (subject, class) pair listed in `cells`.
pub fn ckplus_tree(root: &Path, cells: &[(u32, &str)], per_cell: u32) {
    for &(subject, class) in cells {
        for f in 0..per_cell {
            let name = format!("S{subject:03}_001_{:08}.png", f + 1);
            write(&root.join(class).join(name), &image_bytes(48, 48, false, ImageFormat::Png, subject + f));
        }
    }
}

/// A tree with `subjects` subjects, each showing every class in `classes` `per_cell` times.
pub fn balanced_ckplus(root: &Path, subjects: u32, classes: &[&str], per_cell: u32) {
    let cells: Vec<(u32, &str)> = (1..=subjects).flat_map(|s| classes.iter().map(move |&c| (s, c))).collect();
    ckplus_tree(root, &cells, per_cell);
}

/// A FER2013 pixels field.
pub fn pixels(seed: u32) -> String {
    (0..48 * 48).map(|i| ((i * 13 + seed * 7) % 256).to_string()).collect::<Vec<_>>().join(" ")
}

/// A FER2013 CSV with the given (emotion, usage) rows; returns its path.
pub fn fer_csv(dir: &Path, rows: &[(&str, &str)]) -> PathBuf {
    let mut s = String::from("emotion,pixels,Usage\n");
    for (i, (emotion, usage)) in rows.iter().enumerate() {
        s.push_str(&format!("{emotion},{},{usage}\n", pixels(i as u32)));
    }
    let p = dir.join("fer2013.csv");
    write(&p, s.as_bytes());
    p
}

/// Every file under `root` with its bytes, sorted: to show a command modified nothing.
pub fn snapshot(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() {
            out.push((e.path().to_path_buf(), std::fs::read(e.path()).unwrap()));
        }
    }
    out
}

/// `subjects` subjects x 4 classes x 3 images; each class has its own stripe pattern so a
/// model can learn it in a few epochs.
pub fn striped_tree(root: &Path, subjects: u32) {
    let classes = ["angry", "happy", "sad", "surprise"];
    for s in 1..=subjects {
        for (c, class) in classes.iter().enumerate() {
            for f in 0..3u32 {
                let img = ImageBuffer::from_fn(16, 16, |x, y| {
                    let stripe = match c {
                        0 => x / 2 % 2,
                        1 => y / 2 % 2,
                        2 => (x + y) / 3 % 2,
                        _ => u32::from(x < 8),
                    };
                    let noise = (x * 7 + y * 13 + s * 31 + f * 17) % 40;
                    Luma([(stripe * 180 + noise) as u8])
                });
                let mut bytes = std::io::Cursor::new(Vec::new());
                DynamicImage::ImageLuma8(img).write_to(&mut bytes, ImageFormat::Png).unwrap();
                let name = format!("S{s:03}_001_{:08}.png", f + 1);
                write(&root.join(class).join(name), &bytes.into_inner());
            }
        }
    }
}
