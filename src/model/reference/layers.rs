//! One layer's forward and backward pass in f64, on one image's values: the building blocks of the
//! interpreter ([`super::Interpreter`]). Written for clarity, not speed: index loops mirror the
//! formulas. Values are flat and row-major in PyTorch's layouts: an image C×H×W in (channel, row,
//! column) order, a sequence (step, feature), a dense weight (out, in), a convolution weight
//! (out, C, k, k), LSTM weights (4·hidden, ·) with the gates in the order i, f, g, o.
//!
//! Sources (PyTorch documentation): `nn.Linear`, `nn.Conv2d`, `nn.AvgPool2d`, `nn.MaxPool2d`,
//! `nn.LSTM`; the max-pool gradient goes to the first maximal element of each window in row-major
//! order, as PyTorch's CPU kernel picks it (`val > maxval` over the window).

// Index loops mirror the formulas (y[o] = Σ_i W[o][i] x[i] ...), which is the point of this module.
#![allow(clippy::needless_range_loop)]

/// The geometry of an image: channels, height, width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Dims {
    /// Values per channel (H·W).
    pub fn plane(&self) -> usize {
        self.h * self.w
    }

    /// Values in all (C·H·W).
    pub fn len(&self) -> usize {
        self.c * self.plane()
    }

    /// Whether the image holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A square sliding window: kernel, stride and zero padding, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl Window {
    /// The output side over `n` values: ⌊(n + 2·padding − kernel)/stride⌋ + 1 (PyTorch's, ceil_mode
    /// off); 0 when the window does not fit.
    pub fn out(&self, n: usize) -> usize {
        if n + 2 * self.padding < self.kernel || self.stride == 0 {
            0
        } else {
            (n + 2 * self.padding - self.kernel) / self.stride + 1
        }
    }

    /// The output geometry of `c` channels over an input plane `dims.h` × `dims.w`.
    pub fn out_dims(&self, dims: Dims, c: usize) -> Dims {
        Dims { c, h: self.out(dims.h), w: self.out(dims.w) }
    }

    /// Calls `f(o, kk, i)` for every output position o = oy·W' + ox, every kernel offset
    /// kk = ky·k + kx (row-major, so window by window in row-major order) and the input position
    /// i = iy·W + ix it reads, iy = oy·stride + ky − padding; taps on the zero padding are skipped.
    fn taps(&self, dims: Dims, mut f: impl FnMut(usize, usize, usize)) {
        let (oh, ow, k) = (self.out(dims.h), self.out(dims.w), self.kernel);
        for oy in 0..oh {
            for ox in 0..ow {
                for ky in 0..k {
                    let Some(iy) = (oy * self.stride + ky).checked_sub(self.padding).filter(|&y| y < dims.h) else {
                        continue;
                    };
                    for kx in 0..k {
                        if let Some(ix) = (ox * self.stride + kx).checked_sub(self.padding).filter(|&x| x < dims.w) {
                            f(oy * ow + ox, ky * k + kx, iy * dims.w + ix);
                        }
                    }
                }
            }
        }
    }
}

/// `nn.Linear`: y = W x (+ b), W (out, in) row-major, x (in), y (out).
pub fn dense(w: &[f64], b: Option<&[f64]>, x: &[f64], out: usize) -> Vec<f64> {
    let cols = x.len();
    (0..out)
        .map(|r| {
            let wx: f64 = w[r * cols..(r + 1) * cols].iter().zip(x).map(|(a, b)| a * b).sum();
            wx + b.map_or(0.0, |b| b[r])
        })
        .collect()
}

/// The backward pass of [`dense`] given d = d loss / d y: adds d xᵀ to `gw` and d to `gb`; returns
/// d loss / d x = Wᵀ d when `want_dx` (else an empty vector).
pub fn dense_back(w: &[f64], x: &[f64], d: &[f64], gw: &mut [f64], gb: Option<&mut [f64]>, want_dx: bool) -> Vec<f64> {
    let cols = x.len();
    let mut dx = if want_dx { vec![0.0; cols] } else { Vec::new() };
    for (r, &dr) in d.iter().enumerate() {
        for c in 0..cols {
            gw[r * cols + c] += dr * x[c];
        }
        if want_dx {
            for c in 0..cols {
                dx[c] += dr * w[r * cols + c];
            }
        }
    }
    if let Some(gb) = gb {
        gb.iter_mut().zip(d).for_each(|(g, d)| *g += d);
    }
    dx
}

/// `nn.Conv2d`: the cross-correlation of `x` (`dims`) with W (out, C, k, k) over the zero-padded
/// image, strided, plus the bias; gives out × H' × W' values.
pub fn conv2d(x: &[f64], dims: Dims, w: &[f64], b: Option<&[f64]>, out: usize, win: Window) -> (Vec<f64>, Dims) {
    let od = win.out_dims(dims, out);
    let (k2, (ip, op)) = (win.kernel * win.kernel, (dims.plane(), od.plane()));
    let mut y = vec![0.0; od.len()];
    for co in 0..out {
        let yc = &mut y[co * op..(co + 1) * op];
        if let Some(b) = b {
            yc.fill(b[co]);
        }
        for ci in 0..dims.c {
            let (wk, xc) = (&w[(co * dims.c + ci) * k2..][..k2], &x[ci * ip..(ci + 1) * ip]);
            win.taps(dims, |o, kk, i| yc[o] += wk[kk] * xc[i]);
        }
    }
    (y, od)
}

/// The backward pass of [`conv2d`] given d = d loss / d y (`out_dims`): adds to `gw` and `gb`;
/// returns d loss / d x when `want_dx` (else an empty vector).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_back(
    x: &[f64],
    dims: Dims,
    w: &[f64],
    win: Window,
    d: &[f64],
    out_dims: Dims,
    gw: &mut [f64],
    mut gb: Option<&mut [f64]>,
    want_dx: bool,
) -> Vec<f64> {
    let (k2, (ip, op)) = (win.kernel * win.kernel, (dims.plane(), out_dims.plane()));
    let mut dx = if want_dx { vec![0.0; dims.len()] } else { Vec::new() };
    for co in 0..out_dims.c {
        let dc = &d[co * op..(co + 1) * op];
        if let Some(gb) = gb.as_deref_mut() {
            gb[co] += dc.iter().sum::<f64>();
        }
        for ci in 0..dims.c {
            let base = (co * dims.c + ci) * k2;
            let xc = &x[ci * ip..(ci + 1) * ip];
            win.taps(dims, |o, kk, i| gw[base + kk] += dc[o] * xc[i]);
            if want_dx {
                let dxc = &mut dx[ci * ip..(ci + 1) * ip];
                win.taps(dims, |o, kk, i| dxc[i] += dc[o] * w[base + kk]);
            }
        }
    }
    dx
}

/// The two pooling layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// `nn.AvgPool2d`: the mean of each window (kernel² values, no padding).
    Avg,
    /// `nn.MaxPool2d`: the largest value of each window.
    Max,
}

/// For every output of a max pool, the input position (within its channel plane) of the first
/// maximal element of its window in row-major order (a NaN replaces the maximum whatever it is, as in
/// PyTorch's kernel: `val > maxval || isnan(val)`).
fn argmax_windows(xc: &[f64], dims: Dims, win: Window) -> Vec<usize> {
    let mut best: Vec<Option<usize>> = vec![None; win.out(dims.h) * win.out(dims.w)];
    win.taps(dims, |o, _, i| {
        if best[o].is_none_or(|b| xc[i] > xc[b] || xc[i].is_nan()) {
            best[o] = Some(i);
        }
    });
    best.into_iter().map(|b| b.unwrap_or(0)).collect()
}

/// Pooling of `x` (`dims`) per channel with `win` (padding 0): C × H' × W' values.
pub fn pool(kind: Pool, x: &[f64], dims: Dims, win: Window) -> (Vec<f64>, Dims) {
    let od = win.out_dims(dims, dims.c);
    let (ip, op) = (dims.plane(), od.plane());
    let mut y = vec![0.0; od.len()];
    for c in 0..dims.c {
        let (xc, yc) = (&x[c * ip..(c + 1) * ip], &mut y[c * op..(c + 1) * op]);
        match kind {
            Pool::Avg => {
                let scale = 1.0 / (win.kernel * win.kernel) as f64;
                win.taps(dims, |o, _, i| yc[o] += xc[i] * scale);
            }
            Pool::Max => argmax_windows(xc, dims, win).iter().zip(yc).for_each(|(&i, y)| *y = xc[i]),
        }
    }
    (y, od)
}

/// The backward pass of [`pool`] given d = d loss / d y: d loss / d x. Overlapping windows add their
/// contributions; a max pool sends each window's gradient to its first maximal element.
pub fn pool_back(kind: Pool, x: &[f64], dims: Dims, win: Window, d: &[f64]) -> Vec<f64> {
    let op = win.out(dims.h) * win.out(dims.w);
    let ip = dims.plane();
    let mut dx = vec![0.0; dims.len()];
    for c in 0..dims.c {
        let (xc, dc, dxc) = (&x[c * ip..(c + 1) * ip], &d[c * op..(c + 1) * op], &mut dx[c * ip..(c + 1) * ip]);
        match kind {
            Pool::Avg => {
                let scale = 1.0 / (win.kernel * win.kernel) as f64;
                win.taps(dims, |o, _, i| dxc[i] += dc[o] * scale);
            }
            Pool::Max => argmax_windows(xc, dims, win).iter().zip(dc).for_each(|(&i, g)| dxc[i] += g),
        }
    }
    dx
}

/// The logistic sigmoid 1 / (1 + e^−x).
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// An LSTM's parameters: W_ih (4·hidden, features), W_hh (4·hidden, hidden), and optionally the
/// biases b_ih, b_hh (4·hidden each); gates in the order i, f, g, o.
#[derive(Clone, Copy, Debug)]
pub struct LstmParams<'a> {
    pub w_ih: &'a [f64],
    pub w_hh: &'a [f64],
    pub bias: Option<(&'a [f64], &'a [f64])>,
    pub hidden: usize,
}

/// What the backward pass of an LSTM needs: the inputs of every step, the hidden and cell states
/// h₀..h_T, c₀..c_T (h₀ = c₀ = 0), and every step's gate pre-activations (4·hidden).
#[derive(Clone, Debug, PartialEq)]
pub struct LstmTrace {
    pub xs: Vec<Vec<f64>>,
    pub hs: Vec<Vec<f64>>,
    pub cs: Vec<Vec<f64>>,
    pub zs: Vec<Vec<f64>>,
}

impl LstmTrace {
    /// The last hidden state h_T: the layer's output.
    pub fn output(&self) -> &[f64] {
        self.hs.last().expect("h₀ is always there")
    }
}

/// `nn.LSTM` (one layer, batch_first) over `x`, `steps` vectors of `x.len() / steps` features:
/// z = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh; i, f, o = σ(z_i, z_f, z_o), g = tanh(z_g);
/// c_t = f ⊙ c_{t−1} + i ⊙ g; h_t = o ⊙ tanh(c_t).
pub fn lstm(p: LstmParams, x: &[f64], steps: usize) -> LstmTrace {
    let (n, g) = (p.hidden, 4 * p.hidden);
    let features = x.len() / steps.max(1);
    let xs: Vec<Vec<f64>> = (0..steps).map(|s| x[s * features..(s + 1) * features].to_vec()).collect();
    let (mut hs, mut cs, mut zs) = (vec![vec![0.0; n]], vec![vec![0.0; n]], Vec::with_capacity(steps));
    for x in &xs {
        let (zx, zh) =
            (dense(p.w_ih, p.bias.map(|b| b.0), x, g), dense(p.w_hh, p.bias.map(|b| b.1), &hs[hs.len() - 1], g));
        let z: Vec<f64> = zx.iter().zip(&zh).map(|(a, b)| a + b).collect();
        let c_prev = &cs[cs.len() - 1];
        let c: Vec<f64> = (0..n).map(|j| sigmoid(z[n + j]) * c_prev[j] + sigmoid(z[j]) * z[2 * n + j].tanh()).collect();
        hs.push((0..n).map(|j| sigmoid(z[3 * n + j]) * c[j].tanh()).collect());
        cs.push(c);
        zs.push(z);
    }
    LstmTrace { xs, hs, cs, zs }
}

/// The backward pass of [`lstm`] through time given d loss / d h_T: adds to the gradients of W_ih,
/// W_hh and (with biases) b_ih, b_hh. The gradient with respect to the input is not computed (an
/// LSTM reads the network's input).
pub fn lstm_back(
    p: LstmParams,
    t: &LstmTrace,
    d_out: &[f64],
    g_ih: &mut [f64],
    g_hh: &mut [f64],
    mut g_bias: Option<(&mut [f64], &mut [f64])>,
) {
    let n = p.hidden;
    let mut dh = d_out.to_vec();
    let mut dc = vec![0.0; n];
    for s in (0..t.zs.len()).rev() {
        let z = &t.zs[s];
        let mut dz = vec![0.0; 4 * n];
        for j in 0..n {
            let (ig, fg, gg, og) = (sigmoid(z[j]), sigmoid(z[n + j]), z[2 * n + j].tanh(), sigmoid(z[3 * n + j]));
            let tc = t.cs[s + 1][j].tanh();
            let dcs = dc[j] + dh[j] * og * (1.0 - tc * tc);
            dz[j] = dcs * gg * ig * (1.0 - ig);
            dz[n + j] = dcs * t.cs[s][j] * fg * (1.0 - fg);
            dz[2 * n + j] = dcs * ig * (1.0 - gg * gg);
            dz[3 * n + j] = dh[j] * tc * og * (1.0 - og);
            dc[j] = dcs * fg;
        }
        if let Some((gi, gh)) = g_bias.as_mut() {
            gi.iter_mut().zip(&dz).for_each(|(g, d)| *g += d);
            gh.iter_mut().zip(&dz).for_each(|(g, d)| *g += d);
        }
        dense_back(p.w_ih, &t.xs[s], &dz, g_ih, None, false);
        dh = dense_back(p.w_hh, &t.hs[s], &dz, g_hh, None, s > 0);
    }
}
