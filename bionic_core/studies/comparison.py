"""Comparing an ablation sweep's configurations from MLflow: seed statistics, Δ versus the
reference (paired by seed when the seeds match, Welch otherwise), factorial effects, Shapley."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bionic_core.contract.errors import BionicError
from bionic_core.studies.stats import (
    Difference,
    Summary,
    difference,
    factorial_effects,
    shapley_from_effects,
    summarize,
)
from bionic_core.studies.sweep import (
    PARENT,
    TAG_CONFIG_KEY,
    TAG_CONFIGURATION,
    TAG_DESIGN,
    TAG_SWEEP,
)
from bionic_core.studies.tracking import TAG_KEY, TAG_KIND, Tracker

METRICS = ("accuracy", "macro_f1")
FORMATS = ("table", "markdown", "csv", "latex", "json")


@dataclass(frozen=True)
class SweepInfo:
    run_id: str
    sweep_id: str
    name: str
    experiment: str
    experiment_id: str
    design: str
    anchor: str
    factors: tuple[str, ...]
    dropped: tuple[tuple[str, str], ...]
    start_time: int


@dataclass
class Row:
    """One configuration: its finished seed runs and their statistics."""

    name: str
    config_key: str
    sweep_id: str
    features: tuple[str, ...]
    removed: tuple[str, ...]
    added: tuple[str, ...]
    group: str
    planned_seeds: list[int]
    seeds: list[int] = field(default_factory=list)  # seeds with a finished run
    run_ids: list[str] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)  # metric → per seed
    datasets: set[tuple[str, str, bool]] = field(default_factory=set)  # name, fingerprint, demo
    n_parameters: float | None = None
    train_seconds: float | None = None  # mean over seeds
    summaries: dict[str, Summary] = field(default_factory=dict)
    delta: Difference | None = None  # of the compared metric, versus the reference

    def as_dict(self) -> dict[str, Any]:
        return {
            "configuration": self.name, "features": list(self.features),
            "removed": list(self.removed), "added": list(self.added), "group": self.group,
            "config_key": self.config_key, "sweep_id": self.sweep_id,
            "planned_seeds": self.planned_seeds, "seeds": self.seeds, "run_ids": self.run_ids,
            "values": self.values,
            **{m: _summary_dict(s) for m, s in self.summaries.items()},
            "delta": None if self.delta is None else _clean(vars(self.delta)),
            "n_parameters": self.n_parameters, "train_seconds": self.train_seconds,
            "datasets": [{"name": n, "fingerprint": f, "is_demo": d}
                         for n, f, d in sorted(self.datasets)],
        }


@dataclass
class Comparison:
    sweeps: list[SweepInfo]
    split: str  # "test" or "val": where the compared metrics come from
    metric: str  # the metric of Δ and of the factorial analysis
    reference: str | None
    rows: list[Row]
    dataset: dict[str, Any]
    factorial: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return _clean({
            "sweeps": [{"sweep_id": s.sweep_id, "name": s.name, "run_id": s.run_id,
                        "experiment": s.experiment, "design": s.design, "anchor": s.anchor,
                        "factors": list(s.factors),
                        "dropped": [{"configuration": n, "reason": r} for n, r in s.dropped]}
                       for s in self.sweeps],
            "split": self.split, "metric": self.metric, "reference": self.reference,
            "dataset": self.dataset, "rows": [r.as_dict() for r in self.rows],
            "factorial": self.factorial, "notes": self.notes,
        })


def _clean(obj: Any) -> Any:
    """JSON-safe: nan/inf become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _summary_dict(s: Summary) -> dict[str, Any]:
    return {"mean": s.mean, "std": s.std, "n": s.n, "ci_low": s.ci_low, "ci_high": s.ci_high}


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


def _all_experiments(tracker: Tracker) -> dict[str, str]:
    out, token = {}, None
    while True:
        page = tracker.client.search_experiments(max_results=1000, page_token=token)
        out.update({e.experiment_id: e.name for e in page})
        token = page.token
        if not token:
            return out


def _search_all(tracker: Tracker, experiment_ids: list[str], filter_string: str,
                order_by: list[str] | None = None) -> list[Any]:
    runs, token = [], None
    while True:
        page = tracker.client.search_runs(experiment_ids, filter_string=filter_string,
                                          max_results=1000, order_by=order_by, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def find_sweep(tracker: Tracker, target: str) -> SweepInfo:
    """A sweep by id (or unique prefix of 4+ hex digits), sweep name, sweep run id, or an
    experiment name (its most recent sweep)."""
    with tracker.contact():
        experiments = _all_experiments(tracker)
        ids = list(experiments)
        if not ids:
            raise BionicError(f"{target}: unknown experiment or sweep id "
                              f"(the tracking store {tracker.uri} is empty)")
        is_sweep = f"tags.`{TAG_KIND}` = 'sweep'"
        candidates: list[Any] = []
        if re.fullmatch(r"[0-9a-f]{4,12}", target):
            candidates = _search_all(tracker, ids, f"{is_sweep} and tags.`{TAG_SWEEP}` "
                                                   f"LIKE '{target}%'")
        if not candidates and re.fullmatch(r"[0-9a-f]{32}", target):
            candidates = _search_all(tracker, ids, f"{is_sweep} and attributes.run_id = "
                                                   f"'{target}'")
        if not candidates and "'" not in target:
            candidates = _search_all(tracker, ids, f"{is_sweep} and tags.`bionic.sweep_name` "
                                                   f"= '{target}'")
        if candidates:
            sweep_ids = sorted({r.data.tags.get(TAG_SWEEP, "") for r in candidates})
            if len(sweep_ids) > 1:
                raise BionicError(f"{target}: ambiguous sweep id prefix (matches "
                                  f"{', '.join(sweep_ids[:5])}); give more digits")
            run = max(candidates, key=lambda r: r.info.start_time or 0)
            return _sweep_info(run, experiments.get(run.info.experiment_id, ""))
        experiment = next((i for i, name in experiments.items() if name == target), None)
        if experiment is None:
            sweeps = _search_all(tracker, ids, is_sweep, order_by=["attributes.start_time DESC"])
            known = ", ".join(dict.fromkeys(
                f"{experiments.get(r.info.experiment_id)} ({r.data.tags.get(TAG_SWEEP)})"
                for r in sweeps[:8])) or "none"
            raise BionicError(f"{target}: unknown experiment or sweep id in {tracker.uri} "
                              f"(sweeps: {known})")
        sweeps = _search_all(tracker, [experiment], is_sweep,
                             order_by=["attributes.start_time DESC"])
        if not sweeps:
            raise BionicError(f"{target}: the experiment has no ablation sweep in {tracker.uri} "
                              f"(run `bionic ablate {target}` first)")
        return _sweep_info(sweeps[0], target)


# ============================================================================ collecting


def _collect_rows(tracker: Tracker, sweep: SweepInfo) -> list[Row]:
    configs = _search_all(tracker, [sweep.experiment_id],
                          f"tags.`{PARENT}` = '{sweep.run_id}' and "
                          f"tags.`{TAG_KIND}` = 'configuration'")
    configs.sort(key=lambda r: int(r.data.tags.get("bionic.order", "0")))
    finished: dict[str, Any] = {}
    for run in _search_all(tracker, [sweep.experiment_id],
                           f"tags.`{TAG_KEY}` LIKE '%' and attributes.status = 'FINISHED'",
                           order_by=["attributes.start_time ASC"]):
        finished[run.data.tags[TAG_KEY]] = run  # the latest finished run of each key
    rows = []
    for config in configs:
        tags = config.data.tags
        keys = [item.split(":", 1) for item in _split_tag(tags.get("bionic.run_keys"))]
        features = tags.get("bionic.features", "")
        row = Row(tags.get(TAG_CONFIGURATION, config.info.run_name or "?"),
                  tags.get(TAG_CONFIG_KEY, ""), sweep.sweep_id,
                  () if features == "(none)" else _split_tag(features),
                  _split_tag(tags.get("bionic.removed")), _split_tag(tags.get("bionic.added")),
                  tags.get("bionic.group", "none"), [int(s) for s, _ in keys])
        params, seconds = [], []
        for seed, key in keys:
            run = finished.get(key)
            if run is None:
                continue
            row.seeds.append(int(seed))
            row.run_ids.append(run.info.run_id)
            metrics, rtags = run.data.metrics, run.data.tags
            for split_name in ("test", "val"):
                for m in METRICS:
                    if f"final_{split_name}_{m}" in metrics:
                        row.values.setdefault(f"{split_name}_{m}", []).append(
                            metrics[f"final_{split_name}_{m}"])
            row.datasets.add((rtags.get("bionic.dataset", "?"),
                              rtags.get("bionic.dataset_fingerprint", "?"),
                              rtags.get("bionic.dataset_is_demo") == "True"))
            if "final_n_parameters" in metrics:
                params.append(metrics["final_n_parameters"])
            if "final_train_seconds" in metrics:
                seconds.append(metrics["final_train_seconds"])
        row.n_parameters = max(params) if params else None
        row.train_seconds = sum(seconds) / len(seconds) if seconds else None
        rows.append(row)
    return rows


def _merge_rows(per_sweep: list[list[Row]]) -> list[Row]:
    """Rows of several sweeps: one row per configuration key (the seeds of a configuration in
    several sweeps are pooled, each seed once); clashing names get @sweep."""
    merged: dict[str, Row] = {}
    for rows in per_sweep:
        for row in rows:
            first = merged.get(row.config_key)
            if first is not None:
                for i, seed in enumerate(row.seeds):
                    if seed not in first.seeds:
                        first.seeds.append(seed)
                        first.run_ids.append(row.run_ids[i])
                        for name, values in row.values.items():
                            first.values.setdefault(name, []).append(values[i])
                first.planned_seeds += [s for s in row.planned_seeds
                                        if s not in first.planned_seeds]
                first.datasets |= row.datasets
                continue
            if any(r.name == row.name for r in merged.values()):
                row.name = f"{row.name}@{row.sweep_id[:6]}"
            merged[row.config_key] = row
    return list(merged.values())


def compare(tracker: Tracker, targets: Sequence[str], *, metric: str = "accuracy",
            force: bool = False, confidence: float = 0.95) -> Comparison:
    """Collect the sweeps named by ``targets`` and compute every configuration's statistics."""
    if metric not in METRICS:
        raise BionicError(f"--metric {metric}: expected one of {', '.join(METRICS)}")
    sweeps = []
    for target in targets:
        sweep = find_sweep(tracker, target)
        if all(s.sweep_id != sweep.sweep_id for s in sweeps):
            sweeps.append(sweep)
    with tracker.contact():
        rows = _merge_rows([_collect_rows(tracker, s) for s in sweeps])
    notes: list[str] = []
    datasets = {d for r in rows for d in r.datasets}
    fingerprints = {fp for _, fp, _ in datasets}
    if len(fingerprints) > 1:
        where = "; ".join(f"{r.name}: " + ", ".join(f"{n} ({fp})" for n, fp, _ in
                                                     sorted(r.datasets)) for r in rows
                          if r.datasets)
        if not force:
            raise BionicError(f"compare: the runs were trained on different datasets ({where}); "
                              "pass --force to compare them anyway")
        notes.append(f"--force: runs from {len(fingerprints)} different datasets are compared")
    with_runs = [r for r in rows if r.seeds]
    split = "test" if with_runs and all(f"test_{metric}" in r.values and
                                        len(r.values[f"test_{metric}"]) == len(r.seeds)
                                        for r in with_runs) else "val"
    for r in rows:
        if not r.seeds:
            notes.append(f"{r.name}: no finished run yet")
        r.summaries = {m: summarize(r.values.get(f"{split}_{m}", []), confidence)
                       for m in METRICS}
    anchor = sweeps[0].anchor
    reference = next((r for r in rows if r.name == anchor and r.sweep_id == sweeps[0].sweep_id),
                     None)
    column = f"{split}_{metric}"
    if reference is not None and reference.seeds:
        for r in rows:
            if r is not reference and r.seeds:
                r.delta = difference(r.values[column], reference.values[column],
                                     seeds=r.seeds, reference_seeds=reference.seeds,
                                     confidence=confidence)
    elif reference is not None:
        notes.append(f"reference {anchor}: no finished run, so no Δ")
    names = sorted({n for n, _, _ in datasets})
    dataset = {"names": names, "fingerprints": sorted(fingerprints),
               "is_demo": any(d for _, _, d in datasets)}
    comparison = Comparison(sweeps, split, metric, reference.name if reference else None, rows,
                            dataset, notes=notes)
    factorial = next((s for s in sweeps if s.design == "factorial" and s.factors), None)
    if factorial is not None:
        comparison.factorial = _factorial(rows, factorial, column, confidence, notes)
    return comparison


def _factorial(rows: list[Row], sweep: SweepInfo, column: str, confidence: float,
               notes: list[str]) -> dict[str, Any] | None:
    factors = list(sweep.factors)
    data = [({f: f in r.features for f in factors}, v)
            for r in rows if r.sweep_id == sweep.sweep_id for v in r.values.get(column, [])]
    if not data:
        return None
    out: dict[str, Any] = {"sweep_id": sweep.sweep_id, "factors": factors, "metric": column}
    try:
        effects = factorial_effects(data, factors, confidence=confidence)
        out["effects"] = [vars(e) for e in effects]
    except ValueError as exc:
        notes.append(f"factorial effects: {exc}")
        out["effects"] = []
    try:
        out["shapley"] = shapley_from_effects(data, factors)
    except ValueError as exc:
        notes.append(f"Shapley values: {exc}")
        out["shapley"] = None
    return out


# ============================================================================ output


def _pct(s: Summary) -> str:
    if s.n == 0:
        return "—"
    return f"{100 * s.mean:.2f}" + (f" ± {100 * s.std:.2f}" if s.n >= 2 else "")


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "—"
    return "<0.001" if value < 1e-3 else f"{value:.3f}"


def _delta_text(d: Difference | None, is_reference: bool) -> tuple[str, str]:
    if is_reference:
        return "reference", ""
    if d is None or not math.isfinite(d.delta):
        return "—", "—"
    ci = (f" [{100 * d.ci_low:+.2f}, {100 * d.ci_high:+.2f}]"
          if math.isfinite(d.ci_low) else "")
    return f"{100 * d.delta:+.2f}{ci}", _p(d.p_value) + (f" ({d.test})" if d.test != "none"
                                                        else "")


def headers(comparison: Comparison) -> list[str]:
    metric = comparison.metric.replace("_", "-")
    split = comparison.split
    return ["configuration", "removed", "added", "seeds", f"{split} accuracy %",
            f"{split} macro-F1 %", f"Δ {metric} pp [95 % CI]", "p", "parameters",
            "train s"]


def cells(comparison: Comparison) -> list[list[str]]:
    """The comparison table as text cells (one row per configuration)."""
    out = []
    for r in comparison.rows:
        delta, p = _delta_text(r.delta, r.name == comparison.reference)
        seeds = f"{len(r.seeds)}/{len(r.planned_seeds)}"
        out.append([r.name, ", ".join(r.removed) or "—", ", ".join(r.added) or "—", seeds,
                    _pct(r.summaries["accuracy"]), _pct(r.summaries["macro_f1"]), delta, p,
                    "—" if r.n_parameters is None else f"{int(r.n_parameters):,}",
                    _num(r.train_seconds, 1)])
    return out


def effect_cells(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    f = comparison.factorial
    if not f:
        return [], []
    shapley = f.get("shapley") or {}
    rows = []
    for e in f["effects"]:
        ci = (f"[{100 * e['ci_low']:+.2f}, {100 * e['ci_high']:+.2f}]"
              if math.isfinite(e["ci_low"]) else "—")
        sv = shapley.get(e["term"])
        rows.append([e["term"], "interaction" if ":" in e["term"] else "main",
                     _num(100 * e["estimate"]) if math.isfinite(e["estimate"]) else "—", ci,
                     _p(e["p_value"]), "—" if sv is None else f"{100 * sv:+.2f}"])
    return ["term", "kind", "effect pp", "95 % CI", "p", "Shapley pp"], rows


def title(comparison: Comparison) -> str:
    sweeps = ", ".join(f"{s.name} ({s.sweep_id})" for s in comparison.sweeps)
    data = ", ".join(comparison.dataset["names"]) or "no finished runs"
    if comparison.dataset["is_demo"]:
        data += " — demonstration set, NOT FER-2013"
    return f"bionic compare {sweeps} · dataset {data} · split {comparison.split}"


def _markdown(head: list[str], rows: list[list[str]]) -> str:
    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    return "\n".join([line(head), "|" + "|".join("---" for _ in head) + "|",
                      *(line(r) for r in rows)])


_LATEX = {"&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "±": r"$\pm$", "Δ": r"$\Delta$",
          "—": "--", "<": r"$<$", "{": r"\{", "}": r"\}"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in text)


def _latex(head: list[str], rows: list[list[str]], caption: str) -> str:
    spec = "l" * 3 + "r" * (len(head) - 3)
    body = [" & ".join(_latex_escape(v) for v in r) + r" \\" for r in rows]
    return "\n".join([r"\begin{table}[ht]", r"\centering", rf"\begin{{tabular}}{{{spec}}}",
                      r"\toprule", " & ".join(_latex_escape(h) for h in head) + r" \\",
                      r"\midrule", *body, r"\bottomrule", r"\end{tabular}",
                      rf"\caption{{{_latex_escape(caption)}}}", r"\end{table}"])


def _csv(comparison: Comparison) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["configuration", "features", "removed", "added", "group", "seeds",
                     "n_seeds", "split", "accuracy_mean", "accuracy_std", "macro_f1_mean",
                     "macro_f1_std", "metric", "delta", "delta_ci_low", "delta_ci_high",
                     "p_value", "test", "n_parameters", "train_seconds", "config_key",
                     "sweep_id"])
    for r in comparison.rows:
        acc, f1, d = r.summaries["accuracy"], r.summaries["macro_f1"], r.delta

        def num(v: float | None) -> str:
            return "" if v is None or not math.isfinite(v) else repr(float(v))

        writer.writerow([r.name, " ".join(r.features), " ".join(r.removed), " ".join(r.added),
                         r.group, " ".join(map(str, r.seeds)), len(r.seeds), comparison.split,
                         num(acc.mean), num(acc.std), num(f1.mean), num(f1.std),
                         comparison.metric, num(d and d.delta), num(d and d.ci_low),
                         num(d and d.ci_high), num(d and d.p_value), d.test if d else "",
                         num(r.n_parameters), num(r.train_seconds), r.config_key, r.sweep_id])
    return buf.getvalue()


def render(comparison: Comparison, fmt: str) -> str:
    """The comparison as markdown, csv, latex or json text (``table`` is drawn by the CLI)."""
    if fmt == "json":
        return json.dumps(comparison.as_dict(), indent=2)
    if fmt == "csv":
        return _csv(comparison)
    head, rows = headers(comparison), cells(comparison)
    eff_head, eff_rows = effect_cells(comparison)
    notes = comparison.notes
    if fmt == "markdown":
        parts = [f"**{title(comparison)}**", "", _markdown(head, rows)]
        if eff_rows:
            parts += ["", f"**Factorial effects on {comparison.split} {comparison.metric}**", "",
                      _markdown(eff_head, eff_rows)]
        parts += [f"\n_{n}_" for n in notes]
        return "\n".join(parts)
    if fmt == "latex":
        out = _latex(head, rows, title(comparison))
        if eff_rows:
            out += "\n\n" + _latex(eff_head, eff_rows,
                                   f"Factorial effects on {comparison.split} {comparison.metric}")
        return out
    raise BionicError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")


def plot(comparison: Comparison, path: Path) -> Path:
    """Factorial sweeps: the interaction heatmap; otherwise the Δ bar chart."""
    from bionic_core.studies.figures import ablation_deltas_png, interaction_heatmap_png

    path = Path(path)
    if path.parent and not path.parent.is_dir():
        raise BionicError(f"--plot {path}: folder {path.parent} does not exist")
    label = f"{comparison.split} {comparison.metric.replace('_', '-')}"
    f = comparison.factorial
    if f and f["effects"]:
        main = {e["term"]: 100 * e["estimate"] for e in f["effects"] if ":" not in e["term"]}
        inter = {tuple(e["term"].split(":")): 100 * e["estimate"]
                 for e in f["effects"] if ":" in e["term"]}
        return interaction_heatmap_png(f["factors"], main, inter, path,
                                       f"{title(comparison)}\neffects on {label} (pp)")
    ref = next((r for r in comparison.rows if r.name == comparison.reference), None)
    bars = [{"name": r.name, "group": r.group, "delta": 100 * r.delta.delta,
             "ci_low": 100 * r.delta.ci_low, "ci_high": 100 * r.delta.ci_high}
            for r in comparison.rows if r.delta is not None]
    if not bars:
        raise BionicError("--plot: nothing to plot (no configuration has a Δ versus a finished "
                          "reference)")
    ref_label = (f"reference: {ref.name} ({100 * ref.summaries[comparison.metric].mean:.2f} %)"
                 if ref is not None else "reference")
    return ablation_deltas_png(bars, path, title(comparison), f"Δ {label} (pp)", ref_label)
