"""augmentation: per-image random flip, rotation/translation/zoom, brightness/contrast jitter and
random erasing of every training batch, on the training device (exposure to natural variability).

The operations live in :mod:`bionic_core.training.augment`; this plugin maps its parameters onto
them.
Evaluation batches are never augmented (the core applies batch transforms to training only).
"""

from __future__ import annotations

from bionic_core.api import BionicError, Feature, Param, hookimpl
from bionic_core.training.augment import BatchAugmenter

NAME = "augmentation"


@hookimpl
def bionic_feature() -> Feature:
    return Feature(
        name=NAME,
        group="functional",
        help="Per-image random flip, small rotation/shift/zoom, brightness/contrast jitter and "
             "random erasing of training batches, on the device. A strength of 0 turns that "
             "operation off.",
        params=(
            Param("flip", float, 0.5, "probability of a horizontal flip (faces are roughly "
                  "mirror-symmetric)", low=0.0, high=0.5),
            Param("degrees", float, 10.0, "maximum rotation, ± degrees", low=0.0, high=20.0),
            Param("translate", float, 0.1, "maximum shift, ± fraction of the image size",
                  low=0.0, high=0.2),
            Param("scale", float, 0.1, "maximum zoom: factor in [1 - scale, 1 + scale]",
                  low=0.0, high=0.2),
            Param("brightness", float, 0.2, "brightness factor in 1 ± brightness",
                  low=0.0, high=0.4),
            Param("contrast", float, 0.2, "contrast factor in 1 ± contrast", low=0.0, high=0.4),
            Param("erase", float, 0.25, "probability of erasing one rectangle (set to grey)",
                  low=0.0, high=0.5),
            Param("erase_max_area", float, 0.15, "largest erased fraction of the image "
                  "(the smallest is 0.02)", low=0.05, high=0.3),
        ),
        touches=("training batches",),
    )


@hookimpl
def bionic_batch_transform(ctx) -> BatchAugmenter:
    p = ctx.params(NAME)
    for name, high in (("flip", 1.0), ("erase", 1.0), ("scale", 0.9), ("translate", 0.5),
                       ("brightness", 1.0), ("contrast", 1.0), ("erase_max_area", 1.0),
                       ("degrees", 180.0)):
        if not 0.0 <= p[name] <= high:
            raise BionicError(f"params.{NAME}.{name}: {p[name]} is outside [0, {high}]")
    return BatchAugmenter(flip=p["flip"], degrees=p["degrees"], translate=p["translate"],
                          scale=p["scale"], brightness=p["brightness"], contrast=p["contrast"],
                          erase=p["erase"], erase_area=(0.02, max(0.02, p["erase_max_area"])))
