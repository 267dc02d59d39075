"""Rebuilding the published tables and figures from exported results alone (no MLflow): each
exported sweep's comparison table (the statistics of ``bionic compare``), a headline table
(mean ± std over seeds per configuration and split), and per sweep its learning curves and Δ
chart, the joint comparisons and twin tables ``results/comparisons.toml`` names. See
:mod:`bionic_core.studies.results_export` for the files read here."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

from bionic_core.contract.errors import BionicError
from bionic_core.studies.comparison import add_seed, analyse, merge_rows
from bionic_core.studies.comparison_model import Comparison, Row, SweepInfo
from bionic_core.studies.comparison_render import render, render_per_class
from bionic_core.studies.results_export import FORMAT
from bionic_core.studies.stats import summarize

HEADLINE = "headline.md"
COMPARISONS = "comparisons.toml"  # comparisons across exported sweeps (see build_tables)
_ENTRY_KINDS = ("comparisons", "twins")  # the tables comparisons.toml may hold
_MEASURES = (("accuracy", "accuracy %"), ("macro_f1", "macro-F1 %"))


def read_json(path: Path) -> dict[str, Any]:
    """An export file, or one line naming it when it is missing or damaged."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BionicError(f"{path}: missing export file (run `bionic results export`)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BionicError(f"{path}: damaged export file ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BionicError(f"{path}: not a bionic results export of format {FORMAT}")
    return data


def _final_metrics(final: dict[str, Any]) -> dict[str, float]:
    """A run record's final metrics back under their MLflow names (``final_<split>_*``)."""
    out: dict[str, float] = {}
    for split, values in final.items():
        for name, value in values.items():
            if isinstance(value, dict):
                out.update({f"final_{split}_{name}_{c}": v for c, v in value.items()})
            else:
                out[f"final_{split}_{name}"] = value
    return out


def _row(results: Path, sweep_id: str, config: dict[str, Any],
         records: list[dict[str, Any]]) -> Row:
    row = Row(config["name"], config["config_key"], sweep_id, tuple(config["features"]),
              tuple(config["removed"]), tuple(config["added"]), config["group"],
              list(config["planned_seeds"]))
    label = readable_name(row)
    runs = {int(seed): key for seed, key in config["runs"].items()}
    params = []
    for seed in [*row.planned_seeds, *sorted(set(runs) - set(row.planned_seeds))]:
        if seed not in runs:
            continue
        path = results / "runs" / f"{runs[seed]}.json"
        run = read_json(path)
        try:
            d = run["dataset"]
            add_seed(row, seed, run["run_key"], _final_metrics(run["final"]),
                     (d["name"], d["fingerprint"], bool(d["is_demo"])),
                     run["feature_provenance"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise BionicError(f"{path}: damaged export file (missing {exc})") from None
        if run.get("n_parameters") is not None:
            params.append(run["n_parameters"])
        # A run key finished once serves every sweep that plans it (its file holds the last
        # export's names); in this sweep's tables it is this sweep's configuration.
        records.append({**run, "configuration": label})
    row.n_parameters = max(params) if params else None
    row.name = label
    return row


def load_sweep(results: Path, path: Path) -> tuple[SweepInfo, list[Row], list[dict[str, Any]]]:
    """An exported sweep: its info, its configurations' rows (no statistics yet) and its run
    records."""
    data = read_json(path)
    records: list[dict[str, Any]] = []
    try:
        sweep = SweepInfo("", data["sweep_id"], data["name"], data["experiment"], "",
                          data["design"], data["anchor"], tuple(data["factors"]),
                          tuple((d["configuration"], d["reason"]) for d in data["dropped"]), 0)
        rows = [_row(results, sweep.sweep_id, c, records) for c in data["configurations"]]
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise BionicError(f"{path}: damaged export file (bad or missing {exc})") from None
    return sweep, rows, records


def readable_name(row: Row) -> str:
    """An explicit design's configuration (named ``e:`` + all its features) by what it
    changes from the reference: ``−hebbian``, ``−a −b +c``; other names unchanged."""
    if not row.name.startswith("e:") or not (row.removed or row.added):
        return row.name
    return " ".join([f"−{f}" for f in row.removed] + [f"+{f}" for f in row.added])


def _mean_std(values: list[float]) -> str:
    s = summarize([v for v in values if math.isfinite(v)])
    if s.n == 0:
        return "—"
    return f"{100 * s.mean:.2f}" + (f" ± {100 * s.std:.2f}" if s.n >= 2 else "")


def _aliases(runs: list[dict[str, Any]]) -> set[str]:
    """``{"test"}`` when every run's ``test`` metrics are another split's (``test_public``,
    ``test_private``) under its generic name, so that the table lists that split once."""
    def duplicated(run: dict[str, Any]) -> bool:
        final = run["final"]
        return "test" not in final or any(
            name != "test" and values == final["test"] for name, values in final.items())
    return {"test"} if all(duplicated(r) for r in runs) else set()


def headline(sweeps: list[tuple[SweepInfo, list[dict[str, Any]]]]) -> str:
    """Mean ± std over seeds of each configuration's final accuracy and macro-F1, per split
    (a sweep's reference named by its experiment too: ``reference (paper)``)."""
    lines = ["| sweep | configuration | split | seeds | "
             + " | ".join(label for _, label in _MEASURES) + " |",
             "|" + "|".join("---" for _ in range(4 + len(_MEASURES))) + "|"]
    for sweep, records in sweeps:
        by_config: dict[str, list[dict[str, Any]]] = {}
        for r in records:
            by_config.setdefault(r["configuration"], []).append(r)
        for name in sorted(by_config):
            runs = by_config[name]
            label = f"{name} ({sweep.experiment})" if name == "reference" else name
            for split in sorted({s for r in runs for s in r["final"]} - _aliases(runs)):
                finals = [r["final"].get(split, {}) for r in runs]
                cells = [_mean_std([f.get(m, math.nan) for f in finals]) for m, _ in _MEASURES]
                seeds = sum(1 for f in finals if f)
                lines.append(f"| {sweep.name} ({sweep.sweep_id}) | {label} | {split} | {seeds} | "
                             + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sweep_files(results: Path) -> list[Path]:
    """The exported sweeps under ``results``, or one line saying there are none."""
    paths = sorted((results / "sweeps").glob("*.json"))
    if not paths:
        raise BionicError(f"{results}: no exported sweep (expected {results}/sweeps/*.json; "
                          "run `bionic results export`)")
    return paths


def build_tables(results: Path, out: Path) -> list[Path]:
    """Write ``comparison_<sweep_id>.md`` and ``per_class_<sweep_id>.md`` (recall and
    precision per class) for every exported sweep, ``headline.md``, and both tables of each
    joint comparison ``results/comparisons.toml`` names (``comparison_<name>.md``,
    ``per_class_<name>.md``) and each twin table it names (``twins_<name>.md``), under
    ``out``, from the files under ``results`` alone; return the paths written."""
    paths = sweep_files(results)
    entries = _comparisons_file(results)  # a bad file is refused before anything is written
    out.mkdir(parents=True, exist_ok=True)
    written, loaded = [], []
    for path in paths:
        sweep, rows, records = load_sweep(results, path)
        comparison: Comparison = analyse([sweep], rows)
        target = out / f"comparison_{sweep.sweep_id}.md"
        target.write_text(render(comparison, "markdown") + "\n", encoding="utf-8")
        classes = out / f"per_class_{sweep.sweep_id}.md"
        classes.write_text(render_per_class(comparison) + "\n", encoding="utf-8")
        written += [target, classes]
        loaded.append((sweep, records))
    written.append(out / HEADLINE)
    written[-1].write_text(headline(loaded), encoding="utf-8")
    for name, spec in _joint_comparisons(results, entries["comparisons"]).items():
        joint = _joint(results, name, spec)
        target, classes = out / f"comparison_{name}.md", out / f"per_class_{name}.md"
        target.write_text(render(joint, "markdown") + "\n", encoding="utf-8")
        classes.write_text(render_per_class(joint) + "\n", encoding="utf-8")
        written += [target, classes]
    for name, twins in _twin_specs(results, entries["twins"]).items():
        written.append(out / f"twins_{name}.md")
        written[-1].write_text(twin_table(results, name, twins), encoding="utf-8")
    return written


def _comparisons_file(results: Path) -> dict[str, dict[str, Any]]:
    """The ``[comparisons.NAME]`` and ``[twins.NAME]`` tables of ``results/comparisons.toml``,
    by kind (none when the file is absent); any other top-level key is one line naming it, so
    that a misspelt table is refused, not left out of the tables."""
    path = results / COMPARISONS
    if not path.is_file():
        return {kind: {} for kind in _ENTRY_KINDS}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BionicError(f"{path}: {str(exc).splitlines()[0]}") from None
    unknown = sorted(set(data) - set(_ENTRY_KINDS))
    if unknown:
        raise BionicError(f"{path}: {unknown[0]}: unknown; expected tables [comparisons.NAME] "
                          "or [twins.NAME]")
    entries = {kind: data.get(kind, {}) for kind in _ENTRY_KINDS}
    for kind, table in entries.items():
        if not isinstance(table, dict):
            raise BionicError(f"{path}: {kind}: expected tables [{kind}.NAME]")
    return entries


def _named_sweep(results: Path, entry: str, sweep_id: str) -> Path:
    """The export file of a sweep that the ``results/comparisons.toml`` entry ``entry`` names,
    or one line naming the entry when that sweep is not exported."""
    path = results / "sweeps" / f"{sweep_id}.json"
    if not path.is_file():
        raise BionicError(f"{results / COMPARISONS}: {entry}: no exported sweep {sweep_id} "
                          f"({path})")
    return path


class _JointSpec(NamedTuple):
    """One ``[comparisons.NAME]`` entry of ``results/comparisons.toml``."""
    ids: list[str]
    force: bool
    labels: dict[str, str]
    references_only: bool
    reference: str | None


def _joint_comparisons(results: Path, table: dict[str, Any]) -> dict[str, _JointSpec]:
    """``results/comparisons.toml``'s ``[comparisons.NAME] sweeps = [id, ...]`` (optional:
    ``force = true`` to compare runs of different feature code, said in the table's notes;
    ``labels = { "<sweep id>" = "name" }`` to name a later sweep's reference row;
    ``references_only = true`` to take each sweep's reference configuration alone, e.g. controls
    trained as experiments of their own against a reference whose sweeps hold other rows, so
    that Holm runs over these comparisons only; ``reference = "<config key>"`` to make that
    configuration of the first sweep the reference instead of its own, and with
    ``references_only`` to take it in place of the reference of every sweep that holds it):
    comparisons whose configurations come from
    several exported sweeps (e.g. `paper` and `baseline`, which cannot share one experiment);
    ``table`` is the file's ``comparisons`` table (:func:`_comparisons_file`)."""
    path, out = results / COMPARISONS, {}
    for name, entry in table.items():
        fields = entry if isinstance(entry, dict) else {}  # not a table: no sweeps, refused below
        ids = fields.get("sweeps")
        force = fields.get("force", False)
        labels = fields.get("labels", {})
        only = fields.get("references_only", False)
        reference = fields.get("reference")
        if not re.fullmatch(r"[\w-]+", name) or not isinstance(ids, list) or not ids \
                or not all(isinstance(i, str) for i in ids) or not isinstance(force, bool) \
                or not isinstance(labels, dict) or not set(labels) <= set(ids[1:]) \
                or not isinstance(only, bool) \
                or not (reference is None or isinstance(reference, str)) \
                or set(fields) - {"sweeps", "force", "labels", "references_only", "reference"}:
            raise BionicError(f"{path}: comparisons.{name}: expected a name of letters, digits, "
                              "_ or - and sweeps = [\"<sweep id>\", ...] (force = true|false; "
                              "labels = { \"<a later sweep's id>\" = \"name\" }; "
                              "references_only = true|false; reference = \"<config key>\")")
        out[name] = _JointSpec(ids, force, {k: str(v) for k, v in labels.items()}, only,
                               reference)
    return out


def _joint(results: Path, name: str, spec: _JointSpec) -> Comparison:
    """One comparison of the configurations of the exported sweeps ``spec.ids`` (the first
    sweep's reference is the reference; a configuration shared by two sweeps is one row; a
    later sweep's reference is named by ``spec.labels``; ``spec.reference``, a configuration
    key of the first sweep, replaces the first sweep's reference; with ``spec.references_only``
    each sweep contributes its reference alone, or the configuration ``spec.reference`` where
    it holds that; Holm over all its comparisons at once)."""
    ids, force, labels = spec.ids, spec.force, spec.labels
    sweeps, per_sweep = [], []
    for sweep_id in ids:
        sweep, rows, _ = load_sweep(results, _named_sweep(results, f"comparisons.{name}",
                                                          sweep_id))
        if spec.references_only:
            rows = [row for row in rows if row.config_key == spec.reference] \
                or [row for row in rows if row.name == sweep.anchor]
        for row in rows:
            if row.name == sweep.anchor and sweep_id in labels:
                row.name = labels[sweep_id]
        sweeps.append(sweep)
        per_sweep.append(rows)
    if spec.reference is not None:
        chosen = next((row for row in per_sweep[0] if row.config_key == spec.reference), None)
        if chosen is None:
            raise BionicError(f"{results / COMPARISONS}: comparisons.{name}: reference "
                              f"{spec.reference} is not a configuration of the first sweep "
                              f"{ids[0]}")
        sweeps[0] = dataclasses.replace(sweeps[0], anchor=chosen.name)
    return analyse(sweeps, merge_rows(per_sweep), force=force, one_family=True)


# ============================================================================ twin runs


class _TwinSpec(NamedTuple):
    """One ``[twins.NAME]`` entry of ``results/comparisons.toml``."""
    ids: tuple[str, str]
    labels: tuple[str, str]
    names: dict[str, str]


def _twin_specs(results: Path, table: dict[str, Any]) -> dict[str, _TwinSpec]:
    """``results/comparisons.toml``'s ``[twins.NAME] sweeps = ["<earlier>", "<later>"]``,
    ``labels = ["<what the earlier ran>", "<what the later ran>"]`` (optional
    ``names = { "<configuration>" = "name" }``): each run of the later sweep beside the run of
    the earlier one with the same configuration name and seed, e.g. the same models trained
    again with a longer early-stopping patience; ``table`` is the file's ``twins`` table."""
    path, out = results / COMPARISONS, {}
    for name, entry in table.items():
        fields = entry if isinstance(entry, dict) else {}
        ids, labels, names = fields.get("sweeps"), fields.get("labels"), fields.get("names", {})
        if not re.fullmatch(r"[\w-]+", name) or not all(
                isinstance(v, list) and len(v) == 2 and all(isinstance(i, str) for i in v)
                for v in (ids, labels)) or not isinstance(names, dict) \
                or set(fields) - {"sweeps", "labels", "names"}:
            raise BionicError(f"{path}: twins.{name}: expected a name of letters, digits, _ or - "
                              "and sweeps = [\"<earlier sweep id>\", \"<later sweep id>\"], "
                              "labels = [\"<earlier>\", \"<later>\"] (names = "
                              "{ \"<configuration>\" = \"name\" })")
        out[name] = _TwinSpec(tuple(ids), tuple(labels), {k: str(v) for k, v in names.items()})
    return out


class _Stop(NamedTuple):
    """Where one exported run stopped: the epoch it kept (and tested), its last epoch, its
    rate in the last epoch and its test accuracy."""
    kept: int
    last: int
    rate: float
    accuracy: float


def _stop(path: Path) -> _Stop:
    """The kept epoch as the training loop keeps it: the first epoch with the best validation
    value of the run's monitored metric."""
    run = read_json(path)
    try:
        monitor, epochs = run["config"]["monitor"], run["epochs"]
        values = [(row[monitor], row["epoch"]) for row in epochs
                  if math.isfinite(row.get(monitor, math.nan))]
        best = max(value for value, _ in values)
        return _Stop(next(e for value, e in values if value == best), epochs[-1]["epoch"],
                     epochs[-1]["lr"], 100 * run["final"]["test"]["accuracy"])
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise BionicError(f"{path}: damaged export file (no epochs or missing {exc})") from None


def _rate(value: float) -> str:
    """A learning rate to three figures, as ``7.81e-6``, ``1.25e-4`` or ``1e-6``."""
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def twin_table(results: Path, name: str, spec: _TwinSpec) -> str:
    """Each run of the later sweep (``spec.ids[1]``) beside its twin of the earlier one: kept
    and last epoch, the rate at the end and test accuracy, in the later sweep's order of
    configurations and seeds; one line naming the file when a sweep is not exported or no run
    has a twin."""
    where = f"{results / COMPARISONS}: twins.{name}"
    runs: list[dict[str, dict[int, str]]] = []
    titles = []
    for sweep_id in spec.ids:
        path = _named_sweep(results, f"twins.{name}", sweep_id)
        data = read_json(path)
        try:
            runs.append({c["name"]: {int(s): key for s, key in c["runs"].items()}
                         for c in data["configurations"]})
            titles.append(f"{data['name']} ({sweep_id})")
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise BionicError(f"{path}: damaged export file (bad or missing {exc})") from None
    earlier, later = runs
    a, b = spec.labels
    lines = [f"**twins {name}: each run of {titles[1]}, {b}, beside its twin of {titles[0]}, "
             f"{a}: the same configuration and seed · split test**", "",
             f"| run (seed) | kept epoch / last, {a} | kept epoch / last, {b} | rate at the end, "
             f"{a} | rate at the end, {b} | test accuracy % ({a} → {b}) |",
             "|---|---|---|---|---|---|"]
    for config, seeds in later.items():
        for seed in sorted(set(seeds) & set(earlier.get(config, {}))):
            x, y = (_stop(results / "runs" / f"{keys[config][seed]}.json")
                    for keys in (earlier, later))
            lines.append(f"| {spec.names.get(config, config)} ({seed}) | {x.kept} / {x.last} | "
                         f"{y.kept} / {y.last} | {_rate(x.rate)} | {_rate(y.rate)} | "
                         f"{x.accuracy:.2f} → {y.accuracy:.2f} |")
    if len(lines) == 4:
        raise BionicError(f"{where}: no run of {spec.ids[1]} has a twin (the same configuration "
                          f"name and seed) in {spec.ids[0]}")
    lines += ["", "_kept epoch: the first epoch with the best holdout value of the run's "
              "monitored metric, the one tested; last: the last epoch trained; rate: the "
              "learning rate in the last epoch_"]
    return "\n".join(lines) + "\n"


# ============================================================================ figures


def build_figures(results: Path, out: Path) -> list[Path]:
    """Write, for every exported sweep, ``curves_<sweep_id>.png`` (validation accuracy per
    epoch, mean over seeds and their range, per configuration) and ``delta_<sweep_id>.png``
    (Δ test accuracy versus the reference with 95 % CIs, as ``bionic compare --plot``; a
    factorial's interaction heatmap) under ``out``, from the files under ``results`` alone."""
    from bionic_core.studies.comparison_render import plot
    from bionic_core.studies.figures import sweep_curves_png

    paths = sweep_files(results)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        sweep, rows, records = load_sweep(results, path)
        curves: dict[str, list[list[float]]] = {}
        for run in sorted(records, key=lambda r: (r["configuration"], r["seed"])):
            series = [row["val_accuracy"] for row in run["epochs"] if "val_accuracy" in row]
            if series:
                curves.setdefault(run["configuration"], []).append(series)
        if curves:
            written.append(sweep_curves_png(
                curves, out / f"curves_{sweep.sweep_id}.png",
                f"{sweep.name} ({sweep.sweep_id}): validation accuracy, mean over seeds "
                "(shaded: their range)", "validation accuracy %"))
        comparison = analyse([sweep], rows)
        if any(r.delta is not None for r in comparison.rows) or comparison.factorial:
            written.append(plot(comparison, out / f"delta_{sweep.sweep_id}.png"))
    return written


# ============================================================================ tables in a page

_BLOCK = re.compile(r"(<!-- results-table: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)"
                    r"(<!-- /results-table -->)", re.S)


def embedded_tables(page: str) -> dict[str, str]:
    """The tables a page embeds: ``{table file name: the text between its markers}``.

    A page (RESULTS.md) embeds a rebuilt table between ``<!-- results-table: NAME -->`` and
    ``<!-- /results-table -->`` lines, NAME being a file that :func:`build_tables` writes."""
    return {m["name"]: m["body"] for m in _BLOCK.finditer(page)}


def fill_page(page: str, tables: dict[str, str], where: str) -> str:
    """``page`` with every embedded table replaced by the rebuilt one of that name; one line
    naming ``where`` and the table when a page asks for a table that was not rebuilt."""
    missing = sorted(set(embedded_tables(page)) - set(tables))
    if missing:
        raise BionicError(f"{where}: embeds {', '.join(missing)}, which the exports do not "
                          f"produce (known: {', '.join(sorted(tables))})")
    return _BLOCK.sub(lambda m: m[1] + tables[m["name"]] + m[4], page)
