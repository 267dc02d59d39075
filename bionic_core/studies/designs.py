"""Ablation designs: which feature sets to train (leave-one-out, add-one-in, factorial, ...)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bionic_core.contract.errors import BionicError
from bionic_core.contract.features import Feature, validate_feature_set

KINDS = ("leave-one-out", "add-one-in", "factorial", "explicit")
MAX_FULL_FACTORS = 10  # 2^10 = 1024 configurations (× seeds) is already a large sweep


@dataclass(frozen=True)
class Configuration:
    """One feature set to train, named for what it changes."""

    name: str                      # "reference", "-adjacency_mask", "+hebbian", "baseline",
    #                                "f:adjacency_mask+laminar", "f:none", "e:a+b", "e:none"
    features: frozenset[str]       # enabled features
    removed: tuple[str, ...] = ()  # vs the design's anchor (sorted)
    added: tuple[str, ...] = ()    # vs the design's anchor (sorted)


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

    def by_name(self, name: str) -> Configuration | None:
        return next((c for c in self.configurations if c.name == name), None)




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


def _diff(features: frozenset[str], anchor: frozenset[str] | None):
    if anchor is None:
        return (), ()
    return tuple(sorted(anchor - features)), tuple(sorted(features - anchor))


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
) -> Design:
    """Enumerate the configurations of an ablation design of ``kind`` (see ``KINDS``).

    - leave-one-out: the reference, then the reference without each of its features
      (``-feature``), then the baseline if one is given. Removing a feature also removes the
      reference features that (transitively) require it — taking away the conv front end takes
      the lateral inhibition inside it too — and ``removed`` lists them all.
    - add-one-in: the baseline (empty when not given), then the baseline plus each of
      ``factors`` (default: reference − baseline) as ``+feature``, then the reference if given.
    - factorial: every on/off combination of ``factors`` (all-on first, all-off last), with the
      reference's other features held on; ``sample=N`` keeps a seeded random N of them,
      all-on and all-off always included when N ≥ 2.
    - explicit: the ``explicit`` feature sets, in order.

    Configurations are deduplicated by feature set (the first name wins); invalid ones (see
    :func:`validate_feature_set`) go to ``dropped`` with the reason. Raises BionicError for an
    unknown kind or feature, a factorial over more than 10 factors without ``sample``, an
    invalid anchor (the reference of leave-one-out, the baseline of add-one-in) and a plan in
    which every configuration was dropped.
    """
    canonical = kind.strip().lower().replace("_", "-") if isinstance(kind, str) else kind
    if canonical not in KINDS:
        raise BionicError(f"unknown design kind {kind!r} (known: {', '.join(KINDS)})")
    kind = canonical
    ref = _ordered(reference)
    base = _ordered(baseline)
    facs = _ordered(factors) or []
    sets = [_ordered(s) or [] for s in explicit]

    known = set(catalogue)
    for group in (ref or [], base or [], facs, *sets):
        for f in group:
            if f not in known:
                raise BionicError(
                    f"design {kind}: unknown feature {f!r} (known: {', '.join(sorted(known))})"
                )

    # (name, ordered features) candidates in plan order.
    cands: list[tuple[str, list[str]]] = []
    anchor_name = "reference"
    anchor: list[str] | None = ref

    if kind == "leave-one-out":
        if ref is None:
            raise BionicError("design leave-one-out: needs a reference feature set")
        cands.append(("reference", ref))
        cands.extend((f"-{f}", [g for g in ref if g not in _dependents(f, ref, catalogue)])
                      for f in ref)
        if base is not None:
            cands.append(("baseline", base))
    elif kind == "add-one-in":
        anchor_name, anchor = "baseline", base or []
        if not facs:
            if ref is None:
                raise BionicError("design add-one-in: needs factors or a reference feature set")
            facs = [f for f in ref if f not in anchor]
        cands.append(("baseline", anchor))
        cands.extend((f"+{f}", [*anchor, f]) for f in facs)
        if ref is not None:
            cands.append(("reference", ref))
    elif kind == "factorial":
        if not facs:
            raise BionicError("design factorial: needs at least one factor")
        k = len(facs)
        if sample is None and k > MAX_FULL_FACTORS:
            raise BionicError(
                f"design factorial: {k} factors give 2^{k} configurations; "
                f"use at most {MAX_FULL_FACTORS} factors or set a sample size"
            )
        held = [f for f in (ref or []) if f not in facs]
        if ref is None:
            anchor_name = ""
        # Combination index m: factor i is on when bit (k-1-i) is set, so descending m is the
        # order of product([True, False], repeat=k): all-on first, all-off last.
        full = 1 << k
        if sample is None:
            masks = list(range(full - 1, -1, -1))
        else:
            if sample < 1:
                raise BionicError(f"design factorial: sample must be at least 1, got {sample}")
            rng = random.Random(seed)
            if sample >= full:
                masks = list(range(full))
            elif sample == 1:
                masks = rng.sample(range(full), 1)
            else:
                masks = [full - 1, 0, *rng.sample(range(1, full - 1), sample - 2)]
            masks.sort(reverse=True)
        for m in masks:
            on = [f for i, f in enumerate(facs) if m >> (k - 1 - i) & 1]
            name = "f:" + ("+".join(on) if on else "none")
            cands.append((name, [*held, *on]))
    else:  # explicit
        if not sets:
            raise BionicError("design explicit: no feature sets given")
        if ref is None:
            anchor_name = ""
        for s in sets:
            if ref is not None and set(s) == set(ref):
                cands.append(("reference", s))
            else:
                cands.append(("e:" + ("+".join(s) if s else "none"), s))

    anchor_set = frozenset(anchor) if anchor is not None else None
    if anchor_set is not None and kind in ("leave-one-out", "add-one-in"):
        problems = validate_feature_set(anchor_set, catalogue)
        if problems:
            raise BionicError(
                f"design {kind}: the {anchor_name} is not a valid feature set: "
                + "; ".join(problems)
            )

    seen: set[frozenset[str]] = set()
    configs: list[Configuration] = []
    dropped: list[Dropped] = []
    for name, feats in cands:
        fs = frozenset(feats)
        if fs in seen:
            continue
        seen.add(fs)
        problems = validate_feature_set(fs, catalogue)
        if problems:
            dropped.append(Dropped(fs, name, "; ".join(problems)))
            continue
        removed, added = _diff(fs, anchor_set)
        configs.append(Configuration(name, fs, removed, added))

    if not configs:
        first = dropped[0]
        raise BionicError(
            f"design {kind}: every configuration was dropped: {first.name}: {first.reason}"
        )
    if anchor_name and all(c.name != anchor_name for c in configs):
        anchor_name = ""
    return Design(kind, tuple(configs), tuple(dropped), anchor_name)
