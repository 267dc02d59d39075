"""Hyper-parameter tuning with Optuna: the search space, the study, MLflow trial runs, export.

The search space has two sources: the core's own hyper-parameters (:data:`CORE_SPACE`) and the
``Param`` declarations (low/high/log or choices) of every enabled feature, named
``FEATURE.PARAM``. An experiment's ``[experiments.X.tune]`` table narrows (``ranges``,
``choices``) or fixes (``fixed``) dimensions. Every trial is one training run, recorded as an
MLflow run under one parent run for the study (Optuna's MLflow callback makes no parent; we do);
the objective is a validation metric, reported every epoch so that the pruner can stop a poor
trial early. Studies live in Optuna's RDB storage: a SQLite file by default, any SQLAlchemy URL
(PostgreSQL for several machines) otherwise.

Modules, each importing only those above it in this list:

- :mod:`.storage`: RDB storage URLs and the bionic attributes of a stored study;
- :mod:`.space`: :class:`SearchSpace` and the core's hyper-parameters;
- :mod:`.study`: samplers, pruners, metrics, and opening a study with its ownership checks;
- :mod:`.tune_table`: the ``tune`` table read into options and a search space;
- :mod:`.trials`: the objective, one trial as one MLflow run;
- :mod:`.session`: :func:`open_tuning` and :meth:`Tuning.optimize` with the parent run;
- :mod:`.export`: the best configuration written as an experiments table.
"""

from bionic_core.studies.tuning.export import (
    EXPORT_FIELDS,
    best_config,
    export_block,
    export_experiment,
    toml_value,
)
from bionic_core.studies.tuning.session import TuneResult, Tuning, open_tuning
from bionic_core.studies.tuning.space import (
    CORE_SPACE,
    SearchSpace,
    candidates,
    current_value,
    distribution,
)
from bionic_core.studies.tuning.storage import (
    ATTR_BASE,
    ATTR_EXPERIMENT,
    ATTR_KIND,
    DEFAULT_STORAGE,
    absolute_url,
    display_url,
    open_storage,
    study_attrs,
)
from bionic_core.studies.tuning.study import (
    METRICS,
    PRUNERS,
    SAMPLERS,
    base_fingerprint,
    default_study_name,
    make_pruner,
    make_sampler,
    open_study,
)
from bionic_core.studies.tuning.trials import (
    TAG_STATE,
    TAG_STORAGE,
    TAG_STUDY,
    TAG_TRIAL,
    TrialFailed,
    TuneObserver,
)
from bionic_core.studies.tuning.tune_table import TUNE_KEYS, build_search_space, tune_options

__all__ = [
    "ATTR_BASE", "ATTR_EXPERIMENT", "ATTR_KIND", "CORE_SPACE", "DEFAULT_STORAGE",
    "EXPORT_FIELDS", "METRICS", "PRUNERS", "SAMPLERS", "TAG_STATE", "TAG_STORAGE", "TAG_STUDY",
    "TAG_TRIAL", "TUNE_KEYS", "SearchSpace", "TrialFailed", "TuneObserver", "TuneResult",
    "Tuning", "absolute_url", "base_fingerprint", "best_config", "build_search_space",
    "candidates", "current_value", "default_study_name", "display_url", "distribution",
    "export_block", "export_experiment", "make_pruner", "make_sampler", "open_storage",
    "open_study", "open_tuning", "study_attrs", "toml_value", "tune_options",
]
