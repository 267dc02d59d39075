"""The wiring controls of adjacency_mask: each keeps what it claims of the column's masks and
destroys what it should (connectome level; the model-level checks are in
test_structural_features.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bionic_core.connectome import build_connectome
from bionic_core.connectome.block_statistics import in_degree_spread, type_block_densities
from bionic_core.connectome.controls import apply_wiring, matched_dense_widths
from bionic_core.contract.errors import BionicError

CONTROLS = ("type_shuffled", "layer_uniform", "uniform", "degree_preserving")


@pytest.fixture(scope="module")
def column():
    return build_connectome()


def counts(masks) -> tuple[list[int], list[int]]:
    ff, intra = masks
    return [int(m.sum()) for m in ff], [int(m.sum()) for m in intra]


def type_density(connectome, masks, block: str, post: str, pre: str) -> float:
    rows = type_block_densities(connectome, masks)
    return next(r["density"] for r in rows
                if (r["block"], r["pre"], r["post"]) == (block, pre, post))


def overlap(a, b) -> float:
    return float((a * b).sum() / b.sum())


@pytest.mark.parametrize("wiring", CONTROLS)
def test_every_control_changes_the_wiring_reproducibly(column, wiring):
    masks = apply_wiring(column, column.masks, wiring, null_seed=0, cells=True)
    again = apply_wiring(column, column.masks, wiring, null_seed=0, cells=True)
    other = apply_wiring(column, column.masks, wiring, null_seed=1, cells=True)
    for k, mask in enumerate(masks[0]):
        assert mask.shape == column.feedforward_masks[k].shape
        assert overlap(mask, column.feedforward_masks[k]) < 0.5  # mostly other connections
        assert np.array_equal(mask, again[0][k])  # the null seed fixes the sample
        assert not np.array_equal(mask, other[0][k])  # another null seed, another sample
    assert all(not np.diag(m).any() for m in masks[1])  # no self-connections


@pytest.mark.parametrize("wiring", ["type_shuffled", "layer_uniform", "degree_preserving"])
def test_controls_keep_every_block_count(column, wiring):
    masks = apply_wiring(column, column.masks, wiring, null_seed=0, cells=True)
    assert counts(masks) == counts(column.masks)


def test_type_shuffled_keeps_the_composition_not_the_types(column):
    masks = apply_wiring(column, column.masks, "type_shuffled", null_seed=0, cells=True)
    # by the units' real types the L2/3 -> L5 blocks are flat now (column: 0.14 vs 0.018) ...
    pt = type_density(column, masks, "L2/3->L5", "5P-PT", "23P")
    it = type_density(column, masks, "L2/3->L5", "5P-IT", "23P")
    assert pt < 2 * it
    assert (type_density(column, column.masks, "L2/3->L5", "5P-PT", "23P")
            > 5 * type_density(column, column.masks, "L2/3->L5", "5P-IT", "23P"))
    # ... but the permuted types still make the same heterogeneous in-degrees
    spread = {r["block"]: r for r in in_degree_spread(column, masks)}
    assert spread["L2/3->L5"]["sd"] > 3 * spread["L2/3->L5"]["random_sd"]


def test_layer_uniform_is_one_density_per_layer_pair(column):
    masks = apply_wiring(column, column.masks, "layer_uniform", null_seed=0, cells=True)
    spread = {r["block"]: r for r in in_degree_spread(column, masks)}
    for block, row in spread.items():
        assert row["sd"] < 1.3 * row["random_sd"], block  # Erdos-Renyi in-degrees
    pt = type_density(column, masks, "L2/3->L5", "5P-PT", "23P")
    it = type_density(column, masks, "L2/3->L5", "5P-IT", "23P")
    assert abs(pt - it) < 0.02


def test_uniform_keeps_only_the_totals(column):
    masks = apply_wiring(column, column.masks, "uniform", null_seed=0, cells=True)
    ff, intra = counts(masks)
    column_ff, column_intra = counts(column.masks)
    assert sum(ff) == sum(column_ff) and sum(intra) == sum(column_intra)
    assert ff != column_ff  # the layer-pair densities are gone ...
    p = sum(column_ff) / sum(m.size for m in column.feedforward_masks)
    for mask in masks[0]:  # ... every feedforward block has the one overall density
        n = mask.size
        assert abs(mask.sum() - n * p) < 4 * np.sqrt(n * p * (1 - p))


def test_degree_preserving_keeps_every_units_degrees(column):
    masks = apply_wiring(column, column.masks, "degree_preserving", null_seed=0, cells=True)
    for new, old in zip(masks[0] + masks[1], column.feedforward_masks + column.intra_masks,
                        strict=True):
        assert np.array_equal(new.sum(axis=1), old.sum(axis=1))  # in-degrees
        assert np.array_equal(new.sum(axis=0), old.sum(axis=0))  # out-degrees
    for new, old in zip(masks[1], column.intra_masks, strict=True):
        assert overlap(new, old) < 0.5


def test_degree_preserving_rewires_a_loaded_edge_table(tmp_path):
    rng = np.random.default_rng(0)
    cells = pd.DataFrame({"root_id": np.arange(1, 81), "layer": ["L4"] * 40 + ["L2/3"] * 40,
                          "cell_type": ["4P"] * 40 + ["23P"] * 40, "ei": "E"})
    pairs = {(int(a), int(b)) for a, b in rng.integers(1, 81, size=(900, 2)) if a != b}
    edges = pd.DataFrame(sorted(pairs), columns=["pre_root_id", "post_root_id"])
    edges["n_synapses"] = 1
    cells.to_csv(tmp_path / "cells.csv", index=False)
    edges.to_csv(tmp_path / "edges.csv", index=False)
    c = build_connectome(tmp_path / "cells.csv", tmp_path / "edges.csv",
                         grouping={"L4": ["4P"], "L2/3": ["23P"]})
    masks = apply_wiring(c, c.masks, "degree_preserving", null_seed=3, cells=True)
    for new, old in zip(masks[0] + masks[1], c.feedforward_masks + c.intra_masks, strict=True):
        assert np.array_equal(new.sum(axis=1), old.sum(axis=1))
        assert np.array_equal(new.sum(axis=0), old.sum(axis=0))
        assert not np.array_equal(new, old)
    # type_shuffled works on an edge table too: from its observed type densities
    shuffled = apply_wiring(c, c.masks, "type_shuffled", null_seed=3, cells=True)
    assert counts(shuffled) == counts(c.masks)


def test_type_shuffled_needs_census_units(column):
    base = column.masks_for_sizes([290] * 4, seed=0)
    with pytest.raises(BionicError, match="type_shuffled' needs one unit per census cell"):
        apply_wiring(column, base, "type_shuffled", 0, cells=False)
    with pytest.raises(BionicError, match="not one of"):
        apply_wiring(column, base, "shuffled", 0, cells=False)


@pytest.mark.parametrize("intra_on", [False, True])
def test_dense_matched_widths_match_the_free_weights(column, intra_on):
    sizes, in_features = column.layer_sizes, 2304
    widths = matched_dense_widths(sizes, in_features, column.masks, intra_on)
    budget = in_features * sizes[0] + sum(int(m.sum()) for m in column.feedforward_masks)
    dense = in_features * widths[0] + sum(
        a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    if intra_on:
        budget += sum(int(m.sum()) for m in column.intra_masks)
        dense += sum(n * (n - 1) for n in widths)
    assert abs(dense - budget) / budget < 0.01  # up to rounding the widths
    ratios = np.array(widths) / np.array(sizes)
    assert ratios.max() - ratios.min() < 0.02  # one factor: the laminar proportions stay
    assert ratios.max() < 1
