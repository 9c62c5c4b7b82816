//! An ONNX `LSTM` node as the description's `lstm` layer, and the values around it: what reaches its
//! input X must be the image's pixels as rows (reshapes, transposes, and a Gather that permutes the
//! flattened image: the description's `permute_seed`), and what follows it must take its last hidden
//! state. Its weights, in ONNX's layout, become PyTorch's `state_dict` tensors.
//!
//! Sources: the ONNX operator specification, `LSTM` (opset 14+): inputs X (seq_length, batch,
//! input_size), W (num_directions, 4·hidden, input_size) and R (num_directions, 4·hidden, hidden) with
//! the gates in the order i, o, f, c, B (num_directions, 8·hidden) = [Wb, Rb]; outputs Y (seq_length,
//! num_directions, batch, hidden), Y_h and Y_c (num_directions, batch, hidden). PyTorch's `nn.LSTM`
//! documentation: `weight_ih_l0` (4·hidden, input_size), `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`
//! with the gates in the order i, f, g, o (g is ONNX's c).

use anyhow::{anyhow, bail, Result};
use onnx_protobuf::NodeProto;

use super::array::{show, Array, Dim};
use super::import::{scope, Params, Tracked, Walk};
use super::tensor::{attribute, int_or, node_label, string_or, strings_attr};
use super::{Origin, GATES};
use crate::model::description::{Input, LayerKind, Shape};
use crate::model::permutation::randperm_seed;

/// The seeds tried when a Gather permutes the pixels: `permute_seed` is recovered when the
/// permutation is `torch.randperm(n)` on a generator seeded with one of them (the paper's is 1234).
pub const PERMUTE_SEEDS: std::ops::RangeInclusive<u32> = 0..=9_999;

/// The default activations of ONNX's LSTM, which are nn.LSTM's.
const ACTIVATIONS: [&str; 3] = ["Sigmoid", "Tanh", "Tanh"];

/// Rows of ONNX gate blocks (i, o, f, c) of `block` values each, reordered to PyTorch's (i, f, g, o).
fn torch_gates(values: &[f64], block: usize) -> Vec<f32> {
    (0..4)
        .flat_map(|k| {
            let a = GATES.iter().position(|&g| g == k).expect("GATES is a permutation");
            &values[a * block..(a + 1) * block]
        })
        .map(|&v| v as f32)
        .collect()
}

impl<'g> Walk<'g> {
    /// In a graph with an LSTM, `node` applied to what the current value's elements are: a shape
    /// operator moves them, the LSTM starts its hidden states. Returns the value the chain continues
    /// with, or `None` when `node` is a layer for the caller (after the last hidden state is taken).
    ///
    /// Errors: before the LSTM, a node that is not a shape operator; the LSTM's own errors; a layer
    /// that takes something other than the last hidden state.
    pub(super) fn track(&mut self, node: &'g NodeProto) -> Result<Option<String>> {
        let Some(tracked) = self.tracked.take() else { return Ok(None) };
        let label = node_label(node);
        let out = node.output.first().cloned().unwrap_or_default();
        match (tracked, node.op_type.as_str()) {
            (Tracked::Pixels { array, reordered_by }, "LSTM") => self.lstm(node, &array, reordered_by).map(Some),
            (_, "LSTM") => {
                bail!(
                    "{label}: a second LSTM; one LSTM layer (nn.LSTM with num_layers = 1) is mapped, not stacked ones"
                )
            }
            (t, "Dropout") => {
                self.tracked = Some(t);
                Ok(Some(out))
            }
            (Tracked::Pixels { array, reordered_by }, op) => {
                let Some(next) = self.folder.apply(node, &array)? else {
                    bail!(
                        "{label}: before an LSTM only reshapes, transposes and a permutation of the pixels (Gather) \
                         are mapped: the description's lstm reads the image's rows itself (docs/networks.md §7)"
                    );
                };
                let moved = next.values != array.values;
                let reordered_by = if op == "Gather" && moved { Some(label) } else { reordered_by };
                self.tracked = Some(Tracked::Pixels { array: next, reordered_by });
                Ok(Some(out))
            }
            (Tracked::Hidden { array, steps, hidden }, _) => match self.folder.apply(node, &array)? {
                Some(next) => {
                    self.tracked = Some(Tracked::Hidden { array: next, steps, hidden });
                    Ok(Some(out))
                }
                None => {
                    last_hidden(&array, steps, hidden, &label)?;
                    Ok(None)
                }
            },
        }
    }

    /// Ends the LSTM's tracking at the graph's output (`at`): what it gives must be the last hidden
    /// state.
    ///
    /// Errors: it is not; the graph never reached its LSTM.
    pub(super) fn finish_tracking(&mut self, at: &str) -> Result<()> {
        match self.tracked.take() {
            None => Ok(()),
            Some(Tracked::Hidden { array, steps, hidden }) => last_hidden(&array, steps, hidden, at),
            Some(Tracked::Pixels { .. }) => bail!("the graph's chain of layers does not reach its LSTM"),
        }
    }

    /// The LSTM `node` reading `x` (the pixels its input X holds): the description's input becomes
    /// rows, the layer an `lstm` with PyTorch's tensors. Returns the output the chain continues with.
    ///
    /// Errors (each naming the node and why): another direction, layout, activations, clip,
    /// input_forget; sequence lengths, peepholes, a non-zero initial state; weights that are not
    /// constants of the expected shapes; an input that is not the image's rows in an order a
    /// description expresses; outputs other than one hidden state used.
    fn lstm(&mut self, node: &'g NodeProto, x: &Array<u32>, reordered_by: Option<String>) -> Result<String> {
        let label = node_label(node);
        self.lstm_refusals(node)?;
        let (tensors, hidden, features) = self.lstm_weights(node)?;
        let [Dim::Size(steps), Dim::Batch, Dim::Size(f)] = x.dims[..] else {
            bail!(
                "{label}: its input X is {}; expected [steps, batch, {features}] (PyTorch's batch_first input is \
                 transposed by the exporter)",
                show(&x.dims)
            );
        };
        if f != features {
            bail!("{label}: its input has {f} features per step; W takes {features}");
        }
        self.input = self.rows(&label, &x.values, steps, features, reordered_by.as_deref())?;
        let module = self.lstm_module(node)?;
        let bias = tensors.len() == 4;
        self.shape = Shape::Sequence { steps, features };
        self.push(LayerKind::Lstm { hidden, bias }, Some(Params { module, tensors }), node)?;
        self.lstm_output(node, steps, hidden)
    }

    /// Refuses the LSTM attributes and inputs nn.LSTM has no counterpart for.
    fn lstm_refusals(&self, node: &NodeProto) -> Result<()> {
        let label = node_label(node);
        let direction = string_or(node, "direction", "forward");
        if direction != "forward" {
            bail!("{label}: direction `{direction}` is not mapped; only a forward LSTM (bidirectional=False) is");
        }
        if int_or(node, "layout", 0) != 0 {
            bail!("{label}: layout = 1 (batch first) is not mapped; PyTorch's exporter writes layout 0");
        }
        if attribute(node, "clip").is_some() {
            bail!("{label}: clip is not mapped (nn.LSTM does not clip its cell input)");
        }
        if int_or(node, "input_forget", 0) != 0 {
            bail!("{label}: input_forget = 1 (coupled input and forget gates) is not mapped (nn.LSTM has none)");
        }
        if let Some(acts) = strings_attr(node, "activations") {
            if !acts.iter().map(|a| a.to_ascii_lowercase()).eq(ACTIVATIONS.iter().map(|a| a.to_ascii_lowercase())) {
                bail!("{label}: activations {acts:?} are not mapped; only nn.LSTM's (Sigmoid, Tanh, Tanh) are");
            }
        }
        let input = |i: usize| node.input.get(i).map(String::as_str).filter(|n| !n.is_empty());
        if let Some(s) = input(4) {
            bail!("{label}: sequence_lens `{s}` is given; only whole sequences (every row of the image) are mapped");
        }
        if let Some(p) = input(7) {
            bail!("{label}: peephole weights (input P `{p}`) are not mapped: nn.LSTM has none");
        }
        for (i, what) in [(5, "initial_h"), (6, "initial_c")] {
            if let Some(v) = input(i).filter(|v| !self.folder.is_zero(v)) {
                bail!("{label}: its {what} `{v}` is not zero; only h0 = c0 = 0 (nn.LSTM called without a state) is mapped");
            }
        }
        Ok(())
    }

    /// The LSTM's W, R and optional B as PyTorch's `weight_ih_l0`, `weight_hh_l0` (and `bias_ih_l0`,
    /// `bias_hh_l0`), with its hidden size and input features.
    ///
    /// Errors: a weight that is not a constant, or shapes that do not fit one direction.
    fn lstm_weights(&self, node: &NodeProto) -> Result<(Vec<Origin>, usize, usize)> {
        let label = node_label(node);
        let weight = |i: usize, what: &str| -> Result<Array<f64>> {
            let name =
                node.input.get(i).filter(|n| !n.is_empty()).ok_or_else(|| anyhow!("{label}: no {what} input"))?;
            if !self.folder.is_constant(name) {
                bail!("{label}: its {what} `{name}` is not a constant; only fixed weights are mapped");
            }
            self.folder.evaluate(name)
        };
        let (w, r) = (weight(1, "W")?, weight(2, "R")?);
        let b = node.input.get(3).filter(|n| !n.is_empty()).map(|_| weight(3, "B")).transpose()?;
        let [1, gates, features] = w.sizes()[..] else {
            bail!("{label}: W has dimensions {:?}; expected [1, 4·hidden, input_size] (one direction)", w.sizes());
        };
        let hidden = gates / 4;
        let hidden_size = int_or(node, "hidden_size", hidden as i64);
        if gates % 4 != 0 || hidden == 0 || hidden_size != hidden as i64 || r.sizes() != [1, gates, hidden] {
            bail!(
                "{label}: W {:?}, R {:?} and hidden_size {hidden_size} do not fit one another (W [1, 4·hidden, \
                 input_size], R [1, 4·hidden, hidden])",
                w.sizes(),
                r.sizes()
            );
        }
        if let Some(b) = b.as_ref().filter(|b| b.sizes() != [1, 2 * gates]) {
            bail!("{label}: B has dimensions {:?}; expected [1, {}] (Wb and Rb)", b.sizes(), 2 * gates);
        }
        let computed = |values: Vec<f32>, dims: Vec<usize>| Origin::Computed { dims, values };
        let mut tensors = vec![
            computed(torch_gates(&w.values, hidden * features), vec![gates, features]),
            computed(torch_gates(&r.values, hidden * hidden), vec![gates, hidden]),
        ];
        if let Some(b) = &b {
            let (wb, rb) = b.values.split_at(gates);
            tensors.push(computed(torch_gates(wb, hidden), vec![gates]));
            tensors.push(computed(torch_gates(rb, hidden), vec![gates]));
        }
        Ok((tensors, hidden, features))
    }

    /// The module the LSTM's tensors belong to: `<module>` when W, R and B are computed from tensors
    /// named `<module>.weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0` (the `state_dict`'s,
    /// kept without constant folding); else the node's scope (`/gru/LSTM`: constant folding names the
    /// tensors `onnx::LSTM_…`).
    ///
    /// Errors: neither names it.
    fn lstm_module(&self, node: &NodeProto) -> Result<String> {
        let mut leaves: Vec<&str> =
            node.input.iter().skip(1).take(3).filter(|n| !n.is_empty()).flat_map(|n| self.folder.leaves(n)).collect();
        leaves.dedup();
        let module = leaves.first().and_then(|l| l.strip_suffix(".weight_ih_l0"));
        if let Some(m) = module {
            let names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"].map(|s| format!("{m}.{s}"));
            let k = leaves.len();
            if (k == 2 || k == 4) && leaves.iter().copied().eq(names[..k].iter().map(String::as_str)) {
                return Ok(m.to_string());
            }
        }
        scope(node).map(str::to_string).ok_or_else(|| {
            anyhow!(
                "{}: its weights ({}) are not named `<module>.weight_ih_l0` … as in PyTorch's state_dict, and the \
                 node has no module scope (`/<module>/LSTM`) to name them by",
                node_label(node),
                leaves.join(", ")
            )
        })
    }

    /// The output of the LSTM the graph uses, with its elements tracked: Y (every step's hidden state)
    /// or Y_h (the last).
    ///
    /// Errors: the cell state used, both used, or none.
    fn lstm_output(&mut self, node: &NodeProto, steps: usize, hidden: usize) -> Result<String> {
        let used: Vec<usize> = (0..3)
            .filter(|&i| {
                node.output.get(i).is_some_and(|o| {
                    !o.is_empty()
                        && (self.uses.get(o.as_str()).is_some_and(|&n| n > 0) || self.outputs.contains(&o.as_str()))
                })
            })
            .collect();
        let label = node_label(node);
        let units = |from: usize| (from..steps * hidden).map(|v| v as u32).collect();
        let array = match used[..] {
            [0] => {
                Array { dims: vec![Dim::Size(steps), Dim::Size(1), Dim::Batch, Dim::Size(hidden)], values: units(0) }
            }
            [1] => {
                Array { dims: vec![Dim::Size(1), Dim::Batch, Dim::Size(hidden)], values: units((steps - 1) * hidden) }
            }
            [] => bail!("{label}: none of its outputs is used"),
            _ if used.contains(&2) => {
                bail!("{label}: its cell state Y_c is used; only the last hidden state (h_n, or out[:, -1]) is mapped")
            }
            _ => bail!("{label}: both Y and Y_h are used; only the last hidden state, once, is mapped"),
        };
        self.tracked = Some(Tracked::Hidden { array, steps, hidden });
        Ok(node.output[used[0]].clone())
    }

    /// The description's input for an LSTM whose X holds, step by step, the pixels `pixels` (indices
    /// into the flattened input image): `rows = [C, H, W]` with the permutation recovered as a seed.
    ///
    /// Errors: steps and features that are not the image's rows; a pixel read twice or never; an order
    /// that is neither the image's nor `torch.randperm` of a seed in [`PERMUTE_SEEDS`].
    fn rows(&self, label: &str, pixels: &[u32], steps: usize, features: usize, by: Option<&str>) -> Result<Input> {
        let (c, h, w) = match self.input {
            Input::Image { c, h, w } if h == steps && c * w == features => (c, h, w),
            Input::Rows { h, w, .. } if h == steps && w == features => (1, h, w),
            Input::Features(n) if n == steps * features => (1, steps, features),
            Input::Image { c, h, w } | Input::Rows { c, h, w, .. } => bail!(
                "{label}: reads {steps} steps of {features} values from an input {c}×{h}×{w}; the description's lstm \
                 reads the image's {h} rows of {c}·{w} values"
            ),
            Input::Features(n) => bail!("{label}: reads {steps} steps of {features} values from {n} input values"),
        };
        let n = c * h * w;
        // X's step s, value (ci, x) holds pixel perm[(ci·h + s)·w + x] (generic::rows_table)
        let mut perm = vec![0; n];
        let mut seen = vec![false; n];
        for s in 0..h {
            for ci in 0..c {
                for col in 0..w {
                    let p = pixels[s * c * w + ci * w + col] as usize;
                    if std::mem::replace(&mut seen[p], true) {
                        bail!(
                            "{label}: its input reads pixel {p} twice; only a reordering of the whole image is mapped"
                        );
                    }
                    perm[(ci * h + s) * w + col] = p;
                }
            }
        }
        let permute_seed = if perm.iter().enumerate().all(|(i, &p)| i == p) {
            None
        } else {
            Some(randperm_seed(&perm, PERMUTE_SEEDS).ok_or_else(|| {
                anyhow!(
                    "{}: reorders the {n} pixels in an order that is neither the image's own nor torch.randperm({n}) \
                     on a generator seeded {}–{}, the orders a description's `permute_seed` expresses \
                     (docs/networks.md §7)",
                    by.unwrap_or(label),
                    PERMUTE_SEEDS.start(),
                    PERMUTE_SEEDS.end()
                )
            })?)
        };
        Ok(Input::Rows { c, h, w, permute_seed })
    }
}

/// Refuses a value of the LSTM's hidden states (`array`) other than the last step's `hidden` units,
/// one vector per image, where the layer `at` takes it.
fn last_hidden(array: &Array<u32>, steps: usize, hidden: usize, at: &str) -> Result<()> {
    let last = (steps - 1) * hidden;
    if array.dims == [Dim::Batch, Dim::Size(hidden)]
        && array.values.iter().enumerate().all(|(j, &v)| v as usize == last + j)
    {
        return Ok(());
    }
    bail!(
        "{at} takes the LSTM's output as {}{}; only its last hidden state, one vector of {hidden} per image \
         (PyTorch's out[:, -1] or h_n[-1]), is mapped",
        show(&array.dims),
        if array.dims == [Dim::Batch, Dim::Size(hidden)] { " of other steps or units" } else { "" }
    )
}
