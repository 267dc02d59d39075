"""Laminar layer plan: hidden layers L4 -> L2/3 -> L5 -> L6, one unit per excitatory neuron."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bionic_core.connectome.pair_probability import Cells
from bionic_core.connectome.tables import CellKey
from bionic_core.contract.errors import BionicError

# The feedforward path through the column, and the pyramidal types that make each layer's units.
DEFAULT_GROUPING: dict[str, tuple[str, ...]] = {
    "L4": ("4P",),
    "L2/3": ("23P",),
    "L5": ("5P-IT", "5P-PT", "5P-NP"),
    "L6": ("6P-IT", "6P-CT", "6P-U"),
}


@dataclass(frozen=True)
class PlanLayer:
    """One hidden layer: its units are the excitatory neurons of the grouped cell types."""

    name: str
    size: int
    cell_types: tuple[str, ...]  # per unit
    ei: tuple[str, ...]  # per unit ("E" for every unit of a plan)
    root_ids: np.ndarray  # per unit, int64
    cortical_layers: tuple[str, ...]  # per unit: the cell's `layer` (used to look up tables)
    positions: np.ndarray | None = None  # per unit: lateral soma position (um), shape (size, 2)

    def type_counts(self) -> dict[str, int]:
        return dict(Counter(self.cell_types))

    def cells(self) -> Cells:
        """The units as a connection table sees them."""
        keys = tuple(CellKey(t, e, c) for t, e, c in
                     zip(self.cell_types, self.ei, self.cortical_layers, strict=True))
        return Cells(keys, self.positions)


def normalise_grouping(
    grouping: Mapping[str, Sequence[str]] | None,
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """A hashable, ordered form of a grouping (layer name -> cell types)."""
    grouping = DEFAULT_GROUPING if grouping is None else grouping
    items = tuple((str(name), tuple(str(t) for t in types)) for name, types in grouping.items())
    if not items:
        raise BionicError("grouping: no layers given")
    seen: dict[str, str] = {}
    for name, types in items:
        if isinstance(grouping[name], str) or not types:
            raise BionicError(f"grouping: layer {name!r} needs a list of cell types")
        for cell_type in types:
            if cell_type in seen:
                raise BionicError(
                    f"grouping: cell type {cell_type!r} is in both {seen[cell_type]!r} and {name!r}"
                )
            seen[cell_type] = name
    return items


def build_layer_plan(
    cells: pd.DataFrame,
    grouping: tuple[tuple[str, tuple[str, ...]], ...],
    cells_name: str,
    positions: np.ndarray | None = None,
) -> list[PlanLayer]:
    """Select the excitatory cells of each layer's types; inhibitory cells never become units.

    ``positions``: lateral soma positions aligned with the rows of ``cells`` (or None).
    """
    layers = []
    excitatory = cells[cells["ei"] == "E"]
    for name, types in grouping:
        chosen = excitatory[excitatory["cell_type"].isin(types)]
        # Units follow the grouping's type order; within a type, the cell order (depth, root id).
        rank = chosen["cell_type"].map({t: i for i, t in enumerate(types)})
        chosen = chosen.loc[rank.sort_values(kind="stable").index]
        rows = cells.index.get_indexer(chosen.index)
        if chosen.empty:
            raise BionicError(
                f"{cells_name}: layer {name!r} is empty: no excitatory cells of type "
                f"{', '.join(types)}"
            )
        layers.append(
            PlanLayer(
                name=name,
                size=len(chosen),
                cell_types=tuple(chosen["cell_type"]),
                ei=tuple(chosen["ei"]),
                root_ids=chosen["root_id"].to_numpy(np.int64),
                cortical_layers=tuple(chosen["layer"]),
                positions=None if positions is None else positions[rows],
            )
        )
    return layers
