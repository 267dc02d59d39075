"""weight_decay: decoupled weight decay (AdamW, Loshchilov & Hutter 2019) at the config's rate.

Only matrices and convolution kernels decay; biases and LayerNorm gains (1-D parameters) do not,
the usual practice, since shrinking them towards zero regularises nothing useful. Decoupled decay
multiplies each weight by ``1 − lr·λ``, so a masked weight that is exactly zero stays zero.
"""

from __future__ import annotations

import torch

from bionic_core.api import BionicError, Feature, Param, hookimpl

NAME = "weight_decay"


@hookimpl
def bionic_feature() -> Feature:
    return Feature(
        name=NAME,
        group="functional",
        help="AdamW instead of Adam: decoupled weight decay λ on weight matrices and kernels "
             "(not on biases and norm gains), at the config's learning rate.",
        params=(Param("decay", float, 1e-2, "decoupled weight decay λ (AdamW)",
                      low=1e-5, high=1e-1, log=True),),
        touches=("optimizer",),
    )


@hookimpl
def bionic_optimizer(ctx, parameters: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    decay = ctx.params(NAME)["decay"]
    if decay < 0:
        raise BionicError(f"params.{NAME}.decay: {decay} must not be negative")
    matrices = [p for p in parameters if p.ndim >= 2]
    vectors = [p for p in parameters if p.ndim < 2]
    groups = [{"params": matrices, "weight_decay": decay},
              {"params": vectors, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=ctx.config.lr,
                             **ctx.adam_options())
