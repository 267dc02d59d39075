"""Comparing an ablation sweep's configurations from MLflow: seed statistics, Δ versus the
reference (paired by seed when the seeds match, Welch otherwise) with Holm-adjusted p-values
and minimum detectable effects over each sweep's family of comparisons, per-class recall and
precision, factorial (and fractional-factorial) effects, Shapley values.

This module computes a :class:`Comparison`; :mod:`bionic_core.studies.comparison_render`
turns one into tables, text formats and a plot.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from bionic_core.contract.errors import BionicError
from bionic_core.studies.comparison_effects import FACTORIAL_DESIGNS, factorial_analysis
from bionic_core.studies.comparison_family import (
    add_bootstrap,
    add_deltas,
    adjust_families,
    finite_values,
    warn_few_seeds,
)
from bionic_core.studies.comparison_ladder import pooled_rows
from bionic_core.studies.comparison_model import Comparison, Row, SweepInfo
from bionic_core.studies.per_class import per_class
from bionic_core.studies.stats import summarize
from bionic_core.studies.sweep_records import (
    PARENT,
    TAG_CONFIG_KEY,
    TAG_CONFIGURATION,
    TAG_DESIGN,
    TAG_RUN_KEYS,
    TAG_SWEEP,
    search_runs,
)
from bionic_core.studies.tracking import (
    TAG_DATA_FINGERPRINT,
    TAG_KEY,
    TAG_KIND,
    TAG_PROVENANCE,
    Tracker,
)

__all__ = ["Comparison", "Row", "SweepInfo", "add_seed", "analyse", "collect", "compare",
           "find_sweep", "run_dataset", "run_provenance"]

METRICS = ("accuracy", "macro_f1")
SPLITS = ("test", "val")  # test: the primary test split (final_test_*)
CI_METHODS = ("t", "bootstrap")


# ============================================================================ finding sweeps


def _split_tag(value: str | None) -> tuple[str, ...]:
    return tuple(v for v in (value or "").split(",") if v)


def _sweep_info(run: Any, experiment: str) -> SweepInfo:
    tags = run.data.tags
    try:
        dropped = tuple(tuple(d) for d in json.loads(tags.get("bionic.dropped", "[]")))
    except ValueError:  # truncated tag
        dropped = ()
    return SweepInfo(run.info.run_id, tags.get(TAG_SWEEP, ""),
                     tags.get("bionic.sweep_name", run.info.run_name or ""), experiment,
                     run.info.experiment_id, tags.get(TAG_DESIGN, ""),
                     tags.get("bionic.anchor", ""), _split_tag(tags.get("bionic.factors")),
                     dropped, run.info.start_time or 0)


_IS_SWEEP = f"tags.`{TAG_KIND}` = 'sweep'"
_NEWEST_FIRST = ["attributes.start_time DESC"]


def _sweep_runs_named(tracker: Tracker, ids: list[str], target: str) -> list[Any]:
    """The sweep runs ``target`` names by sweep id (or a prefix), run id or sweep name."""
    candidates: list[Any] = []
    if re.fullmatch(r"[0-9a-f]{4,12}", target):
        candidates = search_runs(tracker, ids, f"{_IS_SWEEP} and tags.`{TAG_SWEEP}` "
                                               f"LIKE '{target}%'")
    if not candidates and re.fullmatch(r"[0-9a-f]{32}", target):
        candidates = search_runs(tracker, ids, f"{_IS_SWEEP} and attributes.run_id = "
                                               f"'{target}'")
    if not candidates and "'" not in target:
        candidates = search_runs(tracker, ids, f"{_IS_SWEEP} and tags.`bionic.sweep_name` "
                                               f"= '{target}'")
    sweep_ids = sorted({r.data.tags.get(TAG_SWEEP, "") for r in candidates})
    if len(sweep_ids) > 1:
        raise BionicError(f"{target}: ambiguous sweep id prefix (matches "
                          f"{', '.join(sweep_ids[:5])}); give more digits")
    return candidates


def _latest_sweep_of(tracker: Tracker, experiments: dict[str, str], target: str) -> SweepInfo:
    """The most recent sweep of the experiment named ``target``."""
    experiment = next((i for i, name in experiments.items() if name == target), None)
    if experiment is None:
        sweeps = search_runs(tracker, list(experiments), _IS_SWEEP, order_by=_NEWEST_FIRST)
        known = ", ".join(dict.fromkeys(
            f"{experiments.get(r.info.experiment_id)} ({r.data.tags.get(TAG_SWEEP)})"
            for r in sweeps[:8])) or "none"
        raise BionicError(f"{target}: unknown experiment or sweep id in {tracker.uri} "
                          f"(sweeps: {known})")
    sweeps = search_runs(tracker, [experiment], _IS_SWEEP, order_by=_NEWEST_FIRST)
    if not sweeps:
        raise BionicError(f"{target}: the experiment has no ablation sweep in {tracker.uri} "
                          f"(run `bionic ablate {target}` first)")
    return _sweep_info(sweeps[0], target)


def find_sweep(tracker: Tracker, target: str) -> SweepInfo:
    """A sweep by id (or unique prefix of 4+ hex digits), sweep name, sweep run id, or an
    experiment name (its most recent sweep)."""
    with tracker.contact():
        experiments = tracker.experiments()
        if not experiments:
            raise BionicError(f"{target}: unknown experiment or sweep id "
                              f"(the tracking store {tracker.uri} is empty)")
        candidates = _sweep_runs_named(tracker, list(experiments), target)
        if candidates:
            run = max(candidates, key=lambda r: r.info.start_time or 0)
            return _sweep_info(run, experiments.get(run.info.experiment_id, ""))
        return _latest_sweep_of(tracker, experiments, target)


# ============================================================================ collecting


def _latest_finished(tracker: Tracker, sweep: SweepInfo) -> dict[str, Any]:
    """The latest finished run of each run key in the sweep's MLflow experiment."""
    finished: dict[str, Any] = {}
    for run in search_runs(tracker, [sweep.experiment_id],
                           f"tags.`{TAG_KEY}` LIKE '%' and attributes.status = 'FINISHED'",
                           order_by=["attributes.start_time ASC"]):
        finished[run.data.tags[TAG_KEY]] = run
    return finished


def _seed_values(metrics: dict[str, float]) -> dict[str, float]:
    """The values a row keeps of one seed run: ``<split>_<metric>`` and the per-class
    ``<split>_recall_<class>`` / ``<split>_precision_<class>`` (precision is not logged where
    the class was never predicted); other final metrics (``final_test_public_*``, ...) are
    left alone."""
    out: dict[str, float] = {}
    for split in SPLITS:
        for m in METRICS:
            if f"final_{split}_{m}" in metrics:
                out[f"{split}_{m}"] = metrics[f"final_{split}_{m}"]
        for key, value in metrics.items():
            for measure in ("recall", "precision"):
                if key.startswith(f"final_{split}_{measure}_"):
                    out[key.removeprefix("final_")] = value
    return out


def _append_seed(row: Row, seed: int, run_id: str, found: dict[str, float]) -> None:
    """One more seed on the row with its values; every list of ``row.values`` stays aligned
    with ``row.seeds`` (nan where a seed lacks a value)."""
    row.seeds.append(seed)
    row.run_ids.append(run_id)
    for name in [*row.values, *(k for k in found if k not in row.values)]:
        values = row.values.setdefault(name, [])
        values.extend([math.nan] * (len(row.seeds) - 1 - len(values)))
        values.append(found.get(name, math.nan))


def add_seed(row: Row, seed: int, run_id: str, metrics: dict[str, float],
             dataset: tuple[str, str, bool], provenance: dict[str, str]) -> None:
    """A finished seed run added to its configuration's row: its ``final_*`` metrics, its
    dataset (name, fingerprint, is demo) and its features' provenance (feature → code)."""
    _append_seed(row, seed, run_id, _seed_values(metrics))
    row.datasets.add(dataset)
    row.provenance |= set(provenance.items())


def run_dataset(tags: dict[str, str]) -> tuple[str, str, bool]:
    """A seed run's dataset from its tags: name, fingerprint, is demo."""
    return (tags.get("bionic.dataset", "?"), tags.get(TAG_DATA_FINGERPRINT, "?"),
            tags.get("bionic.dataset_is_demo") == "True")


def run_provenance(tags: dict[str, str]) -> dict[str, str]:
    """A seed run's feature provenance from its tag: feature → what its code is."""
    return dict(part.split("=", 1) for part in tags.get(TAG_PROVENANCE, "").split("; ")
                if "=" in part)


def _add_seed_run(row: Row, seed: int, run: Any) -> None:
    """A finished MLflow seed run, added to its configuration's row."""
    tags = run.data.tags
    add_seed(row, seed, run.info.run_id, run.data.metrics, run_dataset(tags),
             run_provenance(tags))


def _row(config: Any, sweep: SweepInfo, finished: dict[str, Any]) -> Row:
    """A configuration run's row, with its seeds' finished runs."""
    tags = config.data.tags
    keys = [item.split(":", 1) for item in _split_tag(tags.get(TAG_RUN_KEYS))]
    features = tags.get("bionic.features", "")
    row = Row(tags.get(TAG_CONFIGURATION, config.info.run_name or "?"),
              tags.get(TAG_CONFIG_KEY, ""), sweep.sweep_id,
              () if features == "(none)" else _split_tag(features),
              _split_tag(tags.get("bionic.removed")), _split_tag(tags.get("bionic.added")),
              tags.get("bionic.group", "none"), [int(s) for s, _ in keys])
    runs = [(int(seed), finished[key]) for seed, key in keys if key in finished]
    for seed, run in runs:
        _add_seed_run(row, seed, run)
    metrics = [run.data.metrics for _, run in runs]
    params = [m["final_n_parameters"] for m in metrics if "final_n_parameters" in m]
    seconds = [m["final_train_seconds"] for m in metrics if "final_train_seconds" in m]
    row.n_parameters = max(params) if params else None
    row.train_seconds = sum(seconds) / len(seconds) if seconds else None
    return row


def _collect_rows(tracker: Tracker, sweep: SweepInfo) -> list[Row]:
    configs = search_runs(tracker, [sweep.experiment_id],
                          f"tags.`{PARENT}` = '{sweep.run_id}' and "
                          f"tags.`{TAG_KIND}` = 'configuration'")
    configs.sort(key=lambda r: int(r.data.tags.get("bionic.order", "0")))
    finished = _latest_finished(tracker, sweep)
    return [_row(config, sweep, finished) for config in configs]


def merge_rows(per_sweep: list[list[Row]]) -> list[Row]:
    """Rows of several sweeps: one row per configuration key (the seeds of a configuration in
    several sweeps are pooled, each seed once); clashing names get @sweep."""
    merged: dict[str, Row] = {}
    for rows in per_sweep:
        for row in rows:
            first = merged.get(row.config_key)
            if first is not None:
                for i, seed in enumerate(row.seeds):
                    if seed not in first.seeds:
                        _append_seed(first, seed, row.run_ids[i],
                                     {name: values[i] for name, values in row.values.items()})
                first.planned_seeds += [s for s in row.planned_seeds
                                        if s not in first.planned_seeds]
                first.datasets |= row.datasets
                first.provenance |= row.provenance
                continue
            if any(r.name == row.name for r in merged.values()):
                row.name = f"{row.name}@{row.sweep_id[:6]}"
            merged[row.config_key] = row
    return list(merged.values())


# ============================================================================ statistics


def _check_datasets(rows: list[Row], force: bool, notes: list[str]) -> None:
    """Refuse runs trained on different datasets, unless ``force`` (then say so in a note)."""
    fingerprints = {fp for r in rows for _, fp, _ in r.datasets}
    if len(fingerprints) <= 1:
        return
    where = "; ".join(f"{r.name}: " + ", ".join(f"{n} ({fp})" for n, fp, _ in
                                                 sorted(r.datasets)) for r in rows
                      if r.datasets)
    if not force:
        raise BionicError(f"compare: the runs were trained on different datasets ({where}); "
                          "pass --force to compare them anyway")
    notes.append(f"--force: runs from {len(fingerprints)} different datasets are compared")


def _check_provenance(rows: list[Row], force: bool, notes: list[str]) -> None:
    """Refuse to compare runs whose features ran different code (a feature's version or, for
    an editable install, its source changed between them), unless ``force``."""
    versions: dict[str, set[str]] = {}
    for row in rows:
        for feature, what in row.provenance:
            versions.setdefault(feature, set()).add(what)
    mixed = {f: sorted(v) for f, v in sorted(versions.items()) if len(v) > 1}
    if not mixed:
        return
    where = "; ".join(f"{f}: {' vs '.join(v)}" for f, v in mixed.items())
    if not force:
        raise BionicError(f"compare: the runs used different code of a feature ({where}); "
                          "rerun them with one version, or pass --force to compare them anyway")
    notes.append(f"--force: runs with different feature code are compared ({where})")


def _split_of(rows: list[Row], metric: str) -> str:
    """"test" when every configuration with runs has a test value of each run, else "val"."""
    with_runs = [r for r in rows if r.seeds]
    return "test" if with_runs and all(
        all(math.isfinite(v) for v in r.values.get(f"test_{metric}", [math.nan]))
        for r in with_runs) else "val"


def _dataset(rows: list[Row]) -> dict[str, Any]:
    datasets = {d for r in rows for d in r.datasets}
    return {"names": sorted({n for n, _, _ in datasets}),
            "fingerprints": sorted({fp for _, fp, _ in datasets}),
            "is_demo": any(d for _, _, d in datasets)}


def _find_sweeps(tracker: Tracker, targets: Sequence[str]) -> list[SweepInfo]:
    sweeps: list[SweepInfo] = []
    for target in targets:
        sweep = find_sweep(tracker, target)
        if all(s.sweep_id != sweep.sweep_id for s in sweeps):
            sweeps.append(sweep)
    return sweeps


def compare(tracker: Tracker, targets: Sequence[str], *, metric: str = "accuracy",
            force: bool = False, confidence: float = 0.95, ci: str = "t") -> Comparison:
    """Collect the sweeps named by ``targets`` and compute every configuration's statistics:
    Δ versus the reference with its t-test (``ci="bootstrap"`` adds a bootstrap CI), Holm over
    each sweep's comparisons, detectable effects, per-class values, factorial effects."""
    _check_options(metric, ci)
    sweeps, per_sweep = collect(tracker, targets)
    return analyse(sweeps, merge_rows(per_sweep), metric=metric, force=force,
                   confidence=confidence, ci=ci)


def _check_options(metric: str, ci: str) -> None:
    if metric not in METRICS:
        raise BionicError(f"--metric {metric}: expected one of {', '.join(METRICS)}")
    if ci not in CI_METHODS:
        raise BionicError(f"--ci {ci}: expected one of {', '.join(CI_METHODS)}")


def collect(tracker: Tracker, targets: Sequence[str]) -> tuple[list[SweepInfo], list[list[Row]]]:
    """The sweeps named by ``targets`` and, for each, its configurations' rows with their
    latest finished seed runs (no statistics yet)."""
    sweeps = _find_sweeps(tracker, targets)
    with tracker.contact():
        return sweeps, [_collect_rows(tracker, s) for s in sweeps]


def analyse(sweeps: list[SweepInfo], rows: list[Row], *, metric: str = "accuracy",
            force: bool = False, confidence: float = 0.95, ci: str = "t",
            one_family: bool = False) -> Comparison:
    """Every statistic of :func:`compare` on rows already collected (from MLflow, or from
    exported results); ``one_family``: Holm over every row's comparison at once, not per
    sweep (a comparison built across sweeps)."""
    _check_options(metric, ci)
    notes: list[str] = []
    _check_datasets(rows, force, notes)
    _check_provenance(rows, force, notes)
    split = _split_of(rows, metric)
    rows = [*rows, *pooled_rows(sweeps, rows)]
    for r in rows:
        if not r.seeds:
            notes.append(f"{r.name}: no finished run yet")
        r.summaries = {m: summarize(finite_values(r, f"{split}_{m}")[0], confidence)
                       for m in METRICS}
        r.per_class = per_class(r.values, split)
    anchor = sweeps[0].anchor
    reference = next((r for r in rows if r.name == anchor and r.sweep_id == sweeps[0].sweep_id),
                     None)
    column = f"{split}_{metric}"
    comparison = Comparison(sweeps, split, metric, reference.name if reference else None, rows,
                            _dataset(rows), notes=notes, confidence=confidence, ci_method=ci)
    if reference is not None and reference.seeds:
        add_deltas(rows, reference, column, confidence)
        if ci == "bootstrap":
            add_bootstrap(rows, reference, column, confidence)
    elif reference is not None:
        notes.append(f"reference {anchor}: no finished run, so no Δ")
    adjust_families(comparison, one_family)
    warn_few_seeds(comparison)
    factorial = next((s for s in sweeps if s.design in FACTORIAL_DESIGNS and s.factors), None)
    if factorial is not None:
        comparison.factorial = factorial_analysis(comparison, factorial, column)
    return comparison
