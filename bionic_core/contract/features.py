"""Feature metadata: what a plugin declares about itself (name, group, parameters, relations)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Group = Literal["structural", "functional"]


@dataclass(frozen=True)
class Param:
    """One typed parameter of a feature, with its default and its tuning range.

    ``low``/``high`` (numbers) or ``choices`` (anything) give the search space the tuner may
    explore; ``log`` samples a numeric range on a log scale. A parameter with neither is fixed
    during tuning unless ``experiments.toml`` gives it a range.
    """

    name: str
    type: type  # int, float, bool or str
    default: Any
    help: str = ""
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None

    def coerce(self, value: Any, where: str) -> Any:
        """Return ``value`` as this parameter's type, or raise BionicError naming ``where``."""
        from bionic_core.contract.errors import BionicError

        t = self.type
        ok = (
            isinstance(value, bool) if t is bool
            else isinstance(value, int) and not isinstance(value, bool) if t is int
            else isinstance(value, (int, float)) and not isinstance(value, bool) if t is float
            else isinstance(value, t)
        )
        if not ok:
            raise BionicError(
                f"{where}: expected {t.__name__}, got {type(value).__name__} {value!r}"
            )
        value = t(value)
        if self.choices is not None and value not in self.choices:
            raise BionicError(f"{where}: {value!r} is not one of {list(self.choices)}")
        return value

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.type.__name__,
                             "default": self.default, "help": self.help}
        if self.low is not None or self.high is not None:
            d["range"] = [self.low, self.high]
            d["log"] = self.log
        if self.choices is not None:
            d["choices"] = list(self.choices)
        return d


@dataclass(frozen=True)
class Feature:
    """What one feature plugin is: returned by its ``bionic_feature`` hook implementation."""

    name: str
    group: Group
    help: str
    params: tuple[Param, ...] = ()
    requires: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    # Where two features act in the same phase (e.g. both post-process a layer's activity), the
    # core applies them in ascending ``order`` (ties by name): explicit, not pluggy's LIFO.
    order: int = 100
    # What the feature acts on, in a few short names (shown by `bionic plugins list`): parts of
    # the model ("hidden.weight", "hidden.intra_weight", "hidden activity", "frontend", ...) or
    # of the run ("training batches", "loss", "optimizer", ...); see docs/writing_features.md.
    touches: tuple[str, ...] = ()
    source: str = "builtin"  # "builtin" or "<distribution> <version>"
    # What the feature's code is, for run identity: "bionic <version>" for a built-in,
    # "<distribution> <version>" for an installed plugin, plus "+src.<hash>" of the module's
    # source for an editable or unversioned one. Set by the catalogue; part of the run key.
    provenance: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "group": self.group,
            "help": self.help,
            "source": self.source,
            "provenance": self.provenance,
            "requires": list(self.requires),
            "conflicts": list(self.conflicts),
            "order": self.order,
            "touches": list(self.touches),
            "parameters": [p.as_dict() for p in self.params],
        }


def validate_feature_set(enabled: Iterable[str], catalogue: Mapping[str, Feature]) -> list[str]:
    """Problems with the feature set ``enabled`` (empty list = valid), in a stable order.

    Unknown features, "X requires Y" where Y is not enabled, and "X conflicts with Y" (each
    conflicting pair once, whichever side declares it).
    """
    on = set(enabled)
    problems = [f"unknown feature {name!r}" for name in sorted(on - set(catalogue))]
    seen: set[frozenset[str]] = set()
    for name in sorted(on & set(catalogue)):
        feat = catalogue[name]
        problems.extend(f"{name} requires {req}" for req in feat.requires if req not in on)
        for other in feat.conflicts:
            pair = frozenset((name, other))
            if other in on and other != name and pair not in seen:
                seen.add(pair)
                problems.append(f"{name} conflicts with {other}")
    return problems
