"""The dataset every run trains on: resolve a name or path, cache parses, hold out validation."""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bionic_core.contract.errors import BionicError
from bionic_core.data import demo, fer2013
from bionic_core.data.fer2013 import CACHE_SUFFIX, CLASS_NAMES, SPLIT_USAGE, Raw

BUILTIN_DATASETS: dict[str, str] = dict(demo.DEMO_DESCRIPTIONS)
CACHE_VERSION = 1
SPLIT_ORDER = ("train", "val", "test")


@dataclass
class Split:
    images: np.ndarray  # uint8, shape (N, 48, 48)
    labels: np.ndarray  # int64, shape (N,), values 0..6
    origin: str  # human text saying where this split came from

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class Dataset:
    name: str  # "demo" / "demo-small" for the built-in sets, "fer2013" for FER-2013 files
    is_demo: bool  # True for the synthetic demonstration sets: never report them as FER-2013
    source: str  # absolute path, or "built-in"
    format: str  # "builtin" | "csv" | "folder" | "npz" | "npz-dir"
    splits: dict[str, Split]  # "train", "val" always; "test" when available
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


def describe(dataset: Dataset) -> dict:
    """Plain-dict summary (JSON-ready): format, source, fingerprint, counts per split and class."""
    splits = {}
    for name in [s for s in SPLIT_ORDER if s in dataset.splits]:
        s = dataset.splits[name]
        counts = np.bincount(s.labels, minlength=len(CLASS_NAMES))
        splits[name] = {
            "n": len(s),
            "origin": s.origin,
            "per_class": {c: int(counts[i]) for i, c in enumerate(CLASS_NAMES)},
        }
    return {
        "name": dataset.name,
        "is_demo": dataset.is_demo,
        "source": dataset.source,
        "format": dataset.format,
        "fingerprint": dataset.fingerprint(),
        "splits": splits,
    }


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of a seeded, per-class ``fraction`` of ``labels`` (deterministic).

    Every class with at least 2 samples gives at least 1 and keeps at least 1.
    """
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for c in range(len(CLASS_NAMES)):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            continue
        k = min(max(int(round(fraction * len(idx))), 1), len(idx) - 1)
        mask[rng.permutation(idx)[:k]] = True
    return mask


# ------------------------------------------------------------------------------- resolution


def load_dataset(
    spec: str | os.PathLike,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    test: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Dataset:
    """Load a built-in set by name (``demo``, ``demo-small``) or FER-2013 from a path.

    A path may be a FER-2013 CSV, a folder (``train/<emotion>/*.png``, ``test/...``), an ``.npz``
    (train only) or a directory of ``*train*.npz`` / ``*publictest*.npz`` / ``*privatetest*.npz``.
    Without a validation split, ``val`` is a seeded stratified ``val_fraction`` of train.
    ``test`` names a separate file or folder whose whole content becomes the test split.
    """
    if isinstance(spec, str) and spec in BUILTIN_DATASETS:
        ds = _load_builtin(spec)
    else:
        path = _existing_path(spec)
        fmt, raw, origins = _read_source(path, cache_dir)
        ds = _assemble(path, fmt, raw, origins, seed, val_fraction)
    if test is not None:
        tpath = _existing_path(test)
        images, labels, fmt = _read_whole(tpath, cache_dir)
        ds.splits["test"] = Split(images, labels, f"all {len(labels)} images of {tpath} ({fmt})")
        ds._fingerprint = None
    return ds


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


def _load_builtin(name: str) -> Dataset:
    splits = {}
    for split, (images, labels) in demo.demo_arrays(name).items():
        # copies: the in-process cache is shared and read-only (torch warns on read-only arrays)
        splits[split] = Split(
            images.copy(),
            labels.copy(),
            f"demonstration set {name!r} {split} split (synthetic faces, NOT FER-2013)",
        )
    return Dataset(name=name, is_demo=True, source="built-in", format="builtin", splits=splits)


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

    ``whole``: the source is a test set, so a folder / npz directory need not have a train part.
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

    raw = _cached(path, fmt, parse, cache_dir)
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


def _assemble(
    path: Path, fmt: str, raw: Raw, origins: dict[str, str], seed: int, val_fraction: float
) -> Dataset:
    what = "Training rows" if fmt == "csv" else "train images"
    if "train" not in raw or len(raw["train"][1]) == 0:
        raise BionicError(f"{path}: the train split is empty (no {what})")
    splits: dict[str, Split] = {}
    images, labels = raw["train"]
    if "val" in raw and len(raw["val"][1]):
        splits["train"] = Split(images, labels, origins["train"])
        splits["val"] = Split(*raw["val"], origins["val"])
    else:
        if not 0.0 < val_fraction < 1.0:
            raise BionicError(
                f"{path}: no validation split and val_fraction={val_fraction} is not in (0, 1)"
            )
        held = stratified_holdout(labels, val_fraction, seed)
        if not held.any():
            raise BionicError(
                f"{path}: the train split ({len(labels)} images) is too small "
                f"to hold out a validation split"
            )
        pct = f"{val_fraction * 100:g}%"
        src = "Training" if fmt == "csv" else "train"
        splits["train"] = Split(
            images[~held], labels[~held], f"{origins['train']} minus the {pct} holdout"
        )
        splits["val"] = Split(
            images[held], labels[held], f"seeded stratified {pct} holdout of {src} (seed {seed})"
        )
    if "test" in raw and len(raw["test"][1]):
        splits["test"] = Split(*raw["test"], origins["test"])
    return Dataset(name="fer2013", is_demo=False, source=str(path), format=fmt, splits=splits)


def _read_whole(path: Path, cache_dir) -> tuple[np.ndarray, np.ndarray, str]:
    """Every image of a source, all splits concatenated (for ``test=``)."""
    fmt, raw, _ = _read_source(path, cache_dir, whole=True)
    parts = [raw[s] for s in SPLIT_ORDER if s in raw]
    images = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, 48, 48), np.uint8)
    labels = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0,), np.int64)
    if len(labels) == 0:
        raise BionicError(f"{path}: the test split is empty")
    return images, labels, fmt


# ------------------------------------------------------------------------------------ cache


def source_fingerprint(path: Path, fmt: str) -> str:
    """Cheap change detector: size + mtime_ns of the file, or of every image of a folder."""
    if fmt == "csv":
        st = path.stat()
        return f"{CACHE_VERSION}:csv:{st.st_size}:{st.st_mtime_ns}"
    h = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if Path(f).suffix.lower() in fer2013.IMAGE_SUFFIXES:
                p = Path(root, f)
                st = p.stat()
                h.update(f"{p.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return f"{CACHE_VERSION}:folder:{h.hexdigest()}"


def cache_candidates(path: Path, cache_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where the parse cache of ``path`` lives: next to it, else in ``cache_dir``."""
    beside = path.parent / f"{path.name}{CACHE_SUFFIX}"
    base = Path(cache_dir).expanduser() if cache_dir else Path.home() / ".cache" / "bionic"
    tag = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    return [beside, base / f"{path.name}-{tag}{CACHE_SUFFIX}"]


def _read_cache(file: Path, fingerprint: str) -> Raw | None:
    try:
        with np.load(file, allow_pickle=False) as z:
            if str(z["source_fingerprint"]) != fingerprint:
                return None
            return {
                s: (z[f"{s}_images"], z[f"{s}_labels"])
                for s in SPLIT_ORDER
                if f"{s}_images" in z.files
            }
    except Exception:  # a corrupt or foreign cache is simply rebuilt
        return None


def _writable(directory: Path) -> bool:
    """Writable for us, and not deliberately read-only (root ignores missing write bits)."""
    return os.access(directory, os.W_OK) and bool(directory.stat().st_mode & 0o222)


def _savez_fast(fh, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` at zlib level 1: FER pixels barely compress, level 6 is 4x slower."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, arr in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asanyarray(arr), allow_pickle=False)


def _write_cache(candidates: list[Path], fingerprint: str, raw: Raw) -> Path | None:
    arrays = {"source_fingerprint": np.array(fingerprint)}
    for s, (images, labels) in raw.items():
        arrays[f"{s}_images"] = images
        arrays[f"{s}_labels"] = labels
    for file in candidates:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            if not _writable(file.parent):
                continue
            fd, tmp = tempfile.mkstemp(prefix=".bionic-tmp-", suffix=".npz", dir=file.parent)
        except OSError:
            continue
        try:
            with os.fdopen(fd, "wb") as fh:
                _savez_fast(fh, arrays)
            os.chmod(tmp, 0o644)
            os.replace(tmp, file)
            return file
        except OSError:
            Path(tmp).unlink(missing_ok=True)
    return None


def _cached(path: Path, fmt: str, parse, cache_dir) -> Raw:
    fingerprint = source_fingerprint(path, fmt)
    candidates = cache_candidates(path, cache_dir)
    for file in candidates:
        if file.is_file():
            raw = _read_cache(file, fingerprint)
            if raw is not None:
                return raw
    raw = parse(path)
    _write_cache(candidates, fingerprint, raw)
    return raw
