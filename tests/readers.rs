//! Readers accept what users save: .npy in either memory order, byte order and float width, safetensors
//! in F16/BF16/F32/F64, MNIST files detected by content and by either file-name spelling.

#[path = "common/npy.rs"]
mod npy_files;
use losscape::data::idx::{read_maybe_gz, IdxError};
use losscape::data::{load_split, Split};
use losscape::io::weights::{parse_weights, Format};
use losscape::io::{read_weights, write_weights, WeightStack};
use losscape::model::{init_vector, Arch};
use npy_files::npy;
use safetensors::{tensor::TensorView, Dtype};
use std::io::Write;
use std::path::{Path, PathBuf};

fn rows01() -> WeightStack {
    read_weights(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lstm_authors_rows01.npy"), Arch::Lstm).unwrap()
}

/// The values of a B x N stack in Fortran (column-major) order.
fn fortran_order(s: &WeightStack) -> Vec<f32> {
    let (b, n) = (s.count(), s.arch.n_params());
    (0..n).flat_map(|i| (0..b).map(move |r| (r, i))).map(|(r, i)| s.flat[r * n + i]).collect()
}

fn parse_npy(bytes: &[u8]) -> anyhow::Result<WeightStack> {
    parse_weights(bytes, Arch::Lstm, Format::Npy).map(|(s, _)| s)
}

#[test]
fn npy_in_fortran_order_reads_like_c_order() {
    let s = rows01();
    let data: Vec<u8> = fortran_order(&s).iter().flat_map(|v| v.to_le_bytes()).collect();
    let back = parse_npy(&npy("<f4", true, &[2, 15456], &data)).unwrap();
    assert_eq!(back.flat, s.flat);
    // a one-row Fortran file and a 1-D file are the same single vector
    let one: Vec<u8> = s.vector(1).iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(parse_npy(&npy("<f4", true, &[1, 15456], &one)).unwrap().flat, s.vector(1));
    assert_eq!(parse_npy(&npy("<f4", false, &[15456], &one)).unwrap().flat, s.vector(1));
}

#[test]
fn npy_big_endian_and_float64_and_float16_are_converted() {
    let s = rows01();
    let be: Vec<u8> = s.flat.iter().flat_map(|v| v.to_be_bytes()).collect();
    assert_eq!(parse_npy(&npy(">f4", false, &[2, 15456], &be)).unwrap().flat, s.flat);
    // float64 that holds float32 values exactly: no rounding, equal values
    for (descr, bytes) in [
        ("<f8", s.flat.iter().flat_map(|&v| (v as f64).to_le_bytes()).collect::<Vec<u8>>()),
        (">f8", s.flat.iter().flat_map(|&v| (v as f64).to_be_bytes()).collect()),
    ] {
        let (back, conv) = parse_weights(&npy(descr, false, &[2, 15456], &bytes), Arch::Lstm, Format::Npy).unwrap();
        assert_eq!(back.flat, s.flat, "{descr}");
        assert_eq!(conv.rounded, 0, "{descr}");
    }
    // float64 with more precision: rounded to nearest, and counted
    let wide: Vec<f64> = s.flat.iter().map(|&v| v as f64 + 1e-12).collect();
    let bytes: Vec<u8> = wide.iter().flat_map(|v| v.to_le_bytes()).collect();
    let (back, conv) = parse_weights(&npy("<f8", true, &[2, 15456], &bytes), Arch::Lstm, Format::Npy).unwrap();
    assert!(conv.rounded > 15456, "{conv:?}");
    let r = 2;
    assert_eq!(back.flat[15456 + 3], wide[3 * r + 1] as f32, "Fortran element (1, 3)");
    // float16
    let halves: Vec<half::f16> = s.flat.iter().map(|&v| half::f16::from_f32(v)).collect();
    let bytes: Vec<u8> = halves.iter().flat_map(|v| v.to_le_bytes()).collect();
    let back = parse_npy(&npy("<f2", false, &[2, 15456], &bytes)).unwrap();
    assert_eq!(back.flat, halves.iter().map(|v| v.to_f32()).collect::<Vec<_>>());
}

#[test]
fn npy_faults_are_named() {
    let s = rows01();
    let data: Vec<u8> = s.flat.iter().flat_map(|v| v.to_le_bytes()).collect();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (npy("<i4", false, &[2, 15456], &data), "dtype '<i4'"),
        (npy("<f4", false, &[2, 15456], &data[..data.len() - 4]), "truncated"),
        (npy("<f4", false, &[2, 15456], &[data.as_slice(), &[0; 4]].concat()), "bytes after the data"),
        (npy("<f4", false, &[2, 2, 15456], &data), "expected (vectors, 15456)"),
        (npy("<f4", false, &[4, 7728], &data), "row length 7728 does not match the LSTM's 15456"),
        (npy("<f8", false, &[1, 15456], &[(1e300f64).to_le_bytes(); 15456].concat()), "beyond the float32 range"),
        (b"PK\x03\x04 a zip".to_vec(), "not a .npy file"),
        (npy("<f4", false, &[1 << 40, 1 << 40], &data), "truncated or corrupt"),
        // an empty array holds nothing, which is what it is called (not truncated)
        (npy("<f4", false, &[0, 15456], &[]), "shape [0, 15456]: it holds no weight vectors"),
        (npy("<f4", false, &[0, 1 << 40], &[]), "truncated or corrupt"),
    ];
    for (bytes, needle) in cases {
        let err = format!("{:#}", parse_npy(&bytes).unwrap_err());
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
    // a non-finite value names the tensor and index, whatever the order
    let mut f = s.clone();
    f.flat[15456 + 7] = f32::NAN;
    let bytes: Vec<u8> = fortran_order(&f).iter().flat_map(|v| (*v as f64).to_be_bytes()).collect();
    let err = format!("{:#}", parse_npy(&npy(">f8", true, &[2, 15456], &bytes)).unwrap_err());
    assert!(
        err.contains("tensor 'gru.weight_ih_l0' of vector 1 holds a non-finite value (NaN) at flat index 7"),
        "{err}"
    );
}

/// The FCP stack as safetensors tensors of `dtype`, stacked (B > 1) or single.
fn fcp_safetensors(stack: &WeightStack, dtype: Dtype) -> Vec<u8> {
    let (b, n) = (stack.count(), stack.arch.n_params());
    let mut buffers = Vec::new();
    let mut off = 0;
    for spec in stack.arch.params() {
        let mut bytes = Vec::new();
        for r in 0..b {
            for &v in &stack.flat[r * n + off..r * n + off + spec.len()] {
                match dtype {
                    Dtype::F64 => bytes.extend((v as f64).to_le_bytes()),
                    Dtype::F16 => bytes.extend(half::f16::from_f32(v).to_le_bytes()),
                    Dtype::BF16 => bytes.extend(half::bf16::from_f32(v).to_le_bytes()),
                    _ => bytes.extend(v.to_le_bytes()),
                }
            }
        }
        let shape = if b == 1 { spec.shape.clone() } else { [vec![b], spec.shape.clone()].concat() };
        buffers.push((spec.name.to_string(), shape, bytes));
        off += spec.len();
    }
    let views: Vec<_> =
        buffers.iter().map(|(n, s, b)| (n.clone(), TensorView::new(dtype, s.clone(), b).unwrap())).collect();
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn safetensors_f64_f16_bf16_stacked_or_single_are_converted() {
    for count in [1u64, 3] {
        let s = WeightStack::new(Arch::Fcp, (0..count).flat_map(|k| init_vector(Arch::Fcp, k)).collect());
        for dtype in [Dtype::F32, Dtype::F64, Dtype::F16, Dtype::BF16] {
            let (back, conv) = parse_weights(&fcp_safetensors(&s, dtype), Arch::Fcp, Format::Safetensors).unwrap();
            assert_eq!(back.count(), count as usize);
            let expect: Vec<f32> = match dtype {
                Dtype::F16 => s.flat.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect(),
                Dtype::BF16 => s.flat.iter().map(|&v| half::bf16::from_f32(v).to_f32()).collect(),
                _ => s.flat.clone(),
            };
            assert_eq!(back.flat, expect, "{dtype:?} x {count}");
            assert_eq!(conv.rounded, 0, "{dtype:?}: exact conversions round nothing");
        }
    }
    // an integer tensor is refused by name
    let s = WeightStack::new(Arch::Fcp, init_vector(Arch::Fcp, 0));
    let err =
        format!("{:#}", parse_weights(&fcp_safetensors(&s, Dtype::I32), Arch::Fcp, Format::Safetensors).unwrap_err());
    assert!(err.contains("tensor 'fc1.weight' has dtype I32; expected a float tensor"), "{err}");
}

#[test]
fn writing_the_same_stack_twice_gives_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = WeightStack::new(Arch::Fcp, init_vector(Arch::Fcp, 0));
    for k in 0..20 {
        s.metadata.insert(format!("key{k}"), format!("value {k}"));
    }
    let (a, b) = (dir.path().join("a.safetensors"), dir.path().join("b.safetensors"));
    write_weights(&a, &s).unwrap();
    // a fresh HashMap per write: with 22 keys, hash order differs almost surely between two writes
    write_weights(&b, &s).unwrap();
    let (a, b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(a, b);
    let header_len = u64::from_le_bytes(a[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&a[8..8 + header_len]).unwrap();
    let keys: Vec<usize> = (0..20).map(|k| header.find(&format!("\"key{k}\"")).unwrap()).collect();
    let mut sorted_names: Vec<String> = (0..20).map(|k| format!("key{k}")).collect();
    sorted_names.sort();
    let positions: Vec<usize> = sorted_names.iter().map(|k| header.find(&format!("\"{k}\"")).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "metadata keys in sorted order: {header}");
    assert_eq!(keys.len(), 20);
    assert_eq!(header_len % 8, 0);
}

/// A directory holding copies of the bundled test split under the given names, each as gzip or raw.
fn mnist_dir(images: (&str, bool), labels: (&str, bool)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = losscape::data::bundled_dir();
    for (from, (name, gz)) in [("t10k-images-idx3-ubyte.gz", images), ("t10k-labels-idx1-ubyte.gz", labels)] {
        let raw = read_maybe_gz(&src.join(from)).unwrap();
        let bytes = if gz {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&raw).unwrap();
            enc.finish().unwrap()
        } else {
            raw
        };
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let p = dir.path().to_path_buf();
    (dir, p)
}

#[test]
fn mnist_is_read_by_content_under_either_name_and_spelling() {
    let reference = load_split(&losscape::data::bundled_dir(), Split::Test).unwrap();
    let layouts = [
        // unpacked, under the .gz names
        (("t10k-images-idx3-ubyte.gz", false), ("t10k-labels-idx1-ubyte.gz", false)),
        // gzip bytes under the raw names
        (("t10k-images-idx3-ubyte", true), ("t10k-labels-idx1-ubyte", true)),
        // the archive tools' spelling, raw and gzipped
        (("t10k-images.idx3-ubyte", false), ("t10k-labels.idx1-ubyte.gz", true)),
    ];
    for (images, labels) in layouts {
        let (_keep, dir) = mnist_dir(images, labels);
        let d = load_split(&dir, Split::Test).unwrap_or_else(|e| panic!("{images:?} {labels:?}: {e:#}"));
        assert_eq!((d.pixels == reference.pixels, d.labels == reference.labels), (true, true), "{images:?}");
    }
}

#[test]
fn a_missing_mnist_file_lists_both_spellings() {
    let (_keep, dir) = mnist_dir(("t10k-images.idx3-ubyte", false), ("unrelated", false));
    let err = format!("{:#}", load_split(&dir, Split::Test).unwrap_err());
    for name in
        ["t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte,", "t10k-labels.idx1-ubyte.gz", "t10k-labels.idx1-ubyte;"]
    {
        assert!(err.contains(name), "{name} not in: {err}");
    }
}

#[test]
fn a_web_page_saved_as_mnist_is_recognised() {
    let dir = tempfile::tempdir().unwrap();
    for (name, page) in [
        ("t10k-images-idx3-ubyte.gz", b"<!DOCTYPE html><html><body>403 Forbidden</body></html>".to_vec()),
        ("t10k-images-idx3-ubyte", b"\n  <html><head><title>Moved</title></head></html>".to_vec()),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, page).unwrap();
        let err = read_maybe_gz(&p).unwrap_err();
        assert!(matches!(err, IdxError::WebPage { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("web page") && msg.contains("download the file again") && msg.contains(name), "{msg}");
    }
    // broken gzip data says so, and what to do
    let p = dir.path().join("cut.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&[7u8; 100_000]).unwrap();
    let gz = enc.finish().unwrap();
    std::fs::write(&p, &gz[..gz.len() / 2]).unwrap();
    let err = read_maybe_gz(&p).unwrap_err();
    assert!(matches!(err, IdxError::Gzip { .. }) && err.to_string().contains("download the file again"), "{err}");
    // the decoder's words once, also in a chain (`{:#}`, as the commands print errors)
    let chain = format!("{:#}", anyhow::Error::from(err));
    assert!(chain.ends_with("download the file again"), "{chain}");
    // a checksum that does not match: a byte of the trailer's CRC-32 changed
    let mut bad = gz.clone();
    let at = bad.len() - 8;
    bad[at] ^= 0x55;
    std::fs::write(&p, &bad).unwrap();
    let chain = format!("{:#}", anyhow::Error::from(read_maybe_gz(&p).unwrap_err()));
    assert!(
        chain.contains("cut.gz: the gzip data is corrupt") && chain.ends_with("download the file again"),
        "{chain}"
    );
}

#[test]
fn eval_of_a_float64_fortran_npy_notes_the_rounding_once_and_matches_the_float32_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = rows01();
    let f32_file = dir.path().join("rows.npy");
    write_weights(&f32_file, &s).unwrap();
    // the same numbers, perturbed below float32 resolution, as float64 in Fortran order
    let wide: Vec<u8> = fortran_order(&s).iter().flat_map(|&v| (v as f64 * (1.0 + 1e-12)).to_le_bytes()).collect();
    let f64_file = dir.path().join("rows-f64.npy");
    std::fs::write(&f64_file, npy("<f8", true, &[2, 15456], &wide)).unwrap();
    let eval = |w: &Path| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_losscape"))
            .args(["eval", "--model", "lstm", "--limit", "50", "--json", "--weights", w.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let ((a, a_err), (b, b_err)) = (eval(&f32_file), eval(&f64_file));
    assert_eq!(a, b, "same losses");
    assert_eq!(a_err, "");
    assert_eq!(b_err.matches("rounded to float32").count(), 1, "{b_err}");
}
