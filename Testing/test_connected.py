"""The shared connected-component helpers (SwinX2SLib.connected) and the label lookup (catalogue.relabel)."""

from __future__ import annotations

import numpy as np
import pytest

from SwinX2SLib import catalogue
from SwinX2SLib.confidence import keep_largest_component
from SwinX2SLib.connected import components, largest_component


def _mask() -> np.ndarray:
    """Three pieces: a 2x2x2 cube, a diagonal pair touching at a corner (26- but not 6-connected), one voxel."""
    mask = np.zeros((8, 8, 8), bool)
    mask[0:2, 0:2, 0:2] = True
    mask[4, 4, 4] = mask[5, 5, 5] = True
    mask[7, 0, 7] = True
    return mask


@pytest.mark.parametrize(("connectivity", "sizes"), [(None, [8, 2, 1]), (3, [8, 2, 1]), (1, [8, 1, 1, 1])])
def test_components_and_their_sizes(connectivity: int | None, sizes: list[int]) -> None:
    labels, counts = components(_mask(), connectivity)
    assert counts.tolist() == sizes
    assert np.array_equal(np.bincount(labels.ravel())[1:], counts)
    assert np.array_equal(labels > 0, _mask())


def test_largest_component_keeps_the_biggest_piece_or_the_whole_mask() -> None:
    cube = np.indices((8, 8, 8)).max(0) < 2
    assert np.array_equal(largest_component(_mask()), cube)
    assert np.array_equal(largest_component(_mask(), connectivity=1), cube)
    empty = np.zeros((4, 4, 4), bool)
    assert not largest_component(empty).any()
    single = np.zeros((4, 4, 4), np.uint8)
    single[1:3, 1:3, 1:3] = 1
    assert largest_component(single).dtype == bool and largest_component(single).sum() == 8


def test_keep_largest_component_per_label() -> None:
    labels = np.zeros((8, 8, 8), np.uint8)
    labels[_mask()] = 7
    labels[3, 0, 0] = 9  # one piece: kept
    kept = keep_largest_component(labels)
    assert kept.dtype == np.uint8
    assert (kept == 7).sum() == 8 and kept[4, 4, 4] == 0 and kept[7, 0, 7] == 0
    assert kept[3, 0, 0] == 9


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int64])
def test_relabel_maps_named_values_and_zeroes_the_rest(dtype: type) -> None:
    labels = np.array([[0, 1, 2], [300 if dtype != np.uint8 else 200, 2, 5]], dtype=dtype)
    out = catalogue.relabel(labels, {1: 10, 2: 20, 5: 255})
    assert out.dtype == np.uint8 and out.shape == labels.shape
    assert out.tolist() == [[0, 10, 20], [0, 20, 255]]
    assert catalogue.relabel(np.zeros((0,), dtype), {1: 2}).shape == (0,)
