"""Test-time augmentation views: where each shifted view moves an image's pixels, how many views
there are, and that the plain views are the model's own logits."""

from __future__ import annotations

import pytest
import torch

from bionic_core.training.inference_views import MAX_SHIFT, PLAIN, InferenceViews


def _dot(row: int, col: int) -> torch.Tensor:
    image = torch.zeros(1, 1, 9, 9)
    image[0, 0, row, col] = 1.0
    return image


def _where(view: torch.Tensor) -> tuple[int, int]:
    [[row, col]] = (view[0, 0] == 1.0).nonzero().tolist()
    return row, col


def test_a_shifted_view_moves_the_image_right_left_down_and_up():
    views = list(InferenceViews(shift=2).views(_dot(4, 4)))
    assert [_where(v) for v in views] == [(4, 4), (4, 6), (4, 2), (6, 4), (2, 4)]
    assert all(v.shape == (1, 1, 9, 9) for v in views)


def test_the_gap_a_shift_leaves_repeats_the_edge():
    image = torch.arange(81, dtype=torch.float32).reshape(1, 1, 9, 9)
    _, right, *_ = InferenceViews(shift=3).views(image)
    assert torch.equal(right[..., :, 3:], image[..., :, :6])
    assert torch.equal(right[..., :, :3], image[..., :, :1].expand(-1, -1, -1, 3))


def test_with_mirror_every_view_comes_with_its_mirror():
    views = list(InferenceViews(mirror=True, shift=1).views(_dot(4, 2)))
    assert len(views) == InferenceViews(mirror=True, shift=1).count == 10
    assert [_where(v) for v in views[:4]] == [(4, 2), (4, 6), (4, 3), (4, 5)]
    assert [len(list(InferenceViews(mirror=m, shift=s).views(_dot(4, 4))))
            for m, s in ((False, 0), (True, 0), (False, 2))] == [1, 2, 5]


def test_plain_views_are_the_models_logits_and_more_views_average_probabilities():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(81, 7))
    x = torch.rand(4, 1, 9, 9)
    assert torch.equal(PLAIN.scores(model, x), model(x))
    views = InferenceViews(mirror=True, shift=1)
    expected = torch.stack([torch.softmax(model(v), 1) for v in views.views(x)]).mean(0)
    assert torch.allclose(torch.softmax(views.scores(model, x), 1), expected, atol=1e-6)
    assert not torch.allclose(expected, torch.softmax(model(x), 1))


def test_views_name_and_describe_themselves():
    assert PLAIN.suffix == "" and PLAIN.plain and PLAIN.record() == {"mirror": False, "shift": 0}
    assert InferenceViews(mirror=True).suffix == "-mirror"
    assert InferenceViews(mirror=True, shift=2).suffix == "-mirror-shift2"
    assert InferenceViews(mirror=True).describe() == "each image and its left-right mirror"
    assert "moved 2 px" in InferenceViews(shift=2).describe()
    with pytest.raises(ValueError, match="shift"):
        InferenceViews(shift=MAX_SHIFT + 1)
