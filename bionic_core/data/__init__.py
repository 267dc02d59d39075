"""Datasets: FER-2013 (CSV, folder layout, npz) and the built-in demonstration set."""

from bionic_core.data.dataset import (
    BUILTIN_DATASETS,
    Dataset,
    Split,
    describe,
    load_dataset,
    stratified_holdout,
)
from bionic_core.data.fer2013 import CLASS_NAMES

__all__ = [
    "BUILTIN_DATASETS",
    "CLASS_NAMES",
    "Dataset",
    "Split",
    "describe",
    "load_dataset",
    "stratified_holdout",
]
