"""The multi-model engine: train S runs together, in lockstep, each with its own everything.

An ablation study is dozens of small models, and a small model's step costs mostly per-step
overhead (kernel launches, Python, optimizer bookkeeping) on a GPU. So on a GPU the engine
trains S runs whose networks share a shape with *batched* steps: their parameters and buffers
are stacked along a new leading dimension and one forward pass runs all of them through
``torch.func.vmap`` over ``functional_call`` of a template copy of the network — linear layers
become batched matmuls, convolutions grouped convolutions, and every feature's module works
unchanged (its masks, gains and parameters are per-model slices of the stacks).

On a CPU a step is compute-bound and batched kernels are slower than plain ones (grouped
convolutions and strided elementwise work: measured 1.25× slower for the `paper` model), so
there the engine takes *per-model* steps with the one-by-one code, the models spread over
worker threads with one intra-op thread each (a few cores train a few models at once instead
of sharing each small operation); the validation after each epoch and the final evaluation
run on those workers too. :func:`default_batched` picks by device; both give the one-by-one
results.

Each run keeps everything that is its own, through its
:class:`~bionic_core.training.RunState`, exactly as in :func:`~bionic_core.training.train_run`:

- its model object; in batched steps its parameters and buffers are *views* of its slice of
  the stacks (gradients too), so features that write weights after a step (Hebbian updates)
  act on that run alone through the ordinary modules, and checkpoints are the usual files;
- its optimizer over those views (Adam's update is elementwise, so S optimizers over slices of
  one stacked tensor are S independent optimizers), its scheduler — so a plateau schedule
  gives each run its own learning rate —, its loss and batch transforms;
- its own generator: its own data order and augmentation draws, the same as one by one;
- its own early stopping: a run that stops (or diverges, or reaches its epochs) leaves the
  group (batched: the stacks are rebuilt from the remaining runs) and is finished at once.

Forward hooks that features put on a run's modules (the Hebbian plugin's activity capture)
see that run's own activity: in batched steps the template records every call of a hooked
module inside the batched pass and the engine then calls each run's hooks with its slice. A
hook must observe, not change, activity (return None); backward hooks are not supported. Runs
that cannot be batched — different shapes or module settings, such hooks — train one by one,
so :func:`train_many` always returns every result.

Equivalence: per-model steps (the CPU engine) reproduce the one-by-one runs exactly — each
run computes with its config's ``cpu_threads`` alone or together — and batched steps (the GPU
engine) up to floating-point rounding (batched kernels sum in another order). Noise drawn
inside the forward pass from the run's private stream (``ctx.random_stream`` through
``normal_like``, as synaptic noise does) is the run's own in both: a per-model step draws
exactly what the run draws alone, and a batched step draws each model's slice from its own
run's generator. Noise from torch's global generator (a third-party feature may draw it): per-model
steps give each run its own saved generator state, so it still draws what it draws alone, but
such forward passes run one at a time, under a lock; batched steps refuse such runs (they
train one by one), so no run's numbers depend on its group. ``--no-multimodel``
(``multimodel = false``) trains every run alone.

The package, bottom to top: :mod:`.compatibility` (which runs can train together),
:mod:`.model_stack` (S models as one vmapped model), :mod:`.engines` (a step for S runs,
batched or in parallel threads) and :mod:`.lockstep` (the epoch loop and :func:`train_many`).
"""

from bionic_core.training.multimodel.compatibility import (
    DEFAULT_MAX_MODELS,
    MultiModelUnsupported,
    compatible_groups,
    default_batched,
    max_models,
    model_signature,
    runtime_key,
)
from bionic_core.training.multimodel.lockstep import train_many
from bionic_core.training.multimodel.model_stack import ModelStack

__all__ = [
    "DEFAULT_MAX_MODELS",
    "ModelStack",
    "MultiModelUnsupported",
    "compatible_groups",
    "default_batched",
    "max_models",
    "model_signature",
    "runtime_key",
    "train_many",
]
