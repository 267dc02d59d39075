"""Multiple-comparison control: Holm's step-down adjustment of a family of p-values."""

from __future__ import annotations

import math
from collections.abc import Sequence


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given.

    With the m defined (finite) p-values sorted ascending, p₍₁₎ ≤ … ≤ p₍ₘ₎, the adjusted value
    of the i-th is max over j ≤ i of min(1, (m − j + 1)·p₍ⱼ₎): rejecting where the adjusted
    p ≤ α controls the family-wise error rate at α. Undefined (nan) p-values stay nan and are
    not counted in m.
    """
    p = [float(v) for v in p_values]
    for v in p:
        if math.isfinite(v) and not 0.0 <= v <= 1.0:
            raise ValueError(f"p-values must lie in [0, 1], got {v!r}")
    defined = sorted((v, i) for i, v in enumerate(p) if math.isfinite(v))
    m = len(defined)
    out = [math.nan] * len(p)
    running = 0.0
    for rank, (v, i) in enumerate(defined):
        running = max(running, min(1.0, (m - rank) * v))
        out[i] = running
    return out


def family_size(p_values: Sequence[float]) -> int:
    """m: how many of ``p_values`` are defined, i.e. how many tests the family counts."""
    return sum(1 for v in p_values if math.isfinite(float(v)))
