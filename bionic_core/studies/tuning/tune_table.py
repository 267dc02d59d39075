"""Reading an experiment's ``[experiments.X.tune]`` table: its top-level settings (trials,
epochs, sampler, pruner, metric) and the search space it narrows (``ranges``, ``choices``),
restricts (``search``) or fixes (``fixed``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bionic_core.config import RunConfig
from bionic_core.contract.errors import BionicError
from bionic_core.contract.features import Param
from bionic_core.host import Catalogue
from bionic_core.studies.tuning.space import SearchSpace, candidates
from bionic_core.studies.tuning.study import METRICS, PRUNERS, SAMPLERS

TUNE_KEYS = ("search", "fixed", "ranges", "choices", "trials", "epochs", "sampler", "pruner",
             "metric")
SECTIONS = ("fixed", "ranges", "choices")


def tune_options(config: RunConfig, where: str) -> dict[str, Any]:
    """The ``tune`` table's top-level settings (trials, epochs each trial trains, sampler,
    pruner, metric), checked."""
    table = config.tune
    for key in table:
        if key not in TUNE_KEYS:
            raise BionicError(f"{where}: unknown key '{key}' (allowed: {', '.join(TUNE_KEYS)})")
    out: dict[str, Any] = {}
    for key in ("trials", "epochs"):
        if key in table:
            value = table[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise BionicError(f"{where}.{key}: expected a positive integer, got {value!r}")
            out[key] = value
    for key, allowed in (("sampler", SAMPLERS), ("pruner", PRUNERS), ("metric", METRICS)):
        if key in table:
            if table[key] not in allowed:
                raise BionicError(f"{where}.{key}: expected one of {', '.join(allowed)}, "
                                  f"got {table[key]!r}")
            out[key] = table[key]
    return out


def build_search_space(config: RunConfig, catalogue: Catalogue, where: str) -> SearchSpace:
    """The search space of ``config`` narrowed/fixed by its ``tune`` table; ``where`` names the
    table in errors (e.g. ``experiments.toml: experiments.X.tune``).

    Table keys: ``search`` (explore only these names), ``ranges`` (name → [low, high]),
    ``choices`` (name → list), ``fixed`` (name → value for every trial); names are ``lr``,
    ``batch_size``, ``activation`` or ``FEATURE.PARAM`` of an enabled feature.
    """
    tune_options(config, where)
    names = candidates(config, catalogue)
    sections = _sections(config.tune, where)
    search = _search(config, names, sections, where)
    fixed = _fixed(config, names, sections["fixed"], where)
    params = dict(names)
    params.update(_ranges(config, names, sections["ranges"], fixed, where))
    params.update(_choices(config, names, sections, fixed, where))
    dimensions = {n: p for n, p in params.items() if n not in fixed and _searchable(p)
                  and (search is None or n in search)}
    fixed.update(_collapsed(params, sections, fixed, dimensions))
    if not dimensions:
        raise BionicError(f"{where}: the search space is empty: no parameter of the core or of "
                          f"the enabled features ({', '.join(sorted(config.features)) or 'none'})"
                          " has a range or choices left to explore")
    return SearchSpace(dimensions, fixed)


def _sections(table: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """The ``fixed``, ``ranges`` and ``choices`` tables (empty when absent)."""
    sections = {}
    for section in SECTIONS:
        value = table.get(section, {})
        if not isinstance(value, dict):
            raise BionicError(f"{where}.{section}: expected a table of parameter names, "
                              f"got {value!r}")
        sections[section] = value
    return sections


def _search(config: RunConfig, names: Mapping[str, Param],
            sections: Mapping[str, dict[str, Any]], where: str) -> list[str] | None:
    """The ``search`` list, checked: explore only these; every other parameter keeps its value."""
    search = config.tune.get("search")
    if search is None:
        return None
    if not isinstance(search, list) or not all(isinstance(n, str) for n in search):
        raise BionicError(f"{where}.search: expected a list of parameter names, "
                          f"got {search!r}")
    for name in search:
        _lookup(names, name, f"{where}.search", config)
    for section in ("ranges", "choices"):
        outside = [n for n in sections[section] if n not in search]
        if outside:
            raise BionicError(f"{where}.{section}.{outside[0]}: not in {where}.search")
    return search


def _fixed(config: RunConfig, names: Mapping[str, Param], table: Mapping[str, Any],
           where: str) -> dict[str, Any]:
    """The ``fixed`` table: name → the value every trial uses, coerced to the parameter's type."""
    fixed: dict[str, Any] = {}
    for name, value in table.items():
        w = f"{where}.fixed.{name}"
        p = _lookup(names, name, w, config)
        fixed[name] = Param(name, p.type, p.default).coerce(value, w)
    return fixed


def _ranges(config: RunConfig, names: Mapping[str, Param], table: Mapping[str, Any],
            fixed: Mapping[str, Any], where: str) -> dict[str, Param]:
    """The ``ranges`` table: name → the parameter with its narrowed [low, high]."""
    out = {}
    for name, value in table.items():
        w = f"{where}.ranges.{name}"
        p = _lookup(names, name, w, config)
        if name in fixed:
            raise BionicError(f"{w}: the parameter is also fixed")
        low, high = _bounds(p, value, w)
        out[name] = Param(name, p.type, p.default, p.help, low=low, high=high, log=p.log)
    return out


def _bounds(p: Param, value: Any, w: str) -> tuple[Any, Any]:
    """``[low, high]`` checked against the parameter's type and scale."""
    if p.type not in (int, float):
        raise BionicError(f"{w}: a {p.type.__name__} parameter has no numeric range "
                          "(use choices)")
    if (not isinstance(value, list) or len(value) != 2
            or not all(_number(v) for v in value)):
        raise BionicError(f"{w}: expected [low, high], got {value!r}")
    low, high = value
    if p.type is int and not all(isinstance(v, int) for v in value):
        raise BionicError(f"{w}: expected integer bounds, got {value!r}")
    if low > high:
        raise BionicError(f"{w}: low {low} > high {high}")
    if p.log and low <= 0:
        raise BionicError(f"{w}: a log-scale range needs low > 0, got {low}")
    return low, high


def _choices(config: RunConfig, names: Mapping[str, Param],
             sections: Mapping[str, dict[str, Any]], fixed: Mapping[str, Any],
             where: str) -> dict[str, Param]:
    """The ``choices`` table: name → the parameter with its coerced choices."""
    out = {}
    for name, value in sections["choices"].items():
        w = f"{where}.choices.{name}"
        p = _lookup(names, name, w, config)
        if name in fixed or name in sections["ranges"]:
            raise BionicError(f"{w}: the parameter is also fixed or given a range")
        if not isinstance(value, list) or not value:
            raise BionicError(f"{w}: expected a non-empty list, got {value!r}")
        plain = Param(name, p.type, p.default)
        chosen = tuple(plain.coerce(v, f"{w}[{i}]") for i, v in enumerate(value))
        out[name] = Param(name, p.type, p.default, p.help, choices=chosen)
    return out


def _collapsed(params: Mapping[str, Param], sections: Mapping[str, dict[str, Any]],
               fixed: Mapping[str, Any], dimensions: Mapping[str, Param]) -> dict[str, Any]:
    """One choice or low == high: a fixed value, not a dimension."""
    narrowed = {**sections["ranges"], **sections["choices"]}
    return {name: p.choices[0] if p.choices is not None else p.type(p.low)
            for name, p in params.items()
            if name not in fixed and name not in dimensions and name in narrowed}


def _searchable(p: Param) -> bool:
    if p.choices is not None:
        return len(p.choices) > 1
    return p.low is not None and p.high is not None and p.low < p.high


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _lookup(names: Mapping[str, Param], name: str, where: str, config: RunConfig) -> Param:
    if name in names:
        return names[name]
    feature = name.split(".", 1)[0]
    if "." in name and feature not in config.features:
        raise BionicError(f"{where}: feature '{feature}' is not enabled in this experiment")
    known = ", ".join(names)
    raise BionicError(f"{where}: unknown parameter '{name}' (known: {known})")
