"""Readers for FER-2013 in its real formats: the original CSV, the folder layout, npz files.

Every reader returns raw splits as ``{split: (images uint8 (N,48,48), labels int64 (N,))}``
with split names ``train`` (FER-2013 Training, or a train folder / file), ``val`` (a validation
folder or file the user provides), ``test_public`` / ``test_private`` (FER-2013 PublicTest /
PrivateTest) and ``test`` (a generic test folder or file); holdouts and caching live in
``dataset.py``.
Errors are one-line :class:`BionicError` messages that name the file (and line / key) first.
"""

from __future__ import annotations

import csv
import io
import re
import sys
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from bionic_core.contract.errors import BionicError

CLASS_NAMES: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
IMAGE_SIZE = 48
N_PIXELS = IMAGE_SIZE * IMAGE_SIZE

# CSV Usage value -> split name: PublicTest and PrivateTest are test splits, never validation
USAGE_SPLITS = {"Training": "train", "PublicTest": "test_public", "PrivateTest": "test_private"}
SPLIT_USAGE = {v: k for k, v in USAGE_SPLITS.items()}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
CACHE_SUFFIX = ".bionic-cache.npz"

Raw = dict[str, tuple[np.ndarray, np.ndarray]]
# What numpy and zipfile raise for a truncated or corrupted .npz (a zip archive).
DAMAGED_ARCHIVE = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8), np.zeros((0,), np.int64)


# ----------------------------------------------------------------------------------------- CSV


def read_csv(path: Path) -> Raw:
    """Parse ``emotion,pixels[,Usage]``; rows without a Usage column count as Training.

    Lines are numbered as in a text editor (the header is line 1). The pixel strings are
    parsed in one vectorised pass over the whole column, so the 300 MB original takes seconds.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise BionicError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise BionicError(f"{path}: not a UTF-8 CSV text file ({e.reason})") from None
    rows = _csv_rows(text)
    del text
    try:
        _, header = next(rows)
    except StopIteration:
        raise BionicError(f"{path}: empty file, expected a header emotion,pixels,Usage") from None
    except csv.Error as e:
        raise BionicError(f"{path}: line 1: not a CSV text file ({e})") from None
    cols = {h.strip().lower(): i for i, h in enumerate(header)}
    missing = [c for c in ("emotion", "pixels") if c not in cols]
    if missing:
        raise BionicError(
            f"{path}: line 1: missing column(s) {', '.join(missing)}; "
            f"expected header emotion,pixels,Usage, got {','.join(header)[:80]}"
        )
    i_emo, i_pix, i_use = cols["emotion"], cols["pixels"], cols.get("usage")
    n_cols = len(header)
    emotions: list[str] = []
    pixels: list[str] = []
    usages: list[str] = []
    lines: list[int] = []
    line = 1
    try:
        for line, row in rows:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if len(row) != n_cols:
                raise BionicError(
                    f"{path}: line {line}: has {len(row)} fields, "
                    f"expected {n_cols} ({','.join(header)})"
                )
            emotions.append(row[i_emo])
            pixels.append(row[i_pix])
            usages.append(row[i_use].strip() if i_use is not None else "Training")
            lines.append(line)
    except csv.Error as e:
        raise BionicError(f"{path}: line {line + 1}: unreadable CSV ({e})") from None

    lines_a = np.asarray(lines, dtype=np.int64)
    labels = _parse_labels(path, emotions, lines_a)
    images = _parse_pixels(path, pixels, lines_a)

    usage_a = np.asarray(usages, dtype=object)
    known = np.isin(usage_a, list(USAGE_SPLITS))
    if not known.all():
        bad = int(np.argmin(known))
        raise BionicError(
            f"{path}: line {lines[bad]}: unknown Usage {usages[bad]!r}, "
            f"expected one of {', '.join(USAGE_SPLITS)}"
        )
    out: Raw = {}
    for usage, split in USAGE_SPLITS.items():
        sel = usage_a == usage
        if sel.any():
            out[split] = (images[sel], labels[sel])
    return out


def _csv_rows(text: str):
    """Yield ``(line_number, fields)``; a plain split when nothing is quoted (10x faster)."""
    if '"' not in text:
        for k, raw_line in enumerate(text.split("\n"), start=1):
            yield k, raw_line.rstrip("\r").split(",") if raw_line.strip() else []
        return
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 24))
    reader = csv.reader(io.StringIO(text, newline=""))
    for row in reader:
        yield reader.line_num, row


def _parse_labels(path: Path, emotions: list[str], lines: np.ndarray) -> np.ndarray:
    labels = np.empty(len(emotions), dtype=np.int64)
    for k, e in enumerate(emotions):
        s = e.strip()
        if not s.isdigit() or int(s) > 6:
            raise BionicError(
                f"{path}: line {lines[k]}: emotion {e!r} is not a label 0-6 "
                f"({', '.join(f'{i} {c}' for i, c in enumerate(CLASS_NAMES))})"
            )
        labels[k] = int(s)
    return labels


_PIXELS_RE = re.compile(r"\s*\d+(?:\s+\d+)*\s*")


def _parse_pixels(path: Path, pixels: list[str], lines: np.ndarray) -> np.ndarray:
    """Parse all pixel strings at once with numpy's C text parser.

    The fast path is one ``np.fromstring`` over the joined column; only when something is
    wrong do we scan row by row, to name the first bad line.
    """
    n = len(pixels)
    if n == 0:
        return _empty()[0]
    # cheap per-row count (single-space separated, as in the original); verify mismatches exactly
    for k, p in enumerate(pixels):
        if p.count(" ") + 1 != N_PIXELS:
            _check_row(path, p, int(lines[k]))
    values = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            values = np.fromstring(" ".join(pixels), dtype=np.int32, sep=" ")
        except (ValueError, DeprecationWarning):
            values = None
    if values is None or values.size != n * N_PIXELS:
        for k, p in enumerate(pixels):
            _check_row(path, p, int(lines[k]))
        raise BionicError(f"{path}: pixels column could not be parsed")  # not reached
    bad = (values < 0) | (values > 255)
    if bad.any():
        t = int(np.argmax(bad))
        raise BionicError(
            f"{path}: line {lines[t // N_PIXELS]}: pixel {t % N_PIXELS + 1} is {values[t]}, "
            f"expected 0-255"
        )
    return values.astype(np.uint8).reshape(n, IMAGE_SIZE, IMAGE_SIZE)


def _check_row(path: Path, p: str, line: int) -> None:
    if p.strip() and not _PIXELS_RE.fullmatch(p):
        bad = next((t for t in p.split() if not t.isdigit()), p.strip()[:20])
        raise BionicError(f"{path}: line {line}: pixels contains a non-numeric value {bad[:20]!r}")
    count = len(p.split())
    if count != N_PIXELS:
        raise BionicError(f"{path}: line {line}: pixels has {count} values, expected {N_PIXELS}")


# -------------------------------------------------------------------------------------- folder

_SPLIT_DIRS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


def emotion_label(name: str) -> int | None:
    """Class folder name -> label: a class name (any case) or a digit 0-6."""
    s = name.strip()
    if s.isdigit() and len(s) == 1 and int(s) <= 6:
        return int(s)
    lower = [c.lower() for c in CLASS_NAMES]
    return lower.index(s.lower()) if s.lower() in lower else None


def _visible_dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def folder_split_dirs(path: Path) -> dict[str, Path]:
    """``{split: dir}`` for the split folders (train/, val/ or validation/, test/) in ``path``."""
    found: dict[str, Path] = {}
    for d in _visible_dirs(path):
        split = _SPLIT_DIRS.get(d.name.lower())
        if split is None:
            continue
        if split in found:
            raise BionicError(
                f"{path}: both {found[split].name}/ and {d.name}/ hold the {split} split"
            )
        found[split] = d
    return found


def is_class_folder(path: Path) -> bool:
    """True when ``path`` directly holds emotion folders (angry/, 3/, ...)."""
    dirs = _visible_dirs(path)
    return bool(dirs) and all(emotion_label(d.name) is not None for d in dirs)


def image_files(split_dir: Path) -> list[tuple[Path, int]]:
    """All images under ``split_dir/<emotion>/`` as ``(file, label)``, in a stable order."""
    out: list[tuple[Path, int]] = []
    for d in _visible_dirs(split_dir):
        label = emotion_label(d.name)
        if label is None:
            raise BionicError(
                f"{d}: unknown emotion folder {d.name!r}; expected a class name "
                f"({', '.join(c.lower() for c in CLASS_NAMES)}) or a digit 0-6"
            )
        files = sorted(
            f
            for f in d.iterdir()
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")
        )
        out.extend((f, label) for f in files)
    return out


def read_image_files(files: list[tuple[Path, int]]) -> tuple[np.ndarray, np.ndarray, int]:
    """Decode 48x48 images; returns ``(images, labels, n_converted_from_colour)``."""
    from PIL import Image, UnidentifiedImageError

    images = np.empty((len(files), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    labels = np.fromiter((lab for _, lab in files), dtype=np.int64, count=len(files))
    converted = 0
    for k, (f, _) in enumerate(files):
        try:
            with Image.open(f) as im:
                if im.size != (IMAGE_SIZE, IMAGE_SIZE):
                    raise BionicError(f"{f}: image is {im.size[0]}x{im.size[1]}, expected 48x48")
                if im.mode != "L":
                    if im.mode not in ("1", "I", "I;16", "F"):  # colour: RGB, RGBA, LA, P
                        converted += 1
                    im = im.convert("L")
                images[k] = np.asarray(im, dtype=np.uint8)
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise BionicError(f"{f}: cannot read image ({e.__class__.__name__}: {e})") from None
    return images, labels, converted


def read_folder(path: Path, require_train: bool = True) -> Raw:
    """Folder layout ``train/<emotion>/*.png`` (+ ``test/``, ``val/``), or class folders directly.

    Class folders directly under ``path`` (no split folders) are all train.
    """
    splits = folder_split_dirs(path)
    if not splits:
        if is_class_folder(path):
            splits = {"train": path}
        else:
            raise BionicError(
                f"{path}: not a dataset folder: expected train/<emotion>/*.png (and test/), "
                f"emotion folders, or .npz files"
            )
    if require_train and "train" not in splits:
        raise BionicError(
            f"{path}: no train/ folder (found {', '.join(s.name for s in splits.values())}/)"
        )
    out: Raw = {}
    total_converted = 0
    for split, d in splits.items():
        files = image_files(d)
        if not files:
            raise BionicError(
                f"{d}: the {split} split is empty (no .png/.jpg images in <emotion>/ folders)"
            )
        images, labels, converted = read_image_files(files)
        total_converted += converted
        out[split] = (images, labels)
    if total_converted:
        print(
            f"warning: {path}: converted {total_converted} colour images to grayscale",
            file=sys.stderr,
        )
    return out


# ----------------------------------------------------------------------------------------- npz


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One npz with ``images`` (N,48,48) 0-255 and ``labels`` (N,) 0-6; returns uint8 / int64."""
    try:
        z = np.load(path, allow_pickle=False)
    except DAMAGED_ARCHIVE as e:
        raise BionicError(f"{path}: not a readable .npz file ({e})") from None
    with z:
        keys = set(z.files)
        for key in ("images", "labels"):
            if key not in keys:
                raise BionicError(
                    f"{path}: missing key {key!r} (has {', '.join(sorted(keys)) or 'no arrays'}); "
                    f"expected images uint8 Nx48x48 and labels int64 N"
                )
        try:
            images, labels = z["images"], z["labels"]
        except ValueError as e:  # object arrays need pickle
            raise BionicError(f"{path}: unreadable array ({e})") from None
        except DAMAGED_ARCHIVE as e:  # truncated or corrupted after its table of contents
            raise BionicError(f"{path}: damaged .npz file ({type(e).__name__}: {e})") from None
    images = _check_images(path, images)
    labels = _check_labels(path, labels, len(images))
    return images, labels


def _check_images(path: Path, images: np.ndarray) -> np.ndarray:
    shape = images.shape
    if images.ndim == 2 and shape[1] == N_PIXELS:
        images = images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    elif images.ndim == 4 and shape[1:] == (IMAGE_SIZE, IMAGE_SIZE, 1):
        images = images[..., 0]
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise BionicError(f"{path}: key 'images' has shape {shape}, expected (N, 48, 48)")
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind not in "iuf":
        raise BionicError(f"{path}: key 'images' has dtype {images.dtype}, expected uint8")
    if images.size and (
        np.nanmin(images) < 0
        or np.nanmax(images) > 255
        or np.isnan(images).any()
        or (images != np.round(images)).any()
    ):
        raise BionicError(
            f"{path}: key 'images' has dtype {images.dtype} with values outside the integers "
            f"0-255 (range {np.nanmin(images):g}..{np.nanmax(images):g}), expected uint8"
        )
    return images.astype(np.uint8)


def _check_labels(path: Path, labels: np.ndarray, n: int) -> np.ndarray:
    if labels.ndim != 1 or len(labels) != n:
        raise BionicError(
            f"{path}: key 'labels' has shape {labels.shape}, expected ({n},) like images"
        )
    if labels.dtype.kind not in "iuf" or (labels.size and (labels != np.round(labels)).any()):
        raise BionicError(f"{path}: key 'labels' has dtype {labels.dtype}, expected int64 0-6")
    if labels.size and (labels.min() < 0 or labels.max() > 6):
        bad = int(np.argmax((labels < 0) | (labels > 6)))
        raise BionicError(f"{path}: key 'labels'[{bad}] is {labels[bad]:g}, expected a label 0-6")
    return labels.astype(np.int64)


def npz_split_files(path: Path) -> dict[str, Path]:
    """Map the ``*.npz`` files of a directory to splits by name; others are ignored.

    ``publictest`` -> test_public, ``privatetest`` -> test_private, ``val`` -> val, ``test`` ->
    test, ``train`` -> train. The FER-2013 names are matched before the generic ``test``.
    """
    found: dict[str, Path] = {}
    for f in sorted(path.iterdir()):
        name = f.name.lower()
        if not f.is_file() or not name.endswith(".npz") or name.endswith(CACHE_SUFFIX):
            continue
        stem = name[:-4]
        if "publictest" in stem:
            split = "test_public"
        elif "privatetest" in stem:
            split = "test_private"
        elif re.search(r"val", stem):
            split = "val"
        elif "test" in stem:
            split = "test"
        elif "train" in stem:
            split = "train"
        else:
            continue
        if split in found:
            raise BionicError(
                f"{path}: both {found[split].name} and {f.name} look like the {split} split"
            )
        found[split] = f
    return found


def read_npz_dir(path: Path, require_train: bool = True) -> Raw:
    files = npz_split_files(path)
    if (require_train and "train" not in files) or not files:
        found = ", ".join(f.name for f in files.values()) or "none"
        raise BionicError(f"{path}: no *train*.npz file (found {found})")
    return {split: read_npz(f) for split, f in files.items()}
