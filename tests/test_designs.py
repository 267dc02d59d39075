"""Ablation design enumeration: kinds, filtering by requires/conflicts, dedup, sampling."""

from __future__ import annotations

import pytest

from bionic_core.contract.errors import BionicError
from bionic_core.contract.features import Feature
from bionic_core.studies.designs import plan_design, validate_feature_set


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
