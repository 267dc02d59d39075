"""The connectome applied to one run: its source (the config's ``connectome`` table), the census
layer plan, and masks and inhibitory input for whatever hidden layers the run actually has.

The structural features share one connectome per run through these functions, so that the layer
plan, the masks and the inhibitory input always come from the same cells, edges and seed.
When the hidden units *are* the census cells (the ``laminar`` plan at scale 1) each unit has its
cell's type, position and inhibitory input, and the masks are the connectome's own: measured
cell to cell with an edge table, otherwise sampled per cell pair from type-level probabilities.
For any other layer sizes the connectome's connection counts are carried over instead (masks
with its count per block, inhibitory input resampled from its layers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bionic_core.config import source_arguments
from bionic_core.connectome import controls
from bionic_core.connectome.connectome import Connectome, build_connectome
from bionic_core.connectome.masks import block_density
from bionic_core.connectome.plot import source_label
from bionic_core.connectome.provenance import density_record
from bionic_core.contract.context import StashKey
from bionic_core.contract.errors import BionicError
from bionic_core.contract.layers import HiddenLayer, LayerPlan

if TYPE_CHECKING:
    from bionic_core.contract.context import RunContext

UNIT_IDS = "root_ids"  # HiddenLayer.extra key: the census cell behind each unit
_CONNECTOME: StashKey[Connectome] = StashKey()
SHARED_INITIALISATION = (
    "every wiring but dense_matched builds the same layer shapes, so the dense kaiming draw is "
    "the same for a given run seed; a layer's initial weight is that draw * mask / "
    "sqrt(mask density), equal across the column and a control wherever both masks are 1 "
    "(exactly where the block's connection count is the same - every control but uniform)"
)


def run_connectome(ctx: RunContext) -> Connectome:
    """The run's connectome, built once per run (and cached across runs by build_connectome);
    its provenance is recorded in ``ctx.provenance["connectome"]``."""
    connectome = ctx.stash.get(_CONNECTOME)
    if connectome is None:
        arguments = source_arguments(ctx.config.connectome)
        arguments.pop("null_seed")
        connectome = build_connectome(**arguments)
        ctx.stash[_CONNECTOME] = connectome
        ctx.provenance["connectome"] = connectome.provenance
    return connectome


def run_null_seed(ctx: RunContext) -> int:
    """The seed of the run's control masks (the config's ``connectome.null_seed``)."""
    return int(source_arguments(ctx.config.connectome)["null_seed"])


def census_plan(connectome: Connectome, scale: float = 1.0) -> LayerPlan:
    """Hidden layers in the column's feedforward order with the census sizes.

    At ``scale`` 1 every unit is one excitatory cell (its type, E/I label and root id attached);
    otherwise each layer has ``round(scale * size)`` units that keep the laminar proportions but
    stand for no particular cell.
    """
    if scale <= 0:
        raise BionicError(f"laminar.scale: {scale} must be > 0")
    layers = []
    for layer in connectome.layers:
        if scale == 1.0:
            layers.append(HiddenLayer(name=layer.name, size=layer.size,
                                      cell_types=layer.cell_types, ei=layer.ei,
                                      extra={UNIT_IDS: layer.root_ids}))
        else:
            layers.append(HiddenLayer(name=layer.name, size=max(1, round(scale * layer.size))))
    per_unit = "one unit per excitatory cell" if scale == 1.0 else f"{scale:g} units per cell"
    return LayerPlan(layers=layers, source=f"census ({per_unit}): {source_label(connectome)}")


def _units_are_cells(layer: HiddenLayer, index: int, connectome: Connectome) -> bool:
    ids = layer.extra.get(UNIT_IDS)
    return (ids is not None and index < len(connectome.layers)
            and np.array_equal(ids, connectome.layers[index].root_ids))


def plan_masks(
    plan: LayerPlan,
    connectome: Connectome,
    *,
    wiring: str = "column",
    null_seed: int = 0,
    in_features: int | None = None,
    intra_on: bool = False,
) -> tuple[list[HiddenLayer], dict[str, Any]]:
    """The plan's layers with masks for ``wiring`` (see controls.WIRINGS), and a provenance
    record of the masks actually used.

    Layer 0's input comes from the front end, not from the connectome, so it stays dense; layer
    k > 0 takes the feedforward block k-1 -> k, and every layer its intra-layer block. When the
    units are the census cells the column masks are the connectome's own; otherwise they carry
    its connection count per block. A control starts from those masks, drawn with ``null_seed``.
    ``dense_matched`` needs the front end's output width (``in_features``) and whether the
    intra-layer term is on, to count the free weights it must match.
    """
    controls.check_wiring(wiring)
    cells = all(_units_are_cells(layer, k, connectome) for k, layer in enumerate(plan.layers))
    if cells:
        base = connectome.masks
        how = "census cells: " + connectome.provenance["masks"]
    else:
        base = connectome.masks_for_sizes(plan.sizes, connectome.provenance["seed"])
        how = (f"layer sizes {plan.sizes} are not the census cells: each block gets the "
               "column's connection count, placed uniformly")
    record: dict[str, Any] = {"wiring": wiring, "about": controls.WIRINGS[wiring],
                              "input_projection": "dense (front end -> first hidden layer)"}
    if wiring != "column":
        record["null_seed"] = null_seed
    if wiring == "dense_matched":
        if in_features is None:
            raise BionicError("adjacency_mask.wiring 'dense_matched': the front end's output "
                              "width is unknown")
        widths = controls.matched_dense_widths(plan.sizes, in_features, base, intra_on)
        layers = [HiddenLayer(name=layer.name, size=w) for layer, w in zip(plan.layers, widths,
                                                                            strict=True)]
        record.update(masks=f"dense, widths {widths} (matched to {how})", widths=widths,
                      initialisation="other layer shapes: the same init rule and seed, other "
                                     "values")
        return layers, record
    ff, intra = controls.apply_wiring(connectome, base, wiring, null_seed, cells=cells)
    layers = [layer.with_masks(None if k == 0 else ff[k - 1], intra[k])
              for k, layer in enumerate(plan.layers)]
    names = [layer.name for layer in plan.layers]
    record.update(masks=how if wiring == "column" else f"{wiring} control of {how}",
                  initialisation=SHARED_INITIALISATION,
                  connections={"feedforward": int(sum(m.sum() for m in ff)),
                               "intra": int(sum(m.sum() for m in intra))},
                  densities=density_record(names, [block_density(m, intra=False) for m in ff],
                                           [block_density(m, intra=True) for m in intra]))
    return layers, record


def layer_inhibitory_input(layer: HiddenLayer, index: int, connectome: Connectome) -> np.ndarray:
    """Normalised inhibitory input (in [0, 1]) of each unit of one hidden layer.

    Census-cell units get their own value; units of any other plan get values drawn with
    replacement from the census layer at the same depth (the last one for deeper layers), with a
    seed fixed by the connectome seed and the layer index.
    """
    census = connectome.inhibitory_input_by_layer()
    if _units_are_cells(layer, index, connectome):
        return np.array(census[index], dtype=np.float32)
    source = census[min(index, len(census) - 1)]
    rng = np.random.default_rng([connectome.provenance["seed"], index])
    return rng.choice(source, size=layer.size, replace=True).astype(np.float32)
