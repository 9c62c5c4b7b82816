//! ONNX models (src/model/onnx, docs/networks.md §8): the fixtures of tests/data/onnx (made by PyTorch
//! with make.py) import to the expected descriptions and names, evaluate to PyTorch's losses, stack and
//! path; unsupported graphs are refused naming the op and the node; export then import gives the same
//! network and weights.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "common/architectures.rs"]
mod architectures;
#[path = "common/mod.rs"]
mod common;

use architectures::{random_dataset, random_description, random_weights, Family};
use losscape::data::DeviceImages;
use losscape::io::{read_weights, write_weights, WeightStack};
use losscape::model::description::{Activation, Description, Head, Input, Layer, LayerKind};
use losscape::model::onnx::{self, Loss};
use losscape::model::{init_vector, Arch, Evaluator, Plan, Want};
use onnx_protobuf::Message;

/// The MNIST test images the fixtures' PyTorch losses are taken on (make.py's MNIST_IMAGES).
const MNIST_IMAGES: usize = 500;

fn fixture(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx").join(name);
    assert!(p.is_file(), "{}: the fixture is missing; run tests/data/onnx/make.py (README.md there)", p.display());
    p
}

fn digits() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/digits").display().to_string()
}

fn losscape(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_losscape")).args(args).env_remove("LOSSCAPE_DATA").output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "failed: {}", text(&o.stderr));
    text(&o.stdout)
}

/// The error of a failed command (status 1, no panic).
fn failure(o: Output) -> String {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "expected a failure; stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    err
}

fn assert_contains(message: &str, parts: &[&str]) {
    for p in parts {
        assert!(message.contains(p), "the message lacks `{p}`:\n{message}");
    }
}

fn expected(key: &str) -> f64 {
    let text = std::fs::read_to_string(fixture("expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["images"], 200, "the losses are PyTorch's on the first 200 test images");
    v[key].as_f64().unwrap_or_else(|| panic!("expected.json has no loss for {key}"))
}

/// PyTorch's loss of an MNIST fixture on the first 500 images of the bundled MNIST test split.
fn expected_mnist(key: &str) -> f64 {
    let text = std::fs::read_to_string(fixture("expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mnist = &v["mnist"];
    assert_eq!(mnist["images"], MNIST_IMAGES, "the MNIST losses are PyTorch's on the first 500 test images");
    mnist[key].as_f64().unwrap_or_else(|| panic!("expected.json has no MNIST loss for {key}; run make.py"))
}

/// The losses `losscape eval ARGS --json` prints, one per vector, after checking that it evaluated the
/// images `--limit` asks for (all of them without one).
fn eval_losses(args: &[&str]) -> Vec<f64> {
    let out = ok(losscape(&[&["eval", "--json"], args].concat()));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    if let Some(at) = args.iter().position(|a| *a == "--limit") {
        assert_eq!(v["images"].to_string(), args[at + 1], "{out}");
    }
    v["losses"].as_array().unwrap().iter().map(|l| l.as_f64().unwrap()).collect()
}

fn str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn the_mlp_imports_as_its_sequential_with_the_state_dict_names() {
    let imported = onnx::import(&fixture("mlp.onnx"), None).unwrap();
    let want = Description {
        format: 1,
        name: Some("mlp".into()),
        input: Input::Image { c: 1, h: 8, w: 8 },
        layers: vec![
            Layer::new(LayerKind::Flatten),
            Layer::new(LayerKind::Dense { out: 32, bias: true }),
            Layer::new(LayerKind::Act(Activation::Tanh)),
            Layer::new(LayerKind::Dense { out: 10, bias: true }),
        ],
        head: Head::CrossEntropy { classes: 10 },
    };
    assert_eq!(imported.description, want);
    let names: Vec<String> = want.derive().unwrap().params.into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["1.weight", "1.bias", "3.weight", "3.bias"]);
    assert!(imported.sources.iter().map(|s| &s.name).eq(names.iter()));
    // the description written by `import` reads back to the same network
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("net.toml");
    ok(losscape(&["import", str(&fixture("mlp.onnx")), "--out", str(&toml)]));
    assert_eq!(Description::parse(&std::fs::read_to_string(&toml).unwrap()).unwrap(), want);
}

#[test]
fn the_cnn_imports_a_stride_2_convolution_and_max_pooling() {
    let d = onnx::import(&fixture("cnn.onnx"), None).unwrap().description;
    assert_eq!(d.input, Input::Image { c: 1, h: 8, w: 8 });
    let kinds: Vec<LayerKind> = d.layers.iter().map(|l| l.kind).collect();
    assert_eq!(
        kinds,
        [
            LayerKind::Conv2d { out: 4, kernel: 3, stride: 2, padding: 1, bias: true },
            LayerKind::Act(Activation::Relu),
            LayerKind::MaxPool { kernel: 2, stride: 2 },
            LayerKind::Flatten,
            LayerKind::Dense { out: 10, bias: true },
        ]
    );
    let names: Vec<String> = d.derive().unwrap().params.into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["0.weight", "0.bias", "4.weight", "4.bias"]);
}

#[test]
fn the_lenet_fixture_is_the_builtin_lenet() {
    // a module with attributes conv1..fc3 (not a Sequential) and x.view(-1, 400): a Reshape
    let mut d = onnx::import(&fixture("lenet5.onnx"), None).unwrap().description;
    let builtin = Description::builtin("lenet").unwrap();
    d.name = builtin.name.clone();
    assert_eq!(d, builtin);
}

#[test]
fn eval_of_the_onnx_model_gives_pytorchs_losses() {
    // the MLP with its own initializers and two checkpoints; the CNN (stride-2 convolution, max pooling)
    // with its own
    let cases = [
        ("mlp.onnx", "mlp.onnx"),
        ("mlp.onnx", "ckpt_a.safetensors"),
        ("mlp.onnx", "ckpt_b.safetensors"),
        ("cnn.onnx", "cnn.onnx"),
    ];
    for (model, weights) in cases {
        let (model, weights_path) = (fixture(model), fixture(weights));
        let got = eval_losses(&[
            "--model",
            str(&model),
            "--weights",
            str(&weights_path),
            "--data",
            &digits(),
            "--limit",
            "200",
            "--backend",
            "cpu",
        ])[0];
        let want = expected(weights);
        assert!((got - want).abs() <= 1e-5 * want, "{weights}: losscape {got}, PyTorch {want}");
    }
}

#[test]
fn eval_of_the_mnist_fixtures_gives_pytorchs_losses_on_the_suites_backend() {
    // no --backend and no --data: the suite's backend (LOSSCAPE_BACKEND reaches the child, so the wgpu
    // pass runs the WGSL kernels) on the bundled MNIST, the first 500 test images
    for name in ["mnist_mlp.onnx", "mnist_cnn.onnx", "lenet5.onnx"] {
        let model = fixture(name);
        let limit = MNIST_IMAGES.to_string();
        let got = eval_losses(&["--model", str(&model), "--weights", str(&model), "--limit", &limit])[0];
        let want = expected_mnist(name);
        assert!((got - want).abs() <= 1e-5 * want, "{name}: losscape {got}, PyTorch {want}");
    }
}

#[test]
fn export_import_eval_gives_the_builtin_networks_losses() {
    // the init vector of each built-in network, evaluated as itself and as the ONNX model `export` writes
    // (on the suite's backend, 300 MNIST test images)
    let dir = tempfile::tempdir().unwrap();
    for arch in [Arch::Fcp, Arch::Lenet, Arch::Autoencoder] {
        let (id, weights) = (arch.id(), dir.path().join(format!("{}.safetensors", arch.id())));
        write_weights(&weights, &WeightStack::new(arch, init_vector(arch, 5))).unwrap();
        // named otherwise: a model named like a paper network is refused as --model (rename the file)
        let model = dir.path().join(format!("exported-{id}.onnx"));
        ok(losscape(&["export", "--model", id, "--weights", str(&weights), "--out", str(&model)]));
        let native = eval_losses(&["--model", id, "--weights", str(&weights), "--limit", "300"]);
        let exported = eval_losses(&["--model", str(&model), "--weights", str(&model), "--limit", "300"]);
        assert!(native[0].is_finite() && native[0] > 0.0, "{id}: {native:?}");
        assert_eq!(native, exported, "{id}: the exported model evaluates differently");
    }
    // the LSTM's export is refused with its reason (an ONNX LSTM node is not written yet)
    let weights = dir.path().join("lstm.safetensors");
    write_weights(&weights, &WeightStack::new(Arch::Lstm, init_vector(Arch::Lstm, 5))).unwrap();
    let model = dir.path().join("lstm.onnx");
    let err = failure(losscape(&["export", "--model", "lstm", "--weights", str(&weights), "--out", str(&model)]));
    assert_contains(&err, &["not exported to ONNX yet"]);
    assert!(!model.exists(), "a refused export leaves no file");
}

/// The first seed of `family` whose random network the plan builder takes (and, for a convolution stack,
/// that pools after a convolution): the generator draws some the builder refuses (docs/networks.md §7).
fn random_seed(family: Family) -> u64 {
    let pools = |d: &Description| {
        let at = |f: fn(&LayerKind) -> bool| d.layers.iter().position(|l| f(&l.kind));
        let conv = at(|k| matches!(k, LayerKind::Conv2d { .. }));
        let pool = at(|k| matches!(k, LayerKind::MaxPool { .. } | LayerKind::AvgPool { .. }));
        family != Family::Conv || conv.zip(pool).is_some_and(|(c, p)| c < p)
    };
    (0..60)
        .filter(|&s| Family::of(s) == family)
        .find(|&s| {
            let d = random_description(s);
            pools(&d) && Plan::for_description(&d, 0..4, 4, 2, 4, 0).is_ok()
        })
        .unwrap_or_else(|| panic!("no random {family:?} network among 60 seeds plans"))
}

#[test]
fn export_import_eval_gives_a_random_networks_losses() {
    // a random convolution stack (convolution then pooling) and a random MLP, with random weights, on
    // their own random images (the suite's device): the exported file, read back as `--model X.onnx
    // --weights X.onnx` reads it, gives the same losses as the description it came from
    let device = common::gpu();
    let dir = tempfile::tempdir().unwrap();
    for seed in [random_seed(Family::Conv), random_seed(Family::Mlp)] {
        let desc = random_description(seed);
        let vectors: Vec<f32> =
            (0..2).flat_map(|b| random_weights(&desc, 10 * seed + b, 1.5)).map(|v| v as f32).collect();
        let n = desc.derive().unwrap().n_params();
        let path = dir.path().join(format!("random-{seed}.onnx"));
        std::fs::write(&path, onnx::export(&desc, &vectors[..n]).unwrap()).unwrap();
        let arch = Arch::parse(str(&path)).unwrap();
        let mut imported = arch.description().clone();
        imported.name.clone_from(&desc.name);
        assert_eq!(imported, desc, "seed {seed}");
        let back = read_weights(&path, arch).unwrap();
        assert_eq!(back.vector(0), &vectors[..n], "seed {seed}");
        let data = random_dataset(&desc, 60, seed);
        let images = DeviceImages::upload(&device, &data).unwrap();
        let losses = |d: &Description, flat: &[f32]| {
            let eval = Evaluator::for_description(d, &images, 0..60, flat.len() / n, None).unwrap();
            eval.set_weights(flat).unwrap();
            eval.evaluate(Want::Loss).unwrap().iter().map(|r| r.loss).collect::<Vec<f64>>()
        };
        let native = losses(&desc, &vectors);
        // the second vector through the export too, so that two different losses are compared
        std::fs::write(&path, onnx::export(&desc, &vectors[n..]).unwrap()).unwrap();
        let second = read_weights(&path, arch).unwrap();
        let exported = losses(arch.description(), &[back.vector(0), second.vector(0)].concat());
        assert!(native.iter().all(|l| l.is_finite()) && native[0] != native[1], "seed {seed}: {native:?}");
        assert_eq!(native, exported, "seed {seed}:\n{}", desc.to_toml());
    }
}

#[test]
fn stacked_checkpoints_hold_both_state_dicts_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let (model, set) = (fixture("mlp.onnx"), dir.path().join("set.safetensors"));
    let (a, b) = (fixture("ckpt_a.safetensors"), fixture("ckpt_b.safetensors"));
    ok(losscape(&["stack", str(&a), str(&b), "--model", str(&model), "--out", str(&set)]));
    let arch = Arch::parse(str(&model)).unwrap();
    let stack = read_weights(&set, arch).unwrap();
    assert_eq!(stack.count(), 2);
    assert_eq!(stack.vector(0), read_weights(&a, arch).unwrap().vector(0));
    assert_eq!(stack.vector(1), read_weights(&b, arch).unwrap().vector(0));
    assert_ne!(stack.vector(0), stack.vector(1));
    let out = dir.path().join("run");
    ok(losscape(&[
        "paths",
        "--model",
        str(&model),
        "--set",
        str(&set),
        "--data",
        &digits(),
        "--pairs",
        "1",
        "--iterations",
        "3",
        "--out",
        str(&out),
        "--backend",
        "cpu",
        "--quiet",
    ]));
    let lines = std::fs::read_to_string(out.join("paths.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
}

#[test]
fn unsupported_graphs_are_refused_naming_the_op_and_the_node() {
    let err = failure(losscape(&["import", str(&fixture("batchnorm.onnx")), "--out", "/dev/null"]));
    assert_contains(&err, &["batchnorm.onnx", "BatchNormalization node `/1/BatchNormalization`", "Gemm, MatMul"]);
    let err = failure(losscape(&["import", str(&fixture("residual.onnx")), "--out", "/dev/null"]));
    assert_contains(&err, &["residual.onnx", "Add node `/Add`", "branches", "residual additions"]);
    // an operator outside the vocabulary, in a file this test writes
    let d = Description::parse("mlp:64-32-10:tanh").unwrap();
    let mut model = onnx::parse(&onnx::export(&d, &vec![0.0; d.derive().unwrap().n_params()]).unwrap()).unwrap();
    let node = model.graph.as_mut().unwrap().node.iter_mut().find(|n| n.op_type == "Tanh").unwrap();
    node.op_type = "Gelu".into();
    node.name = "/1/act".into();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gelu.onnx");
    std::fs::write(&path, model.write_to_bytes().unwrap()).unwrap();
    let err = failure(losscape(&["import", str(&path), "--out", "/dev/null"]));
    assert_contains(&err, &["gelu.onnx", "operator Gelu is not supported", "Gelu node `/1/act`", "Softplus"]);
    // and as a --model: a usage error that says the same
    let o = losscape(&["init", "--model", str(&path), "--out", "/dev/null"]);
    assert_eq!(o.status.code(), Some(2));
    assert_contains(&text(&o.stderr), &["operator Gelu is not supported"]);
}

/// `description` and `vector` exported, written as `name.onnx`, and imported back.
fn round_trip(description: &Description, vector: &[f32], dir: &Path, name: &str) {
    let path = dir.join(format!("{name}.onnx"));
    std::fs::write(&path, onnx::export(description, vector).unwrap()).unwrap();
    let back = onnx::import(&path, None).unwrap();
    assert_eq!(&back.description, description, "{name}");
    let derived = description.derive().unwrap();
    let specs: Vec<(&str, &[usize])> = derived.params.iter().map(|p| (p.name.as_str(), p.shape.as_slice())).collect();
    assert_eq!(onnx::vector(&std::fs::read(&path).unwrap(), &specs).unwrap(), vector, "{name}");
}

#[test]
fn export_then_import_gives_the_same_network_and_weights() {
    let dir = tempfile::tempdir().unwrap();
    for arch in [Arch::Fcp, Arch::Lenet, Arch::Autoencoder] {
        round_trip(arch.description(), &init_vector(arch, 3), dir.path(), arch.id());
    }
    // a network of every exported layer kind, names of its own, no biases somewhere
    let custom = Description::parse(
        r#"format = 1
name = "mixed"
[input]
image = [3, 12, 12]
[[layers]]
kind = "conv2d"
name = "features.conv"
out = 5
kernel = 3
stride = 2
padding = 1
bias = false
[[layers]]
kind = "sigmoid"
[[layers]]
kind = "avg_pool"
kernel = 2
stride = 1
[[layers]]
kind = "max_pool"
kernel = 2
[[layers]]
kind = "flatten"
[[layers]]
kind = "dense"
out = 7
[[layers]]
kind = "softplus"
[[layers]]
kind = "dense"
name = "head"
out = 4
bias = false
[head]
kind = "cross_entropy"
classes = 4
"#,
    )
    .unwrap();
    let n = custom.derive().unwrap().n_params();
    let vector: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0).collect();
    round_trip(&custom, &vector, dir.path(), "mixed");
    // the LSTM is refused with its reason, not written wrong
    let err = onnx::export(Arch::Lstm.description(), &init_vector(Arch::Lstm, 0)).unwrap_err();
    assert!(format!("{err:#}").contains("not exported to ONNX yet"), "{err:#}");
}

#[test]
fn export_writes_a_model_that_evaluates_like_its_weights() {
    let dir = tempfile::tempdir().unwrap();
    let (model, out) = (fixture("mlp.onnx"), dir.path().join("b.onnx"));
    ok(losscape(&[
        "export",
        "--model",
        str(&model),
        "--weights",
        str(&fixture("ckpt_b.safetensors")),
        "--out",
        str(&out),
    ]));
    let got = eval_losses(&[
        "--model",
        str(&out),
        "--weights",
        str(&out),
        "--data",
        &digits(),
        "--limit",
        "200",
        "--backend",
        "cpu",
    ])[0];
    let want = expected("ckpt_b.safetensors");
    assert!((got - want).abs() <= 1e-5 * want, "exported: {got}, PyTorch {want}");
    let err = failure(losscape(&[
        "export",
        "--model",
        str(&model),
        "--weights",
        str(&fixture("ckpt_b.safetensors")),
        "--vector",
        "1",
        "--out",
        str(&out),
    ]));
    assert_contains(&err, &["--vector", "there is no vector 1"]);
}

#[test]
fn a_data_parallel_prefix_and_a_torch_pickle_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture("mlp.onnx");
    let arch = Arch::parse(str(&model)).unwrap();
    // the checkpoint's tensors renamed module.<name>, as nn.DataParallel saves them
    let bytes = std::fs::read(fixture("ckpt_a.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let views: Vec<(String, safetensors::tensor::TensorView)> =
        st.tensors().into_iter().map(|(n, v)| (format!("module.{n}"), v)).collect();
    let prefixed = dir.path().join("dp.safetensors");
    std::fs::write(&prefixed, safetensors::serialize(views, None).unwrap()).unwrap();
    let err = format!("{:#}", read_weights(&prefixed, arch).unwrap_err());
    assert_contains(
        &err,
        &["dp.safetensors", "prefix 'module.'", "model.module.state_dict()", "removeprefix('module.')"],
    );
    let pt = dir.path().join("ckpt.pt");
    // torch.save's zip archive: its first entry is <archive>/data.pkl
    let mut zip = b"PK\x03\x04".to_vec();
    zip.extend([0; 22]);
    zip.extend((b"ckpt/data.pkl".len() as u16).to_le_bytes());
    zip.extend([0; 2]);
    zip.extend(b"ckpt/data.pkl\x80\x02}q\x00");
    std::fs::write(&pt, zip).unwrap();
    let err = failure(losscape(&["stack", str(&pt), "--model", str(&model), "--out", "/dev/null"]));
    assert_contains(&err, &["ckpt.pt", "PyTorch pickle", "st.save_file(torch.load('x.pt'), 'x.safetensors')"]);
    // a checkpoint of another network: the tensors named
    let narrow = dir.path().join("narrow.toml");
    std::fs::write(
        &narrow,
        "format = 1\n[input]\nimage = [1, 8, 8]\n[[layers]]\nkind = \"flatten\"\n[[layers]]\nkind = \"dense\"\nout = 16\n\
         [[layers]]\nkind = \"tanh\"\n[[layers]]\nkind = \"dense\"\nout = 10\n[head]\nkind = \"cross_entropy\"\nclasses = 10\n",
    )
    .unwrap();
    let err =
        format!("{:#}", read_weights(&fixture("ckpt_a.safetensors"), Arch::parse(str(&narrow)).unwrap()).unwrap_err());
    assert_contains(&err, &["ckpt_a.safetensors", "'1.weight'", "[32, 64]", "expected [16, 64]"]);
}

#[test]
fn the_loss_option_chooses_the_head() {
    let imported = onnx::import(&fixture("mlp.onnx"), Some(Loss::SigmoidMse));
    // 10 outputs cannot reconstruct 64 pixels: the head's own error, naming the file
    let err = format!("{:#}", imported.unwrap_err());
    assert_contains(&err, &["mlp.onnx", "sigmoid_mse", "64"]);
}

#[test]
fn matmul_then_add_is_a_linear_layer() {
    // Gemm(x, W, b) rewritten as MatMul(x, Transpose(W)) + b, and as MatMul(x, K) + b with K = Wᵀ stored
    let d = Description::parse("mlp:64-32-10:relu").unwrap();
    let n = d.derive().unwrap().n_params();
    let vector: Vec<f32> = (0..n).map(|i| i as f32 / n as f32).collect();
    let dir = tempfile::tempdir().unwrap();
    for stored_transposed in [false, true] {
        let mut model = onnx::parse(&onnx::export(&d, &vector).unwrap()).unwrap();
        let graph = model.graph.as_mut().unwrap();
        let at = graph.node.iter().position(|n| n.op_type == "Gemm").unwrap();
        let gemm = graph.node.remove(at);
        let (x, w, b, y) = (&gemm.input[0], &gemm.input[1], &gemm.input[2], &gemm.output[0]);
        let node = |op: &str, inputs: &[&str], output: &str| {
            let mut n = onnx_protobuf::NodeProto::new();
            (n.op_type, n.name, n.output) = (op.into(), format!("/0/{op}"), vec![output.into()]);
            n.input = inputs.iter().map(|s| s.to_string()).collect();
            n
        };
        let weight = if stored_transposed {
            let t = graph.initializer.iter_mut().find(|t| &t.name == w).unwrap();
            let (rows, cols) = (t.dims[0] as usize, t.dims[1] as usize);
            let values: Vec<f32> =
                t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            t.raw_data = (0..cols)
                .flat_map(|j| (0..rows).map(move |i| (i, j)))
                .flat_map(|(i, j)| values[i * cols + j].to_le_bytes())
                .collect();
            t.dims.reverse();
            w.clone()
        } else {
            graph.node.insert(at, node("Transpose", &[w], "wt"));
            "wt".to_string()
        };
        let at = at + usize::from(!stored_transposed);
        graph.node.insert(at, node("MatMul", &[x, &weight], "mm"));
        graph.node.insert(at + 1, node("Add", &["mm", b], y));
        let path = dir.path().join("matmul.onnx");
        std::fs::write(&path, model.write_to_bytes().unwrap()).unwrap();
        let back = onnx::import(&path, None).unwrap();
        assert_eq!(back.description.layers, d.layers, "transposed storage: {stored_transposed}");
        let derived = d.derive().unwrap();
        let specs: Vec<(&str, &[usize])> =
            derived.params.iter().map(|p| (p.name.as_str(), p.shape.as_slice())).collect();
        assert_eq!(onnx::vector(&std::fs::read(&path).unwrap(), &specs).unwrap(), vector);
    }
}
