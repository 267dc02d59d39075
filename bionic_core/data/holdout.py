"""The validation holdout: a seeded, stratified fraction of the training images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bionic_core.data.fer2013 import CLASS_NAMES


@dataclass(frozen=True)
class Holdout:
    """How the validation split was held out of the training images (recorded with a run)."""

    fraction: float  # the config's val_fraction
    seed: int  # the config's val_seed
    of: str  # what it was held out of, e.g. "FER-2013 Training (/data/fer2013.csv)"

    def describe(self) -> str:
        return (f"seeded stratified {self.fraction * 100:g}% holdout of {self.of} "
                f"(seed {self.seed}; copies of an image stay on one side)")


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int,
                       groups: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of a seeded, per-class ``fraction`` of ``labels`` (deterministic).

    ``groups`` (e.g. image hashes) keeps every member of a group on the same side: the holdout
    draws whole groups, each counted under the label of its first image, so no validation image
    is a pixel copy of a training image. Without groups each image is its own group. Every class
    with at least 2 groups gives at least 1 and keeps at least 1.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        first, inverse = np.arange(len(labels)), np.arange(len(labels))
    else:
        _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")  # groups in order of their first image
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        first, inverse = first[order], rank[inverse.reshape(-1)]
    group_labels = labels[first]
    held = np.zeros(len(first), dtype=bool)
    for c in range(len(CLASS_NAMES)):
        idx = np.flatnonzero(group_labels == c)
        if len(idx) < 2:
            continue
        k = min(max(int(round(fraction * len(idx))), 1), len(idx) - 1)
        held[rng.permutation(idx)[:k]] = True
    return held[inverse]
