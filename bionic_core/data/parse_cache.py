"""The parse cache: a parsed CSV or folder saved as ``.npz`` beside it (or in a cache folder)."""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bionic_core.data import fer2013
from bionic_core.data.fer2013 import CACHE_SUFFIX, Raw

# 2: PublicTest / PrivateTest are stored as the test splits test_public / test_private
CACHE_VERSION = 2
RAW_SPLITS = ("train", "val", "test_public", "test_private", "test")


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
                for s in RAW_SPLITS
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


def cached_parse(path: Path, fmt: str, parse: Callable[[Path], Raw], cache_dir) -> Raw:
    """``parse(path)``, or its cached result while the source is unchanged."""
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
