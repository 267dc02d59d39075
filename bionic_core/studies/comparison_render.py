"""A :class:`~bionic_core.studies.comparison.Comparison` as text and pictures: the table's
headers and cells (drawn by the CLI), markdown, csv, latex and json, and the plot."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from bionic_core.contract.errors import BionicError
from bionic_core.studies.comparison import Comparison
from bionic_core.studies.stats import Difference, Summary

FORMATS = ("table", "markdown", "csv", "latex", "json")


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


def _effects_title(comparison: Comparison) -> str:
    return f"Factorial effects on {comparison.split} {comparison.metric}"


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

    def num(v: float | None) -> str:
        return "" if v is None or not math.isfinite(v) else repr(float(v))

    for r in comparison.rows:
        acc, f1, d = r.summaries["accuracy"], r.summaries["macro_f1"], r.delta
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
            parts += ["", f"**{_effects_title(comparison)}**", "", _markdown(eff_head, eff_rows)]
        parts += [f"\n_{n}_" for n in notes]
        return "\n".join(parts)
    if fmt == "latex":
        out = _latex(head, rows, title(comparison))
        if eff_rows:
            out += "\n\n" + _latex(eff_head, eff_rows, _effects_title(comparison))
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
