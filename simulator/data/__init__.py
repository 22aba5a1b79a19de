"""Data layer: dataset registry (images and texts), IDX reader, text corpora and deterministic splits."""

from simulator.data.datasets import Dataset, load_dataset, relcomm_home
from simulator.data.splits import Splits, make_splits

__all__ = ["Dataset", "Splits", "load_dataset", "make_splits", "relcomm_home"]
