//! The input the paper's four networks take — one channel of 28 x 28 pixels, MNIST's images — and the
//! classes of the three classifiers (10 outputs); the check that a dataset fits a network, made before
//! any work. A dataset's own image size is [`crate::data::Dataset::shape`]; the constants here are the
//! networks' side, which the plans use for their input width.

use std::path::PathBuf;

use super::Arch;
use crate::data::{Dataset, ImageShape};

/// The image shape the paper's four networks take: 1 x 28 x 28.
pub const INPUT_SHAPE: ImageShape = ImageShape::MNIST;
/// Pixels of one input image (784): the input width of the FCP and the autoencoder, LeNet's image
/// stride, the LSTM's 28 rows of 28.
pub const INPUT_PIXELS: usize = INPUT_SHAPE.pixels();
/// The outputs of the FCP, LeNet and the LSTM: one per class 0-9.
pub const CLASSES: usize = 10;

/// The image shape `arch` takes.
pub fn input_shape(_arch: Arch) -> ImageShape {
    INPUT_SHAPE
}

/// The classes `arch` tells apart; `None` for the autoencoder, which ignores labels.
pub fn classes(arch: Arch) -> Option<usize> {
    match arch {
        Arch::Autoencoder => None,
        Arch::Fcp | Arch::Lenet | Arch::Lstm => Some(CLASSES),
    }
}

/// Why a dataset does not fit a network; every message names the data file, what it holds, the network
/// and what it expects.
#[derive(Debug, thiserror::Error)]
pub enum InputMismatch {
    /// The images have another shape than the network takes.
    #[error(
        "{file}: images of {found} (channels x height x width, {} pixels), but the {network} takes {expected} \
         images ({} pixels), as all four of the paper's networks do; use a dataset of one-channel 28x28 images \
         (MNIST, Fashion-MNIST, KMNIST, EMNIST) or resize these to 28x28 grayscale",
        found.pixels(),
        expected.pixels()
    )]
    Shape { file: PathBuf, found: ImageShape, network: &'static str, expected: ImageShape },
    /// A label is beyond the classifier's outputs.
    #[error(
        "{file}: labels up to {max_label} ({classes} classes), but the {network} has {outputs} outputs, one per \
         class 0-{}; use a dataset of at most {outputs} classes",
        outputs - 1
    )]
    Classes { file: PathBuf, max_label: usize, classes: usize, network: &'static str, outputs: usize },
}

/// Whether `data` fits `arch`: its image shape, and for a classifier its classes.
///
/// # Errors
/// Another image shape, or (FCP, LeNet, LSTM) labels of more classes than the network has outputs.
pub fn check_input(arch: Arch, data: &Dataset) -> Result<(), InputMismatch> {
    let expected = input_shape(arch);
    if data.shape != expected {
        return Err(InputMismatch::Shape {
            file: data.source.clone(),
            found: data.shape,
            network: arch.title(),
            expected,
        });
    }
    if let Some(outputs) = classes(arch) {
        let max_label = data.max_label().map_or(0, usize::from).max(data.classes.saturating_sub(1));
        if max_label >= outputs {
            return Err(InputMismatch::Classes {
                file: data.source.clone(),
                max_label,
                classes: max_label + 1,
                network: arch.title(),
                outputs,
            });
        }
    }
    Ok(())
}
