//! What follows from a description: the shape after each layer (checked), the parameter tensors as
//! PyTorch names them in the equivalent `torch.nn.Sequential`, their default init bounds, the
//! parameter count and the forward FLOPs per image.
//!
//! Sources: PyTorch's documentation of `nn.Linear`, `nn.Conv2d`, `nn.AvgPool2d`, `nn.MaxPool2d`,
//! `nn.Flatten` and `nn.LSTM` (shapes, output sizes, parameter names and `reset_parameters`).

use std::fmt;

use super::{Description, DescriptionError, Head, Input, LayerKind};

/// The values one image has between two layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Channels, height, width.
    Image { c: usize, h: usize, w: usize },
    /// A sequence of `steps` vectors of `features` values (the LSTM's input).
    Sequence { steps: usize, features: usize },
    /// A vector of values (a dense layer's input and output).
    Features(usize),
}

/// The most values a parameter vector, or one image's values after any layer, may hold: 2^32 − 1.
/// The GPU kernels index every tensor with 32-bit integers (`model/walk.rs` checks each plan's
/// indices), so a network past it could not be evaluated there even for one vector on one image, and
/// on the CPU backend one vector of it alone would take 16 GiB (4 bytes a value). [`Description::derive`]
/// refuses a description past it, naming the layer, before anything is allocated.
pub const MAX_VALUES: usize = u32::MAX as usize;

/// The product of `dims`, saturating at `usize::MAX` (past [`MAX_VALUES`], so refused, never wrapped).
fn product(dims: &[usize]) -> usize {
    dims.iter().fold(1, |p, &d| p.saturating_mul(d))
}

/// What [`MAX_VALUES`] is, for messages.
const LIMIT: &str = "the 4294967295 (2^32 − 1) that every backend can address (the GPU kernels index with 32 bits)";

/// Refuses layer `index` (of kind `kind`) when the parameters so far (`params`, its own last) hold more
/// than [`MAX_VALUES`], or its output `shape` more than [`MAX_VALUES`] values per image.
///
/// Errors: [`DescriptionError::Shape`] naming the layer, the count and the bound.
fn check_size(index: usize, kind: &'static str, shape: Shape, params: &[Param]) -> Result<(), DescriptionError> {
    let err = |message: String| DescriptionError::Shape { index, kind, message };
    let total = params.iter().fold(0usize, |n, p| n.saturating_add(p.len()));
    if total > MAX_VALUES {
        let own: Vec<String> =
            params.iter().filter(|p| p.layer == index).map(|p| format!("{} {:?}", p.name, p.shape)).collect();
        return Err(err(format!(
            "its parameters ({}) bring the network to {} parameters per vector, more than {LIMIT}; make the layer smaller",
            own.join(", "),
            count_text(total)
        )));
    }
    if shape.len() > MAX_VALUES {
        let n = count_text(shape.len());
        return Err(err(format!("gives {shape}, {n} values per image, more than {LIMIT}; make the layer smaller")));
    }
    Ok(())
}

/// A count for messages: the number, or "more than 2^64" for one that saturated.
fn count_text(n: usize) -> String {
    if n == usize::MAX {
        "more than 2^64".to_string()
    } else {
        n.to_string()
    }
}

impl Shape {
    /// The number of values (saturating at `usize::MAX`, which no derived shape reaches:
    /// [`MAX_VALUES`]).
    pub fn len(&self) -> usize {
        match *self {
            Shape::Image { c, h, w } => product(&[c, h, w]),
            Shape::Sequence { steps, features } => product(&[steps, features]),
            Shape::Features(n) => n,
        }
    }

    /// Whether the shape holds no values (never, for a derived shape).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Shape::Image { c, h, w } => write!(f, "an image {c}×{h}×{w} (C×H×W)"),
            Shape::Sequence { steps, features } => write!(f, "a sequence of {steps} steps × {features} features"),
            Shape::Features(n) => write!(f, "a vector of {n} features"),
        }
    }
}

/// One parameter tensor, as `state_dict` holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// The `state_dict` key: `<prefix>.weight`, `<prefix>.bias`, or for an LSTM
    /// `<prefix>.weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`; the prefix is the layer's
    /// `name`, else its index in the layer list (its index in the `nn.Sequential`).
    pub name: String,
    /// PyTorch's shape: dense (out, in); conv2d (out, in_c, k, k); biases (out); LSTM (4·hidden,
    /// features), (4·hidden, hidden), (4·hidden), (4·hidden).
    pub shape: Vec<usize>,
    /// PyTorch's default init draws U(±1/sqrt(fan_in)): for dense and conv2d weights and biases the
    /// layer's inputs per output (in, or in_c·k·k); for every LSTM tensor the hidden size.
    pub fan_in: usize,
    /// The index of the layer it belongs to.
    pub layer: usize,
}

impl Param {
    /// The number of values (saturating at `usize::MAX`, which no derived tensor reaches:
    /// [`MAX_VALUES`]).
    pub fn len(&self) -> usize {
        product(&self.shape)
    }

    /// Whether the tensor holds no values (never, for a derived tensor).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound b of PyTorch's default init U(−b, b): 1/sqrt(fan_in).
    pub fn init_bound(&self) -> f32 {
        1.0 / (self.fan_in as f32).sqrt()
    }
}

/// Everything [`Description::derive`] computes.
#[derive(Clone, Debug, PartialEq)]
pub struct Derived {
    /// What the first layer receives.
    pub input: Shape,
    /// The shape after each layer, one per layer.
    pub outputs: Vec<Shape>,
    /// The parameter tensors in `state_dict` (= flat vector) order: layer by layer, each layer's in
    /// PyTorch's registration order.
    pub params: Vec<Param>,
    /// Forward FLOPs per image: 2 per multiply-add of the dense, convolution and LSTM gate products
    /// (every step's, h₀ = 0 included). Bias additions, activations, pooling, the LSTM cell's
    /// element-wise arithmetic and the loss head are not counted.
    pub flops: f64,
}

impl Derived {
    /// The length of the flat parameter vector (N_prm).
    pub fn n_params(&self) -> usize {
        self.params.iter().map(Param::len).sum()
    }
}

/// The output side of a window of `kernel` with `stride` and `padding` over `n` values, if it fits:
/// floor((n + 2·padding − kernel) / stride) + 1, as PyTorch's (ceil_mode off); saturating, so that a
/// huge padding gives a huge side (refused by [`MAX_VALUES`]), never a wrapped small one.
fn window(n: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let padded = n.saturating_add(padding.saturating_mul(2));
    (padded >= kernel).then(|| ((padded - kernel) / stride).saturating_add(1))
}

impl Description {
    /// The shape the first layer receives.
    pub fn input_shape(&self) -> Shape {
        match self.input {
            Input::Image { c, h, w } => Shape::Image { c, h, w },
            Input::Features(n) => Shape::Features(n),
            Input::Rows { c, h, w, .. } => Shape::Sequence { steps: h, features: c.saturating_mul(w) },
        }
    }

    /// The values of one input image (C·H·W, or the features).
    pub fn input_len(&self) -> usize {
        self.input_shape().len()
    }

    /// Every layer's output shape, the parameter tensors, their count and the forward FLOPs.
    ///
    /// Errors: a layer that does not fit the shape it receives (its index and kind, the shape and
    /// what it takes); a `name` on a layer without parameters or used twice; a head that does not fit
    /// the last output.
    pub fn derive(&self) -> Result<Derived, DescriptionError> {
        let derived = self.derive_layers()?;
        self.check_head(derived.outputs.last().copied().unwrap_or(derived.input))?;
        Ok(derived)
    }

    /// [`Description::derive`] without the head's check: what the layers give, whatever the head.
    ///
    /// Errors: a layer that does not fit, or a misused `name` (as [`Description::derive`]).
    pub fn derive_layers(&self) -> Result<Derived, DescriptionError> {
        let input = self.input_shape();
        if input.len() > MAX_VALUES {
            return Err(DescriptionError::Invalid(format!(
                "[input]: {input} is {} values per image, more than {LIMIT}; use smaller images",
                count_text(input.len())
            )));
        }
        let (mut shape, mut outputs, mut params, mut flops) = (input, Vec::new(), Vec::<Param>::new(), 0.0);
        for (index, layer) in self.layers.iter().enumerate() {
            let kind = layer.kind.id();
            let err = |message: String| DescriptionError::Shape { index, kind, message };
            let prefix = match &layer.name {
                Some(n) if !layer.kind.has_params() => {
                    return Err(DescriptionError::Invalid(format!(
                        "layer {index} ({kind}): has no parameters, so `name = \"{n}\"` does not apply; names are for dense, conv2d and lstm layers"
                    )))
                }
                Some(n) => n.clone(),
                None => index.to_string(),
            };
            if let Some(p) = params.iter().find(|p| p.name.rsplit_once('.').is_some_and(|(pre, _)| pre == prefix)) {
                return Err(DescriptionError::Invalid(format!(
                    "layer {index} ({kind}): the name `{prefix}` is already used by layer {} (`{}`); state_dict names must be unique",
                    p.layer, p.name
                )));
            }
            let mut param = |suffix: &str, shape: Vec<usize>, fan_in: usize| {
                params.push(Param { name: format!("{prefix}.{suffix}"), shape, fan_in, layer: index })
            };
            shape = match (layer.kind, shape) {
                (LayerKind::Dense { out, bias }, Shape::Features(inp)) => {
                    param("weight", vec![out, inp], inp);
                    if bias {
                        param("bias", vec![out], inp);
                    }
                    flops += 2.0 * inp as f64 * out as f64;
                    Shape::Features(out)
                }
                (LayerKind::Dense { .. }, s @ Shape::Image { .. }) => {
                    return Err(err(format!("takes a vector of features, got {s}: put a `flatten` layer before it")))
                }
                (LayerKind::Dense { .. }, s) => {
                    return Err(err(format!(
                        "takes a vector of features, got {s}: an `lstm` layer turns a sequence into a vector"
                    )))
                }
                (LayerKind::Conv2d { out, kernel, stride, padding, bias }, Shape::Image { c, h, w }) => {
                    let (Some(oh), Some(ow)) = (window(h, kernel, stride, padding), window(w, kernel, stride, padding))
                    else {
                        return Err(err(format!(
                            "a {kernel}×{kernel} kernel with padding {padding} does not fit {shape}: it needs H + 2·padding ≥ kernel and W + 2·padding ≥ kernel"
                        )));
                    };
                    let fan_in = product(&[c, kernel, kernel]);
                    param("weight", vec![out, c, kernel, kernel], fan_in);
                    if bias {
                        param("bias", vec![out], fan_in);
                    }
                    flops += 2.0 * out as f64 * oh as f64 * ow as f64 * fan_in as f64;
                    Shape::Image { c: out, h: oh, w: ow }
                }
                (
                    LayerKind::AvgPool { kernel, stride } | LayerKind::MaxPool { kernel, stride },
                    Shape::Image { c, h, w },
                ) => {
                    let (Some(oh), Some(ow)) = (window(h, kernel, stride, 0), window(w, kernel, stride, 0)) else {
                        return Err(err(format!(
                            "a {kernel}×{kernel} window does not fit {shape}: it needs H ≥ kernel and W ≥ kernel"
                        )));
                    };
                    Shape::Image { c, h: oh, w: ow }
                }
                (LayerKind::Conv2d { .. } | LayerKind::AvgPool { .. } | LayerKind::MaxPool { .. }, s) => {
                    return Err(err(format!("takes an image (C×H×W), got {s}")))
                }
                (LayerKind::Flatten, s @ Shape::Image { .. }) => Shape::Features(s.len()),
                (LayerKind::Flatten, s) => {
                    return Err(err(format!("takes an image (C×H×W), got {s}, which is not an image")))
                }
                (LayerKind::Lstm { hidden, bias }, Shape::Sequence { steps, features }) => {
                    let g = hidden.saturating_mul(4);
                    param("weight_ih_l0", vec![g, features], hidden);
                    param("weight_hh_l0", vec![g, hidden], hidden);
                    if bias {
                        param("bias_ih_l0", vec![g], hidden);
                        param("bias_hh_l0", vec![g], hidden);
                    }
                    flops += 2.0 * steps as f64 * g as f64 * (features as f64 + hidden as f64);
                    Shape::Features(hidden)
                }
                (LayerKind::Lstm { .. }, s) => {
                    return Err(err(format!(
                        "takes a sequence, got {s}: an lstm reads the input `rows = [C, H, W]` directly"
                    )))
                }
                (LayerKind::Act(_), s) => s,
            };
            check_size(index, kind, shape, &params)?;
            outputs.push(shape);
        }
        Ok(Derived { input, outputs, params, flops })
    }

    /// Refuses a head that does not fit `last`, the last layer's output.
    fn check_head(&self, last: Shape) -> Result<(), DescriptionError> {
        match self.head {
            // softmax over one logit is 1 whatever the weights: the loss would be 0 and its gradient 0
            Head::CrossEntropy { classes: 1 } => {
                return Err(DescriptionError::Head {
                    head: "cross_entropy",
                    message: "1 class: softmax over a single logit is 1 for every input, so the loss and its \
                              gradient would be 0 everywhere; a classifier needs at least 2 outputs"
                        .to_string(),
                })
            }
            Head::CrossEntropy { classes } if last != Shape::Features(classes) => {
                return Err(DescriptionError::Head {
                    head: "cross_entropy",
                    message: format!("{classes} classes need {classes} logits from the last layer, got {last}"),
                })
            }
            Head::SigmoidMse if last != Shape::Features(self.input_len()) => {
                return Err(DescriptionError::Head {
                    head: "sigmoid_mse",
                    message: format!(
                        "the reconstruction of the input's {} values needs a vector of {} features from the last layer, got {last}",
                        self.input_len(),
                        self.input_len()
                    ),
                })
            }
            _ => {}
        }
        Ok(())
    }
}
