mod common;

use losscape::data::idx::{parse_images, parse_labels, IdxError};
use losscape::data::mnist::load_pair;
use losscape::data::{bundled_dir, ImageShape, Split};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

fn idx_images(count: u32, rows: u32, cols: u32, payload: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for w in [0x803u32, count, rows, cols] {
        v.extend_from_slice(&w.to_be_bytes());
    }
    v.extend(std::iter::repeat_n(7u8, payload));
    v
}

fn idx_labels(count: u32, payload: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for w in [0x801u32, count] {
        v.extend_from_slice(&w.to_be_bytes());
    }
    v.extend(std::iter::repeat_n(3u8, payload));
    v
}

#[test]
fn a_valid_image_file_parses() {
    let images = parse_images(idx_images(2, 28, 28, 2 * 784), Path::new("x")).unwrap();
    assert_eq!((images.count, images.pixels.len(), images.shape), (2, 2 * 784, ImageShape::MNIST));
}

#[test]
fn truncated_file_is_reported_as_truncated() {
    let err = parse_images(idx_images(2, 28, 28, 784 + 100), Path::new("imgs")).unwrap_err();
    assert!(matches!(err, IdxError::Truncated { expected: 1584, found: 900, .. }), "{err}");
    assert!(err.to_string().contains("imgs") && err.to_string().contains("truncated"));
    let err = parse_labels(&[0, 0, 8], Path::new("lbl")).unwrap_err();
    assert!(matches!(err, IdxError::Truncated { .. }), "{err}");
}

#[test]
fn wrong_magic_is_reported() {
    let labels_as_images = idx_labels(1, 1);
    let err = parse_images(labels_as_images, Path::new("swapped")).unwrap_err();
    assert!(matches!(err, IdxError::Magic { found: 0x801, expected: 0x803, .. }), "{err}");
    let err = parse_labels(&idx_images(1, 28, 28, 784), Path::new("swapped")).unwrap_err();
    assert!(matches!(err, IdxError::Magic { found: 0x803, .. }), "{err}");
}

/// Issue 23: IDX images of any size, and any byte as a label (EMNIST's letters run to 26); whether
/// they fit a network is the network's check (tests/datasets.rs).
#[test]
fn images_of_any_size_and_labels_of_any_byte_parse_and_empty_dimensions_are_reported() {
    let images = parse_images(idx_images(1, 32, 32, 1024), Path::new("big")).unwrap();
    assert_eq!((images.count, images.shape), (1, ImageShape::new(1, 32, 32)));
    let err = parse_images(idx_images(1, 0, 28, 0), Path::new("flat")).unwrap_err();
    assert!(matches!(err, IdxError::Dimensions { rows: 0, cols: 28, .. }), "{err}");
    let mut labels = idx_labels(2, 2);
    labels[9] = 25;
    assert_eq!(parse_labels(&labels, Path::new("lbl")).unwrap(), vec![3, 25]);
    let err = parse_labels(&[idx_labels(1, 1), vec![0]].concat(), Path::new("lbl")).unwrap_err();
    assert!(matches!(err, IdxError::TrailingBytes { .. }), "{err}");
}

#[test]
fn image_and_label_count_mismatch_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lbl) = (dir.path().join("i"), dir.path().join("l"));
    std::fs::write(&img, idx_images(3, 28, 28, 3 * 784)).unwrap();
    // gzipped labels exercise the .gz path too
    let lbl_gz = lbl.with_extension("gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&lbl_gz).unwrap(), Default::default());
    enc.write_all(&idx_labels(2, 2)).unwrap();
    enc.finish().unwrap();
    let err = load_pair(&img, &lbl_gz).unwrap_err();
    assert!(matches!(err, IdxError::CountMismatch { n_images: 3, n_labels: 2, .. }), "{err}");
}

#[test]
fn bundled_files_match_their_sha256sums() {
    let dir = bundled_dir();
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let mut checked = 0;
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (hash, name) = line.split_once(char::is_whitespace).unwrap();
        let bytes = losscape::data::idx::read_maybe_gz(&dir.join(format!("{}.gz", name.trim()))).unwrap();
        assert_eq!(format!("{:x}", Sha256::digest(&bytes)), hash, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn official_splits_have_the_spec_sizes_and_label_counts() {
    let expect = [
        (Split::Train, 60000, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]),
        (Split::Test, 10000, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]),
    ];
    for (split, n, counts) in expect {
        let d = common::mnist(split, usize::MAX);
        assert_eq!(d.len(), n);
        let mut c = [0; 10];
        d.labels.iter().for_each(|&l| c[l as usize] += 1);
        assert_eq!(c, counts);
    }
}

/// The first N images of a split keep the memory of those N, not of the whole file (the first 100 of
/// MNIST's training images once kept its 47 MB), and are the split's first N.
#[test]
fn the_first_images_of_a_split_give_back_the_memory_of_the_rest() {
    let all = losscape::data::mnist::load_split(&bundled_dir(), Split::Train).unwrap();
    let few = all.clone().truncated(100);
    assert_eq!(few.len(), 100);
    assert_eq!(few.pixels[..], all.pixels[..100 * 784]);
    assert_eq!(few.labels[..], all.labels[..100]);
    assert!(few.pixels.capacity() < 2 * 100 * 784, "{} bytes kept for 100 images", few.pixels.capacity());
    assert!(few.labels.capacity() < 2 * 100, "{} bytes kept for 100 labels", few.labels.capacity());
}
