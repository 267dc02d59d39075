"""Factorial and fractional-factorial effects of a compared sweep: main effects and two-factor
interactions (linear model on ±1 coding), Holm over the effects, detectable effects, Shapley
values and — for a fraction — the defining relation read back from its configurations and the
shortest aliases of every effect."""

from __future__ import annotations

from typing import Any

from bionic_core.studies.comparison_family import family_statistics, finite_values
from bionic_core.studies.comparison_model import Comparison, Row, SweepInfo
from bionic_core.studies.fractional import aliases_of, defining_relation, shortest, word_label
from bionic_core.studies.stats import factorial_effects, shapley_from_effects

FACTORIAL_DESIGNS = ("factorial", "fractional")


def _adjust(comparison: Comparison, sweep: SweepInfo, effects: list[dict[str, Any]]) -> None:
    """Holm over the effects, and each effect's detectable size."""
    m, stats = family_statistics([e["p_value"] for e in effects], [e["se"] for e in effects],
                                 [e["dof"] for e in effects], comparison.alpha)
    for e, (p_holm, mde, mde_holm) in zip(effects, stats, strict=True):
        e.update(p_holm=p_holm, mde=mde, mde_holm=mde_holm)
    comparison.families.append({"sweep_id": sweep.sweep_id, "what": "factorial effects",
                                "m": m, "method": "holm"})
    comparison.notes.append(f"effects p (Holm): Holm over the {m} effects of {sweep.design} "
                            f"sweep {comparison.sweep_label(sweep.sweep_id)}")


def _aliases(rows: list[Row], sweep: SweepInfo, effects: list[dict[str, Any]]) -> dict[str, Any]:
    """The defining relation read back from the sweep's configurations, and each effect's
    shortest aliases (in a resolution-V fraction two-factor interactions alias three-factor
    ones)."""
    factors = list(sweep.factors)
    masks = [sum(1 << i for i, f in enumerate(factors) if f in r.features)
             for r in rows if r.sweep_id == sweep.sweep_id]
    relation = defining_relation(masks, len(factors))
    words = [w for w, _ in relation]
    for e in effects:
        effect = sum(1 << factors.index(f) for f in e["term"].split(":"))
        first = shortest(aliases_of(effect, words))
        e["aliased_with"] = [":".join(factors[i] for i in range(len(factors)) if a >> i & 1)
                             for a in first]
        e["aliased_letters"] = [word_label(a) for a in first]
    return {"letters": {word_label(1 << i): f for i, f in enumerate(factors)},
            "defining_relation": [("" if sign > 0 else "−") + word_label(w)
                                  for w, sign in relation],
            "resolution": min((w.bit_count() for w in words), default=None)}


def _fraction_note(fraction: dict[str, Any]) -> str:
    letters = ", ".join(f"{k} = {v}" for k, v in fraction["letters"].items())
    relation = " = ".join(["I", *fraction["defining_relation"]]) or "I"
    return (f"fraction: {letters}; defining relation {relation} (resolution "
            f"{fraction['resolution']}): each effect is estimated assuming its aliases "
            "(three or more factors) are negligible")


def factorial_analysis(comparison: Comparison, sweep: SweepInfo,
                       column: str) -> dict[str, Any] | None:
    """The effects of ``sweep``'s factors on ``column`` from its rows' seed values (None
    without any); problems go to the comparison's notes."""
    rows, notes = comparison.rows, comparison.notes
    factors = list(sweep.factors)
    data = [({f: f in r.features for f in factors}, v)
            for r in rows if r.sweep_id == sweep.sweep_id for v in finite_values(r, column)[0]]
    if not data:
        return None
    fractional = sweep.design == "fractional"
    out: dict[str, Any] = {"sweep_id": sweep.sweep_id, "design": sweep.design,
                           "factors": factors, "metric": column}
    try:
        effects = factorial_effects(data, factors, confidence=comparison.confidence,
                                    saturated=fractional)
        out["effects"] = [vars(e) for e in effects]
        _adjust(comparison, sweep, out["effects"])
        if fractional:
            out["fraction"] = _aliases(rows, sweep, out["effects"])
            notes.append(_fraction_note(out["fraction"]))
    except ValueError as exc:
        notes.append(f"factorial effects: {exc}")
        out["effects"] = []
    try:
        out["shapley"] = shapley_from_effects(data, factors)
    except ValueError as exc:
        notes.append(f"Shapley values: {exc}")
        out["shapley"] = None
    return out
