"""A per-image paired test of two models evaluated on the same images: exact McNemar.

Only the discordant images carry information: b = images this model classifies correctly and
the reference does not, c = the reverse. Under "no difference" each discordant image is
equally likely to fall either way, so b ~ Binomial(b + c, ½) and the exact two-sided p is
min(1, 2·P(X ≤ min(b, c))). Over several seeds the pairs (this model's run and the
reference's run of the same seed) are strata; their discordant counts are summed and the same
exact test is applied to the sums — the Mantel–Haenszel test for matched pairs, which for 1:1
pairs reduces to McNemar on the pooled counts. It tests these trained models on these images:
the seed-to-seed variation of training is what the seed-level t-test measures, not this one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st


def exact_mcnemar(b: int, c: int) -> float:
    """Two-sided exact McNemar p for discordant counts ``b`` and ``c`` (1.0 when b = c = 0:
    two models that agree on every image show no difference)."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be non-negative, got {b}, {c}")
    n = b + c
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * _st.binom.cdf(min(b, c), n, 0.5)))


@dataclass(frozen=True)
class ImageTest:
    """McNemar over seeds: Δ accuracy over every paired image, the summed discordant counts
    and the exact p."""

    delta: float          # (only_this − only_reference) / images: Δ accuracy per image
    only_this: int        # b: right here, wrong in the reference (summed over seeds)
    only_reference: int   # c: wrong here, right in the reference
    images: int           # paired images, summed over seeds
    seeds: int            # seed pairs pooled
    p_value: float


def pooled_mcnemar(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> ImageTest:
    """The exact McNemar test on discordant counts summed over seed ``pairs`` — each a pair of
    boolean arrays (this model correct, the reference correct) over the same images."""
    b = c = images = 0
    for mine, theirs in pairs:
        mine, theirs = np.asarray(mine, dtype=bool), np.asarray(theirs, dtype=bool)
        if mine.shape != theirs.shape or mine.ndim != 1:
            raise ValueError(f"paired predictions differ in shape: {mine.shape} vs "
                             f"{theirs.shape}")
        b += int(np.count_nonzero(mine & ~theirs))
        c += int(np.count_nonzero(~mine & theirs))
        images += int(mine.size)
    if images == 0:
        return ImageTest(math.nan, 0, 0, 0, len(pairs), math.nan)
    return ImageTest((b - c) / images, b, c, images, len(pairs), exact_mcnemar(b, c))
