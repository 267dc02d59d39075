"""Seed statistics, factorial effects and Shapley values against hand-computed values."""

from __future__ import annotations

import math
from itertools import permutations, product

import numpy as np
import pytest
from scipy import stats as st

from bionic_core.studies.stats import (
    Difference,
    difference,
    factorial_effects,
    shapley_from_effects,
    shapley_values,
    summarize,
)

# Two-sided 95 % quantiles of Student's t from printed tables.
T975 = {2: 4.302652729911275, 3: 3.182446305284263}


# --------------------------------------------------------------------------- summarize


def test_summarize_by_hand():
    s = summarize([1.0, 2.0, 3.0, 4.0])
    # deviations from 2.5: ±1.5, ±0.5 -> sum of squares 5, / (n-1)=3
    std = math.sqrt(5.0 / 3.0)
    half = T975[3] * std / 2.0  # sqrt(n) = 2
    assert s.n == 4
    assert s.mean == pytest.approx(2.5)
    assert s.std == pytest.approx(std)
    assert s.ci_low == pytest.approx(2.5 - half)
    assert s.ci_high == pytest.approx(2.5 + half)


def test_summarize_small_and_constant():
    one = summarize([0.7])
    assert one.n == 1 and one.mean == pytest.approx(0.7)
    assert math.isnan(one.std) and math.isnan(one.ci_low) and math.isnan(one.ci_high)
    empty = summarize([])
    assert empty.n == 0 and math.isnan(empty.mean)
    # No spread over seeds: the std is 0, but the interval is undefined, not [0.5, 0.5].
    const = summarize([0.5, 0.5, 0.5])
    assert const.std == 0.0 and math.isnan(const.ci_low) and math.isnan(const.ci_high)
    with pytest.raises(ValueError):
        summarize([1.0, 2.0], confidence=1.5)


# --------------------------------------------------------------------------- difference


def test_welch_step_by_step():
    x, y = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0]
    # means 2.5 and 4; sample variances 5/3 and 4
    a, b = (5.0 / 3.0) / 4, 4.0 / 3  # var/n
    se = math.sqrt(a + b)  # sqrt(1.75)
    dof = (a + b) ** 2 / (a**2 / 3 + b**2 / 2)  # Welch–Satterthwaite
    t = -1.5 / se
    p = 2 * st.t.sf(abs(t), dof)
    q = st.t.ppf(0.975, dof)
    d = difference(x, y)
    assert d.test == "welch"
    assert d.delta == pytest.approx(-1.5)
    assert d.p_value == pytest.approx(p)
    assert d.ci_low == pytest.approx(-1.5 - q * se)
    assert d.ci_high == pytest.approx(-1.5 + q * se)
    # and an independent implementation agrees on p
    assert d.p_value == pytest.approx(st.ttest_ind(x, y, equal_var=False).pvalue)


def test_paired_by_seed():
    # seed -> value: 1 -> 1, 2 -> 2, 3 -> 4; reference seed -> value: 1 -> .5, 2 -> 1, 3 -> 3
    values, seeds = [1.0, 2.0, 4.0], [1, 2, 3]
    reference, ref_seeds = [1.0, 3.0, 0.5], [2, 3, 1]
    d = difference(values, reference, seeds=seeds, reference_seeds=ref_seeds)
    # differences .5, 1, 1: mean 5/6, sd sqrt(1/12), se = sd/sqrt(3) = 1/6, t = 5 on 2 dof.
    # For 2 dof the t CDF is 1/2 + t / (2 sqrt(2 + t^2)), so p = 1 - 5/sqrt(27).
    assert d.test == "paired"
    assert d.delta == pytest.approx(5 / 6)
    assert d.p_value == pytest.approx(1 - 5 / math.sqrt(27))
    assert d.ci_low == pytest.approx(5 / 6 - T975[2] / 6)
    assert d.ci_high == pytest.approx(5 / 6 + T975[2] / 6)
    # explicit index pairs give the same test
    same = difference(values, reference, pairs=[(0, 2), (1, 0), (2, 1)])
    assert same == d


def test_paired_uses_matching_subset_of_reference_seeds():
    d = difference([2.0, 3.0, 4.0], [9.0, 1.0, 2.0, 3.0], seeds=[0, 1, 2],
                   reference_seeds=[7, 0, 1, 2])
    # pairs (2,1), (3,2), (4,3): differences all 1 -> zero spread: CI and p undefined
    assert d.test == "paired" and d.delta == 1.0 and d.n == 3
    assert math.isnan(d.ci_low) and math.isnan(d.ci_high) and math.isnan(d.p_value)
    assert math.isnan(d.se)


def test_unmatched_seeds_fall_back_to_welch():
    d = difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], seeds=[0, 1, 5],
                   reference_seeds=[0, 1, 2])
    assert d.test == "welch"
    assert d.delta == 0.0 and d.p_value == pytest.approx(1.0)


def test_difference_degenerate_cases():
    one = difference([1.0], [0.0, 1.0])
    assert one.test == "none" and one.delta == pytest.approx(0.5)
    assert math.isnan(one.p_value) and math.isnan(one.ci_low) and math.isnan(one.ci_high)
    assert difference([], [1.0]).test == "none"
    # Zero spread on both sides: neither a zero-width CI nor p = 0 (or 1), but undefined.
    for values, reference, delta in (([3.0, 3.0, 3.0], [3.0, 3.0], 0.0),
                                     ([3.0, 3.0, 3.0], [2.0, 2.0], 1.0)):
        d = difference(values, reference)
        assert d.test == "welch" and d.delta == delta and d.n == 2
        assert math.isnan(d.ci_low) and math.isnan(d.ci_high) and math.isnan(d.p_value)
    # n = 1 paired: a Δ, nothing else
    single = difference([0.7], [0.5], seeds=[4], reference_seeds=[4])
    assert single == Difference(pytest.approx(0.2), single.ci_low, single.ci_high,
                                single.p_value, "none", single.se, single.dof, 1)
    assert math.isnan(single.ci_low) and math.isnan(single.p_value) and math.isnan(single.se)
    with pytest.raises(ValueError):
        difference([1.0, 2.0], [1.0, 2.0], seeds=[1])  # reference_seeds missing


# --------------------------------------------------------------------------- factorial effects

FEATURES = ["a", "b", "c"]
# Conventional factorial effects (off -> on), in the −1/+1 model y = mu + sum (effect/2) x.
TRUE = {"a": 4.0, "b": -2.0, "c": 0.0, "a:b": 1.5, "a:c": 0.0, "b:c": 0.0}


def _truth(flags: dict[str, bool]) -> float:
    x = {f: 1.0 if on else -1.0 for f, on in flags.items()}
    y = 10.0
    for term, eff in TRUE.items():
        prod = math.prod(x[f] for f in term.split(":"))
        y += eff / 2 * prod
    return y


def _flags(bits) -> dict[str, bool]:
    return dict(zip(FEATURES, bits, strict=True))


def _cells():
    return [_flags(bits) for bits in product([False, True], repeat=3)]


def test_factorial_exact_recovery_noise_free():
    rows = [(flags, _truth(flags)) for flags in _cells()]
    # hand check of the data: main effect of a = mean(a on) - mean(a off)
    on = np.mean([y for f, y in rows if f["a"]])
    off = np.mean([y for f, y in rows if not f["a"]])
    assert on - off == pytest.approx(4.0)
    effects = {e.term: e for e in factorial_effects(rows, FEATURES)}
    assert list(effects) == ["a", "b", "c", "a:b", "a:c", "b:c"]
    for term, eff in TRUE.items():
        assert effects[term].estimate == pytest.approx(eff, abs=1e-9)
    # noise-free: zero residual variance -> CIs and p undefined, not point intervals and p 0
    for e in effects.values():
        assert math.isnan(e.ci_low) and math.isnan(e.ci_high) and math.isnan(e.p_value)


def test_factorial_noisy_replicates_ci_contains_truth():
    rng = np.random.default_rng(1234)
    rows = [(flags, _truth(flags) + rng.normal(0, 0.3)) for flags in _cells() for _ in range(4)]
    effects = factorial_effects(rows, FEATURES, confidence=0.99)
    assert len(effects) == 6
    for e in effects:
        assert e.ci_low <= TRUE[e.term] <= e.ci_high, e
    by = {e.term: e for e in effects}
    assert by["a"].p_value < 1e-6 and by["b"].p_value < 1e-6


def test_factorial_ci_matches_pooled_variance_in_saturated_2x2():
    # 2^2 with interaction is saturated: residuals are deviations from cell means, so
    # s^2 is the pooled within-cell variance and se(effect) = 2 sqrt(s^2 / N).
    data = {(False, False): [1.0, 2.0], (True, False): [4.0, 6.0],
            (False, True): [2.0, 2.0], (True, True): [8.0, 9.0]}
    rows = [({"a": a, "b": b}, y) for (a, b), ys in data.items() for y in ys]
    means = {k: sum(v) / 2 for k, v in data.items()}
    ss = sum((y - means[k]) ** 2 for k, v in data.items() for y in v)  # .5+2+0+.5 = 3
    s2 = ss / (8 - 4)
    se = 2 * math.sqrt(s2 / 8)
    m00, m10, m01, m11 = (means[k] for k in [(False, False), (True, False), (False, True),
                                             (True, True)])
    a_eff = (m10 + m11 - m00 - m01) / 2  # (5 + 8.5 - 1.5 - 2) / 2 = 5
    ab_eff = ((m11 - m01) - (m10 - m00)) / 2  # a's effect with b on minus with b off, halved
    q = st.t.ppf(0.975, 4)
    by = {e.term: e for e in factorial_effects(rows, ["a", "b"])}
    assert by["a"].estimate == pytest.approx(a_eff)
    assert by["a:b"].estimate == pytest.approx(ab_eff)
    assert by["a"].ci_low == pytest.approx(a_eff - q * se)
    assert by["a"].ci_high == pytest.approx(a_eff + q * se)
    assert by["a"].p_value == pytest.approx(2 * st.t.sf(a_eff / se, 4))
    assert by["a"].se == pytest.approx(se) and by["a"].dof == 4


def test_factorial_half_fraction_drops_interactions_and_has_no_dof():
    # 2^(3-1) with c = a·b: interactions are aliased with main effects.
    additive = {"a": 3.0, "b": 1.0, "c": -1.0}
    rows = []
    for a, b in product([False, True], repeat=2):
        c = a == b
        flags = {"a": a, "b": b, "c": c}
        rows.append((flags, 5.0 + sum(additive[f] / 2 * (1 if flags[f] else -1) for f in flags)))
    effects = factorial_effects(rows, FEATURES)
    assert [e.term for e in effects] == ["a", "b", "c"]
    for e in effects:
        assert e.estimate == pytest.approx(additive[e.term])
        assert math.isnan(e.ci_low) and math.isnan(e.p_value)


def test_factorial_saturated_keeps_interactions_without_dof():
    # 2^2, one observation per cell: with interactions the model has no residual dof. By
    # default the interaction is dropped (to leave dof for CIs); saturated keeps it.
    data = {(False, False): 1.0, (True, False): 4.0, (False, True): 2.0, (True, True): 9.0}
    rows = [({"a": a, "b": b}, y) for (a, b), y in data.items()]
    assert [e.term for e in factorial_effects(rows, ["a", "b"])] == ["a", "b"]
    by = {e.term: e for e in factorial_effects(rows, ["a", "b"], saturated=True)}
    # a: ((4 − 1) + (9 − 2)) / 2 = 5; a:b: ((9 − 2) − (4 − 1)) / 2 = 2
    assert by["a"].estimate == pytest.approx(5.0)
    assert by["a:b"].estimate == pytest.approx(2.0)
    assert math.isnan(by["a"].ci_low) and math.isnan(by["a:b"].p_value)


def test_factorial_missing_flag_is_an_error():
    with pytest.raises(ValueError, match="'b'"):
        factorial_effects([({"a": True}, 1.0)], ["a", "b"])


# --------------------------------------------------------------------------- Shapley


def _brute_shapley(v, features):
    """Average marginal contribution over every ordering (the definition)."""
    out = dict.fromkeys(features, 0.0)
    orders = list(permutations(features))
    for order in orders:
        have: frozenset[str] = frozenset()
        for f in order:
            out[f] += v[have | {f}] - v[have]
            have = have | {f}
    return {f: out[f] / len(orders) for f in features}


def _table(fn):
    return {frozenset(f for f, on in _flags(bits).items() if on): fn(_flags(bits))
            for bits in product([False, True], repeat=3)}


def test_shapley_additive_equals_main_effects():
    v = _table(lambda s: 50 + 3 * s["a"] + 1 * s["b"] - 2 * s["c"])
    phi = shapley_values(v, FEATURES)
    assert phi == pytest.approx({"a": 3.0, "b": 1.0, "c": -2.0})


def test_shapley_interaction_splits_equally_and_efficiency():
    # 0/1 interaction of 4 between a and b, 3-way of 6: each split equally among its members
    v = _table(lambda s: 50 + 3 * s["a"] + 1 * s["b"] + 2 * s["c"]
               + 4 * (s["a"] and s["b"]) + 6 * (s["a"] and s["b"] and s["c"]))
    phi = shapley_values(v, FEATURES)
    assert phi == pytest.approx({"a": 3 + 2 + 2, "b": 1 + 2 + 2, "c": 2 + 2})
    assert phi == pytest.approx(_brute_shapley(v, FEATURES))
    assert sum(phi.values()) == pytest.approx(v[frozenset(FEATURES)] - v[frozenset()])


def test_shapley_missing_subset_is_named():
    v = _table(lambda s: float(s["a"]))
    del v[frozenset({"a", "c"})]
    with pytest.raises(ValueError, match=r"\{a, c\}"):
        shapley_values(v, FEATURES)


def test_shapley_from_effects_fills_a_missing_cell():
    def fn(s):
        return 50 + 3 * s["a"] + 1 * s["b"] + 2 * s["c"] + 4 * (s["a"] and s["b"])

    v = _table(fn)
    expected = shapley_values(v, FEATURES)  # a: 5, b: 3, c: 2
    assert expected == pytest.approx({"a": 5.0, "b": 3.0, "c": 2.0})
    # every cell twice (replicates), except the all-on cell which was never run
    rows = [(_flags(bits), fn(_flags(bits)))
            for bits in product([False, True], repeat=3) if not all(bits)] * 2
    assert shapley_from_effects(rows, FEATURES) == pytest.approx(expected)
    # with the full table the observed cell means are used as they are
    full = [(_flags(bits), fn(_flags(bits)) + d)
            for bits in product([False, True], repeat=3) for d in (-1.0, 1.0)]
    assert shapley_from_effects(full, FEATURES) == pytest.approx(expected)
