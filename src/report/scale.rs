//! The report's line on a network's scale: its training images per parameter beside the paper's, and
//! what the regime map (docs/findings.md) predicts there.

use crate::model::Arch;

/// The paper's training images: all of MNIST's.
pub const PAPER_TRAIN_IMAGES: usize = 60_000;

/// The report's line on a network's scale: `images` training images per parameter beside the paper's
/// 60,000 (HTML paragraph), e.g. "FCP: 2000 training images for 42200 parameters, 0.047 images per
/// parameter (the paper: 60000 images, 1.42 per parameter)".
pub fn images_per_parameter(arch: Arch, images: usize) -> String {
    let n = arch.n_params();
    let ratio = |i: usize| i as f64 / n as f64;
    let paper = if arch.is_paper() {
        format!("the paper: {PAPER_TRAIN_IMAGES} images, {:.2} per parameter", ratio(PAPER_TRAIN_IMAGES))
    } else {
        "not a network of the paper, whose networks had 1 to 4 images per parameter".to_string()
    };
    format!(
        "<p class=\"scale\">{}: {images} training images for {n} parameters, {:.3} images per parameter ({paper}). \
         Far fewer images than parameters is the over-parameterised regime, where minima tend to be joined by paths of \
         near-zero loss. {}</p>\n",
        arch.title(),
        ratio(images),
        regime_prediction(arch, ratio(images))
    )
}

/// The largest FCP images-per-parameter ratio the regime map has measured (`docs/findings.md`: 2,000
/// images).
pub const MAPPED_FCP_RATIO: f64 = 2000.0 / 42_200.0;

/// The largest autoencoder images-per-parameter ratio the regime map has measured (`docs/findings.md`:
/// 2,000 images for 52,224 parameters).
pub const MAPPED_AUTOENCODER_RATIO: f64 = 2000.0 / 52_224.0;

/// What the regime map (`docs/findings.md`) predicts for a study of `arch` at `ratio` images per
/// parameter, in a sentence: measured for FCP up to [`MAPPED_FCP_RATIO`] and the autoencoder up to
/// [`MAPPED_AUTOENCODER_RATIO`], not yet elsewhere.
pub fn regime_prediction(arch: Arch, ratio: f64) -> String {
    if arch == Arch::Autoencoder && ratio <= MAPPED_AUTOENCODER_RATIO * 1.001 {
        return "The regime map (docs/findings.md) measured the autoencoder from 0.005 to 0.038 images per parameter \
                with converged paths: SGD-train paths were higher than BFGS-train paths at every size, by their \
                endpoints' training loss (SGD 0.07 to 0.21, L-BFGS 0.03), so heights-sgd-lower (the paper: no \
                difference) is expected to hold here because SGD is higher, not because the two are alike."
            .into();
    }
    if arch == Arch::Fcp && ratio <= MAPPED_FCP_RATIO * 1.001 {
        return "The regime map (docs/findings.md) measured FCP from 0.006 to 0.047 images per parameter with \
                converged paths: at every size SGD-train paths were higher than BFGS-train paths by their endpoints' \
                own training loss (L-BFGS minima near 1e-12, SGD's at 1e-2 to 1e-3), so heights-sgd-lower (train) is \
                expected to fail here; barriers-sgd-lower compares the rise above the endpoints, which the map found \
                significantly lower for SGD at 0.012 and 0.047 images per parameter, not at 0.006 and 0.024."
            .into();
    }
    if !arch.is_paper() {
        return format!(
            "The regime map has not measured this network: `losscape reproduce --images N1,N2,… --models {}` maps it.",
            arch.id()
        );
    }
    "The regime map (docs/findings.md) has not measured this network at this ratio: `losscape reproduce --preset \
     regime-gpu` maps FCP up to the paper's."
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_line_says_what_the_regime_map_predicts() {
        // the quick preset's FCP (2,000 images) is the top of the map; 64 images (smoke) inside it
        for images in [64, 2000] {
            let line = images_per_parameter(Arch::Fcp, images);
            assert!(line.contains("heights-sgd-lower (train) is expected to fail here"), "{line}");
        }
        // the quick preset's autoencoder (2,000 images) is the top of its map
        let line = images_per_parameter(Arch::Autoencoder, 2000);
        assert!(line.contains("expected to hold here because SGD is higher"), "{line}");
        for (arch, images) in [(Arch::Fcp, 4000), (Arch::Lenet, 2000), (Arch::Autoencoder, 4000)] {
            let line = images_per_parameter(arch, images);
            assert!(line.contains("has not measured this network at this ratio"), "{arch:?} {images}: {line}");
        }
    }
}
