//! A user's network (issue 23): `--model` takes a paper network, a compact MLP or a description file;
//! the model is identified by its description (name and SHA-256), which work directories record and
//! resumes compare; the study commands run on it end to end on the shipped UCI digits (1x8x8), and the
//! report judges it without a paper column.

use losscape::model::{Arch, ModelRecord};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn digits() -> PathBuf {
    manifest().join("tests/data/digits")
}

fn losscape(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_losscape")).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const MLP: &str = "mlp:64-32-10:tanh";

/// A two-layer MLP on the digits' 64 pixels, as a description file named `name`.
fn mlp_file(dir: &Path, name: &str, hidden: usize) -> PathBuf {
    let text = format!(
        "format = 1\nname = \"{name}\"\n[input]\nimage = [1, 8, 8]\n[[layers]]\nkind = \"flatten\"\n\
         [[layers]]\nkind = \"dense\"\nout = {hidden}\n[[layers]]\nkind = \"relu\"\n[[layers]]\nkind = \"dense\"\n\
         out = 10\n[head]\nkind = \"cross_entropy\"\nclasses = 10\n"
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_model_is_a_paper_network_a_compact_mlp_or_a_description_file() {
    assert_eq!(Arch::parse("fcp").unwrap(), Arch::Fcp);
    assert_eq!(Arch::parse("LeNet").unwrap(), Arch::Lenet);
    let mlp = Arch::parse(MLP).unwrap();
    assert!(!mlp.is_paper());
    assert_eq!(mlp.id(), "mlp-64-32-10-tanh", "a name safe in file names");
    let names: Vec<&str> = mlp.params().iter().map(|t| t.name).collect();
    assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"], "nn.Sequential's state_dict names");
    assert_eq!(mlp.n_params(), 64 * 32 + 32 + 32 * 10 + 10);
    assert_eq!(mlp.offsets(), [0, 2048, 2080, 2400]);
    // the same description twice is the same model
    assert_eq!(Arch::parse(MLP).unwrap(), mlp);

    let dir = tempfile::tempdir().unwrap();
    let file = Arch::parse(mlp_file(dir.path(), "small", 16).to_str().unwrap()).unwrap();
    assert_eq!(file.id(), "small");
    assert_eq!(file.n_params(), 64 * 16 + 16 + 16 * 10 + 10);
    assert_ne!(file, mlp);
    // the paper's networks keep their parameter table (docs/networks.md §2)
    assert_eq!(
        [Arch::Fcp, Arch::Lenet, Arch::Lstm, Arch::Autoencoder].map(|a| a.n_params()),
        [42_200, 61_706, 15_456, 52_224]
    );
}

#[test]
fn a_wrong_model_is_refused_with_what_to_give() {
    let dir = tempfile::tempdir().unwrap();
    let err = format!("{:#}", Arch::parse("resnet").unwrap_err());
    assert!(err.contains("not a network") && err.contains("mlp:784-64-10:tanh"), "{err}");
    let err = format!("{:#}", Arch::parse("mlp:64-x-10").unwrap_err());
    assert!(err.contains("`x`"), "{err}");
    let bad = dir.path().join("bad.toml");
    let text = "format = 1\n[input]\nimage = [1, 8, 8]\n[[layers]]\nkind = \"dense\"\nout = 10\n\
                [head]\nkind = \"cross_entropy\"\nclasses = 10\n";
    std::fs::write(&bad, text).unwrap();
    let err = format!("{:#}", Arch::parse(bad.to_str().unwrap()).unwrap_err());
    assert!(err.contains("bad.toml") && err.contains("flatten"), "names the file and the fix: {err}");
    let taken = mlp_file(dir.path(), "fcp", 8);
    let err = format!("{:#}", Arch::parse(taken.to_str().unwrap()).unwrap_err());
    assert!(err.contains("one of the paper's networks"), "{err}");
    // on the command line: a usage error, exit status 2
    let o = losscape(&["init", "--model", "resnet", "--out", dir.path().join("w.npy").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a network"), "{}", stderr(&o));
}

#[test]
fn a_configuration_records_the_description_and_refuses_an_edited_one() {
    let mlp = Arch::parse(MLP).unwrap();
    let json = serde_json::to_string(&mlp).unwrap();
    assert!(json.contains("\"sha256\"") && json.contains("cross_entropy"), "{json}");
    assert_eq!(serde_json::from_str::<Arch>(&json).unwrap(), mlp, "read back to the same model");
    assert_eq!(serde_json::to_string(&Arch::Fcp).unwrap(), "\"fcp\"", "the paper's networks by name, as before");
    let mut record: ModelRecord = serde_json::from_str(&json).unwrap();
    record.description = record.description.replace("out = 32", "out = 33");
    let err = serde_json::from_str::<Arch>(&serde_json::to_string(&record).unwrap()).unwrap_err().to_string();
    assert!(err.contains("the record was edited"), "{err}");
}

#[test]
fn data_that_does_not_fit_a_users_network_is_a_usage_error_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t");
    let data = digits();
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let o = losscape(&["train", "--model", "mlp:784-10", "--data", d, "--out", o, "--optimizer", "sgd", "--runs", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("1x8x8") && e.contains("first width must be 64"), "{e}");
    assert!(!out.exists(), "refused before anything is written");
}

#[test]
fn a_users_network_trains_resumes_and_refuses_another_under_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = digits();
    let out = dir.path().join("train");
    let file = mlp_file(dir.path(), "net", 16);
    let train = |model: &Path| {
        let (m, d, o) = (model.to_str().unwrap(), data.to_str().unwrap(), out.to_str().unwrap());
        losscape(&[
            "train",
            "--model",
            m,
            "--data",
            d,
            "--optimizer",
            "sgd",
            "--runs",
            "2",
            "--epochs",
            "3",
            "--out",
            o,
            "--quiet",
        ])
    };
    let o = train(&file);
    assert!(o.status.success(), "{}", stderr(&o));
    let set = out.join("net-sgd-train.safetensors");
    let first = std::fs::read(&set).unwrap();
    // the run again: resumed, the same bytes
    let o = train(&file);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&set).unwrap(), first);
    // the losses fell: the evaluation beats chance (10 classes) on the training images
    let o = losscape(&[
        "eval",
        "--model",
        file.to_str().unwrap(),
        "--weights",
        set.to_str().unwrap(),
        "--split",
        "train",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let acc: f64 = text
        .lines()
        .next()
        .and_then(|l| l.split("accuracy ").nth(1))
        .and_then(|a| a.trim_end_matches('%').parse().ok())
        .unwrap();
    assert!(acc > 30.0, "{text}");
    // another network under the same name is refused
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let other = mlp_file(&elsewhere, "net", 24);
    let o = train(&other);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("different configuration") && stderr(&o).contains("model"), "{}", stderr(&o));
}

#[test]
fn the_smoke_study_runs_end_to_end_on_a_users_network_and_reports_measured_comparisons() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("study");
    let (d, o) = (digits(), out.to_str().unwrap().to_string());
    let run =
        || losscape(&["reproduce", "--preset", "smoke", "--models", MLP, "--data", d.to_str().unwrap(), "--out", &o]);
    let first = run();
    assert!(first.status.success(), "{}", stderr(&first));
    let claims = std::fs::read_to_string(out.join("report/claims.csv")).unwrap();
    let rows: Vec<&str> = claims.lines().skip(1).collect();
    assert!(rows.len() >= 10, "{claims}");
    for r in &rows {
        assert!(r.contains(",mlp-64-32-10-tanh,"), "{r}");
        assert!(r.contains("— (not in the paper; tested: "), "no paper column for a user's network: {r}");
    }
    assert!(!claims.contains("heights-lbfgs-train-above-test"), "a rule the paper states for two of its networks only");
    let html = std::fs::read_to_string(out.join("report/index.html")).unwrap();
    assert!(html.contains("not a network of the paper"), "the scale line says so");
    for f in ["mlp-64-32-10-tanh-heights-train.png", "mlp-64-32-10-tanh-convergence-train.png", "table1.csv"] {
        assert!(out.join("report").join(f).is_file(), "{f}");
    }
    // a second run finds every stage done and writes the same claims
    let again = run();
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(out.join("report/claims.csv")).unwrap(), claims);
}

/// A PyTorch `nn.Sequential(Linear(64,32), Tanh(), Linear(32,10))` saved with
/// `safetensors.torch.save_file(model.state_dict(), …)` (`tests/data/torch_mlp/make.py`) loads as it is
/// with `--model mlp:64-32-10:tanh` and gives PyTorch's loss and accuracy on the same 200 digits.
#[test]
fn a_pytorch_sequential_state_dict_loads_with_the_compact_form_and_gives_pytorchs_loss() {
    let dir = manifest().join("tests/data/torch_mlp");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let (loss, accuracy) =
        (expected["float32"]["loss"].as_f64().unwrap(), expected["float32"]["accuracy"].as_f64().unwrap());
    let images = expected["images"].as_u64().unwrap().to_string();
    let (w, d) = (dir.join("mlp.safetensors"), digits());
    let o = losscape(&[
        "eval",
        "--model",
        MLP,
        "--weights",
        w.to_str().unwrap(),
        "--data",
        d.to_str().unwrap(),
        "--limit",
        &images,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let field = |key: &str| -> f64 {
        text.split(key)
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .map(|v| v.trim_end_matches('%'))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!((field("loss ") - loss).abs() <= 1e-5 * loss, "{text} against PyTorch's {loss}");
    assert!((field("accuracy ") / 100.0 - accuracy).abs() < 1e-9, "{text} against PyTorch's {accuracy}");
}
