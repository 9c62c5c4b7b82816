//! Weight files: round trips and errors that name the tensor.

use losscape::io::{read_weights, write_weights, WeightStack};
use losscape::model::{init_vector, Arch};
use safetensors::{tensor::TensorView, Dtype};
use std::path::Path;

fn stack(arch: Arch, count: u64) -> WeightStack {
    WeightStack::new(arch, (0..count).flat_map(|s| init_vector(arch, s)).collect())
}

#[test]
fn safetensors_round_trip_single_and_stacked_with_pytorch_names() {
    let dir = tempfile::tempdir().unwrap();
    for arch in Arch::ALL {
        for count in [1, 3] {
            let mut s = stack(arch, count);
            s.metadata.insert("note".into(), "x".into());
            let path = dir.path().join(format!("{}-{count}.safetensors", arch.id()));
            write_weights(&path, &s).unwrap();
            let back = read_weights(&path, arch).unwrap();
            assert_eq!(back.flat, s.flat);
            assert_eq!(back.metadata["note"], "x");
            assert_eq!(back.metadata["losscape.model"], arch.id());
            // the file itself carries PyTorch names and (B, ...) shapes
            let bytes = std::fs::read(&path).unwrap();
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            for t in arch.params() {
                let view = st.tensor(t.name).unwrap();
                let expect =
                    if count == 1 { t.shape.clone() } else { [vec![count as usize], t.shape.clone()].concat() };
                assert_eq!(view.shape(), expect.as_slice(), "{}", t.name);
            }
        }
    }
}

#[test]
fn npy_round_trip_has_rows_of_flat_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let s = stack(Arch::Lstm, 2);
    let path = dir.path().join("w.npy");
    write_weights(&path, &s).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(npy.shape(), &[2, 15456]);
    assert_eq!(read_weights(&path, Arch::Lstm).unwrap().flat, s.flat);
}

/// A tensor as written to disk: name, dtype, shape, little-endian bytes.
type RawTensor = (&'static str, Dtype, Vec<usize>, Vec<u8>);

fn write_tensors(path: &Path, tensors: &[RawTensor]) {
    let views: Vec<_> =
        tensors.iter().map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

fn f32_bytes(n: usize, v: f32) -> Vec<u8> {
    std::iter::repeat_n(v.to_le_bytes(), n).flatten().collect()
}

#[test]
fn wrong_names_shapes_dtypes_and_values_are_errors_that_name_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.safetensors");
    let good = |name: &'static str, shape: Vec<usize>| {
        let n = shape.iter().product();
        (name, Dtype::F32, shape, f32_bytes(n, 0.1))
    };
    let cases: Vec<(Vec<RawTensor>, &str)> = vec![
        (
            vec![good("fc1.weight", vec![50, 784]), good("fc2.weight", vec![50, 50]), good("fc3.wieght", vec![10, 50])],
            "fc3.wieght",
        ),
        (vec![good("fc1.weight", vec![50, 784]), good("fc2.weight", vec![50, 50])], "fc3.weight"),
        (
            vec![good("fc1.weight", vec![784, 50]), good("fc2.weight", vec![50, 50]), good("fc3.weight", vec![10, 50])],
            "fc1.weight",
        ),
        (
            vec![
                good("fc1.weight", vec![50, 784]),
                ("fc2.weight", Dtype::I64, vec![50, 50], vec![0; 50 * 50 * 8]),
                good("fc3.weight", vec![10, 50]),
            ],
            "fc2.weight",
        ),
        (
            vec![
                good("fc1.weight", vec![50, 784]),
                good("fc2.weight", vec![50, 50]),
                ("fc3.weight", Dtype::F32, vec![10, 50], f32_bytes(500, f32::NAN)),
            ],
            "fc3.weight",
        ),
        (
            vec![
                good("fc1.weight", vec![2, 50, 784]),
                good("fc2.weight", vec![3, 50, 50]),
                good("fc3.weight", vec![2, 10, 50]),
            ],
            "fc2.weight",
        ),
    ];
    for (tensors, culprit) in &cases {
        write_tensors(&p, tensors);
        let err = format!("{:#}", read_weights(&p, Arch::Fcp).unwrap_err());
        assert!(err.contains(*culprit), "error should name {culprit}: {err}");
    }
    // files that are no safetensors file, or only part of one: what they are, and the fix
    write_tensors(&p, &cases[0].0);
    let whole = std::fs::read(&p).unwrap();
    let header = u64::from_le_bytes(whole[..8].try_into().unwrap()) as usize;
    let damaged: [(Vec<u8>, &str); 5] = [
        (b"<!DOCTYPE html><html>404</html>".to_vec(), "this is a web page"),
        (whole[..5].to_vec(), "only 5 bytes"),
        (b"garbage, not weights\n".repeat(10), "not a safetensors file (it does not start with a header length"),
        (whole[..header / 2].to_vec(), "cut short: its header alone promises"),
        (whole[..whole.len() - 100].to_vec(), "not a valid safetensors file"),
    ];
    for (bytes, says) in damaged {
        std::fs::write(&p, &bytes).unwrap();
        let err = format!("{:#}", read_weights(&p, Arch::Fcp).unwrap_err());
        assert!(err.contains(says) && err.contains("again") && err.contains("bad.safetensors"), "{says}: {err}");
    }
}

#[test]
fn the_authors_lstm_rows_read_and_a_wrong_model_is_refused() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lstm_authors_rows01.npy");
    let s = read_weights(&path, Arch::Lstm).unwrap();
    assert_eq!(s.count(), 2);
    // first and last numbers of each row, as stored (read with Python's struct module)
    let n = Arch::Lstm.n_params();
    assert_eq!([s.flat[0], s.flat[n - 1]], [0.677_291_33_f32, 2.165_804_1]);
    assert_eq!([s.flat[n], s.flat[2 * n - 1]], [-0.513_304_65_f32, -2.433_776]);
    let err = format!("{:#}", read_weights(&path, Arch::Fcp).unwrap_err());
    assert!(err.contains("row length 15456 does not match the FCP's 42200"), "{err}");
}

#[test]
fn the_shipped_rows_are_the_first_two_of_the_authors_file() {
    let full =
        read_weights(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lstm_bfgs_train_best48.npy"), Arch::Lstm)
            .unwrap();
    assert_eq!(full.count(), 48);
    let rows =
        read_weights(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lstm_authors_rows01.npy"), Arch::Lstm)
            .unwrap();
    assert_eq!(rows.flat[..], full.flat[..2 * Arch::Lstm.n_params()]);
}
