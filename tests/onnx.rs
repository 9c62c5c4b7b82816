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
use losscape::model::onnx::{self, Origin};
use losscape::model::{init_vector, Arch, Evaluator, Network, Plan, Want};
use losscape::ops::Act;
use onnx_protobuf::{GraphProto, Message};

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
fn a_view_by_the_batch_size_is_a_flatten_and_other_computed_shapes_are_refused() {
    // x.view(x.size(0), -1) under a dynamic batch axis: Shape, Gather of index 0, Unsqueeze, Concat
    // with [-1], Reshape; the same layers as mnist_cnn's Sequential, whose loss it has (expected.json)
    let view = onnx::import(&fixture("mnist_cnn_view.onnx"), None).unwrap().description;
    let sequential = onnx::import(&fixture("mnist_cnn.onnx"), None).unwrap().description;
    let kinds = |d: &Description| d.layers.iter().map(|l| l.kind).collect::<Vec<_>>();
    assert_eq!(kinds(&view), kinds(&sequential));
    let ops = |m: &onnx_protobuf::ModelProto| m.graph.node.iter().map(|n| n.op_type.clone()).collect::<Vec<_>>();
    let model = onnx::parse(&std::fs::read(fixture("mnist_cnn_view.onnx")).unwrap()).unwrap();
    for op in ["Shape", "Gather", "Unsqueeze", "Concat", "Reshape"] {
        assert!(ops(&model).iter().any(|o| o == op), "the fixture computes its shape with {op}: {:?}", ops(&model));
    }
    // the shape's second dimension instead of the batch size: not a flatten, refused naming the node
    let dir = tempfile::tempdir().unwrap();
    let mut edited = model.clone();
    let graph = edited.graph.as_mut().unwrap();
    let gather = graph.node.iter().find(|n| n.op_type == "Gather").unwrap().clone();
    let index = gather.input[1].clone();
    let one = onnx_protobuf::TensorProto {
        name: "index_one".into(),
        data_type: 7,
        int64_data: vec![1],
        ..Default::default()
    };
    graph.initializer.push(one);
    for n in graph.node.iter_mut().filter(|n| n.op_type == "Gather") {
        n.input[1] = n.input[1].replace(&index, "index_one");
    }
    let path = dir.path().join("edited.onnx");
    std::fs::write(&path, edited.write_to_bytes().unwrap()).unwrap();
    let err = format!("{:#}", onnx::import(&path, None).unwrap_err());
    assert_contains(&err, &["edited.onnx", "Reshape node", "constant shape", "x.view(x.size(0), -1)"]);
}

/// The float values of the initializer `name` of an ONNX file.
fn initializer(model: &onnx_protobuf::ModelProto, name: &str) -> Vec<f32> {
    let t = model.graph.initializer.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no initializer {name}"));
    t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

#[test]
fn the_lstm_fixtures_are_the_builtin_lstm_with_the_state_dict_weights() {
    // PyTorch's export without constant folding: Reshape, the permutation's Gather, Reshape, Transpose,
    // the LSTM with W, R, B as Slices and Concats of the state_dict tensors, out[:, -1], MatMul
    let path = fixture("mnist_lstm.onnx");
    let builtin = Description::builtin("lstm").unwrap();
    let mut d = onnx::import(&path, None).unwrap().description;
    d.name = builtin.name.clone();
    assert_eq!(d, builtin, "the permutation's Gather is permute_seed = 1234");
    // the weights, read through ONNX's gate order and back, are the state_dict's tensors bit for bit
    let model = onnx::parse(&std::fs::read(&path).unwrap()).unwrap();
    let arch = Arch::parse(str(&path)).unwrap();
    let read = read_weights(&path, arch).unwrap();
    let state_dict: Vec<f32> = arch.params().iter().flat_map(|p| initializer(&model, p.name)).collect();
    assert_eq!(read.vector(0), &state_dict[..]);
    // constant folding names the tensors onnx::LSTM_… and onnx::MatMul_… (Wᵀ): the names come from the
    // nodes' modules (/gru/LSTM, /fc/MatMul); h_n[-1], a Gather of Y_h, is the last hidden state too
    let folded = onnx::import(&fixture("mnist_lstm_folded.onnx"), None).unwrap();
    let mut want = builtin.clone();
    want.input = Input::Rows { c: 1, h: 28, w: 28, permute_seed: None };
    let mut d = folded.description;
    d.name = builtin.name.clone();
    assert_eq!(d, want);
    let fc = folded.sources.iter().find(|s| s.name == "fc.weight").unwrap();
    assert!(
        matches!(&fc.origin, Origin::Initializer { name, transposed: true } if name.starts_with("onnx::MatMul")),
        "{fc:?}"
    );
}

/// A small LSTM network (rows [1, 4, 3] permuted by seed 5, 2 hidden units, 3 classes) exported, with
/// `edit` applied to its graph, imported: the error.
fn edited_lstm_error(dir: &Path, name: &str, edit: impl FnOnce(&mut GraphProto)) -> String {
    let d = Description::parse(
        "format = 1\n[input]\nrows = [1, 4, 3]\npermute_seed = 5\n[[layers]]\nkind = \"lstm\"\nhidden = 2\n\
         [[layers]]\nkind = \"dense\"\nout = 3\n[head]\nkind = \"cross_entropy\"\nclasses = 3\n",
    )
    .unwrap();
    let n = d.derive().unwrap().n_params();
    let mut model = onnx::parse(&onnx::export(&d, &vec![0.5; n]).unwrap()).unwrap();
    let path = dir.join(format!("{name}.onnx"));
    std::fs::write(&path, model.write_to_bytes().unwrap()).unwrap();
    assert!(onnx::import(&path, None).is_ok(), "{name}: the unedited model imports");
    edit(model.graph.as_mut().unwrap());
    std::fs::write(&path, model.write_to_bytes().unwrap()).unwrap();
    let err = format!("{:#}", onnx::import(&path, None).expect_err(name));
    assert_contains(&err, &[&format!("{name}.onnx")]);
    err
}

#[test]
fn lstms_that_are_not_the_vocabularys_are_refused_with_the_node_and_the_reason() {
    // two exported by PyTorch: nn.LSTM(num_layers=2), nn.LSTM(bidirectional=True)
    let err = failure(losscape(&["import", str(&fixture("lstm_stacked.onnx")), "--out", "/dev/null"]));
    assert_contains(&err, &["LSTM node `/gru/LSTM_1`", "a second LSTM", "num_layers = 1"]);
    let err = failure(losscape(&["import", str(&fixture("lstm_bidirectional.onnx")), "--out", "/dev/null"]));
    assert_contains(&err, &["LSTM node `/gru/LSTM`", "direction `bidirectional`"]);
    // the others edited into an exported LSTM
    let dir = tempfile::tempdir().unwrap();
    let lstm = |g: &mut GraphProto| g.node.iter_mut().find(|n| n.op_type == "LSTM").unwrap().clone();
    let set = |g: &mut GraphProto, f: &dyn Fn(&mut onnx_protobuf::NodeProto)| {
        f(g.node.iter_mut().find(|n| n.op_type == "LSTM").unwrap())
    };
    let string = |name: &str, values: &[&str]| {
        let mut a = onnx_protobuf::AttributeProto::new();
        a.name = name.into();
        a.type_ = onnx_protobuf::attribute_proto::AttributeType::STRINGS.into();
        a.strings = values.iter().map(|v| v.as_bytes().to_vec()).collect();
        a
    };
    let number = |name: &str, int: bool| {
        use onnx_protobuf::attribute_proto::AttributeType;
        let mut a = onnx_protobuf::AttributeProto::new();
        (a.name, a.i, a.f) = (name.into(), 1, 3.0);
        a.type_ = if int { AttributeType::INT } else { AttributeType::FLOAT }.into();
        a
    };
    let err = edited_lstm_error(dir.path(), "clip", |g| set(g, &|n| n.attribute.push(number("clip", false))));
    assert_contains(&err, &["LSTM node `/0/LSTM`", "clip is not mapped"]);
    let err = edited_lstm_error(dir.path(), "acts", |g| {
        set(g, &|n| n.attribute.push(string("activations", &["Sigmoid", "Relu", "Tanh"])))
    });
    assert_contains(&err, &["activations", "Relu", "(Sigmoid, Tanh, Tanh)"]);
    let err = edited_lstm_error(dir.path(), "forget", |g| set(g, &|n| n.attribute.push(number("input_forget", true))));
    assert_contains(&err, &["input_forget = 1"]);
    // a non-zero initial state, peepholes
    let err = edited_lstm_error(dir.path(), "h0", |g| {
        let mut h0 = onnx_protobuf::TensorProto::new();
        (h0.name, h0.dims, h0.data_type, h0.float_data) = ("h0".into(), vec![1, 1, 2], 1, vec![0.0, 0.25]);
        g.initializer.push(h0);
        set(g, &|n| n.input.extend(["".into(), "h0".into()]))
    });
    assert_contains(&err, &["initial_h `h0` is not zero", "h0 = c0 = 0"]);
    let err =
        edited_lstm_error(dir.path(), "peephole", |g| set(g, &|n| n.input.extend(["", "", "", "p"].map(String::from))));
    assert_contains(&err, &["peephole weights (input P `p`)"]);
    // the cell state used instead of the hidden one; the first step's hidden state instead of the last
    let err = edited_lstm_error(dir.path(), "cell", |g| {
        let y_c = lstm(g).output[1].replace("_output_1", "_output_2");
        set(g, &|n| n.output.push(y_c.clone()));
        g.node.iter_mut().find(|n| n.op_type == "Squeeze").unwrap().input[0] = y_c.clone();
    });
    assert_contains(&err, &["its cell state Y_c is used"]);
    let err = edited_lstm_error(dir.path(), "first", |g| {
        // Y (4 steps, 1, batch, 2) → Gather step 0 → (1, batch, 2) → Squeeze
        let y = lstm(g).output[0].clone();
        let mut index = onnx_protobuf::TensorProto::new();
        (index.name, index.data_type, index.int64_data) = ("step0".into(), 7, vec![0]);
        g.initializer.push(index);
        let mut gather = onnx_protobuf::NodeProto::new();
        (gather.op_type, gather.name) = ("Gather".into(), "/0/first".into());
        (gather.input, gather.output) = (vec![y, "step0".into()], vec!["first".into()]);
        let at = g.node.iter().position(|n| n.op_type == "Squeeze").unwrap();
        g.node[at].input[0] = "first".into();
        g.node.insert(at, gather);
    });
    assert_contains(
        &err,
        &["Gemm node `/1/Gemm` takes the LSTM's output as [batch, 2] of other steps", "last hidden state"],
    );
    // a pixel order no seed gives; something other than moving pixels before the LSTM
    let err = edited_lstm_error(dir.path(), "order", |g| {
        let perm = g.initializer.iter_mut().find(|t| t.name == "/input/permutation").unwrap();
        let mut v: Vec<i64> =
            perm.raw_data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect();
        v.swap(0, 1);
        perm.raw_data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    });
    assert_contains(
        &err,
        &["Gather node `/input/Gather`", "reorders the 12 pixels", "torch.randperm(12)", "permute_seed"],
    );
    let err = edited_lstm_error(dir.path(), "relu", |g| {
        let t = g.node.iter_mut().find(|n| n.op_type == "Transpose").unwrap();
        (t.op_type, t.attribute) = ("Relu".into(), Vec::new());
    });
    assert_contains(&err, &["Relu node `/input/Transpose`", "before an LSTM only reshapes"]);
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
    let names = ["mnist_mlp.onnx", "mnist_cnn.onnx", "mnist_cnn_view.onnx", "lenet5.onnx", "mnist_lstm.onnx"];
    for name in names.into_iter().chain(["mnist_lstm_folded.onnx"]) {
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
    for arch in Arch::ALL {
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
    // a random convolution stack (convolution then pooling), a random MLP and a random LSTM over rows
    // (an ONNX LSTM node, a Gather when it permutes the pixels), with random weights, on
    // their own random images (the suite's device): the exported file, read back as `--model X.onnx
    // --weights X.onnx` reads it, gives the same losses as the description it came from
    let device = common::gpu();
    let dir = tempfile::tempdir().unwrap();
    for seed in [random_seed(Family::Conv), random_seed(Family::Mlp), random_seed(Family::Lstm)] {
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

/// `losscape BEFORE… paths` of one pair of `set` on the digits, on the CPU, into `out`, with `after`.
fn digits_path(before: &[&str], model: &Path, set: &Path, out: &Path, after: &[&str]) {
    let data = digits();
    let args = ["paths", "--model", str(model), "--set", str(set), "--data", &data, "--pairs", "1", "--out", str(out)];
    ok(losscape(&[before, &args[..], &["--backend", "cpu", "--quiet"], after].concat()));
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
    digits_path(&[], &model, &set, &out, &["--iterations", "3"]);
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

#[test]
fn a_paper_network_exported_with_relu_reads_back_as_a_network_of_its_own() {
    // `--activation relu` makes another network than `fcp`: the file records `fcp-relu`, which --model
    // reads as that network (the paper's name would be refused: its description is not the built-in one)
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("fcp.safetensors");
    write_weights(&weights, &WeightStack::new(Arch::Fcp, init_vector(Arch::Fcp, 6))).unwrap();
    let export = |model: &Path, extra: &[&str]| {
        let base = ["export", "--model", "fcp", "--weights", str(&weights), "--out", str(model)];
        ok(losscape(&[&base[..], extra].concat()));
        Arch::parse(str(model)).unwrap()
    };
    let relu = dir.path().join("relu.onnx");
    let arch = export(&relu, &["--activation", "relu"]);
    assert_eq!(arch.id(), "fcp-relu");
    assert_eq!(arch.description().layers, Network { arch: Arch::Fcp, act: Act::Relu }.description().layers);
    let limit = ["--limit", "200"];
    let native =
        eval_losses(&["--model", "fcp", "--activation", "relu", "--weights", str(&weights), limit[0], limit[1]]);
    let back = eval_losses(&["--model", str(&relu), "--weights", str(&relu), limit[0], limit[1]]);
    assert_eq!(native, back);
    let softplus = eval_losses(&["--model", "fcp", "--weights", str(&weights), limit[0], limit[1]]);
    assert_ne!(softplus, native, "the two activations give different losses");
    // the default activation reads back as the paper's network itself
    assert_eq!(export(&dir.path().join("softplus.onnx"), &[]), Arch::Fcp);
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
    for arch in Arch::ALL {
        round_trip(arch.description(), &init_vector(arch, 3), dir.path(), arch.id());
    }
    // the authors' two LSTM solutions: their weights come back bit for bit through ONNX's gate order
    let authors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lstm_authors_rows01.npy");
    let rows = read_weights(&authors, Arch::Lstm).unwrap();
    for r in 0..2 {
        round_trip(Arch::Lstm.description(), rows.vector(r), dir.path(), &format!("lstm-authors-{r}"));
    }
    // an LSTM over two channels' rows (a transpose before the rows), permuted, without biases
    let channels = Description::parse(
        "format = 1\nname = \"rows2\"\n[input]\nrows = [2, 6, 5]\npermute_seed = 7\n[[layers]]\nkind = \"lstm\"\n\
         hidden = 3\nbias = false\n[[layers]]\nkind = \"dense\"\nout = 4\n[[layers]]\nkind = \"tanh\"\n\
         [[layers]]\nkind = \"dense\"\nout = 3\n[head]\nkind = \"cross_entropy\"\nclasses = 3\n",
    )
    .unwrap();
    let n = channels.derive().unwrap().n_params();
    round_trip(&channels, &(0..n).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>(), dir.path(), "rows2");
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
    let o = losscape(&[
        "export",
        "--model",
        str(&model),
        "--weights",
        str(&fixture("ckpt_b.safetensors")),
        "--vector",
        "1",
        "--out",
        str(&out),
    ]);
    // a vector the file does not hold: a usage error (exit 2), as every data-dependent limit is
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_contains(&err, &["--vector", "there is no vector 1"]);
}

#[test]
fn a_data_parallel_prefix_and_a_torch_pickle_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture("mlp.onnx");
    let arch = Arch::parse(str(&model)).unwrap();
    // the checkpoint's tensors renamed <prefix><name>: the error of reading them
    let bytes = std::fs::read(fixture("ckpt_a.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let prefixed = |prefix: &str, file: &str| {
        let views: Vec<(String, safetensors::tensor::TensorView)> =
            st.tensors().into_iter().map(|(n, v)| (format!("{prefix}{n}"), v)).collect();
        let path = dir.path().join(file);
        std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
        format!("{:#}", read_weights(&path, arch).unwrap_err())
    };
    // as nn.DataParallel saves them
    let err = prefixed("module.", "dp.safetensors");
    assert_contains(
        &err,
        &["dp.safetensors", "prefix 'module.'", "model.module.state_dict()", "removeprefix('module.')"],
    );
    // another wrapper's prefix (a module holding the network as `self.model`): its own advice
    let err = prefixed("model.", "wrapped.safetensors");
    let advice = ["prefix 'model.'", "attribute `model`", "outer.model.state_dict()", "removeprefix('model.')"];
    assert_contains(&err, &[&["wrapped.safetensors"][..], &advice].concat());
    assert!(!err.contains("DataParallel") && !err.contains("model.module"), "{err}");
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

/// The status and error of a usage mistake (exit status 2, no panic).
fn usage_error(o: Output) -> String {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "expected a usage error; stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    err
}

#[test]
fn the_loss_option_chooses_an_onnx_models_head_wherever_a_model_is_taken() {
    // an autoencoder on 8×8 digits as PyTorch exports one: no recorded head, the graph ends in the
    // reconstruction's logits (losscape's export with its metadata and its head's Sigmoid removed)
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("ae8.toml");
    std::fs::write(
        &toml,
        "format = 1\nname = \"ae8\"\n[input]\nimage = [1, 8, 8]\n[[layers]]\nkind = \"flatten\"\n[[layers]]\n\
         kind = \"dense\"\nout = 16\n[[layers]]\nkind = \"softplus\"\n[[layers]]\nkind = \"dense\"\nout = 64\n\
         [head]\nkind = \"sigmoid_mse\"\n",
    )
    .unwrap();
    let d = Arch::parse(str(&toml)).unwrap().description().clone();
    let n = d.derive().unwrap().n_params();
    let mut model = onnx::parse(&onnx::export(&d, &random_weights_f32(&d, n)).unwrap()).unwrap();
    model.metadata_props.clear();
    let graph = model.graph.as_mut().unwrap();
    let sigmoid = graph.node.pop().unwrap();
    assert_eq!(sigmoid.op_type, "Sigmoid");
    graph.node.last_mut().unwrap().output[0] = "output".into();
    let logits = dir.path().join("logits.onnx");
    std::fs::write(&logits, model.write_to_bytes().unwrap()).unwrap();
    let eval = |model: &Path, extra: &[&str]| {
        let base = ["--model", str(model), "--weights", str(&logits), "--data", &digits(), "--limit", "100"];
        eval_losses(&[&base[..], extra].concat())
    };
    // eval: with --loss mse-sigmoid the description's losses; without, the cross-entropy over 64 outputs
    let native = eval(&toml, &[]);
    assert_eq!(eval(&logits, &["--loss", "mse-sigmoid"]), native);
    let default = eval(&logits, &[]);
    assert!(default[0].is_finite() && default != native, "{default:?} {native:?}");
    // init, then paths with --loss before the subcommand: the run records the network with that head
    let set = dir.path().join("set.safetensors");
    ok(losscape(&["init", "--model", str(&logits), "--loss", "mse-sigmoid", "--count", "2", "--out", str(&set)]));
    let out = dir.path().join("run");
    digits_path(&["--loss", "mse-sigmoid"], &logits, &set, &out, &["--iterations", "1", "--points", "3"]);
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    assert_contains(&config, &["sigmoid_mse"]);
    // refused as usage errors: a network whose head is fixed, a command without a model, a head the
    // model records otherwise, a head that does not fit the graph
    let err = usage_error(losscape(&["eval", "--model", "fcp", "--loss", "cross-entropy", "--weights", "x"]));
    assert_contains(&err, &["--loss cross-entropy applies to an ONNX model", "`fcp` has a fixed head"]);
    let err = usage_error(losscape(&["eval", "--model", str(&toml), "--loss", "mse-sigmoid", "--weights", "x"]));
    assert_contains(&err, &["ae8.toml", "[head]"]);
    for command in [&["info"][..], &["bench", "--images", "8"], &["toy", "--out", "x"]] {
        // bench's default networks (the built-ins) do not take --loss, and are not named as if the user had
        let err = usage_error(losscape(&[command, &["--loss", "cross-entropy"]].concat()));
        assert_contains(&err, &["--loss applies to an ONNX model given with --model", "leave --loss out"]);
        assert!(!err.contains("fcp"), "{err}");
    }
    // the help of a command that takes no network does not offer --loss; one that takes a network does
    for (command, offers) in [("info", false), ("analyze", false), ("merge", false), ("toy", false), ("eval", true)] {
        let help = ok(losscape(&[command, "--help"]));
        assert_eq!(help.contains("--loss"), offers, "{command} --help: {help}");
    }
    let recorded = dir.path().join("recorded.onnx");
    std::fs::write(&recorded, onnx::export(&d, &random_weights_f32(&d, n)).unwrap()).unwrap();
    let err = usage_error(losscape(&["eval", "--model", str(&recorded), "--loss", "cross-entropy", "--weights", "x"]));
    assert_contains(&err, &["recorded.onnx", "records its head, mse-sigmoid", "leave --loss out"]);
    let toml_out = dir.path().join("recorded.toml");
    let err = usage_error(losscape(&["import", str(&recorded), "--loss", "cross-entropy", "--out", str(&toml_out)]));
    assert_contains(&err, &["recorded.onnx", "records its head, mse-sigmoid", "leave --loss out"]);
    assert!(!toml_out.exists(), "nothing written");
    let err = usage_error(losscape(&["eval", "--model", str(&fixture("mlp.onnx")), "--loss", "mse-sigmoid"]));
    assert_contains(&err, &["mlp.onnx", "sigmoid_mse", "64"]);
}

/// `n` weights of `d` drawn from its init distribution scaled up (so that losses differ clearly).
fn random_weights_f32(d: &Description, n: usize) -> Vec<f32> {
    let v: Vec<f32> = random_weights(d, 3, 1.5).into_iter().map(|v| v as f32).collect();
    assert_eq!(v.len(), n);
    v
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

#[test]
fn an_imported_network_that_no_command_takes_is_written_with_a_warning() {
    let d = Description::parse(
        "format = 1\nname = \"twice\"\n[input]\nimage = [1, 4, 4]\n[[layers]]\nkind = \"flatten\"\n[[layers]]\n\
         kind = \"dense\"\nout = 3\n[[layers]]\nkind = \"relu\"\n[[layers]]\nkind = \"relu\"\n[[layers]]\n\
         kind = \"dense\"\nout = 2\n[head]\nkind = \"cross_entropy\"\nclasses = 2\n",
    )
    .unwrap();
    let n = d.derive().unwrap().n_params();
    let dir = tempfile::tempdir().unwrap();
    let (model, toml) = (dir.path().join("twice.onnx"), dir.path().join("twice.toml"));
    std::fs::write(&model, onnx::export(&d, &vec![0.5; n]).unwrap()).unwrap();
    let o = losscape(&["import", str(&model), "--out", str(&toml)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_contains(&text(&o.stderr), &["warning", str(&toml), "every command will refuse", "two activations"]);
    assert!(toml.is_file(), "the description is written all the same");
    let refused =
        losscape(&["init", "--model", str(&toml), "--count", "1", "--out", str(&dir.path().join("w.safetensors"))]);
    assert!(!refused.status.success());
}
