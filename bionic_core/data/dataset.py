"""The dataset every run trains on: resolve a name or path, split it into train, validation (a
holdout of the training images) and named test splits, and optionally drop train copies of
test images."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bionic_core.contract.errors import BionicError
from bionic_core.data import demo, fer2013
from bionic_core.data.fer2013 import CLASS_NAMES, SPLIT_USAGE, Raw
from bionic_core.data.holdout import Holdout, stratified_holdout
from bionic_core.data.image_hashes import image_hashes
from bionic_core.data.parse_cache import cached_parse

BUILTIN_DATASETS: dict[str, str] = dict(demo.DEMO_DESCRIPTIONS)
TRAIN, VAL = "train", "val"
# Test splits in the order they are shown: FER-2013's PublicTest and PrivateTest, and a generic
# test part (a folder's test/, a *test*.npz, a separate test_data file, the demo's test split).
TEST_SPLITS = ("test_public", "test_private", "test")
# The primary test split (its metrics are also logged as final_test_*): the first one present.
# A generic test part is one the user named; of FER-2013's two, PrivateTest is the final test.
PRIMARY_TEST_ORDER = ("test", "test_private", "test_public")
SPLIT_ORDER = (TRAIN, VAL, *TEST_SPLITS)


def split_role(name: str) -> str:
    """``train``, ``validation`` or ``test``: what a split is used for."""
    return {TRAIN: "train", VAL: "validation"}.get(name, "test")


@dataclass
class Split:
    images: np.ndarray  # uint8, shape (N, 48, 48)
    labels: np.ndarray  # int64, shape (N,), values 0..6
    origin: str  # human text saying where this split came from
    _hashes: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def hashes(self) -> np.ndarray:
        """One uint64 content hash per image (see :mod:`bionic_core.data.image_hashes`)."""
        if self._hashes is None:
            self._hashes = image_hashes(self.images)
        return self._hashes


@dataclass
class Dataset:
    name: str  # "demo" / "demo-small" for the built-in sets, "fer2013" for FER-2013 files
    is_demo: bool  # True for the synthetic demonstration sets: never report them as FER-2013
    source: str  # absolute path, or "built-in"
    format: str  # "builtin" | "csv" | "folder" | "npz" | "npz-dir"
    splits: dict[str, Split]  # "train", "val" always; zero or more of TEST_SPLITS
    holdout: Holdout | None = None  # how "val" was held out of train; None: val came with it
    deduped: int | None = None  # train images dropped as copies of a test image; None: no dedupe
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    def fingerprint(self) -> str:
        """16 hex chars of a sha256 over every split's name, labels and pixels.

        Two runs may be compared only when this matches (the val holdout seed changes it too).
        """
        if self._fingerprint is None:
            h = hashlib.sha256(b"bionic-dataset-v1")
            for name in sorted(self.splits):
                s = self.splits[name]
                h.update(f"{name}:{s.images.shape}".encode())
                h.update(np.ascontiguousarray(s.labels, dtype=np.int64).tobytes())
                h.update(np.ascontiguousarray(s.images, dtype=np.uint8).tobytes())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def test_splits(self) -> list[str]:
        """The test splits present, in display order."""
        return [s for s in TEST_SPLITS if s in self.splits]

    def primary_test(self) -> str | None:
        """The split ``final_test_*`` metrics come from (None when there is no test split)."""
        return next((s for s in PRIMARY_TEST_ORDER if s in self.splits), None)


def describe(dataset: Dataset) -> dict:
    """Plain-dict summary (JSON-ready): format, source, fingerprint, the validation holdout,
    dedupe, the primary test split, and per split its role, origin and counts per class."""
    splits = {}
    for name in [s for s in SPLIT_ORDER if s in dataset.splits]:
        s = dataset.splits[name]
        counts = np.bincount(s.labels, minlength=len(CLASS_NAMES))
        splits[name] = {
            "n": len(s),
            "role": split_role(name),
            "origin": s.origin,
            "per_class": {c: int(counts[i]) for i, c in enumerate(CLASS_NAMES)},
        }
    h = dataset.holdout
    return {
        "name": dataset.name,
        "is_demo": dataset.is_demo,
        "source": dataset.source,
        "format": dataset.format,
        "fingerprint": dataset.fingerprint(),
        "holdout": None if h is None else {"fraction": h.fraction, "seed": h.seed, "of": h.of},
        "deduped": dataset.deduped,
        "primary_test": dataset.primary_test(),
        "splits": splits,
    }


# ------------------------------------------------------------------------------- resolution


def load_dataset(
    spec: str | os.PathLike,
    *,
    val_fraction: float = 0.1,
    val_seed: int = 0,
    dedupe: bool = False,
    test: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Dataset:
    """Load a built-in set by name (``demo``, ``demo-small``) or FER-2013 from a path.

    A path may be a FER-2013 CSV, a folder (``train/<emotion>/*.png``, ``test/...``), an ``.npz``
    (train only) or a directory of ``*train*.npz`` / ``*publictest*.npz`` / ``*privatetest*.npz``.
    ``val`` is a seeded (``val_seed``) stratified ``val_fraction`` of the training images unless
    the data brings a validation part of its own (a ``val/`` folder, a ``*val*.npz``, the demo
    set's); PublicTest and PrivateTest are the test splits ``test_public`` / ``test_private``.
    ``test`` names a separate file or folder whose whole content becomes the ``test`` split.
    ``dedupe`` drops training images that are pixel copies of a test image (before the holdout).
    """
    if isinstance(spec, str) and spec in BUILTIN_DATASETS:
        parts, origins = _builtin_parts(spec)
        kind = {"name": spec, "is_demo": True, "source": "built-in", "format": "builtin"}
    else:
        path = _existing_path(spec)
        fmt, parts, origins = _read_source(path, cache_dir)
        kind = {"name": "fer2013", "is_demo": False, "source": str(path), "format": fmt}
    if test is not None:
        images, labels, where = read_whole(test, cache_dir)
        parts["test"], origins["test"] = (images, labels), f"all {len(labels)} images of {where}"
    return _assemble(parts, origins, kind, val_fraction=val_fraction, val_seed=val_seed,
                     dedupe=dedupe)


def read_parts(spec: str | os.PathLike,
               cache_dir: str | os.PathLike | None = None) -> dict[str, Split]:
    """The parts of a source as they are stored, in :data:`SPLIT_ORDER` (no holdout, no
    dedupe): ``train``, a ``val`` that came with it, its test splits. A folder or npz
    directory need not have a train part."""
    if isinstance(spec, str) and spec in BUILTIN_DATASETS:
        raw, origins = _builtin_parts(spec)
    else:
        _, raw, origins = _read_source(_existing_path(spec), cache_dir, whole=True)
    return {s: Split(*raw[s], origins[s]) for s in SPLIT_ORDER if s in raw and len(raw[s][1])}


def read_whole(spec: str | os.PathLike,
               cache_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Every image of a source, all its parts concatenated: ``(images, labels, description)``."""
    parts = list(read_parts(spec, cache_dir).values())
    if not parts:
        raise BionicError(f"{spec}: has no images")
    where = (f"the demonstration set {spec!r} (NOT FER-2013)"
             if isinstance(spec, str) and spec in BUILTIN_DATASETS else str(spec))
    return (np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]),
            where)


def _existing_path(spec: str | os.PathLike) -> Path:
    path = Path(spec).expanduser()
    if path.exists():
        return path.resolve()
    known = ", ".join(BUILTIN_DATASETS)
    text = os.fspath(spec)
    if os.sep not in text and "/" not in text and not Path(text).suffix:
        raise BionicError(
            f"{text}: unknown dataset (built-in datasets: {known}); "
            f"or give a path to a FER-2013 .csv, folder or .npz"
        )
    raise BionicError(f"{text}: no such file or directory (built-in datasets: {known})")


def _builtin_parts(name: str) -> tuple[Raw, dict[str, str]]:
    parts: Raw = {}
    origins: dict[str, str] = {}
    for split, (images, labels) in demo.demo_arrays(name).items():
        # copies: the in-process cache is shared and read-only (torch warns on read-only arrays)
        parts[split] = (images.copy(), labels.copy())
        origins[split] = (f"demonstration set {name!r} {split} split "
                          f"(synthetic faces, NOT FER-2013)")
    return parts, origins


def _detect(path: Path) -> str:
    if path.is_dir():
        if fer2013.folder_split_dirs(path) or fer2013.is_class_folder(path):
            return "folder"
        if fer2013.npz_split_files(path):
            return "npz-dir"
        raise BionicError(
            f"{path}: not a dataset folder: expected train/<emotion>/*.png (and test/), "
            f"emotion folders, or *train*.npz / *publictest*.npz / *privatetest*.npz files"
        )
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return "npz"
    if suffix in (".csv", ".txt") or suffix == "":
        return "csv"
    raise BionicError(f"{path}: unknown file type {suffix!r}; expected .csv or .npz (or a folder)")


def _read_source(path: Path, cache_dir, whole: bool = False) -> tuple[str, Raw, dict[str, str]]:
    """Parse ``path`` into raw splits, with a human origin per split.

    ``whole``: the source is read as one set of images, so a folder / npz directory need not
    have a train part.
    """
    fmt = _detect(path)
    if fmt == "npz":
        return fmt, {"train": fer2013.read_npz(path)}, {"train": f"npz file ({path})"}
    if fmt == "npz-dir":
        files = fer2013.npz_split_files(path)
        raw = fer2013.read_npz_dir(path, require_train=not whole)
        return fmt, raw, {s: f"npz file {files[s].name} ({path})" for s in raw}
    if fmt == "csv":
        parse = fer2013.read_csv
    else:

        def parse(p: Path) -> Raw:
            return fer2013.read_folder(p, require_train=False)

    raw = cached_parse(path, fmt, parse, cache_dir)
    if fmt == "folder" and not whole and "train" not in raw:
        raise BionicError(f"{path}: no train/ folder (found {', '.join(raw)} only)")
    if fmt == "csv":
        origins = {s: f"FER-2013 {SPLIT_USAGE[s]} ({path})" for s in raw}
    else:
        dirs = fer2013.folder_split_dirs(path)
        origins = {
            s: f"folder {dirs[s].name}/ ({path})" if s in dirs else f"folder ({path})" for s in raw
        }
    return fmt, raw, origins


def _assemble(parts: Raw, origins: dict[str, str], kind: dict, *, val_fraction: float,
              val_seed: int, dedupe: bool) -> Dataset:
    """Train, validation and test splits from the raw parts of a source."""
    where = kind["source"] if kind["format"] != "builtin" else kind["name"]
    what = "Training rows" if kind["format"] == "csv" else "train images"
    if "train" not in parts or len(parts["train"][1]) == 0:
        raise BionicError(f"{where}: the train split is empty (no {what})")
    tests = {s: Split(*parts[s], origins[s]) for s in TEST_SPLITS
             if s in parts and len(parts[s][1])}
    images, labels = parts["train"]
    hashes = image_hashes(images)
    train_origin, deduped = origins["train"], None
    if dedupe:
        test_hashes = [t.hashes() for t in tests.values()]
        copies = np.isin(hashes, np.concatenate([np.zeros(0, np.uint64), *test_hashes]))
        deduped = int(copies.sum())
        images, labels, hashes = images[~copies], labels[~copies], hashes[~copies]
        train_origin += f", less {deduped} pixel copies of test images (dedupe)"
        if len(labels) == 0:
            raise BionicError(f"{where}: dedupe leaves no training image (all copy test images)")
    splits: dict[str, Split] = {}
    holdout = None
    if "val" in parts and len(parts["val"][1]):
        splits[TRAIN] = Split(images, labels, train_origin, hashes)
        splits[VAL] = Split(*parts["val"], origins["val"])
    else:
        holdout = Holdout(val_fraction, val_seed, origins["train"])
        splits[TRAIN], splits[VAL] = _hold_out(where, images, labels, hashes, train_origin,
                                               holdout)
    splits.update(tests)
    return Dataset(**kind, splits=splits, holdout=holdout, deduped=deduped)


def _hold_out(where: str, images: np.ndarray, labels: np.ndarray, hashes: np.ndarray,
              train_origin: str, holdout: Holdout) -> tuple[Split, Split]:
    """The train and validation splits: ``holdout`` of the training images, copies together."""
    if not 0.0 < holdout.fraction < 1.0:
        raise BionicError(
            f"{where}: no validation split and val_fraction={holdout.fraction} is not in (0, 1)"
        )
    held = stratified_holdout(labels, holdout.fraction, holdout.seed, groups=hashes)
    if not held.any():
        raise BionicError(
            f"{where}: the train split has too few distinct images per class ({len(labels)} "
            f"images, {len(np.unique(hashes))} distinct) to hold out a validation split"
        )
    pct = f"{holdout.fraction * 100:g}%"
    train = Split(images[~held], labels[~held], f"{train_origin} minus the {pct} validation "
                  f"holdout", hashes[~held])
    val = Split(images[held], labels[held], holdout.describe(), hashes[held])
    return train, val
