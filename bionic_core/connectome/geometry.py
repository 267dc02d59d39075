"""Column geometry: lateral soma positions and a Gaussian lateral-distance connection profile.

Positions: the nucleus centroid (``soma_x_nm, soma_y_nm, soma_z_nm``, minnie65 coordinates),
rotated 5 degrees about z as in the minnie65 standard transform v1.4 (whose rotated y is the
depth below pia), so that the lateral plane is (rotated x, z), in micrometres.

Profile: ``f(d) = exp(-d^2 / (2 sigma^2))`` of the lateral distance d, with the widths of the
Allen biorealistic V1 model (``base_props/sigma.csv``, BSD-3-Clause). It only redistributes
connections: each cell-type (or table-class) block of probabilities is divided by its mean
profile, so the block keeps its measured density and nearby pairs get more of it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

POSITION_COLUMNS = ("soma_x_nm", "soma_y_nm", "soma_z_nm")
ROTATION_DEG = 5.0
# Lateral width (um) by (pre, post) E/I class: AllenInstitute/biorealistic-v1-model sigma.csv.
LATERAL_SIGMA_UM = {("E", "E"): 127.0, ("E", "I"): 99.84, ("I", "E"): 96.6, ("I", "I"): 126.77}
SIGMA_SOURCE = ("Gaussian lateral profile, sigma E->E 127.0, E->I 99.84, I->E 96.6, "
                "I->I 126.77 um (AllenInstitute/biorealistic-v1-model base_props/sigma.csv)")


def lateral_positions(cells: pd.DataFrame) -> np.ndarray | None:
    """(n, 2) lateral soma coordinates in um, or None when the table has no soma positions."""
    if not set(POSITION_COLUMNS) <= set(cells.columns):
        return None
    xyz = cells[list(POSITION_COLUMNS)].to_numpy(np.float64) / 1000.0
    if not np.isfinite(xyz).all():
        return None
    theta = np.deg2rad(ROTATION_DEG)
    lateral_x = xyz[:, 0] * np.cos(theta) - xyz[:, 1] * np.sin(theta)
    return np.column_stack([lateral_x, xyz[:, 2]])


def lateral_profile(post_xy: np.ndarray, pre_xy: np.ndarray, sigma_um: float) -> np.ndarray:
    """``f(d)`` for every (post, pre) pair, shape (n_post, n_pre)."""
    d2 = ((post_xy[:, None, :] - pre_xy[None, :, :]) ** 2).sum(axis=-1)
    return np.exp(-d2 / (2.0 * sigma_um**2))


def sigma_for(pre_ei: str, post_ei: str) -> float:
    return LATERAL_SIGMA_UM[(pre_ei, post_ei)]
