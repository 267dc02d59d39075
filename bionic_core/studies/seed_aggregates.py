"""A configuration's metrics over its seeds' runs: mean, std, count and confidence interval
(what a sweep logs on each configuration run; see :mod:`bionic_core.studies.stats`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from bionic_core.studies.stats import summarize


def aggregate_metrics(per_seed: Sequence[Mapping[str, float]],
                      confidence: float = 0.95) -> dict[str, float]:
    """``<metric>_mean``, ``_std``, ``_n``, ``_ci_low``, ``_ci_high`` of every metric over the
    seeds' runs (std only with two or more seeds, the CI only where the values also vary;
    non-finite values are left out)."""
    names = sorted({name for metrics in per_seed for name in metrics})
    out: dict[str, float] = {}
    for name in names:
        values = [float(m[name]) for m in per_seed
                  if name in m and math.isfinite(float(m[name]))]
        if not values:
            continue
        s = summarize(values, confidence)
        out[f"{name}_mean"] = s.mean
        out[f"{name}_n"] = float(s.n)
        if s.n >= 2:
            out[f"{name}_std"] = s.std
        if math.isfinite(s.ci_low):  # undefined with one seed or no spread over seeds
            out[f"{name}_ci_low"] = s.ci_low
            out[f"{name}_ci_high"] = s.ci_high
    return out
