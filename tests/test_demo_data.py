"""The built-in demonstration set: deterministic, balanced, varied, labelled as a demo."""

from __future__ import annotations

import numpy as np

from bionic_core.data import BUILTIN_DATASETS, describe, load_dataset
from bionic_core.data import demo as demo_mod


def test_demo_small_shapes_and_labels():
    ds = load_dataset("demo-small")
    assert ds.is_demo and ds.format == "builtin" and ds.source == "built-in"
    sizes = {k: len(s.labels) for k, s in ds.splits.items()}
    assert sizes == {"train": 700, "val": 150, "test": 150}
    for s in ds.splits.values():
        assert s.images.dtype == np.uint8 and s.images.shape[1:] == (48, 48)
        assert s.labels.dtype == np.int64
        assert "NOT FER-2013" in s.origin
    counts = np.bincount(ds.splits["train"].labels, minlength=7)
    assert counts.tolist() == [100] * 7


def test_demo_deterministic():
    a = demo_mod.generate(140, seed=5)
    b = demo_mod.generate(140, seed=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], demo_mod.generate(140, seed=6)[0])
    assert load_dataset("demo-small").fingerprint() == load_dataset("demo-small").fingerprint()


def test_demo_same_class_images_differ():
    images, labels = demo_mod.generate(70, seed=0)
    for c in range(7):
        idx = np.flatnonzero(labels == c)
        assert len(idx) == 10
        assert not np.array_equal(images[idx[0]], images[idx[1]])
        assert np.abs(images[idx[0]].astype(int) - images[idx[1]]).mean() > 5


def test_demo_full_sizes_and_balance():
    ds = load_dataset("demo")
    d = describe(ds)
    assert d["is_demo"] and "NOT FER-2013" in BUILTIN_DATASETS["demo"]
    assert {k: v["n"] for k, v in d["splits"].items()} == {"train": 6000, "val": 1000, "test": 1000}
    for v in d["splits"].values():
        per = list(v["per_class"].values())
        assert max(per) - min(per) <= 1
    # the returned arrays are private copies: writing them must not alter the cached set
    ds.splits["train"].images[0] = 0
    assert load_dataset("demo").fingerprint() == d["fingerprint"]
