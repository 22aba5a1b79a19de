"""Dataset registry: named image-classification datasets loaded from local files only."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from simulator.data.idx import read_idx
from simulator.errors import DataError


@dataclass(frozen=True)
class Dataset:
    """An image-classification dataset held in memory.

    Attributes
    ----------
    name : str
    x_train, x_test : numpy.ndarray
        float32, shape (n, 1, H, W), pixel values scaled to [0, 1].
    y_train, y_test : numpy.ndarray
        int64 class labels, shape (n,).
    n_classes : int
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    fingerprint: str = ""

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]


FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
_FMNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def relcomm_home() -> Path:
    """Cache directory: ``$RELCOMM_HOME`` or ``~/.cache/relcomm``."""
    return Path(os.environ.get("RELCOMM_HOME") or Path.home() / ".cache" / "relcomm")


def fashion_mnist_search_path() -> list[Path]:
    """Folders searched for the Fashion-MNIST IDX files, in order (DESIGN §5)."""
    dirs = []
    if os.environ.get("RELCOMM_DATA"):
        dirs += [Path(os.environ["RELCOMM_DATA"]), Path(os.environ["RELCOMM_DATA"]) / "fashion-mnist"]
    dirs += [FASHION_MNIST_DIR, relcomm_home() / "data" / "fashion-mnist"]
    return dirs


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def load_fashion_mnist() -> Dataset:
    """Fashion-MNIST (60,000 train / 10,000 test, 28×28 grey, 10 classes) from local IDX files."""
    search = fashion_mnist_search_path()
    for folder in search:
        files = {key: _find(folder, stem) for key, stem in _FMNIST_FILES.items()}
        if all(files.values()):
            break
    else:
        where = ", ".join(str(p) for p in search)
        raise DataError(f"dataset 'fashion-mnist' not found (looked in {where}); install it with "
                        "'apt-get install dataset-fashion-mnist' or set RELCOMM_DATA to a folder "
                        "holding the four IDX .gz files", path="data.dataset")
    arrays = {key: read_idx(path, "fashion-mnist") for key, path in files.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"dataset 'fashion-mnist': {split} images {x.shape} and labels {y.shape} "
                            "do not match; reinstall the dataset", path="data.dataset")
    return Dataset(
        name="fashion-mnist",
        x_train=(arrays["x_train"][:, None].astype(np.float32) / 255.0),
        y_train=arrays["y_train"].astype(np.int64),
        x_test=(arrays["x_test"][:, None].astype(np.float32) / 255.0),
        y_test=arrays["y_test"].astype(np.int64),
        n_classes=10,
    )


def load_digits() -> Dataset:
    """sklearn's bundled 8×8 digits (1,797 images); a fixed 80/20 train/test cut for tiny tests."""
    from sklearn.datasets import load_digits as _sk_digits

    bunch = _sk_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None]
    y = bunch.target.astype(np.int64)
    n_test = len(x) // 5
    return Dataset("digits", x[n_test:], y[n_test:], x[:n_test], y[:n_test], 10)


REGISTRY: dict[str, Callable[[], Dataset]] = {
    "fashion-mnist": load_fashion_mnist,
    "digits": load_digits,
}


def load_dataset(name: str) -> Dataset:
    """Load a registered dataset by name (``fashion-mnist``, ``digits``)."""
    if name not in REGISTRY:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted(REGISTRY))}",
                        path="data.dataset")
    ds = REGISTRY[name]()
    digest = hashlib.sha256()
    for arr in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        digest.update(np.ascontiguousarray(arr).tobytes())
    return dataclasses.replace(ds, fingerprint=digest.hexdigest()[:16])
