//! The IDX format of MNIST, Fashion-MNIST, KMNIST and EMNIST (raw or gzipped), with validation of
//! every header field: an image file (magic 0x00000803: unsigned bytes in 3 dimensions, N x H x W, any
//! H and W) and a label file (0x00000801: N bytes). Whether a file is gzipped is decided by its first
//! bytes (1f 8b), not by its name, so an unpacked file under the `.gz` name or a packed one under the
//! raw name reads the same; a web page saved in place of a file (an HTML error page from a mirror) is
//! recognised and named.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::ImageShape;

/// What can be wrong with an IDX file; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    /// The I/O error is part of the message, not a source, so that a chain (`{:#}`) says it once.
    #[error("{path}: cannot read: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{path}: wrong magic number {found:#010x} (expected {expected:#010x}); is this an IDX {kind} file?")]
    Magic { path: PathBuf, found: u32, expected: u32, kind: &'static str },
    #[error("{path}: truncated: the header promises {expected} bytes, the file holds {found}; download it again")]
    Truncated { path: PathBuf, expected: usize, found: usize },
    #[error("{path}: {found} bytes, more than the {expected} that the header describes; the file is corrupt")]
    TrailingBytes { path: PathBuf, expected: usize, found: usize },
    #[error("{path}: the header says images of {rows}x{cols} pixels; an image needs at least one row and one column; the file is corrupt")]
    Dimensions { path: PathBuf, rows: u32, cols: u32 },
    #[error("{images}: {n_images} images but {labels}: {n_labels} labels; the two files must belong together")]
    CountMismatch { images: PathBuf, n_images: usize, labels: PathBuf, n_labels: usize },
    #[error(
        "{path}: this is a web page (it starts with '<'), not a data file; the download saved an error or \
             redirect page: download the file again (e.g. with curl -L) from a working mirror"
    )]
    WebPage { path: PathBuf },
    /// As `Io`, the decoder's error is in the message only.
    #[error("{path}: the gzip data is corrupt or cut short ({cause}); download the file again")]
    Gzip { path: PathBuf, cause: std::io::Error },
    #[error(
        "{path}: unpacks to more than {limit} bytes, more than losscape reads from one file; is this the right file?"
    )]
    TooLarge { path: PathBuf, limit: u64 },
}

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

/// The most bytes a file may unpack to (the largest MNIST file, the training images, has 47 MB; EMNIST's
/// largest, ByClass's training images, 551 MB).
pub const MAX_UNPACKED: u64 = 1 << 30;

/// Reads a whole file, un-gzipping it when its content is gzip (whatever its name). A gzipped file
/// is unpacked as it is read, so that its packed bytes are never held beside the unpacked ones
/// (MNIST's training images: 9.7 MB beside 47 MB).
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, IdxError> {
    let io = |cause| IdxError::Io { path: path.to_path_buf(), cause };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len() as usize;
    let mut reader = std::io::BufReader::new(file);
    if std::io::BufRead::fill_buf(&mut reader).map_err(io)?.starts_with(&GZIP_MAGIC) {
        return decode_plain(unpack(reader, len, path)?, path);
    }
    let mut raw = Vec::with_capacity(len);
    reader.read_to_end(&mut raw).map_err(io)?;
    decode_plain(raw, path)
}

/// The first bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The IDX bytes of a file's content: gunzipped when it starts with the gzip magic 1f 8b, as is
/// otherwise; a web page (first non-blank byte `<`) is an error. `path` only names the file in errors.
pub fn decode(raw: Vec<u8>, path: &Path) -> Result<Vec<u8>, IdxError> {
    if raw.starts_with(&GZIP_MAGIC) {
        return decode_plain(unpack(&raw[..], raw.len(), path)?, path);
    }
    decode_plain(raw, path)
}

/// Unpacks the gzip stream `packed` (`len` bytes), refusing more than [`MAX_UNPACKED`] bytes.
fn unpack(packed: impl Read, len: usize, path: &Path) -> Result<Vec<u8>, IdxError> {
    let mut out = Vec::with_capacity(len.saturating_mul(5).min(64 << 20));
    let mut reader = flate2::read::MultiGzDecoder::new(packed).take(MAX_UNPACKED + 1);
    reader.read_to_end(&mut out).map_err(|cause| IdxError::Gzip { path: path.into(), cause })?;
    if out.len() as u64 > MAX_UNPACKED {
        return Err(IdxError::TooLarge { path: path.into(), limit: MAX_UNPACKED });
    }
    Ok(out)
}

fn decode_plain(bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>, IdxError> {
    let start = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes[..]);
    if start.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') {
        return Err(IdxError::WebPage { path: path.into() });
    }
    Ok(bytes)
}

fn header(bytes: &[u8], path: &Path, words: usize) -> Result<Vec<u32>, IdxError> {
    if bytes.len() < 4 * words {
        return Err(IdxError::Truncated { path: path.into(), expected: 4 * words, found: bytes.len() });
    }
    Ok((0..words).map(|i| u32::from_be_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap())).collect())
}

fn check_length(bytes: &[u8], path: &Path, expected: usize) -> Result<(), IdxError> {
    match bytes.len() {
        n if n < expected => Err(IdxError::Truncated { path: path.into(), expected, found: n }),
        n if n > expected => Err(IdxError::TrailingBytes { path: path.into(), expected, found: n }),
        _ => Ok(()),
    }
}

/// The images of an IDX image file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    /// The number of images.
    pub count: usize,
    /// Their shape: one channel of the header's rows x columns.
    pub shape: ImageShape,
    /// `count` images of `shape.pixels()` bytes, row-major.
    pub pixels: Vec<u8>,
}

/// Parses an IDX image file (magic 0x00000803: N images of H x W bytes, row-major), of any image size.
/// It keeps the file's bytes as the pixels (the header removed in place) instead of copying them:
/// loading MNIST's 47 MB of training images peaked at twice that.
pub fn parse_images(mut bytes: Vec<u8>, path: &Path) -> Result<IdxImages, IdxError> {
    let magic = header(&bytes, path, 1)?[0];
    if magic != IMAGES_MAGIC {
        return Err(IdxError::Magic { path: path.into(), found: magic, expected: IMAGES_MAGIC, kind: "image" });
    }
    let h = header(&bytes, path, 4)?;
    let (count, rows, cols) = (h[1] as usize, h[2], h[3]);
    if rows == 0 || cols == 0 {
        return Err(IdxError::Dimensions { path: path.into(), rows, cols });
    }
    let shape = ImageShape::new(1, rows as usize, cols as usize);
    check_length(&bytes, path, count.saturating_mul(shape.pixels()).saturating_add(16))?;
    bytes.drain(..16);
    Ok(IdxImages { count, shape, pixels: bytes })
}

/// Parses an IDX label file (magic 0x00000801: N bytes); any byte is a label (EMNIST's letters run to
/// 26). Whether the labels fit a network's classes is the network's check.
pub fn parse_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>, IdxError> {
    let magic = header(bytes, path, 1)?[0];
    if magic != LABELS_MAGIC {
        return Err(IdxError::Magic { path: path.into(), found: magic, expected: LABELS_MAGIC, kind: "label" });
    }
    let count = header(bytes, path, 2)?[1] as usize;
    check_length(bytes, path, count.saturating_add(8))?;
    Ok(bytes[8..].to_vec())
}

/// The first word of an IDX image file (after un-gzipping), for telling formats apart by content.
pub const IMAGES_MAGIC_BYTES: [u8; 4] = IMAGES_MAGIC.to_be_bytes();
/// The first word of an IDX label file.
pub const LABELS_MAGIC_BYTES: [u8; 4] = LABELS_MAGIC.to_be_bytes();
