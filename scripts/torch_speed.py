#!/usr/bin/env python3
"""PyTorch timings of the study's hot loops (CPU, or a GPU with --device cuda), to compare with
`losscape bench` side by side.

What a researcher without this program would run: the same four networks (the project's default
variant: softplus FCP, LeNet conv -> softplus -> avg-pool, LSTM on permuted rows, autoencoder) in
PyTorch on the CPU, float32. Figures, per network, on the first N training images:

  grad      loss + gradient of one weight vector (one batch of N images)
  path      one FourierPathFinder iteration: M path points w(t_m) = (1-t)a + t b + sum b_n sin(n pi t),
            loss + gradient at every point (torch.func.vmap or a Python loop, the faster one;
            the loop alone for LeNet and the LSTM, where vmap is slower or runs out of memory),
            chain rule to the N_F coefficients, one Adam step
  lbfgs     one L-BFGS-GSS iteration as the authors run it: loss + gradient, then 6 loss-only
            evaluations (their line-search budget); the two-loop recursion is negligible
  sgd       one SGD epoch over the N images, mini-batches of 64, R = 1 run

Setup (PyPI): python3 -m venv .venv && .venv/bin/pip install torch numpy
Usage:   .venv/bin/python scripts/torch_speed.py --images 2000 --models fcp,lenet,lstm,autoencoder --json out.json
On a GPU: --device cuda (float32; TF32 matrix products stay off unless --tf32, so that the
figures compare like with like); the loop and vmap are both tried for every network.
Threads: torch.set_num_threads(--threads, default: all cores). Each figure is the median of --repeats
runs after one warm-up. Only timings are printed; this is not a numerical oracle.
An AVX2 machine on an AVX-512 one: ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2
ONEDNN_MAX_CPU_ISA=AVX2 (the JSON records the capability PyTorch ran at, and these variables).
"""
import argparse, gzip, json, os, statistics, struct, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad_and_value, vmap

HERE = os.path.dirname(os.path.abspath(__file__))
MNIST = os.path.join(HERE, "..", "assets", "mnist")  # the bundled copy


def load_train(n):
    with gzip.open(os.path.join(MNIST, "train-images-idx3-ubyte.gz")) as f:
        _, count, rows, cols = struct.unpack(">IIII", f.read(16))
        x = np.frombuffer(f.read(n * rows * cols), dtype=np.uint8).reshape(n, rows * cols)
    with gzip.open(os.path.join(MNIST, "train-labels-idx1-ubyte.gz")) as f:
        f.read(8)
        y = np.frombuffer(f.read(n), dtype=np.uint8)
    return torch.from_numpy(x.astype(np.float32) / 255.0), torch.from_numpy(y.astype(np.int64))


class FCP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = (nn.Linear(784, 50, bias=False), nn.Linear(50, 50, bias=False),
                                        nn.Linear(50, 10, bias=False))

    def forward(self, x):
        return self.fc3(F.softplus(self.fc2(F.softplus(self.fc1(x)))))


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = F.avg_pool2d(F.softplus(self.conv1(x.reshape(-1, 1, 28, 28))), 2)
        x = F.avg_pool2d(F.softplus(self.conv2(x)), 2).flatten(1)
        return self.fc3(F.softplus(self.fc2(F.softplus(self.fc1(x)))))


class LSTMNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 48, batch_first=True)
        self.fc = nn.Linear(48, 10, bias=False)
        self.register_buffer("perm", torch.randperm(784, generator=torch.Generator().manual_seed(1234)),
                             persistent=False)

    def forward(self, x):
        _, (h, _) = self.lstm(x[:, self.perm].reshape(-1, 28, 28))
        return self.fc(h[-1])


class Autoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(784, 32, bias=False), nn.Softplus(),
                                     nn.Linear(32, 32, bias=False), nn.Softplus())
        self.decoder = nn.Sequential(nn.Linear(32, 32, bias=False), nn.Softplus(),
                                     nn.Linear(32, 784, bias=False), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


MODELS = {"fcp": FCP, "lenet": LeNet, "lstm": LSTMNet, "autoencoder": Autoencoder}


def loss_fn(name, out, x, y):
    return F.mse_loss(out, x) if name == "autoencoder" else F.cross_entropy(out, y)


DEVICE = torch.device("cpu")


def sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, repeats):
    fn(); sync()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); sync(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def bench_model(name, x, y, points, fourier, repeats):
    torch.manual_seed(0)
    model = MODELS[name]().to(DEVICE)
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]
    n_prm = sum(sizes)

    def unflat(v):
        return {n: t.view(s) for n, t, s in zip(names, torch.split(v, sizes), shapes)}

    def loss_of(v, xb, yb):
        return loss_fn(name, functional_call(model, unflat(v), (xb,)), xb, yb)

    a = torch.cat([p.detach().flatten() for p in model.parameters()])
    b_end = a + 0.05 * torch.randn_like(a)
    out = {"n_prm": n_prm}

    def grad_once():
        v = a.clone().requires_grad_(True)
        loss = loss_of(v, x, y)
        loss.backward()
        return loss.item()
    out["grad"] = timed(grad_once, repeats)

    t = torch.linspace(0, 1, points, device=DEVICE)
    basis = torch.sin(torch.pi * torch.arange(1, fourier + 1, device=DEVICE)[None, :] * t[:, None])  # [M, NF]
    coeffs = torch.zeros(fourier, n_prm, requires_grad=True, device=DEVICE)
    adam = torch.optim.Adam([coeffs], lr=1e-3)
    gv = vmap(grad_and_value(loss_of), in_dims=(0, None, None))

    def path_step(use_vmap):
        w = (1 - t)[:, None] * a[None] + t[:, None] * b_end[None] + basis @ coeffs.detach()  # [M, P]
        if use_vmap:
            g, losses = gv(w, x, y)
        else:
            gs, ls = [], []
            for m in range(points):
                v = w[m].clone().requires_grad_(True)
                l = loss_of(v, x, y); l.backward(); gs.append(v.grad); ls.append(l.detach())
            g, losses = torch.stack(gs), torch.stack(ls)
        seg = w[1:] - w[:-1]
        dseg = basis[1:] - basis[:-1]
        adam.zero_grad()
        coeffs.grad = basis.T @ g + 2e-4 * dseg.T @ seg  # dL/db_n, lambda = 1e-4
        adam.step()
        return losses.max().item()

    best = None
    # vmap is faster for the dense networks; for LeNet it is slower and for the LSTM its batching
    # fallback (no rule for mkldnn_rnn_layer) exhausts memory, so those use the loop only
    for mode in ((True, False) if name in ("fcp", "autoencoder") or DEVICE.type == "cuda" else (False,)):
        try:
            s = timed(lambda: path_step(mode), repeats)
        except Exception as e:  # vmap may lack a batching rule for some op
            print(f"  {name} path {'vmap' if mode else 'loop'} failed: {e}", file=sys.stderr)
            continue
        out["path_" + ("vmap" if mode else "loop")] = s
        best = s if best is None else min(best, s)
    out["path"] = best

    def lbfgs_iter():
        grad_once()
        with torch.no_grad():
            for k in range(6):
                loss_of(a - 0.01 * (k + 1) * b_end, x, y).item()
    out["lbfgs"] = timed(lbfgs_iter, repeats)

    sgd_model = MODELS[name]().to(DEVICE)
    opt = torch.optim.SGD(sgd_model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(0)

    def sgd_epoch():
        order = torch.randperm(x.shape[0], generator=gen).to(DEVICE)
        for i in range(0, x.shape[0], 64):
            idx = order[i:i + 64]
            opt.zero_grad()
            loss_fn(name, sgd_model(x[idx]), x[idx], y[idx]).backward()
            opt.step()
    out["sgd"] = timed(sgd_epoch, repeats)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--models", default="fcp,lenet,lstm,autoencoder")
    ap.add_argument("--points", type=int, default=51)
    ap.add_argument("--fourier", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--json", help="write the figures here as JSON")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matrix products on a GPU")
    args = ap.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.set_num_threads(args.threads)
    x, y = load_train(args.images)
    x, y = x.to(DEVICE), y.to(DEVICE)
    res = {"torch": torch.__version__, "device": str(DEVICE), "threads": args.threads, "images": args.images,
           "points": args.points, "fourier": args.fourier, "seconds": {},
           # the instruction set of PyTorch's own CPU kernels (ATEN_CPU_CAPABILITY=avx2 narrows it; MKL's
           # and oneDNN's follow MKL_ENABLE_INSTRUCTIONS and ONEDNN_MAX_CPU_ISA)
           "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "isa_env": {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS",
                                                  "ONEDNN_MAX_CPU_ISA") if k in os.environ}}
    where = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else "CPU"
    print(f"PyTorch {torch.__version__} {where}, {args.threads} threads, N = {args.images} images, "
          f"M = {args.points} path points; seconds (median of {args.repeats})")
    print(f"{'network':<12}{'grad':>10}{'path':>10}{'lbfgs':>10}{'sgd':>10}")
    for name in args.models.split(","):
        r = bench_model(name, x, y, args.points, args.fourier, args.repeats)
        res["seconds"][name] = r
        print(f"{name:<12}{r['grad']:>10.4f}{r['path']:>10.3f}{r['lbfgs']:>10.3f}{r['sgd']:>10.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
