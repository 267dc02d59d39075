"""Figures logged with runs: confusion matrix and learning curves (matplotlib, Agg)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402


def confusion_png(confusion: Sequence[Sequence[int]], class_names: Sequence[str], path: Path,
                  title: str) -> Path:
    cm = np.asarray(confusion, dtype=float)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (row-normalised colour)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def learning_curves_png(history: Sequence[dict[str, float]], path: Path, title: str) -> Path:
    epochs = [row["epoch"] for row in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2))
    left.plot(epochs, [row["train_loss"] for row in history], label="train loss")
    left.set_xlabel("epoch")
    left.legend()
    right.plot(epochs, [row["val_accuracy"] for row in history], label="val accuracy")
    right.plot(epochs, [row["val_macro_f1"] for row in history], label="val macro-F1")
    right.set_xlabel("epoch")
    right.legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


_GROUP_COLOURS = {"structural": "#3b6ea8", "functional": "#d08a2c", "mixed": "#7a7a7a",
                  "none": "#7a7a7a"}


def delta_axis_limits(deltas: np.ndarray, low: np.ndarray, high: np.ndarray,
                      zoom: float = 4.0, floor: float = 1.0) -> tuple[float, float]:
    """The Δ axis: every bar and 0, and each CI end unless it lies beyond ``zoom`` × the
    largest |Δ| (at least ``floor``) — whiskers that long (two seeds give ±12.7 standard
    errors) would flatten every bar, so they are clipped at the axis instead."""
    reach = max(zoom * float(np.nanmax(np.abs(deltas), initial=0.0)), floor)
    ends = np.concatenate([deltas, low[np.isfinite(low)], high[np.isfinite(high)], [0.0]])
    return max(float(ends.min()), -reach), min(float(ends.max()), reach)


def _whiskers(ax, y: np.ndarray, deltas: np.ndarray, low: np.ndarray, high: np.ndarray,
              limits: tuple[float, float]) -> bool:
    """CI whiskers, clipped at ``limits``: a clipped end is an arrowhead at the axis with the
    true end printed beside it; a bar without a CI says "CI n/a". Whether any was clipped."""
    lo_lim, hi_lim = limits
    clipped_any = False
    for yi, d, lo, hi in zip(y, deltas, low, high, strict=True):
        if not (np.isfinite(lo) and np.isfinite(hi)):
            ax.text(d, yi + 0.32, " CI n/a", fontsize=7, color="#555555", style="italic",
                    va="center", ha="left" if d >= 0 else "right")
            continue
        a, b = max(lo, lo_lim), min(hi, hi_lim)
        ax.plot([a, b], [yi, yi], color="black", linewidth=1.1, zorder=3)
        for end, edge, marker, align in ((lo, a, "<", "left"), (hi, b, ">", "right")):
            if end == edge:  # not clipped: an ordinary cap
                ax.plot([edge, edge], [yi - 0.15, yi + 0.15], color="black", linewidth=1.1,
                        zorder=3)
                continue
            clipped_any = True
            ax.plot([edge], [yi], marker=marker, color="black", markersize=6, zorder=4)
            ax.text(edge, yi + 0.34, f"{end:+.1f}", fontsize=7, ha=align, va="center",
                    zorder=4)
    return clipped_any


def ablation_deltas_png(bars: Sequence[dict], path: Path, title: str, xlabel: str,
                        reference_label: str, ci_label: str) -> Path:
    """Horizontal bars of Δ versus the reference (``bars``: name, group, delta, ci_low,
    ci_high), grouped structural / functional / mixed, with CI whiskers clipped to a sensible
    axis (:func:`delta_axis_limits`; clipped ends marked and labelled with their value); the
    reference is the dashed line at 0; the legend sits to the right, off the data."""
    order = ["structural", "functional", "mixed", "none"]
    ordered = sorted(bars, key=lambda b: (order.index(b["group"]) if b["group"] in order
                                          else len(order)))
    n = len(ordered)
    fig, ax = plt.subplots(figsize=(10.5, 1.9 + 0.45 * n))
    y = np.arange(n)[::-1].astype(float)
    deltas = np.array([b["delta"] for b in ordered], dtype=float)
    low = np.array([b["ci_low"] for b in ordered], dtype=float)
    high = np.array([b["ci_high"] for b in ordered], dtype=float)
    limits = delta_axis_limits(deltas, low, high)
    colours = [_GROUP_COLOURS.get(b["group"], "#7a7a7a") for b in ordered]
    ax.barh(y, deltas, color=colours, height=0.55, zorder=2)
    clipped = _whiskers(ax, y, deltas, low, high, limits)
    reference = ax.axvline(0.0, color="black", linewidth=1.2, linestyle="--", zorder=1)
    pad = 0.08 * (limits[1] - limits[0] or 1.0)
    ax.set_xlim(limits[0] - pad, limits[1] + pad)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_yticks(y, [b["name"] for b in ordered])
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", color="#e5e5e5", zorder=0)
    groups = [b["group"] for b in ordered]
    for i in range(1, n):  # a thin rule between the groups
        if groups[i] != groups[i - 1]:
            ax.axhline(y[i] + 0.5, color="#bbbbbb", linewidth=0.8)
    handles, labels = [reference], [textwrap.fill(reference_label, 42)]
    has_ci = np.isfinite(low) & np.isfinite(high)
    if has_ci.any():
        handles.append(Line2D([], [], color="black", marker="|", markersize=8, linewidth=1.1))
        labels.append(ci_label)
    if not has_ci.all():
        handles.append(Line2D([], [], linestyle="none"))
        labels.append(textwrap.fill("CI n/a: fewer than 2 seeds, or no spread over seeds", 42))
    if clipped:
        handles.append(Line2D([], [], color="black", marker=">", linestyle="none"))
        labels.append(textwrap.fill("CI clipped at the axis (its end printed)", 42))
    for g in dict.fromkeys(groups):
        handles.append(Patch(color=_GROUP_COLOURS.get(g, "#7a7a7a")))
        labels.append(f"changes a {g} feature" if g in ("structural", "functional") else g)
    ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              borderaxespad=0.0, frameon=False)
    ax.set_title(title.replace(" · ", "\n"), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def interaction_heatmap_png(factors: Sequence[str], main: dict[str, float],
                            interactions: dict[tuple[str, ...], float], path: Path,
                            title: str) -> Path:
    """Factorial effects as a matrix: main effects on the diagonal, pairwise interactions off
    it (symmetric; blank where not estimated), on a diverging scale centred at 0."""
    k = len(factors)
    m = np.full((k, k), np.nan)
    for i, f in enumerate(factors):
        m[i, i] = main.get(f, np.nan)
    for (a, b), value in interactions.items():
        if a in factors and b in factors:
            i, j = factors.index(a), factors.index(b)
            m[i, j] = m[j, i] = value
    finite = m[np.isfinite(m)]
    vmax = float(np.abs(finite).max()) if finite.size else 1.0
    fig, ax = plt.subplots(figsize=(1.6 + 0.9 * k, 1.4 + 0.8 * k))
    im = ax.imshow(np.ma.masked_invalid(m), cmap="RdBu_r", vmin=-vmax or -1, vmax=vmax or 1)
    for i in range(k):
        for j in range(k):
            strong = np.isfinite(m[i, j]) and abs(m[i, j]) > 0.6 * vmax
            ax.text(j, i, "n/a" if not np.isfinite(m[i, j]) else f"{m[i, j]:+.2f}",
                    ha="center", va="center", fontsize=8, color="white" if strong else "black")
    ax.set_xticks(range(k), factors, rotation=45, ha="right")
    ax.set_yticks(range(k), factors)
    ax.set_title(title.replace(" · ", "\n"), fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, label="diagonal: main effect; off: interaction")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sweep_curves_png(curves: dict[str, list[list[float]]], path: Path, title: str,
                     ylabel: str) -> Path:
    """One line per configuration: the mean over seeds of a per-epoch metric, with the seeds'
    range shaded (``curves``: configuration → one list of per-epoch values per seed; seeds
    that stopped early end their share of the mean where they stopped)."""
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    for name, per_seed in curves.items():
        longest = max(len(s) for s in per_seed)
        epochs = np.arange(1, longest + 1)
        values = np.full((len(per_seed), longest), np.nan)
        for i, series in enumerate(per_seed):
            values[i, :len(series)] = series
        mean = np.nanmean(values, axis=0)
        line, = ax.plot(epochs, 100 * mean, label=textwrap.shorten(name, 48, placeholder="…"))
        if len(per_seed) > 1:
            ax.fill_between(epochs, 100 * np.nanmin(values, axis=0),
                            100 * np.nanmax(values, axis=0), color=line.get_color(), alpha=0.15)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
