"""Per-class recall and precision of a configuration over its seeds, undefined values left out.

A class a run never predicts has no precision (0 of 0 predictions were right): that seed is
left out of the mean instead of counting as precision 0, and the summary says on how many of
the seeds the value was defined.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bionic_core.data import CLASS_NAMES

MEASURES = ("recall", "precision")


@dataclass(frozen=True)
class ClassValue:
    """Mean and sample std over the seeds where the value is defined (``n`` of ``seeds``)."""

    mean: float
    std: float
    n: int
    seeds: int


def class_value(values: Sequence[float]) -> ClassValue:
    """The summary of one class's per-seed values (nan where undefined on a seed)."""
    defined = [float(v) for v in values if math.isfinite(float(v))]
    n = len(defined)
    mean = sum(defined) / n if n else math.nan
    std = (math.sqrt(sum((v - mean) ** 2 for v in defined) / (n - 1)) if n >= 2 else math.nan)
    return ClassValue(mean, std, n, len(values))


def class_names_in(values: Mapping[str, Sequence[float]], split: str) -> list[str]:
    """The classes with a per-class value on ``split`` (``<split>_recall_<class>``), in the
    dataset's class order, unknown names after."""
    found = {key.split("_", 2)[2] for key in values
             for measure in MEASURES if key.startswith(f"{split}_{measure}_")}
    return [c for c in CLASS_NAMES if c in found] + sorted(found - set(CLASS_NAMES))


def per_class(values: Mapping[str, Sequence[float]], split: str
              ) -> dict[str, dict[str, ClassValue]]:
    """class → measure → summary, from per-seed values named ``<split>_<measure>_<class>``; a
    class with no value of a measure on any seed has that measure's mean nan and n = 0."""
    seeds = max((len(v) for v in values.values()), default=0)
    return {c: {m: class_value(values.get(f"{split}_{m}_{c}", [math.nan] * seeds))
                for m in MEASURES}
            for c in class_names_in(values, split)}
