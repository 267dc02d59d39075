"""What ``bionic compare`` computes: the compared sweeps, one :class:`Row` per configuration
(its seed runs and their statistics) and the :class:`Comparison` that holds them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from bionic_core.studies.paired_images import ImageTest
from bionic_core.studies.power import POWER
from bionic_core.studies.stats import Difference, Summary


@dataclass(frozen=True)
class SweepInfo:
    run_id: str
    sweep_id: str
    name: str
    experiment: str
    experiment_id: str
    design: str
    anchor: str
    factors: tuple[str, ...]
    dropped: tuple[tuple[str, str], ...]
    start_time: int


@dataclass
class Row:
    """One configuration: its finished seed runs and their statistics."""

    name: str
    config_key: str
    sweep_id: str
    features: tuple[str, ...]
    removed: tuple[str, ...]
    added: tuple[str, ...]
    group: str
    planned_seeds: list[int]
    seeds: list[int] = field(default_factory=list)  # seeds with a finished run
    run_ids: list[str] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)  # metric → per seed
    datasets: set[tuple[str, str, bool]] = field(default_factory=set)  # name, fingerprint, demo
    provenance: set[tuple[str, str]] = field(default_factory=set)  # (feature, what its code is)
    n_parameters: float | None = None
    train_seconds: float | None = None  # mean over seeds
    summaries: dict[str, Summary] = field(default_factory=dict)
    delta: Difference | None = None  # of the compared metric, versus the reference
    p_holm: float = math.nan  # delta's p, Holm-adjusted over its sweep's family
    mde: float = math.nan  # minimum detectable effect at 80 % power, α
    mde_holm: float = math.nan  # ... at α / m (Holm's first step: the Bonferroni bound)
    bootstrap: tuple[float, float] | None = None  # percentile bootstrap CI of delta (asked)
    images: ImageTest | None = None  # McNemar over seeds on the same images (asked)
    images_p_holm: float = math.nan
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)  # class → measure
    # A null ladder's single draw of a control that has a pooled row: its Δ is shown, but the
    # control is tested (and Holm-adjusted) once, through the pooled row.
    descriptive: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "configuration": self.name, "features": list(self.features),
            "removed": list(self.removed), "added": list(self.added), "group": self.group,
            "config_key": self.config_key, "sweep_id": self.sweep_id,
            "planned_seeds": self.planned_seeds, "seeds": self.seeds, "run_ids": self.run_ids,
            "values": self.values,
            **{m: _summary_dict(s) for m, s in self.summaries.items()},
            "delta": None if self.delta is None else clean(vars(self.delta)),
            "p_holm": self.p_holm, "mde": self.mde, "mde_holm": self.mde_holm,
            "bootstrap_ci": None if self.bootstrap is None else list(self.bootstrap),
            "images": None if self.images is None else {**vars(self.images),
                                                        "p_holm": self.images_p_holm},
            "per_class": {c: {m: vars(v) for m, v in by.items()}
                          for c, by in self.per_class.items()},
            "n_parameters": self.n_parameters, "train_seconds": self.train_seconds,
            "descriptive": self.descriptive,
            "datasets": [{"name": n, "fingerprint": f, "is_demo": d}
                         for n, f, d in sorted(self.datasets)],
        }


@dataclass
class Comparison:
    sweeps: list[SweepInfo]
    split: str  # "test" or "val": where the compared metrics come from
    metric: str  # the metric of Δ and of the factorial analysis
    reference: str | None
    rows: list[Row]
    dataset: dict[str, Any]
    factorial: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    families: list[dict[str, Any]] = field(default_factory=list)  # what Holm adjusted over
    confidence: float = 0.95
    ci_method: str = "t"  # "bootstrap": rows also carry a bootstrap CI

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence

    def sweep_label(self, sweep_id: str) -> str:
        """"name (id)" of one of the compared sweeps."""
        name = next((s.name for s in self.sweeps if s.sweep_id == sweep_id), "")
        return f"{name} ({sweep_id})" if name else sweep_id

    def as_dict(self) -> dict[str, Any]:
        return clean({
            "sweeps": [{"sweep_id": s.sweep_id, "name": s.name, "run_id": s.run_id,
                        "experiment": s.experiment, "design": s.design, "anchor": s.anchor,
                        "factors": list(s.factors),
                        "dropped": [{"configuration": n, "reason": r} for n, r in s.dropped]}
                       for s in self.sweeps],
            "split": self.split, "metric": self.metric, "reference": self.reference,
            "dataset": self.dataset, "rows": [r.as_dict() for r in self.rows],
            "factorial": self.factorial, "families": self.families,
            "confidence": self.confidence, "ci_method": self.ci_method,
            "power": POWER, "notes": self.notes, "warnings": self.warnings,
        })


def clean(obj: Any) -> Any:
    """JSON-safe: nan/inf become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


def _summary_dict(s: Summary) -> dict[str, Any]:
    return {"mean": s.mean, "std": s.std, "n": s.n, "ci_low": s.ci_low, "ci_high": s.ci_high}
