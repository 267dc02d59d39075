"""Multiple-comparison control, detectable effects, the per-image McNemar test, the seed
bootstrap and per-class values with undefined precision — against hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bionic_core.studies.multiple_testing import family_size, holm
from bionic_core.studies.paired_images import exact_mcnemar, pooled_mcnemar
from bionic_core.studies.per_class import class_value, per_class
from bionic_core.studies.power import detectable_effect
from bionic_core.studies.seed_bootstrap import bootstrap_ci
from bionic_core.training.metrics import classification_metrics, read_per_image

# --------------------------------------------------------------------------- Holm


def test_holm_against_a_hand_computed_family():
    # sorted: 0.005 (×4 = 0.02), 0.01 (×3 = 0.03), 0.03 (×2 = 0.06), 0.04 (×1 = 0.04 → the
    # running maximum keeps 0.06)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # an undefined p is not a test: it stays nan and m stays 4
    adjusted = holm([0.01, math.nan, 0.04, 0.03, 0.005])
    assert math.isnan(adjusted[1])
    assert [adjusted[i] for i in (0, 2, 3, 4)] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert family_size([0.01, math.nan, 0.04]) == 2
    # capped at 1, monotone in the raw p
    assert holm([0.6, 0.7]) == [1.0, 1.0]
    assert holm([0.4, 0.5]) == pytest.approx([0.8, 0.8])
    assert holm([]) == [] and holm([0.02]) == [0.02]
    with pytest.raises(ValueError):
        holm([1.5])


def test_holm_on_fourteen_leave_one_out_tests_with_two_dof():
    # The case: 14 comparisons; the smallest raw p (0.01) becomes 14 × 0.01 = 0.14.
    p = [0.01] + [0.2] * 13
    adjusted = holm(p)
    assert adjusted[0] == pytest.approx(0.14)
    assert all(a == pytest.approx(1.0) for a in adjusted[1:])  # 13 × 0.2 > 1


# --------------------------------------------------------------------------- detectable effect

# For 2 degrees of freedom Student's t has the closed-form quantile
# t_q = (2q − 1) / sqrt(2 q (1 − q)).
def _t2(q: float) -> float:
    return (2 * q - 1) / math.sqrt(2 * q * (1 - q))


def test_detectable_effect_against_hand_computation():
    # n = 3 seeds, spread of the paired differences s_d = 1 pp: SE = 1 / sqrt(3) pp
    se = 0.01 / math.sqrt(3)
    assert _t2(0.975) == pytest.approx(4.302652729911275)
    assert _t2(0.8) == pytest.approx(1.0606601717798212)
    raw = (4.302652729911275 + 1.0606601717798212) * se  # = 3.0965 pp
    assert detectable_effect(se, 2) == pytest.approx(raw)
    assert raw == pytest.approx(0.030965, abs=1e-6)
    # after Holm over 12 comparisons: α / m = 0.05 / 12, t(1 − 0.05/24, 2) = 15.4435
    holm12 = (_t2(1 - 0.05 / 24) + _t2(0.8)) * se
    assert _t2(1 - 0.05 / 24) == pytest.approx(15.4435, abs=1e-4)
    assert detectable_effect(se, 2, alpha=0.05 / 12) == pytest.approx(holm12)
    # n = 5: t(0.975, 4) = 2.776445105, t(0.8, 4) = 0.940964683 (printed tables)
    se5 = 0.004 / math.sqrt(5)
    assert detectable_effect(se5, 4) == pytest.approx((2.776445105 + 0.940964683) * se5)


def test_detectable_effect_undefined_without_spread_or_dof():
    assert math.isnan(detectable_effect(math.nan, 2))
    assert math.isnan(detectable_effect(0.0, 2))
    assert math.isnan(detectable_effect(0.01, math.nan))
    with pytest.raises(ValueError):
        detectable_effect(0.01, 2, alpha=0.0)


# --------------------------------------------------------------------------- McNemar


def test_exact_mcnemar_by_hand():
    # b = 1, c = 6: 2 · P(X ≤ 1 | n = 7, ½) = 2 · (1 + 7) / 128 = 0.125
    assert exact_mcnemar(1, 6) == pytest.approx(0.125)
    assert exact_mcnemar(6, 1) == pytest.approx(0.125)
    # b = 0, c = 5: 2 / 32
    assert exact_mcnemar(0, 5) == pytest.approx(0.0625)
    # balanced: 2 · P(X ≤ 5 | 10) > 1, capped at 1; no discordant image: no difference
    assert exact_mcnemar(5, 5) == 1.0 and exact_mcnemar(0, 0) == 1.0


def test_pooled_mcnemar_sums_discordant_counts_over_seeds():
    t, f = True, False
    # (this model correct, reference correct) per image. Seed 0: images 0 and 4 right only
    # here (b = 2), images 1 and 2 right only in the reference (c = 2).
    seed0 = (np.array([t, f, f, t, t, f]), np.array([f, t, t, t, f, f]))
    seed1 = (np.array([f, f, f, t]), np.array([t, t, t, t]))  # b = 0, c = 3
    result = pooled_mcnemar([seed0, seed1])
    assert (result.only_this, result.only_reference) == (2, 5)
    assert result.images == 10 and result.seeds == 2
    assert result.delta == pytest.approx((2 - 5) / 10)
    # 2 · P(X ≤ 2 | n = 7, ½) = 2 · (1 + 7 + 21) / 128
    assert result.p_value == pytest.approx(2 * 29 / 128)
    with pytest.raises(ValueError):
        pooled_mcnemar([(np.array([t, f]), np.array([t]))])


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_percentile_ci_of_three_seeds():
    # Paired differences 1, 2, 3: a resampled mean is 1 with probability 1/27 ≈ 3.7 % and 3
    # with 1/27, both above 2.5 %, so the 95 % percentile interval is exactly [1, 3].
    lo, hi = bootstrap_ci([1.0, 2.0, 3.0])
    assert (lo, hi) == (1.0, 3.0)
    # undefined: one seed, or no spread on any side
    assert all(math.isnan(v) for v in bootstrap_ci([0.5]))
    assert all(math.isnan(v) for v in bootstrap_ci([1.0, 1.0], [0.0, 0.0]))
    # unpaired: the difference of the means lies between the extreme resamples
    lo, hi = bootstrap_ci([3.0, 4.0], [1.0, 1.0])
    assert 2.0 <= lo <= hi <= 3.0


# --------------------------------------------------------------------------- per class


def test_undefined_precision_is_left_out_of_the_mean():
    values = {"test_recall_Disgust": [0.1, 0.0, 0.2],
              "test_precision_Disgust": [0.5, math.nan, 0.3],  # never predicted on seed 1
              "test_recall_Happy": [0.8, 0.9, 0.7],
              "test_precision_Happy": [0.6, 0.6, 0.9],
              "val_recall_Happy": [0.1, 0.1, 0.1],
              "test_public_recall_Happy": [0.0, 0.0, 0.0]}
    out = per_class(values, "test")
    assert list(out) == ["Disgust", "Happy"]  # the dataset's class order
    disgust = out["Disgust"]["precision"]
    # mean of 0.5 and 0.3 (not (0.5 + 0 + 0.3) / 3 = 0.267), std sqrt(0.02), on 2 of 3 seeds
    assert disgust.mean == pytest.approx(0.4) and disgust.std == pytest.approx(math.sqrt(0.02))
    assert (disgust.n, disgust.seeds) == (2, 3)
    assert out["Disgust"]["recall"].mean == pytest.approx(0.1)
    assert out["Happy"]["recall"].n == 3 and out["Happy"]["recall"].mean == pytest.approx(0.8)
    never = class_value([math.nan, math.nan])
    assert math.isnan(never.mean) and never.n == 0 and never.seeds == 2


def test_a_class_never_predicted_has_no_precision_and_predictions_are_kept():
    # predictions: 0, 0, 2, 2 for labels 0, 1, 2, 2 — class 1 is never predicted
    logits = torch.tensor([[5.0, 0, 0], [5.0, 0, 0], [0, 0, 5.0], [0, 0, 5.0]])
    labels = torch.tensor([0, 1, 2, 2])
    m = classification_metrics(logits, labels, ("a", "b", "c"))
    assert m["per_class"]["b"]["precision"] is None  # 0 of 0 predictions: undefined
    assert m["per_class"]["b"]["recall"] == 0.0 and m["per_class"]["b"]["f1"] == 0.0
    assert m["per_class"]["a"]["precision"] == 0.5  # 1 of the 2 predicted a's is right
    assert m["per_image"] == {"labels": "0122", "predictions": "0022"}
    got_labels, got_predictions = read_per_image(m["per_image"])
    assert got_labels.tolist() == [0, 1, 2, 2] and got_predictions.tolist() == [0, 0, 2, 2]
