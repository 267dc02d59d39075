"""Data layer: FER-2013 CSV / folder / npz / npz-dir readers, holdout, cache, errors, CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from bionic_core.contract.errors import BionicError
from bionic_core.data import (
    BUILTIN_DATASETS,
    CLASS_NAMES,
    Dataset,
    describe,
    load_dataset,
    stratified_holdout,
)
from bionic_core.data import fer2013 as fer
from cli.data_commands import data_app

USAGES = ("Training", "PublicTest", "PrivateTest")


def _shared_data() -> Path:
    env = os.environ.get("BIONIC_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


FER_DIR = _shared_data() / "fer2013"


def _img(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48), dtype=np.uint8)


def _row(label, img, usage) -> str:
    return f"{label},{' '.join(map(str, np.asarray(img).ravel()))},{usage}"


def write_csv(path: Path, per_usage=(3, 1, 1), rows: list[str] | None = None) -> Path:
    """A CSV with ``per_usage`` rows per class for Training / PublicTest / PrivateTest."""
    if rows is None:
        rows, k = [], 0
        for usage, n in zip(USAGES, per_usage, strict=True):
            for label in range(7):
                for _ in range(n):
                    rows.append(_row(label, _img(k), usage))
                    k += 1
    path.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    return path


def write_folder(root: Path, splits=("train", "test"), per_class=3, names=None) -> Path:
    names = names or ["angry", "Disgust", "FEAR", "happy", "4", "surprise", "neutral"]
    k = 0
    for split in splits:
        for name in names:
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(_img(k)).save(d / f"im{i}.png")
                k += 1
    return root


def write_npz(path: Path, n=21, seed=0, **override) -> Path:
    arrays = {
        "images": np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8),
        "labels": np.arange(n, dtype=np.int64) % 7,
    }
    arrays.update(override)
    np.savez_compressed(path, **arrays)
    return path


def raises(match: str, *names: str):
    """Context: a BionicError whose one-line message contains ``match`` and every name."""

    class _Ctx:
        def __enter__(self):
            self.cm = pytest.raises(BionicError)
            self.info = self.cm.__enter__()
            return self.info

        def __exit__(self, *exc):
            out = self.cm.__exit__(*exc)
            msg = str(self.info.value)
            assert "\n" not in msg
            assert match in msg, msg
            for n in names:
                assert n in msg, msg
            return out

    return _Ctx()


# ------------------------------------------------------------------------------------ CSV


def test_csv_three_usages(tmp_path):
    path = write_csv(tmp_path / "fer.csv", per_usage=(3, 2, 1))
    ds = load_dataset(path)
    assert isinstance(ds, Dataset)
    assert (ds.name, ds.format, ds.is_demo, ds.source) == ("fer2013", "csv", False, str(path))
    sizes = {k: len(s.labels) for k, s in ds.splits.items()}
    assert sizes == {"train": 14, "val": 7, "test_public": 14, "test_private": 7}
    train = ds.splits["train"]
    assert train.images.dtype == np.uint8 and train.images.shape == (14, 48, 48)
    assert train.labels.dtype == np.int64
    training = np.concatenate([train.images, ds.splits["val"].images])
    assert any(np.array_equal(img, _img(0)) for img in training)
    assert "Training" in ds.splits["val"].origin and "holdout" in ds.splits["val"].origin
    assert "PublicTest" in ds.splits["test_public"].origin
    assert "PrivateTest" in ds.splits["test_private"].origin


def test_csv_without_publictest_holds_out_val(tmp_path):
    path = write_csv(tmp_path / "fer.csv", per_usage=(10, 0, 0))
    ds = load_dataset(path, val_seed=3, val_fraction=0.2)
    assert set(ds.splits) == {"train", "val"}
    assert np.bincount(ds.splits["val"].labels, minlength=7).tolist() == [2] * 7
    assert len(ds.splits["train"].labels) == 56
    assert "holdout" in ds.splits["val"].origin and "seed 3" in ds.splits["val"].origin
    again = load_dataset(path, val_seed=3, val_fraction=0.2)
    np.testing.assert_array_equal(ds.splits["val"].images, again.splits["val"].images)
    assert ds.fingerprint() == again.fingerprint()
    other = load_dataset(path, val_seed=4, val_fraction=0.2)
    assert other.fingerprint() != ds.fingerprint()


def test_stratified_holdout_deterministic():
    labels = np.repeat(np.arange(7), [100, 10, 50, 200, 1, 30, 40])
    a = stratified_holdout(labels, 0.1, seed=0)
    np.testing.assert_array_equal(a, stratified_holdout(labels, 0.1, seed=0))
    assert np.bincount(labels[a], minlength=7).tolist() == [10, 1, 5, 20, 0, 3, 4]


@pytest.mark.parametrize(
    "row, problem",
    [
        (_row(3, np.zeros(2303, int), "Training"), "pixels has 2303 values, expected 2304"),
        (_row(3, np.zeros(2305, int), "Training"), "pixels has 2305 values"),
        ("3," + "1 " * 2000 + "x" + " 2" * 303 + ",Training", "non-numeric"),
        (_row(3, np.full(2304, 300), "Training"), "expected 0-255"),
        (_row(7, np.zeros(2304, int), "Training"), "not a label 0-6"),
        (_row(-1, np.zeros(2304, int), "Training"), "not a label 0-6"),
        (_row(3, np.zeros(2304, int), "Validation"), "unknown Usage 'Validation'"),
        ("3,1 2 3", "has 2 fields, expected 3"),
        ("3,,Training", "pixels has 0 values"),
    ],
)
def test_csv_bad_row_names_line(tmp_path, row, problem):
    rows = [_row(i % 7, _img(i), "Training") for i in range(11)]
    rows.insert(5, row)  # data row 6 -> file line 7 (header is line 1)
    path = write_csv(tmp_path / "bad.csv", rows=rows)
    with raises(problem, "bad.csv", "line 7"):
        load_dataset(path, cache_dir=tmp_path / "c")


def test_csv_missing_column(tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("emotion,Usage\n3,Training\n")
    with raises("missing column(s) pixels", "cols.csv"):
        load_dataset(path)


def test_csv_without_training_rows(tmp_path):
    path = write_csv(tmp_path / "notrain.csv", per_usage=(0, 1, 1))
    with raises("train split is empty", "notrain.csv"):
        load_dataset(path)


def test_csv_cache_used_and_invalidated(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "fer.csv")
    calls = []
    real = fer.read_csv
    monkeypatch.setattr(fer, "read_csv", lambda p: calls.append(p) or real(p))
    first = load_dataset(path)
    cache = tmp_path / "fer.csv.bionic-cache.npz"
    assert cache.is_file() and len(calls) == 1
    second = load_dataset(path)
    assert len(calls) == 1  # read from the cache
    assert second.fingerprint() == first.fingerprint()
    # change the source: more rows and a new mtime -> parsed again
    with path.open("a") as fh:
        fh.write(_row(2, _img(99), "Training") + "\n")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = load_dataset(path)
    assert len(calls) == 2
    assert len(third.splits["train"].labels) == len(first.splits["train"].labels) + 1


def test_cache_falls_back_to_cache_dir(tmp_path):
    src = tmp_path / "ro"
    src.mkdir()
    path = write_csv(src / "fer.csv")
    src.chmod(0o555)
    try:
        load_dataset(path, cache_dir=tmp_path / "cache")
        assert not (src / "fer.csv.bionic-cache.npz").exists()
        assert len(list((tmp_path / "cache").glob("*.bionic-cache.npz"))) == 1
    finally:
        src.chmod(0o755)


# --------------------------------------------------------------------------------- folder


def test_folder_layout(tmp_path):
    root = write_folder(tmp_path / "fer", per_class=4)
    ds = load_dataset(root)
    assert ds.format == "folder"
    assert set(ds.splits) == {"train", "val", "test"}
    assert len(ds.splits["test"].labels) == 28
    assert len(ds.splits["train"].labels) + len(ds.splits["val"].labels) == 28
    assert np.bincount(ds.splits["test"].labels).tolist() == [4] * 7  # "4" folder -> Sad
    assert "holdout" in ds.splits["val"].origin
    assert (tmp_path / "fer.bionic-cache.npz").is_file()


def test_folder_with_val_folder(tmp_path):
    root = write_folder(tmp_path / "fer", splits=("train", "validation", "test"), per_class=2)
    ds = load_dataset(root)
    assert len(ds.splits["val"].labels) == 14 and len(ds.splits["train"].labels) == 14
    assert "validation/" in ds.splits["val"].origin


def test_folder_colour_images_converted_with_one_warning(tmp_path, capsys):
    root = write_folder(tmp_path / "fer", per_class=2)
    rgb = np.stack([_img(1)] * 3, axis=-1)
    Image.fromarray(rgb).save(root / "train" / "happy" / "rgb.png")
    Image.fromarray(np.dstack([rgb, np.full((48, 48), 255, np.uint8)])).save(
        root / "train" / "happy" / "rgba.png"
    )
    ds = load_dataset(root)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "converted 2 colour images to grayscale" in err[0]
    assert np.bincount(np.concatenate([ds.splits["train"].labels, ds.splits["val"].labels]))[3] == 4


def test_folder_bad_inputs(tmp_path):
    root = write_folder(tmp_path / "size", per_class=1)
    Image.fromarray(np.zeros((64, 48), np.uint8)).save(root / "train" / "FEAR" / "big.png")
    with raises("is 48x64, expected 48x48", "big.png"):
        load_dataset(root)

    root = write_folder(tmp_path / "emo", per_class=1)
    (root / "train" / "contempt").mkdir()
    with raises("unknown emotion folder 'contempt'", "contempt"):
        load_dataset(root)

    root = tmp_path / "empty"
    for name in CLASS_NAMES:
        (root / "train" / name.lower()).mkdir(parents=True)
    with raises("train split is empty", "train"):
        load_dataset(root)

    junk = tmp_path / "junk"
    (junk / "stuff").mkdir(parents=True)
    with raises("not a dataset folder", "junk"):
        load_dataset(junk)


def test_folder_cache_invalidated_by_new_image(tmp_path):
    root = write_folder(tmp_path / "fer", per_class=2)
    a = load_dataset(root)
    Image.fromarray(_img(5)).save(root / "test" / "4" / "new.png")
    b = load_dataset(root)
    assert len(b.splits["test"].labels) == len(a.splits["test"].labels) + 1


# ------------------------------------------------------------------------------------ npz


def test_npz_single_file_is_train(tmp_path):
    path = write_npz(tmp_path / "one.npz", n=70)
    ds = load_dataset(path)
    assert ds.format == "npz" and set(ds.splits) == {"train", "val"}
    assert len(ds.splits["train"].labels) == 63 and len(ds.splits["val"].labels) == 7


def test_npz_int_images_in_range_accepted(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (21, 48, 48), dtype=np.int64)
    path = write_npz(tmp_path / "i.npz", images=images)
    assert load_dataset(path).splits["train"].images.dtype == np.uint8


def test_holdout_needs_distinct_images(tmp_path):
    path = write_npz(tmp_path / "same.npz", images=np.full((21, 48, 48), 7, np.uint8))
    with raises("too few distinct images", "same.npz", "21 images, 1 distinct"):
        load_dataset(path)


@pytest.mark.parametrize(
    "override, key, problem",
    [
        ({"labels": None}, "labels", "missing key"),
        ({"images": np.zeros((21, 32, 32), np.uint8)}, "images", "expected (N, 48, 48)"),
        ({"images": np.full((21, 48, 48), 300.0)}, "images", "outside the integers 0-255"),
        ({"images": np.full((21, 48, 48), 0.5, np.float32)}, "images", "outside the integers"),
        ({"labels": np.full(21, 9, np.int64)}, "labels", "expected a label 0-6"),
        ({"labels": np.zeros(20, np.int64)}, "labels", "expected (21,)"),
    ],
)
def test_npz_bad(tmp_path, override, key, problem):
    path = tmp_path / "bad.npz"
    arrays = {
        "images": np.zeros((21, 48, 48), np.uint8),
        "labels": np.arange(21, dtype=np.int64) % 7,
    }
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    with raises(problem, "bad.npz", key):
        load_dataset(path)


def npz_dir(root: Path, *names: str) -> Path:
    """A directory of npz files ``names`` holding 70, 14 and 21 images."""
    root.mkdir()
    for name, n, seed in zip(names, (70, 14, 21), (1, 2, 3), strict=False):
        write_npz(root / name, n=n, seed=seed)
    return root


def test_npz_dir_matches_publictest_before_test(tmp_path):
    d = npz_dir(tmp_path / "npzdir", "fer2013_train.npz", "fer2013_publictest.npz",
                "fer2013_privatetest.npz")
    (d / "README.md").write_text("not data")
    write_csv(d / "sample.csv")
    ds = load_dataset(d)
    assert ds.format == "npz-dir"
    sizes = {k: len(s.labels) for k, s in ds.splits.items()}
    assert sizes == {"train": 63, "val": 7, "test_public": 14, "test_private": 21}
    assert "publictest" in ds.splits["test_public"].origin
    assert "privatetest" in ds.splits["test_private"].origin
    assert "holdout" in ds.splits["val"].origin and ds.primary_test() == "test_private"


def test_npz_dir_generic_val_and_test_files(tmp_path):
    ds = load_dataset(npz_dir(tmp_path / "npzdir", "my_train.npz", "my_val.npz", "my_test.npz"))
    assert {k: len(s.labels) for k, s in ds.splits.items()} == {"train": 70, "val": 14, "test": 21}
    assert ds.holdout is None and "my_val.npz" in ds.splits["val"].origin


def test_npz_dir_train_only_holds_out_val(tmp_path):
    ds = load_dataset(npz_dir(tmp_path / "npzdir", "x_train.npz"))
    assert set(ds.splits) == {"train", "val"} and len(ds.splits["val"].labels) == 7


# ------------------------------------------------------------------------- test=, names


def test_separate_test_source(tmp_path):
    train = write_npz(tmp_path / "train.npz", n=70)
    test_csv = write_csv(tmp_path / "t.csv", per_usage=(1, 1, 1))  # all 21 rows become test
    ds = load_dataset(train, test=test_csv)
    assert len(ds.splits["test"].labels) == 21 and "t.csv" in ds.splits["test"].origin
    only_test = write_folder(tmp_path / "tf", splits=("test",), per_class=1)
    assert len(load_dataset(train, test=only_test).splits["test"].labels) == 7


def test_missing_path_and_unknown_name(tmp_path):
    with raises("no such file or directory", "nothere.csv"):
        load_dataset(tmp_path / "nothere.csv")
    with raises("unknown dataset", "fer2014", *BUILTIN_DATASETS):
        load_dataset("fer2014")


def test_describe_and_fingerprint(tmp_path):
    ds = load_dataset(write_csv(tmp_path / "fer.csv"))
    d = describe(ds)
    assert set(d) == {"name", "is_demo", "source", "format", "fingerprint", "holdout",
                      "deduped", "primary_test", "splits"}
    assert d["splits"]["train"]["per_class"] == {c: 2 for c in CLASS_NAMES}
    assert d["splits"]["val"]["per_class"] == {c: 1 for c in CLASS_NAMES}
    assert len(d["fingerprint"]) == 16 and int(d["fingerprint"], 16) >= 0
    json.dumps(d)
    ds.splits["train"].images[0, 0, 0] ^= 1
    ds2 = load_dataset(tmp_path / "fer.csv")
    assert ds2.fingerprint() == d["fingerprint"]
    ds2.splits["train"].images[0, 0, 0] ^= 1
    ds2._fingerprint = None
    assert ds2.fingerprint() != d["fingerprint"]


# ------------------------------------------------------------------------------------ CLI


def test_cli_info_json_and_table(tmp_path):
    runner = CliRunner()
    path = write_csv(tmp_path / "fer.csv")
    r = runner.invoke(data_app, ["info", str(path), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["format"] == "csv" and d["splits"]["val"]["n"] == 7
    r = runner.invoke(data_app, ["info", "demo-small"])
    assert r.exit_code == 0 and "NOT FER-2013" in r.output and "fingerprint" in r.output


def test_cli_info_bad_file(tmp_path):
    rows = [_row(1, np.zeros(2303, int), "Training")]
    path = write_csv(tmp_path / "broken.csv", rows=rows)
    r = CliRunner().invoke(data_app, ["info", str(path)])
    assert r.exit_code != 0
    assert isinstance(r.exception, BionicError)
    assert "broken.csv: line 2: pixels has 2303 values" in str(r.exception)


# ------------------------------------------------------------------------ real FER-2013


@pytest.mark.skipif(
    not (FER_DIR / "fer2013_sample.csv").is_file(),
    reason=f"real FER-2013 sample not found at {FER_DIR} (set BIONIC_SHARED_DATA)",
)
def test_real_sample_csv(tmp_path):
    ds = load_dataset(FER_DIR / "fer2013_sample.csv", cache_dir=tmp_path)
    sizes = {k: len(s.labels) for k, s in ds.splits.items()}
    assert sizes == {"train": 42, "val": 7, "test_public": 14, "test_private": 7}
    for s in ds.splits.values():
        assert np.bincount(s.labels, minlength=7).tolist() == [len(s.labels) // 7] * 7
    assert ds.primary_test() == "test_private"
    if (FER_DIR / "fer2013_train.npz").is_file():  # sample row 14 is train[14] (README)
        training = np.concatenate([ds.splits["train"].images, ds.splits["val"].images])
        with np.load(FER_DIR / "fer2013_train.npz") as z:
            assert any(np.array_equal(img, z["images"][14]) for img in training)


@pytest.mark.skipif(
    not (FER_DIR / "fer2013_train.npz").is_file(),
    reason=f"real FER-2013 npz files not found at {FER_DIR} (set BIONIC_SHARED_DATA)",
)
def test_real_npz_dir():
    ds = load_dataset(FER_DIR)
    assert ds.format == "npz-dir" and set(ds.splits) == {"train", "val", "test_public"}
    d = describe(ds)["splits"]
    assert d["train"]["n"] + d["val"]["n"] == 28709 and d["test_public"]["n"] == 3589
    training = [a + b for a, b in zip(d["train"]["per_class"].values(),
                                      d["val"]["per_class"].values(), strict=True)]
    assert training == [3995, 436, 4097, 7215, 4830, 3171, 4965]
    assert 0.09 < d["val"]["n"] / 28709 < 0.11 and d["val"]["role"] == "validation"
    assert list(d["test_public"]["per_class"].values()) == [467, 56, 496, 895, 653, 415, 607]


def test_csv_quoted_fields_and_crlf(tmp_path):
    rows = [f'{i % 7},"{" ".join(map(str, _img(i).ravel()))}",{USAGES[i // 14]}'
            for i in range(21)]
    path = tmp_path / "quoted.csv"
    path.write_bytes(("emotion,pixels,Usage\r\n" + "\r\n".join(rows) + "\r\n").encode())
    ds = load_dataset(path)
    training = np.concatenate([ds.splits["train"].images, ds.splits["val"].images])
    assert any(np.array_equal(img, _img(0)) for img in training)
    np.testing.assert_array_equal(ds.splits["test_public"].images[0], _img(14))
    plain = write_csv(tmp_path / "crlf.csv", per_usage=(2, 1, 0))
    plain.write_bytes(plain.read_bytes().replace(b"\n", b"\r\n"))
    assert len(load_dataset(plain).splits["test_public"].labels) == 7
