"""Evaluating an ensemble: several trained models (logged runs or model folders) predicting
together by their mean class probabilities, on the splits a user names, with every member's
own score beside it and the parameters of all members counted.

An image is left out (``drop_train_overlap``) or refused if it is a pixel copy of any member's
training images, so the ensemble is scored only on what none of its members saw."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bionic_core.contract.errors import BionicError
from bionic_core.host import Catalogue
from bionic_core.studies.evaluation import LoadedModel, checked_splits, data_record, load_model
from bionic_core.studies.evaluation_data import Chosen, check_split, choose_splits
from bionic_core.studies.tracking import Tracker
from bionic_core.training.inference_views import PLAIN, InferenceViews

if TYPE_CHECKING:  # torch is imported where images are scored: the CLI starts without it
    import torch

# The settings that rebuild a run's own holdout: members evaluated on `train` or `val` must
# share them, or "the validation split" would be different images for different members.
HOLDOUT_SETTINGS = ("val_fraction", "val_seed", "dedupe", "test_data")


def _check_members(specs: list[str], split: str) -> None:
    if len(specs) < 2:
        raise BionicError("an ensemble needs at least two models (got "
                          f"{len(specs)}); evaluate one model on its own")
    repeated = next((s for s in specs if specs.count(s) > 1), None)
    if repeated is not None:
        raise BionicError(f"{repeated}: given twice; an ensemble's members are different "
                          "models")
    check_split(split)


def check_holdouts(members: list[LoadedModel], split: str) -> None:
    """Refuse members that rebuild ``train`` / ``val`` from different settings."""
    if split not in ("train", "val"):
        return
    first = members[0]
    for m in members[1:]:
        differs = next((s for s in HOLDOUT_SETTINGS
                        if getattr(m.config, s) != getattr(first.config, s)), None)
        if differs is not None:
            raise BionicError(f"--split {split}: {m.model} and {first.model} hold out different "
                              f"images ({differs} {getattr(m.config, differs)!r} against "
                              f"{getattr(first.config, differs)!r}); evaluate a test split")


def union_of_training(members: list[LoadedModel]) -> tuple[np.ndarray | None, str]:
    """The hashes of every member's training images, and the run to name in an error: the
    first member that logged none (its absence makes the union unknown), else all of them."""
    unknown = next((m for m in members if m.training is None), None)
    if unknown is not None:
        return None, unknown.run_id
    union = np.unique(np.concatenate([m.training for m in members]))
    return union, " + ".join(m.run_id[:12] for m in members)


def evaluate_ensemble(specs: list[str], data: str, *, tracker: Tracker | None,
                      catalogue: Catalogue, split: str = "auto", device: str = "auto",
                      allow_train_overlap: bool = False, drop_train_overlap: bool = False,
                      views: InferenceViews = PLAIN) -> list[dict[str, Any]]:
    """Metrics of the ensemble of ``specs`` (model folders or MLflow run ids; two or more,
    each once) on each split ``split`` names in ``data``, one report per split: the members'
    softmax probabilities averaged, each member's own accuracy and macro-F1 on the same
    images, and ``n_parameters`` summed over the members; with more ``views`` than the image
    itself (test-time augmentation) every member scores each image on all of them. Nothing is
    logged: an ensemble belongs to no single run."""
    _check_members(specs, split)
    members = [load_model(s, tracker, catalogue, device) for s in specs]
    check_holdouts(members, split)
    training, named = union_of_training(members)
    chosen = checked_splits(choose_splits(data, split, members[0].config), training, data=data,
                            run_id=named, config=members[0].config, allow=allow_train_overlap,
                            drop=drop_train_overlap)
    return [_evaluate_split(members, data, c, views) for c in chosen]


def member_logits(m: LoadedModel, chosen: Chosen, views: InferenceViews) -> torch.Tensor:
    """One member's scores (logits, or the log of its views' mean probability) for
    ``chosen``'s images, on the CPU."""
    from bionic_core.training.batches import DeviceSplit
    from bionic_core.training.loop import split_logits

    return split_logits(m.net, DeviceSplit(chosen.images, chosen.labels, m.ctx.device),
                        m.config.eval_batch_size, views=views).cpu()


def combined_metrics(probabilities: list[torch.Tensor], labels: torch.Tensor) -> dict[str, Any]:
    """The metrics of an ensemble whose members gave ``probabilities``: their mean."""
    import torch

    from bionic_core.data import CLASS_NAMES
    from bionic_core.training.metrics import classification_metrics

    # log of the mean probability: the softmax inside the metrics gives that mean back.
    mean = torch.stack(probabilities).mean(dim=0)
    return classification_metrics(mean.clamp_min(1e-30).log(), labels, CLASS_NAMES)


def _evaluate_split(members: list[LoadedModel], data: str, chosen: Chosen,
                    views: InferenceViews) -> dict[str, Any]:
    import torch

    from bionic_core.data import CLASS_NAMES
    from bionic_core.network.model import count_parameters
    from bionic_core.training.metrics import classification_metrics

    labels = torch.as_tensor(chosen.labels, dtype=torch.int64)
    probabilities, described = [], []
    for m in members:
        logits = member_logits(m, chosen, views)
        own = classification_metrics(logits, labels, CLASS_NAMES)
        probabilities.append(torch.softmax(logits, dim=1))
        described.append({"model": m.model, "run_id": m.run_id, "experiment": m.config.experiment,
                          "run_key": m.config.key(), "seed": m.config.seed,
                          "features": list(m.config.features),
                          "n_parameters": count_parameters(m.net),
                          "accuracy": own["accuracy"], "macro_f1": own["macro_f1"]})
    metrics = combined_metrics(probabilities, labels)
    return {"ensemble": [m.model for m in members], "members": described,
            "n_parameters": sum(d["n_parameters"] for d in described),
            "features": sorted({f for m in members for f in m.config.features}),
            "data": data_record(data, chosen), **views.record(),
            "combined_by": "mean softmax probability"
                           + ("" if views.plain else f" (each member's over {views.count} views: "
                                                       f"{views.describe()})"),
            **metrics}
