"""Synapses per ordered cell pair (lambda) -> connection probability, in one documented way."""

from __future__ import annotations

import numpy as np

from bionic_core.contract.errors import BionicError

# Mean synapses per connected pair in the column at v1718: 146,711 column synapses over 78,928
# connected ordered pairs (AllenInstitute/connectomics_at_cosyne, Cosyne_Data_Access notebook).
SYNAPSES_PER_CONNECTION = 146_711 / 78_928

CONVERSIONS = {
    "poisson": "p = 1 - exp(-lambda): the chance of at least one synapse when a pair's synapses "
               "are Poisson with mean lambda (an upper bound for clustered, multi-synapse "
               "connections)",
    "per_connection": f"p = min(1, lambda / {SYNAPSES_PER_CONNECTION:.2f}): lambda divided by "
                      "the column's measured mean synapses per connection (146,711 synapses / "
                      "78,928 connected pairs at v1718)",
}


def check_conversion(conversion: str) -> str:
    if conversion not in CONVERSIONS:
        raise BionicError(f"connectome.conversion: {conversion!r} is not one of "
                          f"{', '.join(CONVERSIONS)}")
    return conversion


def connection_probability(synapses_per_pair: float, conversion: str) -> float:
    """The probability that an ordered pair is connected, from its mean synapse count."""
    lam = float(synapses_per_pair)
    if check_conversion(conversion) == "poisson":
        return float(-np.expm1(-lam))
    return min(1.0, lam / SYNAPSES_PER_CONNECTION)
