#!/usr/bin/env python3
"""The PyTorch side of the loss-surface comparison in docs/benchmarks.md: a 2-D FCP loss surface computed
one grid point at a time, as a `tomgoldstein/loss-landscape` user computes it (set the weights, loop over
a DataLoader of the test images with torch.no_grad, accumulate loss and accuracy; next point).

Two kinds of plane, matching `losscape surface`:
  --through A,B,C   the plane w = a + x (b - a) + y (c - a) through vectors A, B, C of the set, so that every
                    grid point can be compared with losscape's surface.csv value for value (--compare);
  --random          two random directions around vector --vector, filter-normalised as Li et al. define
                    them (each output row rescaled to the norm of the weights' row; the FCP has no biases).

Setup: python3 -m venv .venv && .venv/bin/pip install torch numpy   (torch 2.5.1 from PyPI was used)
Usage: .venv/bin/python scripts/torch_surface.py --set fcp-sgd-train.safetensors --through 0,1,2 \
           --range=-0.5:1.5:51 --images 10000 --threads 2 [--compare surf/surface.csv]
Only the FCP (softplus, the project's default) is built here. Prints the wall-clock time of the grid.
"""
import argparse, gzip, json, os, struct, sys, time
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
MNIST = os.path.join(HERE, "..", "assets", "mnist")


def load_test(n):
    with gzip.open(os.path.join(MNIST, "t10k-images-idx3-ubyte.gz")) as f:
        _, count, rows, cols = struct.unpack(">IIII", f.read(16))
        x = np.frombuffer(f.read(n * rows * cols), dtype=np.uint8).reshape(n, rows * cols)
    with gzip.open(os.path.join(MNIST, "t10k-labels-idx1-ubyte.gz")) as f:
        f.read(8)
        y = np.frombuffer(f.read(n), dtype=np.uint8)
    return torch.from_numpy(x.astype(np.float32) / 255.0), torch.from_numpy(y.astype(np.int64))


def load_set(path):
    """The FCP tensors of a safetensors stack: {name: array of shape (vectors, out, in)}."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name in ("fc1.weight", "fc2.weight", "fc3.weight"):
        h = header[name]
        assert h["dtype"] == "F32", h
        a, b = h["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=np.float32).reshape(h["shape"]).astype(np.float64)
    return out


def fcp_loss(w, loader):
    """Mean cross-entropy and accuracy of the FCP with weights w over the loader's batches."""
    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            z = F.softplus(x @ w["fc1.weight"].T)
            z = F.softplus(z @ w["fc2.weight"].T)
            logits = z @ w["fc3.weight"].T
            total += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            count += len(y)
    return total / count, correct / count


def filter_normalised(w, rng):
    d = {}
    for k, v in w.items():
        r = rng.standard_normal(v.shape)
        r *= np.linalg.norm(v, axis=1, keepdims=True) / (np.linalg.norm(r, axis=1, keepdims=True) + 1e-10)
        d[k] = r
    return d


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", required=True)
    p.add_argument("--through", help="A,B,C")
    p.add_argument("--random", action="store_true")
    p.add_argument("--vector", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--range", default="-1:1:51")
    p.add_argument("--images", type=int, default=10000)
    p.add_argument("--batch-size", type=int, default=128, help="DataLoader batch (loss-landscape's default 128)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--compare", help="losscape's surface.csv of the same plane: report the largest difference")
    p.add_argument("--csv", help="write i,j,x,y,loss,accuracy here")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    stack = load_set(a.set)
    lo, hi, n = a.range.split(":")
    xs = np.linspace(float(lo), float(hi), int(n))
    if a.through:
        i, j, k = (int(v) for v in a.through.split(","))
        base = {name: v[i] for name, v in stack.items()}
        dx = {name: v[j] - v[i] for name, v in stack.items()}
        dy = {name: v[k] - v[i] for name, v in stack.items()}
    elif a.random:
        base = {name: v[a.vector] for name, v in stack.items()}
        rng = np.random.default_rng(a.seed)
        dx, dy = filter_normalised(base, rng), filter_normalised(base, rng)
    else:
        sys.exit("say --through A,B,C or --random")
    x, y = load_test(a.images)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=a.batch_size)
    rows = []
    start = time.perf_counter()
    for jy, vy in enumerate(xs):
        for ix, vx in enumerate(xs):
            w = {k: torch.from_numpy((base[k] + vx * dx[k] + vy * dy[k]).astype(np.float32)) for k in base}
            loss, acc = fcp_loss(w, loader)
            rows.append((ix, jy, vx, vy, loss, acc))
    seconds = time.perf_counter() - start
    points = len(rows)
    print(f"torch {torch.__version__}, {a.threads} threads: {points} points on {a.images} images in {seconds:.1f} s "
          f"({points / seconds:.1f} points/s, DataLoader batch {a.batch_size})")
    if a.csv:
        with open(a.csv, "w") as f:
            f.write("i,j,x,y,loss,accuracy\n")
            for r in rows:
                f.write(",".join(str(v) for v in r) + "\n")
    if a.compare:
        ours = {}
        with open(a.compare) as f:
            next(f)
            for line in f:
                i, j, _, _, loss, _ = line.strip().split(",")
                ours[(int(i), int(j))] = float(loss)
        rel = max(abs(r[4] - ours[(r[0], r[1])]) / max(abs(r[4]), 1e-12) for r in rows)
        print(f"largest relative difference from {a.compare}: {rel:.2e} over {points} points")


if __name__ == "__main__":
    main()
