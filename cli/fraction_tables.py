"""A fractional design for `bionic ablate --dry-run`: letters, generators, defining relation
and the alias structure of every main effect and two-factor interaction."""

from __future__ import annotations

from typing import Any

from bionic_cli.console import print_wide
from rich.table import Table

_ROMAN = {3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII", 8: "VIII", 9: "IX"}


def fraction_title(record: dict[str, Any]) -> str:
    """"2^(8−2) fraction, resolution V: 64 of 256 configurations"."""
    k, p, r = record["factors"], record["p"], record["resolution"]
    resolution = "full factorial" if r is None else f"resolution {_ROMAN.get(r, r)}"
    return (f"2^({k}−{p}) fraction, {resolution}: {record['runs']} of {2 ** k} "
            "configurations")


def print_fraction(record: dict[str, Any]) -> None:
    """The letters and the defining relation, then one row per main effect and two-factor
    interaction with the effects it is aliased with (shortest first)."""
    letters = ", ".join(f"{letter} = {name}" for letter, name in record["letters"].items())
    generators = ", ".join(record["generators"]) or "none (every combination is run)"
    relation = " = ".join(["I", *record["defining_relation"]])
    table = Table(title=f"{fraction_title(record)}\nfactors: {letters}\ngenerators: "
                        f"{generators}; defining relation: {relation}")
    for column in ("effect", "term", "aliased with (shortest)", "longer aliases"):
        table.add_column(column)
    for alias in record["aliases"]:
        table.add_row(alias["effect"], alias["term"], " = ".join(alias["aliased_with"]) or "—",
                      str(alias["longer"]))
    print_wide(table)
