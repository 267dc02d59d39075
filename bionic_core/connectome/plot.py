"""Pictures of a connectome: the hidden-unit adjacency with its layer and cell-type blocks, and
the density of every cell-type block."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bionic_core.connectome.connectome import Connectome
from bionic_core.connectome.masks import assemble, slots

Masks = tuple[list[np.ndarray], list[np.ndarray]]


def source_label(connectome: Connectome) -> str:
    """A short description of where the masks came from, for titles and tables."""
    prov = connectome.provenance
    cells = (
        "MICrONS v1300 column" if prov["cells"].get("version") else Path(prov["cells"]["file"]).name
    )
    if prov["mode"] == "edges":
        return f"{cells}, edges {Path(prov['edges']['file']).name}, >= {prov['min_synapses']} syn"
    table = prov["table"]
    name = table["name"]
    if "materialization" in table:
        name += f" v{table['materialization']} ({table['conversion']})"
    distance = ", lateral distance" if prov["distance"]["on"] else ""
    return f"{cells}, sampled from {name}{distance}, seed {prov['seed']}"


def _type_bounds(connectome: Connectome) -> tuple[list[int], list[str], list[float]]:
    """Unit index where each type block starts (plan order), its label, its centre."""
    starts, labels, centres, offset = [], [], [], 0
    for layer in connectome.layers:
        for cell_type, n in layer.type_counts().items():
            starts.append(offset)
            labels.append(f"{cell_type} ({n})")
            centres.append(offset + n / 2)
            offset += n
    return starts, labels, centres


def type_density_matrix(connectome: Connectome, masks: Masks | None = None
                        ) -> tuple[np.ndarray, list[str]]:
    """Density of every (post type, pre type) block of the adjacency, NaN where no block exists
    (types in plan order)."""
    full = _adjacency(connectome, masks)
    present = _adjacency_slots(connectome)
    starts, labels, _ = _type_bounds(connectome)
    bounds = [*starts, full.shape[0]]
    n = len(labels)
    density = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(n):
            rows, cols = slice(bounds[i], bounds[i + 1]), slice(bounds[j], bounds[j + 1])
            possible = present[rows, cols].sum()
            if possible:
                density[i, j] = full[rows, cols].sum() / possible
    return density, [label.split(" ")[0] for label in labels]


def _adjacency(connectome: Connectome, masks: Masks | None) -> np.ndarray:
    ff, intra = masks or connectome.masks
    return assemble(connectome.layer_sizes, ff, intra)


def _adjacency_slots(connectome: Connectome) -> np.ndarray:
    ff, intra = connectome.masks
    return assemble(connectome.layer_sizes, [slots(m.shape, False) for m in ff],
                    [slots(m.shape, True) for m in intra])


def plot_adjacency(connectome: Connectome, path: str | Path, masks: Masks | None = None,
                   title: str | None = None) -> Path:
    """Write a PNG: left, all plan units (post rows x pre columns; intra blocks on the diagonal,
    feedforward blocks k -> k+1 just below it) with layer (red) and cell-type (grey) bounds;
    right, the density of every cell-type block."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    full = _adjacency(connectome, masks)
    layer_bounds = np.cumsum(connectome.layer_sizes)[:-1]
    starts, labels, centres = _type_bounds(connectome)
    density, types = type_density_matrix(connectome, masks)

    fig, (left, right) = plt.subplots(1, 2, figsize=(16, 8), dpi=110,
                                      gridspec_kw={"width_ratios": [1, 1]})
    left.imshow(full, cmap="Greys", vmin=0, vmax=1, interpolation="antialiased")
    for b in starts[1:]:
        if b not in layer_bounds:
            left.axhline(b - 0.5, color="tab:grey", linewidth=0.5, linestyle="--")
            left.axvline(b - 0.5, color="tab:grey", linewidth=0.5, linestyle="--")
    for b in layer_bounds:
        left.axhline(b - 0.5, color="tab:red", linewidth=0.8)
        left.axvline(b - 0.5, color="tab:red", linewidth=0.8)
    left.set_xticks(centres, labels, rotation=90, fontsize=7)
    left.set_yticks(centres, labels, fontsize=7)
    left.set_xlabel("presynaptic unit (layer, type, depth)")
    left.set_ylabel("postsynaptic unit")
    left.set_title("Hidden-unit adjacency", fontsize=10)

    shown = np.ma.masked_invalid(density)
    image = right.imshow(shown, cmap="viridis", vmin=0, vmax=max(np.nanmax(density), 1e-6))
    for i in range(len(types)):
        for j in range(len(types)):
            if np.isfinite(density[i, j]):
                value = density[i, j]
                right.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=6,
                           color="white" if value < 0.6 * np.nanmax(density) else "black")
    right.set_xticks(range(len(types)), types, rotation=90, fontsize=8)
    right.set_yticks(range(len(types)), types, fontsize=8)
    right.set_xlabel("presynaptic type")
    right.set_ylabel("postsynaptic type")
    right.set_title("Density of each cell-type block (blank: no block)", fontsize=10)
    fig.colorbar(image, ax=right, fraction=0.046, pad=0.04, label="connection density")
    fig.suptitle(title or f"Hidden-unit wiring: {source_label(connectome)}", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
