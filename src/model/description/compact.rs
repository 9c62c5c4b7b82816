//! The compact MLP form of the command line: `mlp:784-64-32-10:tanh` is
//! `Sequential(Linear(784,64), Tanh(), Linear(64,32), Tanh(), Linear(32,10))` on the flattened image
//! with a softmax cross-entropy head over the last width's classes.

use super::{Activation, Description, DescriptionError, Head, Input, Layer, LayerKind, FORMAT_VERSIONS};

impl Description {
    /// Reads `mlp:W0-W1[-W2...][:ACTIVATION][:nobias]`: W0 input features (the flattened image),
    /// then one dense layer per further width, the activation (`relu`, the default, `softplus`,
    /// `sigmoid` or `tanh`) between consecutive dense layers, biases unless `:nobias`; the head is
    /// cross-entropy over the last width. Parameters are named by Sequential index (`0.weight`,
    /// `0.bias`, `2.weight`, ...).
    ///
    /// Errors: not starting with `mlp:`; fewer than two widths; a width that is not a positive
    /// integer; an unknown or repeated option (the options listed).
    pub fn mlp(spec: &str) -> Result<Description, DescriptionError> {
        let err = |message: String| DescriptionError::Compact { spec: spec.to_string(), message };
        let rest = spec.strip_prefix("mlp:").ok_or_else(|| err("does not start with `mlp:`".into()))?;
        let mut parts = rest.split(':');
        let widths = parts
            .next()
            .unwrap_or_default()
            .split('-')
            .map(|w| match w.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(err(format!("width `{w}` is not a positive integer"))),
            })
            .collect::<Result<Vec<usize>, _>>()?;
        if widths.len() < 2 {
            return Err(err(format!(
                "needs at least two widths, the input features and the classes; got {}",
                widths.len()
            )));
        }
        let (mut act, mut bias) = (None, true);
        for option in parts {
            let known = || {
                let mut v: Vec<&str> = Activation::ALL.iter().map(|a| a.id()).collect();
                v.push("nobias");
                v.join(", ")
            };
            match (option, Activation::from_id(option)) {
                ("nobias", _) if bias => bias = false,
                (_, Some(a)) if act.is_none() => act = Some(a),
                ("nobias", _) | (_, Some(_)) => {
                    return Err(err(format!("`{option}` is given twice (one activation, `nobias` at most once)")))
                }
                _ => return Err(err(format!("unknown option `{option}`; the options are: {}", known()))),
            }
        }
        let act = act.unwrap_or(Activation::Relu);
        let mut layers = Vec::new();
        for (i, &out) in widths[1..].iter().enumerate() {
            if i > 0 {
                layers.push(Layer::new(LayerKind::Act(act)));
            }
            layers.push(Layer::new(LayerKind::Dense { out, bias }));
        }
        let d = Description {
            format: *FORMAT_VERSIONS.last().expect("a format version"),
            name: Some(spec.to_string()),
            input: Input::Features(widths[0]),
            layers,
            head: Head::CrossEntropy { classes: *widths.last().expect("two widths") },
        };
        d.derive()?;
        Ok(d)
    }
}
