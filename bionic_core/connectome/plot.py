"""Heatmap of the hidden-unit adjacency of a connectome, layer blocks outlined and labelled."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bionic_core.connectome.connectome import Connectome


def source_label(connectome: Connectome) -> str:
    """A short description of where the masks came from, for titles and tables."""
    prov = connectome.provenance
    cells = (
        "MICrONS v1300 column" if prov["cells"].get("version") else Path(prov["cells"]["file"]).name
    )
    if prov["mode"] == "edges":
        return f"{cells}, edges {Path(prov['edges']['file']).name}, >= {prov['min_synapses']} syn"
    return f"{cells}, sampled from {prov['table']['name']}, seed {prov['seed']}"


def plot_adjacency(connectome: Connectome, path: str | Path) -> Path:
    """Write a PNG of all plan units (post rows x pre columns): intra blocks on the diagonal,
    feedforward blocks k -> k+1 just below it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    full = connectome.adjacency()
    bounds = np.concatenate([[0], np.cumsum(connectome.layer_sizes)])
    centres = (bounds[:-1] + bounds[1:]) / 2
    names = [f"{layer.name}\n({layer.size})" for layer in connectome.layers]

    fig, ax = plt.subplots(figsize=(8, 8), dpi=150)
    ax.imshow(full, cmap="Greys", vmin=0, vmax=1, interpolation="antialiased")
    for b in bounds[1:-1]:
        ax.axhline(b - 0.5, color="tab:red", linewidth=0.8)
        ax.axvline(b - 0.5, color="tab:red", linewidth=0.8)
    ax.set_xticks(centres, names)
    ax.set_yticks(centres, names)
    ax.set_xlabel("presynaptic unit (ordered by layer, type, depth)")
    ax.set_ylabel("postsynaptic unit")
    ax.set_title(f"Hidden-unit adjacency\n{source_label(connectome)}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
