"""FER-2013's known flaws, measured on a loaded dataset: exact duplicate images within a part
and across parts (by content hash), and blank images (every pixel equal)."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from bionic_core.data.dataset import SPLIT_ORDER, TRAIN, VAL, Dataset
from bionic_core.data.image_hashes import HASH_NAME, blank_images

TRAINING = "training"  # every training image: train plus the validation holdout drawn from it


def quality_report(dataset: Dataset) -> dict[str, Any]:
    """JSON-ready counts of exact duplicates and blank images.

    ``within``: per part (``training`` = train + its validation holdout, a validation part that
    came with the data, each test split) the images, distinct images, extra copies (images
    beyond the first of each set of identical ones), sets of identical images, and sets whose
    copies carry different labels. ``across``: for each pair of parts (and train ↔ val) how many
    images of each have a pixel copy in the other. ``blank``: per split, images whose pixels are
    all equal. ``deduped``: training images dropped as copies of a test image (None: dedupe off).
    """
    parts = _parts(dataset)
    pairs = list(combinations(parts, 2))
    if dataset.holdout is not None:
        pairs.insert(0, (TRAIN, VAL))
    hashes = {name: _hashes(dataset, name) for name in {*parts, *(n for p in pairs for n in p)}}
    return {
        "hash": HASH_NAME,
        "within": {name: _within(hashes[name], _labels(dataset, name)) for name in parts},
        "across": [_across(a, hashes[a], b, hashes[b]) for a, b in pairs],
        "blank": {name: int(blank_images(s.images).sum())
                  for name, s in _ordered(dataset)},
        "deduped": dataset.deduped,
    }


def _ordered(dataset: Dataset) -> list[tuple[str, Any]]:
    return [(name, dataset.splits[name]) for name in SPLIT_ORDER if name in dataset.splits]


def _parts(dataset: Dataset) -> list[str]:
    """The parts whose duplicates are counted: all training images, then the other splits."""
    others = [name for name, _ in _ordered(dataset) if name != TRAIN]
    if dataset.holdout is not None:
        return [TRAINING, *(n for n in others if n != VAL)]
    return [TRAIN, *others]


def _hashes(dataset: Dataset, name: str) -> np.ndarray:
    if name == TRAINING:
        return np.concatenate([dataset.splits[TRAIN].hashes(), dataset.splits[VAL].hashes()])
    return dataset.splits[name].hashes()


def _labels(dataset: Dataset, name: str) -> np.ndarray:
    if name == TRAINING:
        return np.concatenate([dataset.splits[TRAIN].labels, dataset.splits[VAL].labels])
    return dataset.splits[name].labels


def _within(hashes: np.ndarray, labels: np.ndarray) -> dict[str, int]:
    _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    low = np.full(len(counts), np.iinfo(np.int64).max)
    high = np.full(len(counts), np.iinfo(np.int64).min)
    np.minimum.at(low, inverse, labels)
    np.maximum.at(high, inverse, labels)
    copied = counts > 1
    return {"images": int(len(hashes)), "distinct": int(len(counts)),
            "extra_copies": int(len(hashes) - len(counts)), "groups": int(copied.sum()),
            "conflicting_labels": int((copied & (low != high)).sum())}


def _across(a: str, hashes_a: np.ndarray, b: str, hashes_b: np.ndarray) -> dict[str, Any]:
    return {"a": a, "b": b, "a_in_b": int(np.isin(hashes_a, hashes_b).sum()),
            "b_in_a": int(np.isin(hashes_b, hashes_a).sum())}
