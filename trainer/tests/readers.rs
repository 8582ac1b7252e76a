//! Every reader on generated data, good and bad.

mod common;

use common::*;
use fer_trainer::data::DataError;
use fer_trainer::data::source::detect;
use fer_trainer::data::subject::SubjectPattern;
use fer_trainer::data::{Format, ImageSource, ImageSpec, LoadOptions, Usage, load};
use image::ImageFormat;

fn opts() -> LoadOptions {
    LoadOptions::default()
}

fn reasons(ds: &fer_trainer::data::Dataset) -> Vec<String> {
    ds.skipped.iter().map(|s| format!("{} => {}", s.path, s.reason)).collect()
}

#[test]
fn class_folders_any_size_gray_or_rgb_jpg_or_png() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(&r.join("happy/a.jpg"), &image_bytes(48, 48, false, ImageFormat::Jpeg, 1));
    write(&r.join("happy/b.PNG"), &image_bytes(100, 80, true, ImageFormat::Png, 2));
    write(&r.join("anger/c.jpeg"), &image_bytes(30, 30, true, ImageFormat::Jpeg, 3));
    write(&r.join("sadness/nested/deeper/d.png"), &image_bytes(48, 48, false, ImageFormat::Png, 4));
    write(&r.join("happy/notes.txt"), b"not an image");
    write(&r.join("README.md"), b"top-level file");

    let ds = load(r, &opts()).unwrap();
    assert_eq!(ds.format, Format::ClassFolders);
    assert!(ds.skipped.is_empty(), "{:?}", reasons(&ds));
    // Sorted: anger (c), happy (a, b), sadness (d).
    let classes: Vec<u8> = ds.samples.iter().map(|s| s.class).collect();
    assert_eq!(classes, vec![0, 3, 3, 4]);
    assert_eq!(ds.ignored_files.get("txt"), Some(&1));
    assert_eq!(ds.ignored_files.get("md"), Some(&1));
    let stats = ds.image_stats.clone().unwrap();
    assert_eq!(stats.sizes.get("48x48"), Some(&2));
    assert_eq!(stats.sizes.get("100x80"), Some(&1));
    for i in 0..ds.samples.len() {
        assert_eq!(ds.load_pixels(i, ImageSpec::FER48_GRAY).unwrap().len(), 48 * 48);
        let rgb = ImageSpec { width: 64, height: 64, channels: 3 };
        assert_eq!(ds.load_pixels(i, rgb).unwrap().len(), 64 * 64 * 3);
    }
}

#[test]
fn bad_images_unknown_and_empty_class_folders_are_skipped_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(&r.join("happy/good.png"), &image_bytes(48, 48, false, ImageFormat::Png, 1));
    let jpg = image_bytes(48, 48, false, ImageFormat::Jpeg, 2);
    write(&r.join("happy/truncated.jpg"), &jpg[..jpg.len() / 2]);
    let png = image_bytes(48, 48, false, ImageFormat::Png, 3);
    write(&r.join("happy/truncated.png"), &png[..png.len() - 20]);
    write(&r.join("happy/garbage.jpg"), b"\x00\x01\x02 definitely not a jpeg");
    write(&r.join("happy/empty.png"), b"");
    std::os::unix::fs::symlink(r.join("missing.png"), r.join("happy/dangling.png")).unwrap();
    std::fs::create_dir_all(r.join("fear")).unwrap();
    write(&r.join("bored/x.png"), &image_bytes(48, 48, false, ImageFormat::Png, 4));

    let ds = load(r, &opts()).unwrap();
    assert_eq!(ds.samples.len(), 1, "{:?}", reasons(&ds));
    let why = |name: &str| {
        ds.skipped
            .iter()
            .find(|s| s.path.ends_with(name))
            .unwrap_or_else(|| panic!("{name} not skipped: {:?}", reasons(&ds)))
            .reason
            .clone()
    };
    assert!(why("truncated.jpg").contains("truncated JPEG"));
    assert!(why("truncated.png").contains("corrupt Png"));
    assert!(why("garbage.jpg").contains("not a JPEG, PNG or BMP"));
    assert_eq!(why("empty.png"), "empty file");
    assert!(why("dangling.png").contains("cannot read"));
    assert_eq!(why("fear"), "empty class folder");
    assert!(why("bored").contains("not a known class") && why("bored").contains("1 image(s) left out"));
    assert_eq!(ds.skipped.len(), 7);

    let strict = LoadOptions { strict: true, ..opts() };
    match load(r, &strict) {
        Err(DataError::Strict { skipped }) => assert_eq!(skipped.len(), 7),
        other => panic!("expected a strict failure, got {other:?}"),
    }
}

#[test]
fn split_folders_give_usage_and_ckplus_names_give_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    ckplus_tree(&r.join("train"), &[(10, "anger"), (11, "happy")], 2);
    ckplus_tree(&r.join("public_test"), &[(12, "happy")], 3);
    write(&r.join("labels.txt"), b"ignored");
    let ds = load(r, &opts()).unwrap();
    assert_eq!(ds.format, Format::SplitFolders);
    assert_eq!(ds.samples.len(), 7);
    let usage = |u| ds.samples.iter().filter(|s| s.usage == Some(u)).count();
    assert_eq!((usage(Usage::Training), usage(Usage::PublicTest)), (4, 3));
    let mut subjects = ds.subjects.clone();
    subjects.sort();
    assert_eq!(subjects, vec!["S010", "S011", "S012"]);
}

#[test]
fn custom_subject_regex_on_folders() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for (p, s) in [("happy/ann/1.png", 1), ("happy/bob/2.png", 2), ("sad/ann/3.png", 3)] {
        write(&r.join(p), &image_bytes(48, 48, false, ImageFormat::Png, s));
    }
    let o = LoadOptions { subject_pattern: SubjectPattern::new(r"^[^/]+/([^/]+)/").unwrap(), ..opts() };
    let ds = load(r, &o).unwrap();
    let names: Vec<&str> = ds.samples.iter().map(|s| ds.subject_name(s).unwrap()).collect();
    assert_eq!(names, vec!["ann", "bob", "ann"]);
}

#[test]
fn fer_csv_rows_are_checked_and_bad_rows_name_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = String::from("emotion,pixels,Usage\n");
    s.push_str(&format!("3,{},Training\n", pixels(1))); // line 2: good
    s.push_str(&format!("9,{},Training\n", pixels(2))); // line 3: bad emotion
    s.push_str("4,1 2 3,PublicTest\n"); // line 4: 3 pixels
    s.push_str(&format!("0,{},Sometimes\n", pixels(3))); // line 5: bad usage
    s.push_str(&format!("5,{} 300,PrivateTest\n", &pixels(4)[..pixels(4).rfind(' ').unwrap()])); // line 6
    s.push_str(&format!("6,\"{}\",PrivateTest\r\n", pixels(5))); // line 7: quoted, CRLF: good
    s.push_str("2\n"); // line 8: one field
    s.push_str(&format!("1,{},PublicTest", pixels(6))); // line 9: good, no final newline
    let p = dir.path().join("fer.csv");
    write(&p, s.as_bytes());

    assert_eq!(detect(&p).unwrap(), Format::Fer2013Csv);
    let ds = load(&p, &opts()).unwrap();
    assert_eq!(ds.samples.iter().map(|s| s.class).collect::<Vec<_>>(), vec![3, 6, 1]);
    let lines: Vec<String> =
        ds.skipped.iter().map(|s| s.path.rsplit(':').next().unwrap().to_string()).collect();
    assert_eq!(lines, vec!["3", "4", "5", "6", "8"], "{:?}", reasons(&ds));
    assert!(ds.skipped[0].reason.contains("emotion \"9\""));
    assert!(ds.skipped[1].reason.contains("3 pixel values, expected 2304"));
    assert!(ds.skipped[2].reason.contains("Usage \"Sometimes\""));
    assert!(ds.skipped[3].reason.contains("\"300\" at position 2304"));
    assert!(ds.skipped[4].reason.contains("no `pixels` column"));
    // Pixels come back exactly, from the row's byte range.
    let expect =
        |seed| common::pixels(seed).split(' ').map(|v| v.parse::<u8>().unwrap()).collect::<Vec<u8>>();
    assert_eq!(ds.load_pixels(0, ImageSpec::FER48_GRAY).unwrap(), expect(1));
    assert_eq!(ds.load_pixels(1, ImageSpec::FER48_GRAY).unwrap(), expect(5));
    assert_eq!(ds.load_pixels(2, ImageSpec::FER48_GRAY).unwrap(), expect(6));
    assert_eq!(ds.samples[1].usage, Some(Usage::PrivateTest));
    assert!(matches!(ds.samples[2].source, ImageSource::CsvRow { line: 9, .. }));
}

#[test]
fn csv_without_fer_or_manifest_columns_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.csv");
    write(&p, b"a,b\n1,2\n");
    let e = load(&p, &opts()).unwrap_err().to_string();
    assert!(e.contains("x.csv") && e.contains("not a dataset") && e.contains("\"a,b\""), "{e}");
    let e = load(&dir.path().join("nope"), &opts()).unwrap_err().to_string();
    assert!(e.contains("nope") && e.contains("No such file"), "{e}");
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = load(&empty, &opts()).unwrap_err().to_string();
    assert!(e.contains("no class folders"), "{e}");
}

#[test]
fn manifest_relative_absolute_index_labels_subjects_and_csv_rows() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(&r.join("imgs/a.png"), &image_bytes(48, 48, false, ImageFormat::Png, 1));
    write(&r.join("imgs/b.jpg"), &image_bytes(64, 64, true, ImageFormat::Jpeg, 2));
    fer_csv(r, &[("3", "Training"), ("5", "PublicTest")]);
    let abs_b = r.join("imgs/b.jpg");
    let text = format!(
        "path,label,subject,weight\n\
         imgs/a.png,Anger,p1,1.0\n\
         {},4,p2,\n\
         imgs/a.png,bored,p1,\n\
         imgs/missing.png,happy,p3,\n\
         fer2013.csv#L3,surprise,,\n\
         fer2013.csv#L99,surprise,,\n\
         ,happy,p1,\n",
        abs_b.display()
    );
    let m = r.join("list.csv");
    write(&m, text.as_bytes());
    assert_eq!(detect(&m).unwrap(), Format::Manifest);
    let ds = load(&m, &opts()).unwrap();
    assert_eq!(ds.samples.iter().map(|s| s.class).collect::<Vec<_>>(), vec![0, 4, 5], "{:?}", reasons(&ds));
    assert_eq!(ds.subject_name(&ds.samples[1]), Some("p2"));
    assert!(matches!(ds.samples[2].source, ImageSource::CsvRow { line: 3, .. }));
    assert_eq!(ds.load_pixels(2, ImageSpec::FER48_GRAY).unwrap().len(), 48 * 48);
    let got: Vec<(String, String)> = ds
        .skipped
        .iter()
        .map(|s| (s.path.rsplit(':').next().unwrap().to_string(), s.reason.clone()))
        .collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(got.iter().any(|(l, r)| l == "4" && r.contains("unknown label \"bored\"")));
    assert!(got.iter().any(|(l, r)| l == "7" && r.contains("no such valid row")));
    assert!(got.iter().any(|(l, r)| l == "8" && r.contains("empty `path`")));
    assert!(got.iter().any(|(_, r)| r.contains("cannot read")), "missing.png: {got:?}");
}
