"""Figures logged with runs: confusion matrix and learning curves (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
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


def ablation_deltas_png(bars: Sequence[dict], path: Path, title: str, xlabel: str,
                        reference_label: str) -> Path:
    """Horizontal bars of Δ versus the reference (``bars``: name, group, delta, ci_low,
    ci_high), grouped structural / functional / mixed, with 95 % CI error bars; the reference
    is the vertical line at 0."""
    order = ["structural", "functional", "mixed", "none"]
    ordered = sorted(bars, key=lambda b: (order.index(b["group"]) if b["group"] in order
                                          else len(order)))
    n = len(ordered)
    fig, ax = plt.subplots(figsize=(7.5, 1.8 + 0.42 * n))
    y = np.arange(n)[::-1]
    deltas = np.array([b["delta"] for b in ordered], dtype=float)
    low = np.array([b["ci_low"] for b in ordered], dtype=float)
    high = np.array([b["ci_high"] for b in ordered], dtype=float)
    has_ci = np.isfinite(low) & np.isfinite(high)
    err = np.vstack([np.where(has_ci, deltas - low, 0.0), np.where(has_ci, high - deltas, 0.0)])
    colours = [_GROUP_COLOURS.get(b["group"], "#7a7a7a") for b in ordered]
    ax.barh(y, deltas, color=colours, xerr=err, capsize=3, ecolor="black", height=0.6)
    reference = ax.axvline(0.0, color="black", linewidth=1.2, linestyle="--")
    ax.set_yticks(y, [b["name"] for b in ordered])
    ax.set_xlabel(xlabel)
    groups = [b["group"] for b in ordered]
    for i in range(1, n):  # a thin rule between the groups
        if groups[i] != groups[i - 1]:
            ax.axhline(y[i] + 0.5, color="#bbbbbb", linewidth=0.8)
    handles = [reference] + [Patch(color=_GROUP_COLOURS.get(g, "#7a7a7a"), label=g)
                             for g in dict.fromkeys(groups)]
    ax.legend(handles, [reference_label, *dict.fromkeys(groups)], fontsize=8, loc="best")
    ax.set_title(title.replace(" · ", "\n"), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
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
