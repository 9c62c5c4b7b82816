//! The generic f64 reference (`model::reference::evaluate_description`, the interpreter of a network
//! description): hand-computed cases, and random architectures against central finite differences.
//! (The interpreter was checked against the four hand-written per-network oracles it replaced, on
//! MNIST, before they were deleted: loss identical, gradient within 3e-15 of its largest magnitude.)
#[path = "common/architectures.rs"]
mod architectures;

use std::collections::BTreeSet;
use std::path::Path;

use architectures::{random_dataset, random_description, random_weights, Family};
use losscape::data::{Dataset, ImageShape};
use losscape::model::description::{Activation, Description, Head, Input, Layer, LayerKind};
use losscape::model::reference::{evaluate_description, numeric_grad_description, Interpreter};

fn description(input: Input, layers: &[LayerKind], head: Head) -> Description {
    Description { format: 1, name: None, input, layers: layers.iter().copied().map(Layer::new).collect(), head }
}

fn one_image(pixels: &[u8], shape: ImageShape, label: u8) -> Dataset {
    Dataset::new(pixels.to_vec(), vec![label], shape, Path::new("")).unwrap()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= tol, "{what}[{i}]: {a} vs {b}\n got {got:?}\nwant {want:?}");
    }
}

#[test]
fn dense_relu_cross_entropy_by_hand() {
    // Features(2) → Linear(2, 2) → ReLU → Linear(2, 2, bias=False) → cross-entropy, label 0.
    // x = (255/255, 51/255) = (1, 0.2).
    // W1 = [[1, 2], [-1, 1]], b1 = (0.5, -0.5): z1 = (1 + 0.4 + 0.5, -1 + 0.2 - 0.5) = (1.9, -1.3);
    // a = relu(z1) = (1.9, 0).
    // W2 = [[1, -1], [2, 0.5]]: logits = (1.9, 3.8).
    // loss = log(e^1.9 + e^3.8) - 1.9 = log(1 + e^1.9); with s = σ(1.9) = 1/(1 + e^-1.9) the softmax is
    // (1 - s, s), so d loss/d logits = (p0 - 1, p1) = (-s, s).
    // dW2 = (d logits) aᵀ = [[-1.9 s, 0], [1.9 s, 0]];
    // da = W2ᵀ d logits = (1·(-s) + 2·s, -1·(-s) + 0.5·s) = (s, 1.5 s);
    // dz1 = da ⊙ relu'(z1) = (s, 0); dW1 = dz1 xᵀ = [[s, 0.2 s], [0, 0]]; db1 = (s, 0).
    // The prediction is class 1 (3.8 > 1.9): accuracy 0.
    let desc = description(
        Input::Features(2),
        &[
            LayerKind::Dense { out: 2, bias: true },
            LayerKind::Act(Activation::Relu),
            LayerKind::Dense { out: 2, bias: false },
        ],
        Head::CrossEntropy { classes: 2 },
    );
    let w = [1.0, 2.0, -1.0, 1.0, 0.5, -0.5, 1.0, -1.0, 2.0, 0.5];
    let data = one_image(&[255, 51], ImageShape::new(1, 1, 2), 0);
    let r = evaluate_description(&desc, &w, &data).unwrap();
    let s = 1.0 / (1.0 + (-1.9f64).exp());
    assert!((r.loss - 1.9f64.exp().ln_1p()).abs() < 1e-15, "{}", r.loss);
    assert_eq!(r.accuracy, Some(0.0));
    let want = [s, 0.2 * s, 0.0, 0.0, s, 0.0, -1.9 * s, 0.0, 1.9 * s, 0.0];
    assert_close(&r.grad, &want, 1e-15, "gradient");
    // the same image labelled 1: loss log(1 + e^-1.9), prediction right
    let r = evaluate_description(&desc, &w, &one_image(&[255, 51], ImageShape::new(1, 1, 2), 1)).unwrap();
    assert!((r.loss - (-1.9f64).exp().ln_1p()).abs() < 1e-15, "{}", r.loss);
    assert_eq!(r.accuracy, Some(1.0));
}

#[test]
fn conv_then_max_pool_with_a_tie_by_hand() {
    // A 1-channel 4×4 image (bytes; values are bytes / 255):
    //   3 1 1 0
    //   0 2 2 0
    //   0 1 1 3
    //   0 0 0 0
    // Conv2d(1, 2, 3) without bias, stride 1: a 2×2 map per channel. Channel 0's kernel is all ones
    // (the window sums): (0,0) 3+1+1+0+2+2+0+1+1 = 11, (0,1) 1+1+0+2+2+0+1+1+3 = 11, (1,0) 6, (1,1) 9.
    // Channel 1's kernel is the centre only: the pixels (1,1), (1,2), (2,1), (2,2) = 2, 2, 1, 1.
    // MaxPool2d(2) keeps 11 and 2, both tied between positions (0,0) and (0,1); flatten; logits
    // z = (11, 2) / 255; cross-entropy with label 0: loss = log(1 + e^(-9/255)), and with
    // p = σ(-9/255) d loss/d z = (-p, p).
    // The gradient goes to the FIRST maximal element, (0,0), whose window is
    //   P = (3, 1, 1, 0, 2, 2, 0, 1, 1) / 255
    // so d loss/d kernel0 = -p P and d loss/d kernel1 = p P (window (0,1) would give
    // (1, 1, 0, 2, 2, 0, 1, 1, 3) / 255).
    let desc = description(
        Input::Image { c: 1, h: 4, w: 4 },
        &[
            LayerKind::Conv2d { out: 2, kernel: 3, stride: 1, padding: 0, bias: false },
            LayerKind::MaxPool { kernel: 2, stride: 2 },
            LayerKind::Flatten,
        ],
        Head::CrossEntropy { classes: 2 },
    );
    let mut w = vec![1.0; 9];
    w.extend([0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    let image: [u8; 16] = [3, 1, 1, 0, 0, 2, 2, 0, 0, 1, 1, 3, 0, 0, 0, 0];
    let data = one_image(&image, ImageShape::new(1, 4, 4), 0);
    let x: Vec<f64> = image.iter().map(|&b| b as f64 / 255.0).collect();
    let trace = Interpreter::new(&desc, &w).unwrap().forward(&x).unwrap();
    let by255 = |v: &[f64]| v.iter().map(|x| x / 255.0).collect::<Vec<_>>();
    assert_close(&trace.values[1], &by255(&[11.0, 11.0, 6.0, 9.0, 2.0, 2.0, 1.0, 1.0]), 1e-15, "conv");
    assert_close(trace.output(), &by255(&[11.0, 2.0]), 1e-15, "logits");
    let r = evaluate_description(&desc, &w, &data).unwrap();
    let p = 1.0 / (1.0 + (9.0f64 / 255.0).exp());
    assert!((r.loss - (-9.0f64 / 255.0).exp().ln_1p()).abs() < 1e-15, "{}", r.loss);
    assert_eq!(r.accuracy, Some(1.0));
    let window = by255(&[3.0, 1.0, 1.0, 0.0, 2.0, 2.0, 0.0, 1.0, 1.0]);
    let want: Vec<f64> = window.iter().map(|v| -p * v).chain(window.iter().map(|v| p * v)).collect();
    assert_close(&r.grad, &want, 1e-15, "kernel gradient");
}

#[test]
fn overlapping_average_pool_windows_add_their_gradients() {
    // 1×3×3 image → AvgPool2d(2, stride 1) → 4 values, each the mean of a 2×2 window; a dense layer
    // 4 → 1 with weight (1, 1, 1, 1) and the autoencoder head would not fit, so read the trace and the
    // gradient through a dense layer into 2 logits: d loss/d pooled = W2ᵀ d logits, and the centre
    // pixel, in all four windows, collects Σ of the four / 4. Checked by finite differences of the
    // dense weight instead of by hand: d loss/d W[o][k] = d logits[o] · pooled[k].
    let desc = description(
        Input::Image { c: 1, h: 3, w: 3 },
        &[LayerKind::AvgPool { kernel: 2, stride: 1 }, LayerKind::Flatten, LayerKind::Dense { out: 2, bias: false }],
        Head::CrossEntropy { classes: 2 },
    );
    let image: [u8; 9] = [10, 20, 30, 40, 50, 60, 70, 80, 90];
    let x: Vec<f64> = image.iter().map(|&b| b as f64 / 255.0).collect();
    let w = [0.5, -1.0, 2.0, 0.25, -0.5, 1.5, 1.0, -2.0];
    let trace = Interpreter::new(&desc, &w).unwrap().forward(&x).unwrap();
    // window means: (10+20+40+50)/4 = 30, 40, 60, 70 (bytes)
    assert_close(&trace.values[1], &[30.0 / 255.0, 40.0 / 255.0, 60.0 / 255.0, 70.0 / 255.0], 1e-15, "pooled");
    let r = evaluate_description(&desc, &w, &one_image(&image, ImageShape::new(1, 3, 3), 1)).unwrap();
    let z = trace.output();
    let p1 = 1.0 / (1.0 + (z[0] - z[1]).exp());
    let d = [1.0 - p1, p1 - 1.0];
    let want: Vec<f64> = d.iter().flat_map(|&g| trace.values[1].iter().map(move |&v| g * v)).collect();
    assert_close(&r.grad, &want, 1e-15, "dense gradient");
}

/// What the random descriptions contain, for the coverage check.
fn features(d: &Description) -> BTreeSet<String> {
    let mut f: BTreeSet<String> = d.layers.iter().map(|l| l.kind.id().to_string()).collect();
    f.insert(match d.head {
        Head::CrossEntropy { .. } => "cross_entropy".into(),
        Head::SigmoidMse => "sigmoid_mse".into(),
    });
    for l in &d.layers {
        match l.kind {
            LayerKind::Dense { bias, .. } | LayerKind::Lstm { bias, .. } | LayerKind::Conv2d { bias, .. } => {
                f.insert(format!("{} bias {bias}", l.kind.id()));
            }
            _ => {}
        }
        if let LayerKind::Conv2d { stride, padding, .. } = l.kind {
            f.insert(format!("conv stride {}", stride.min(2)));
            f.insert(format!("conv padding {}", padding.min(1)));
        }
        if let LayerKind::AvgPool { kernel, stride } | LayerKind::MaxPool { kernel, stride } = l.kind {
            f.insert(if stride < kernel { "overlapping pool".into() } else { "pool".into() });
        }
    }
    match d.input {
        Input::Rows { permute_seed, .. } => f.insert(format!("rows permuted {}", permute_seed.is_some())),
        Input::Features(_) => f.insert("features".into()),
        Input::Image { c, h, w } => {
            f.insert(format!("image {}", if h != w && c > 1 { "rectangular rgb" } else { "other" }))
        }
    };
    f
}

/// The seeds of the random architectures the tests run.
const SEEDS: std::ops::Range<u64> = 0..30;

#[test]
fn the_generator_covers_the_vocabulary_and_only_emits_descriptions_that_derive() {
    for seed in 0..500 {
        let d = random_description(seed);
        d.derive().unwrap_or_else(|e| panic!("seed {seed}: {e}\n{d:?}"));
        assert_eq!(d, random_description(seed), "seeded");
        let family = Family::of(seed);
        assert_eq!(matches!(d.input, Input::Rows { .. }), family == Family::Lstm, "seed {seed}");
        assert_eq!(d.layers.iter().any(|l| matches!(l.kind, LayerKind::Conv2d { .. })), family == Family::Conv);
    }
    let seen: BTreeSet<String> = SEEDS.flat_map(|s| features(&random_description(s))).collect();
    let mut want: Vec<String> = LayerKind::VOCABULARY.iter().map(|s| s.to_string()).collect();
    want.extend(
        ["cross_entropy", "sigmoid_mse", "overlapping pool", "pool", "features", "image rectangular rgb"]
            .map(String::from),
    );
    for kind in ["dense", "conv2d", "lstm"] {
        want.extend([format!("{kind} bias true"), format!("{kind} bias false")]);
    }
    want.extend(["conv stride 1", "conv stride 2", "conv padding 0", "conv padding 1"].map(String::from));
    want.extend(["rows permuted true", "rows permuted false"].map(String::from));
    for w in &want {
        assert!(seen.contains(w), "seeds {SEEDS:?} never give `{w}`; they give {seen:?}");
    }
    // the odd image size is among them
    assert!(SEEDS.map(random_description).any(|d| d.input_len() == 3 * 13 * 11));
}

#[test]
fn random_architectures_gradients_equal_central_finite_differences() {
    let h = 1e-6;
    let mut checked = 0;
    for seed in SEEDS {
        let desc = random_description(seed);
        let data = random_dataset(&desc, 3, seed);
        // a vector whose gradient is not zero (ReLUs may all be off for a draw)
        let largest = |g: &[f64]| g.iter().fold(0f64, |m, g| m.max(g.abs()));
        let (w, r) = (0..10)
            .map(|k| random_weights(&desc, seed * 100 + k, 2.0))
            .map(|w| (w.clone(), evaluate_description(&desc, &w, &data).unwrap()))
            .find(|(_, r)| largest(&r.grad) > 0.0)
            .unwrap_or_else(|| panic!("seed {seed}: ten weight draws with a zero gradient"));
        assert!(r.loss.is_finite() && r.loss > 0.0, "seed {seed}: loss {}", r.loss);
        let max_g = largest(&r.grad);
        // the largest-gradient coordinate; the first, middle and last of every tensor
        let argmax = r.grad.iter().enumerate().fold(0, |b, (i, g)| if g.abs() > r.grad[b].abs() { i } else { b });
        let mut coords = vec![argmax];
        let mut offset = 0;
        for p in desc.derive().unwrap().params {
            coords.extend([offset, offset + p.len() / 2, offset + p.len() - 1]);
            offset += p.len();
        }
        let fd = numeric_grad_description(&desc, &w, &data, &coords, h).unwrap();
        for (&i, fd) in coords.iter().zip(fd) {
            let err = (fd - r.grad[i]).abs();
            assert!(
                err <= 1e-6 * max_g,
                "seed {seed} coordinate {i}: fd {fd} vs {} ({err:e}; largest {max_g:e})\n{desc:?}",
                r.grad[i]
            );
        }
        checked += 1;
    }
    assert!(checked >= 20);
}

#[test]
fn data_that_does_not_fit_the_description_is_refused_with_the_shapes() {
    let desc = random_description(1);
    let w = random_weights(&desc, 1, 1.0);
    let other =
        description(Input::Features(5), &[LayerKind::Dense { out: 2, bias: true }], Head::CrossEntropy { classes: 2 });
    let data = random_dataset(&other, 2, 1);
    let e = evaluate_description(&desc, &w, &data).unwrap_err().to_string();
    assert!(e.contains("1x1x5"), "{e}");
    let e = evaluate_description(&other, &[0.0; 3], &data).unwrap_err().to_string();
    assert!(e.contains("12 parameters") && e.contains("0.weight [2, 5]") && e.contains("vector 3"), "{e}");
    let mut bad = data.clone();
    bad.labels[1] = 2;
    let e = evaluate_description(&other, &[0.0; 12], &bad).unwrap_err().to_string();
    assert!(e.contains("label 2") && e.contains("2 classes"), "{e}");
    let e = evaluate_description(&other, &[0.0; 12], &data.clone().truncated(0)).unwrap_err().to_string();
    assert!(e.contains("no images"), "{e}");
}

/// A PyTorch `nn.Sequential(Linear(64, 32), Tanh(), Linear(32, 10))` saved with
/// `safetensors.torch.save_file(model.state_dict(), …)` (tests/data/torch_mlp/, made by `make.py`
/// there): its tensors, ordered by the compact description's derived names, give PyTorch's float64
/// loss and accuracy on the first 200 UCI digits.
#[test]
fn a_pytorch_mlp_saved_with_safetensors_gives_pytorchs_loss() {
    use losscape::data::{load_split, Split};
    use safetensors::{Dtype, SafeTensors};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("torch_mlp/expected.json")).unwrap()).unwrap();
    let desc = Description::parse(expected["model"].as_str().unwrap()).unwrap();
    assert_eq!(desc, Description::parse("mlp:64-32-10:tanh").unwrap());
    let bytes = std::fs::read(dir.join("torch_mlp/mlp.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let params = desc.derive().unwrap().params;
    let mut names: Vec<String> = file.names().into_iter().map(String::from).collect();
    names.sort();
    let mut want: Vec<String> = params.iter().map(|p| p.name.clone()).collect();
    want.sort();
    assert_eq!(names, want, "the state_dict keys are the Sequential names");
    let mut w = Vec::new();
    for p in &params {
        let t = file.tensor(&p.name).unwrap();
        assert_eq!((t.shape(), t.dtype()), (&p.shape[..], Dtype::F32), "{}", p.name);
        w.extend(t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64));
    }
    let images = expected["images"].as_u64().unwrap() as usize;
    let data = load_split(&dir.join("digits"), Split::Test).unwrap().truncated(images);
    assert_eq!(data.len(), 200);
    let r = evaluate_description(&desc, &w, &data).unwrap();
    let torch = expected["float64"]["loss"].as_f64().unwrap();
    let rel = (r.loss - torch).abs() / torch;
    assert!(rel <= 1e-9, "loss {} vs PyTorch's {torch} (rel {rel:e})", r.loss);
    assert_eq!(r.accuracy, expected["float64"]["accuracy"].as_f64());
    // and PyTorch's float32 evaluation is within float32 rounding of it
    let f32_loss = expected["float32"]["loss"].as_f64().unwrap();
    assert!((r.loss - f32_loss).abs() / torch <= 1e-5, "{} vs {f32_loss}", r.loss);
}

/// The symmetry derived from a description: permuting the hidden units of random networks (dense
/// units, convolution channels through pools and flatten, LSTM hidden units) moves the weights but
/// leaves the loss unchanged, and the gradient moves with the weights.
#[test]
fn permuting_the_derived_symmetry_of_random_architectures_keeps_the_loss() {
    use losscape::model::Symmetry;
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut kinds = BTreeSet::new();
    let (mut permuted, mut lstm_group) = (0, false);
    for seed in SEEDS {
        let desc = random_description(seed);
        let sym = Symmetry::from_description(&desc).unwrap();
        let data = random_dataset(&desc, 3, seed);
        let w = random_weights(&desc, seed, 2.0);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut perms = sym.identity();
        for p in &mut perms {
            while p.len() > 1 && p.iter().enumerate().all(|(i, &j)| i == j) {
                p.shuffle(&mut rng);
            }
        }
        let moved = sym.apply(&w, &perms).unwrap();
        if sym.groups.iter().any(|g| g.size > 1) {
            assert_ne!(moved, w, "seed {seed}: a permutation moved nothing");
            permuted += 1;
        }
        for g in &sym.groups {
            lstm_group |= g.name.ends_with("hidden units");
            kinds.insert(g.name.rsplit_once(' ').map_or("", |(_, k)| k).to_string());
        }
        let (a, b) =
            (evaluate_description(&desc, &w, &data).unwrap(), evaluate_description(&desc, &moved, &data).unwrap());
        let rel = (a.loss - b.loss).abs() / a.loss;
        assert!(rel <= 1e-12, "seed {seed}: loss {} then {} (rel {rel:e})\n{desc:?}\n{sym:?}", a.loss, b.loss);
        assert_eq!(a.accuracy, b.accuracy, "seed {seed}");
        let scale = a.grad.iter().fold(0f64, |m, g| m.max(g.abs()));
        let grad_moved = sym.apply(&a.grad, &perms).unwrap();
        let err = grad_moved.iter().zip(&b.grad).map(|(x, y)| (x - y).abs()).fold(0f64, f64::max);
        assert!(err <= 1e-12 * scale, "seed {seed}: the gradient does not move with the weights ({err:e})");
    }
    assert!(permuted >= 20, "only {permuted} of the random networks have a permutable group");
    // dense units, convolution channels and LSTM hidden units all occur
    assert!(kinds.contains("units") && kinds.contains("channels"), "{kinds:?}");
    assert!(lstm_group, "no LSTM hidden units among the groups");
}
