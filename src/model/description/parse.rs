//! The TOML form of a description: reading it with errors that list the vocabulary, and writing it
//! back in the canonical form (`Description::to_toml`, which reads back to the same description).

use toml::{Table, Value};

use super::{Activation, Description, DescriptionError, Head, Input, Layer, LayerKind, FORMAT_VERSIONS};

const TOP_KEYS: [&str; 5] = ["format", "name", "input", "layers", "head"];
const INPUT_KEYS: [&str; 4] = ["image", "features", "rows", "permute_seed"];
const HEADS: [&str; 2] = ["cross_entropy", "sigmoid_mse"];

fn invalid(message: String) -> DescriptionError {
    DescriptionError::Invalid(message)
}

/// A TOML basic string holding `s`.
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out += "\\\"",
            '\\' => out += "\\\\",
            c if c.is_control() => out += &format!("\\u{:04X}", c as u32),
            c => out.push(c),
        }
    }
    out + "\""
}

fn list(items: &[&str]) -> String {
    items.join(", ")
}

/// Refuses any key of `table` not in `allowed`, naming `what` holds it and the keys it takes.
fn only_keys(table: &Table, allowed: &[&str], what: &str) -> Result<(), DescriptionError> {
    match table.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(invalid(format!("{what}: unknown key `{k}`; it takes: {}", list(allowed)))),
        None => Ok(()),
    }
}

/// A positive integer value (`what` names it in the error).
fn positive(v: &Value, what: &str) -> Result<usize, DescriptionError> {
    match v.as_integer() {
        Some(i) if i > 0 => Ok(i as usize),
        _ => Err(invalid(format!("{what} must be a positive integer, got {v}"))),
    }
}

fn non_negative(v: &Value, what: &str) -> Result<usize, DescriptionError> {
    match v.as_integer() {
        Some(i) if i >= 0 => Ok(i as usize),
        _ => Err(invalid(format!("{what} must be a non-negative integer, got {v}"))),
    }
}

fn boolean(v: &Value, what: &str) -> Result<bool, DescriptionError> {
    v.as_bool().ok_or_else(|| invalid(format!("{what} must be true or false, got {v}")))
}

/// `[C, H, W]`, three positive integers.
fn chw(v: &Value, what: &str) -> Result<(usize, usize, usize), DescriptionError> {
    let bad = || invalid(format!("{what} must be [C, H, W], three positive integers (e.g. [1, 28, 28]), got {v}"));
    let a = v.as_array().filter(|a| a.len() == 3).ok_or_else(bad)?;
    let n = |i: usize| positive(&a[i], what).map_err(|_| bad());
    Ok((n(0)?, n(1)?, n(2)?))
}

fn input(v: &Value) -> Result<Input, DescriptionError> {
    let t = v.as_table().ok_or_else(|| invalid(format!("`input` must be a table ([input]), got {v}")))?;
    only_keys(t, &INPUT_KEYS, "[input]")?;
    let given: Vec<&str> = ["image", "features", "rows"].into_iter().filter(|k| t.contains_key(*k)).collect();
    if given.len() != 1 {
        return Err(invalid(format!(
            "[input] needs exactly one of `image = [C, H, W]`, `features = N`, `rows = [C, H, W]`; got {}",
            if given.is_empty() { "none".to_string() } else { given.join(" and ") }
        )));
    }
    if t.contains_key("permute_seed") && given[0] != "rows" {
        return Err(invalid("[input]: `permute_seed` applies only to a sequence input (`rows = [C, H, W]`)".into()));
    }
    Ok(match given[0] {
        "image" => {
            let (c, h, w) = chw(&t["image"], "[input] image")?;
            Input::Image { c, h, w }
        }
        "features" => Input::Features(positive(&t["features"], "[input] features")?),
        _ => {
            let (c, h, w) = chw(&t["rows"], "[input] rows")?;
            let permute_seed =
                match t.get("permute_seed") {
                    None => None,
                    Some(s) => Some(s.as_integer().and_then(|i| u32::try_from(i).ok()).ok_or_else(|| {
                        invalid(format!("[input] permute_seed must be an integer in 0..2^32, got {s}"))
                    })?),
                };
            Input::Rows { c, h, w, permute_seed }
        }
    })
}

/// The options each layer kind takes (besides `kind`).
fn options(kind: &str) -> &'static [&'static str] {
    match kind {
        "dense" => &["out", "bias", "name"],
        "conv2d" => &["out", "kernel", "stride", "padding", "bias", "name"],
        "avg_pool" | "max_pool" => &["kernel", "stride"],
        "lstm" => &["hidden", "bias", "name"],
        _ => &[],
    }
}

fn layer(index: usize, v: &Value) -> Result<Layer, DescriptionError> {
    let empty = Table::new();
    let (kind, t) = match v {
        Value::String(s) => (s.as_str(), &empty),
        Value::Table(t) => match t.get("kind") {
            Some(Value::String(s)) => (s.as_str(), t),
            Some(other) => return Err(invalid(format!("layer {index}: `kind` must be a string, got {other}"))),
            None => {
                return Err(invalid(format!(
                    "layer {index}: no `kind`; the layer kinds are: {}",
                    list(&LayerKind::VOCABULARY)
                )))
            }
        },
        other => return Err(invalid(format!("layer {index} must be a table or a kind's name, got {other}"))),
    };
    if !LayerKind::VOCABULARY.contains(&kind) {
        return Err(invalid(format!(
            "layer {index}: unknown layer kind `{kind}`; the layer kinds are: {}",
            list(&LayerKind::VOCABULARY)
        )));
    }
    let allowed = options(kind);
    // `name` on a layer without parameters is refused by `derive`, which says why
    if let Some(k) = t.keys().find(|k| !["kind", "name"].contains(&k.as_str()) && !allowed.contains(&k.as_str())) {
        return Err(invalid(format!(
            "layer {index} ({kind}): unknown option `{k}`; {kind} takes {}",
            if allowed.is_empty() { "no options".to_string() } else { list(allowed) }
        )));
    }
    let what = |key: &str| format!("layer {index} ({kind}): `{key}`");
    let required = |key: &str| {
        let v = t.get(key).ok_or_else(|| invalid(format!("layer {index} ({kind}): `{key}` is missing")))?;
        positive(v, &what(key))
    };
    let bias = || t.get("bias").map_or(Ok(true), |v| boolean(v, &what("bias")));
    let kind = match kind {
        "dense" => LayerKind::Dense { out: required("out")?, bias: bias()? },
        "conv2d" => LayerKind::Conv2d {
            out: required("out")?,
            kernel: required("kernel")?,
            stride: t.get("stride").map_or(Ok(1), |v| positive(v, &what("stride")))?,
            padding: t.get("padding").map_or(Ok(0), |v| non_negative(v, &what("padding")))?,
            bias: bias()?,
        },
        "avg_pool" | "max_pool" => {
            let kernel = required("kernel")?;
            let stride = t.get("stride").map_or(Ok(kernel), |v| positive(v, &what("stride")))?;
            if kind == "avg_pool" {
                LayerKind::AvgPool { kernel, stride }
            } else {
                LayerKind::MaxPool { kernel, stride }
            }
        }
        "flatten" => LayerKind::Flatten,
        "lstm" => LayerKind::Lstm { hidden: required("hidden")?, bias: bias()? },
        act => LayerKind::Act(Activation::from_id(act).expect("the vocabulary's other kinds are activations")),
    };
    let name = match t.get("name") {
        None => None,
        Some(Value::String(s)) if !s.is_empty() && !s.contains(char::is_whitespace) => Some(s.clone()),
        Some(other) => {
            return Err(invalid(format!(
                "layer {index} ({}): `name` must be a non-empty string without spaces (e.g. \"fc1\"), got {other}",
                kind.id()
            )))
        }
    };
    Ok(Layer { name, kind })
}

fn head(v: &Value) -> Result<Head, DescriptionError> {
    let empty = Table::new();
    let (kind, t) = match v {
        Value::String(s) => (s.as_str(), &empty),
        Value::Table(t) => match t.get("kind").and_then(Value::as_str) {
            Some(s) => (s, t),
            None => return Err(invalid(format!("[head] needs `kind`, one of: {}", list(&HEADS)))),
        },
        other => return Err(invalid(format!("`head` must be a table ([head]), got {other}"))),
    };
    match kind {
        "cross_entropy" => {
            only_keys(t, &["kind", "classes"], "[head] cross_entropy")?;
            let classes = t.get("classes").ok_or_else(|| {
                invalid("[head] cross_entropy needs `classes`, the number of logits (e.g. classes = 10)".into())
            })?;
            Ok(Head::CrossEntropy { classes: positive(classes, "[head] classes")? })
        }
        "sigmoid_mse" => {
            only_keys(t, &["kind"], "[head] sigmoid_mse")?;
            Ok(Head::SigmoidMse)
        }
        other => Err(invalid(format!("[head]: unknown head `{other}`; the heads are: {}", list(&HEADS)))),
    }
}

impl Description {
    /// Reads the TOML form (docs/networks.md §7) and checks that its shapes fit ([`Description::derive`]).
    ///
    /// Errors: see [`Description::parse`].
    pub fn from_toml(text: &str) -> Result<Description, DescriptionError> {
        let t: Table =
            toml::from_str(text).map_err(|e| DescriptionError::Toml(e.to_string().trim_end().to_string()))?;
        let format = match t.get("format") {
            None => return Err(DescriptionError::Version { found: None }),
            Some(v) => {
                let found = v.as_integer().ok_or_else(|| invalid(format!("`format` must be an integer, got {v}")))?;
                match FORMAT_VERSIONS.iter().find(|&&f| i64::from(f) == found) {
                    Some(&f) => f,
                    None => return Err(DescriptionError::Version { found: Some(found) }),
                }
            }
        };
        only_keys(&t, &TOP_KEYS, "the description")?;
        let name = match t.get("name") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => return Err(invalid(format!("`name` must be a string, got {v}"))),
        };
        let input = input(t.get("input").ok_or_else(|| invalid("no [input] table: the description needs `[input]` with `image = [C, H, W]`, `features = N` or `rows = [C, H, W]`".into()))?)?;
        let layers = match t.get("layers") {
            Some(Value::Array(a)) if !a.is_empty() => {
                a.iter().enumerate().map(|(i, v)| layer(i, v)).collect::<Result<Vec<_>, _>>()?
            }
            Some(Value::Array(_)) | None => {
                return Err(invalid(
                    "no layers: the description needs `layers = [...]` or one `[[layers]]` table per layer".into(),
                ))
            }
            Some(v) => return Err(invalid(format!("`layers` must be an array of layers, got {v}"))),
        };
        let head = head(t.get("head").ok_or_else(|| {
            invalid(format!("no [head]: the description needs `[head]` with `kind`, one of: {}", list(&HEADS)))
        })?)?;
        let d = Description { format, name, input, layers, head };
        d.derive()?;
        Ok(d)
    }

    /// The canonical TOML form: one `[[layers]]` table per layer, every option written out (defaults
    /// included). [`Description::from_toml`] reads it back to the same description.
    pub fn to_toml(&self) -> String {
        let mut s = format!("format = {}\n", self.format);
        if let Some(name) = &self.name {
            s += &format!("name = {}\n", quoted(name));
        }
        s += "\n[input]\n";
        s += &match self.input {
            Input::Image { c, h, w } => format!("image = [{c}, {h}, {w}]\n"),
            Input::Features(n) => format!("features = {n}\n"),
            Input::Rows { c, h, w, permute_seed } => {
                format!("rows = [{c}, {h}, {w}]\n")
                    + &permute_seed.map_or(String::new(), |p| format!("permute_seed = {p}\n"))
            }
        };
        for l in &self.layers {
            s += &format!("\n[[layers]]\nkind = \"{}\"\n", l.kind.id());
            if let Some(name) = &l.name {
                s += &format!("name = {}\n", quoted(name));
            }
            s += &match l.kind {
                LayerKind::Dense { out, bias } => format!("out = {out}\nbias = {bias}\n"),
                LayerKind::Conv2d { out, kernel, stride, padding, bias } => {
                    format!("out = {out}\nkernel = {kernel}\nstride = {stride}\npadding = {padding}\nbias = {bias}\n")
                }
                LayerKind::AvgPool { kernel, stride } | LayerKind::MaxPool { kernel, stride } => {
                    format!("kernel = {kernel}\nstride = {stride}\n")
                }
                LayerKind::Lstm { hidden, bias } => format!("hidden = {hidden}\nbias = {bias}\n"),
                LayerKind::Flatten | LayerKind::Act(_) => String::new(),
            };
        }
        s += "\n[head]\n";
        s += &match self.head {
            Head::CrossEntropy { classes } => format!("kind = \"cross_entropy\"\nclasses = {classes}\n"),
            Head::SigmoidMse => "kind = \"sigmoid_mse\"\n".to_string(),
        };
        s
    }
}
