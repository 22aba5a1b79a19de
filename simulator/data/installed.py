"""Files shipped inside installed Python packages (datasets, model weights), found without importing them."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_folders(name: str) -> list[Path]:
    """Folders of the installed package ``name`` (its ``__init__`` does not run); empty when it is not installed."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    return [Path(p) for p in (spec.submodule_search_locations or [])] if spec is not None else []


__all__ = ["package_folders"]
