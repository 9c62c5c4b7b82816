//! The hidden-unit permutation symmetry of each network: which axes of which parameter tensors a
//! permutation of one layer's units reorders, and applying a set of such permutations to a flat vector.
//!
//! Permuting the units of a hidden layer (and, consistently, the rows of the layer's weights and bias
//! and the columns of the next layer's weights) leaves the function unchanged, because the activations
//! act element by element (Hecht-Nielsen 1990; Entezari et al. 2022; Ainsworth et al. 2023). Here:
//! - FCP: the 50 + 50 hidden units; autoencoder: the 32 + 32 + 32 hidden units.
//! - LeNet: conv1's 6 and conv2's 16 channels (average pooling acts per channel; the flattened conv2
//!   output is (channel, row, col), so fc1's 400 columns are 16 blocks of 25), fc1's 120 and fc2's 84
//!   units.
//! - LSTM: the 48 hidden units. W_ih [4*48, 28], W_hh [4*48, 48] and both biases hold the gates
//!   (i, f, g, o) as four blocks of 48 rows: one permutation reorders the rows inside every block, W_hh's
//!   columns, and the classifier's columns.
//!
//! The groups and tensors are derived from the network's description ([`Symmetry::from_description`]);
//! the unit tests check that the paper's four come out as written above.
//!
//! Convention: `perm[i] = j` means unit i of the permuted vector is unit j of the original.

use anyhow::{bail, Result};

use super::description::{Description, DescriptionError, LayerKind, Shape};
use super::Arch;

/// One permutable set of units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitGroup {
    /// A human name: the layer's parameter prefix and what is permuted, e.g. "fc1 units",
    /// "conv2 channels", "gru hidden units".
    pub name: String,
    /// Number of units.
    pub size: usize,
}

/// A parameter tensor seen as a row-major array of `axes`, each (extent, group that permutes it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermutedTensor {
    /// Offset of the tensor in the flat vector.
    pub offset: usize,
    /// (extent, permuting group) per axis; the extents multiply to the tensor's length.
    pub axes: Vec<(usize, Option<usize>)>,
}

impl PermutedTensor {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.axes.iter().map(|a| a.0).product()
    }

    /// Whether the tensor holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The permutation symmetry of one network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symmetry {
    /// The network's name, for messages ("FCP", or a description's `name`).
    pub network: String,
    /// The length of the network's flat parameter vector.
    pub n_params: usize,
    /// The permutable unit groups, in layer order.
    pub groups: Vec<UnitGroup>,
    /// Every tensor that some group permutes (tensors no group touches are left out).
    pub tensors: Vec<PermutedTensor>,
}

/// How the values a layer receives are permuted by the group of an earlier layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Carry {
    /// A vector whose values are the units (a dense or LSTM layer's output).
    Units,
    /// An image whose channels are the units (a convolution's output, through pools).
    Channels,
    /// A flattened image: the units are blocks of `plane` = H·W consecutive values.
    Blocks(usize),
}

/// The first layer after `l` that `skip` does not pass over.
fn next_after(desc: &Description, l: usize, skip: impl Fn(&LayerKind) -> bool) -> Option<(usize, LayerKind)> {
    desc.layers.iter().enumerate().skip(l + 1).map(|(i, layer)| (i, layer.kind)).find(|(_, k)| !skip(k))
}

fn is_act(k: &LayerKind) -> bool {
    matches!(k, LayerKind::Act(_))
}

/// Whether layer `l`'s outputs can be permuted without changing the function: they reach (through
/// element-wise activations, and for channels through pools and a flatten) only another layer's
/// weights, never the head.
fn hidden(desc: &Description, l: usize) -> bool {
    let dense_next = |l| matches!(next_after(desc, l, is_act), Some((_, LayerKind::Dense { .. })));
    match desc.layers[l].kind {
        LayerKind::Dense { .. } | LayerKind::Lstm { .. } => dense_next(l),
        LayerKind::Conv2d { .. } => {
            match next_after(desc, l, |k| {
                is_act(k) || matches!(k, LayerKind::AvgPool { .. } | LayerKind::MaxPool { .. })
            }) {
                Some((_, LayerKind::Conv2d { .. })) => true,
                Some((f, LayerKind::Flatten)) => dense_next(f),
                _ => false,
            }
        }
        _ => false,
    }
}

impl Symmetry {
    /// The symmetry of `arch`: that of its description (the activations do not matter), named by its
    /// title.
    pub fn of(arch: Arch) -> Symmetry {
        let mut s = Symmetry::from_description(arch.description())
            .expect("a network's description derives (checked when it was read)");
        s.network = arch.title().to_string();
        s
    }

    /// The hidden-unit permutation symmetry of a described network, derived from its layer list:
    /// - a dense layer's outputs, when followed (through activations) by another dense layer: its
    ///   weight's rows and bias, and the next dense weight's columns;
    /// - a convolution's output channels, when followed (through activations and pools, which act
    ///   per channel) by another convolution, or by a flatten and then (through activations) a dense
    ///   layer: its weight's first axis and bias, and the next convolution weight's second axis, or
    ///   the dense weight's columns in blocks of H·W (flatten's (channel, row, column) order);
    /// - an LSTM's hidden units, when followed (through activations) by a dense layer: the rows
    ///   within each of the four gate blocks of weight_ih, weight_hh and both biases, weight_hh's
    ///   columns, and the dense weight's columns.
    ///
    /// Outputs that reach the head (the last layer's) are never permuted.
    ///
    /// Errors: the description does not derive.
    pub fn from_description(desc: &Description) -> Result<Symmetry, DescriptionError> {
        let derived = desc.derive()?;
        let mut offsets = Vec::with_capacity(derived.params.len());
        let mut offset = 0;
        for p in &derived.params {
            offsets.push(offset);
            offset += p.len();
        }
        let (mut groups, mut tensors) = (Vec::new(), Vec::new());
        let mut carry: Option<(usize, Carry)> = None;
        for (l, layer) in desc.layers.iter().enumerate() {
            let inp = if l == 0 { derived.input } else { derived.outputs[l - 1] };
            let params: Vec<usize> = (0..derived.params.len()).filter(|&i| derived.params[i].layer == l).collect();
            let prefix = params
                .first()
                .map(|&i| derived.params[i].name.rsplit_once('.').map_or("", |(p, _)| p).to_string())
                .unwrap_or_default();
            let mut own = |what: &str, size: usize| {
                hidden(desc, l).then(|| {
                    groups.push(UnitGroup { name: format!("{prefix} {what}"), size });
                    groups.len() - 1
                })
            };
            let mut push = |i: usize, axes: Vec<(usize, Option<usize>)>| {
                if axes.iter().any(|a| a.1.is_some()) {
                    tensors.push(PermutedTensor { offset: offsets[params[i]], axes });
                }
            };
            carry = match (layer.kind, inp) {
                (LayerKind::Dense { out, .. }, Shape::Features(n)) => {
                    let g = own("units", out);
                    let columns = match carry {
                        Some((c, Carry::Blocks(plane))) => vec![(n / plane, Some(c)), (plane, None)],
                        Some((c, _)) => vec![(n, Some(c))],
                        None => vec![(n, None)],
                    };
                    push(0, [vec![(out, g)], columns].concat());
                    if params.len() > 1 {
                        push(1, vec![(out, g)]);
                    }
                    g.map(|g| (g, Carry::Units))
                }
                (LayerKind::Conv2d { out, kernel, .. }, Shape::Image { c, .. }) => {
                    let g = own("channels", out);
                    let k2 = kernel * kernel;
                    let inputs = match carry {
                        Some((ci, _)) => vec![(c, Some(ci)), (k2, None)],
                        None => vec![(c * k2, None)],
                    };
                    push(0, [vec![(out, g)], inputs].concat());
                    if params.len() > 1 {
                        push(1, vec![(out, g)]);
                    }
                    g.map(|g| (g, Carry::Channels))
                }
                (LayerKind::Lstm { hidden, .. }, Shape::Sequence { features, .. }) => {
                    let g = own("hidden units", hidden);
                    if g.is_some() {
                        push(0, vec![(4, None), (hidden, g), (features, None)]);
                        push(1, vec![(4, None), (hidden, g), (hidden, g)]);
                        for i in 2..params.len() {
                            push(i, vec![(4, None), (hidden, g)]);
                        }
                    }
                    g.map(|g| (g, Carry::Units))
                }
                (LayerKind::Flatten, Shape::Image { h, w, .. }) => carry.map(|(g, _)| (g, Carry::Blocks(h * w))),
                _ => carry,
            };
        }
        let network = desc.name.clone().unwrap_or_else(|| "the network".to_string());
        Ok(Symmetry { network, n_params: derived.n_params(), groups, tensors })
    }

    /// The identity permutation of every group.
    pub fn identity(&self) -> Vec<Vec<usize>> {
        self.groups.iter().map(|g| (0..g.size).collect()).collect()
    }

    /// Checks that `perms` holds one permutation of 0..size per group.
    ///
    /// # Errors
    /// A wrong number of permutations, a wrong length, an index out of range or repeated.
    pub fn check(&self, perms: &[Vec<usize>]) -> Result<()> {
        if perms.len() != self.groups.len() {
            bail!(
                "{} has {} permutable unit groups, {} permutations given",
                self.network,
                self.groups.len(),
                perms.len()
            );
        }
        for (g, p) in self.groups.iter().zip(perms) {
            if p.len() != g.size {
                bail!("{}: a permutation of {} units has length {}", g.name, g.size, p.len());
            }
            let mut seen = vec![false; g.size];
            for &j in p {
                if j >= g.size || std::mem::replace(&mut seen[j], true) {
                    bail!("{}: {j} is out of range or repeated; not a permutation of 0..{}", g.name, g.size);
                }
            }
        }
        Ok(())
    }

    /// The vector `w` with every group's units permuted: unit i of the result is unit `perms[g][i]` of
    /// `w`. Values of tensors no group touches are copied unchanged; the result computes the same
    /// function as `w`.
    ///
    /// # Errors
    /// `w` is not of the network's length, or `perms` are not permutations of the groups (see `check`).
    pub fn apply<T: Copy>(&self, w: &[T], perms: &[Vec<usize>]) -> Result<Vec<T>> {
        let n = self.n_params;
        if w.len() != n {
            bail!("a {} vector has {n} parameters, this one {}", self.network, w.len());
        }
        self.check(perms)?;
        let mut out = w.to_vec();
        for t in &self.tensors {
            for (dst, src) in source_indices(t, perms).into_iter().enumerate() {
                out[t.offset + dst] = w[t.offset + src];
            }
        }
        Ok(out)
    }
}

/// For each index of tensor `t` (row-major), the index of the unpermuted tensor it reads.
fn source_indices(t: &PermutedTensor, perms: &[Vec<usize>]) -> Vec<usize> {
    let mut src = vec![0usize];
    for &(extent, group) in &t.axes {
        let mut next = Vec::with_capacity(src.len() * extent);
        for &base in &src {
            match group {
                Some(g) => next.extend(perms[g].iter().map(|&j| base * extent + j)),
                None => next.extend((0..extent).map(|i| base * extent + i)),
            }
        }
        src = next;
    }
    src
}

/// The inverse permutation: `inverse(p)[p[i]] = i`.
pub fn inverse(p: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; p.len()];
    for (i, &j) in p.iter().enumerate() {
        inv[j] = i;
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::reference::network_description;
    use crate::ops::Act;

    /// The paper's four networks' symmetry as written out by hand (the module's documentation).
    fn hand_typed(arch: Arch) -> Symmetry {
        let o = arch.offsets();
        let t = |i: usize, axes: &[(usize, Option<usize>)]| PermutedTensor { offset: o[i], axes: axes.to_vec() };
        let g = |name: &str, size: usize| UnitGroup { name: name.to_string(), size };
        let (n, s) = (None, Some);
        let (groups, tensors) = match arch {
            Arch::Fcp => (
                vec![g("fc1 units", 50), g("fc2 units", 50)],
                vec![t(0, &[(50, s(0)), (784, n)]), t(1, &[(50, s(1)), (50, s(0))]), t(2, &[(10, n), (50, s(1))])],
            ),
            Arch::Autoencoder => (
                vec![g("encoder.0 units", 32), g("encoder.2 units", 32), g("decoder.0 units", 32)],
                vec![
                    t(0, &[(32, s(0)), (784, n)]),
                    t(1, &[(32, s(1)), (32, s(0))]),
                    t(2, &[(32, s(2)), (32, s(1))]),
                    t(3, &[(784, n), (32, s(2))]),
                ],
            ),
            Arch::Lenet => (
                vec![g("conv1 channels", 6), g("conv2 channels", 16), g("fc1 units", 120), g("fc2 units", 84)],
                vec![
                    t(0, &[(6, s(0)), (25, n)]),
                    t(1, &[(6, s(0))]),
                    t(2, &[(16, s(1)), (6, s(0)), (25, n)]),
                    t(3, &[(16, s(1))]),
                    t(4, &[(120, s(2)), (16, s(1)), (25, n)]),
                    t(5, &[(120, s(2))]),
                    t(6, &[(84, s(3)), (120, s(2))]),
                    t(7, &[(84, s(3))]),
                    t(8, &[(10, n), (84, s(3))]),
                ],
            ),
            Arch::Lstm => (
                vec![g("gru hidden units", 48)],
                vec![
                    t(0, &[(4, n), (48, s(0)), (28, n)]),
                    t(1, &[(4, n), (48, s(0)), (48, s(0))]),
                    t(2, &[(4, n), (48, s(0))]),
                    t(3, &[(4, n), (48, s(0))]),
                    t(4, &[(10, n), (48, s(0))]),
                ],
            ),
            Arch::Custom(_) => unreachable!("only the paper's networks are typed by hand"),
        };
        Symmetry { network: arch.title().to_string(), n_params: arch.n_params(), groups, tensors }
    }

    #[test]
    fn the_derived_symmetry_of_the_four_builtins_is_the_hand_typed_one() {
        for arch in Arch::ALL {
            assert_eq!(Symmetry::of(arch), hand_typed(arch), "{arch:?}");
            for act in [Act::Relu, Act::Tanh] {
                let d = Symmetry::from_description(&network_description(arch, act)).unwrap();
                assert_eq!(
                    (d.groups, d.tensors),
                    (hand_typed(arch).groups, hand_typed(arch).tensors),
                    "{arch:?} {act:?}"
                );
            }
        }
    }

    #[test]
    fn tensors_cover_the_spec_shapes_and_groups_match_layer_widths() {
        for arch in Arch::ALL {
            let s = Symmetry::of(arch);
            let specs = arch.params();
            let offsets = arch.offsets();
            for t in &s.tensors {
                let k = offsets.iter().position(|&o| o == t.offset).expect("a tensor offset");
                assert_eq!(t.len(), specs[k].len(), "{arch:?} {}", specs[k].name);
                for &(extent, group) in &t.axes {
                    if let Some(g) = group {
                        assert_eq!(extent, s.groups[g].size, "{arch:?} {}", specs[k].name);
                    }
                }
            }
        }
    }

    #[test]
    fn apply_moves_whole_units_and_refuses_bad_permutations() {
        let s = Symmetry::of(Arch::Fcp);
        let w: Vec<u32> = (0..Arch::Fcp.n_params() as u32).collect();
        let mut perms = s.identity();
        perms[0].swap(0, 3);
        let p = s.apply(&w, &perms).unwrap();
        assert_eq!(&p[..784], &w[3 * 784..4 * 784], "fc1 row 0 is old row 3");
        let fc2 = 50 * 784;
        assert_eq!(p[fc2], w[fc2 + 3], "fc2 column 0 is old column 3");
        assert_eq!(&p[fc2 + 50 * 50..], &w[fc2 + 50 * 50..], "fc3 untouched by fc1 units");
        perms[1][0] = 1;
        assert!(s.apply(&w, &perms).unwrap_err().to_string().contains("fc2 units"));
        assert!(s.apply(&w[1..], &s.identity()).is_err());
        assert!(s.apply(&w, &s.identity()[..1]).is_err());
    }
}
