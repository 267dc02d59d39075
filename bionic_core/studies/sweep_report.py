"""The answer of a sweep, kept on its MLflow parent run: the comparison table as
``comparison.md`` and ``comparison.html`` (with the Δ plot inside), the plot as
``comparison_delta.png``, and each configuration's Δ and p-value as metrics — so that someone
who only opens ``mlflow ui`` sees what the sweep found."""

from __future__ import annotations

import base64
import html
import math
import re
import tempfile
from pathlib import Path
from typing import Any

from bionic_core.contract.errors import BionicError, first_line
from bionic_core.studies.tracking import Tracker

ARTIFACTS = ("comparison.md", "comparison.html", "comparison_delta.png")


def metric_name(prefix: str, configuration: str) -> str:
    """An MLflow metric name for a configuration (``-hebbian`` → ``delta_-hebbian``; characters
    MLflow refuses become ``_``)."""
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9_. /-]', '_', configuration)}"


def comparison_metrics(comparison: Any) -> dict[str, float]:
    """Each configuration's mean (``test_accuracy_-hebbian``), and Δ versus the reference
    (``delta_-hebbian``) with its p-value (``p_-hebbian``): fractions of the compared metric, on
    the comparison's split."""
    out: dict[str, float] = {}
    for row in comparison.rows:
        mean = row.summaries[comparison.metric].mean
        if row.seeds and math.isfinite(mean):
            out[metric_name(f"{comparison.split}_{comparison.metric}", row.name)] = mean
        delta = row.delta
        if delta is not None and math.isfinite(delta.delta):
            out[metric_name("delta", row.name)] = delta.delta
            if math.isfinite(delta.p_value):
                out[metric_name("p", row.name)] = delta.p_value
    return out


def _table_html(head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = ("body{font:13px system-ui,sans-serif;margin:1em}h2{font-size:15px}h3{font-size:14px}"
          "table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}"
          "td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}"
          "img{max-width:100%;margin-top:1em}.note{color:#555;font-style:italic}")


def comparison_html(comparison: Any, plot_png: Path | None) -> str:
    """The comparison as one self-contained HTML page (the plot embedded)."""
    from bionic_core.studies.comparison_render import cells, effect_cells, headers, title

    parts = [f"<h2>{html.escape(title(comparison))}</h2>",
             _table_html(headers(comparison), cells(comparison))]
    effect_head, effect_rows = effect_cells(comparison)
    if effect_rows:
        parts += [f"<h3>Factorial effects on {html.escape(comparison.split)} "
                  f"{html.escape(comparison.metric)}</h3>", _table_html(effect_head, effect_rows)]
    parts += [f'<p class="note">{html.escape(note)}</p>' for note in comparison.notes]
    if plot_png is not None:
        data = base64.b64encode(plot_png.read_bytes()).decode()
        parts.append(f'<img alt="Δ versus the reference" src="data:image/png;base64,{data}">')
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>bionic comparison"
            f"</title><style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>")


def log_comparison(tracker: Tracker, sweep_run_id: str, sweep_id: str) -> str | None:
    """Put the sweep's comparison on its parent run (see the module docstring); None when
    done, else why there is no comparison (also the run's tag ``bionic.comparison``)."""
    from bionic_core.studies.comparison import compare
    from bionic_core.studies.comparison_render import plot, render

    try:
        comparison = compare(tracker, [sweep_id])
    except BionicError as exc:
        tracker.set_tags(sweep_run_id, {"bionic.comparison": first_line(exc)[:500]})
        return str(exc)
    with tempfile.TemporaryDirectory() as tmp:
        png: Path | None = Path(tmp) / "comparison_delta.png"
        try:
            plot(comparison, png)
        except BionicError:  # nothing to plot (no Δ yet)
            png = None
        tracker.log_text(sweep_run_id, render(comparison, "markdown") + "\n", "comparison.md")
        tracker.log_text(sweep_run_id, comparison_html(comparison, png), "comparison.html")
        if png is not None:
            tracker.log_file(sweep_run_id, png)
    tracker.log_metrics(sweep_run_id, comparison_metrics(comparison))
    tracker.set_tags(sweep_run_id, {"bionic.comparison": "comparison.md, comparison.html"})
    return None
