"""Split roles and FER-2013's flaws: validation is a holdout of Training, PublicTest and
PrivateTest are test splits, exact duplicates and blank images are counted, dedupe."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from bionic_core.data import (
    blank_images,
    describe,
    image_hashes,
    load_dataset,
    quality_report,
    stratified_holdout,
)
from cli.data_commands import data_app

from .conftest import FER2013_DIR, needs_fer2013
from .fer_fixture import faces, write_fer_dir


@pytest.fixture
def fer_dir(tmp_path):
    return write_fer_dir(tmp_path / "fer")


def test_split_roles_and_origins(fer_dir):
    ds = load_dataset(fer_dir, val_fraction=0.2, val_seed=3)
    d = describe(ds)
    assert list(d["splits"]) == ["train", "val", "test_public", "test_private"]
    roles = {name: s["role"] for name, s in d["splits"].items()}
    assert roles == {"train": "train", "val": "validation", "test_public": "test",
                     "test_private": "test"}
    # validation: a seeded stratified 20 % of Training (2 sets of identical images per class,
    # one of them perhaps the blank pair), never PublicTest
    assert d["splits"]["val"]["n"] + d["splits"]["train"]["n"] == 70
    assert set(d["splits"]["val"]["per_class"].values()) <= {2, 3}
    assert "fer2013_train.npz" in ds.splits["val"].origin and "seed 3" in ds.splits["val"].origin
    assert "fer2013_publictest.npz" in ds.splits["test_public"].origin
    assert "fer2013_privatetest.npz" in ds.splits["test_private"].origin
    assert d["holdout"] == {"fraction": 0.2, "seed": 3, "of": ds.holdout.of}
    assert d["primary_test"] == "test_private" and d["deduped"] is None
    (fer_dir / "fer2013_privatetest.npz").unlink()
    assert load_dataset(fer_dir).primary_test() == "test_public"


def test_csv_public_and_private_are_test_splits(tmp_path):
    from .test_data import write_csv

    ds = load_dataset(write_csv(tmp_path / "fer.csv", per_usage=(10, 2, 1)), val_fraction=0.1)
    sizes = {k: len(s) for k, s in ds.splits.items()}
    assert sizes == {"train": 63, "val": 7, "test_public": 14, "test_private": 7}
    assert "FER-2013 PublicTest" in ds.splits["test_public"].origin
    assert "FER-2013 PrivateTest" in ds.splits["test_private"].origin
    assert "holdout of FER-2013 Training" in ds.splits["val"].origin


def test_duplicates_and_blanks_counted(fer_dir):
    q = quality_report(load_dataset(fer_dir))
    assert q["within"]["training"] == {"images": 70, "distinct": 67, "extra_copies": 3,
                                       "groups": 3, "conflicting_labels": 1}
    assert q["within"]["test_public"]["extra_copies"] == 0
    across = {(p["a"], p["b"]): (p["a_in_b"], p["b_in_a"]) for p in q["across"]}
    assert across[("training", "test_public")] == (5, 4)  # 3 faces + the blank image
    assert across[("training", "test_private")] == (0, 0)
    assert across[("train", "val")] == (0, 0)  # copies stay on one side of the holdout
    assert q["blank"] == {"train": 2, "val": 0, "test_public": 1, "test_private": 0} or \
        q["blank"] == {"train": 0, "val": 2, "test_public": 1, "test_private": 0}
    json.dumps(q)


def test_dedupe_drops_training_copies_of_test_images(fer_dir):
    plain = load_dataset(fer_dir)
    deduped = load_dataset(fer_dir, dedupe=True)
    assert deduped.deduped == 5
    n = {k: len(s) for k, s in deduped.splits.items()}
    assert n["train"] + n["val"] == 65 and n["test_public"] == 14
    test = np.concatenate([deduped.splits[s].hashes() for s in deduped.test_splits()])
    for part in ("train", "val"):
        assert not np.isin(deduped.splits[part].hashes(), test).any()
    assert "dedupe" in deduped.splits["train"].origin
    assert deduped.fingerprint() != plain.fingerprint()
    q = quality_report(deduped)
    assert q["deduped"] == 5
    assert {(p["a"], p["b"]): p["a_in_b"] for p in q["across"]}[("training", "test_public")] == 0


def test_holdout_keeps_copies_together_and_is_seeded():
    images, labels = faces(140, seed=0)
    images[70:] = images[:70]  # every image twice
    hashes = image_hashes(images)
    held = stratified_holdout(labels, 0.2, seed=1, groups=hashes)
    np.testing.assert_array_equal(held[:70], held[70:])
    assert np.bincount(labels[held], minlength=7).tolist() == [4] * 7
    np.testing.assert_array_equal(held, stratified_holdout(labels, 0.2, 1, groups=hashes))
    assert not np.array_equal(held, stratified_holdout(labels, 0.2, 2, groups=hashes))


def test_image_hashes_and_blank_images():
    images, _ = faces(4, seed=0)
    images[3] = images[1]
    images[2] = 17
    h = image_hashes(images)
    assert h.dtype == np.uint64 and h[3] == h[1] and len(set(h.tolist())) == 3
    assert blank_images(images).tolist() == [False, False, True, False]


def test_cli_info_reports_splits_duplicates_and_blanks(fer_dir):
    runner = CliRunner()
    r = runner.invoke(data_app, ["info", str(fer_dir), "--json", "--dedupe"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["deduped"] == 5 and d["quality"]["within"]["training"]["images"] == 65
    r = runner.invoke(data_app, ["info", str(fer_dir), "--val-fraction", "0.2"])
    assert r.exit_code == 0, r.output
    for text in ("test_public (test)", "test_private (test)", "val (validation)",
                 "holdout of npz file fer2013_train.npz", "training ↔ test_public",
                 "blank images", "final_test_* metrics of a run are those of test_private"):
        assert text in " ".join(r.output.split()), text


@needs_fer2013
def test_real_fer2013_duplicates_and_blanks():
    """The counts README.md reports (PublicTest only: the shared copy has no PrivateTest)."""
    ds = load_dataset(FER2013_DIR)
    q = quality_report(ds)
    assert q["within"]["training"] == {"images": 28709, "distinct": 27473, "extra_copies": 1236,
                                       "groups": 1035, "conflicting_labels": 39}
    assert q["within"]["test_public"]["extra_copies"] == 26
    across = {(p["a"], p["b"]): (p["a_in_b"], p["b_in_a"]) for p in q["across"]}
    assert across[("training", "test_public")] == (351, 280)
    assert across[("train", "val")] == (0, 0)
    assert q["blank"]["train"] + q["blank"]["val"] == 11 and q["blank"]["test_public"] == 1
    assert load_dataset(FER2013_DIR, dedupe=True).deduped == 351
