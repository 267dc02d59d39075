"""The family of comparisons of a sweep: Δ of every configuration versus the reference (t-test,
optionally a bootstrap CI), Holm-adjusted p-values and minimum detectable effects over each
sweep's comparisons, and a warning when too few seeds are compared."""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats as _st

from bionic_core.studies.comparison_model import Comparison, Row
from bionic_core.studies.multiple_testing import family_size, holm
from bionic_core.studies.power import POWER, detectable_effect
from bionic_core.studies.seed_bootstrap import bootstrap_ci
from bionic_core.studies.stats import difference, paired_differences

MIN_SEEDS = 3  # fewer seeds than this draw a warning


def finite_values(row: Row, column: str) -> tuple[list[float], list[int]]:
    """The row's defined values of ``column`` and their seeds."""
    pairs = [(v, s) for v, s in zip(row.values.get(column, []), row.seeds, strict=False)
             if math.isfinite(v)]
    return [v for v, _ in pairs], [s for _, s in pairs]


def add_deltas(rows: list[Row], reference: Row, column: str, confidence: float) -> None:
    """Δ of ``column`` versus the reference on every other row with runs."""
    ref_values, ref_seeds = finite_values(reference, column)
    for r in rows:
        if r is not reference and r.seeds:
            values, seeds = finite_values(r, column)
            r.delta = difference(values, ref_values, seeds=seeds, reference_seeds=ref_seeds,
                                 confidence=confidence)


def add_bootstrap(rows: list[Row], reference: Row, column: str, confidence: float) -> None:
    """A percentile bootstrap CI of Δ over seeds on every row with a Δ (paired when the
    t-test was)."""
    ref_values, ref_seeds = finite_values(reference, column)
    for r in rows:
        if r.delta is None or r is reference:
            continue
        values, seeds = finite_values(r, column)
        d = paired_differences(values, ref_values, seeds=seeds, reference_seeds=ref_seeds)
        r.bootstrap = (bootstrap_ci(d, confidence=confidence) if d is not None
                       else bootstrap_ci(values, ref_values, confidence=confidence))


def family_statistics(p_values: Sequence[float], ses: Sequence[float], dofs: Sequence[float],
                      alpha: float) -> tuple[int, list[tuple[float, float, float]]]:
    """m and, per test, (Holm-adjusted p, MDE at α, MDE at α / m): Holm's strictest step is
    the Bonferroni level, so the second MDE bounds what the family can still detect."""
    m = family_size(p_values)
    stricter = alpha / max(m, 1)
    return m, [(adjusted, detectable_effect(se, dof, alpha),
                detectable_effect(se, dof, stricter))
               for adjusted, se, dof in zip(holm(p_values), ses, dofs, strict=True)]


def adjust_families(comparison: Comparison, one_family: bool = False) -> None:
    """Holm over each sweep's comparisons with the reference (``one_family``: over all of
    them, whatever sweep a row comes from), and every row's detectable effect (see
    :func:`family_statistics`)."""
    alpha = comparison.alpha
    by_sweep: dict[str, list[Row]] = {}
    for r in comparison.rows:
        if r.delta is not None and r.name != comparison.reference and not r.descriptive:
            by_sweep.setdefault("" if one_family else r.sweep_id, []).append(r)
    if any(r.descriptive for r in comparison.rows):
        comparison.notes.append(
            "null ladder: a control drawn several times is tested once, by its pooled row "
            "(per seed the mean over its draws, paired with the reference's seed: the same "
            "initial weights); its single draws show their Δ and raw p only")
    for sweep_id, rows in by_sweep.items():
        m, stats = family_statistics([r.delta.p_value for r in rows],
                                     [r.delta.se for r in rows], [r.delta.dof for r in rows],
                                     alpha)
        for r, (p_holm, mde, mde_holm) in zip(rows, stats, strict=True):
            r.p_holm, r.mde, r.mde_holm = p_holm, mde, mde_holm
        comparison.families.append({"sweep_id": sweep_id, "what": "Δ vs reference", "m": m,
                                    "method": "holm"})
        where = (f"sweep {comparison.sweep_label(sweep_id)}" if sweep_id
                 else "every compared sweep (one family)")
        comparison.notes.append(
            f"p (Holm): Holm over the {m} comparison{'s' * (m != 1)} with the reference of "
            f"{where}; MDE: the smallest |Δ| a t-test finds "
            f"with {100 * POWER:.0f} % power at α = {alpha:g}, "
            f"(t(1−α/2, ν) + t({POWER:g}, ν))·SE; MDE (Holm) at α/m = "
            f"{alpha / max(m, 1):.2g} (Bonferroni, Holm's strictest step)")


def _few_seeds_consequence(n: int) -> str:
    """What ``n`` (< 3) seeds leave a comparison: no CI or p, or a t-test on n − 1 dof."""
    if n < 2:
        return "no CI or p"
    return (f"a t-test on {n - 1} degree{'s' * (n != 2)} of freedom: its 95 % CI is "
            f"±{float(_st.t.ppf(0.975, n - 1)):.1f} standard errors wide and p says little")


def warn_few_seeds(comparison: Comparison) -> None:
    """A warning when fewer than three seeds are compared on a row, the rows grouped by how
    many seeds they have (each group says what its count leaves: no CI, or a weak t-test)."""
    few = [r for r in comparison.rows if r.delta is not None and r.delta.n < MIN_SEEDS]
    if not few:
        return
    by_n: dict[int, list[str]] = {}
    for r in few:
        by_n.setdefault(r.delta.n, []).append(r.name)

    def listed(names: list[str]) -> str:
        return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")

    counts = "; ".join(f"{n} for {listed(names)}" for n, names in sorted(by_n.items()))
    if len(by_n) == 1:
        (n,) = by_n
        what = ("so " if n < 2 else "") + _few_seeds_consequence(n)
    else:
        what = "; ".join(f"with {n}, {_few_seeds_consequence(n)}" for n in sorted(by_n))
    comparison.warnings.append(f"fewer than {MIN_SEEDS} seeds compared ({counts}): "
                               f"{what}; run {MIN_SEEDS} or more seeds")
