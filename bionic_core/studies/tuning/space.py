"""The search space: the dimensions a study explores and the values fixed for every trial.

Its candidates are the core's own hyper-parameters (:data:`CORE_SPACE`) and the ``Param``
declarations (low/high/log or choices) of every enabled feature, named ``FEATURE.PARAM``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bionic_core.config import RunConfig
from bionic_core.contract.features import Param
from bionic_core.host import Catalogue

# The core's hyper-parameters and the ranges explored unless the experiment narrows them.
CORE_SPACE: tuple[Param, ...] = (
    Param("lr", float, 1e-3, "learning rate of the default Adam optimizer",
          low=1e-4, high=1e-2, log=True),
    Param("batch_size", int, 32, "training batch size", choices=(16, 32, 64, 128)),
    Param("activation", str, "relu", "hidden-layer activation",
          choices=("relu", "gelu", "tanh")),
)


@dataclass(frozen=True)
class SearchSpace:
    """The dimensions a study explores (name → Param with the effective range) and the values
    fixed for every trial. Names: ``lr``, ``batch_size``, ``activation``, ``FEATURE.PARAM``."""

    dimensions: dict[str, Param]
    fixed: dict[str, Any] = field(default_factory=dict)

    def distributions(self) -> dict[str, Any]:
        return {name: distribution(p) for name, p in self.dimensions.items()}

    def suggest(self, trial: Any) -> dict[str, Any]:
        values = {}
        for name, p in self.dimensions.items():
            if p.choices is not None:
                values[name] = trial.suggest_categorical(name, list(p.choices))
            elif p.type is int:
                values[name] = trial.suggest_int(name, int(p.low), int(p.high), log=p.log)
            else:
                values[name] = trial.suggest_float(name, float(p.low), float(p.high), log=p.log)
        return values

    def apply(self, config: RunConfig, values: Mapping[str, Any]) -> RunConfig:
        """``config`` with the fixed values and then ``values`` set."""
        changes: dict[str, Any] = {}
        params = {k: dict(v) for k, v in config.params.items()}
        for name, value in {**self.fixed, **values}.items():
            if "." in name:
                feature, pname = name.split(".", 1)
                params.setdefault(feature, {})[pname] = value
            else:
                changes[name] = value
        return config.replace(params=params, **changes)

    def defaults(self, config: RunConfig, catalogue: Catalogue) -> dict[str, Any]:
        """The values ``config`` itself has for each dimension that lie inside the space."""
        out = {}
        for name, p in self.dimensions.items():
            value = current_value(config, catalogue, name)
            inside = (value in p.choices if p.choices is not None
                      else isinstance(value, (int, float)) and p.low <= value <= p.high)
            if inside:
                out[name] = value
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"dimensions": {n: p.as_dict() for n, p in self.dimensions.items()},
                "fixed": self.fixed}


def distribution(p: Param) -> Any:
    from optuna import distributions as d

    if p.choices is not None:
        return d.CategoricalDistribution(list(p.choices))
    if p.type is int:
        return d.IntDistribution(int(p.low), int(p.high), log=p.log)
    return d.FloatDistribution(float(p.low), float(p.high), log=p.log)


def current_value(config: RunConfig, catalogue: Catalogue, name: str) -> Any:
    if "." in name:
        feature, pname = name.split(".", 1)
        return config.feature_params(feature, catalogue[feature])[pname]
    return getattr(config, name)


def candidates(config: RunConfig, catalogue: Catalogue) -> dict[str, Param]:
    """Every parameter tuning may touch: the core's and each enabled feature's."""
    out = {p.name: p for p in CORE_SPACE}
    for feature in sorted(config.features):
        for p in catalogue[feature].params:
            out[f"{feature}.{p.name}"] = p
    return out
