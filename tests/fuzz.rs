//! Property tests of the readers (IDX, .npy, safetensors, a dataset's .npz, CIFAR-10 batches): any byte
//! string gives `Ok` or an error,
//! never a panic, and no single allocation larger than the input implies. The inputs are valid files
//! with mutated headers, lengths and bytes, so that most cases get past the magic numbers.

use losscape::data::idx::{decode, parse_images, parse_labels, read_maybe_gz};
use losscape::data::npz::Arrays;
use losscape::io::weights::{parse_weights, Format};
use losscape::model::Arch;
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::path::Path;

/// The system allocator, noting the largest single request of the current thread and the most bytes
/// it held at once.
struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    /// Bytes this thread allocated less those it freed, and the most of them at any time.
    static LIVE: Cell<(isize, isize)> = const { Cell::new((0, 0)) };
}

fn note(size: usize, freed: usize) {
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
    let _ = LIVE.try_with(|m| {
        let live = m.get().0 + size as isize - freed as isize;
        m.set((live, m.get().1.max(live)));
    });
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size(), 0);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size(), 0);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size, layout.size());
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(0, layout.size());
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// Runs `f` and returns the largest single allocation it made on this thread.
fn largest_allocation(f: impl FnOnce()) -> usize {
    LARGEST.with(|m| m.set(0));
    f();
    LARGEST.with(|m| m.get())
}

/// Runs `f` and returns the most bytes this thread held at once beyond what it held before.
fn peak_allocation(f: impl FnOnce()) -> usize {
    LIVE.with(|m| m.set((0, 0)));
    f();
    LIVE.with(|m| m.get().1.max(0) as usize)
}

/// Fixed slack for the readers' small bookkeeping (names, shapes, error messages).
const SLACK: usize = 256 << 10;

/// Byte edits: (position as a fraction of the length, new byte).
fn edits() -> impl Strategy<Value = Vec<(f64, u8)>> {
    prop::collection::vec((0.0..1.0f64, any::<u8>()), 0..6)
}

fn mutate(mut bytes: Vec<u8>, edits: &[(f64, u8)], cut: Option<f64>) -> Vec<u8> {
    for &(at, b) in edits {
        if !bytes.is_empty() {
            let i = ((at * bytes.len() as f64) as usize).min(bytes.len() - 1);
            bytes[i] = b;
        }
    }
    if let Some(c) = cut {
        bytes.truncate((c * bytes.len() as f64) as usize);
    }
    bytes
}

fn dim() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(1), Just(2), Just(15456), Just(1 << 33), Just(u64::MAX), 0..20u64]
}

fn npy_file() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec!["<f4", ">f4", "<f8", ">f8", "<f2", "|u1", "<i8", "<c8", "<U9999999999", "O", "<f4"]),
        any::<bool>(),
        prop::collection::vec(dim(), 0..4),
        prop::sample::select(vec![1u8, 2, 3, 9]),
        0usize..(2 * 15456 * 8 + 16),
        any::<u8>(),
    )
        .prop_map(|(descr, fortran, shape, version, data_len, fill)| {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            let shape = match dims.len() {
                1 => format!("({},)", dims[0]),
                _ => format!("({})", dims.join(", ")),
            };
            let h = format!(
                "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}\n",
                if fortran { "True" } else { "False" }
            );
            let mut out = b"\x93NUMPY".to_vec();
            out.extend([version, 0]);
            if version == 1 {
                out.extend((h.len() as u16).to_le_bytes());
            } else {
                out.extend((h.len() as u32).to_le_bytes());
            }
            out.extend(h.as_bytes());
            out.extend(std::iter::repeat_n(fill, data_len));
            out
        })
}

fn safetensors_file() -> impl Strategy<Value = Vec<u8>> {
    let names = vec!["gru.weight_ih_l0", "gru.weight_hh_l0", "gru.bias_ih_l0", "gru.bias_hh_l0", "fc.weight", "x"];
    let tensor = (
        prop::sample::select(names),
        prop::sample::select(vec!["F32", "F64", "F16", "BF16", "I64", "U8", "BOOL"]),
        prop::collection::vec(
            prop_oneof![Just(0usize), Just(1), Just(2), Just(48), Just(192), Just(1 << 40), 0..50usize],
            0..4,
        ),
        (0usize..1_000_000, 0usize..1_000_000),
    );
    (prop::collection::vec(tensor, 0..6), 0usize..200_000, any::<bool>()).prop_map(|(tensors, data_len, meta)| {
        let mut header = String::from("{");
        if meta {
            header.push_str(r#""__metadata__":{"losscape.seeds":"1,2"},"#);
        }
        let entries: Vec<String> = tensors
            .iter()
            .map(|(name, dtype, shape, (a, b))| {
                format!(r#""{name}":{{"dtype":"{dtype}","shape":{shape:?},"data_offsets":[{a},{b}]}}"#)
            })
            .collect();
        header.push_str(&entries.join(","));
        header.push('}');
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend(header.as_bytes());
        out.extend(std::iter::repeat_n(0x3c_u8, data_len));
        out
    })
}

fn idx_file() -> impl Strategy<Value = (Vec<u8>, bool)> {
    (
        prop_oneof![Just(0x803u32), Just(0x801), any::<u32>()],
        prop_oneof![Just(0u32), Just(1), Just(3), Just(u32::MAX), any::<u32>()],
        prop_oneof![Just(28u32), any::<u32>()],
        prop_oneof![Just(28u32), any::<u32>()],
        0usize..4000,
        any::<bool>(),
    )
        .prop_map(|(magic, count, rows, cols, payload, gz)| {
            let mut v = Vec::new();
            for w in [magic, count, rows, cols] {
                v.extend(w.to_be_bytes());
            }
            v.extend((0..payload).map(|i| (i % 11) as u8));
            if gz {
                let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(&v).unwrap();
                v = enc.finish().unwrap();
            }
            (v, gz)
        })
}

/// A `.npy` member of a dataset archive: images or labels of assorted dtypes and shapes.
fn dataset_npy() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec!["|u1", "<f4", ">f8", "<f2", "<i8", ">u2", "<c8", "O"]),
        any::<bool>(),
        prop::collection::vec(prop_oneof![Just(0u64), Just(1), Just(3), Just(1 << 33), Just(u64::MAX), 0..9u64], 0..5),
        0usize..3000,
        prop::sample::select(vec![0u8, 0x3b, 0x80, 0xff]),
    )
        .prop_map(|(descr, fortran, shape, data_len, fill)| {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            let shape = match dims.len() {
                1 => format!("({},)", dims[0]),
                _ => format!("({})", dims.join(", ")),
            };
            let fortran = if fortran { "True" } else { "False" };
            let h = format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}\n");
            let mut out = b"\x93NUMPY\x01\x00".to_vec();
            out.extend((h.len() as u16).to_le_bytes());
            out.extend(h.as_bytes());
            out.extend(std::iter::repeat_n(fill, data_len));
            out
        })
}

/// A dataset `.npz`: members x and y (or others), stored or deflated.
fn npz_file() -> impl Strategy<Value = Vec<u8>> {
    let names = prop::sample::select(vec!["x", "y", "x_train", "y_test", "other"]);
    (prop::collection::vec((names, dataset_npy()), 0..4), any::<bool>()).prop_map(|(members, deflate)| {
        use npyz::zip::{write::FileOptions, CompressionMethod, ZipWriter};
        let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let method = if deflate { CompressionMethod::Deflated } else { CompressionMethod::Stored };
        for (i, (name, bytes)) in members.iter().enumerate() {
            let name = if i < 2 { ["x", "y"][i] } else { name };
            if zip.start_file(format!("{name}.npy"), FileOptions::default().compression_method(method)).is_ok() {
                zip.write_all(bytes).unwrap();
            }
        }
        zip.finish().unwrap().into_inner()
    })
}

fn check_weights(bytes: &[u8], format: Format) -> Result<(), TestCaseError> {
    let len = bytes.len();
    let largest = largest_allocation(|| {
        let _ = parse_weights(bytes, Arch::Lstm, format);
    });
    prop_assert!(largest <= 2 * len + SLACK, "{format:?}: allocated {largest} bytes for a {len}-byte input");
    Ok(())
}

/// A gzipped file is unpacked as it is read: its packed bytes are never held beside the unpacked
/// ones. Checked with hardly compressible bytes, so that the packed file is as large as the content.
#[test]
fn a_gzipped_file_is_unpacked_as_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 32) as u8
    };
    let content: Vec<u8> = (0..4 << 20).map(|_| next()).collect();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&content).unwrap();
    let packed = enc.finish().unwrap();
    assert!(packed.len() > content.len() / 2, "the content must not compress much");
    let path = dir.path().join("x.gz");
    std::fs::write(&path, &packed).unwrap();
    let mut read = None;
    let peak = peak_allocation(|| read = Some(read_maybe_gz(&path).unwrap()));
    let read = read.unwrap();
    assert!(read == content, "the unpacked bytes");
    assert!(peak < read.capacity() + SLACK, "held {peak} bytes for {} unpacked", read.capacity());
    assert_eq!(decode(packed, &path).unwrap(), content, "the same bytes as unpacked in memory");
}

/// The IDX image parser keeps the file's bytes as the pixels instead of copying them: loading MNIST's
/// 47 MB of training images once took twice that at its peak.
#[test]
fn idx_images_are_parsed_without_a_copy() {
    let (count, side) = (100, 28);
    let mut file: Vec<u8> = [0x803u32, count, side, side].iter().flat_map(|w| w.to_be_bytes()).collect();
    file.extend((0..count * side * side).map(|i| (i % 251) as u8));
    let expected = file[16..].to_vec();
    let at = file.as_ptr();
    let mut images = None;
    let largest = largest_allocation(|| images = Some(parse_images(file, Path::new("x")).unwrap()));
    let images = images.unwrap();
    assert!(largest < 1024, "parsing {} pixels allocated {largest} bytes at once", expected.len());
    assert_eq!(images.pixels, expected);
    assert_eq!(images.pixels.as_ptr(), at, "the pixels are the file's own buffer");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn npy_reader_never_panics_nor_overallocates(file in npy_file(), e in edits(), cut in prop::option::of(0.0..1.0f64)) {
        check_weights(&mutate(file, &e, cut), Format::Npy)?;
    }

    #[test]
    fn safetensors_reader_never_panics_nor_overallocates(file in safetensors_file(), e in edits(), cut in prop::option::of(0.0..1.0f64)) {
        check_weights(&mutate(file, &e, cut), Format::Safetensors)?;
    }

    #[test]
    fn weight_readers_take_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600), npy_magic in any::<bool>()) {
        let bytes = if npy_magic { [b"\x93NUMPY\x01\x00".as_slice(), &bytes].concat() } else { bytes };
        check_weights(&bytes, Format::Npy)?;
        check_weights(&bytes, Format::Safetensors)?;
    }

    /// The zip reader (the `zip` crate under `npyz`) reserves its directory by the entry count, which it
    /// bounds by the directory's offset: up to a few hundred bytes per byte of input, hence the factor.
    #[test]
    fn npz_and_cifar_readers_never_panic_nor_overallocate(file in npz_file(), e in edits(), cut in prop::option::of(0.0..1.0f64)) {
        let bytes = mutate(file, &e, cut);
        let len = bytes.len();
        let path = Path::new("fuzz.npz");
        let largest = largest_allocation(|| {
            let _ = losscape::data::npz::array_names(&bytes, path);
            for (x, y) in [("x", "y"), ("x_train", "y_test")] {
                let _ = losscape::data::npz::parse(&bytes, path, &Arrays { x: x.into(), y: y.into() });
            }
            let _ = losscape::data::cifar::parse_batch(&bytes, path);
        });
        prop_assert!(largest <= 400 * len + SLACK, "allocated {largest} bytes for a {len}-byte input");
    }

    #[test]
    fn idx_reader_never_panics_nor_overallocates((file, gz) in idx_file(), e in edits(), cut in prop::option::of(0.0..1.0f64)) {
        let bytes = mutate(file, &e, cut);
        let len = bytes.len();
        // what the gzip stream (if any) really unpacks to bounds what the reader may hold
        let mut unpacked = Vec::new();
        if gz {
            let _ = flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_end(&mut unpacked);
        }
        let largest = largest_allocation(|| {
            let path = Path::new("fuzz");
            if let Ok(raw) = decode(bytes.clone(), path) {
                let _ = parse_images(raw.clone(), path);
                let _ = parse_labels(&raw, path);
            }
        });
        let bound = (5 * len).max(2 * unpacked.len()) + 2 * len + SLACK;
        prop_assert!(largest <= bound, "allocated {largest} bytes for a {len}-byte input ({} unpacked)", unpacked.len());
    }
}
