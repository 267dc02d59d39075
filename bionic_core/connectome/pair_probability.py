"""Connection probability of every (post, pre) cell pair: the table's value for the two cells'
types or classes, optionally redistributed by their lateral distance (see :mod:`geometry`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bionic_core.connectome.geometry import lateral_profile, sigma_for
from bionic_core.connectome.tables import CellKey


class ConnectionTable(Protocol):
    """What masks and inhibition need of a table (class tables and the measured type table)."""

    name: str

    def pair_probability(self, pre: CellKey, post: CellKey) -> float | None: ...

    def record(self) -> dict: ...


@dataclass(frozen=True)
class Cells:
    """Cells as a table sees them, with their lateral positions (um) when known."""

    keys: tuple[CellKey, ...]
    positions: np.ndarray | None  # (n, 2) or None

    def __len__(self) -> int:
        return len(self.keys)


def probability_matrix(
    table: ConnectionTable, post: Cells, pre: Cells, *, distance: bool, same_cells: bool
) -> np.ndarray:
    """P[i, j] = probability that pre cell j connects onto post cell i, shape (n_post, n_pre).

    NaN where the table has no value for a cell (the caller decides: error or skip). With
    ``distance`` (and positions on both sides) each block of one (pre key, post key) is scaled
    by ``f(d_ij) / mean f`` over the block, so its expected density stays the table's; values
    are capped at 1. ``same_cells``: post and pre are the same cells, so the diagonal (autapses)
    is excluded from the means and set to 0.
    """
    post_unique, post_index = _unique(post.keys)
    pre_unique, pre_index = _unique(pre.keys)
    small = np.array([[_value(table, b, a) for b in pre_unique] for a in post_unique],
                     dtype=np.float64).reshape(len(post_unique), len(pre_unique))
    matrix = small[np.ix_(post_index, pre_index)]
    if distance and post.positions is not None and pre.positions is not None:
        matrix = matrix * _normalised_profile(post, pre, post_index, pre_index, same_cells)
        matrix = np.minimum(matrix, 1.0)
    if same_cells:
        np.fill_diagonal(matrix, 0.0)
    return matrix


def _value(table: ConnectionTable, pre: CellKey, post: CellKey) -> float:
    p = table.pair_probability(pre, post)
    return np.nan if p is None else p


def _unique(keys: Sequence[CellKey]) -> tuple[list[CellKey], np.ndarray]:
    unique = sorted(set(keys))
    where = {k: i for i, k in enumerate(unique)}
    return unique, np.array([where[k] for k in keys], dtype=np.int64)


def _normalised_profile(post: Cells, pre: Cells, post_index: np.ndarray, pre_index: np.ndarray,
                        same_cells: bool) -> np.ndarray:
    profile = np.empty((len(post), len(pre)))
    post_ei = np.array([k.ei for k in post.keys])
    pre_ei = np.array([k.ei for k in pre.keys])
    for a in sorted(set(post_ei)):
        for b in sorted(set(pre_ei)):
            rows, cols = np.flatnonzero(post_ei == a), np.flatnonzero(pre_ei == b)
            profile[np.ix_(rows, cols)] = lateral_profile(
                post.positions[rows], pre.positions[cols], sigma_for(b, a))
    weight = np.ones_like(profile)
    if same_cells:
        np.fill_diagonal(weight, 0.0)
    n_pre_groups = int(pre_index.max()) + 1
    group = post_index[:, None] * n_pre_groups + pre_index[None, :]
    size = (int(post_index.max()) + 1) * n_pre_groups
    sums = np.bincount(group.ravel(), weights=(profile * weight).ravel(), minlength=size)
    counts = np.bincount(group.ravel(), weights=weight.ravel(), minlength=size)
    means = np.divide(sums, counts, out=np.ones(size), where=sums > 0)
    return profile / means[group]
