"""augmentation + bionic_core.training.augment: per-image randomness, seeding, each operation's
effect."""

from __future__ import annotations

import math

import pytest
import torch

from bionic_core.contract.errors import BionicError
from bionic_core.training.augment import (
    ERASE_VALUE,
    BatchAugmenter,
    apply_affine,
    random_affine_matrices,
)
from bionic_core.training.loop import prepare, train_run

from .conftest import tiny_config

DEFAULTS = BatchAugmenter(flip=0.5, degrees=10, translate=0.1, scale=0.1, brightness=0.2,
                          contrast=0.2, erase=0.25)


def _gen(seed: int = 0) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def _batch(n: int = 16) -> torch.Tensor:
    """``n`` copies of one asymmetric image (a bright off-centre square on a gradient)."""
    img = torch.linspace(0, 0.5, 48).repeat(48, 1)
    img[10:20, 5:18] = 1.0
    return img.expand(n, 1, 48, 48).clone()


def test_images_of_one_batch_get_different_transforms():
    out = DEFAULTS(_batch(), _gen())
    distinct = {tuple(o.flatten()[::37].tolist()) for o in out}
    assert len(distinct) == out.shape[0]  # every copy of the same image came out different
    for op in ("flip", "degrees", "translate", "scale", "brightness", "contrast", "erase"):
        strength = {"flip": 0.5, "erase": 0.5, "degrees": 15.0}.get(op, 0.15)
        single = BatchAugmenter(**{"flip": 0.0, op: strength})(_batch(), _gen(1))
        assert not all(torch.equal(single[0], s) for s in single[1:]), op


def test_same_seed_same_output_and_next_batch_differs():
    x = _batch()
    assert torch.equal(DEFAULTS(x, _gen(5)), DEFAULTS(x, _gen(5)))
    g = _gen(5)
    first, second = DEFAULTS(x, g), DEFAULTS(x, g)
    assert not torch.equal(first, second)
    assert not torch.equal(DEFAULTS(x, _gen(6)), first)


def test_output_shape_range_and_identity_when_all_off():
    x = torch.rand(8, 1, 48, 48)
    out = DEFAULTS(x, _gen())
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(BatchAugmenter(flip=0.0)(x, _gen()), x)


def test_flip_with_probability_one_is_an_exact_mirror():
    x = torch.rand(4, 1, 48, 48)
    out = BatchAugmenter(flip=1.0)(x, _gen())
    assert torch.allclose(out, torch.flip(x, dims=[3]), atol=1e-5)


def test_affine_matrices_follow_their_parameters():
    theta = random_affine_matrices(1000, _gen(), torch.device("cpu"), flip=0.5, degrees=10,
                                   translate=0.1, scale=0.1)
    lin = theta[:, :, :2]
    det = torch.linalg.det(lin)
    assert 0.3 < (det < 0).float().mean() < 0.7  # about half the images are mirrored
    zoom = 1 / det.abs().sqrt()
    assert zoom.min() >= 0.9 - 1e-5 and zoom.max() <= 1.1 + 1e-5
    angle = torch.atan2(lin[:, 1, 0], lin[:, 1, 1]).abs()
    assert angle.max() <= math.radians(10) + 1e-5
    assert theta[:, :, 2].abs().max() <= 0.2 + 1e-6  # 0.1 of the image = 0.2 normalised


def test_translation_moves_content_by_the_drawn_shift():
    x = torch.zeros(1, 1, 48, 48)
    x[0, 0, 20:28, 20:28] = 1.0
    theta = torch.tensor([[[1.0, 0.0, -0.25], [0.0, 1.0, 0.0]]])  # sample 6 px to the left
    out = apply_affine(x, theta)
    cols = (out[0, 0].sum(0) > 4).nonzero().flatten()
    assert cols.min() == 26 and cols.max() == 33  # the square moved 6 px to the right


def test_erasing_sets_one_grey_rectangle_of_bounded_area():
    x = torch.zeros(64, 1, 48, 48)
    out = BatchAugmenter(flip=0.0, erase=1.0, erase_area=(0.02, 0.2))(x, _gen())
    erased = (out == ERASE_VALUE).float().mean(dim=(1, 2, 3))
    assert (erased > 0).all()
    assert erased.min() >= 0.01 and erased.max() <= 0.25  # rounding to whole pixels
    assert len(set(erased.tolist())) > 10  # per-image sizes
    box = (out[0, 0] == ERASE_VALUE).nonzero()
    h = box[:, 0].max() - box[:, 0].min() + 1
    w = box[:, 1].max() - box[:, 1].min() + 1
    assert len(box) == h * w  # a filled rectangle


def test_brightness_and_contrast_change_mean_and_spread_per_image():
    x = torch.rand(256, 1, 48, 48) * 0.5 + 0.25
    bright = BatchAugmenter(flip=0.0, brightness=0.3)(x, _gen())
    ratio = bright.mean(dim=(1, 2, 3)) / x.mean(dim=(1, 2, 3))
    assert ratio.min() >= 0.7 - 1e-4 and ratio.max() <= 1.3 + 1e-4 and ratio.std() > 0.1
    contrast = BatchAugmenter(flip=0.0, contrast=0.3)(x, _gen())
    spread = contrast.std(dim=(1, 2, 3)) / x.std(dim=(1, 2, 3))
    assert spread.min() >= 0.7 - 1e-3 and spread.max() <= 1.3 + 1e-3 and spread.std() > 0.1
    assert torch.allclose(contrast.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-5)


def test_plugin_contributes_the_transform_with_its_parameters(catalogue):
    ctx, _, _ = prepare(tiny_config(features=("augmentation",),
                                    params={"augmentation": {"degrees": 5.0, "erase": 0.0}}),
                        catalogue)
    [(name, transform)] = ctx.host.call("bionic_batch_transform", ctx=ctx)
    assert name == "augmentation" and isinstance(transform, BatchAugmenter)
    assert transform.degrees == 5.0 and transform.erase == 0.0 and transform.flip == 0.5
    plain, _, _ = prepare(tiny_config(), catalogue)
    assert plain.host.call("bionic_batch_transform", ctx=plain) == []
    bad, _, _ = prepare(tiny_config(features=("augmentation",),
                                    params={"augmentation": {"flip": 1.5}}), catalogue)
    with pytest.raises(BionicError, match="params.augmentation.flip"):
        bad.host.call("bionic_batch_transform", ctx=bad)


def test_training_with_augmentation_differs_from_plain_and_is_reproducible(catalogue):
    config = tiny_config(epochs=1, features=("augmentation",))
    a, b = train_run(config, catalogue), train_run(config, catalogue)
    plain = train_run(tiny_config(epochs=1), catalogue)
    assert a.history[0]["train_loss"] == b.history[0]["train_loss"]
    assert a.history[0]["train_loss"] != plain.history[0]["train_loss"]

