"""PyTorch's side of docs/benchmarks.md "An ONNX network": one path iteration of mnist_cnn.onnx on the CPU.

The network of mnist_cnn.onnx (make.py), its weights loaded from the file's initializers (the state_dict
names), on the first --images MNIST training images (assets/mnist, pixels / 255). One iteration is what
`losscape bench` times as a path iteration (docs/benchmarks.md describes the PyTorch side of the paper's
networks, timed the same way):
M = 51 points w(t_m) = (1 - t) a + t b + sum_n c_n sin(n pi t), the loss and gradient at every point on all
images, the chain rule to the N_F = 10 Fourier coefficients and one Adam step. The 51 evaluations run as
torch.func.vmap(grad_and_value(functional_call)) and as a Python loop over the 51 vectors; both are timed
and the faster is the figure. float32, torch.set_num_threads(--threads), median of --repeats after one
warm-up. Timings only, not a numerical oracle (make.py's losses are the oracle).

    /path/to/venv/bin/python tests/data/onnx/bench_torch.py --threads 2 --images 2000
"""

import argparse
import gzip
import pathlib
import statistics
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

HERE = pathlib.Path(__file__).resolve().parent
MNIST = HERE.parents[2] / "assets" / "mnist"


def network():
    """make.py's mnist_cnn."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, stride=2, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(400, 10),
    )


def train_images(n):
    def idx(name):
        raw = gzip.decompress((MNIST / f"{name}.gz").read_bytes())
        dims = raw[3]
        shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
        return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)

    x = idx("train-images-idx3-ubyte")[:n].astype(np.float32) / np.float32(255.0)
    y = idx("train-labels-idx1-ubyte")[:n].astype(np.int64)
    return torch.from_numpy(x).reshape(-1, 1, 28, 28), torch.from_numpy(y)


def timed(fn, repeats):
    fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(HERE / "mnist_cnn.onnx"))
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--points", type=int, default=51)
    ap.add_argument("--fourier", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model = network()
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in onnx.load(args.model).graph.initializer}
    model.load_state_dict(weights)
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]
    x, y = train_images(args.images)

    def loss_of(v, xb, yb):
        params = {n: t.view(s) for n, t, s in zip(names, torch.split(v, sizes), shapes)}
        return F.cross_entropy(functional_call(model, params, (xb,)), yb)

    torch.manual_seed(0)
    a = torch.cat([p.detach().flatten() for p in model.parameters()])
    b = a + 0.05 * torch.randn_like(a)
    m, nf = args.points, args.fourier
    t = torch.linspace(0, 1, m)
    basis = torch.sin(torch.pi * torch.arange(1, nf + 1)[None, :] * t[:, None])  # [M, NF]
    coeffs = torch.zeros(nf, a.numel(), requires_grad=True)
    adam = torch.optim.Adam([coeffs], lr=1e-3)
    batched = vmap(grad_and_value(loss_of), in_dims=(0, None, None))

    def iteration(use_vmap):
        w = (1 - t)[:, None] * a[None] + t[:, None] * b[None] + basis @ coeffs.detach()  # [M, P]
        if use_vmap:
            g, losses = batched(w, x, y)
        else:
            gs, ls = [], []
            for k in range(m):
                v = w[k].clone().requires_grad_(True)
                loss = loss_of(v, x, y)
                loss.backward()
                gs.append(v.grad)
                ls.append(loss.detach())
            g, losses = torch.stack(gs), torch.stack(ls)
        seg, dseg = w[1:] - w[:-1], basis[1:] - basis[:-1]
        adam.zero_grad()
        coeffs.grad = basis.T @ g + 2e-4 * dseg.T @ seg
        adam.step()
        return losses.max().item()

    print(
        f"PyTorch {torch.__version__} CPU, {args.threads} threads, {pathlib.Path(args.model).name} "
        f"({a.numel()} parameters), N = {args.images} images, M = {m} points; median of {args.repeats}"
    )
    for use_vmap, what in [(True, "vmap"), (False, "loop")]:
        s = timed(lambda: iteration(use_vmap), args.repeats)
        print(f"path iteration ({what}): {s * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
