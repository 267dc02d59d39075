"""Degree-preserving rewiring of a mask (the curveball algorithm of Strona et al. 2014, with the
directed no-self-loop rule of Carstens et al. 2016 for blocks within a layer)."""

from __future__ import annotations

import numpy as np

TRADES_PER_ROW = 20  # curveball mixes in O(n log n) trades; 20 n is ample for n <= a few 1,000


def rewire_keeping_degrees(
    mask: np.ndarray, rng: np.random.Generator, *, intra: bool
) -> np.ndarray:
    """A random mask with every row sum (a unit's in-degree) and column sum (out-degree) of
    ``mask``. A trade picks two rows, pools the entries only one of them has and deals the pool
    back at random in the same numbers; within a layer (``intra``) the two entries that would
    become self-connections stay where they are, so the diagonal stays empty."""
    m = np.asarray(mask) != 0
    m = m.copy()
    n = m.shape[0]
    if n < 2:
        return m.astype(np.float32)
    pairs = rng.integers(0, n, size=(TRADES_PER_ROW * n, 2))
    for a, b in pairs:
        if a == b:
            continue
        only_a = m[a] & ~m[b]
        only_b = m[b] & ~m[a]
        if intra:
            only_a[b] = False  # b -> a would become b -> b
            only_b[a] = False
        keep_a = int(only_a.sum())
        pool = np.flatnonzero(only_a | only_b)
        if keep_a == 0 or keep_a == len(pool):
            continue
        dealt = rng.permutation(pool)
        m[a, pool] = False
        m[b, pool] = False
        m[a, dealt[:keep_a]] = True
        m[b, dealt[keep_a:]] = True
    return m.astype(np.float32)
