//! What a network's input is — the image shape its description takes (or, for a network on features,
//! the number of values) and the classes of a classifier — and the check that a dataset fits it, made
//! before any work. A dataset's own image size is [`crate::data::Dataset::shape`].

use std::path::PathBuf;

use super::description::{Head, Input};
use super::Arch;
use crate::data::{Dataset, ImageShape};

/// The image shape the paper's four networks take: 1 x 28 x 28.
pub const INPUT_SHAPE: ImageShape = ImageShape::MNIST;
/// Pixels of one image of the paper's networks (784).
pub const INPUT_PIXELS: usize = INPUT_SHAPE.pixels();

/// The image shape `arch` takes, or `None` for a network on a vector of features (any image of that
/// many values, flattened in (channel, row, column) order).
pub fn input_shape(arch: Arch) -> Option<ImageShape> {
    match arch.description().input {
        Input::Image { c, h, w } | Input::Rows { c, h, w, .. } => Some(ImageShape { channels: c, height: h, width: w }),
        Input::Features(_) => None,
    }
}

/// The classes `arch` tells apart (its cross-entropy head's); `None` for a reconstruction head (the
/// autoencoder), which ignores labels.
pub fn classes(arch: Arch) -> Option<usize> {
    match arch.description().head {
        Head::CrossEntropy { classes } => Some(classes),
        Head::SigmoidMse => None,
    }
}

/// Why a dataset does not fit a network; every message names the data file, what it holds, the network
/// and what it expects.
#[derive(Debug, thiserror::Error)]
pub enum InputMismatch {
    /// The images have another shape than the network takes.
    #[error(
        "{file}: images of {found} (channels x height x width, {} values), but the {network} takes {expected}{fix}",
        found.pixels()
    )]
    Shape { file: PathBuf, found: ImageShape, network: &'static str, expected: String, fix: String },
    /// A label is beyond the classifier's outputs (`beyond` of them, the first at image `first`, 0-based).
    #[error(
        "{file}: labels up to {max_label} ({classes} classes; {beyond} label(s) of {outputs} or more, the first at \
         image {first}), but the {network} has {outputs} outputs, one per class 0-{}; use a dataset of at most \
         {outputs} classes{damaged}",
        outputs - 1,
        damaged = if *beyond * 100 < *images { " (so few labels beyond the rest suggest a damaged file: download it again)" } else { "" }
    )]
    Classes {
        file: PathBuf,
        max_label: usize,
        classes: usize,
        network: &'static str,
        outputs: usize,
        beyond: usize,
        first: usize,
        images: usize,
    },
}

/// Whether `data` fits `arch`: its image shape (or, for a network on features, its number of values),
/// and for a classifier its classes.
///
/// # Errors
/// Another image shape or size, or labels of more classes than the classifier has outputs.
pub fn check_input(arch: Arch, data: &Dataset) -> Result<(), InputMismatch> {
    let shape_error = |expected: String, fix: String| InputMismatch::Shape {
        file: data.source.clone(),
        found: data.shape,
        network: arch.title(),
        expected,
        fix,
    };
    match input_shape(arch) {
        Some(expected) if data.shape != expected => {
            let fix = if arch.is_paper() {
                ", as all four of the paper's networks do; use a dataset of one-channel 28x28 images (MNIST, \
                 Fashion-MNIST, KMNIST, EMNIST) or resize these to 28x28 grayscale"
                    .to_string()
            } else {
                format!(
                    "; change the description's input to [{}, {}, {}]",
                    data.shape.channels, data.shape.height, data.shape.width
                )
            };
            return Err(shape_error(format!("{expected} images ({} values)", expected.pixels()), fix));
        }
        None if data.shape.pixels() != arch.description().input_len() => {
            let n = arch.description().input_len();
            let fix = format!("; its first width must be {} for these images", data.shape.pixels());
            return Err(shape_error(format!("vectors of {n} values"), fix));
        }
        _ => {}
    }
    if let Some(outputs) = classes(arch) {
        let max_label = data.max_label().map_or(0, usize::from).max(data.classes.saturating_sub(1));
        if max_label >= outputs {
            let beyond = |l: &u8| usize::from(*l) >= outputs;
            return Err(InputMismatch::Classes {
                file: data.labels_file().to_path_buf(),
                max_label,
                classes: max_label + 1,
                network: arch.title(),
                outputs,
                beyond: data.labels.iter().filter(|l| beyond(l)).count(),
                first: data.labels.iter().position(beyond).unwrap_or(0),
                images: data.labels.len(),
            });
        }
    }
    Ok(())
}
