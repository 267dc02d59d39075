"""Everything a feature author needs, in one import: ``from bionic_core.api import ...``.

The hook contract (``hookimpl``, the hook phases in :mod:`bionic_core.contract.hookspecs`), the
feature's metadata (``Feature``, ``Param``), the run context it receives (``RunContext``, with
per-run storage under a ``StashKey``), the hidden-layer plan types, the network's parts a
feature may touch (``BionicNet``, ``MaskedHiddenLayer``), the one-line user error
(``BionicError``), :func:`normal_like` to draw noise from a run's own stream (also inside the
multi-model engine's batched step) and :func:`catalogue_with` to register a feature in a test
(more test helpers in :mod:`bionic_core.testing`). A feature keeps state that must survive a
resume by implementing ``bionic_state`` / ``bionic_restore_state``. The guide for feature
authors is docs/writing_features.md.
"""

from __future__ import annotations

from bionic_core.contract.context import RunContext, Stash, StashKey
from bionic_core.contract.errors import BionicError
from bionic_core.contract.features import Feature, Group, Param
from bionic_core.contract.hookspecs import hookimpl
from bionic_core.contract.layers import HiddenLayer, LayerPlan
from bionic_core.contract.random_streams import normal_like
from bionic_core.host import Catalogue, FeatureFailure, load_catalogue
from bionic_core.network.model import BionicNet, MaskedHiddenLayer

__all__ = [
    "BionicError", "BionicNet", "Catalogue", "Feature", "FeatureFailure", "Group",
    "HiddenLayer", "LayerPlan", "MaskedHiddenLayer", "Param", "RunContext", "Stash",
    "StashKey", "catalogue_with", "hookimpl", "normal_like",
]


def catalogue_with(*plugins: object, source: str = "tests") -> Catalogue:
    """The built-in features plus ``plugins`` (modules or objects with hook implementations),
    for a test: ``train_run(config, catalogue_with(my_feature))`` trains with the feature
    available exactly as an installed plugin would be (third-party entry points are not
    loaded, so the test sees only what it names)."""
    catalogue = load_catalogue(third_party=False)
    for plugin in plugins:
        catalogue.add(plugin, source=source)
    return catalogue
