"""A null ladder's pooled rows: each wiring control drawn more than once (``degree_preserving#0``
… ``#4``) as one row whose value for a seed is the mean over its draws with that seed, so that
its Δ versus the reference (paired by seed: the reference and every draw of a seed start from
the same initial weights) asks whether the reference's wiring beats that kind of graph, not one
sample of it."""

from __future__ import annotations

import math

from bionic_core.studies.comparison_model import Row, SweepInfo
from bionic_core.studies.designs import DRAW_MARK, control_kind

LADDER = "null-ladder"
POOLED = " (mean of {n} draws)"  # a pooled row's name: "degree_preserving (mean of 5 draws)"


def _seed_means(draws: list[Row]) -> tuple[list[int], dict[str, list[float]]]:
    """The seeds every draw finished, and per value the mean over the draws of each seed (nan
    where a draw lacks the value)."""
    seeds = [s for s in draws[0].seeds if all(s in d.seeds for d in draws[1:])]
    names = {name for d in draws for name in d.values}
    values: dict[str, list[float]] = {}
    for name in sorted(names):
        values[name] = [sum(_value(d, name, seed) for d in draws) / len(draws) for seed in seeds]
    return seeds, values


def _value(row: Row, name: str, seed: int) -> float:
    """A row's value ``name`` of ``seed`` (its lists are aligned with its seeds), nan if none."""
    column = row.values.get(name, [])
    i = row.seeds.index(seed)
    return column[i] if i < len(column) else math.nan


def pooled_rows(sweeps: list[SweepInfo], rows: list[Row]) -> list[Row]:
    """One pooled row per control of a null-ladder sweep with two or more draws (their seeds:
    those every draw finished); its draws are marked ``descriptive`` (their Δ is shown, the
    control's test is the pooled row's, so Holm's family is the ladder's controls)."""
    pooled: list[Row] = []
    for sweep in sweeps:
        if sweep.design != LADDER:
            continue
        kinds: dict[str, list[Row]] = {}
        for r in rows:
            if r.sweep_id == sweep.sweep_id and DRAW_MARK in r.name:
                kinds.setdefault(control_kind(r.name), []).append(r)
        for kind, draws in kinds.items():
            if len(draws) < 2:
                continue
            first = draws[0]
            row = Row(kind + POOLED.format(n=len(draws)), f"pooled:{kind}", sweep.sweep_id,
                      first.features, first.removed, first.added, first.group,
                      sorted(set.intersection(*(set(d.planned_seeds) for d in draws))))
            row.seeds, row.values = _seed_means(draws)
            row.run_ids = ["" for _ in row.seeds]  # its runs are the draws' rows
            row.n_parameters = first.n_parameters
            for d in draws:
                row.datasets |= d.datasets
                row.provenance |= d.provenance
                d.descriptive = True  # tested through the pooled row, not on its own
            pooled.append(row)
    return pooled
