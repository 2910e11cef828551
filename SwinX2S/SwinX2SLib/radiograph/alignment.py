"""A common superior-inferior frame for the AP and the lateral radiograph.

The two images are taken minutes apart: the patient moves along the table and the magnifications differ, but both
images share the superior-inferior (SI) axis up to an offset and a scale. Positions along it are measured in mm
of the patient's mid-plane from each image's top edge (``u`` on the AP image, ``v`` on the lateral one) and

    ``v = scale · u + offset``.

:func:`estimate_si_alignment` finds ``(offset, scale)`` from the two views' row profiles (the mean windowed
intensity of each row of the open field: spine, pelvis and femurs are bright in both views, lungs dark), by
maximising the Pearson correlation of the profiles' derivatives (edges, insensitive to each view's baseline) over
offsets on a 1 mm grid (where the profiles overlap by at least half the shorter one) and scales on a 0.25 % grid,
refined to sub-millimetre by a parabola through the best
offset and its neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["MIN_OVERLAP_FRACTION", "MIN_OVERLAP_MM", "SIAlignment", "estimate_si_alignment", "row_profile"]

MIN_OVERLAP_MM = 20.0
"""Shortest SI overlap (mm) of the two views' open fields that can be aligned and reconstructed."""
MIN_OVERLAP_FRACTION = 0.5
"""Offsets are only considered where the profiles overlap by this fraction of the shorter one (short overlaps
correlate by chance)."""
_STEP_MM = 1.0
_SMOOTH_MM = 3.0
_EDGE_MARGIN = 10
"""Samples (mm) next to the open field's edges left out of the comparison: more than the derivative's reach."""


@dataclass(frozen=True)
class SIAlignment:
    """``v = scale · u + offset`` between the AP (``u``) and the lateral (``v``) image, mm from the top edges.

    Attributes:
        offset_mm, scale: the map; score: Pearson correlation of the profile derivatives at the optimum
        (``None`` when given by the user); source: ``"estimated"`` or ``"user"``.
    """

    offset_mm: float
    scale: float = 1.0
    score: float | None = None
    source: str = "estimated"

    def to_dict(self) -> dict:
        """JSON-ready values."""
        return {"offset_mm": round(self.offset_mm, 3), "scale": round(self.scale, 5),
                "score": None if self.score is None else round(self.score, 4), "source": self.source}


def row_profile(image: np.ndarray, field: np.ndarray, row_spacing_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each row's open-field pixels, resampled every 1 mm from the top edge.

    Args:
        image: ``(rows, cols)`` windowed display image.
        field: ``(rows, cols)`` open field.
        row_spacing_mm: mid-plane row spacing.

    Returns:
        ``(profile, valid)``: float ``(L,)`` at ``u = 0.5, 1.5, ...`` mm and whether each sample lies in the field.
    """
    counts = field.sum(axis=1)
    means = np.where(counts > 0, (image * field).sum(axis=1) / np.maximum(counts, 1), 0.0)
    length = int(image.shape[0] * row_spacing_mm / _STEP_MM)
    u = (np.arange(length) + 0.5) * _STEP_MM
    rows = u / row_spacing_mm - 0.5
    open_rows = np.flatnonzero(counts > 0)
    inside = (rows >= open_rows[0]) & (rows <= open_rows[-1])
    profile = np.interp(rows, open_rows, means[open_rows])  # constant beyond the open field: no edge there
    valid = ndimage.binary_erosion(inside, iterations=_EDGE_MARGIN)
    return profile, valid


def estimate_si_alignment(ap: tuple[np.ndarray, np.ndarray], lateral: tuple[np.ndarray, np.ndarray],
                          max_offset_mm: float = 250.0, max_scale_change: float = 0.04) -> SIAlignment:
    """Estimate ``(offset, scale)`` from two :func:`row_profile` results.

    Args:
        ap: ``(profile, valid)`` of the AP image.
        lateral: ``(profile, valid)`` of the lateral image.
        max_offset_mm: offsets searched: ``±max_offset_mm``.
        max_scale_change: scales searched: ``1 ± max_scale_change``.

    Returns:
        The best :class:`SIAlignment`.

    Raises:
        ValueError: no offset leaves :data:`MIN_OVERLAP_MM` of overlap.
    """
    p, p_valid = (np.asarray(a) for a in ap)
    q, q_valid = (np.asarray(a) for a in lateral)
    dp, dq = (ndimage.gaussian_filter1d(x, _SMOOTH_MM / _STEP_MM, order=1) for x in (p, q))
    u = (np.arange(p.size) + 0.5) * _STEP_MM
    best = (-np.inf, 0.0, 1.0)
    scales = np.arange(1.0 - max_scale_change, 1.0 + max_scale_change + 1e-9, 0.0025)
    offsets = np.arange(-max_offset_mm, max_offset_mm + _STEP_MM / 2, _STEP_MM)
    need = max(MIN_OVERLAP_MM, MIN_OVERLAP_FRACTION * min(p_valid.sum(), q_valid.sum()) * _STEP_MM)
    table = {}
    for scale in scales:
        scores = np.array([_score(dp, p_valid, dq, q_valid, u, scale, offset, need) for offset in offsets])
        table[float(scale)] = scores
        index = int(np.nanargmax(scores)) if np.isfinite(scores).any() else None
        if index is not None and scores[index] > best[0]:
            best = (float(scores[index]), float(offsets[index]), float(scale))
    if not np.isfinite(best[0]):
        raise ValueError(f"no SI offset within ±{max_offset_mm:g} mm makes the two views overlap by {need:.0f} mm")
    score, offset, scale = best
    scores = table[scale]
    index = int(np.argmin(np.abs(offsets - offset)))
    if 0 < index < offsets.size - 1 and np.all(np.isfinite(scores[index - 1:index + 2])):
        left, centre, right = scores[index - 1:index + 2]
        curvature = left - 2.0 * centre + right
        if curvature < 0:
            offset += float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5)) * _STEP_MM
    return SIAlignment(offset, scale, score)


def _score(dp: np.ndarray, p_valid: np.ndarray, dq: np.ndarray, q_valid: np.ndarray, u: np.ndarray,
           scale: float, offset: float, need_mm: float) -> float:
    """Pearson correlation of ``dp(u)`` and ``dq(scale · u + offset)`` over the common valid samples (``-inf``
    when they overlap by less than ``need_mm``)."""
    v = (scale * u + offset) / _STEP_MM - 0.5
    inside = (v >= 0) & (v <= dq.size - 1) & p_valid
    if inside.sum() * _STEP_MM < need_mm:
        return -np.inf
    sampled = np.interp(v[inside], np.arange(dq.size), dq)
    ok = np.interp(v[inside], np.arange(q_valid.size), q_valid.astype(float)) > 0.999
    if ok.sum() * _STEP_MM < need_mm:
        return -np.inf
    a, b = dp[inside][ok], sampled[ok]
    if a.std() == 0 or b.std() == 0:
        return -np.inf
    return float(np.corrcoef(a, b)[0, 1])
