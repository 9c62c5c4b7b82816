//! Issue 23, item 5: datasets as data. A dataset carries its image shape (C, H, W) and class count,
//! read by content from IDX files of any image size, CIFAR-10's binary batches and NumPy `.npz`
//! archives (files the tests write: odd shapes, gzip and not, float pixels k/255 taken and other floats
//! refused, truncated and lying headers refused with the file named); the UCI digits shipped in
//! `tests/data/digits/` read with their known shape and label counts; the paper's networks refuse any
//! dataset but 1x28x28 images before any work (exit status 2, the file, its shape, the network and what
//! it expects).

#[path = "common/npy.rs"]
mod npy_files;
use losscape::data::npz::Arrays;
use losscape::data::{fingerprint, load_split, split_files, Dataset, Format, ImageShape, Split};
use losscape::model::{check_input, Arch, InputMismatch};
use npy_files::npy;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn digits() -> PathBuf {
    manifest().join("tests/data/digits")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Pixel bytes that differ from image to image and position to position.
fn pattern(n: usize, pixels: usize) -> Vec<u8> {
    (0..n * pixels).map(|i| ((i * 37 + i / pixels * 11) % 256) as u8).collect()
}

fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = [0x803u32, count, rows, cols].iter().flat_map(|w| w.to_be_bytes()).collect();
    v.extend_from_slice(pixels);
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = [0x801u32, labels.len() as u32].iter().flat_map(|w| w.to_be_bytes()).collect();
    v.extend_from_slice(labels);
    v
}

/// Writes an IDX set of `prefix` into `dir`: `n` images of rows x cols per split, gzipped or raw.
fn write_idx(dir: &Path, prefix: &str, (rows, cols): (u32, u32), n: usize, gz: bool) -> (Vec<u8>, Vec<u8>) {
    let pixels = pattern(n, (rows * cols) as usize);
    let labels: Vec<u8> = (0..n).map(|i| (i * 7 % 26) as u8).collect();
    for stem in ["train", "t10k"] {
        for (kind, bytes) in [
            ("images-idx3-ubyte", idx_images(n as u32, rows, cols, &pixels)),
            ("labels-idx1-ubyte", idx_labels(&labels)),
        ] {
            let (name, bytes) = if gz { (format!("{kind}.gz"), gzip(&bytes)) } else { (kind.to_string(), bytes) };
            std::fs::write(dir.join(format!("{prefix}{stem}-{name}")), bytes).unwrap();
        }
    }
    (pixels, labels)
}

fn err<T: std::fmt::Debug>(r: anyhow::Result<T>) -> String {
    format!("{:#}", r.unwrap_err())
}

fn assert_has(message: &str, needles: &[&str]) {
    for n in needles {
        assert!(message.contains(n), "{n:?} not in: {message}");
    }
}

#[test]
fn idx_of_any_image_size_gzipped_or_not_carries_its_shape() {
    for gz in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (pixels, labels) = write_idx(dir.path(), "", (13, 11), 5, gz);
        for split in [Split::Train, Split::Test] {
            let d = load_split(dir.path(), split).unwrap();
            assert_eq!((d.len(), d.shape, d.classes), (5, ImageShape::new(1, 13, 11), 22), "gz {gz}");
            assert_eq!((&d.pixels, &d.labels), (&pixels, &labels));
            assert_eq!(d.image(2), &pixels[2 * 143..3 * 143]);
            let stem = if split == Split::Train { "train-images-idx3-ubyte" } else { "t10k-images-idx3-ubyte" };
            let name = d.source.file_name().unwrap().to_str().unwrap();
            assert_eq!(name, if gz { format!("{stem}.gz") } else { stem.to_string() });
            assert_eq!(split_files(dir.path(), split).unwrap().format(), Format::Idx);
        }
    }
}

#[test]
fn emnist_style_prefixed_idx_files_read_from_their_directory_or_one_of_their_files() {
    let dir = tempfile::tempdir().unwrap();
    // EMNIST names its test files test-…, not t10k-…
    let (pixels, _) = write_idx(dir.path(), "emnist-letters-", (28, 28), 3, true);
    for stem in ["images-idx3-ubyte.gz", "labels-idx1-ubyte.gz"] {
        let from = dir.path().join(format!("emnist-letters-t10k-{stem}"));
        std::fs::rename(&from, dir.path().join(format!("emnist-letters-test-{stem}"))).unwrap();
    }
    let test = load_split(dir.path(), Split::Test).unwrap();
    assert_eq!((test.len(), test.shape, test.pixels == pixels), (3, ImageShape::MNIST, true));
    assert!(test.source.ends_with("emnist-letters-test-images-idx3-ubyte.gz"), "{}", test.source.display());
    // one file of the set names the set: its directory and prefix
    let file = dir.path().join("emnist-letters-train-labels-idx1-ubyte.gz");
    assert_eq!(load_split(&file, Split::Test).unwrap().pixels, pixels);
    // a second set in the same directory: refused with both listed
    write_idx(dir.path(), "emnist-digits-", (28, 28), 2, false);
    assert_has(
        &err(load_split(dir.path(), Split::Train)),
        &["holds several datasets", "emnist-digits-", "emnist-letters-"],
    );
    assert_eq!(load_split(&file, Split::Train).unwrap().len(), 3, "the file still names its set");
}

#[test]
fn truncated_and_lying_idx_headers_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), "", (13, 11), 4, false);
    let images = dir.path().join("train-images-idx3-ubyte");
    let good = std::fs::read(&images).unwrap();
    // cut short
    std::fs::write(&images, &good[..good.len() - 7]).unwrap();
    assert_has(
        &err(load_split(dir.path(), Split::Train)),
        &["train-images-idx3-ubyte: truncated", "download it again"],
    );
    // a header that promises more images than the file holds, gzipped
    std::fs::remove_file(&images).unwrap();
    let mut lying = good.clone();
    lying[4..8].copy_from_slice(&1000u32.to_be_bytes());
    std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), gzip(&lying)).unwrap();
    assert_has(&err(load_split(dir.path(), Split::Train)), &["train-images-idx3-ubyte.gz: truncated", "143016 bytes"]);
    // and one that promises fewer: bytes left over
    lying[4..8].copy_from_slice(&3u32.to_be_bytes());
    std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), gzip(&lying)).unwrap();
    assert_has(&err(load_split(dir.path(), Split::Train)), &["train-images-idx3-ubyte.gz", "more than the 445"]);
    // labels for another number of images
    std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), gzip(&good)).unwrap();
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), idx_labels(&[1, 2, 3])).unwrap();
    assert_has(&err(load_split(dir.path(), Split::Train)), &["4 images but", "train-labels-idx1-ubyte: 3 labels"]);
}

/// CIFAR-10 records: a label byte and 3,072 pixel bytes each.
fn cifar_records(labels: &[u8], seed: usize) -> (Vec<u8>, Vec<u8>) {
    let pixels = pattern(labels.len() + seed, 3072)[seed * 3072..].to_vec();
    let bytes = labels.iter().zip(pixels.chunks(3072)).flat_map(|(&l, p)| [&[l][..], p].concat()).collect();
    (bytes, pixels)
}

#[test]
fn cifar10_batches_read_as_3x32x32_channel_major_from_a_directory_or_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let (b1, p1) = cifar_records(&[3, 9, 0], 0);
    let (b2, p2) = cifar_records(&[1, 2], 3);
    let (t, pt) = cifar_records(&[8, 8, 5, 4], 5);
    let (b3, p3) = cifar_records(&[4], 7);
    std::fs::write(dir.path().join("data_batch_2.bin"), &b2).unwrap();
    std::fs::write(dir.path().join("data_batch_1.bin"), &b1).unwrap();
    for k in 3..=5 {
        std::fs::write(dir.path().join(format!("data_batch_{k}.bin")), &b3).unwrap();
    }
    std::fs::write(dir.path().join("test_batch.bin"), gzip(&t)).unwrap(); // gzipped: read by content
    std::fs::write(dir.path().join("batches.meta.txt"), "airplane\nautomobile\n").unwrap();
    let train = load_split(dir.path(), Split::Train).unwrap();
    assert_eq!((train.len(), train.shape, train.classes), (8, ImageShape::new(3, 32, 32), 10));
    assert_eq!(train.labels, [3, 9, 0, 1, 2, 4, 4, 4], "batches in the order of their number");
    assert_eq!(train.pixels, [p1, p2, p3.clone(), p3.clone(), p3].concat());
    assert_eq!(train.source, dir.path());
    let test = load_split(dir.path(), Split::Test).unwrap();
    assert_eq!((test.labels.clone(), test.pixels == pt), (vec![8, 8, 5, 4], true));
    // one batch file, whatever its name: the training split
    let one = dir.path().join("some.name");
    std::fs::write(&one, &b2).unwrap();
    let d = load_split(&one, Split::Train).unwrap();
    assert_eq!((d.labels.clone(), d.shape), (vec![1, 2], ImageShape::new(3, 32, 32)));
    assert_has(
        &err(load_split(&one, Split::Test)),
        &["some.name", "one CIFAR-10 batch", "training split", "test_batch.bin"],
    );
}

#[test]
fn a_missing_cifar10_training_batch_is_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = cifar_records(&[1, 2], 0);
    for k in [1, 2, 4] {
        std::fs::write(dir.path().join(format!("data_batch_{k}.bin")), &b).unwrap();
    }
    std::fs::write(dir.path().join("test_batch.bin"), &b).unwrap();
    // not three of the five batches' images without a word: the missing files named
    let e = err(load_split(dir.path(), Split::Train));
    assert_has(&e, &["data_batch_3.bin, data_batch_5.bin are missing", "data_batch_1.bin … data_batch_5.bin"]);
    assert_has(&e, &["extract cifar-10-binary.tar.gz whole", "one batch file"]);
    std::fs::write(dir.path().join("data_batch_3.bin"), &b).unwrap();
    assert_has(&err(load_split(dir.path(), Split::Train)), &["data_batch_5.bin is missing"]);
    // the test split does not need them; the whole set loads; one batch file alone still does
    assert_eq!(load_split(dir.path(), Split::Test).unwrap().len(), 2);
    std::fs::write(dir.path().join("data_batch_5.bin"), &b).unwrap();
    assert_eq!(load_split(dir.path(), Split::Train).unwrap().len(), 10);
    assert_eq!(load_split(&dir.path().join("data_batch_4.bin"), Split::Train).unwrap().len(), 2);
}

#[test]
fn bad_cifar10_batches_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = cifar_records(&[1, 2, 3], 0);
    let file = dir.path().join("data_batch_1.bin");
    std::fs::write(dir.path().join("test_batch.bin"), &b).unwrap();
    let others: Vec<_> = (2..=5).map(|k| dir.path().join(format!("data_batch_{k}.bin"))).collect();
    others.iter().for_each(|other| std::fs::write(other, &b).unwrap());
    // cut short
    std::fs::write(&file, &b[..b.len() - 100]).unwrap();
    assert_has(
        &err(load_split(dir.path(), Split::Train)),
        &["data_batch_1.bin", "not a whole number of CIFAR-10 records"],
    );
    // a label out of CIFAR-10's range
    let mut bad = b.clone();
    bad[3073] = 10;
    std::fs::write(&file, &bad).unwrap();
    assert_has(&err(load_split(dir.path(), Split::Train)), &["data_batch_1.bin: record 1", "label 10", "0-9"]);
    // CIFAR-100's records (two label bytes) are named as such
    std::fs::write(&file, vec![1u8; 2 * 3074]).unwrap();
    assert_has(&err(load_split(dir.path(), Split::Train)), &["data_batch_1.bin", "CIFAR-100"]);
    // the test split alone is not a training split
    std::fs::remove_file(&file).unwrap();
    assert_has(&err(load_split(dir.path(), Split::Train)), &["data_batch_1.bin is missing"]);
    others.iter().for_each(|other| std::fs::remove_file(other).unwrap());
    assert_has(&err(load_split(dir.path(), Split::Train)), &["no data_batch_1.bin", "training split"]);
}

/// The members of an archive: name and `.npy` bytes.
type Members<'a> = Vec<(&'a str, Vec<u8>)>;

/// A zip archive of `.npy` members, stored (np.savez) or deflated (np.savez_compressed).
fn npz(members: &[(&str, Vec<u8>)], deflate: bool) -> Vec<u8> {
    use npyz::zip::{write::FileOptions, CompressionMethod, ZipWriter};
    let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let method = if deflate { CompressionMethod::Deflated } else { CompressionMethod::Stored };
    for (name, bytes) in members {
        zip.start_file(format!("{name}.npy"), FileOptions::default().compression_method(method)).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn i64_labels(labels: &[i64]) -> Vec<u8> {
    labels.iter().flat_map(|l| l.to_le_bytes()).collect()
}

/// Writes `bytes` as `name` in `dir` and loads `split` of it.
fn load_npz(dir: &Path, name: &str, bytes: &[u8], split: Split) -> anyhow::Result<Dataset> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    load_split(&path, split)
}

#[test]
fn npz_images_of_odd_shapes_stored_or_deflated_carry_their_shape() {
    let dir = tempfile::tempdir().unwrap();
    let shape = ImageShape::new(3, 13, 11);
    let pixels = pattern(4, shape.pixels());
    let y = i64_labels(&[0, 6, 2, 6]);
    for deflate in [false, true] {
        // (N, C, H, W), under a name that says nothing: the content decides
        let bytes =
            npz(&[("x", npy("|u1", false, &[4, 3, 13, 11], &pixels)), ("y", npy("<i8", false, &[4], &y))], deflate);
        let d = load_npz(dir.path(), "odd.data", &bytes, Split::Train).unwrap();
        assert_eq!(
            (d.len(), d.shape, d.classes, d.labels.clone()),
            (4, shape, 7, vec![0, 6, 2, 6]),
            "deflate {deflate}"
        );
        assert_eq!(d.pixels, pixels);
        assert!(d.source.ends_with("odd.data"));
    }
    // (N, H, W) is one channel; labels of any integer type, big-endian too
    let x = pattern(2, 35);
    let bytes = npz(&[("x", npy("|u1", false, &[2, 5, 7], &x)), ("y", npy(">u2", false, &[2], &[0, 1, 0, 4]))], false);
    let d = load_npz(dir.path(), "small.npz", &bytes, Split::Train).unwrap();
    assert_eq!((d.shape, d.labels.clone(), d.pixels == x), (ImageShape::new(1, 5, 7), vec![1, 4], true));
    // Fortran order is read as NumPy would index it
    let c_order = pattern(2, 6);
    let fortran: Vec<u8> =
        (0..12).map(|f| (f % 2, f / 2 % 2, f / 4)).map(|(n, h, w)| c_order[n * 6 + h * 3 + w]).collect();
    let bytes = npz(&[("x", npy("|u1", true, &[2, 2, 3], &fortran)), ("y", npy("|u1", false, &[2], &[1, 0]))], false);
    assert_eq!(load_npz(dir.path(), "f.npz", &bytes, Split::Train).unwrap().pixels, c_order);
}

#[test]
fn npz_with_both_splits_and_a_directory_of_train_and_test_npz() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (pattern(3, 16), pattern(2, 16));
    let both = npz(
        &[
            ("x_train", npy("|u1", false, &[3, 4, 4], &a)),
            ("y_train", npy("<i8", false, &[3], &i64_labels(&[1, 2, 3]))),
            ("x_test", npy("|u1", false, &[2, 4, 4], &b)),
            ("y_test", npy("<i8", false, &[2], &i64_labels(&[4, 0]))),
        ],
        true,
    );
    let file = dir.path().join("keras.npz");
    std::fs::write(&file, &both).unwrap();
    assert_eq!(load_split(&file, Split::Train).unwrap().pixels, a);
    assert_eq!(load_split(&file, Split::Test).unwrap().labels, vec![4, 0]);
    assert_eq!(split_files(&file, Split::Test).unwrap().format(), Format::Npz);
    // a directory of train.npz and test.npz, each x and y
    let sub = dir.path().join("set");
    std::fs::create_dir(&sub).unwrap();
    for (name, x, y) in [("train.npz", &a, &[1u8, 2, 3][..]), ("test.npz", &b, &[4, 0][..])] {
        let n = y.len();
        std::fs::write(
            sub.join(name),
            npz(&[("x", npy("|u1", false, &[n, 4, 4], x)), ("y", npy("|u1", false, &[n], y))], false),
        )
        .unwrap();
    }
    let test = load_split(&sub, Split::Test).unwrap();
    assert_eq!((test.pixels == b, test.source.ends_with("test.npz")), (true, true));
    // a file of x and y alone is the training split; asking it for a test split says what to give
    let one = load_npz(
        dir.path(),
        "one.npz",
        &npz(
            &[("x", npy("|u1", false, &[3, 4, 4], &a)), ("y", npy("<i8", false, &[3], &i64_labels(&[1, 2, 3])))],
            false,
        ),
        Split::Train,
    );
    assert_eq!(one.unwrap().len(), 3);
    assert_has(
        &err(load_split(&dir.path().join("one.npz"), Split::Test)),
        &["one.npz", "training split", "x_test", "train.npz and test.npz"],
    );
}

#[test]
fn npz_float_pixels_exactly_k_over_255_are_taken_as_their_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = (0..=255u8).chain(0..=255).collect(); // every level, twice: 2 images of 16x16
    let y = npy("<i8", false, &[2], &i64_labels(&[3, 1]));
    // float32 as ToTensor computes it, float64, float16, and float64 of a float32 division
    let f32s: Vec<u8> = bytes.iter().flat_map(|&b| (b as f32 / 255.0).to_le_bytes()).collect();
    let f64s: Vec<u8> = bytes.iter().flat_map(|&b| (b as f64 / 255.0).to_le_bytes()).collect();
    let f16s: Vec<u8> = bytes.iter().flat_map(|&b| half::f16::from_f64(b as f64 / 255.0).to_le_bytes()).collect();
    let widened: Vec<u8> = bytes.iter().flat_map(|&b| ((b as f32 / 255.0) as f64).to_le_bytes()).collect();
    let big: Vec<u8> = bytes.iter().flat_map(|&b| (b as f32 / 255.0).to_be_bytes()).collect();
    for (descr, data) in [("<f4", f32s), ("<f8", f64s), ("<f2", f16s), ("<f8", widened), (">f4", big)] {
        let file = npz(&[("x", npy(descr, false, &[2, 1, 16, 16], &data)), ("y", y.clone())], true);
        let d = load_npz(dir.path(), "float.npz", &file, Split::Train).unwrap_or_else(|e| panic!("{descr}: {e:#}"));
        assert_eq!((d.pixels == bytes, d.shape), (true, ImageShape::new(1, 16, 16)), "{descr}");
    }
}

#[test]
fn npz_other_floats_are_refused_with_the_numpy_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let y = npy("<i8", false, &[1], &i64_labels(&[0]));
    let mut values = vec![0.0f32; 12];
    values[7] = 0.5; // 127.5 / 255: between two levels
    let cases: [(Vec<f32>, &str); 3] = [
        (values, "0.5 at image 0, channel 0, row 1, column 3"),
        (vec![-0.4242f32; 12], "-0.4242"), // mean/std normalised
        (vec![f32::NAN; 12], "NaN"),
    ];
    for (v, needle) in cases {
        let data: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let file = npz(&[("x", npy("<f4", false, &[1, 3, 4], &data)), ("y", y.clone())], false);
        let e = err(load_npz(dir.path(), "normalised.npz", &file, Split::Train));
        assert_has(
            &e,
            &["normalised.npz", "array x", needle, "k/255", "np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)"],
        );
    }
}

#[test]
fn npz_faults_are_refused_with_the_file_named_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let x = npy("|u1", false, &[2, 3, 3], &pattern(2, 9));
    let y = |labels: &[i64]| npy("<i8", false, &[labels.len()], &i64_labels(labels));
    let cases: Vec<(Members, Vec<&str>)> = vec![
        // labels out of range
        (vec![("x", x.clone()), ("y", y(&[0, -1]))], vec!["label -1 at index 1", "0-255"]),
        (vec![("x", x.clone()), ("y", y(&[256, 0]))], vec!["label 256 at index 0"]),
        (
            vec![("x", x.clone()), ("y", npy("<f8", false, &[2], &[0u8; 16]))],
            vec!["labels must be integers", "astype(np.int64)"],
        ),
        (vec![("x", x.clone()), ("y", y(&[1, 2, 3]))], vec!["2 images but y holds 3 labels"]),
        (vec![("x", x.clone()), ("y", npy("<i8", false, &[2, 2], &[0u8; 32]))], vec!["labels must be (N,)"]),
        // images of the wrong type, rank or layout
        (
            vec![("x", npy("<i4", false, &[2, 3, 3], &[0u8; 72])), ("y", y(&[0, 1]))],
            vec!["dtype '<i4'", "astype(np.uint8)"],
        ),
        (vec![("x", npy("|u1", false, &[18], &[0u8; 18])), ("y", y(&[0, 1]))], vec!["(N, H, W) or (N, C, H, W)"]),
        (
            vec![("x", npy("|u1", false, &[2, 32, 32, 3], &[0u8; 6144])), ("y", y(&[0, 1]))],
            vec!["channels last", "transpose(0, 3, 1, 2)"],
        ),
        // truncated or lying headers
        (
            vec![("x", npy("|u1", false, &[5, 3, 3], &pattern(2, 9))), ("y", y(&[0, 1]))],
            vec!["array x of shape [5, 3, 3]", "truncated or its header lies"],
        ),
        (vec![("x", npy("|u1", false, &[2, 3, 3], &pattern(3, 9))), ("y", y(&[0, 1]))], vec!["bytes after the data"]),
        (
            vec![("x", npy("|u1", false, &[1 << 40, 1 << 40, 3], &[0u8; 9])), ("y", y(&[0]))],
            vec!["array x", "truncated or corrupt"],
        ),
        // arrays missing
        (
            vec![("images", x.clone()), ("labels", y(&[0, 1]))],
            vec!["holds arrays images, labels", "np.savez(FILE, x=images, y=labels)"],
        ),
        (vec![("x_train", x.clone())], vec!["x_train and y_train go together"]),
    ];
    for (members, needles) in cases {
        let e = err(load_npz(dir.path(), "bad.npz", &npz(&members, false), Split::Train));
        assert_has(&e, &[&["bad.npz"], &needles[..]].concat());
    }
    // a cut-short archive, at many lengths: refused with the file named, never a panic
    let good = npz(&[("x", x), ("y", y(&[0, 1]))], true);
    for cut in [10, 30, 60, good.len() / 2, good.len() - 30, good.len() - 1] {
        let e = err(load_npz(dir.path(), "cut.npz", &good[..cut], Split::Train));
        assert_has(&e, &["cut.npz"]);
    }
}

#[test]
fn files_are_recognised_by_content_and_the_wrong_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let cases: Vec<(PathBuf, Vec<&str>)> = vec![
        (write("w.npy", &npy("<f4", false, &[2], &[0u8; 8])), vec!["one .npy array", "np.savez"]),
        (write("page.npz", b"<!DOCTYPE html><html>404</html>"), vec!["web page", "download the file again"]),
        (write("text.csv", b"1,2,3\n4,5,6\n"), vec!["not a dataset file", "12 bytes", ".npz"]),
        (write("labels.gz", &gzip(&idx_labels(&[1, 2]))), vec!["an IDX file", "MNIST's names"]),
        (write("empty", b""), vec!["not a dataset file", "0 bytes"]),
    ];
    let mut tar = vec![0u8; 1024];
    tar[257..262].copy_from_slice(b"ustar");
    let tar = write("cifar-10-binary.tar", &tar);
    for (path, needles) in cases.into_iter().chain([(tar, vec!["a tar archive", "tar xf"])]) {
        let e = err(load_split(&path, Split::Train));
        assert_has(&e, &[&[path.file_name().unwrap().to_str().unwrap()], &needles[..]].concat());
    }
    // a directory with nothing losscape reads, and a path that is not there
    let empty = tempfile::tempdir().unwrap();
    assert_has(
        &err(load_split(empty.path(), Split::Train)),
        &["no dataset files", "train-images-idx3-ubyte", "data_batch_1.bin", "train.npz", "(README, Datasets)"],
    );
    let e = err(load_split(&dir.path().join("missing"), Split::Train));
    assert_has(&e, &["missing", "cannot read it", "(README, Datasets)"]);
}

/// The 1,797 UCI digits (tests/data/digits/README.md): 1x8x8, 10 classes, split 1,437 / 360.
#[test]
fn the_shipped_uci_digits_have_their_known_shape_and_label_counts() {
    let expect = [
        (Split::Train, 1437, [143, 146, 142, 146, 144, 145, 144, 143, 141, 143]),
        (Split::Test, 360, [35, 36, 35, 37, 37, 37, 37, 36, 33, 37]),
    ];
    // pixels are round(v * 255 / 16) of the originals 0..16
    let levels: Vec<u8> = (0..=16u32).map(|v| ((255 * v + 8) / 16) as u8).collect();
    for (split, n, counts) in expect {
        let d = load_split(&digits(), split).unwrap();
        assert_eq!((d.len(), d.shape, d.classes), (n, ImageShape::new(1, 8, 8), 10), "{split:?}");
        assert_eq!(d.class_counts(), counts, "{split:?}");
        assert!(d.pixels.iter().all(|p| levels.contains(p)), "{split:?}: a pixel off the 17 levels");
        assert!(d.source.ends_with(format!("{}.npz", split.name())));
    }
    // the first training image: a zero (sklearn's digits.images[0])
    let train = load_split(&digits(), Split::Train).unwrap();
    assert_eq!(train.labels[0], 0);
    assert_eq!(&train.image(0)[..8], &[0, 0, 80, 207, 143, 16, 0, 0]);
}

#[test]
fn the_paper_networks_take_only_1x28x28_images_of_at_most_10_classes() {
    let digits = load_split(&digits(), Split::Train).unwrap();
    for arch in Arch::ALL {
        let e = check_input(arch, &digits).unwrap_err();
        assert!(matches!(e, InputMismatch::Shape { .. }), "{arch:?}: {e}");
        assert_has(&e.to_string(), &["train.npz", "1x8x8", arch.title(), "takes 1x28x28"]);
    }
    // MNIST-shaped images with 26 classes: the classifiers refuse, the autoencoder ignores labels
    let letters = Dataset::new(pattern(2, 784), vec![25, 3], ImageShape::MNIST, Path::new("letters")).unwrap();
    for arch in [Arch::Fcp, Arch::Lenet, Arch::Lstm] {
        let e = check_input(arch, &letters).unwrap_err().to_string();
        assert_has(&e, &["letters: labels up to 25 (26 classes; 1 label(s) of 10 or more, the first at image 0)"]);
        assert_has(&e, &[arch.title(), "10 outputs"]);
        assert!(!e.contains("damaged"), "{e}");
    }
    // one stray label among many: the image named, and a damaged file suspected
    let mut labels: Vec<u8> = (0..200).map(|i| (i % 10) as u8).collect();
    labels[150] = 200;
    let stray = Dataset::new(pattern(200, 784), labels, ImageShape::MNIST, Path::new("stray")).unwrap();
    let e = check_input(Arch::Fcp, &stray).unwrap_err().to_string();
    assert_has(&e, &["stray: labels up to 200", "1 label(s) of 10 or more, the first at image 150", "damaged file"]);
    check_input(Arch::Autoencoder, &letters).unwrap();
    // its first image alone still has its file's 26 classes
    assert!(check_input(Arch::Fcp, &letters.clone().truncated(0)).is_err());
    // an IDX pair: the label file is the one named
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), "emnist-letters-", (28, 28), 4, false);
    let idx = load_split(dir.path(), Split::Train).unwrap();
    let e = check_input(Arch::Fcp, &idx).unwrap_err().to_string();
    assert_has(&e, &["emnist-letters-train-labels-idx1-ubyte: labels up to 21 (22 classes;", "10 outputs"]);
}

fn losscape(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_losscape")).args(args).env_remove("LOSSCAPE_DATA").output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_paper_network_refuses_the_8x8_digits_before_any_work_with_exit_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.safetensors");
    assert!(losscape(&["init", "--model", "fcp", "--count", "2", "--out", w.to_str().unwrap()]).status.success());
    let data = digits();
    let d = data.to_str().unwrap();
    let out = dir.path().join("run");
    let o = losscape(&["eval", "--model", "fcp", "--weights", w.to_str().unwrap(), "--data", d]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert_has(&text(&o.stderr), &["test.npz: images of 1x8x8", "the FCP takes 1x28x28", "Usage: losscape eval"]);
    let o = losscape(&[
        "train",
        "--model",
        "lenet",
        "--optimizer",
        "sgd",
        "--runs",
        "1",
        "--epochs",
        "1",
        "--data",
        d,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert_has(&text(&o.stderr), &["train.npz: images of 1x8x8", "the LeNet takes 1x28x28"]);
    assert!(!out.exists(), "a refused command leaves nothing behind");
    let o =
        losscape(&["reproduce", "--preset", "quick", "--data", d, "--out", out.to_str().unwrap(), "--backend", "cpu"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert_has(&text(&o.stderr), &["train.npz: images of 1x8x8", "Usage: losscape reproduce"]);
    assert!(!out.exists(), "a refused command leaves nothing behind");
    // a broken data file is an error naming it (exit 1), never a panic
    let bad = dir.path().join("bad.npz");
    std::fs::write(&bad, b"PK\x03\x04 cut").unwrap();
    let o = losscape(&[
        "eval",
        "--model",
        "fcp",
        "--weights",
        w.to_str().unwrap(),
        "--data",
        bad.to_str().unwrap(),
        "--split",
        "train",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_has(&text(&o.stderr), &["bad.npz", "save it again"]);
    assert!(!text(&o.stderr).contains("panicked"));
}

#[test]
fn info_shows_each_splits_shape_classes_and_which_networks_take_it() {
    let data = digits();
    let o = losscape(&["info", "--json", "--backend", "cpu", "--data", data.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let record: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let train = &record["data"]["train"];
    assert_eq!(train["shape"], serde_json::json!([1, 8, 8]), "{record}");
    assert_eq!((train["images"].as_u64(), train["classes"].as_u64()), (Some(1437), Some(10)));
    assert_eq!(train["networks"], serde_json::json!([]));
    assert_eq!(record["data"]["test"]["class_counts"], serde_json::json!([35, 36, 35, 37, 37, 37, 37, 36, 33, 37]));
    let o = losscape(&["info", "--backend", "cpu", "--data", data.to_str().unwrap()]);
    assert_has(&text(&o.stdout), &["train: 1437 images of 1x8x8 (CxHxW), 10 classes", "no network takes it"]);
    // MNIST: every network takes it
    let o = losscape(&["info", "--backend", "cpu", "--data", losscape::data::bundled_dir().to_str().unwrap()]);
    assert_has(&text(&o.stdout), &["test: 10000 images of 1x28x28 (CxHxW), 10 classes", "every network takes it"]);
}

/// Work directories made before datasets carried shapes record the same fingerprint of MNIST: the
/// shape enters the hash only for other shapes.
#[test]
fn the_mnist_fingerprint_is_unchanged_and_other_shapes_enter_it() {
    use sha2::{Digest, Sha256};
    let test = load_split(&losscape::data::bundled_dir(), Split::Test).unwrap().truncated(300);
    let mut h = Sha256::new();
    h.update((test.len() as u64).to_le_bytes());
    h.update(&test.pixels);
    h.update(&test.labels);
    assert_eq!(fingerprint(&[&test]), format!("{:x}", h.finalize()));
    let flat = Dataset { shape: ImageShape::new(1, 1, 784), ..test.clone() };
    assert_ne!(fingerprint(&[&flat]), fingerprint(&[&test]));
}

#[test]
fn the_digits_arrays_are_read_as_named() {
    // the shipped files hold exactly x and y, as README says
    let bytes = std::fs::read(digits().join("train.npz")).unwrap();
    let names = losscape::data::npz::array_names(&bytes, Path::new("train.npz")).unwrap();
    assert_eq!(names, ["x", "y"]);
    let arrays = losscape::data::npz::arrays_for(&names, Split::Train, Path::new("train.npz")).unwrap();
    assert_eq!(arrays, Arrays { x: "x".into(), y: "y".into() });
}
