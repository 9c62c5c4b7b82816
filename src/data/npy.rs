//! The header of a `.npy` array (a weight file, or a member of a dataset's `.npz`), checked before it
//! reaches `npyz`, whose own header arithmetic is unchecked: any byte string gives a header or an error,
//! never a panic or an allocation beyond the file's size.

use anyhow::{anyhow, bail, Result};

/// The most values the nonzero dimensions of an empty array's shape may multiply to: 2^32 − 1, the
/// most parameters a network has (`model::description::MAX_VALUES`), far more than an image has.
const EMPTY_ROW_LIMIT: u64 = u32::MAX as u64;

/// The dimensions of a `.npy` header, checked before the header reaches `npyz`: the preamble's header
/// length fits the file, the bracket nesting is shallow, and the shape's product cannot overflow nor
/// exceed the file's size. Returns the offset of the data.
pub fn precheck(bytes: &[u8]) -> Result<usize> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    if !bytes.starts_with(MAGIC) {
        bail!("not a .npy file (it does not start with \\x93NUMPY); save it with numpy.save");
    }
    let (major, minor) = match bytes.get(6..8) {
        Some(v) => (v[0], v[1]),
        None => bail!("the .npy file is truncated inside its preamble; save it again"),
    };
    let (len_bytes, start) = match major {
        1 => (2, 10),
        2 | 3 => (4, 12),
        _ => bail!("unsupported .npy format version {major}.{minor} (1.0, 2.0 and 3.0 are read)"),
    };
    let len_field = bytes.get(8..8 + len_bytes).ok_or_else(|| anyhow!("the .npy file is truncated in its preamble"))?;
    let header_len = len_field.iter().rev().fold(0usize, |acc, &b| (acc << 8) | b as usize);
    let end = start + header_len;
    if end > bytes.len() {
        bail!(
            "the .npy file is truncated: its header claims {header_len} bytes, the file holds {}; save it again",
            bytes.len()
        );
    }
    let text = std::str::from_utf8(&bytes[start..end]).map_err(|_| anyhow!("the .npy header is not text"))?;
    let (mut depth, mut deepest) = (0i32, 0i32);
    for c in text.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        deepest = deepest.max(depth);
    }
    if deepest > 3 {
        bail!("the .npy header describes a structured array; save a plain array (e.g. with numpy.save)");
    }
    // every bracketed list of integers (the shape, wherever it sits): the product of its nonzero
    // entries must fit u64 (npyz multiplies them unchecked) and cannot exceed the file's size; for an
    // empty array (an entry 0, which needs no bytes: its reader says it holds nothing) it cannot exceed
    // EMPTY_ROW_LIMIT, so that no reader sizes anything by an absurd row
    for group in text.split(['(', '[', '{']).skip(1).map(|g| g.split([')', ']', '}']).next().unwrap_or("")) {
        let dims: Option<Vec<u64>> = group.split(',').map(str::trim).filter(|d| !d.is_empty()).map(py_uint).collect();
        let Some(dims) = dims else { continue };
        let product = dims
            .iter()
            .filter(|&&d| d > 0)
            .try_fold(1u64, |p, &d| p.checked_mul(d))
            .filter(|&p| p <= if dims.contains(&0) { EMPTY_ROW_LIMIT } else { bytes.len() as u64 });
        if product.is_none() {
            bail!("the .npy file is truncated or corrupt: its shape {dims:?} needs more bytes than the file holds");
        }
    }
    Ok(end)
}

/// A non-negative Python integer literal (decimal, 0x, 0o, 0b, underscores, a Python 2 `L`).
fn py_uint(token: &str) -> Option<u64> {
    let t: String = token.trim_start_matches('+').trim_end_matches(['L', 'l']).replace('_', "").to_lowercase();
    let (digits, radix) = match t.get(..2) {
        Some("0x") => (&t[2..], 16),
        Some("0o") => (&t[2..], 8),
        Some("0b") => (&t[2..], 2),
        _ => (&t[..], 10),
    };
    u64::from_str_radix(digits, radix).ok()
}
