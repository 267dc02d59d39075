"""The content hashes of a run's training images, recorded with the run, so that an evaluation
can tell whether the images it is given include ones the model was trained on."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from bionic_core.data import Dataset
from bionic_core.studies.tracking import Tracker

ARTIFACT_DIR = "data"
ARTIFACT_NAME = "train_image_hashes.npy"  # sorted unique uint64, one per training image
ARTIFACT = f"{ARTIFACT_DIR}/{ARTIFACT_NAME}"


def log_training_images(tracker: Tracker, run_id: str, data: Dataset) -> None:
    """Record the content hash of every image of ``data``'s train split (8 bytes an image)."""
    hashes = np.unique(data.splits["train"].hashes())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ARTIFACT_NAME
        np.save(path, hashes, allow_pickle=False)
        tracker.log_file(run_id, path, ARTIFACT_DIR)


def read_training_images(path: Path) -> np.ndarray:
    """The hashes saved by :func:`log_training_images`, from a downloaded artifact file."""
    return np.load(path, allow_pickle=False).astype(np.uint64)


def count_trained_on(training: np.ndarray, hashes: np.ndarray) -> int:
    """How many of the images with ``hashes`` are pixel copies of a training image."""
    return int(np.isin(hashes, training).sum())
