"""onnxruntime's mean cross-entropy of an ONNX classifier on the first images of the bundled MNIST test split.

Not a fixture: the by-hand check that a model `losscape export` wrote runs in onnxruntime and gives the
loss `losscape eval --model X.onnx --weights X.onnx --limit N` gives (README.md beside this file records a
run). The images are read as make.py reads them (pixels / 255, float32); the loss is PyTorch's
cross_entropy on onnxruntime's logits.

    python tests/data/onnx/ort_loss.py model.onnx [images]
"""

import sys

import numpy as np
import onnxruntime
import torch

from make import mnist


def main():
    path = sys.argv[1]
    images = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    x, y = mnist("test", images)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.numpy().astype(np.float32)}
    logits = torch.from_numpy(session.run(None, feed)[0])
    loss = float(torch.nn.functional.cross_entropy(logits, y))
    accuracy = float((logits.argmax(1) == y).float().mean())
    print(f"{path}: onnxruntime {onnxruntime.__version__}, {images} MNIST test images: loss {loss!r}, accuracy {accuracy}")


if __name__ == "__main__":
    main()
