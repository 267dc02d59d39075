"""Classification metrics: accuracy, macro-F1, per-class precision/recall, confusion, ROC-AUC."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    return np.bincount(labels * n_classes + predictions,
                       minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def roc_auc_ovr(labels: np.ndarray, scores: np.ndarray) -> list[float]:
    """One-vs-rest ROC-AUC per class (Mann–Whitney form, ties averaged); nan for absent classes."""
    aucs = []
    for c in range(scores.shape[1]):
        positive = labels == c
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        if n_pos == 0 or n_neg == 0:
            aucs.append(float("nan"))
            continue
        ranks = rankdata(scores[:, c])
        aucs.append(float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)))
    return aucs


# One character per image for a class index: per-image labels and predictions as compact text.
_CLASS_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"


def per_image_record(labels: np.ndarray, predictions: np.ndarray) -> dict[str, str]:
    """Every image's label and predicted class, one character per image (0-9, a-z), in split
    order: what a per-image paired test of two runs on the same images needs, kept as JSON."""
    table = np.frombuffer(_CLASS_CHARS.encode(), dtype=np.uint8)
    return {"labels": table[labels].tobytes().decode(),
            "predictions": table[predictions].tobytes().decode()}


def read_per_image(record: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """(labels, predictions) of a :func:`per_image_record`."""
    lookup = np.full(256, -1, dtype=np.int64)
    lookup[np.frombuffer(_CLASS_CHARS.encode(), dtype=np.uint8)] = np.arange(len(_CLASS_CHARS))
    return tuple(lookup[np.frombuffer(record[k].encode(), dtype=np.uint8)]
                 for k in ("labels", "predictions"))


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor,
                           class_names: tuple[str, ...]) -> dict[str, Any]:
    """All metrics of one split from its logits; scalar metrics are floats. A class never
    predicted has an undefined precision (None), not 0."""
    n = len(class_names)
    probs = torch.softmax(logits.float(), dim=1).cpu().numpy()
    y = labels.cpu().numpy().astype(np.int64)
    pred = probs.argmax(axis=1)
    cm = confusion_matrix(y, pred, n)
    tp = np.diag(cm).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(cm.sum(0) > 0, tp / cm.sum(0), np.nan)
        recall = np.where(cm.sum(1) > 0, tp / cm.sum(1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = cm.sum(1) > 0
    aucs = roc_auc_ovr(y, probs)
    valid_aucs = [a for a in aucs if a == a]
    return {
        "accuracy": float(tp.sum() / max(len(y), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "roc_auc": float(np.mean(valid_aucs)) if valid_aucs else float("nan"),
        "n": int(len(y)),
        "per_class": {
            name: {"precision": float(precision[i]) if np.isfinite(precision[i]) else None,
                   "recall": float(recall[i]),
                   "f1": float(f1[i]), "roc_auc": aucs[i], "support": int(cm[i].sum())}
            for i, name in enumerate(class_names)
        },
        "confusion": cm.tolist(),
        "per_image": per_image_record(y, pred),
    }
