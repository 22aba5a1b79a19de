"""Deterministic train/test cut of a labelled text corpus: duplicates out, then a per-class hash order."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TextSplit:
    """A corpus cut into train and test, with what was dropped on the way.

    Attributes
    ----------
    x_train, x_test : numpy.ndarray
        dtype object, shape (n,): one Python ``str`` per sample, in hash order (so any prefix
        is a class-mixed sample).
    y_train, y_test : numpy.ndarray
        int64 labels, shape (n,).
    n_duplicates : int
        Samples dropped because an earlier sample had the same text (under :func:`text_key`)
        and the same label.
    n_conflicting : int
        Samples dropped because their text occurs with more than one label (every copy goes).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_duplicates: int
    n_conflicting: int


def text_key(text: str) -> str:
    """The form under which two texts count as the same: whitespace runs collapsed, case folded.

    >>> text_key("  A  heart-wrenching\\n documentary ") == text_key("a heart-wrenching documentary")
    True
    """
    return " ".join(text.split()).casefold()


def _order(salt: str, key: str) -> bytes:
    return hashlib.sha256(f"{salt}\0{key}".encode("utf-8")).digest()


def split_texts(salt: str, texts: list[str], labels: list[int], test_fraction: float = 0.2) -> TextSplit:
    """Drop duplicate texts, then cut each class into train and test by a stable hash of its texts.

    Within each class the samples are ranked by ``sha256(salt + "/test\\0" + text_key(text))`` and
    the first ``round(test_fraction · n_class)`` go to test (at least one when the class has two or
    more). Each split is then ordered by a second hash, ``sha256(salt + "\\0" + text_key(text))``,
    independent of the first, so that any prefix of a split is a class-mixed sample with about
    the class shares of the whole (ranking by the selecting hash would put the smallest classes
    first). The cut depends only on the texts themselves, not on the order of the source file,
    on NumPy's generators or on a seed: a dataset's split is part of its identity, like
    Fashion-MNIST's official one. Because duplicates are removed first, no text (under
    :func:`text_key`) is in both splits.

    Parameters
    ----------
    salt : str
        Dataset name; keeps the orders of different corpora unrelated.
    texts : list of str
        One text per sample, in source order (the first copy of a duplicate is kept).
    labels : list of int
        Class index per sample.
    test_fraction : float
        In (0, 1): share of each class that goes to test.

    Returns
    -------
    TextSplit

    Examples
    --------
    >>> s = split_texts("demo", ["a", "b", "c", "d", "e", "A", "x"], [0, 0, 0, 0, 0, 0, 1])
    >>> len(s.x_train), len(s.x_test), s.n_duplicates, s.n_conflicting
    (5, 1, 1, 0)
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError("test_fraction must be in (0, 1)")
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    keys = [text_key(t) for t in texts]
    labels_of: dict[str, set[int]] = {}
    for key, label in zip(keys, labels):
        labels_of.setdefault(key, set()).add(int(label))
    seen: set[str] = set()
    kept: list[tuple[bytes, bytes, str, int]] = []
    n_duplicates = n_conflicting = 0
    for text, key, label in zip(texts, keys, labels):
        if len(labels_of[key]) > 1:
            n_conflicting += 1
        elif key in seen:
            n_duplicates += 1
        else:
            seen.add(key)
            kept.append((_order(salt + "/test", key), _order(salt, key), text, int(label)))
    kept.sort()
    by_class: dict[int, list[tuple[bytes, bytes, str, int]]] = {}
    for item in kept:
        by_class.setdefault(item[3], []).append(item)
    train: list[tuple[bytes, bytes, str, int]] = []
    test: list[tuple[bytes, bytes, str, int]] = []
    for items in by_class.values():
        n_test = int(round(test_fraction * len(items)))
        if len(items) >= 2:
            n_test = min(max(n_test, 1), len(items) - 1)
        test += items[:n_test]
        train += items[n_test:]

    def arrays(items: list[tuple[bytes, bytes, str, int]]) -> tuple[np.ndarray, np.ndarray]:
        items = sorted(items, key=lambda item: item[1])
        x = np.empty(len(items), dtype=object)
        x[:] = [text for _, _, text, _ in items]
        return x, np.array([label for *_, label in items], dtype=np.int64)

    (x_train, y_train), (x_test, y_test) = arrays(train), arrays(test)
    return TextSplit(x_train, y_train, x_test, y_test, n_duplicates, n_conflicting)
