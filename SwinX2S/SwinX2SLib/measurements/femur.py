"""Proximal femur morphometry: head centre and radius, neck and shaft axes, neck-shaft angle, femoral offset.

Deterministic replacement of the published CMA-ES pipeline (xrayto3D-morphometry), everything in RAS millimetres:

1. **Shaft (diaphysis) axis**: the femur is cut into 5 mm slabs along the patient's superior axis over
   ``SHAFT_LENGTH_MM`` starting ``SHAFT_START_MM`` below its top; a line is fitted through the slab centroids (the
   centroid of any oblique section of a tube lies on its axis), then the slabs are re-cut perpendicular to that
   line and the line refitted once. Once the head is found (step 2) this is repeated from 3 head radii below the
   head centre, so that the lesser trochanter stays out of the stretch (when at least 50 mm of it is visible).
2. **Femoral head**: the surface point farthest from the shaft axis on the medial side seeds a cap of surface points;
   a least-squares sphere is fitted to it and refitted on the surface points within a shell around the current
   sphere, trimming residuals beyond 2.5 robust standard deviations, until the sphere stops moving.
3. **Neck axis**: from the head centre towards the shaft, slabs perpendicular to the current axis (restricted to a
   cylinder around it, so the trochanters do not count) give cross-sectional areas; the axis is re-aimed through the
   centroid of the narrowest section, three times.
4. **Neck-shaft angle** = angle between the neck axis (pointing to the head) and the distal shaft direction;
   **offset** = distance from the head centre to the shaft axis.

Items that cannot be measured come back as :func:`~SwinX2SLib.measurements._geometry.not_measurable` with a reason.
"""

from __future__ import annotations

import numpy as np

from .. import catalogue
from ._geometry import (
    MIN_VOLUME_MM3,
    LabelVolume,
    Structure,
    angle_deg,
    fit_sphere,
    line_distance,
    not_measurable,
    pca,
    unit,
)

__all__ = ["FEMUR_IDS", "measure_femur"]

FEMUR_IDS = {side: catalogue.by_name(f"femur_{side}").id for side in ("left", "right")}
SUPERIOR = np.array([0.0, 0.0, 1.0])
#: RAS direction towards the body midline from each femur (RAS x grows towards the patient's right).
MEDIAL = {"left": np.array([1.0, 0.0, 0.0]), "right": np.array([-1.0, 0.0, 0.0])}
SHAFT_START_MM = 75.0  # below the top of the femur: below the lesser trochanter
SHAFT_LENGTH_MM = 150.0
MIN_SHAFT_MM = 25.0
SHAFT_BELOW_HEAD_RADII = 3.0
REFINED_SHAFT_MM = 50.0  # shorter stretches below the trochanters give noisier axes than the first estimate
SLAB_MM = 5.0


def measure_femur(volume: LabelVolume, side: str) -> dict:
    """Measure one femur.

    Args:
        volume: the label map with its geometry.
        side: ``"left"`` or ``"right"``.

    Returns:
        ``{"head_center_ras", "head_radius_mm", "neck_axis_ras", "shaft_axis_ras", "neck_shaft_angle_deg",
        "offset_mm"}`` (axes are unit RAS vectors: neck towards the head, shaft towards proximal), or one
        ``not_measurable`` dict for the whole side, or ``not_measurable`` in place of the shaft-dependent values.
    """
    label = FEMUR_IDS[side]
    structure = volume.structure(label)
    if structure is None:
        return not_measurable(f"femur_{side} absent from the label map")
    if structure.volume_mm3 < MIN_VOLUME_MM3["femur"]:
        return not_measurable(f"femur_{side} too small ({structure.volume_mm3:.0f} mm^3)")
    points = structure.points()
    height = points @ SUPERIOR
    top = float(height.max())
    if structure.touches_border:
        border_height = structure.border_points() @ SUPERIOR
        if np.any(border_height > top - SHAFT_START_MM):
            return not_measurable(f"proximal femur_{side} truncated by the field of view")
    shaft = _shaft_axis(points, height, top - SHAFT_START_MM)
    if shaft is None:
        low = points[height < height.min() + SLAB_MM]
        shaft_origin, shaft_dir = low.mean(axis=0), SUPERIOR
    else:
        shaft_origin, shaft_dir = shaft
    head = _fit_head(structure, shaft_origin, shaft_dir, top - SHAFT_START_MM, MEDIAL[side])
    if head is None:
        return not_measurable(f"no femoral head found on femur_{side}")
    centre, radius = head
    # Second pass: the diaphysis proper starts below the lesser trochanter, about 3 head radii below the head centre.
    below_trochanters = min(top - SHAFT_START_MM, float(centre @ SUPERIOR) - SHAFT_BELOW_HEAD_RADII * radius)
    shaft = _shaft_axis(points, height, below_trochanters, min_length=REFINED_SHAFT_MM) or shaft
    if shaft is not None:
        shaft_origin, shaft_dir = shaft
    result = {"head_center_ras": centre.tolist(), "head_radius_mm": radius}
    if shaft is None:
        reason = f"femur_{side} shaft shorter than {MIN_SHAFT_MM:.0f} mm in the field of view"
        result |= {k: not_measurable(reason) for k in ("neck_axis_ras", "shaft_axis_ras")}
        result |= {k: not_measurable(reason) for k in ("neck_shaft_angle_deg", "offset_mm")}
        return result
    neck_dir = _neck_axis(points, centre, radius, shaft_origin, shaft_dir, volume)
    result["neck_axis_ras"] = neck_dir.tolist()
    result["shaft_axis_ras"] = shaft_dir.tolist()
    result["neck_shaft_angle_deg"] = angle_deg(neck_dir, -shaft_dir)
    result["offset_mm"] = float(line_distance(centre, shaft_origin, shaft_dir))
    return result


def _slab_centroids(points: np.ndarray, t: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Centroids ``(M, 3)`` of the points in consecutive ``SLAB_MM`` slabs of the coordinate ``t`` in ``[lo, hi]``."""
    edges = np.arange(lo, hi + 1e-6, SLAB_MM)
    bins = np.digitize(t, edges)
    centroids = []
    for b in range(1, len(edges)):
        sel = bins == b
        if np.count_nonzero(sel) >= 3:
            centroids.append(points[sel].mean(axis=0))
    return np.asarray(centroids)


def _shaft_axis(
    points: np.ndarray, height: np.ndarray, hi: float, min_length: float = MIN_SHAFT_MM
) -> tuple[np.ndarray, np.ndarray] | None:
    """Diaphysis axis ``(point on it, unit direction towards proximal)`` from the bone between the height ``hi`` and
    ``SHAFT_LENGTH_MM`` below it, or None when less than ``min_length`` of it is in the field of view."""
    lo = max(float(height.min()), hi - SHAFT_LENGTH_MM)
    if hi - lo < min_length:
        return None
    centroids = _slab_centroids(points, height, lo, hi)
    if len(centroids) < 3:
        return None
    origin, axes, _ = pca(centroids)
    direction = axes[0] if axes[0] @ SUPERIOR > 0 else -axes[0]
    # Re-cut perpendicular to the first estimate, over the same stretch of bone.
    t = (points - origin) @ direction
    in_stretch = (height >= lo) & (height <= hi)
    t_in = t[in_stretch]
    centroids = _slab_centroids(points[in_stretch], t_in, float(t_in.min()), float(t_in.max()))
    if len(centroids) >= 3:
        origin, axes, _ = pca(centroids)
        direction = axes[0] if axes[0] @ SUPERIOR > 0 else -axes[0]
    return origin, direction


def _fit_head(
    structure: Structure, shaft_origin: np.ndarray, shaft_dir: np.ndarray, shaft_top: float, medial: np.ndarray
) -> tuple[np.ndarray, float] | None:
    """Femoral head sphere ``(centre, radius)`` by iteratively trimmed least squares on surface points."""
    surface = structure.surface_points()
    proximal = surface[surface @ SUPERIOR > shaft_top]
    if len(proximal) < 20:
        return None
    rel = proximal - shaft_origin
    foot = shaft_origin + np.outer(rel @ shaft_dir, shaft_dir)
    on_medial_side = (proximal - foot) @ medial > 0
    if not np.any(on_medial_side):
        return None
    candidates = proximal[on_medial_side]
    far = candidates[np.argmax(line_distance(candidates, shaft_origin, shaft_dir))]
    outward = unit(far - (shaft_origin + ((far - shaft_origin) @ shaft_dir) * shaft_dir))
    cap = proximal[(np.linalg.norm(proximal - far, axis=1) < 35.0) & ((far - proximal) @ outward < 20.0)]
    if len(cap) < 10:
        return None
    centre, radius = fit_sphere(cap)
    tolerance = max(2.0, 1.5 * float(structure.volume.spacing.max()))
    for _ in range(20):
        residual = np.linalg.norm(proximal - centre, axis=1) - radius
        shell = proximal[np.abs(residual) < max(tolerance, 0.25 * radius)]
        if len(shell) < 10:
            return None
        res = np.linalg.norm(shell - centre, axis=1) - radius
        scale = 1.4826 * np.median(np.abs(res - np.median(res)))
        kept = shell[np.abs(res - np.median(res)) <= max(2.5 * scale, 1e-6)]
        new_centre, new_radius = fit_sphere(kept if len(kept) >= 10 else shell)
        moved = np.linalg.norm(new_centre - centre) + abs(new_radius - radius)
        centre, radius = new_centre, new_radius
        if moved < 1e-3:
            break
    return centre, radius


def _neck_axis(
    points: np.ndarray,
    centre: np.ndarray,
    radius: float,
    shaft_origin: np.ndarray,
    shaft_dir: np.ndarray,
    volume: LabelVolume,
) -> np.ndarray:
    """Unit neck axis pointing from the narrowest neck section to the head centre."""
    # Start towards the point of the shaft axis level with the lesser trochanter region below the head.
    along = (centre - shaft_origin) @ shaft_dir
    direction = unit(shaft_origin + (along - radius) * shaft_dir - centre)
    thickness = max(3.0, 2.0 * float(volume.spacing.max()))
    steps = np.arange(0.6 * radius, 2.5 * radius, max(0.5, 0.25 * float(volume.spacing.min())))
    for _ in range(3):
        rel = points - centre
        t = rel @ direction
        near = line_distance(points, centre, direction) < 1.2 * radius
        best_area, best_centroid = np.inf, None
        for s in steps:
            sel = near & (np.abs(t - s) < thickness / 2)
            count = int(np.count_nonzero(sel))
            if count and count < best_area:
                best_area, best_centroid = count, points[sel].mean(axis=0)
        if best_centroid is None:
            break
        direction = unit(best_centroid - centre)
    return -direction
