"""Ablation designs: which feature sets to train (leave-one-out, add-one-in, factorial,
fractional factorial, explicit), and the null ladder (the reference's wiring against its
controls: the same features, other ``adjacency_mask.wiring`` draws).

Each design kind is one builder function (see ``_BUILDERS``) that lists the candidate
configurations; :func:`plan_design` checks the request, calls the kind's builder, then
deduplicates the candidates and drops the invalid ones.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bionic_core.connectome.controls import WIRINGS
from bionic_core.contract.errors import BionicError
from bionic_core.contract.features import Feature, validate_feature_set
from bionic_core.studies.fractional import Fraction, describe, fraction_for

MAX_FULL_FACTORS = 10  # 2^10 = 1024 configurations (× seeds) is already a large sweep
# The null ladder's default controls and draws (connectome.null_seed 0..n-1 each): degree-
# preserving rewires and density-matched (per-block count) uniform graphs, the type-shuffled
# control and the parameter-matched dense layers (no random draw: one).
DEFAULT_NULLS = (("degree_preserving", 5), ("layer_uniform", 5), ("type_shuffled", 1),
                 ("dense_matched", 1))
DRAW_MARK = "#"  # a control's name: "degree_preserving#3" is its draw with null_seed 3


@dataclass(frozen=True)
class Configuration:
    """One feature set to train, named for what it changes."""

    name: str                      # "reference", "-adjacency_mask", "+hebbian", "baseline",
    #                                "f:adjacency_mask+laminar", "f:none", "e:a+b", "e:none"
    features: frozenset[str]       # enabled features
    removed: tuple[str, ...] = ()  # vs the design's anchor (sorted)
    added: tuple[str, ...] = ()    # vs the design's anchor (sorted)
    # Settings this configuration changes besides its features, as --set KEY=VALUE items
    # (the null ladder's controls: adjacency_mask.wiring, connectome.null_seed).
    settings: tuple[str, ...] = ()


def control_kind(name: str) -> str:
    """The wiring a null ladder's configuration draws (``degree_preserving#3`` →
    ``degree_preserving``); the name itself for any other configuration."""
    return name.split(DRAW_MARK, 1)[0]


@dataclass(frozen=True)
class Dropped:
    """A configuration left out of the plan because its feature set is invalid."""

    features: frozenset[str]
    name: str
    reason: str  # the problems joined by "; ", e.g. "lateral_inhibition requires conv_frontend"


@dataclass(frozen=True)
class Design:
    """The planned configurations (deduplicated, valid, in a deterministic order)."""

    kind: str
    configurations: tuple[Configuration, ...]
    dropped: tuple[Dropped, ...]
    # Name of the planned configuration the others are compared with: "baseline" for
    # add-one-in, else "reference"; "" when no configuration of that name is in the plan (a
    # factorial never has one: its configurations are all named "f:..."). ``removed``/``added``
    # are relative to the baseline for add-one-in, else to the reference (when given).
    anchor: str = "reference"
    # A fractional design's fraction, its factors in letter order (A, B, ...); else None.
    fraction: Fraction | None = None
    factors: tuple[str, ...] = ()

    def by_name(self, name: str) -> Configuration | None:
        return next((c for c in self.configurations if c.name == name), None)

    def fraction_record(self) -> dict | None:
        """The fraction's generators, defining relation and aliases (see
        :func:`~bionic_core.studies.fractional.describe`); None for other designs."""
        return None if self.fraction is None else describe(self.fraction, self.factors)


@dataclass(frozen=True)
class _Request:
    """The arguments of :func:`plan_design`, checked, with every feature list ordered."""

    kind: str
    catalogue: Mapping[str, Feature]
    reference: list[str] | None
    baseline: list[str] | None
    factors: list[str]
    sample: int | None
    sets: list[list[str]]
    seed: int
    resolution: int | None = None
    nulls: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class _Candidates:
    """What a design's builder proposes, before deduplication and validation."""

    configurations: list[tuple[str, list[str]]]  # (name, ordered features) in plan order
    anchor_name: str  # the configuration the others are compared with ("" for none)
    anchor: list[str] | None  # its features, which ``removed``/``added`` are relative to
    check_anchor: bool = False  # the anchor must be a valid feature set itself
    fraction: Fraction | None = None  # the fraction of a fractional design
    settings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # by name


def _ordered(features: Iterable[str] | None) -> list[str] | None:
    """The features in the given order, without repeats; sets are sorted (deterministic)."""
    if features is None:
        return None
    if isinstance(features, str):
        features = [features]
    elif isinstance(features, (set, frozenset)):
        features = sorted(features)
    out: list[str] = []
    for f in features:
        if f not in out:
            out.append(f)
    return out


def _diff(features: frozenset[str],
          anchor: frozenset[str] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if anchor is None:
        return (), ()
    return tuple(sorted(anchor - features)), tuple(sorted(features - anchor))


def _joined(features: Sequence[str]) -> str:
    return "+".join(features) if features else "none"


def _dependents(feature: str, enabled: Sequence[str],
                catalogue: Mapping[str, Feature]) -> set[str]:
    """``feature`` and every feature of ``enabled`` that requires it, directly or transitively."""
    gone = {feature}
    changed = True
    while changed:
        changed = False
        for name in enabled:
            if name not in gone and gone & set(catalogue[name].requires):
                gone.add(name)
                changed = True
    return gone


# ============================================================================ the design kinds


def _leave_one_out(r: _Request) -> _Candidates:
    """The reference, then the reference without each of its features (``-feature``), then
    the baseline if one is given. Removing a feature also removes the reference features that
    (transitively) require it — taking away the conv front end takes the lateral inhibition
    inside it too — and ``removed`` lists them all. ``factors``, when given, are the features
    to take out (each must be in the reference); by default every feature of the reference."""
    ref = r.reference
    if ref is None:
        raise BionicError("design leave-one-out: needs a reference feature set")
    outside = [f for f in r.factors if f not in ref]
    if outside:
        raise BionicError("design leave-one-out: factors not in the reference: "
                          + ", ".join(outside))
    cands = [("reference", ref)]
    cands.extend((f"-{f}", [g for g in ref if g not in _dependents(f, ref, r.catalogue)])
                 for f in (r.factors or ref))
    if r.baseline is not None:
        cands.append(("baseline", r.baseline))
    return _Candidates(cands, "reference", ref, check_anchor=True)


def _add_one_in(r: _Request) -> _Candidates:
    """The baseline (empty when not given), then the baseline plus each of ``factors``
    (default: reference − baseline) as ``+feature``, then the reference if given."""
    anchor = r.baseline or []
    factors = r.factors
    if not factors:
        if r.reference is None:
            raise BionicError("design add-one-in: needs factors or a reference feature set")
        factors = [f for f in r.reference if f not in anchor]
    cands = [("baseline", anchor)]
    cands.extend((f"+{f}", [*anchor, f]) for f in factors)
    if r.reference is not None:
        cands.append(("reference", r.reference))
    return _Candidates(cands, "baseline", anchor, check_anchor=True)


def _factorial_masks(k: int, sample: int | None, seed: int) -> list[int]:
    """The combinations of ``k`` factors to train, as bit masks in descending order.

    Combination index m: factor i is on when bit (k-1-i) is set, so descending m is the order
    of product([True, False], repeat=k): all-on first, all-off last."""
    full = 1 << k
    if sample is None:
        return list(range(full - 1, -1, -1))
    if sample < 1:
        raise BionicError(f"design factorial: sample must be at least 1, got {sample}")
    rng = random.Random(seed)
    if sample >= full:
        masks = list(range(full))
    elif sample == 1:
        masks = rng.sample(range(full), 1)
    else:
        masks = [full - 1, 0, *rng.sample(range(1, full - 1), sample - 2)]
    return sorted(masks, reverse=True)


def _factorial(r: _Request) -> _Candidates:
    """Every on/off combination of ``factors`` (all-on first, all-off last), with the
    reference's other features held on; ``sample=N`` keeps a seeded random N of them, all-on
    and all-off always included when N ≥ 2."""
    factors = r.factors
    if not factors:
        raise BionicError("design factorial: needs at least one factor")
    k = len(factors)
    if r.sample is None and k > MAX_FULL_FACTORS:
        raise BionicError(
            f"design factorial: {k} factors give 2^{k} configurations; "
            f"use at most {MAX_FULL_FACTORS} factors or set a sample size"
        )
    held = [f for f in (r.reference or []) if f not in factors]
    cands = []
    for m in _factorial_masks(k, r.sample, r.seed):
        on = [f for i, f in enumerate(factors) if m >> (k - 1 - i) & 1]
        cands.append(("f:" + _joined(on), [*held, *on]))
    return _Candidates(cands, "reference" if r.reference is not None else "", r.reference)


def _fractional(r: _Request) -> _Candidates:
    """A regular 2^(k−p) fraction of the factorial of ``factors`` with at least the given
    resolution (default V: every main effect and two-factor interaction estimable), in the
    fewest runs this module finds: e.g. 12 factors in 256 configurations instead of 4,096.
    The first factors are the base (A, B, ...), the last p are generated; the reference's
    other features are held on, as in the factorial."""
    factors = r.factors
    if not factors:
        raise BionicError("design fractional: needs at least one factor")
    if r.sample is not None:
        raise BionicError("design fractional: sample does not apply (the fraction is chosen "
                          "by its resolution)")
    try:
        fraction = fraction_for(len(factors), 5 if r.resolution is None else r.resolution)
    except ValueError as exc:
        raise BionicError(f"design fractional: {exc}") from None
    held = [f for f in (r.reference or []) if f not in factors]
    cands = []
    for m in fraction.on_masks():
        on = [f for i, f in enumerate(factors) if m >> i & 1]
        cands.append(("f:" + _joined(on), [*held, *on]))
    return _Candidates(cands, "reference" if r.reference is not None else "", r.reference,
                       fraction=fraction)


def _explicit(r: _Request) -> _Candidates:
    """The ``explicit`` feature sets, in order (the one equal to the reference is named so)."""
    if not r.sets:
        raise BionicError("design explicit: no feature sets given")
    ref = r.reference
    cands = [("reference", s) if ref is not None and set(s) == set(ref) else ("e:" + _joined(s), s)
             for s in r.sets]
    return _Candidates(cands, "reference" if ref is not None else "", ref)


def _null_ladder(r: _Request) -> _Candidates:
    """The reference (its own wiring) and, for each control of ``nulls``, its draws: the same
    features with ``adjacency_mask.wiring`` set to the control and ``connectome.null_seed`` to
    0, 1, ... (named ``control#seed``). Every draw starts from the reference's initial weights
    (see docs/structural_features.md, "Shared initial weights")."""
    ref = r.reference
    if ref is None or "adjacency_mask" not in ref:
        raise BionicError("design null-ladder: the reference must have adjacency_mask (the "
                          "ladder varies its wiring)")
    cands: list[tuple[str, list[str]]] = [("reference", ref)]
    settings: dict[str, tuple[str, ...]] = {}
    for wiring, draws in r.nulls or DEFAULT_NULLS:
        for k in range(draws):
            name = f"{wiring}{DRAW_MARK}{k}"
            cands.append((name, ref))
            settings[name] = (f"adjacency_mask.wiring={wiring}", f"connectome.null_seed={k}")
    return _Candidates(cands, "reference", ref, check_anchor=True, settings=settings)


def check_nulls(nulls: Mapping[str, Any], where: str) -> tuple[tuple[str, int], ...]:
    """A null ladder's ``{control: draws}``: known controls (not ``column``), at least one
    draw each, one for ``dense_matched`` (it draws nothing); errors name ``where``."""
    if not isinstance(nulls, Mapping) or not nulls:
        raise BionicError(f"{where}: expected a table of control = draws, e.g. "
                          "{ degree_preserving = 5, layer_uniform = 5 }")
    controls = [w for w in WIRINGS if w != "column"]
    out = []
    for wiring, draws in nulls.items():
        if wiring not in controls:
            raise BionicError(f"{where}.{wiring}: not a wiring control "
                              f"(controls: {', '.join(controls)})")
        if not isinstance(draws, int) or isinstance(draws, bool) or draws < 1:
            raise BionicError(f"{where}.{wiring}: expected a number of draws of at least 1, "
                              f"got {draws!r}")
        if wiring == "dense_matched" and draws != 1:
            raise BionicError(f"{where}.dense_matched: has no random draw, so 1 (got {draws})")
        out.append((wiring, draws))
    return tuple(out)


_BUILDERS: dict[str, Callable[[_Request], _Candidates]] = {
    "leave-one-out": _leave_one_out,
    "add-one-in": _add_one_in,
    "factorial": _factorial,
    "fractional": _fractional,
    "explicit": _explicit,
    "null-ladder": _null_ladder,
}
KINDS = tuple(_BUILDERS)


# ============================================================================ planning


def _request(kind: str, catalogue: Mapping[str, Feature], reference: Iterable[str] | None,
             baseline: Iterable[str] | None, factors: Sequence[str], sample: int | None,
             explicit: Sequence[Iterable[str]], seed: int,
             resolution: int | None = None,
             nulls: tuple[tuple[str, int], ...] = ()) -> _Request:
    """The checked request: a known kind (case, ``_`` or ``-``), only known features, and a
    resolution only for a fractional design."""
    canonical = kind.strip().lower().replace("_", "-") if isinstance(kind, str) else kind
    if canonical not in KINDS:
        raise BionicError(f"unknown design kind {kind!r} (known: {', '.join(KINDS)})")
    if resolution is not None and canonical != "fractional":
        raise BionicError(f"design {canonical}: resolution applies to the fractional design "
                          "only")
    if nulls and canonical != "null-ladder":
        raise BionicError(f"design {canonical}: nulls apply to the null-ladder design only")
    request = _Request(canonical, catalogue, _ordered(reference), _ordered(baseline),
                       _ordered(factors) or [], sample, [_ordered(s) or [] for s in explicit],
                       seed, resolution, tuple(nulls))
    known = set(catalogue)
    for group in (request.reference or [], request.baseline or [], request.factors,
                  *request.sets):
        for f in group:
            if f not in known:
                raise BionicError(f"design {canonical}: unknown feature {f!r} "
                                  f"(known: {', '.join(sorted(known))})")
    return request


def _check_anchor(kind: str, candidates: _Candidates, catalogue: Mapping[str, Feature]) -> None:
    if not candidates.check_anchor or candidates.anchor is None:
        return
    problems = validate_feature_set(frozenset(candidates.anchor), catalogue)
    if problems:
        raise BionicError(f"design {kind}: the {candidates.anchor_name} is not a valid feature "
                          "set: " + "; ".join(problems))


def _deduplicated(candidates: _Candidates, catalogue: Mapping[str, Feature]
                  ) -> tuple[list[Configuration], list[Dropped]]:
    """The candidates without repeated feature sets and settings (the first name wins), valid
    ones kept and the invalid ones dropped with the reason."""
    anchor = frozenset(candidates.anchor) if candidates.anchor is not None else None
    seen: set[tuple[frozenset[str], tuple[str, ...]]] = set()
    configs: list[Configuration] = []
    dropped: list[Dropped] = []
    for name, feats in candidates.configurations:
        fs = frozenset(feats)
        settings = tuple(candidates.settings.get(name, ()))
        if (fs, settings) in seen:
            continue
        seen.add((fs, settings))
        problems = validate_feature_set(fs, catalogue)
        if problems:
            dropped.append(Dropped(fs, name, "; ".join(problems)))
            continue
        removed, added = _diff(fs, anchor)
        configs.append(Configuration(name, fs, removed, added, settings))
    return configs, dropped


def plan_design(
    kind: str,
    *,
    catalogue: Mapping[str, Feature],
    reference: Iterable[str] | None = None,
    baseline: Iterable[str] | None = None,
    factors: Sequence[str] = (),
    sample: int | None = None,
    explicit: Sequence[Iterable[str]] = (),
    seed: int = 0,
    resolution: int | None = None,
    nulls: tuple[tuple[str, int], ...] = (),
) -> Design:
    """Enumerate the configurations of an ablation design of ``kind`` (see ``KINDS``; each
    kind's builder — ``_leave_one_out``, ``_add_one_in``, ``_factorial``, ``_fractional``,
    ``_explicit``, ``_null_ladder`` — says what it plans; ``resolution`` (3, 4 or 5, default
    5) is the fractional design's, ``nulls`` (``(control, draws)`` pairs, default
    ``DEFAULT_NULLS``) the null ladder's).

    Configurations are deduplicated by feature set (the first name wins); invalid ones (see
    :func:`validate_feature_set`) go to ``dropped`` with the reason. Raises BionicError for an
    unknown kind or feature, a factorial over more than 10 factors without ``sample``, an
    invalid anchor (the reference of leave-one-out, the baseline of add-one-in) and a plan in
    which every configuration was dropped.
    """
    request = _request(kind, catalogue, reference, baseline, factors, sample, explicit, seed,
                       resolution, nulls)
    candidates = _BUILDERS[request.kind](request)
    _check_anchor(request.kind, candidates, catalogue)
    configs, dropped = _deduplicated(candidates, catalogue)
    if not configs:
        first = dropped[0]
        raise BionicError(
            f"design {request.kind}: every configuration was dropped: {first.name}: {first.reason}"
        )
    anchor_name = candidates.anchor_name
    if anchor_name and all(c.name != anchor_name for c in configs):
        anchor_name = ""
    fraction = candidates.fraction
    return Design(request.kind, tuple(configs), tuple(dropped), anchor_name, fraction,
                  tuple(request.factors) if fraction is not None else ())
