"""Converts scikit-learn's copy of the UCI handwritten digits (8x8 images, pixels 0..16) into the two
.npz files of this directory, train.npz and test.npz, each with

    x  uint8 (N, 8, 8)  pixels scaled from 0..16 to 0..255: round(v * 255 / 16), halves up,
                        i.e. (255 * v + 8) // 16 in integers (0 -> 0, 8 -> 128, 16 -> 255)
    y  int64 (N,)       the digit, 0..9

split in file order: the first 1,437 rows (80 %) are the training split, the last 360 the test split.
The archives are written with fixed timestamps (1980-01-01) and deflate, so that running this script
again gives byte-identical files (README.md lists their SHA-256).

Usage (scikit-learn ships the data as sklearn/datasets/data/digits.csv.gz):

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install scikit-learn
    /tmp/venv/bin/python tests/data/digits/convert.py [path/to/digits.csv.gz]
"""

import gzip
import io
import os
import sys
import zipfile

import numpy as np

TRAIN = 1437


def source_path():
    if len(sys.argv) > 1:
        return sys.argv[1]
    import sklearn.datasets

    return os.path.join(os.path.dirname(sklearn.datasets.__file__), "data", "digits.csv.gz")


def write_npz(path, arrays):
    """np.savez_compressed, but with fixed member timestamps (byte-reproducible)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(member, buffer.getvalue())


def main():
    with gzip.open(source_path(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    assert table.shape == (1797, 65), table.shape
    values, y = table[:, :64], table[:, 64]
    assert values.min() == 0 and values.max() == 16 and set(np.unique(y)) == set(range(10))
    x = ((255 * values + 8) // 16).astype(np.uint8).reshape(-1, 8, 8)
    here = os.path.dirname(os.path.abspath(__file__))
    write_npz(os.path.join(here, "train.npz"), {"x": x[:TRAIN], "y": y[:TRAIN]})
    write_npz(os.path.join(here, "test.npz"), {"x": x[TRAIN:], "y": y[TRAIN:]})
    for name, labels in (("train", y[:TRAIN]), ("test", y[TRAIN:])):
        print(name, len(labels), "images; per digit", np.bincount(labels, minlength=10).tolist())


if __name__ == "__main__":
    main()
