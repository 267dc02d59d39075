"""Seed statistics and effect estimation: summaries, differences, factorial effects, Shapley."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy import stats as _st

# Relative tolerance under which a residual / difference spread counts as exactly zero: seeds
# that give bit-identical results (deterministic mode) must read as "no spread", not as t = 1e16.
_ZERO = 1e-12


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")


def _floats(values: Sequence[float], what: str) -> np.ndarray:
    arr = np.asarray(list(values), dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a flat sequence of numbers")
    return arr


def _is_zero(spread: float, scale: float) -> bool:
    return spread <= _ZERO * max(1.0, scale)


def _t_result(
    estimate: float, se: float, dof: float, confidence: float, scale: float
) -> tuple[float, float, float]:
    """(ci_low, ci_high, two-sided p) for ``estimate`` with standard error ``se`` on ``dof``.

    All three are nan (undefined) without degrees of freedom and when the spread is zero:
    identical results on every seed say nothing about the seed-to-seed variance, so a
    zero-width interval and p = 0 would claim a certainty the data cannot give."""
    if not (dof > 0) or not math.isfinite(se) or _is_zero(se, scale):
        return math.nan, math.nan, math.nan
    q = float(_st.t.ppf(0.5 + confidence / 2.0, dof))
    p = float(2.0 * _st.t.sf(abs(estimate) / se, dof))
    return estimate - q * se, estimate + q * se, p


# --------------------------------------------------------------------------- seed summaries


@dataclass(frozen=True)
class Summary:
    """Mean over seeds with sample std (ddof=1) and a t-interval; the interval is nan where
    n < 2 or the values do not vary."""

    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float


def summarize(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """Mean, std (ddof=1), n and the ``confidence`` t-interval of the mean of ``values``."""
    _check_confidence(confidence)
    x = _floats(values, "values")
    n = int(x.size)
    if n == 0:
        return Summary(math.nan, math.nan, 0, math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Summary(mean, math.nan, n, math.nan, math.nan)
    std = float(x.std(ddof=1))
    lo, hi, _ = _t_result(mean, std / math.sqrt(n), n - 1, confidence, float(np.abs(x).max()))
    return Summary(mean, std, n, lo, hi)


# --------------------------------------------------------------------------- two-sample difference


@dataclass(frozen=True)
class Difference:
    """``delta`` = values − reference, its CI and two-sided p; ``test`` is welch|paired|none.

    ``se`` and ``dof`` are the t-test's standard error and degrees of freedom (nan when it has
    none) and ``n`` the number of seed pairs (paired) or the smaller side (Welch)."""

    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    se: float = math.nan
    dof: float = math.nan
    n: int = 0


def _pairs_from_seeds(
    n_values: int, n_ref: int, seeds: Sequence[int], reference_seeds: Sequence[int]
) -> list[tuple[int, int]] | None:
    """Index pairs matching every seed of ``values`` to the reference, or None if they don't."""
    seeds, reference_seeds = list(seeds), list(reference_seeds)
    if len(seeds) != n_values:
        raise ValueError(f"seeds has {len(seeds)} entries but values has {n_values}")
    if len(reference_seeds) != n_ref:
        raise ValueError(
            f"reference_seeds has {len(reference_seeds)} entries but reference has {n_ref}"
        )
    # A repeated seed makes the pairing ambiguous: fall back to the unpaired test.
    if len(set(seeds)) != len(seeds) or len(set(reference_seeds)) != len(reference_seeds):
        return None
    where = {s: j for j, s in enumerate(reference_seeds)}
    if not seeds or any(s not in where for s in seeds):
        return None
    return [(i, where[s]) for i, s in enumerate(seeds)]


def paired_differences(
    values: Sequence[float],
    reference: Sequence[float],
    *,
    pairs: Sequence[tuple[int, int]] | None = None,
    seeds: Sequence[int] | None = None,
    reference_seeds: Sequence[int] | None = None,
) -> np.ndarray | None:
    """``values[i] − reference[j]`` for every pair (i, j): the ``pairs`` given, or the seeds of
    ``values`` matched in ``reference_seeds``; None when the seeds do not all match (then the
    two samples are independent)."""
    x = _floats(values, "values")
    y = _floats(reference, "reference")
    if pairs is None and seeds is not None and reference_seeds is not None:
        pairs = _pairs_from_seeds(x.size, y.size, seeds, reference_seeds)
    elif (seeds is None) != (reference_seeds is None):
        raise ValueError("give both seeds and reference_seeds, or neither")
    if pairs is None:
        return None
    pairs = [(int(i), int(j)) for i, j in pairs]
    for i, j in pairs:
        if not (0 <= i < x.size and 0 <= j < y.size):
            raise ValueError(f"pair {(i, j)} is out of range")
    return np.array([x[i] - y[j] for i, j in pairs], dtype=float)


def difference(
    values: Sequence[float],
    reference: Sequence[float],
    *,
    pairs: Sequence[tuple[int, int]] | None = None,
    seeds: Sequence[int] | None = None,
    reference_seeds: Sequence[int] | None = None,
    confidence: float = 0.95,
) -> Difference:
    """Difference of means ``values − reference`` with a CI and a two-sided p-value.

    Paired t-test when ``pairs`` (index into values, index into reference) are given, or when
    ``seeds``/``reference_seeds`` are given and every seed of ``values`` occurs (once) in the
    reference; then ``delta`` is the mean of the paired differences. Otherwise Welch's t-test
    with the Welch–Satterthwaite degrees of freedom. With fewer than two observations on a side
    (or two pairs) p and the CI are nan and ``test`` is "none"; with zero spread (every pair
    differs by the same amount, or neither side varies) p and the CI are nan as well.
    """
    _check_confidence(confidence)
    x = _floats(values, "values")
    y = _floats(reference, "reference")
    d = paired_differences(x, y, pairs=pairs, seeds=seeds, reference_seeds=reference_seeds)
    if d is not None:
        n = d.size
        if n == 0:
            return Difference(math.nan, math.nan, math.nan, math.nan, "none")
        delta = float(d.mean())
        if n < 2:
            return Difference(delta, math.nan, math.nan, math.nan, "none", n=n)
        scale = float(max(np.abs(x).max(), np.abs(y).max()))
        se = float(d.std(ddof=1)) / math.sqrt(n)
        lo, hi, p = _t_result(delta, se, n - 1, confidence, scale)
        return Difference(delta, lo, hi, p, "paired", _spread(se, scale), n - 1, n)

    nx, ny = x.size, y.size
    if nx == 0 or ny == 0:
        return Difference(math.nan, math.nan, math.nan, math.nan, "none")
    delta = float(x.mean() - y.mean())
    if nx < 2 or ny < 2:
        return Difference(delta, math.nan, math.nan, math.nan, "none", n=min(nx, ny))
    ax, ay = float(x.var(ddof=1)) / nx, float(y.var(ddof=1)) / ny
    se = math.sqrt(ax + ay)
    scale = float(max(np.abs(x).max(), np.abs(y).max()))
    if _is_zero(se, scale):
        dof = math.nan  # zero spread: no t distribution to speak of
    else:
        dof = (ax + ay) ** 2 / (ax**2 / (nx - 1) + ay**2 / (ny - 1))
    lo, hi, p = _t_result(delta, se, dof, confidence, scale)
    return Difference(delta, lo, hi, p, "welch", _spread(se, scale), dof, min(nx, ny))


def _spread(se: float, scale: float) -> float:
    """The standard error, or nan when it counts as zero (see :func:`_t_result`)."""
    return math.nan if _is_zero(se, scale) else se


# --------------------------------------------------------------------------- factorial effects


@dataclass(frozen=True)
class Effect:
    """A factorial effect: mean change from off to on (``a``) or an interaction (``a:b``),
    with its standard error and residual degrees of freedom (nan when undefined)."""

    term: str
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    se: float = math.nan
    dof: float = math.nan


@dataclass(frozen=True)
class _Fit:
    terms: tuple[str, ...]            # "(intercept)", main effects, then "a:b" interactions
    pairs: tuple[tuple[int, int], ...]  # factor indices of each interaction column
    beta: np.ndarray                  # coefficients (nan where not estimable)
    cov: np.ndarray | None            # coefficient covariance, None without residual dof
    dof: int
    scale: float


def _coded(rows: Sequence[tuple[Mapping[str, bool], float]], features: Sequence[str]):
    features = list(features)
    if len(set(features)) != len(features):
        raise ValueError(f"features contains duplicates: {features}")
    if not rows:
        raise ValueError("no rows to analyse")
    codes = np.empty((len(rows), len(features)))
    y = np.empty(len(rows))
    for r, (flags, value) in enumerate(rows):
        for c, f in enumerate(features):
            if f not in flags:
                raise ValueError(f"row {r} has no on/off value for feature {f!r}")
            codes[r, c] = 1.0 if flags[f] else -1.0
        y[r] = float(value)
    return codes, y


def _design(codes: np.ndarray, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    cols = [np.ones(codes.shape[0]), *codes.T, *(codes[:, i] * codes[:, j] for i, j in pairs)]
    return np.column_stack(cols)


def _fit(rows, features: Sequence[str], interactions: bool, need_dof: bool = True) -> _Fit:
    features = list(features)
    codes, y = _coded(rows, features)
    n, k = codes.shape
    pairs: list[tuple[int, int]] = list(combinations(range(k), 2)) if interactions else []
    X = _design(codes, pairs)
    rank = int(np.linalg.matrix_rank(X))
    if pairs and (rank < X.shape[1] or (need_dof and n - rank <= 0)):
        # Not estimable with every pairwise interaction: fall back to main effects only.
        pairs = []
        X = _design(codes, pairs)
        rank = int(np.linalg.matrix_rank(X))
    pinv = np.linalg.pinv(X)
    beta_min_norm = pinv @ y
    # A coefficient is estimable iff its unit vector lies in the row space of X.
    proj = pinv @ X
    estimable = np.all(np.isclose(proj, np.eye(X.shape[1]), atol=1e-8), axis=1)
    beta = np.where(estimable, beta_min_norm, np.nan)
    dof = n - rank
    scale = float(np.abs(y).max()) if y.size else 1.0
    cov = None
    if dof > 0:
        resid = y - X @ beta_min_norm
        sigma2 = float(resid @ resid) / dof
        if _is_zero(math.sqrt(sigma2), scale):
            sigma2 = 0.0
        cov = sigma2 * (pinv @ pinv.T)
    terms = ("(intercept)", *features, *(f"{features[i]}:{features[j]}" for i, j in pairs))
    return _Fit(terms, tuple(pairs), beta, cov, dof, scale)


def factorial_effects(
    rows: Sequence[tuple[Mapping[str, bool], float]],
    features: Sequence[str],
    *,
    interactions: bool = True,
    confidence: float = 0.95,
    saturated: bool = False,
) -> list[Effect]:
    """Factorial effects of ``features`` from (on/off flags, value) rows by OLS on −1/+1 coding.

    The model has an intercept, one term per feature and (with ``interactions``) every pairwise
    product. Each reported effect is 2 × its coefficient: for a balanced design, the mean change
    from off to on averaged over the other factors (for ``a:b``, half the change of a's effect
    when b is switched on). CIs and p-values use the residual variance on n − rank dof. Rows may
    hold replicates (seeds) and a subset of the full factorial. If the interactions leave the
    model rank-deficient (or, unless ``saturated``, without residual dof) they are dropped (and
    not reported); terms still not estimable get a nan estimate; with no residual dof (or a
    residual of zero) CIs and p are nan. ``saturated`` keeps estimable interactions even when
    they leave no residual dof (a fractional design run with one seed).
    """
    _check_confidence(confidence)
    fit = _fit(rows, features, interactions, need_dof=not saturated)
    out: list[Effect] = []
    for t in range(1, len(fit.terms)):
        est = 2.0 * float(fit.beta[t])
        if fit.cov is None or not math.isfinite(est):
            out.append(Effect(fit.terms[t], est, math.nan, math.nan, math.nan))
            continue
        se = 2.0 * math.sqrt(max(float(fit.cov[t, t]), 0.0))
        lo, hi, p = _t_result(est, se, fit.dof, confidence, fit.scale)
        out.append(Effect(fit.terms[t], est, lo, hi, p, _spread(se, fit.scale), fit.dof))
    return out


# --------------------------------------------------------------------------- Shapley values


def _subset_label(s: frozenset[str], order: Sequence[str]) -> str:
    return "{" + ", ".join(f for f in order if f in s) + "}"


def shapley_values(
    value: Mapping[frozenset[str], float], features: Sequence[str]
) -> dict[str, float]:
    """Exact Shapley value of each feature for v(S) = ``value[frozenset(S)]``, S ⊆ ``features``.

    Every one of the 2^k subsets must be present (ValueError naming the first missing one).
    The values sum to v(all) − v(empty).
    """
    features = list(features)
    if len(set(features)) != len(features):
        raise ValueError(f"features contains duplicates: {features}")
    k = len(features)
    v: dict[int, float] = {}
    for mask in range(1 << k):
        s = frozenset(features[i] for i in range(k) if mask >> i & 1)
        if s not in value:
            raise ValueError(f"no value for the feature subset {_subset_label(s, features)}")
        v[mask] = float(value[s])
    # weight(|S|) = |S|! (k − |S| − 1)! / k!
    weight = [math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k) for s in range(k)]
    out: dict[str, float] = {}
    for i, f in enumerate(features):
        bit = 1 << i
        total = 0.0
        for mask in range(1 << k):
            if not mask & bit:
                total += weight[mask.bit_count()] * (v[mask | bit] - v[mask])
        out[f] = total
    return out


def shapley_from_effects(
    rows: Sequence[tuple[Mapping[str, bool], float]], features: Sequence[str]
) -> dict[str, float]:
    """Shapley values from (possibly sampled, replicated) factorial rows.

    v(S) is the mean of the rows whose on-set among ``features`` is exactly S; subsets with no
    row are filled with the prediction of the OLS model with pairwise interactions (main effects
    only when the interactions are not estimable from the rows). ValueError when even that
    model cannot predict a missing subset.
    """
    features = list(features)
    codes, y = _coded(rows, features)
    k = len(features)
    sums: dict[frozenset[str], list[float]] = {}
    for r in range(len(y)):
        s = frozenset(f for c, f in enumerate(features) if codes[r, c] > 0)
        sums.setdefault(s, []).append(float(y[r]))
    value: dict[frozenset[str], float] = {s: float(np.mean(v)) for s, v in sums.items()}
    if len(value) < 1 << k:
        # Predictions need no residual dof: keep the interactions whenever they are estimable.
        fit = _fit(rows, features, interactions=True, need_dof=False)
        for mask in range(1 << k):
            s = frozenset(features[i] for i in range(k) if mask >> i & 1)
            if s in value:
                continue
            x = np.array([[1.0 if mask >> i & 1 else -1.0 for i in range(k)]])
            pred = float((_design(x, fit.pairs) @ fit.beta)[0])
            if not math.isfinite(pred):
                raise ValueError(
                    "cannot predict the feature subset "
                    f"{_subset_label(s, features)}: the rows do not identify every effect"
                )
            value[s] = pred
    return shapley_values(value, features)
