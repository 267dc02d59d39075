"""A :class:`~bionic_core.studies.comparison.Comparison` as text and pictures: the table's
headers and cells (drawn by the CLI), markdown, csv, latex and json, and the plot.

Undefined statistics (a CI or p with fewer than two seeds or with zero spread) read "n/a";
"—" means there is nothing to show (no run, or the reference itself)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from bionic_core.contract.errors import BionicError
from bionic_core.studies.comparison_model import Comparison, Row
from bionic_core.studies.stats import Difference, Summary

FORMATS = ("table", "markdown", "csv", "latex", "json")
NA = "n/a"
IMAGES_TITLE = ("Per-image paired test (exact McNemar, discordant images summed over seed "
                "pairs), beside the seed-level t-test")


def _pct(s: Summary) -> str:
    if s.n == 0:
        return "—"
    return f"{100 * s.mean:.2f}" + (f" ± {100 * s.std:.2f}" if s.n >= 2 else "")


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _p(value: float) -> str:
    if not math.isfinite(value):
        return NA
    return "<0.001" if value < 1e-3 else f"{value:.3f}"


def _pp(value: float) -> str:
    """A fraction as percentage points, n/a when undefined."""
    return f"{100 * value:.2f}" if math.isfinite(value) else NA


def _ci(low: float, high: float) -> str:
    return f"[{100 * low:+.2f}, {100 * high:+.2f}]" if math.isfinite(low) else f"[{NA}]"


def _delta_text(d: Difference | None, is_reference: bool) -> tuple[str, str]:
    if is_reference:
        return "reference", ""
    if d is None or not math.isfinite(d.delta):
        return "—", "—"
    return (f"{100 * d.delta:+.2f} {_ci(d.ci_low, d.ci_high)}",
            _p(d.p_value) + (f" ({d.test})" if d.test != "none" else ""))


def _has_images(comparison: Comparison) -> bool:
    return any(r.images is not None for r in comparison.rows)


def headers(comparison: Comparison) -> list[str]:
    metric = comparison.metric.replace("_", "-")
    split = comparison.split
    head = ["configuration", "removed", "added", "seeds", f"{split} accuracy %",
            f"{split} macro-F1 %", f"Δ {metric} pp [95 % CI]", "p", "p (Holm)", "MDE pp",
            "MDE (Holm) pp"]
    if comparison.ci_method == "bootstrap":
        head.append("bootstrap 95 % CI")
    return head + ["parameters", "train s"]


def _bootstrap_cell(comparison: Comparison, r: Row, is_reference: bool) -> list[str]:
    if comparison.ci_method != "bootstrap":
        return []
    return ["" if is_reference else "—" if r.bootstrap is None else _ci(*r.bootstrap)]


def image_cells(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    """The per-image paired test (McNemar over seeds) of every row that has one."""
    if not _has_images(comparison):
        return [], []
    rows = []
    for r in comparison.rows:
        t = r.images
        if t is None:
            continue
        rows.append([r.name, str(t.seeds), f"{t.images:,}", f"{100 * t.delta:+.2f}",
                     f"{t.only_this} / {t.only_reference}", _p(t.p_value),
                     _p(r.images_p_holm)])
    return ["configuration", "seed pairs", "paired images", "Δ accuracy pp",
            "right only here / only in reference", "p McNemar", "p McNemar (Holm)"], rows


def cells(comparison: Comparison) -> list[list[str]]:
    """The comparison table as text cells (one row per configuration)."""
    out = []
    for r in comparison.rows:
        is_reference = r.name == comparison.reference
        delta, p = _delta_text(r.delta, is_reference)
        seeds = f"{len(r.seeds)}/{len(r.planned_seeds)}"
        stats = (["", "", ""] if is_reference or r.delta is None
                 else ["(pooled)" if r.descriptive else _p(r.p_holm), _pp(r.mde),
                       _pp(r.mde_holm)])
        out.append([r.name, ", ".join(r.removed) or "—", ", ".join(r.added) or "—", seeds,
                    _pct(r.summaries["accuracy"]), _pct(r.summaries["macro_f1"]), delta, p,
                    *stats, *_bootstrap_cell(comparison, r, is_reference),
                    "—" if r.n_parameters is None else f"{int(r.n_parameters):,}",
                    _num(r.train_seconds, 1)])
    return out


def effect_cells(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    f = comparison.factorial
    if not f:
        return [], []
    shapley = f.get("shapley") or {}
    aliased = "fraction" in f
    rows = []
    for e in f["effects"]:
        sv = shapley.get(e["term"])
        row = [e["term"], "interaction" if ":" in e["term"] else "main",
               _num(100 * e["estimate"]) if math.isfinite(e["estimate"]) else "—",
               _ci(e["ci_low"], e["ci_high"]), _p(e["p_value"]),
               _p(e.get("p_holm", math.nan)), _pp(e.get("mde", math.nan)),
               _pp(e.get("mde_holm", math.nan)), "—" if sv is None else f"{100 * sv:+.2f}"]
        if aliased:
            first = e.get("aliased_letters", [])
            row.append(f"{first[0]}" + (f" (+{len(first) - 1} more)" if len(first) > 1 else "")
                       if first else "—")
        rows.append(row)
    head = ["term", "kind", "effect pp", "95 % CI", "p", "p (Holm)", "MDE pp", "MDE (Holm) pp",
            "Shapley pp"]
    return head + (["aliased with (letters)"] if aliased else []), rows


def _class_value(v) -> str:
    if v.n == 0:
        return NA
    spread = f" ± {v.std:.2f}" if v.n >= 2 else ""
    return f"{v.mean:.2f}{spread}" + (f" ({v.n}/{v.seeds} seeds)" if v.n < v.seeds else "")


def per_class_cells(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    """Per-class recall and precision over seeds; a precision undefined on some seeds (the
    class was never predicted) is left out of the mean and the count of seeds is shown."""
    rows = []
    for r in comparison.rows:
        for i, (name, by) in enumerate(r.per_class.items()):
            rows.append([r.name if i == 0 else "", name, _class_value(by["recall"]),
                         _class_value(by["precision"])])
    split = comparison.split
    return ["configuration", "class", f"{split} recall", f"{split} precision"], rows

def render_per_class(comparison: Comparison) -> str:
    """The per-class table (:func:`per_class_cells`) as markdown under its title."""
    head, rows = per_class_cells(comparison)
    return "\n".join([f"**{title(comparison)} · per class, mean ± std over seeds**", "",
                      _markdown(head, rows)])


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
                     "p_value", "test", "p_holm", "holm_m", "mde", "mde_holm",
                     "bootstrap_ci_low", "bootstrap_ci_high", "images_delta",
                     "images_only_here", "images_only_reference", "images_p_value",
                     "images_p_holm", "n_parameters", "train_seconds", "config_key",
                     "sweep_id"])

    def num(v: float | None) -> str:
        return "" if v is None or not math.isfinite(v) else repr(float(v))

    family = {f["sweep_id"]: f["m"] for f in comparison.families if f["what"] ==
              "Δ vs reference"}
    for r in comparison.rows:
        acc, f1, d, t, b = (r.summaries["accuracy"], r.summaries["macro_f1"], r.delta,
                            r.images, r.bootstrap or (None, None))
        writer.writerow([r.name, " ".join(r.features), " ".join(r.removed), " ".join(r.added),
                         r.group, " ".join(map(str, r.seeds)), len(r.seeds), comparison.split,
                         num(acc.mean), num(acc.std), num(f1.mean), num(f1.std),
                         comparison.metric, num(d and d.delta), num(d and d.ci_low),
                         num(d and d.ci_high), num(d and d.p_value), d.test if d else "",
                         num(r.p_holm), family.get(r.sweep_id, "") if d else "", num(r.mde),
                         num(r.mde_holm), num(b[0]), num(b[1]), num(t and t.delta),
                         t.only_this if t else "", t.only_reference if t else "",
                         num(t and t.p_value), num(r.images_p_holm),
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
    img_head, img_rows = image_cells(comparison)
    if fmt == "markdown":
        parts = [f"**{title(comparison)}**", "", _markdown(head, rows)]
        if img_rows:
            parts += ["", f"**{IMAGES_TITLE}**", "", _markdown(img_head, img_rows)]
        if eff_rows:
            parts += ["", f"**{_effects_title(comparison)}**", "", _markdown(eff_head, eff_rows)]
        parts += [f"\n**warning:** {w}" for w in comparison.warnings]
        parts += [f"\n_{n}_" for n in comparison.notes]
        return "\n".join(parts)
    if fmt == "latex":
        out = _latex(head, rows, title(comparison))
        if img_rows:
            out += "\n\n" + _latex(img_head, img_rows, IMAGES_TITLE)
        if eff_rows:
            out += "\n\n" + _latex(eff_head, eff_rows, _effects_title(comparison))
        return out
    raise BionicError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")


def _seed_count(ns: list[int]) -> str:
    """"3 seeds", or "2–3 seeds" when the rows differ."""
    lo, hi = min(ns), max(ns)
    return f"{lo} seed{'s' * (lo != 1)}" if lo == hi else f"{lo}–{hi} seeds"


def _reference_label(comparison: Comparison, ref: Row | None) -> str:
    """The reference named by its configuration: its features and its mean."""
    if ref is None:
        return "Δ = 0: the reference (no finished run)"
    features = ", ".join(sorted(ref.features)) or "no feature"
    name = "" if ref.name == "reference" else f"{ref.name}, "
    mean = ref.summaries[comparison.metric].mean
    metric = f"{comparison.split} {comparison.metric.replace('_', '-')}"
    return (f"Δ = 0: reference = {name}features {features} "
            f"({metric} {100 * mean:.2f} %, {_seed_count([len(ref.seeds)])})")


def _effects_source(comparison: Comparison) -> str:
    """"a 2^(5−1) fraction (resolution 5), 16 configurations × 3 seeds" or the factorial's."""
    f = comparison.factorial
    rows = [r for r in comparison.rows if r.sweep_id == f["sweep_id"] and r.seeds]
    seeds = _seed_count([len(r.seeds) for r in rows]) if rows else "no seeds"
    what = f"{len(rows)} configurations × {seeds}"
    fraction = f.get("fraction")
    if fraction is None:
        return f"{f['design']}, {what}"
    k = len(f["factors"])
    p = len(fraction["defining_relation"]).bit_length()  # 2^p − 1 words
    return f"2^({k}−{p}) fraction (resolution {fraction['resolution']}), {what}"


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
                                       f"{title(comparison)}\n{_effects_source(comparison)}: "
                                       f"effects on {label} (pp)")
    ref = next((r for r in comparison.rows if r.name == comparison.reference), None)
    with_delta = [r for r in comparison.rows if r.delta is not None]
    if not with_delta:
        raise BionicError("--plot: nothing to plot (no configuration has a Δ versus a finished "
                          "reference)")
    bars = [{"name": r.name, "group": r.group, "delta": 100 * r.delta.delta,
             "ci_low": 100 * r.delta.ci_low, "ci_high": 100 * r.delta.ci_high}
            for r in with_delta]
    seeds = _seed_count([r.delta.n for r in with_delta])
    any_ci = any(math.isfinite(r.delta.ci_low) for r in with_delta)
    return ablation_deltas_png(bars, path, title(comparison),
                               f"Δ {label} vs reference (pp), " +
                               (f"95 % CI over {seeds}" if any_ci else f"{seeds}: no CI"),
                               _reference_label(comparison, ref),
                               f"95 % CI over {seeds} (t-interval)")
