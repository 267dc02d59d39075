"""Built-in demonstration dataset: procedurally drawn 48x48 "faces" in FER-2013's 7 classes.

This is NOT FER-2013. It exists so that the first command works on a fresh machine with no
download. Each image is rendered from implicit shapes (signed distances) on a coordinate grid
that is moved by a random per-image pose; the class only changes eyes, eyebrows and mouth, and
every class feature is jittered per image so that neighbouring classes overlap. Lighting
gradients, contrast, noise and occluding patches make a plain MLP fall well short of 100 %,
while a conv front end and flip/affine augmentation help.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# Per-class mean feature parameters, in FER-2013 label order
# (0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral).
#   eye_open   : eye half-height multiplier (wide for Surprise / Fear)
#   brow_h     : eyebrow raise in px (negative = lowered)
#   brow_tilt  : inner-end raise in px (negative = lowered inward, as in Angry)
#   curve      : mouth corner raise in px (positive = smile, negative = frown)
#   mouth_w    : mouth half-width in px
#   open_h     : mouth opening half-height in px (0 = closed line)
#   asym       : one mouth corner raised (px), side chosen at random (Disgust)
#   wrinkle    : strength of nose wrinkles (Disgust)
_CLASS_PARAMS = np.array(
    [
        # eye_open brow_h brow_tilt curve mouth_w open_h asym wrinkle
        [0.80, -2.0, -2.0, -1.4, 6.0, 0.0, 0.0, 0.0],  # Angry
        [0.60, -0.8, -0.8, -0.6, 6.0, 0.0, 2.6, 1.0],  # Disgust
        [1.50, 2.0, 1.4, -0.8, 8.0, 2.6, 0.0, 0.0],  # Fear
        [0.70, 0.0, 0.0, 3.0, 8.5, 0.8, 0.0, 0.0],  # Happy
        [0.85, 0.4, 2.0, -2.2, 6.0, 0.0, 0.0, 0.0],  # Sad
        [1.65, 3.0, 0.0, 0.0, 3.5, 4.0, 0.0, 0.0],  # Surprise
        [1.00, 0.0, 0.0, 0.0, 6.5, 0.0, 0.0, 0.0],  # Neutral
    ],
    dtype=np.float32,
)
# Per-image jitter (standard deviation) of each class feature: this is what makes classes overlap.
_JITTER = np.array([0.15, 0.6, 0.6, 0.6, 0.8, 0.5, 0.6, 0.25], dtype=np.float32)

DEMO_SIZES = {
    "demo": {"train": 6000, "val": 1000, "test": 1000},
    "demo-small": {"train": 700, "val": 150, "test": 150},
}
DEMO_DESCRIPTIONS = {
    "demo": "demonstration set: synthetic 48x48 faces, 7 expressions (NOT FER-2013), "
    "6000/1000/1000",
    "demo-small": "tiny demonstration set for tests: synthetic 48x48 faces, 7 expressions "
    "(NOT FER-2013), 700/150/150",
}

_SIZE = 48
_CHUNK = 1000  # images rendered at once (bounds memory; each chunk is fully vectorised)


def _fill(sdf: np.ndarray, soft: float | np.ndarray = 0.7) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of the region where ``sdf < 0``."""
    return np.clip(0.5 - sdf / soft, 0.0, 1.0)


def _ellipse(u, v, cu, cv, ru, rv):
    """Approximate signed distance (px) to an axis-aligned ellipse; all args broadcastable."""
    k = np.sqrt(((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2)
    return (k - 1.0) * np.minimum(ru, rv)


def _segment(u, v, au, av, bu, bv):
    """Distance (px) to the segment a-b; all args broadcastable."""
    pu, pv = u - au, v - av
    du, dv = bu - au, bv - av
    t = np.clip((pu * du + pv * dv) / (du * du + dv * dv + 1e-6), 0.0, 1.0)
    return np.sqrt((pu - t * du) ** 2 + (pv - t * dv) ** 2)


def _col(x: np.ndarray) -> np.ndarray:
    """(N,) -> (N, 1, 1) for broadcasting against the (N, 48, 48) grid."""
    return x.astype(np.float32)[:, None, None]


def _render(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Render one image per label; returns uint8 (N, 48, 48). Vectorised over the batch."""
    n = labels.shape[0]
    f32 = np.float32
    # --- pose: canonical face coords (u right, v down, px) for every output pixel
    ang = rng.uniform(-15, 15, n).astype(f32) * f32(np.pi / 180)
    scale = rng.uniform(0.85, 1.15, n).astype(f32)
    tx, ty = rng.uniform(-4, 4, (2, n)).astype(f32)
    ys, xs = np.mgrid[0:_SIZE, 0:_SIZE].astype(f32)
    x = xs[None] - f32(_SIZE / 2 - 0.5) - _col(tx)
    y = ys[None] - f32(_SIZE / 2 - 0.5) - _col(ty)
    c, s = _col(np.cos(ang)), _col(np.sin(ang))
    u = (c * x + s * y) / _col(scale)
    v = (-s * x + c * y) / _col(scale)

    # --- class features with per-image jitter
    p = _CLASS_PARAMS[labels] + rng.standard_normal((n, 8)).astype(f32) * _JITTER
    eye_open, brow_h, brow_tilt, curve, mouth_w, open_h, asym, wrinkle = (p[:, i] for i in range(8))
    eye_open = np.clip(eye_open, 0.25, 2.2)
    mouth_w = np.clip(mouth_w, 2.5, 10.0)
    open_h = np.clip(open_h, 0.0, 5.0)
    asym = asym * rng.choice(np.array([-1.0, 1.0], dtype=f32), n)
    wrinkle = np.clip(wrinkle, 0.0, 1.0)

    # --- identity (not class related): head shape, feature placement, tones
    head_a = rng.uniform(14.5, 18.0, n).astype(f32)
    head_b = rng.uniform(18.5, 22.0, n).astype(f32)
    eye_dx = rng.uniform(6.0, 8.0, n).astype(f32)
    eye_y = rng.uniform(-6.5, -3.5, n).astype(f32)
    mouth_y = rng.uniform(8.0, 11.0, n).astype(f32)
    skin = rng.uniform(90, 235, n).astype(f32)
    bg = np.clip(
        skin
        + rng.choice(np.array([-1.0, 1.0], dtype=f32), n) * rng.uniform(30, 100, n).astype(f32),
        0,
        255,
    )
    dark = skin * rng.uniform(0.15, 0.5, n).astype(f32)

    img = np.broadcast_to(_col(bg), (n, _SIZE, _SIZE)).copy()
    head = _fill(_ellipse(u, v, 0, 0, _col(head_a), _col(head_b)), 1.0)
    img += head * (_col(skin) - img)
    # hair cap: a random-height band at the top of the head, same tone as the background-ish
    hair_v = _col(-head_b + rng.uniform(3, 9, n).astype(f32))
    hair = head * _fill(v - hair_v, 1.0) * _col(rng.random(n) < 0.6)
    img += hair * (_col(np.clip(skin - rng.uniform(30, 90, n), 0, 255)) - img)

    def ink(mask):
        nonlocal img
        img += mask * (_col(dark) - img)

    ey, edx = _col(eye_y), _col(eye_dx)
    eye_rv = _col(1.9 * eye_open)
    for side in (-1.0, 1.0):
        ink(_fill(_ellipse(u, v, side * edx, ey, f32(3.3), eye_rv)))
        # eyebrow: inner end near the nose, outer end away from it
        base = ey - f32(4.5) - _col(brow_h) - eye_rv * f32(0.6)
        inner_v = base - _col(brow_tilt)
        outer_v = base + _col(brow_tilt) * f32(0.4)
        d = _segment(u, v, side * (edx - 4.5), inner_v, side * (edx + 4.0), outer_v)
        ink(_fill(d - f32(1.1)))

    # nose: two nostrils; Disgust adds wrinkle lines on the bridge
    my = _col(mouth_y)
    for side in (-1.0, 1.0):
        ink(0.7 * _fill(_ellipse(u, v, side * 1.6, my - 5.0, f32(1.0), f32(0.7))))
        w = _segment(u, v, side * 0.8, ey + 2.0, side * 3.2, ey + 3.0)
        ink(_col(wrinkle) * 0.8 * _fill(w - f32(0.5)))

    # mouth: a curved line v = my - curve*(u/w)^2 - asym*(u/w), plus an optional open ellipse
    mw = _col(mouth_w)
    t = np.clip(u / mw, -1.0, 1.0)
    curve_v = my - _col(curve) * t * t - _col(asym) * t * 0.5 * (1 + t)
    d_line = np.sqrt((v - curve_v) ** 2 + (np.maximum(np.abs(u) - mw, 0.0)) ** 2)
    ink(_fill(d_line - f32(0.9)))
    oh = _col(open_h)
    ink((oh > 0.3) * _fill(_ellipse(u, v, 0, my, mw * 0.85, np.maximum(oh, 0.3))))

    # --- photometric nuisance: lighting gradient, contrast, occlusion, noise
    g_ang = rng.uniform(0, 2 * np.pi, n).astype(f32)
    g_amp = rng.uniform(0, 2.2, n).astype(f32)
    img += _col(g_amp) * (
        _col(np.cos(g_ang)) * xs[None]
        + _col(np.sin(g_ang)) * ys[None]
        - f32(_SIZE / 2) * (_col(np.cos(g_ang)) + _col(np.sin(g_ang)))
    )
    mean = img.mean(axis=(1, 2), keepdims=True)
    img = (img - mean) * _col(rng.uniform(0.7, 1.3, n)) + mean
    n_occ = 2
    for _ in range(n_occ):
        on = rng.random(n) < 0.25
        w_ = rng.uniform(6, 18, n)
        h_ = rng.uniform(6, 18, n)
        x0 = rng.uniform(-4, _SIZE - 4, n)
        y0 = rng.uniform(-4, _SIZE - 4, n)
        box = (
            (xs[None] >= _col(x0))
            & (xs[None] < _col(x0 + w_))
            & (ys[None] >= _col(y0))
            & (ys[None] < _col(y0 + h_))
            & _col(on).astype(bool)
        )
        img = np.where(box, _col(rng.uniform(0, 255, n)), img)
    img += rng.standard_normal(img.shape, dtype=f32) * _col(rng.uniform(3, 15, n))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def generate(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` demo images with balanced labels; deterministic in ``(n, seed)``.

    Chunks render on a few threads (numpy releases the GIL in the big array operations); each
    chunk has its own spawned random stream, so the result does not depend on the scheduling.
    """
    seq = np.random.SeedSequence(seed)
    label_seq, *chunk_seqs = seq.spawn(1 + -(-n // _CHUNK))
    labels = np.random.default_rng(label_seq).permutation(np.arange(n) % 7).astype(np.int64)
    images = np.empty((n, _SIZE, _SIZE), dtype=np.uint8)

    def work(k: int) -> None:
        start, stop = k * _CHUNK, min((k + 1) * _CHUNK, n)
        images[start:stop] = _render(labels[start:stop], np.random.default_rng(chunk_seqs[k]))

    workers = max(1, min(len(chunk_seqs), os.cpu_count() or 1, 4))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(work, range(len(chunk_seqs))))
    return images, labels


@functools.lru_cache(maxsize=4)
def demo_arrays(name: str = "demo") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The splits of a built-in demo set as ``{split: (images, labels)}`` (cached in-process).

    The content is fixed (its own seeds per split), independent of any training seed, so its
    fingerprint never changes. Arrays are read-only because the cache shares them.
    """
    sizes = DEMO_SIZES[name]
    out = {}
    for i, (split, n) in enumerate(sizes.items()):
        images, labels = generate(n, seed=20130 + 7919 * i)
        images.setflags(write=False)
        labels.setflags(write=False)
        out[split] = (images, labels)
    return out
