//! An [`Arch`] from the name a user gives it (`--model`): a paper network, a compact MLP, a
//! description file or an ONNX model, each refused here if the plan builder does not take it. Apart
//! from `spec.rs` because it checks the plans, which are built from the networks `spec.rs` defines.

use super::description::Description;
use super::{registry, Arch};

impl Arch {
    /// The network `spec` names: `fcp`, `lenet`, `lstm`, `autoencoder`, a compact MLP
    /// (`mlp:784-64-10:tanh`), a description file (docs/networks.md §7) or an ONNX model (`.onnx`,
    /// imported with the cross-entropy head unless it records another: docs/networks.md §8).
    ///
    /// Errors: an unreadable or invalid description, or a name that is none of these.
    pub fn parse(spec: &str) -> anyhow::Result<Arch> {
        Arch::parse_with(spec, None)
    }

    /// [`Arch::parse`], with an ONNX model's head chosen by `loss` (`--loss`; `None`: the head the
    /// model records, else cross-entropy).
    ///
    /// Errors: as [`Arch::parse`]; `loss` given for a network whose head is fixed (a paper network, a
    /// compact MLP, a description file with its `[head]`) or for an ONNX model that records another
    /// head or ends in LogSoftmax.
    pub fn parse_with(spec: &str, loss: Option<super::onnx::Loss>) -> anyhow::Result<Arch> {
        use anyhow::{bail, Context};
        let path = std::path::Path::new(spec);
        let onnx = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
        if let Some(l) = loss.filter(|_| !onnx) {
            bail!(
                "--loss {} applies to an ONNX model (--model net.onnx), whose graph ends in logits; `{spec}` has a \
                 fixed head (a description sets it in [head], docs/networks.md §7): leave --loss out",
                l.id()
            );
        }
        if let Some(a) = Arch::ALL.iter().find(|a| a.id().eq_ignore_ascii_case(spec)) {
            return Ok(*a);
        }
        if spec.trim_start().starts_with("mlp:") {
            let d = Description::parse(spec)?;
            super::plans::check_plans(&d).with_context(|| spec.trim().to_string())?;
            return Ok(Arch::Custom(registry::intern(registry::file_safe(spec.trim()), d)?));
        }
        let looks_like_a_file =
            path.extension().is_some() || spec.contains(std::path::MAIN_SEPARATOR) || spec.contains('/');
        if !path.exists() && looks_like_a_file {
            bail!(
                "{spec}: no such file; --model takes a description file (.toml) or an ONNX model (.onnx) that exists, \
                 or fcp, lenet, lstm, autoencoder, or a compact MLP such as mlp:784-64-10:tanh"
            );
        }
        if !path.exists() {
            bail!(
                "`{spec}` is not a network: give fcp, lenet, lstm, autoencoder, a compact MLP such as \
                 mlp:784-64-10:tanh, a description file (.toml, docs/networks.md §7) or an ONNX model (.onnx)"
            );
        }
        let d = if onnx {
            super::onnx::import(path, loss)?.description
        } else {
            let text = std::fs::read_to_string(path).with_context(|| format!("{spec}: cannot read the description"))?;
            Description::parse(&text).with_context(|| format!("{spec}: not a valid network description"))?
        };
        // a network the plan builder does not take is refused here, naming the file, by every command
        super::plans::check_plans(&d).with_context(|| spec.to_string())?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let id = registry::file_safe(d.name.as_deref().unwrap_or(&stem));
        if id.is_empty() {
            bail!("{spec}: give the network a `name` (letters, digits, - or _): it names its output files");
        }
        if let Some(a) = Arch::ALL.iter().find(|a| a.id() == id) {
            // a paper network written by `losscape export` (its name recorded) reads back as itself
            if d == *a.description() {
                return Ok(*a);
            }
            bail!("{spec}: the name `{id}` is one of the paper's networks; give this description another `name` (an ONNX model: rename the file)");
        }
        Ok(Arch::Custom(registry::intern(id, d)?))
    }
}
