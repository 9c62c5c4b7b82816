"""Writes mlp.safetensors and expected.json: a PyTorch nn.Sequential MLP 64-32-10 (tanh) with PyTorch's
default initialisation, seeded, trained briefly (100 full-batch Adam steps on tests/data/digits/train.npz,
so that its loss and accuracy are far from chance), and PyTorch's mean cross-entropy loss and accuracy
on the first 200 images of tests/data/digits/test.npz, the pixels scaled as losscape scales them
(uint8 b -> b / 255), computed in float64 and in float32 from the saved float32 weights.

Run from the repository root: python tests/data/torch_mlp/make.py (needs torch, safetensors, numpy).
"""

import json
import pathlib

import numpy as np
import safetensors.torch
import torch

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
IMAGES = 200

torch.manual_seed(2023)
model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Tanh(), torch.nn.Linear(32, 10))
with np.load(ROOT / "tests/data/digits/train.npz") as f:
    train_x = torch.from_numpy(f["x"]).reshape(-1, 64).float() / 255
    train_y = torch.from_numpy(f["y"].astype(np.int64))
adam = torch.optim.Adam(model.parameters(), lr=0.01)
for _ in range(100):
    adam.zero_grad()
    torch.nn.functional.cross_entropy(model(train_x), train_y).backward()
    adam.step()
safetensors.torch.save_file(model.state_dict(), str(HERE / "mlp.safetensors"))

with np.load(ROOT / "tests/data/digits/test.npz") as f:
    x, y = f["x"][:IMAGES], f["y"][:IMAGES]
assert x.dtype == np.uint8 and x.shape == (IMAGES, 8, 8), (x.dtype, x.shape)
labels = torch.from_numpy(y.astype(np.int64))


def measure(dtype):
    net = model.to(dtype)
    pixels = torch.from_numpy(x).reshape(IMAGES, 64).to(dtype) / 255
    with torch.no_grad():
        logits = net(pixels)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        accuracy = (logits.argmax(dim=1) == labels).to(torch.float64).mean()
    return {"loss": loss.item(), "accuracy": accuracy.item()}


expected = {
    "model": "mlp:64-32-10:tanh",
    "data": "tests/data/digits/test.npz",
    "images": IMAGES,
    "torch": torch.__version__,
    "float64": measure(torch.float64),
    "float32": measure(torch.float32),
}
(HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
print(json.dumps(expected, indent=2))
