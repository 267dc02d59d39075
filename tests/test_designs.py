"""Ablation design enumeration: kinds, filtering by requires/conflicts, dedup, sampling, and
fractional factorials against textbook resolution-V designs."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from bionic_core.contract.errors import BionicError
from bionic_core.contract.features import Feature
from bionic_core.studies.designs import plan_design, validate_feature_set
from bionic_core.studies.fractional import (
    LETTERS,
    defining_relation,
    fraction_for,
    fraction_from_words,
    word_label,
)


def _f(name, requires=(), conflicts=()):
    return Feature(name=name, group="structural", help=name, requires=requires,
                   conflicts=conflicts)


CAT = {f.name: f for f in [
    _f("conv_frontend"),
    _f("lateral_inhibition", requires=("conv_frontend",)),
    _f("adjacency_mask"),
    _f("graded_inhibition"),
    _f("hebbian"),
    _f("dense", conflicts=("adjacency_mask",)),
]}
REF = ["conv_frontend", "lateral_inhibition", "adjacency_mask", "hebbian"]


def names(design):
    return [c.name for c in design.configurations]


def test_validate_feature_set():
    assert validate_feature_set(REF, CAT) == []
    assert validate_feature_set(["lateral_inhibition"], CAT) == [
        "lateral_inhibition requires conv_frontend"]
    assert validate_feature_set(["dense", "adjacency_mask"], CAT) == [
        "dense conflicts with adjacency_mask"]
    assert validate_feature_set(["nope", "hebbian"], CAT) == ["unknown feature 'nope'"]


def test_validate_symmetric_conflict_reported_once():
    cat = {"x": _f("x", conflicts=("y",)), "y": _f("y", conflicts=("x",))}
    assert validate_feature_set({"x", "y"}, cat) == ["x conflicts with y"]


def test_leave_one_out_cascades_requirements_and_adds_baseline():
    d = plan_design("leave-one-out", catalogue=CAT, reference=REF, baseline=[])
    assert d.kind == "leave-one-out" and d.anchor == "reference"
    assert names(d) == ["reference", "-conv_frontend", "-lateral_inhibition", "-adjacency_mask",
                        "-hebbian", "baseline"]
    ref = d.configurations[0]
    assert ref.features == frozenset(REF) and ref.removed == () and ref.added == ()
    minus = d.by_name("-adjacency_mask")
    assert minus.features == frozenset(REF) - {"adjacency_mask"}
    assert minus.removed == ("adjacency_mask",) and minus.added == ()
    assert d.by_name("baseline").removed == tuple(sorted(REF))
    # removing conv_frontend takes lateral_inhibition (which requires it) with it
    no_conv = d.by_name("-conv_frontend")
    assert no_conv.features == frozenset({"adjacency_mask", "hebbian"})
    assert no_conv.removed == ("conv_frontend", "lateral_inhibition")
    assert d.dropped == ()


def test_leave_one_out_takes_out_only_the_factors_when_given():
    d = plan_design("leave-one-out", catalogue=CAT, reference=REF, baseline=[],
                    factors=["hebbian", "adjacency_mask"])
    assert names(d) == ["reference", "-hebbian", "-adjacency_mask", "baseline"]
    with pytest.raises(BionicError, match="factors not in the reference: bogus_absent"):
        plan_design("leave-one-out", catalogue={**CAT, "bogus_absent": CAT["hebbian"]},
                    reference=["hebbian"], factors=["bogus_absent"])


def test_leave_one_out_drops_an_invalid_set_with_its_reason():
    # the explicit baseline breaks a requirement, so it is dropped with the reason
    d = plan_design("leave-one-out", catalogue=CAT, reference=REF,
                    baseline=["lateral_inhibition"])
    assert [x.name for x in d.dropped] == ["baseline"]
    assert d.dropped[0].reason == "lateral_inhibition requires conv_frontend"


def test_leave_one_out_without_baseline_and_dedup():
    d = plan_design("leave_one_out", catalogue=CAT, reference=["hebbian"],
                    baseline=None)
    assert names(d) == ["reference", "-hebbian"]
    # a baseline equal to an existing configuration is deduplicated (first name wins)
    d = plan_design("leave-one-out", catalogue=CAT, reference=["hebbian"], baseline=[])
    assert names(d) == ["reference", "-hebbian"]
    assert d.configurations[1].features == frozenset()


def test_add_one_in():
    d = plan_design("add-one-in", catalogue=CAT, baseline=["conv_frontend"],
                    reference=["conv_frontend", "hebbian", "adjacency_mask"])
    assert d.anchor == "baseline"
    assert names(d) == ["baseline", "+hebbian", "+adjacency_mask", "reference"]
    plus = d.by_name("+hebbian")
    assert plus.features == {"conv_frontend", "hebbian"} and plus.added == ("hebbian",)
    assert d.by_name("reference").added == ("adjacency_mask", "hebbian")
    # explicit factors, one of which is invalid on the empty baseline
    d = plan_design("add-one-in", catalogue=CAT, reference=None,
                    factors=["lateral_inhibition", "dense", "hebbian"])
    assert names(d) == ["baseline", "+dense", "+hebbian"]
    assert [x.name for x in d.dropped] == ["+lateral_inhibition"]


def test_factorial_full():
    d = plan_design("factorial", catalogue=CAT, reference=["hebbian"],
                    factors=["conv_frontend", "lateral_inhibition", "adjacency_mask"])
    # 8 combinations; the two with lateral_inhibition but no conv_frontend are dropped
    assert len(d.configurations) == 6 and len(d.dropped) == 2
    assert names(d)[0] == "f:conv_frontend+lateral_inhibition+adjacency_mask"
    assert names(d)[-1] == "f:none"
    assert all("hebbian" in c.features for c in d.configurations)  # held on
    assert {x.name for x in d.dropped} == {"f:lateral_inhibition+adjacency_mask",
                                           "f:lateral_inhibition"}
    expected_sets = {frozenset({"hebbian", *s}) for s in [
        {"conv_frontend", "lateral_inhibition", "adjacency_mask"},
        {"conv_frontend", "lateral_inhibition"}, {"conv_frontend", "adjacency_mask"},
        {"conv_frontend"}, {"adjacency_mask"}, set()]}
    assert {c.features for c in d.configurations} == expected_sets
    assert d.by_name("f:none").removed == ()
    assert d.by_name("f:conv_frontend").added == ("conv_frontend",)


def test_factorial_sampled_is_deterministic_and_keeps_corners():
    factors = [f"x{i}" for i in range(12)]
    cat = {n: _f(n) for n in factors}
    with pytest.raises(BionicError, match="12 factors"):
        plan_design("factorial", catalogue=cat, factors=factors)
    a = plan_design("factorial", catalogue=cat, factors=factors, sample=20, seed=7)
    b = plan_design("factorial", catalogue=cat, factors=factors, sample=20, seed=7)
    c = plan_design("factorial", catalogue=cat, factors=factors, sample=20, seed=8)
    assert a == b
    assert a != c
    assert len(a.configurations) == 20
    assert len({x.features for x in a.configurations}) == 20  # distinct
    sets = {x.features for x in a.configurations}
    assert frozenset(factors) in sets and frozenset() in sets
    assert names(a)[0] == "f:" + "+".join(factors) and names(a)[-1] == "f:none"
    # a sample at least as large as the factorial is the full factorial
    small = plan_design("factorial", catalogue=cat, factors=factors[:2], sample=10)
    assert len(small.configurations) == 4


def test_explicit_and_dedup():
    d = plan_design("explicit", catalogue=CAT, reference=["hebbian"], explicit=[
        ["hebbian"], ["adjacency_mask", "hebbian"], ["hebbian", "adjacency_mask"],
        ["dense", "adjacency_mask"], []])
    assert names(d) == ["reference", "e:adjacency_mask+hebbian", "e:none"]
    assert d.by_name("e:adjacency_mask+hebbian").added == ("adjacency_mask",)
    assert d.dropped[0].reason == "dense conflicts with adjacency_mask"


def test_errors():
    with pytest.raises(BionicError, match="known: leave-one-out, add-one-in"):
        plan_design("one-at-a-time", catalogue=CAT, reference=REF)
    with pytest.raises(BionicError, match="'bogus'"):
        plan_design("leave-one-out", catalogue=CAT, reference=["bogus"])
    with pytest.raises(BionicError, match="'bogus'"):
        plan_design("explicit", catalogue=CAT, explicit=[["hebbian"], ["bogus"]])
    with pytest.raises(BionicError, match=r"every configuration was dropped: "
                                          r"e:lateral_inhibition: lateral_inhibition requires"):
        plan_design("explicit", catalogue=CAT, explicit=[["lateral_inhibition"]])
    with pytest.raises(BionicError, match="reference is not a valid feature set"):
        plan_design("leave-one-out", catalogue=CAT, reference=["dense", "adjacency_mask"])
    # one line
    try:
        plan_design("nope", catalogue=CAT)
    except BionicError as e:
        assert "\n" not in str(e)


# --------------------------------------------------------------------------- fractional

# Minimum-aberration fractions as Montgomery (Design and Analysis of Experiments, table of
# 2^(k−p) designs) and Box, Hunter & Hunter list them: k → (generators, resolution, runs).
TEXTBOOK = {5: (["ABCD"], 5, 16), 6: (["ABCDE"], 6, 32), 7: (["ABCDEF"], 7, 64),
            8: (["ABCD", "ABEF"], 5, 64), 9: (["ACDFG", "BCEFG"], 6, 128),
            10: (["ABCG", "BCDE", "ACDF"], 5, 128)}


def _labels(masks):
    return [word_label(m) for m in masks]


def _mask(text):
    return sum(1 << LETTERS.index(ch) for ch in text)


def test_textbook_fractions_have_their_defining_relation_and_resolution():
    for k, (generators, resolution, runs) in TEXTBOOK.items():
        f = fraction_from_words(k, generators)
        assert (f.resolution, f.n_runs) == (resolution, runs), k
    # 2^(5−1) V: I = ABCDE; 2^(8−2) V: I = ABCDG = ABEFH = CDEFGH (the product of the two)
    assert _labels(fraction_from_words(5, ["ABCD"]).defining_words()) == ["ABCDE"]
    eight = fraction_from_words(8, ["ABCD", "ABEF"])
    assert _labels(eight.defining_words()) == ["ABCDG", "ABEFH", "CDEFGH"]
    # 2^(10−3): three generator words of length 5, their products of length 6 and 7
    ten = fraction_from_words(10, ["ABCG", "BCDE", "ACDF"])
    assert sorted(w.bit_count() for w in ten.defining_words()) == [5, 5, 5, 6, 6, 6, 7]


def test_textbook_alias_chains():
    five = fraction_from_words(5, ["ABCD"])
    assert _labels(five.aliases(_mask("A"))) == ["BCDE"]
    assert _labels(five.aliases(_mask("AB"))) == ["CDE"]
    eight = fraction_from_words(8, ["ABCD", "ABEF"])
    # AB × (ABCDG, ABEFH, CDEFGH) = CDG, EFH, ABCDEFGH
    assert _labels(eight.aliases(_mask("AB"))) == ["CDG", "EFH", "ABCDEFGH"]
    # A × ... = BCDG, BEFH, ACDEFGH: a main effect is clear of every two-factor interaction
    assert _labels(eight.aliases(_mask("A"))) == ["BCDG", "BEFH", "ACDEFGH"]


def test_fraction_for_finds_the_textbook_designs():
    for k, (_, resolution, runs) in TEXTBOOK.items():
        f = fraction_for(k, 5)
        assert (f.n_runs, f.resolution) == (runs, resolution), k
    assert _labels(fraction_for(5).generators) == ["ABCD"]  # E = ABCD, the only choice
    assert _labels(fraction_for(8).generators) == ["ABCD", "ABEF"]  # G = ABCD, H = ABEF
    twelve = fraction_for(12)
    assert twelve.n_runs == 256 and twelve.resolution >= 5  # not 4,096
    assert fraction_for(4).generators == () and fraction_for(4).n_runs == 16  # full
    assert fraction_for(7, 4).resolution >= 4 and fraction_for(7, 4).n_runs == 16
    with pytest.raises(ValueError):
        fraction_for(18)
    with pytest.raises(ValueError):
        fraction_for(6, resolution=6)


def test_fraction_runs_follow_the_generators():
    five = fraction_from_words(5, ["ABCD"])
    runs = five.on_masks()
    assert len(set(runs)) == 16 and runs[0] == 0b11111  # all on first
    # I = +ABCDE: the product of the five ±1 levels is +1, i.e. an even number of factors off
    assert all((5 - r.bit_count()) % 2 == 0 for r in runs)
    eight = fraction_from_words(8, ["ABCD", "ABEF"])
    for r in eight.on_masks():
        level = [1 if r >> i & 1 else -1 for i in range(8)]
        assert level[6] == level[0] * level[1] * level[2] * level[3]  # G = ABCD
        assert level[7] == level[0] * level[1] * level[4] * level[5]  # H = ABEF
    # the defining relation read back from the runs is the generators' one, with sign +
    assert defining_relation(eight.on_masks(), 8) == [(w, 1) for w in eight.defining_words()]
    assert defining_relation(list(range(32)), 5) == []  # a full factorial: nothing aliased


def test_resolution_five_estimates_every_main_effect_and_two_factor_interaction():
    for k in (5, 6, 8, 10, 12):
        f = fraction_for(k)
        x = np.array([[1.0 if r >> i & 1 else -1.0 for i in range(k)] for r in f.on_masks()])
        columns = [np.ones(len(x)), *x.T, *(x[:, i] * x[:, j]
                                            for i, j in combinations(range(k), 2))]
        design = np.column_stack(columns)
        # orthogonal columns: X'X = N·I, so every effect is estimated independently
        assert np.allclose(design.T @ design, len(x) * np.eye(design.shape[1])), k


def test_fractional_design_plan():
    factors = ["conv_frontend", "adjacency_mask", "graded_inhibition", "hebbian", "dense2"]
    cat = {**CAT, "dense2": _f("dense2")}
    d = plan_design("fractional", catalogue=cat, reference=factors, factors=factors)
    assert d.kind == "fractional" and len(d.configurations) == 16 and not d.dropped
    assert names(d)[0] == "f:" + "+".join(factors)
    # a held feature that requires factor A drops the 8 runs (half) in which A is off
    held = plan_design("fractional", catalogue=cat,
                       reference=["lateral_inhibition", *factors], factors=factors)
    assert len(held.configurations) == 8 and len(held.dropped) == 8
    assert all("conv_frontend" not in x.features for x in held.dropped)
    record = d.fraction_record()
    assert record["generators"] == ["E = ABCD"] and record["defining_relation"] == ["ABCDE"]
    assert record["letters"]["E"] == "dense2" and record["runs"] == 16
    a = next(x for x in record["aliases"] if x["effect"] == "A")
    assert a["aliased_with"] == ["BCDE"] and a["term"] == "conv_frontend"
    ab = next(x for x in record["aliases"] if x["effect"] == "AB")
    assert ab["aliased_with"] == ["CDE"] and ab["term"] == "conv_frontend:adjacency_mask"
    assert len(record["aliases"]) == 5 + 10


def test_fractional_design_errors():
    with pytest.raises(BionicError, match="resolution applies to the fractional design only"):
        plan_design("factorial", catalogue=CAT, factors=["hebbian"], resolution=5)
    with pytest.raises(BionicError, match="sample does not apply"):
        plan_design("fractional", catalogue=CAT, factors=["hebbian"], sample=3)
    many = {f"x{i}": _f(f"x{i}") for i in range(18)}
    with pytest.raises(BionicError, match="1 to 17 factors"):
        plan_design("fractional", catalogue=many, factors=list(many))


def test_design_options_carry_the_resolution():
    from bionic_core.studies.sweep_plan import DesignOptions, design_options

    options = design_options({"design": "fractional", "resolution": 4}, "experiments.x.ablation")
    assert options.kind == "fractional" and options.resolution == 4
    assert DesignOptions.from_dict(options.as_dict()) == options
    older = {k: v for k, v in options.as_dict().items() if k != "resolution"}  # queued before
    assert DesignOptions.from_dict(older).resolution is None
    with pytest.raises(BionicError, match=r"experiments.x.ablation.resolution: expected one of"):
        design_options({"resolution": 2}, "experiments.x.ablation")
    with pytest.raises(BionicError, match=r"--resolution: expected one of 3, 4, 5, got 6"):
        design_options({}, "experiments.x.ablation", resolution=6)


# --------------------------------------------------------------------------- null ladder

def test_null_ladder_draws_each_control_with_its_own_null_seed():
    from bionic_core.studies.designs import DEFAULT_NULLS, control_kind

    d = plan_design("null-ladder", catalogue=CAT, reference=REF)
    expected = ["reference"] + [f"{w}#{k}" for w, n in DEFAULT_NULLS for k in range(n)]
    assert names(d) == expected and len(d.configurations) == 13  # 1 + 5 + 5 + 1 + 1
    assert all(c.features == frozenset(REF) for c in d.configurations)  # only the wiring varies
    assert d.by_name("reference").settings == ()
    assert d.by_name("degree_preserving#3").settings == (
        "adjacency_mask.wiring=degree_preserving", "connectome.null_seed=3")
    assert control_kind("degree_preserving#3") == "degree_preserving"
    assert control_kind("reference") == "reference"
    small = plan_design("null-ladder", catalogue=CAT, reference=REF,
                        nulls=(("layer_uniform", 2),))
    assert names(small) == ["reference", "layer_uniform#0", "layer_uniform#1"]


def test_null_ladder_errors():
    from bionic_core.studies.designs import check_nulls

    with pytest.raises(BionicError, match="null-ladder: the reference must have adjacency_mask"):
        plan_design("null-ladder", catalogue=CAT, reference=["hebbian"])
    with pytest.raises(BionicError, match="design explicit: nulls apply to the null-ladder"):
        plan_design("explicit", catalogue=CAT, explicit=[REF], nulls=(("uniform", 1),))
    with pytest.raises(BionicError, match=r"x.nulls.column: not a wiring control"):
        check_nulls({"column": 1}, "x.nulls")
    with pytest.raises(BionicError, match=r"x.nulls.uniform: expected a number of draws"):
        check_nulls({"uniform": 0}, "x.nulls")
    with pytest.raises(BionicError, match=r"x.nulls.dense_matched: has no random draw"):
        check_nulls({"dense_matched": 3}, "x.nulls")
    with pytest.raises(BionicError, match=r"x.nulls: expected a table"):
        check_nulls([], "x.nulls")


def test_design_options_carry_the_nulls():
    from bionic_core.studies.sweep_plan import DesignOptions, design_options

    options = design_options({"design": "null-ladder", "nulls": {"degree_preserving": 2}},
                             "experiments.x.ablation")
    assert options.nulls == (("degree_preserving", 2),)
    assert DesignOptions.from_dict(options.as_dict()) == options
    older = {k: v for k, v in options.as_dict().items() if k != "nulls"}  # queued before
    assert DesignOptions.from_dict(older).nulls == ()
    cli = design_options({"design": "null-ladder"}, "experiments.x.ablation",
                         nulls={"type_shuffled": 3})
    assert cli.nulls == (("type_shuffled", 3),)
    with pytest.raises(BionicError, match=r"--nulls.bogus: not a wiring control"):
        design_options({}, "experiments.x.ablation", nulls={"bogus": 3})
