"""The per-image paired test of a :class:`~bionic_core.studies.comparison.Comparison`: each
configuration's runs against the reference's runs of the same seeds on the same images (exact
McNemar, discordant counts summed over seeds; see :mod:`bionic_core.studies.paired_images`),
Holm-adjusted over each sweep's family like the seed-level t-test."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from bionic_core.studies.comparison_model import Comparison, Row
from bionic_core.studies.multiple_testing import family_size, holm
from bionic_core.studies.paired_images import pooled_mcnemar
from bionic_core.studies.tracking import Tracker
from bionic_core.training.metrics import read_per_image


class _Predictions:
    """Each run's per-image labels and predictions on the compared split, read once from its
    ``metrics.json`` artifact (None when the run did not log them)."""

    def __init__(self, tracker: Tracker, split: str) -> None:
        self.tracker, self.split = tracker, split
        self._cache: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}

    def __call__(self, run_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        if run_id not in self._cache:
            self._cache[run_id] = self._read(run_id)
        return self._cache[run_id]

    def _read(self, run_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = Path(self.tracker.download_artifacts(run_id, "metrics.json", tmp))
                record = json.loads(path.read_text())
            except Exception:  # noqa: BLE001 - no artifact, or unreadable: no predictions
                return None
        per_image = (record.get(self.split) or {}).get("per_image")
        return None if per_image is None else read_per_image(per_image)


def _seed_pairs(row: Row, reference: Row, predictions: _Predictions
                ) -> tuple[list[tuple[np.ndarray, np.ndarray]], str | None]:
    """(this run correct, reference run correct) for every seed both have, or why not."""
    ref_runs = dict(zip(reference.seeds, reference.run_ids, strict=True))
    pairs = []
    for seed, run_id in zip(row.seeds, row.run_ids, strict=True):
        if seed not in ref_runs:
            continue
        mine, theirs = predictions(run_id), predictions(ref_runs[seed])
        if mine is None or theirs is None:
            return [], f"seed {seed} has no per-image predictions (logged since this version)"
        if mine[0].shape != theirs[0].shape or not np.array_equal(mine[0], theirs[0]):
            return [], f"seed {seed} was not evaluated on the same images as the reference"
        pairs.append((mine[1] == mine[0], theirs[1] == theirs[0]))
    return pairs, None if pairs else "no seed in common with the reference"


def add_image_tests(comparison: Comparison, tracker: Tracker) -> None:
    """McNemar (exact, pooled over seeds) for every row with a Δ, Holm over each sweep's
    rows; rows that cannot be paired image by image are named in a note."""
    reference = next((r for r in comparison.rows if r.name == comparison.reference), None)
    if reference is None or not reference.seeds:
        comparison.notes.append("McNemar: no reference runs to pair with")
        return
    predictions = _Predictions(tracker, comparison.split)
    skipped: list[str] = []
    with tracker.contact():
        for r in comparison.rows:
            if r is reference or r.delta is None:
                continue
            pairs, why = _seed_pairs(r, reference, predictions)
            if why is not None:
                skipped.append(f"{r.name} ({why})")
                continue
            r.images = pooled_mcnemar(pairs)
    _adjust(comparison)
    if skipped:
        comparison.notes.append("McNemar not computed for " + "; ".join(skipped))


def _adjust(comparison: Comparison) -> None:
    by_sweep: dict[str, list[Row]] = {}
    for r in comparison.rows:
        if r.images is not None:
            by_sweep.setdefault(r.sweep_id, []).append(r)
    for sweep_id, rows in by_sweep.items():
        p = [r.images.p_value for r in rows]
        for r, adjusted in zip(rows, holm(p), strict=True):
            r.images_p_holm = adjusted
        comparison.families.append({"sweep_id": sweep_id, "what": "McNemar vs reference",
                                    "m": family_size(p), "method": "holm"})
    if by_sweep:
        comparison.notes.append(
            "McNemar: exact binomial test on the images one model classifies correctly and "
            "the other not, counts summed over the seed pairs (each seed's run against the "
            "reference's run of that seed); it tests these trained models on these images, "
            "not the seed-to-seed variation of training; Holm over each sweep's rows")

