"""Two checkpoints of the LSTM fixture's model, as a user saves them: the README's LSTM walk-through.

Not fixtures: PaperLSTM (make.py) from seeds 1 and 2, 30 full-batch Adam steps on the first 1,000 MNIST
training images on one thread, each state_dict saved with safetensors.torch.save_file into the folder
given (default: the current one), with PyTorch's loss on the first 500 test images printed.

    python tests/data/onnx/lstm_checkpoints.py [folder]
"""

import pathlib
import sys

import torch
from safetensors.torch import save_file

from make import PaperLSTM, loss, mnist, train


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    xtr, ytr = mnist("train", 1000)
    xte, yte = mnist("test", 500)
    for name, seed in [("lstm_a", 1), ("lstm_b", 2)]:
        torch.manual_seed(seed)
        model = train(PaperLSTM(), xtr, ytr, 30)
        save_file(model.state_dict(), str(out / f"{name}.safetensors"))
        print(f"{name}.safetensors: PyTorch's loss on 500 MNIST test images {loss(model.eval(), xte, yte)!r}")


if __name__ == "__main__":
    main()
