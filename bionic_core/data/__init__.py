"""Datasets: FER-2013 (CSV, folder layout, npz) and the built-in demonstration set."""

from bionic_core.data.dataset import (
    BUILTIN_DATASETS,
    SPLIT_ORDER,
    TEST_SPLITS,
    Dataset,
    Split,
    describe,
    load_dataset,
    read_parts,
    read_whole,
    split_role,
)
from bionic_core.data.fer2013 import CLASS_NAMES
from bionic_core.data.holdout import Holdout, stratified_holdout
from bionic_core.data.image_hashes import blank_images, image_hashes
from bionic_core.data.quality import quality_report

__all__ = [
    "BUILTIN_DATASETS",
    "CLASS_NAMES",
    "SPLIT_ORDER",
    "TEST_SPLITS",
    "Dataset",
    "Holdout",
    "Split",
    "blank_images",
    "describe",
    "image_hashes",
    "load_dataset",
    "quality_report",
    "read_parts",
    "read_whole",
    "split_role",
    "stratified_holdout",
]
