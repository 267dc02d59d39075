"""A small FER-2013-like npz directory with the real dataset's flaws: Training, PublicTest and
PrivateTest files, exact duplicates within Training and across splits, and blank images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PER_CLASS = 10  # Training images per class
PUBLIC_COPIES = (0, 11, 22)  # Training rows copied into PublicTest (3 cross-split duplicates)
TRAIN_REPEATS = ((5, 40), (6, 41))  # (row, copied over row): 2 duplicates within Training
BLANK_TRAIN = (30, 31)  # all-black Training rows (also a duplicate pair), label 2
BLANK_PUBLIC = 13  # an all-black PublicTest row: a copy of the blank Training images


def faces(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    images = np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8)
    return images, np.arange(n, dtype=np.int64) % 7


def write_fer_dir(root: Path, *, private: bool = True) -> Path:
    """``fer2013_train.npz`` (70 images), ``fer2013_publictest.npz`` (14),
    ``fer2013_privatetest.npz`` (7, no duplicates); see the module constants for the flaws."""
    root.mkdir(parents=True, exist_ok=True)
    train, train_labels = faces(7 * PER_CLASS, seed=1)
    for row, over in TRAIN_REPEATS:
        train[over], train_labels[over] = train[row], train_labels[row]
    train[list(BLANK_TRAIN)] = 0
    public, public_labels = faces(14, seed=2)
    for k, row in enumerate(PUBLIC_COPIES):
        public[k], public_labels[k] = train[row], train_labels[row]
    public[BLANK_PUBLIC] = 0
    np.savez(root / "fer2013_train.npz", images=train, labels=train_labels)
    np.savez(root / "fer2013_publictest.npz", images=public, labels=public_labels)
    if private:
        images, labels = faces(7, seed=3)
        np.savez(root / "fer2013_privatetest.npz", images=images, labels=labels)
    return root
