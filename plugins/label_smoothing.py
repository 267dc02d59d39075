"""label_smoothing: train against soft targets (1 − ε on the true class, ε spread evenly).

FER-2013's labels are noisy (annotators disagree on Fear/Sad/Neutral), so softening the targets
keeps the network from becoming over-confident on the ambiguous images. Evaluation still uses
plain cross-entropy (the core's rule).
"""

from __future__ import annotations

from torch import nn

from bionic_core.api import Feature, Param, hookimpl

NAME = "label_smoothing"


@hookimpl
def bionic_feature() -> Feature:
    return Feature(
        name=NAME,
        group="functional",
        help="Cross-entropy against smoothed targets: the true class gets 1 − ε + ε/7, every "
             "class ε/7.",
        params=(Param("epsilon", float, 0.1, "smoothing ε (0 = plain cross-entropy)",
                      low=0.0, high=0.3),),
        touches=("loss",),
    )


@hookimpl
def bionic_criterion(ctx) -> nn.Module:
    return nn.CrossEntropyLoss(label_smoothing=ctx.params(NAME)["epsilon"])
