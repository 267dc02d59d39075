"""Hyper-parameter tuning with Optuna: the search space, the study, MLflow trial runs, export.

The search space has two sources: the core's own hyper-parameters (:data:`CORE_SPACE`) and the
``Param`` declarations (low/high/log or choices) of every enabled feature, named
``FEATURE.PARAM``. An experiment's ``[experiments.X.tune]`` table narrows (``ranges``,
``choices``) or fixes (``fixed``) dimensions. Every trial is one training run, recorded as an
MLflow run under one parent run for the study (Optuna's MLflow callback makes no parent; we do);
the objective is a validation metric, reported every epoch so that the pruner can stop a poor
trial early. Studies live in Optuna's RDB storage: a SQLite file by default, any SQLAlchemy URL
(PostgreSQL for several machines) otherwise.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bionic_core.config import RunConfig
from bionic_core.contract.errors import BionicError
from bionic_core.contract.features import Param
from bionic_core.host import Catalogue
from bionic_core.studies.tracking import TAG_KIND, Tracker

if TYPE_CHECKING:
    import optuna

DEFAULT_STORAGE = "sqlite:///optuna.db"
SAMPLERS = ("tpe", "random", "gp")
PRUNERS = ("median", "hyperband", "none")
METRICS = ("val_accuracy", "val_macro_f1")
TUNE_KEYS = ("search", "fixed", "ranges", "choices", "trials", "sampler", "pruner", "metric")
# Study user attributes: which experiment a study belongs to, and what it is (tune | queue).
ATTR_EXPERIMENT = "bionic.experiment"
ATTR_KIND = "bionic.kind"
ATTR_BASE = "bionic.base"  # the fixed part of the trials' config (spec without the dimensions)
TAG_STUDY = "bionic.study"
TAG_STORAGE = "bionic.study_storage"
TAG_TRIAL = "optuna.trial_number"
TAG_STATE = "optuna.state"

# The core's hyper-parameters and the ranges explored unless the experiment narrows them.
CORE_SPACE: tuple[Param, ...] = (
    Param("lr", float, 1e-3, "learning rate of the default Adam optimizer",
          low=1e-4, high=1e-2, log=True),
    Param("batch_size", int, 32, "training batch size", choices=(16, 32, 64, 128)),
    Param("activation", str, "relu", "hidden-layer activation",
          choices=("relu", "gelu", "tanh")),
)


# ============================================================================ storage


def display_url(url: str) -> str:
    """``url`` with its password hidden (for messages, tags and tables)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL: shown as given
        return url


def absolute_url(url: str) -> str:
    """A relative SQLite path made absolute (so that it names the same file from any folder)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str((Path.cwd() / url[len(prefix):]).resolve())
    return url


def open_storage(url: str, where: str = "--storage", **heartbeat: Any) -> Any:
    """An Optuna ``RDBStorage`` on ``url``, or one BionicError line naming the URL.

    ``heartbeat`` passes ``heartbeat_interval``, ``grace_period`` and the stale-trial callback
    through (see :mod:`bionic_core.studies.work_queue`).
    """
    import optuna
    from sqlalchemy.engine import make_url

    try:
        backend = make_url(url).get_backend_name()
    except Exception as exc:  # noqa: BLE001
        raise BionicError(f"{where} {url}: not a database URL (e.g. sqlite:///optuna.db or "
                          "postgresql+psycopg2://user:password@host:5432/db)") from exc
    engine: dict[str, Any] = {"pool_pre_ping": True}
    if backend == "postgresql":  # an unreachable host fails in seconds, not minutes
        engine["connect_args"] = {"connect_timeout": 10}
    elif backend == "sqlite":  # several worker processes share one file: wait for its lock
        engine["connect_args"] = {"timeout": 60}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.simplefilter("ignore", FutureWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, **heartbeat)
    except Exception as exc:  # noqa: BLE001 - driver, network, file, schema: all one line
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if "password" in text.lower() or "@" in text:
            text = text.replace(url, display_url(url))
        raise BionicError(f"{where} {display_url(url)}: cannot be used: {text[:300]}") from exc


def study_attrs(storage: Any, name: str) -> dict[str, Any] | None:
    """The user attributes of study ``name`` in ``storage``, or None when there is none."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return storage.get_study_user_attrs(study_id)


# ============================================================================ search space


@dataclass(frozen=True)
class SearchSpace:
    """The dimensions a study explores (name → Param with the effective range) and the values
    fixed for every trial. Names: ``lr``, ``batch_size``, ``activation``, ``FEATURE.PARAM``."""

    dimensions: dict[str, Param]
    fixed: dict[str, Any] = field(default_factory=dict)

    def distributions(self) -> dict[str, Any]:
        return {name: distribution(p) for name, p in self.dimensions.items()}

    def suggest(self, trial: Any) -> dict[str, Any]:
        values = {}
        for name, p in self.dimensions.items():
            if p.choices is not None:
                values[name] = trial.suggest_categorical(name, list(p.choices))
            elif p.type is int:
                values[name] = trial.suggest_int(name, int(p.low), int(p.high), log=p.log)
            else:
                values[name] = trial.suggest_float(name, float(p.low), float(p.high), log=p.log)
        return values

    def apply(self, config: RunConfig, values: Mapping[str, Any]) -> RunConfig:
        """``config`` with the fixed values and then ``values`` set."""
        changes: dict[str, Any] = {}
        params = {k: dict(v) for k, v in config.params.items()}
        for name, value in {**self.fixed, **values}.items():
            if "." in name:
                feature, pname = name.split(".", 1)
                params.setdefault(feature, {})[pname] = value
            else:
                changes[name] = value
        return config.replace(params=params, **changes)

    def defaults(self, config: RunConfig, catalogue: Catalogue) -> dict[str, Any]:
        """The values ``config`` itself has for each dimension that lie inside the space."""
        out = {}
        for name, p in self.dimensions.items():
            value = current_value(config, catalogue, name)
            inside = (value in p.choices if p.choices is not None
                      else isinstance(value, (int, float)) and p.low <= value <= p.high)
            if inside:
                out[name] = value
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"dimensions": {n: p.as_dict() for n, p in self.dimensions.items()},
                "fixed": self.fixed}


def distribution(p: Param) -> Any:
    from optuna import distributions as d

    if p.choices is not None:
        return d.CategoricalDistribution(list(p.choices))
    if p.type is int:
        return d.IntDistribution(int(p.low), int(p.high), log=p.log)
    return d.FloatDistribution(float(p.low), float(p.high), log=p.log)


def current_value(config: RunConfig, catalogue: Catalogue, name: str) -> Any:
    if "." in name:
        feature, pname = name.split(".", 1)
        return config.feature_params(feature, catalogue[feature])[pname]
    return getattr(config, name)


def candidates(config: RunConfig, catalogue: Catalogue) -> dict[str, Param]:
    """Every parameter tuning may touch: the core's and each enabled feature's."""
    out = {p.name: p for p in CORE_SPACE}
    for feature in sorted(config.features):
        for p in catalogue[feature].params:
            out[f"{feature}.{p.name}"] = p
    return out


def _searchable(p: Param) -> bool:
    if p.choices is not None:
        return len(p.choices) > 1
    return p.low is not None and p.high is not None and p.low < p.high


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _lookup(names: Mapping[str, Param], name: str, where: str, config: RunConfig) -> Param:
    if name in names:
        return names[name]
    feature = name.split(".", 1)[0]
    if "." in name and feature not in config.features:
        raise BionicError(f"{where}: feature '{feature}' is not enabled in this experiment")
    known = ", ".join(names)
    raise BionicError(f"{where}: unknown parameter '{name}' (known: {known})")


def tune_options(config: RunConfig, where: str) -> dict[str, Any]:
    """The ``tune`` table's top-level settings (trials, sampler, pruner, metric), checked."""
    table = config.tune
    for key in table:
        if key not in TUNE_KEYS:
            raise BionicError(f"{where}: unknown key '{key}' (allowed: {', '.join(TUNE_KEYS)})")
    out: dict[str, Any] = {}
    if "trials" in table:
        trials = table["trials"]
        if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
            raise BionicError(f"{where}.trials: expected a positive integer, got {trials!r}")
        out["trials"] = trials
    for key, allowed in (("sampler", SAMPLERS), ("pruner", PRUNERS), ("metric", METRICS)):
        if key in table:
            if table[key] not in allowed:
                raise BionicError(f"{where}.{key}: expected one of {', '.join(allowed)}, "
                                  f"got {table[key]!r}")
            out[key] = table[key]
    return out


def build_search_space(config: RunConfig, catalogue: Catalogue, where: str) -> SearchSpace:
    """The search space of ``config`` narrowed/fixed by its ``tune`` table; ``where`` names the
    table in errors (e.g. ``experiments.toml: experiments.X.tune``).

    Table keys: ``search`` (explore only these names), ``ranges`` (name → [low, high]),
    ``choices`` (name → list), ``fixed`` (name → value for every trial); names are ``lr``,
    ``batch_size``, ``activation`` or ``FEATURE.PARAM`` of an enabled feature.
    """
    tune_options(config, where)
    names = candidates(config, catalogue)
    table = config.tune
    sections = {}
    for section in ("fixed", "ranges", "choices"):
        value = table.get(section, {})
        if not isinstance(value, dict):
            raise BionicError(f"{where}.{section}: expected a table of parameter names, "
                              f"got {value!r}")
        sections[section] = value
    search = table.get("search")
    if search is not None:  # explore only these; every other parameter keeps its value
        if not isinstance(search, list) or not all(isinstance(n, str) for n in search):
            raise BionicError(f"{where}.search: expected a list of parameter names, "
                              f"got {search!r}")
        for name in search:
            _lookup(names, name, f"{where}.search", config)
        for section in ("ranges", "choices"):
            outside = [n for n in sections[section] if n not in search]
            if outside:
                raise BionicError(f"{where}.{section}.{outside[0]}: not in {where}.search")
    params = dict(names)
    fixed: dict[str, Any] = {}
    for name, value in sections["fixed"].items():
        w = f"{where}.fixed.{name}"
        p = _lookup(names, name, w, config)
        fixed[name] = Param(name, p.type, p.default).coerce(value, w)
    for name, value in sections["ranges"].items():
        w = f"{where}.ranges.{name}"
        p = _lookup(names, name, w, config)
        if name in fixed:
            raise BionicError(f"{w}: the parameter is also fixed")
        if p.type not in (int, float):
            raise BionicError(f"{w}: a {p.type.__name__} parameter has no numeric range "
                              "(use choices)")
        if (not isinstance(value, list) or len(value) != 2
                or not all(_number(v) for v in value)):
            raise BionicError(f"{w}: expected [low, high], got {value!r}")
        low, high = value
        if p.type is int and not all(isinstance(v, int) for v in value):
            raise BionicError(f"{w}: expected integer bounds, got {value!r}")
        if low > high:
            raise BionicError(f"{w}: low {low} > high {high}")
        if p.log and low <= 0:
            raise BionicError(f"{w}: a log-scale range needs low > 0, got {low}")
        params[name] = Param(name, p.type, p.default, p.help, low=low, high=high, log=p.log)
    for name, value in sections["choices"].items():
        w = f"{where}.choices.{name}"
        p = _lookup(names, name, w, config)
        if name in fixed or name in sections["ranges"]:
            raise BionicError(f"{w}: the parameter is also fixed or given a range")
        if not isinstance(value, list) or not value:
            raise BionicError(f"{w}: expected a non-empty list, got {value!r}")
        plain = Param(name, p.type, p.default)
        chosen = tuple(plain.coerce(v, f"{w}[{i}]") for i, v in enumerate(value))
        params[name] = Param(name, p.type, p.default, p.help, choices=chosen)
    dimensions = {n: p for n, p in params.items() if n not in fixed and _searchable(p)
                  and (search is None or n in search)}
    for name, p in params.items():  # one choice or low == high: a fixed value, not a dimension
        if name not in fixed and name not in dimensions and name in {**sections["ranges"],
                                                                     **sections["choices"]}:
            fixed[name] = p.choices[0] if p.choices is not None else p.type(p.low)
    if not dimensions:
        raise BionicError(f"{where}: the search space is empty: no parameter of the core or of "
                          f"the enabled features ({', '.join(sorted(config.features)) or 'none'})"
                          " has a range or choices left to explore")
    return SearchSpace(dimensions, fixed)


# ============================================================================ Optuna pieces


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


def open_study(storage: Any, url: str, name: str, *, experiment: str, base: dict[str, Any],
               space: SearchSpace, sampler: Any, pruner: Any) -> optuna.Study:
    """Create or continue (``load_if_exists``) study ``name``; a study of another experiment
    or of another fixed configuration is an error."""
    import optuna

    attrs = study_attrs(storage, name)
    where = f"--study {name} in {display_url(url)}"
    if attrs is not None:
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
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize",
                                sampler=sampler, pruner=pruner, load_if_exists=True)
    if attrs is None:
        study.set_user_attr(ATTR_KIND, "tune")
        study.set_user_attr(ATTR_EXPERIMENT, experiment)
        study.set_user_attr(ATTR_BASE, base)
        study.set_user_attr("bionic.space", space.as_dict())
    return study


# ============================================================================ running


class TrialFailed(Exception):
    """A trial whose training diverged: recorded as FAIL, the study goes on."""


class TuneObserver:
    """Progress callbacks of :meth:`Tuning.optimize` (no-ops; the CLI draws Rich progress)."""

    def trial_started(self, number: int, values: dict[str, Any]) -> None: ...

    def epoch_done(self, number: int, epoch: int, row: dict[str, float]) -> None: ...

    def trial_done(self, trial: Any) -> None: ...


@dataclass
class TuneResult:
    study_name: str
    storage: str  # shown without its password
    parent_run_id: str
    metric: str
    trials: list[Any]  # Optuna FrozenTrials of the whole study
    new_trials: list[int]  # numbers of the trials run by this call
    best: Any | None  # the best FrozenTrial, None when no trial completed

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.state.name.lower()] = out.get(t.state.name.lower(), 0) + 1
        return out


def _find_parent(tracker: Tracker, experiment: str, study: str, storage: str) -> str | None:
    runs = tracker.find_runs(experiment, f"tags.`{TAG_KIND}` = 'study' and "
                                         f"tags.`{TAG_STUDY}` = '{study}'")
    runs = [r for r in runs if r.data.tags.get(TAG_STORAGE) == storage]
    if not runs:
        return None
    # The first one made: processes that started a study together all agree on it.
    return min(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id)).info.run_id


def _trial_run(tracker: Tracker, experiment: str, study: str, number: int,
               parent_id: str) -> str | None:
    runs = tracker.find_runs(experiment, f"tags.`{TAG_STUDY}` = '{study}' and "
                                         f"tags.`{TAG_TRIAL}` = '{number}' and "
                                         f"tags.`mlflow.parentRunId` = '{parent_id}'")
    return max(runs, key=lambda r: r.info.start_time or 0).info.run_id if runs else None


@dataclass
class Tuning:
    """An opened study, checked and ready: :meth:`optimize` runs its trials."""

    base: RunConfig
    catalogue: Catalogue
    tracker: Tracker
    space: SearchSpace
    study: Any  # optuna.Study
    storage: str  # the URL shown without its password
    metric: str
    sampler: str
    pruner: str

    @property
    def name(self) -> str:
        return self.study.study_name

    def _open_parent(self) -> str:
        tracker, experiment = self.tracker, self.base.experiment
        tags = {TAG_KIND: "study", TAG_STUDY: self.name, TAG_STORAGE: self.storage,
                "bionic.sampler": self.sampler, "bionic.pruner": self.pruner,
                "bionic.metric": self.metric}
        parent_id = _find_parent(tracker, experiment, self.name, self.storage)
        if parent_id is None:
            params = {"study": self.name, "storage": self.storage, "metric": self.metric,
                      "space": json.dumps(self.space.as_dict(), default=str)[:6000]}
            mine = tracker.start(experiment, f"tune {self.name}", tags=tags, params=params)
            # Another machine may have opened the same study at the same moment: keep one.
            parent_id = _find_parent(tracker, experiment, self.name, self.storage) or mine
            if parent_id != mine:
                tracker.client.delete_run(mine)
            return parent_id
        tracker.client.update_run(parent_id, status="RUNNING")
        tracker.set_tags(parent_id, tags)
        return parent_id

    def optimize(self, trials: int | None = 20, timeout: float | None = None,
                 observer: TuneObserver | None = None) -> TuneResult:
        """Run ``trials`` more trials (or until ``timeout`` seconds), each an MLflow run under
        the study's parent run; the parent then carries the best value and parameters."""
        import optuna

        from bionic_core.studies.tracked_run import run_tracked

        observer = observer or TuneObserver()
        base, space, tracker, metric = self.base, self.space, self.tracker, self.metric
        experiment, study_name, shown = base.experiment, self.name, self.storage
        parent_id = self._open_parent()
        checkpoints = Path(tempfile.mkdtemp(prefix="bionic-tune-"))
        new_trials: list[int] = []

        def objective(trial: optuna.Trial) -> float:
            values = space.suggest(trial)
            config = space.apply(base, values)
            new_trials.append(trial.number)
            observer.trial_started(trial.number, values)
            extra = {TAG_KIND: "trial", TAG_STUDY: study_name, TAG_STORAGE: shown,
                     TAG_TRIAL: str(trial.number), TAG_STATE: "RUNNING",
                     "optuna.params": json.dumps(values, default=str)[:5000]}

            def on_epoch(epoch: int, row: dict[str, float]) -> None:
                trial.report(row[metric], epoch)
                observer.epoch_done(trial.number, epoch, row)
                # A trial that trained all its epochs completes: pruning it saves nothing.
                if epoch < config.epochs and trial.should_prune():
                    raise optuna.TrialPruned(f"{metric} {row[metric]:.4f} after epoch {epoch}")

            try:
                result, run_id = run_tracked(config, self.catalogue, tracker,
                                             run_name=f"{study_name} trial {trial.number}",
                                             parent_id=parent_id, extra_tags=extra,
                                             on_epoch=on_epoch, checkpoint_dir=checkpoints)
            except optuna.TrialPruned as exc:
                run_id = _trial_run(tracker, experiment, study_name, trial.number, parent_id)
                if run_id is not None:  # run_tracked recorded an error: it is a pruned trial
                    tracker.set_tags(run_id, {TAG_STATE: "PRUNED", "bionic.status": "pruned",
                                              "bionic.reason": f"pruned: {exc}"})
                    tracker.end(run_id, "KILLED")  # not FINISHED: no sweep may reuse it
                    trial.set_user_attr("mlflow_run_id", run_id)
                (checkpoints / f"{config.key()}.pt").unlink(missing_ok=True)
                raise
            except BionicError:
                raise
            except BaseException:  # an error or an interrupt: Optuna records a FAIL
                run_id = _trial_run(tracker, experiment, study_name, trial.number, parent_id)
                if run_id is not None:
                    tracker.set_tags(run_id, {TAG_STATE: "FAIL"})
                raise
            trial.set_user_attr("mlflow_run_id", run_id)
            trial.set_user_attr("run_key", result.key)
            trial.set_user_attr("epochs_run", result.epochs_run)
            if result.status != "finished":
                tracker.set_tags(run_id, {TAG_STATE: "FAIL"})
                raise TrialFailed(result.reason)
            tracker.set_tags(run_id, {TAG_STATE: "COMPLETE"})
            return float(result.val[metric.removeprefix("val_")])

        def done(_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            observer.trial_done(trial)

        try:
            if trials is None or trials > 0:
                self.study.optimize(objective, n_trials=trials, timeout=timeout,
                                    callbacks=[done],
                                    catch=(TrialFailed, RuntimeError, ValueError,
                                           ArithmeticError))
        except BaseException:
            tracker.end(parent_id, "KILLED")
            raise
        finally:
            for leftover in checkpoints.glob("*"):
                leftover.unlink(missing_ok=True)
            checkpoints.rmdir()
        return self._close_parent(parent_id, new_trials)

    def _close_parent(self, parent_id: str, new_trials: list[int]) -> TuneResult:
        import optuna

        tracker = self.tracker
        all_trials = self.study.get_trials(deepcopy=False)
        complete = [t for t in all_trials if t.state == optuna.trial.TrialState.COMPLETE]
        best = max(complete, key=lambda t: t.value) if complete else None
        result = TuneResult(self.name, self.storage, parent_id, self.metric, all_trials,
                            new_trials, best)
        summary = {f"trials_{state}": float(n) for state, n in result.counts().items()}
        if best is not None:
            summary.update(best_value=float(best.value), best_trial=float(best.number))
            best_tags = {f"best.{k}": str(v) for k, v in best.params.items()}
            best_tags["best.trial"] = str(best.number)
            if "mlflow_run_id" in best.user_attrs:
                best_tags["best.run_id"] = str(best.user_attrs["mlflow_run_id"])
            tracker.set_tags(parent_id, best_tags)  # tags, not params: the best changes
            tracker.log_json(parent_id, "best_params.json",
                             {"trial": best.number, self.metric: best.value,
                              "params": best.params})
        tracker.log_metrics(parent_id, summary)
        tracker.end(parent_id, "FINISHED")
        return result


def open_tuning(base: RunConfig, catalogue: Catalogue, tracker: Tracker, space: SearchSpace,
                *, storage_url: str = DEFAULT_STORAGE, study_name: str | None = None,
                sampler: str = "tpe", pruner: str = "median",
                metric: str = "val_accuracy") -> Tuning:
    """Open (create or continue) the study of ``base`` and check everything a user can get
    wrong — storage URL, study owner, tracking URI — before any trial runs."""
    import optuna

    if metric not in METRICS:
        raise BionicError(f"metric {metric}: expected one of {', '.join(METRICS)}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_name = study_name or default_study_name(base.experiment)
    url = absolute_url(storage_url)
    storage = open_storage(url)
    tracker.experiment_id(base.experiment)  # a bad tracking URI fails before any trial
    existing = study_attrs(storage, study_name)
    n_before = (len(storage.get_all_trials(storage.get_study_id_from_name(study_name),
                                           deepcopy=False)) if existing is not None else 0)
    # A rerun must not replay the first call's random draws: the seed moves on with the study.
    seed = base.seed * 100_003 + n_before
    fixed_base = space.apply(base, {})
    study = open_study(storage, url, study_name, experiment=base.experiment,
                       base=base_fingerprint(fixed_base, space), space=space,
                       sampler=make_sampler(sampler, seed),
                       pruner=make_pruner(pruner, base.epochs))
    if n_before == 0:  # the experiment's own values are the first point: the one to beat
        defaults = space.defaults(fixed_base, catalogue)
        if defaults:
            study.enqueue_trial(defaults, user_attrs={"bionic.origin": "experiment values"})
    return Tuning(base, catalogue, tracker, space, study, display_url(url), metric, sampler,
                  pruner)


# ============================================================================ export


def _toml_key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def toml_value(value: Any) -> str:
    """One TOML value (inline tables for dicts), for the exported experiment."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{_toml_key(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


EXPORT_FIELDS = ("description", "dataset", "test_data", "val_fraction", "features", "params",
                 "connectome", "hidden_sizes", "activation", "lr", "batch_size", "epochs",
                 "patience", "monitor", "seeds", "ablation")


def export_block(name: str, config: RunConfig, catalogue: Catalogue, note: str) -> str:
    """``[experiments.NAME]``: every field of ``config`` a run needs, so the table works in a
    file of its own (no ``extends``, no ``[defaults]`` needed)."""
    lines = [f"# >>> bionic tune export: {name}", f"# {note}", f"[experiments.{name}]"]
    for key in EXPORT_FIELDS:
        value = getattr(config, key)
        if key == "params":
            value = {f: config.feature_params(f, catalogue[f]) for f in sorted(config.features)}
            value = {f: p for f, p in value.items() if p}
        if value is None or (isinstance(value, dict) and not value and key != "params"):
            continue
        lines.append(f"{key} = {toml_value(value)}")
    lines.append(f"# <<< bionic tune export: {name}")
    return "\n".join(lines) + "\n"


def export_experiment(path: Path, name: str, config: RunConfig, catalogue: Catalogue,
                      note: str) -> Path:
    """Write ``config`` as ``[experiments.NAME]`` into ``path``: a new file, appended to an
    existing experiments file, or replacing an earlier export of the same name."""
    import tomllib

    from bionic_core.config import ExperimentFile

    block = export_block(name, config.replace(experiment=name), catalogue, note)
    text = path.read_text() if path.is_file() else ""
    if text:
        try:
            existing = tomllib.loads(text).get("experiments", {})
        except tomllib.TOMLDecodeError as exc:
            raise BionicError(f"{path}: invalid TOML, not written: {exc}") from exc
        begin, end = f"# >>> bionic tune export: {name}\n", f"# <<< bionic tune export: {name}\n"
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            text = head + block + rest.split(end, 1)[1]
        elif name in existing:
            raise BionicError(f"{path}: experiments.{name} already exists and was not written "
                              "by bionic tune; choose another --export-name")
        else:
            text = text.rstrip("\n") + "\n\n" + block
    else:
        text = ("# Experiments exported by `bionic tune --export`; use them with\n"
                f"# `bionic run NAME --experiments {path.name}` or `bionic ablate ...`.\n\n"
                + block)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    try:
        ExperimentFile.load(tmp).config(name)  # what `bionic run NAME --experiments` will read
    except BionicError as exc:
        tmp.unlink(missing_ok=True)
        raise BionicError(f"{path}: the export would not load, not written: {exc}") from exc
    os.replace(tmp, path)
    return path


def best_config(base: RunConfig, space: SearchSpace, trial: Any) -> RunConfig:
    """``base`` with the fixed values and the trial's parameters (only the dimensions that
    are still in the space; a parameter of a feature that is off is left out)."""
    values = {k: v for k, v in trial.params.items()
              if "." not in k or k.split(".", 1)[0] in base.features}
    return space.apply(base, values)

