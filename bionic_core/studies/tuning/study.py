"""The Optuna study of an experiment: its sampler, its pruner, and opening (creating or
continuing) it with the checks that keep one study to one experiment and one fixed config."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bionic_core.config import RunConfig
from bionic_core.contract.errors import BionicError
from bionic_core.studies.tuning.space import SearchSpace
from bionic_core.studies.tuning.storage import (
    ATTR_BASE,
    ATTR_EXPERIMENT,
    ATTR_KIND,
    display_url,
    study_attrs,
)

if TYPE_CHECKING:
    import optuna

SAMPLERS = ("tpe", "random", "gp")
PRUNERS = ("median", "hyperband", "none")
METRICS = ("val_accuracy", "val_macro_f1")


def make_sampler(kind: str, seed: int) -> Any:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if kind == "tpe":
            # constant_liar: processes sharing one study do not all try the same point.
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, multivariate=True,
                                              constant_liar=True)
        if kind == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if kind == "gp":
            try:
                import scipy  # noqa: F401 - GPSampler's own dependencies
                import torch  # noqa: F401

                return optuna.samplers.GPSampler(seed=seed)
            except (ImportError, AttributeError) as exc:
                raise BionicError(f"--sampler gp: Optuna's Gaussian-process sampler is not "
                                  f"available here ({type(exc).__name__}: {exc}); install "
                                  "torch and scipy, or use --sampler tpe") from exc
    raise BionicError(f"--sampler {kind}: expected one of {', '.join(SAMPLERS)}")


def make_pruner(kind: str, epochs: int) -> Any:
    import optuna

    if kind == "median":  # from the first epoch on, once 3 trials have finished
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1),
                                              reduction_factor=3)
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise BionicError(f"--pruner {kind}: expected one of {', '.join(PRUNERS)}")


def default_study_name(experiment: str) -> str:
    return f"tune-{experiment}"


def base_fingerprint(config: RunConfig, space: SearchSpace) -> dict[str, Any]:
    """What every trial of a study shares: the spec without the searched dimensions."""
    spec = config.spec()
    for name in space.dimensions:
        if "." in name:
            feature, pname = name.split(".", 1)
            spec["params"].get(feature, {}).pop(pname, None)
        else:
            spec.pop(name, None)
    return json.loads(json.dumps(spec, default=str))


def _first_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            before, now = json.dumps(old.get(key))[:80], json.dumps(new.get(key))[:80]
            return f"{key} was {before}, is {now} now"
    return "the searched parameters"


def _check_owner(attrs: Mapping[str, Any], where: str, experiment: str,
                 base: dict[str, Any]) -> None:
    """An existing study must be a tuning study of ``experiment`` with the same fixed part."""
    if attrs.get(ATTR_KIND, "tune") != "tune":
        raise BionicError(f"{where}: this study is a {attrs.get(ATTR_KIND)} study, not a "
                          "tuning study (choose another --study)")
    owner = attrs.get(ATTR_EXPERIMENT)
    if owner != experiment:
        what = f"experiment '{owner}'" if owner else "no bionic experiment"
        raise BionicError(f"{where}: the study belongs to {what}, not '{experiment}' "
                          "(choose another --study)")
    if attrs.get(ATTR_BASE) is not None and attrs[ATTR_BASE] != base:
        raise BionicError(f"{where}: the study was tuned with other fixed settings "
                          f"({_first_difference(attrs[ATTR_BASE], base)}); choose another "
                          "--study to tune these")


def open_study(storage: Any, url: str, name: str, *, experiment: str, base: dict[str, Any],
               space: SearchSpace, sampler: Any, pruner: Any) -> optuna.Study:
    """Create or continue (``load_if_exists``) study ``name``; a study of another experiment
    or of another fixed configuration is an error."""
    import optuna

    attrs = study_attrs(storage, name)
    if attrs is not None:
        _check_owner(attrs, f"--study {name} in {display_url(url)}", experiment, base)
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize",
                                sampler=sampler, pruner=pruner, load_if_exists=True)
    if attrs is None:
        study.set_user_attr(ATTR_KIND, "tune")
        study.set_user_attr(ATTR_EXPERIMENT, experiment)
        study.set_user_attr(ATTR_BASE, base)
        study.set_user_attr("bionic.space", space.as_dict())
    return study
