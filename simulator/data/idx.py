"""Reader for the IDX format (MNIST family), gzip or raw, with checks that name what is wrong."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from simulator.errors import DataError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
           0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: Path, dataset: str) -> np.ndarray:
    """Read one IDX file.

    Parameters
    ----------
    path : Path
        ``*.gz`` (gzip-compressed) or raw IDX file.
    dataset : str
        Dataset name, used in error messages.

    Returns
    -------
    numpy.ndarray
        Array of the shape and dtype the header declares.

    Raises
    ------
    DataError
        Bad magic number, truncated or corrupt gzip stream, or a size that does not match the header.
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"dataset {dataset!r}: cannot read {path}: {exc} (corrupt or truncated file; "
                        "reinstall the dataset)", path=str(path)) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataError(f"dataset {dataset!r}: {path} is not an IDX file (bad magic "
                        f"{raw[:4].hex() or 'empty'}); reinstall the dataset", path=str(path))
    dtype, ndim = np.dtype(_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"dataset {dataset!r}: {path} is truncated (header)", path=str(path))
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"dataset {dataset!r}: {path} holds {len(raw) - header} data bytes, header "
                        f"declares {expected} (truncated or corrupt file)", path=str(path))
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))
