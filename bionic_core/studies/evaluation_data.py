"""What `bionic evaluate` is given: the splits ``--split`` names in a dataset, with the
validation holdout rebuilt by the run's own settings, checked against the run's training
images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bionic_core.config import RunConfig
from bionic_core.contract.errors import BionicError
from bionic_core.data import TEST_SPLITS, image_hashes, load_dataset, read_parts
from bionic_core.studies.training_images import ARTIFACT, count_trained_on

SPLITS = ("auto", "train", "val", *TEST_SPLITS, "all")


@dataclass
class Chosen:
    """One split to evaluate: its name, images, labels and where it came from."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    origin: str
    trained_on: int | None = None  # images that are pixel copies of the run's training images


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise BionicError(f"--split {split}: expected one of {', '.join(SPLITS)}")


def choose_splits(data: str, split: str, config: RunConfig) -> list[Chosen]:
    """What ``split`` names in ``data``: ``auto`` is each test split the data has (each its own
    evaluation); a source without one (a single npz, emotion folders) is one set of images,
    evaluated whole as ``all``. ``train`` / ``val`` are rebuilt with the run's val_fraction,
    val_seed and dedupe. A union with the train part happens only when asked for (``all``)."""
    check_split(split)
    if split in ("train", "val"):
        # The run's own holdout comes after its dedupe, which its test file (if any) took
        # part in.
        test = config.test_data if config.dedupe else None
        dataset = load_dataset(data, val_fraction=config.val_fraction,
                               val_seed=config.val_seed, dedupe=config.dedupe, test=test)
        own = dataset.splits[split]
        return [Chosen(split, own.images, own.labels, own.origin)]
    parts = read_parts(data)  # test splits need no holdout: a lone test file has no train part
    if not parts:
        raise BionicError(f"{data}: has no images")
    names = [split] if split != "auto" else [n for n in TEST_SPLITS if n in parts]
    if split == "all" or not names:
        labels = np.concatenate([p.labels for p in parts.values()])
        return [Chosen("all", np.concatenate([p.images for p in parts.values()]), labels,
                       f"all {len(labels)} images of {data} ({', '.join(parts)})")]
    if names[0] not in parts:
        raise BionicError(f"{data}: has no {names[0]} split (has {', '.join(parts)})")
    return [Chosen(n, parts[n].images, parts[n].labels, parts[n].origin) for n in names]


def without_training_copies(chosen: list[Chosen], training: np.ndarray | None, *, data: str,
                            run_id: str) -> list[Chosen]:
    """Each split without its pixel copies of the run's training images (``training``: their
    logged hashes; refused in one line when the run logged none), its origin saying how many
    were left out."""
    if training is None:
        raise BionicError(f"run {run_id}: has no record of its training images ({ARTIFACT}), "
                          f"so the copies of them in {data} cannot be left out")
    out = []
    for c in chosen:
        copies = np.isin(image_hashes(c.images), training)
        dropped = int(copies.sum())
        origin = c.origin + (f", without its {dropped} pixel copies of training images"
                             if dropped else ", none of them a copy of a training image")
        out.append(Chosen(c.name, c.images[~copies], c.labels[~copies], origin, 0))
    return out


def check_training_overlap(chosen: list[Chosen], training: np.ndarray | None, *, data: str,
                           run_id: str, config: RunConfig, allow: bool) -> None:
    """Count each split's pixel copies of the run's training images (``training``: their
    logged hashes, None when the run logged none) and refuse, in one line, a split holding any
    unless ``allow``."""
    if training is None:
        if allow:
            return
        raise BionicError(f"run {run_id}: has no record of its training images ({ARTIFACT}; "
                          f"runs logged before bionic recorded it have none), so {data} cannot "
                          f"be checked against them; pass --allow-train-overlap to evaluate "
                          f"anyway")
    for c in chosen:
        c.trained_on = count_trained_on(training, image_hashes(c.images))
    refused = next((c for c in chosen if c.trained_on), None)
    if refused is None or allow:
        return
    hint = ("; FER-2013 repeats Training images in its test splits: a run with dedupe = true "
            "trains without them" if not config.dedupe else "")
    raise BionicError(f"{data}: {refused.name}: {refused.trained_on} of {len(refused.labels)} "
                      f"images are pixel copies of images run {run_id} was trained on, so the "
                      f"score would not be an evaluation; pass --allow-train-overlap to "
                      f"evaluate anyway{hint}")
