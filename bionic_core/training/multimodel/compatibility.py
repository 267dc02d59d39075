"""Which runs can train together: model signatures, runtime keys and the groups they make."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from bionic_core.config import RunConfig
from bionic_core.host import Catalogue
from bionic_core.training.loop import prepare
from bionic_core.training.seeding import resolve_device

# Models per group when the config's max_models is 0: on a GPU every model in a batched step
# amortises the launch overhead further; on the CPU a few per core keep the workers busy, and
# more would only hold more models in memory at once.
DEFAULT_MAX_MODELS = {"cpu": 8, "cuda": 64}


class MultiModelUnsupported(Exception):
    """These models cannot be trained together (the engine then trains them one by one)."""


def default_batched(device: torch.device) -> bool:
    """Batched (vmapped) steps on a GPU; per-model steps in worker threads on a CPU."""
    return device.type == "cuda"


def _freeze(value: Any) -> Any:
    """A hashable, comparable stand-in for a module attribute's value."""
    if isinstance(value, torch.Tensor):
        data = value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        return ("tensor", tuple(value.shape), str(value.dtype),
                hashlib.sha256(data).hexdigest())
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_freeze(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k), _freeze(v)) for k, v in value.items())))
    if value is None or isinstance(value, (bool, int, float, str, torch.dtype, torch.device)):
        return value
    if callable(value):  # a function stored on a module: same only if the very same object
        return ("callable", id(value))
    return (type(value).__qualname__, repr(value))


def model_signature(model: nn.Module) -> tuple:
    """What must be equal for two models to run as one vmapped template: every submodule's
    type and public settings, and every parameter's and buffer's name, shape and dtype."""
    parts = []
    for name, module in model.named_modules():
        settings = tuple((k, _freeze(v)) for k, v in sorted(vars(module).items())
                         if not k.startswith("_") and k != "training")
        params = tuple((k, None if p is None else (tuple(p.shape), str(p.dtype), p.requires_grad))
                       for k, p in module._parameters.items())
        buffers = tuple((k, None if b is None else (tuple(b.shape), str(b.dtype)))
                        for k, b in module._buffers.items())
        parts.append((name, type(module).__module__, type(module).__qualname__, settings,
                      params, buffers))
    return tuple(parts)


def runtime_key(config: RunConfig) -> tuple:
    """What runs trained in one step must share besides the network's shape: the data, the
    batch size and how the step runs."""
    return (config.dataset, config.test_data, config.val_fraction, config.batch_size,
            config.device, config.cpu_threads, config.deterministic, config.precision,
            config.compile)


def max_models(config: RunConfig, device: torch.device | str) -> int:
    """The group size limit: the config's ``max_models``, or the device's default for 0."""
    kind = torch.device(device).type
    return config.max_models if config.max_models > 0 else DEFAULT_MAX_MODELS.get(kind, 8)


def _chunks(items: list[int], size: int) -> list[list[int]]:
    """Split ``items`` into chunks of at most ``size``, as even as possible."""
    if len(items) <= size:
        return [items]
    n = math.ceil(len(items) / size)
    return [items[i::n] for i in range(n)]


def group_by_key(keys: Sequence[tuple], configs: Sequence[RunConfig],
                 device: torch.device) -> list[list[int]]:
    """Indices of the runs with equal ``keys`` (a run's runtime key and model signature), each
    group split into chunks of at most :func:`max_models`; the groups in order of their first
    member, a group's chunks one after another."""
    groups: dict[tuple, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    return [chunk for members in groups.values()
            for chunk in _chunks(members, max_models(configs[members[0]], device))]


def compatible_groups(configs: Sequence[RunConfig], catalogue: Catalogue, *,
                      batched: bool | None = None) -> list[list[int]]:
    """Indices of ``configs`` in groups that can train together — same data, batch size and
    runtime and, for batched steps (:func:`default_batched` of the configs' device), networks
    of one shape — in order of first appearance, each at most :func:`max_models` long. Shapes
    are read from models built on the CPU once per configuration (seeds are assumed not to
    change a network's shape; :func:`~bionic_core.training.multimodel.train_many` checks
    again)."""
    if not configs:
        return []
    device = resolve_device(configs[0].device)
    batched = default_batched(device) if batched is None else batched
    signatures: dict[str, Any] = {}
    keys: list[tuple] = []
    for config in configs:
        signature = None
        if batched:
            cache_key = repr(sorted(config.spec_without_seed().items()))
            if cache_key not in signatures:
                cpu = torch.device("cpu")
                signatures[cache_key] = model_signature(
                    prepare(config.replace(device="cpu"), catalogue, cpu)[1])
            signature = signatures[cache_key]
        keys.append((runtime_key(config), signature))
    return sorted(group_by_key(keys, configs, device), key=lambda g: g[0])
