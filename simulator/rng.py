"""One seed tree: every random stream in a run is derived from the scenario seed by name."""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def _name_key(name: str) -> tuple[int, ...]:
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


class SeedTree:
    """A node of the seed tree.

    Children are addressed by name, so the stream a component gets does not depend on the
    order in which other components ask for theirs. ``SeedTree(7).child("channel").numpy()``
    is the same generator in every run with seed 7.

    Parameters
    ----------
    seed : int
        Root entropy (the scenario seed).
    path : tuple of str
        Names from the root to this node; the root has ``()``.
    """

    def __init__(self, seed: int, path: tuple[str, ...] = ()):
        if int(seed) < 0:
            raise ValueError("seed must be a non-negative integer")
        self.seed = int(seed)
        self.path = tuple(path)

    def child(self, *names: str | int) -> "SeedTree":
        """The sub-tree at ``names`` (each converted with ``str``)."""
        return SeedTree(self.seed, self.path + tuple(str(n) for n in names))

    def sequence(self) -> np.random.SeedSequence:
        key: tuple[int, ...] = ()
        for name in self.path:
            key += _name_key(name)
        return np.random.SeedSequence(entropy=self.seed, spawn_key=key)

    def numpy(self) -> np.random.Generator:
        """A fresh NumPy generator (PCG64) for this node."""
        return np.random.Generator(np.random.PCG64(self.sequence()))

    def integer(self) -> int:
        """A 63-bit integer seed derived from this node (for libraries that want an int)."""
        return int(self.sequence().generate_state(1, dtype=np.uint64)[0]) & ((1 << 63) - 1)

    def torch(self, device: str | torch.device = "cpu") -> torch.Generator:
        """A fresh torch generator on ``device`` for this node."""
        gen = torch.Generator(device=device)
        gen.manual_seed(self.integer())
        return gen

    def __repr__(self) -> str:
        return f"SeedTree({self.seed}, {'/'.join(self.path) or '<root>'})"
