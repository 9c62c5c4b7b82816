//! NumPy `.npz` archives (`np.savez`, `np.savez_compressed`) of images and labels: `x` of shape
//! (N, H, W) or (N, C, H, W), uint8 or float, and `y` of N integer labels, for one split; or
//! `x_train`, `y_train`, `x_test`, `y_test` (Keras' `mnist.npz`) for both. The archive is read by `npyz`
//! (its `zip` reader); every member's header is checked ([`super::npy::precheck`]) before `npyz`
//! parses it.
//!
//! Pixels: uint8 as they are (b stands for b / 255, as MNIST's bytes). Float pixels are taken only when
//! every value is exactly k / 255 for an integer k in 0..=255, as torchvision's `ToTensor` makes them
//! (float16, float32 or float64 arithmetic), and become the bytes k: the device buffers hold bytes (a
//! GPU packs four pixels to a u32). Any other float (normalised data, noise, NaN) is refused with the
//! one-line NumPy conversion to uint8. docs/io.md, "Datasets".

use anyhow::{anyhow, bail, Result};
use std::io::{Cursor, Read};
use std::path::Path;

use super::idx::MAX_UNPACKED;
use super::{Dataset, ImageShape, Split};

/// The names of the image and label arrays of one split in an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrays {
    /// The images: `x`, `x_train` or `x_test`.
    pub x: String,
    /// The labels: `y`, `y_train` or `y_test`.
    pub y: String,
}

/// The first bytes of a zip archive (a local file header), or of an empty one (the end record).
pub fn looks_like(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

fn archive<'a>(bytes: &'a [u8], path: &Path) -> Result<npyz::npz::NpzArchive<Cursor<&'a [u8]>>> {
    npyz::npz::NpzArchive::new(Cursor::new(bytes)).map_err(|e| {
        anyhow!(
            "{}: not a readable .npz (zip) archive ({e}); the file is corrupt or cut short: save it again",
            path.display()
        )
    })
}

/// The array names of an archive, sorted.
pub fn array_names(bytes: &[u8], path: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = archive(bytes, path)?.array_names().map(str::to_string).collect();
    names.sort();
    Ok(names)
}

/// Which arrays hold `split` in an archive holding `names`: `x_train`/`y_train` and `x_test`/`y_test`
/// when present, else `x`/`y`, which hold the training split only.
///
/// # Errors
/// The split is not there; the message names the arrays the archive has and how to save them.
pub fn arrays_for(names: &[String], split: Split, path: &Path) -> Result<Arrays> {
    let has = |n: &str| names.iter().any(|m| m == n);
    let pair = |x: &str, y: &str| Arrays { x: x.to_string(), y: y.to_string() };
    let (xs, ys) = (format!("x_{}", split.name()), format!("y_{}", split.name()));
    let listed = if names.is_empty() { "no arrays".to_string() } else { format!("arrays {}", names.join(", ")) };
    match (has(&xs), has(&ys)) {
        (true, true) => return Ok(pair(&xs, &ys)),
        (true, false) | (false, true) => {
            bail!("{}: holds {listed}: {xs} and {ys} go together; save both", path.display())
        }
        (false, false) => {}
    }
    if has("x_train") || has("x_test") {
        bail!(
            "{}: holds {listed}, but not the {} split ({xs}, {ys}); save it in the archive, or give --data a \
             directory with train.npz and test.npz",
            path.display(),
            split.name()
        );
    }
    match (has("x"), has("y"), split) {
        (true, true, Split::Train) => Ok(pair("x", "y")),
        (true, true, Split::Test) => bail!(
            "{}: holds one split (arrays x and y), which serves as the training split; for a test split give --data \
             a directory with train.npz and test.npz (each x, y), or one .npz with x_train, y_train, x_test, y_test",
            path.display()
        ),
        _ => bail!(
            "{}: holds {listed}; losscape reads images x, shape (N, H, W) or (N, C, H, W), uint8 or float k/255, \
             and integer labels y, shape (N,): np.savez(FILE, x=images, y=labels) — or x_train, y_train, x_test, \
             y_test for both splits",
            path.display()
        ),
    }
}

/// The bytes of the `.npy` member `name`, at most [`MAX_UNPACKED`].
fn member(bytes: &[u8], path: &Path, name: &str) -> Result<Vec<u8>> {
    let mut zip = archive(bytes, path)?;
    let zip = zip.zip_archive();
    let mut file = zip.by_name(&npyz::npz::file_name_from_array_name(name)).map_err(|e| {
        anyhow!(
            "{}: array {name}: cannot open it in the archive ({e}); the file is corrupt: save it again",
            path.display()
        )
    })?;
    if file.size() > MAX_UNPACKED {
        bail!(
            "{}: array {name} unpacks to {} bytes, more than losscape reads from one file ({MAX_UNPACKED})",
            path.display(),
            file.size()
        );
    }
    // the declared size may lie: reserve no more than the archive's own length, grow as the data comes
    let mut out = Vec::with_capacity((file.size() as usize).min(bytes.len()));
    (&mut file).take(MAX_UNPACKED + 1).read_to_end(&mut out).map_err(|e| {
        anyhow!(
            "{}: array {name}: cannot unpack it ({e}); the file is corrupt or cut short: save it again",
            path.display()
        )
    })?;
    if out.len() as u64 > MAX_UNPACKED {
        bail!("{}: array {name} unpacks to more than {MAX_UNPACKED} bytes", path.display());
    }
    Ok(out)
}

/// An array's dtype: kind (`u`, `i`, `f`, …) and item size, from its descr (`'<f4'`, `'|u1'`).
fn kind_and_size(descr: &str) -> (char, usize) {
    let d = descr.trim_matches('\'');
    let mut chars = d.chars();
    let first = chars.next().unwrap_or('?');
    let (kind, rest) = if matches!(first, '<' | '>' | '|' | '=') {
        (chars.next().unwrap_or('?'), chars.as_str())
    } else {
        (first, chars.as_str())
    };
    (kind, rest.parse().unwrap_or(0))
}

/// A parsed member: its shape, dtype descr, C-order flag and the npyz reader over its bytes.
struct Member<'a> {
    shape: Vec<usize>,
    descr: String,
    fortran: bool,
    npy: npyz::NpyFile<&'a [u8]>,
}

fn parse_member<'a>(bytes: &'a [u8], path: &Path, name: &str) -> Result<Member<'a>> {
    let data_start = super::npy::precheck(bytes).map_err(|e| anyhow!("{}: array {name}: {e:#}", path.display()))?;
    let npy = npyz::NpyFile::new(bytes)
        .map_err(|e| anyhow!("{}: array {name} is not a valid .npy array ({e}); save it again", path.display()))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let descr = npy.dtype().descr();
    let (_, size) = kind_and_size(&descr);
    if npy.dtype().uses_pickled_array() || size == 0 {
        bail!("{}: array {name} has dtype {descr}; save a plain numeric array", path.display());
    }
    let expected = shape.iter().try_fold(size, |p, &d| p.checked_mul(d));
    let found = bytes.len() - data_start;
    if expected != Some(found) {
        bail!(
            "{}: array {name} of shape {shape:?} and dtype {descr} needs {} bytes, the archive holds {found}; the file \
             is {}",
            path.display(),
            expected.map_or("more than memory".to_string(), |e| e.to_string()),
            if expected.is_none_or(|e| found < e) { "truncated or its header lies: save it again" } else { "corrupt (bytes after the data)" }
        );
    }
    let fortran = npy.order() == npyz::Order::Fortran;
    Ok(Member { shape, descr, fortran, npy })
}

/// Values in file order into C (row-major) order, for a Fortran-ordered array of `shape`.
fn to_c_order<T: Copy + Default>(values: Vec<T>, shape: &[usize], fortran: bool) -> Vec<T> {
    if !fortran || shape.len() < 2 {
        return values;
    }
    let mut out = vec![T::default(); values.len()];
    let mut index = vec![0usize; shape.len()];
    for &v in &values {
        // file position advances the first index fastest
        let c = index.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i);
        out[c] = v;
        for (i, &d) in index.iter_mut().zip(shape) {
            *i += 1;
            if *i < d {
                break;
            }
            *i = 0;
        }
    }
    out
}

fn read_err(path: &Path, name: &str) -> impl Fn(std::io::Error) -> anyhow::Error {
    let (path, name) = (path.display().to_string(), name.to_string());
    move |e| anyhow!("{path}: array {name} cannot be read ({e}); save it again")
}

/// The pixel value k / 255 as float64, float32 and float16 compute it (a float32 division, or a float64
/// one rounded to float32 or float16): what `ToTensor` and NumPy give.
fn exact_levels() -> Vec<[f64; 4]> {
    (0..=255u32)
        .map(|k| {
            let wide = k as f64 / 255.0;
            [wide, (k as f32 / 255.0) as f64, wide as f32 as f64, npyz::half::f16::from_f64(wide).to_f64()]
        })
        .collect()
}

/// Float pixels to bytes: each value must be exactly k / 255 (k = 0..=255) in some float precision.
/// `width` (2, 4 or 8 bytes) is the array's, so that a refused value is printed as the file holds it.
fn float_pixels(values: &[f64], width: usize, shape: ImageShape, path: &Path, name: &str) -> Result<Vec<u8>> {
    let levels = exact_levels();
    let mut out = Vec::with_capacity(values.len());
    for (i, &v) in values.iter().enumerate() {
        let k = (v * 255.0).round();
        let ok = (0.0..=255.0).contains(&k) && levels[k as usize].contains(&v);
        if !ok {
            let v = match width {
                8 => v.to_string(),
                4 => (v as f32).to_string(),
                _ => npyz::half::f16::from_f64(v).to_string(),
            };
            let p = shape.pixels();
            let (img, within) = (i / p, i % p);
            let plane = shape.height * shape.width;
            let (c, r, col) = (within / plane, within % plane / shape.width, within % shape.width);
            bail!(
                "{}: array {name} holds float pixels that are not multiples of 1/255: {v} at image {img}, channel {c}, \
                 row {r}, column {col}. losscape keeps pixels as bytes (b stands for b/255) and reads float pixels only \
                 when every value is exactly k/255 for an integer k in 0..255, as torchvision's ToTensor gives them. \
                 Undo any mean/std normalisation, convert once with NumPy, {name} = np.rint(np.clip({name}, 0, 1) * \
                 255).astype(np.uint8), and save the file again",
                path.display()
            );
        }
        out.push(k as u8);
    }
    Ok(out)
}

/// The image shape of an array of `dims`: (N, H, W) is one channel; (N, C, H, W).
fn image_shape(dims: &[usize], path: &Path, name: &str) -> Result<ImageShape> {
    let shape = match *dims {
        [_, h, w] => ImageShape::new(1, h, w),
        [_, c, h, w] => {
            if c > 4 && w <= 4 {
                bail!(
                    "{}: array {name} has shape {dims:?}: channels last? losscape reads (N, C, H, W) (PyTorch's order); \
                     save {name}.transpose(0, 3, 1, 2)",
                    path.display()
                );
            }
            ImageShape::new(c, h, w)
        }
        _ => bail!("{}: array {name} has shape {dims:?}; images must be (N, H, W) or (N, C, H, W)", path.display()),
    };
    if shape.pixels() == 0 {
        bail!("{}: array {name} has shape {dims:?}: images without pixels", path.display());
    }
    Ok(shape)
}

/// The images of array `name`: their shape and bytes (C order, channel-major per image).
fn images(bytes: &[u8], path: &Path, name: &str) -> Result<(usize, ImageShape, Vec<u8>)> {
    let m = parse_member(bytes, path, name)?;
    let shape = image_shape(&m.shape, path, name)?;
    let n = m.shape[0];
    let err = read_err(path, name);
    let (_, width) = kind_and_size(&m.descr);
    let values: Vec<f64> = match kind_and_size(&m.descr) {
        ('u', 1) => return Ok((n, shape, to_c_order(m.npy.into_vec::<u8>().map_err(err)?, &m.shape, m.fortran))),
        ('f', 2) => m.npy.into_vec::<npyz::half::f16>().map_err(err)?.into_iter().map(f64::from).collect(),
        ('f', 4) => m.npy.into_vec::<f32>().map_err(err)?.into_iter().map(f64::from).collect(),
        ('f', 8) => m.npy.into_vec::<f64>().map_err(err)?,
        _ => bail!(
            "{}: array {name} has dtype {}; images must be uint8 (0-255) or float (exactly k/255): if its values are \
             0-255, save {name}.astype(np.uint8)",
            path.display(),
            m.descr
        ),
    };
    let values = to_c_order(values, &m.shape, m.fortran);
    Ok((n, shape, float_pixels(&values, width, shape, path, name)?))
}

/// The labels of array `name` as bytes: integers 0..=255.
fn labels(bytes: &[u8], path: &Path, name: &str) -> Result<Vec<u8>> {
    let m = parse_member(bytes, path, name)?;
    if !matches!(m.shape[..], [_] | [_, 1]) {
        bail!("{}: array {name} has shape {:?}; labels must be (N,): one integer per image", path.display(), m.shape);
    }
    let err = read_err(path, name);
    let wide: Vec<i128> = match kind_and_size(&m.descr) {
        ('u', 1) => m.npy.into_vec::<u8>().map_err(err)?.into_iter().map(i128::from).collect(),
        ('u', 2) => m.npy.into_vec::<u16>().map_err(err)?.into_iter().map(i128::from).collect(),
        ('u', 4) => m.npy.into_vec::<u32>().map_err(err)?.into_iter().map(i128::from).collect(),
        ('u', 8) => m.npy.into_vec::<u64>().map_err(err)?.into_iter().map(i128::from).collect(),
        ('i', 1) => m.npy.into_vec::<i8>().map_err(err)?.into_iter().map(i128::from).collect(),
        ('i', 2) => m.npy.into_vec::<i16>().map_err(err)?.into_iter().map(i128::from).collect(),
        ('i', 4) => m.npy.into_vec::<i32>().map_err(err)?.into_iter().map(i128::from).collect(),
        ('i', 8) => m.npy.into_vec::<i64>().map_err(err)?.into_iter().map(i128::from).collect(),
        _ => bail!(
            "{}: array {name} has dtype {}; labels must be integers (class indices 0, 1, …): save \
             {name}.astype(np.int64)",
            path.display(),
            m.descr
        ),
    };
    wide.iter()
        .enumerate()
        .map(|(i, &l)| {
            u8::try_from(l).map_err(|_| {
                anyhow!(
                    "{}: array {name} holds label {l} at index {i}; labels are class indices 0-255 (at most 256 \
                     classes): renumber the classes from 0",
                    path.display()
                )
            })
        })
        .collect()
}

/// Loads the split held by `arrays` from an archive's bytes; `path` names the file (the dataset's
/// source).
pub fn parse(bytes: &[u8], path: &Path, arrays: &Arrays) -> Result<Dataset> {
    let x_bytes = member(bytes, path, &arrays.x)?;
    let (n, shape, pixels) = images(&x_bytes, path, &arrays.x)?;
    drop(x_bytes);
    let labels = labels(&member(bytes, path, &arrays.y)?, path, &arrays.y)?;
    if labels.len() != n {
        bail!(
            "{}: {} holds {n} images but {} holds {} labels; one label per image",
            path.display(),
            arrays.x,
            arrays.y,
            labels.len()
        );
    }
    Dataset::new(pixels, labels, shape, path)
}

/// Loads `split` from the `.npz` file `path` ([`arrays_for`] says which arrays).
pub fn load(path: &Path, split: Split) -> Result<Dataset> {
    let bytes = std::fs::read(path).map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
    let arrays = arrays_for(&array_names(&bytes, path)?, split, path)?;
    parse(&bytes, path, &arrays)
}
