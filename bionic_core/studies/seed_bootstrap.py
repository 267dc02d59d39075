"""A bootstrap confidence interval of Δ over seeds (percentile method).

Paired seeds: resample the per-seed differences with replacement, B times, and take the
α/2 and 1 − α/2 quantiles of the resampled means. Unpaired: resample each side on its own
and take the quantiles of the differences of the means. With n seeds there are only
C(2n − 1, n) distinct resamples (10 for n = 3), so the interval is coarse and, for small n,
narrower than the t-interval: an option beside the t-test, not a substitute for seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

RESAMPLES = 10_000


def _quantiles(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(stats, [tail, 1.0 - tail])
    return float(lo), float(hi)


def bootstrap_ci(values: Sequence[float], reference: Sequence[float] | None = None, *,
                 confidence: float = 0.95, resamples: int = RESAMPLES,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of mean(``values``) (the paired differences) or, with a
    ``reference``, of mean(values) − mean(reference) resampled independently. (nan, nan)
    with fewer than two values on a side or no spread at all."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    x = np.asarray(values, dtype=float)
    y = None if reference is None else np.asarray(reference, dtype=float)
    sides = [x] if y is None else [x, y]
    if any(s.size < 2 for s in sides) or all(np.ptp(s) == 0.0 for s in sides):
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = [s[rng.integers(0, s.size, size=(resamples, s.size))].mean(axis=1) for s in sides]
    return _quantiles(means[0] if y is None else means[0] - means[1], confidence)
