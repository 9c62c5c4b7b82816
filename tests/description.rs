//! Network descriptions (src/model/description, docs/networks.md §7): the four built-ins derive exactly
//! `Arch::params()`; Sequential naming, shapes, init bounds and FLOPs written out by hand as PyTorch
//! gives them; every error names the problem.

use losscape::model::description::{Activation, Description, Head, Input, Layer, LayerKind, Shape, BUILTIN};
use losscape::model::{Arch, Plan};

/// (name, shape, fan_in) of every derived tensor.
fn tensors(d: &Description) -> Vec<(String, Vec<usize>, usize)> {
    d.derive().unwrap().params.into_iter().map(|p| (p.name, p.shape, p.fan_in)).collect()
}

fn t(name: &str, shape: &[usize], fan_in: usize) -> (String, Vec<usize>, usize) {
    (name.to_string(), shape.to_vec(), fan_in)
}

/// The error message of parsing `text`.
fn error(text: &str) -> String {
    match Description::parse(text) {
        Ok(d) => panic!("`{text}` parsed: {d:?}"),
        Err(e) => e.to_string(),
    }
}

fn assert_contains(message: &str, parts: &[&str]) {
    for p in parts {
        assert!(message.contains(p), "the message lacks `{p}`:\n{message}");
    }
}

#[test]
fn the_four_builtins_derive_exactly_the_arch_params() {
    assert_eq!(BUILTIN.map(|b| b.0), Arch::ALL.map(Arch::id));
    for arch in Arch::ALL {
        let d = Description::builtin(arch.id()).unwrap();
        let derived = d.derive().unwrap();
        let want: Vec<_> = arch.params().into_iter().map(|p| t(p.name, &p.shape, p.fan_in)).collect();
        assert_eq!(tensors(&d), want, "{}", arch.title());
        assert_eq!(derived.n_params(), arch.n_params(), "{}", arch.title());
        for (p, spec) in derived.params.iter().zip(arch.params()) {
            assert_eq!(p.init_bound(), spec.init_bound(), "{}", p.name);
        }
        assert_eq!(d.name.as_deref(), Some(arch.id()));
        assert_eq!(matches!(d.head, Head::CrossEntropy { classes: 10 }), arch.is_classifier());
    }
    assert_eq!(Description::builtin("resnet"), None);
    // the LSTM reads 28 rows of 28 pixels after the paper's permutation
    let lstm = Description::builtin("lstm").unwrap();
    assert_eq!(lstm.input, Input::Rows { c: 1, h: 28, w: 28, permute_seed: Some(1234) });
    assert_eq!(lstm.input_shape(), Shape::Sequence { steps: 28, features: 28 });
}

#[test]
fn builtin_flops_match_the_engine_plans_up_to_its_documented_accounting() {
    let flops = |arch: Arch| Description::builtin(arch.id()).unwrap().derive().unwrap().flops;
    let plan = |arch: Arch| Plan::flops_per_image_vector(arch).unwrap().0;
    assert_eq!(flops(Arch::Fcp), 2.0 * (784.0 * 50.0 + 50.0 * 50.0 + 50.0 * 10.0));
    assert_eq!(flops(Arch::Fcp), plan(Arch::Fcp));
    assert_eq!(flops(Arch::Autoencoder), plan(Arch::Autoencoder));
    // the engine adds the dense biases as rank-one products (2 FLOPs a value)
    assert_eq!(flops(Arch::Lenet) + 2.0 * (120.0 + 84.0 + 10.0), plan(Arch::Lenet));
    // conv1 6x28x28 from 25 taps, conv2 16x10x10 from 150, then 400-120-84-10
    let lenet = 2.0 * (6.0 * 784.0 * 25.0 + 16.0 * 100.0 * 150.0 + 400.0 * 120.0 + 120.0 * 84.0 + 84.0 * 10.0);
    assert_eq!(flops(Arch::Lenet), lenet);
    // the engine skips the first step's h0 W_hh^T (h0 = 0)
    assert_eq!(flops(Arch::Lstm) - 2.0 * 192.0 * 48.0, plan(Arch::Lstm));
}

#[test]
fn the_canonical_toml_reads_back_to_the_same_description() {
    let mut all: Vec<Description> = Arch::ALL.iter().map(|a| Description::builtin(a.id()).unwrap()).collect();
    all.push(Description::mlp("mlp:784-64-32-10:tanh:nobias").unwrap());
    all.push(Description::parse(CONV_STACK).unwrap());
    for d in all {
        let text = d.to_toml();
        assert_eq!(Description::from_toml(&text).unwrap(), d, "{text}");
    }
}

#[test]
fn an_mlp_is_named_as_pytorch_names_its_sequential() {
    // Sequential(Linear(784,64), Tanh(), Linear(64,10))
    let d = Description::parse("mlp:784-64-10:tanh").unwrap();
    assert_eq!(
        tensors(&d),
        vec![
            t("0.weight", &[64, 784], 784),
            t("0.bias", &[64], 784),
            t("2.weight", &[10, 64], 64),
            t("2.bias", &[10], 64)
        ]
    );
    assert_eq!(d.layers[1].kind, LayerKind::Act(Activation::Tanh));
    assert_eq!(d.input, Input::Features(784));
    assert_eq!(d.head, Head::CrossEntropy { classes: 10 });
    assert_eq!(d.derive().unwrap().n_params(), 784 * 64 + 64 + 64 * 10 + 10);
    // Sequential(Linear(784,64,bias=False), ReLU(), Linear(64,32,bias=False), ReLU(), Linear(32,10,bias=False))
    let d = Description::parse("mlp:784-64-32-10:nobias").unwrap();
    assert_eq!(
        tensors(&d),
        vec![t("0.weight", &[64, 784], 784), t("2.weight", &[32, 64], 64), t("4.weight", &[10, 32], 32)]
    );
    assert_eq!(d.layers[1].kind, LayerKind::Act(Activation::Relu), "relu is the default");
    // options in either order; a single layer has no activation
    assert_eq!(
        Description::mlp("mlp:10-5:nobias:sigmoid"),
        Description::mlp("mlp:10-5:sigmoid:nobias").map(|mut d| {
            d.name = Some("mlp:10-5:nobias:sigmoid".into());
            d
        })
    );
    assert_eq!(Description::mlp("mlp:10-5:softplus").unwrap().layers.len(), 1);
    // the same network written as TOML names its tensors the same
    let toml = r#"
        format = 1
        layers = [{ kind = "dense", out = 64 }, "tanh", { kind = "dense", out = 10 }]
        input = { features = 784 }
        head = { kind = "cross_entropy", classes = 10 }
    "#;
    assert_eq!(
        tensors(&Description::parse(toml).unwrap()),
        tensors(&Description::parse("mlp:784-64-10:tanh").unwrap())
    );
}

/// Sequential(Conv2d(3,8,3,stride=2,padding=1), ReLU(), MaxPool2d(2), Conv2d(8,4,2,bias=False), Tanh(),
/// AvgPool2d(2,stride=1), Flatten(), Linear(4,5)) on 3x13x11 images.
const CONV_STACK: &str = r#"
format = 1

[input]
image = [3, 13, 11]

[[layers]]
kind = "conv2d"
out = 8
kernel = 3
stride = 2
padding = 1

[[layers]]
kind = "relu"

[[layers]]
kind = "max_pool"
kernel = 2

[[layers]]
kind = "conv2d"
out = 4
kernel = 2
bias = false

[[layers]]
kind = "tanh"

[[layers]]
kind = "avg_pool"
kernel = 2
stride = 1

[[layers]]
kind = "flatten"

[[layers]]
kind = "dense"
out = 5

[head]
kind = "cross_entropy"
classes = 5
"#;

#[test]
fn a_conv_stack_on_odd_sizes_has_pytorchs_shapes_and_names() {
    let d = Description::parse(CONV_STACK).unwrap();
    let derived = d.derive().unwrap();
    let img = |c, h, w| Shape::Image { c, h, w };
    assert_eq!(derived.input, img(3, 13, 11));
    assert_eq!(
        derived.outputs,
        vec![
            img(8, 7, 6), // floor((13 + 2 - 3) / 2) + 1, floor((11 + 2 - 3) / 2) + 1
            img(8, 7, 6),
            img(8, 3, 3), // floor((7 - 2) / 2) + 1, floor((6 - 2) / 2) + 1
            img(4, 2, 2),
            img(4, 2, 2),
            img(4, 1, 1),
            Shape::Features(4),
            Shape::Features(5),
        ]
    );
    assert_eq!(
        tensors(&d),
        vec![
            t("0.weight", &[8, 3, 3, 3], 27),
            t("0.bias", &[8], 27),
            t("3.weight", &[4, 8, 2, 2], 32),
            t("7.weight", &[5, 4], 4),
            t("7.bias", &[5], 4),
        ]
    );
    assert_eq!(derived.n_params(), 216 + 8 + 128 + 20 + 5);
    assert_eq!(derived.flops, 2.0 * (8.0 * 7.0 * 6.0 * 27.0 + 4.0 * 2.0 * 2.0 * 32.0 + 4.0 * 5.0));
    // a pool whose stride differs from its kernel, and one that drops a row: 13x11 -> 6x5 -> 2x2
    let pools = r#"
        format = 1
        input = { image = [2, 13, 11] }
        layers = [{ kind = "max_pool", kernel = 3, stride = 2 }, { kind = "avg_pool", kernel = 3 }, "flatten"]
        head = "sigmoid_mse"
    "#;
    assert_contains(&error(pools), &["head sigmoid_mse", "286 values", "a vector of 4 features"]);
    let pools = pools.replace("\"flatten\"]", "\"flatten\", { kind = \"dense\", out = 286 }]");
    let derived = Description::parse(&pools).unwrap().derive().unwrap();
    assert_eq!(derived.outputs[..3], [img(2, 6, 5), img(2, 2, 1), Shape::Features(4)]);
}

#[test]
fn an_lstm_with_a_named_classifier_has_nn_lstm_names() {
    let d = Description {
        format: 1,
        name: None,
        input: Input::Rows { c: 2, h: 5, w: 3, permute_seed: None },
        layers: vec![
            Layer::named("rnn", LayerKind::Lstm { hidden: 4, bias: true }),
            Layer::new(LayerKind::Dense { out: 3, bias: true }),
        ],
        head: Head::CrossEntropy { classes: 3 },
    };
    assert_eq!(
        tensors(&d),
        vec![
            t("rnn.weight_ih_l0", &[16, 6], 4),
            t("rnn.weight_hh_l0", &[16, 4], 4),
            t("rnn.bias_ih_l0", &[16], 4),
            t("rnn.bias_hh_l0", &[16], 4),
            t("1.weight", &[3, 4], 4),
            t("1.bias", &[3], 4),
        ]
    );
    assert_eq!(d.derive().unwrap().flops, 2.0 * (5.0 * 16.0 * (6.0 + 4.0) + 4.0 * 3.0));
    assert_eq!(Description::from_toml(&d.to_toml()).unwrap(), d);
}

const VOCABULARY: &str = "dense, conv2d, avg_pool, max_pool, flatten, lstm, relu, softplus, sigmoid, tanh";

/// A description with `layers` on 3x8x8 images and a 10-class head.
fn net(layers: &str) -> String {
    format!("format = 1\nlayers = [{layers}]\ninput = {{ image = [3, 8, 8] }}\nhead = {{ kind = \"cross_entropy\", classes = 10 }}\n")
}

#[test]
fn unknown_kinds_options_and_keys_list_the_vocabulary() {
    let m = error(&net(r#""flatten", { kind = "gelu" }"#));
    assert_contains(&m, &["layer 1: unknown layer kind `gelu`", VOCABULARY]);
    assert_contains(&error(&net(r#""flatten", "swish""#)), &["layer 1: unknown layer kind `swish`", VOCABULARY]);
    assert_contains(&error(&net(r#"{ out = 3 }"#)), &["layer 0: no `kind`", VOCABULARY]);
    let m = error(&net(r#""flatten", { kind = "dense", out = 10, outs = 3 }"#));
    assert_contains(&m, &["layer 1 (dense): unknown option `outs`; dense takes out, bias, name"]);
    let m = error(&net(r#"{ kind = "conv2d", out = 4, kernel = 3, dilation = 2 }"#));
    assert_contains(&m, &["layer 0 (conv2d): unknown option `dilation`", "out, kernel, stride, padding, bias, name"]);
    assert_contains(
        &error(&net(r#"{ kind = "flatten", dim = 1 }"#)),
        &["unknown option `dim`; flatten takes no options"],
    );
    assert_contains(&error(&net(r#""flatten", { kind = "dense" }"#)), &["layer 1 (dense): `out` is missing"]);
    assert_contains(
        &error(&net(r#""flatten", { kind = "dense", out = -1 }"#)),
        &["layer 1 (dense): `out` must be a positive integer, got -1"],
    );
    assert_contains(
        &error(&net(r#""flatten", { kind = "dense", out = 10, bias = "no" }"#)),
        &["`bias` must be true or false"],
    );
    let m = error(&format!("{}optimizer = \"sgd\"\n", net(r#""flatten", { kind = "dense", out = 10 }"#)));
    assert_contains(&m, &["unknown key `optimizer`", "format, name, input, layers, head"]);
    let m =
        error(&net(r#""flatten", { kind = "dense", out = 10 }"#).replace("cross_entropy\", classes = 10", "hinge\""));
    assert_contains(&m, &["unknown head `hinge`", "cross_entropy, sigmoid_mse"]);
    let m = error(&net(r#""flatten", { kind = "dense", out = 10 }"#).replace("image = [3, 8, 8]", "image = [3, 8]"));
    assert_contains(&m, &["[input] image must be [C, H, W]"]);
    let m = error(&net(r#""flatten", { kind = "dense", out = 10 }"#).replace("image = [3, 8, 8]", "pixels = 64"));
    assert_contains(&m, &["[input]: unknown key `pixels`; it takes: image, features, rows, permute_seed"]);
    let m = error(
        &net(r#""flatten", { kind = "dense", out = 10 }"#)
            .replace("image = [3, 8, 8]", "image = [3, 8, 8], permute_seed = 1"),
    );
    assert_contains(&m, &["`permute_seed` applies only to a sequence input"]);
}

#[test]
fn names_must_belong_to_parameters_and_be_unique() {
    let m = error(&net(r#"{ kind = "relu", name = "act" }, "flatten", { kind = "dense", out = 10 }"#));
    assert_contains(&m, &["layer 0 (relu): has no parameters", "`name = \"act\"`"]);
    let m = error(&net(
        r#""flatten", { kind = "dense", out = 20, name = "fc" }, { kind = "dense", out = 10, name = "fc" }"#,
    ));
    assert_contains(&m, &["layer 2 (dense): the name `fc` is already used by layer 1 (`fc.weight`)"]);
    // an index used as an explicit name collides with the index naming of another layer
    let m = error(&net(r#""flatten", { kind = "dense", out = 20, name = "2" }, { kind = "dense", out = 10 }"#));
    assert_contains(&m, &["layer 2 (dense): the name `2` is already used by layer 1"]);
}

#[test]
fn shapes_that_do_not_fit_name_the_layer_the_shape_and_the_requirement() {
    let m = error(&net(r#"{ kind = "dense", out = 10 }"#));
    assert_eq!(
        m,
        "layer 0 (dense): takes a vector of features, got an image 3×8×8 (C×H×W): put a `flatten` layer before it"
    );
    let m = error(&net(
        r#"{ kind = "conv2d", out = 4, kernel = 5, stride = 2 }, { kind = "conv2d", out = 4, kernel = 3 }"#,
    ));
    assert_eq!(
        m,
        "layer 1 (conv2d): a 3×3 kernel with padding 0 does not fit an image 4×2×2 (C×H×W): it needs H + 2·padding ≥ kernel and W + 2·padding ≥ kernel"
    );
    let m = error(&net(r#"{ kind = "avg_pool", kernel = 9 }"#));
    assert_contains(&m, &["layer 0 (avg_pool): a 9×9 window does not fit an image 3×8×8", "H ≥ kernel"]);
    let m = error(&net(r#""flatten", { kind = "max_pool", kernel = 2 }"#));
    assert_eq!(m, "layer 1 (max_pool): takes an image (C×H×W), got a vector of 192 features");
    assert_contains(
        &error(&net(r#""flatten", "flatten""#)),
        &["layer 1 (flatten): takes an image", "a vector of 192 features"],
    );
    let m = error(&net(r#"{ kind = "lstm", hidden = 8 }"#));
    assert_contains(&m, &["layer 0 (lstm): takes a sequence, got an image 3×8×8", "rows = [C, H, W]"]);
    let rows = net(r#"{ kind = "dense", out = 10 }"#).replace("image = [3, 8, 8]", "rows = [3, 8, 8]");
    assert_contains(
        &error(&rows),
        &["layer 0 (dense): takes a vector of features, got a sequence of 8 steps × 24 features", "`lstm`"],
    );
    let m = error(&net(r#""flatten", { kind = "dense", out = 12 }"#));
    assert_eq!(m, "head cross_entropy: 10 classes need 10 logits from the last layer, got a vector of 12 features");
    // padding 2 and stride 4: floor((8 + 4 - 5) / 4) + 1 = 2
    let d = Description::parse(&net(
        r#"{ kind = "conv2d", out = 1, kernel = 5, padding = 2, stride = 4 }, "flatten", { kind = "dense", out = 10 }"#,
    ))
    .unwrap();
    assert_eq!(d.derive().unwrap().outputs[0], Shape::Image { c: 1, h: 2, w: 2 });
}

#[test]
fn networks_past_what_a_backend_addresses_are_refused_and_sizes_never_wrap() {
    // 10^11 units: 6.4·10^12 weights, refused naming the layer and the bound (not an abort allocating them)
    let m = error(&net(r#""flatten", { kind = "dense", out = 100000000000 }, "tanh", { kind = "dense", out = 10 }"#));
    assert_contains(&m, &["layer 1 (dense): its parameters", "1.weight [100000000000, 192]", "4294967295", "32 bits"]);
    // the bound itself: 2^32 − 1 values per vector pass, one more does not
    let fits = net(r#""flatten", { kind = "dense", out = 22369621, bias = false }, { kind = "dense", out = 10 }"#);
    assert_contains(&error(&fits), &["layer 2 (dense): its parameters", "4294967295"]);
    let d = Description::parse(
        &net(r#""flatten", { kind = "dense", out = 22369621, bias = false }"#)
            .replace("classes = 10", "classes = 22369621"),
    );
    assert_eq!(d.unwrap().derive().unwrap().n_params(), 4294967232);
    // products of huge dimensions saturate and are refused, whatever the layer, never wrap or panic
    let huge = "4611686018427387904"; // 2^62: 2^62 · 2^62 wraps to 0 in 64 bits
    let image = net(r#""flatten", { kind = "dense", out = 10 }"#).replace("[3, 8, 8]", &format!("[1, {huge}, 4]"));
    assert_contains(&error(&image), &["[input]", "values per image", "4294967295"]);
    let rows = format!("format = 1\n[input]\nrows = [4, 2, {huge}]\n[[layers]]\nkind = \"lstm\"\nhidden = 4\n[head]\nkind = \"cross_entropy\"\nclasses = 4\n");
    assert_contains(&error(&rows), &["[input]", "more than 2^64", "4294967295"]);
    let padded = net(&format!(
        r#"{{ kind = "conv2d", out = 2, kernel = 3, padding = {huge} }}, "flatten", {{ kind = "dense", out = 10 }}"#
    ));
    assert_contains(&error(&padded), &["layer 0 (conv2d): gives", "values per image", "4294967295"]);
    let wide = net(&format!(r#"{{ kind = "conv2d", out = {huge}, kernel = {huge} }}"#));
    assert_contains(&error(&wide), &["layer 0 (conv2d)"]);
    let deep = net(&format!(r#""flatten", {{ kind = "dense", out = {huge} }}, {{ kind = "dense", out = {huge} }}"#));
    assert_contains(&error(&deep), &["layer 1 (dense): its parameters", "more than 2^64"]);
    let lstm = rows.replace(huge, "3").replace("hidden = 4", &format!("hidden = {huge}"));
    assert_contains(&error(&lstm), &["layer 0 (lstm): its parameters", "more than 2^64"]);
}

#[test]
fn format_versions_and_toml_syntax() {
    let body = net(r#""flatten", { kind = "dense", out = 10 }"#);
    assert!(Description::parse(&body).is_ok());
    assert_eq!(
        error(&body.replace("format = 1", "format = 2")),
        "format version 2 is not supported: this build reads format versions 1"
    );
    assert_contains(
        &error(&body.replace("format = 1", "")),
        &["no `format` key", "format = 1", "versions this build reads: 1"],
    );
    assert_contains(&error(&body.replace("format = 1", "format = \"1\"")), &["`format` must be an integer"]);
    assert_contains(&error("format = 1\nlayers = [\n"), &["not valid TOML", "line"]);
    assert_contains(&error("format = 1\ninput = { features = 4 }\nhead = \"sigmoid_mse\"\n"), &["no layers"]);
}

#[test]
fn the_compact_form_and_its_errors() {
    let m = error("mlp:784");
    assert_contains(&m, &["`mlp:784`: needs at least two widths", "got 1", "e.g. mlp:784-64-32-10:tanh"]);
    let m = error("mlp:784-10:gelu");
    assert_contains(
        &m,
        &["`mlp:784-10:gelu`: unknown option `gelu`; the options are: relu, softplus, sigmoid, tanh, nobias"],
    );
    assert_contains(&error("mlp:a-b"), &["`mlp:a-b`: width `a` is not a positive integer"]);
    assert_contains(&error("mlp:784-0-10"), &["width `0` is not a positive integer"]);
    assert_contains(&error("mlp:784--10"), &["width `` is not a positive integer"]);
    assert_contains(&error("mlp:784-10:tanh:relu"), &["`relu` is given twice"]);
    assert_contains(&error("mlp:784-10:nobias:nobias"), &["`nobias` is given twice"]);
    assert_contains(&Description::mlp("784-10").unwrap_err().to_string(), &["does not start with `mlp:`"]);
    // one class: the cross-entropy of a single logit is 0 whatever the weights
    assert_contains(&error("mlp:784-64-1"), &["head cross_entropy: 1 class", "at least 2 outputs"]);
    let d = Description::parse("  mlp:64-32-10  ").unwrap();
    assert_eq!(d.name.as_deref(), Some("mlp:64-32-10"));
    assert_eq!(d.derive().unwrap().outputs, vec![Shape::Features(32), Shape::Features(32), Shape::Features(10)]);
}

#[test]
fn the_examples_of_docs_networks_md_parse() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/networks.md")).unwrap();
    let blocks: Vec<&str> = doc.split("```toml\n").skip(1).map(|b| b.split("```").next().unwrap()).collect();
    assert_eq!(blocks.len(), 2, "the format's example and the FCP");
    let example = Description::parse(blocks[0]).unwrap();
    let derived = example.derive().unwrap();
    assert_eq!(derived.outputs[5], Shape::Image { c: 32, h: 5, w: 5 });
    assert_eq!(
        derived.params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias"]
    );
    assert_eq!(Description::parse(blocks[1]).unwrap(), Description::builtin("fcp").unwrap());
}

/// `cargo test --test description -- --nocapture prints` shows what a description derives.
#[test]
fn prints_what_a_description_derives() {
    for text in ["mlp:784-64-10:tanh", CONV_STACK] {
        let d = Description::parse(text).unwrap();
        let derived = d.derive().unwrap();
        println!("{}: input {}", d.name.as_deref().unwrap_or("(unnamed)"), derived.input);
        for (i, (l, s)) in d.layers.iter().zip(&derived.outputs).enumerate() {
            println!("  {i} {:<9} -> {s}", l.kind.id());
        }
        for p in &derived.params {
            println!("  {:<10} {:?} U(±{:.6})", p.name, p.shape, p.init_bound());
        }
        println!("  {} parameters, {} forward FLOPs per image", derived.n_params(), derived.flops);
    }
}
