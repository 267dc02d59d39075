"""Power, stated: the smallest effect a t-test would detect, given its spread and n.

For a t statistic with standard error SE on ν degrees of freedom, a two-sided test at level α
has power 1 − β against a true difference of

    MDE = (t₍₁₋α/2, ν₎ + t₍₁₋β, ν₎) · SE

(the usual approximation with central t quantiles). For a paired test over n seeds,
SE = s_d / √n with s_d the standard deviation of the per-seed differences and ν = n − 1; for
Welch's test SE = √(s₁²/n₁ + s₂²/n₂) on the Welch–Satterthwaite ν. A row whose |Δ| is below
its MDE could hide a real effect of that size.
"""

from __future__ import annotations

import math

from scipy import stats as _st

POWER = 0.8
ALPHA = 0.05


def detectable_effect(se: float, dof: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The minimum detectable effect (same units as ``se``); nan when ``se`` or ``dof`` is
    undefined (fewer than two seeds, or no spread)."""
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError(f"alpha and power must lie in (0, 1), got {alpha!r}, {power!r}")
    if not (math.isfinite(se) and se > 0.0 and math.isfinite(dof) and dof > 0.0):
        return math.nan
    return float((_st.t.ppf(1.0 - alpha / 2.0, dof) + _st.t.ppf(power, dof)) * se)
