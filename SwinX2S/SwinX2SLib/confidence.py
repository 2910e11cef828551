"""Fusing the two views' predictions and measuring how much they agree.

The Swin-X2S network returns two logit volumes, ``p`` (coronal-view branch) and ``q`` (sagittal-view branch). The
label map is ``argmax(p + q)``, as in the published inference. Per voxel we also compute

* the Jensen–Shannon divergence between ``softmax(p)`` and ``softmax(q)`` in bits (0 = the views agree, 1 = they
  put all their mass on different classes), and
* the maximum of the fused probability ``(softmax(p) + softmax(q)) / 2``.

Per segment, **agreement** = 1 − mean JS divergence over the segment's voxels and **mean max-probability** = mean
of the fused maximum probability over them; both lie in [0, 1], higher meaning more trustworthy. The work runs in
slabs along the first spatial axis so that no full ``(C, X, Y, Z)`` probability volume is ever held twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "FusedPrediction",
    "SegmentConfidence",
    "fuse_slabs",
    "fuse_views",
    "keep_largest_component",
    "segment_confidence",
]

_SLAB = 16


@dataclass(frozen=True)
class FusedPrediction:
    """Voxel-wise result of :func:`fuse_views`.

    Attributes:
        labels: uint8 ``(X, Y, Z)`` class map, ``argmax(p + q)``.
        js_divergence: float32 ``(X, Y, Z)`` Jensen–Shannon divergence (bits) of the two views.
        max_probability: float32 ``(X, Y, Z)`` maximum fused class probability.
    """

    labels: np.ndarray
    js_divergence: np.ndarray
    max_probability: np.ndarray


@dataclass(frozen=True)
class SegmentConfidence:
    """Per-segment confidence: ``agreement`` = 1 − mean JS divergence, ``mean_max_probability``; both in [0, 1]."""

    agreement: float
    mean_max_probability: float


@torch.no_grad()
def fuse_views(p: torch.Tensor, q: torch.Tensor) -> FusedPrediction:
    """Fuse the two views' logits into labels and voxel-wise confidence.

    Args:
        p: coronal-branch logits ``(C, X, Y, Z)`` (or ``(1, C, X, Y, Z)``), any float dtype and device.
        q: sagittal-branch logits, same shape.

    Returns:
        The :class:`FusedPrediction` (numpy arrays on the CPU).
    """
    if p.ndim == 5:
        p, q = p[0], q[0]
    if p.shape != q.shape or p.ndim != 4:
        raise ValueError(f"p and q must both be (C, X, Y, Z) logits, got {tuple(p.shape)} and {tuple(q.shape)}")
    slabs = ((p[:, s:s + _SLAB], q[:, s:s + _SLAB]) for s in range(0, p.shape[1], _SLAB))
    return fuse_slabs(slabs, tuple(p.shape[1:]))


@torch.no_grad()
def fuse_slabs(slabs: Iterable[tuple[torch.Tensor, torch.Tensor]], shape: tuple[int, int, int]) -> FusedPrediction:
    """:func:`fuse_views` over consecutive slabs along X, so the full logits never need to exist at once.

    Args:
        slabs: ``(p, q)`` logit slabs ``(C, x_i, Y, Z)`` in order of increasing x, covering ``X`` in total.
        shape: ``(X, Y, Z)``.

    Returns:
        The :class:`FusedPrediction`.
    """
    labels = np.empty(shape, np.uint8)
    js = np.empty(shape, np.float32)
    maxp = np.empty(shape, np.float32)
    start = 0
    for ps, qs in slabs:
        if ps.shape[0] > 256:
            raise ValueError(f"{ps.shape[0]} classes do not fit a uint8 label map")
        sl = slice(start, start + ps.shape[1])
        # one row of class logits per voxel (a view when the slab is channels-last): reductions along rows
        rows_p, rows_q = (t.float().permute(1, 2, 3, 0).reshape(-1, t.shape[0]) for t in (ps, qs))
        labels[sl] = torch.add(rows_p, rows_q).argmax(1).view(ps.shape[1:]).to(torch.uint8).cpu().numpy()
        prob_p, entropy_p = _softmax_entropy(rows_p)
        prob_q, entropy_q = _softmax_entropy(rows_q)
        mix = prob_p.add_(prob_q).mul_(0.5)
        # JS(P, Q) = H((P + Q) / 2) - (H(P) + H(Q)) / 2, in nats
        divergence = torch.special.entr(mix).sum(1) - 0.5 * (entropy_p + entropy_q)
        js[sl] = (divergence / np.log(2.0)).clamp(0.0, 1.0).view(ps.shape[1:]).cpu().numpy()
        maxp[sl] = mix.amax(1).view(ps.shape[1:]).cpu().numpy()
        start = sl.stop
    if start != shape[0]:
        raise ValueError(f"slabs covered {start} of {shape[0]} planes along X")
    return FusedPrediction(labels, js, maxp)


def _softmax_entropy(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax of ``[voxels, classes]`` logits along the classes and its entropy in nats, ``H = -Σ p log p``."""
    log_prob = torch.log_softmax(rows, dim=1)
    prob = log_prob.exp()
    return prob, -(prob * log_prob).sum(1)


def segment_confidence(labels: np.ndarray, js_divergence: np.ndarray,
                       max_probability: np.ndarray) -> dict[int, SegmentConfidence]:
    """Per-segment confidence from voxel-wise maps.

    Args:
        labels: integer ``(X, Y, Z)`` label map (after any post-processing).
        js_divergence: ``(X, Y, Z)`` JS divergence in bits, from :func:`fuse_views`.
        max_probability: ``(X, Y, Z)`` fused maximum probability.

    Returns:
        class id -> :class:`SegmentConfidence`, for every foreground class present.
    """
    flat = labels.ravel().astype(np.int64)
    counts = np.bincount(flat)
    js_sum = np.bincount(flat, weights=js_divergence.ravel().astype(np.float64), minlength=counts.size)
    prob_sum = np.bincount(flat, weights=max_probability.ravel().astype(np.float64), minlength=counts.size)
    return {
        int(c): SegmentConfidence(float(1.0 - js_sum[c] / counts[c]), float(prob_sum[c] / counts[c]))
        for c in np.nonzero(counts)[0]
        if c != 0
    }


def keep_largest_component(labels: np.ndarray) -> np.ndarray:
    """Keep only the largest 26-connected component of every label (the rest becomes background).

    Args:
        labels: integer ``(X, Y, Z)`` label map.

    Returns:
        A new label map of the same shape and dtype.
    """
    from scipy import ndimage

    from .connected import largest_component

    result = labels.copy()
    for index, box in enumerate(ndimage.find_objects(labels.astype(np.int32, copy=False))):
        if box is not None:
            mask = labels[box] == index + 1
            result[box][mask & ~largest_component(mask)] = 0
    return result
