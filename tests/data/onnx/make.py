"""Makes the ONNX fixtures of tests/onnx.rs (README.md beside this file says how to run it).

Every network here is exported once with torch.onnx.export's TorchScript exporter (dynamo=False), which
keeps the state_dict names as initializer names; the checkpoints are state_dicts saved with
safetensors.torch.save_file, as a user would save them. PyTorch's losses on the first 200 test images
of tests/data/digits (pixels / 255, as losscape reads uint8 images) go to expected.json; so do the losses
of the MNIST networks (an MLP, a CNN with a stride-2 convolution and max pooling, the paper's LeNet, the
paper's LSTM with its pixel permutation, an LSTM without it exported with constant folding) on the first
500 images of the bundled MNIST test split (assets/mnist), under "mnist".
"""

import gzip
import json
import pathlib

import numpy as np
import onnx
import torch
from safetensors.torch import save_file
from torch import nn

HERE = pathlib.Path(__file__).resolve().parent
DIGITS = HERE.parent / "digits"
MNIST = HERE.parents[2] / "assets" / "mnist"
OPSET = 17
IMAGES = 200
MNIST_IMAGES = 500  # the test split's first images, for expected.json
MNIST_TRAIN = 1000  # the training split's first images, for a few Adam steps


def digits(split):
    z = np.load(DIGITS / f"{split}.npz")
    x = torch.from_numpy(z["x"].astype(np.float32) / 255.0).reshape(-1, 1, 8, 8)
    return x, torch.from_numpy(z["y"].astype(np.int64))


def idx(name):
    """An IDX file of assets/mnist (big-endian header: magic, then one u32 per dimension), as uint8."""
    raw = gzip.decompress((MNIST / f"{name}.gz").read_bytes())
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def mnist(split, n):
    """The first n images of an MNIST split, pixels / 255 in float32, as losscape reads them."""
    prefix = "t10k" if split == "test" else "train"
    x = idx(f"{prefix}-images-idx3-ubyte")[:n].astype(np.float32) / np.float32(255.0)
    y = idx(f"{prefix}-labels-idx1-ubyte")[:n].astype(np.int64)
    return torch.from_numpy(x).reshape(-1, 1, 28, 28), torch.from_numpy(y)


def export(model, name, side=8, fold=False):
    model.eval()
    path = HERE / f"{name}.onnx"
    torch.onnx.export(
        model,
        (torch.zeros(1, 1, side, side),),
        str(path),
        dynamo=False,
        opset_version=OPSET,
        do_constant_folding=fold,
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
    )
    onnx.checker.check_model(onnx.load(str(path)))
    return path


def loss(model, x, y):
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(x), y))


def train(model, x, y, steps):
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model


class LeNet5(nn.Module):
    """The paper's LeNet (src/model/description/builtin/lenet.toml) as the authors' code names it."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
        self.act = nn.Softplus()
        self.pool = nn.AvgPool2d(2)

    def forward(self, x):
        x = self.pool(self.act(self.conv1(x)))
        x = self.pool(self.act(self.conv2(x)))
        x = x.view(-1, 400)  # a Reshape node with a constant shape
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


class ViewCNN(nn.Module):
    """mnist_cnn's layers as attributes, flattened by `x.view(x.size(0), -1)`: under the dynamic batch
    axis the exporter computes the Reshape's shape from the batch size (Shape, Gather, Unsqueeze,
    Concat). Its parameters are made in mnist_cnn's order, so the same seed gives the same network."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5, stride=2, padding=2)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.fc = nn.Linear(400, 10)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        x = torch.relu(self.conv2(self.pool(torch.relu(self.conv1(x)))))
        return self.fc(x.view(x.size(0), -1))


class PaperLSTM(nn.Module):
    """The paper's LSTM (src/model/description/builtin/lstm.toml) as the authors' code names it: nn.LSTM
    `gru` (28 features, 48 hidden) over the 28 rows of the image, permuted first by torch.randperm(784) on
    a generator seeded 1234 when `permute` (a Gather in the graph), then the classifier `fc` without bias
    on the last hidden state: out[:, -1] (Y), or h_n[-1] (Y_h) when `last_state`."""

    def __init__(self, permute=True, last_state=False, hidden=48, **lstm):
        super().__init__()
        self.gru = nn.LSTM(28, hidden, batch_first=True, **lstm)
        self.fc = nn.Linear(hidden * (2 if lstm.get("bidirectional") else 1), 10, bias=False)
        perm = torch.randperm(784, generator=torch.Generator().manual_seed(1234))
        self.register_buffer("perm", perm, persistent=False)  # not in the state_dict
        self.permute, self.last_state = permute, last_state

    def forward(self, x):
        x = x.reshape(-1, 784)
        if self.permute:
            x = x[:, self.perm]
        out, (h, _) = self.gru(x.reshape(-1, 28, 28))
        return self.fc(h[-1] if self.last_state else out[:, -1])


class Residual(nn.Module):
    """Not a chain: an Add of two branches, which the importer refuses."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 64)
        self.out = nn.Linear(64, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        return self.out(x + torch.tanh(self.fc(x)))


def main():
    xtr, ytr = digits("train")
    xte, yte = digits("test")
    xte, yte = xte[:IMAGES], yte[:IMAGES]
    expected = {"images": IMAGES, "torch": torch.__version__, "opset": OPSET}

    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))
    export(mlp, "mlp")
    expected["mlp.onnx"] = loss(mlp, xte, yte)
    for name, seed in [("ckpt_a", 1), ("ckpt_b", 2)]:
        torch.manual_seed(seed)
        m = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))
        train(m, xtr, ytr, 60)
        save_file(m.state_dict(), str(HERE / f"{name}.safetensors"))
        expected[f"{name}.safetensors"] = loss(m, xte, yte)

    torch.manual_seed(0)
    cnn = nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 10)
    )
    export(cnn, "cnn")
    expected["cnn.onnx"] = loss(cnn, xte, yte)

    # MNIST: an MLP, a CNN (stride-2 convolution, max pooling), the paper's LeNet and two LSTMs, each 20 full-batch
    # Adam steps from its seed-0 init on the first 1,000 training images, then exported with its weights;
    # on one thread, so that the float sums, hence the bytes, are the same on every machine
    torch.set_num_threads(1)
    xtr, ytr = mnist("train", MNIST_TRAIN)
    xte, yte = mnist("test", MNIST_IMAGES)
    expected["mnist"] = {"images": MNIST_IMAGES, "train_images": MNIST_TRAIN, "adam_steps": 20}
    networks = {
        "mnist_mlp": lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.Tanh(), nn.Linear(64, 10)),
        "mnist_cnn": lambda: nn.Sequential(
            nn.Conv2d(1, 8, 5, stride=2, padding=2),  # 28 -> 14
            nn.ReLU(),
            nn.MaxPool2d(2),  # 14 -> 7
            nn.Conv2d(8, 16, 3),  # 7 -> 5
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(400, 10),
        ),
        "lenet5": LeNet5,
        "mnist_cnn_view": ViewCNN,
        # the paper's LSTM, and one without the permutation that takes h_n and is exported with
        # constant folding (the exporter then names the LSTM's and fc's tensors onnx::LSTM_…, onnx::MatMul_…)
        "mnist_lstm": PaperLSTM,
        "mnist_lstm_folded": lambda: PaperLSTM(permute=False, last_state=True),
    }
    for name, make in networks.items():
        torch.manual_seed(0)
        model = train(make(), xtr, ytr, 20)
        export(model, name, side=28, fold=name.endswith("_folded"))
        expected["mnist"][f"{name}.onnx"] = loss(model, xte, yte)

    torch.manual_seed(0)
    export(Residual(), "residual")

    torch.manual_seed(0)
    export(nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(144, 10)), "batchnorm")

    # LSTMs the importer refuses: two layers (num_layers=2), both directions
    torch.manual_seed(0)
    export(PaperLSTM(permute=False, hidden=2, num_layers=2), "lstm_stacked", side=28)
    torch.manual_seed(0)
    export(PaperLSTM(permute=False, hidden=2, bidirectional=True), "lstm_bidirectional", side=28)

    (HERE / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
