"""Pelvic landmarks and the anterior pelvic plane (APP) coordinate system.

Follows the idea of Fischer et al. (Sci Rep 2019): landmarks are extreme points of the hip bones in a pelvis
coordinate system, and the coordinate system is the APP spanned by those landmarks, so both are refined together
until they agree. Deterministic, on the hip bones' voxel-face surface points in RAS millimetres:

1. Start from the patient frame (right, anterior, superior).
2. Per hip bone, split at the height of its centroid: **ASIS** = most anterior point of the upper part, **PT**
   (pubic tubercle) = most anterior point of the lower part. An extreme point is the centroid of the surface points
   within half a voxel of the extreme (the centre of the flat top a voxelised prominence has), not one arbitrary
   point of that top.
3. New frame: anterior axis = normal of the plane through both ASIS and the midpoint of both PT; right axis =
   ASIS_L -> ASIS_R made orthogonal to it; superior = right x anterior. Repeat 2-3 until the landmarks stop changing.
4. In the final frame: **PSIS** = most posterior point of the upper part (centroid of its top, as in 2); **IS**
   (ischial spine) = extreme point in the medial-posterior direction (45 degrees) behind the centroid, below the
   centroid and the hip joint centre (femoral head centre, when the femur was measured) and at most 15 mm below the
   PT (higher lies the ilium, lower the ischial tuberosity and ramus).

A landmark on a face of the label map's field of view is not measurable (truncated); with one hip bone missing the
other side is measured in the patient frame and the APP is not measurable.
"""

from __future__ import annotations

import numpy as np

from .. import catalogue
from ._geometry import MIN_VOLUME_MM3, LabelVolume, Structure, not_measurable, unit

__all__ = ["HIP_IDS", "LANDMARKS", "measure_pelvis"]

HIP_IDS = {side[0].upper(): catalogue.by_name(f"hip_{side}").id for side in ("left", "right")}
LANDMARKS = ("ASIS_L", "ASIS_R", "PSIS_L", "PSIS_R", "PT_L", "PT_R", "IS_L", "IS_R")
#: Medial direction in the (right, anterior, superior) frame for each side.
_MEDIAL_SIGN = {"L": 1.0, "R": -1.0}
_MAX_ITERATIONS = 20
IS_BELOW_PT_MM = 15.0


def measure_pelvis(volume: LabelVolume, hip_centers: dict[str, np.ndarray] | None = None) -> dict:
    """Measure the pelvic landmarks.

    Args:
        volume: the label map with its geometry.
        hip_centers: femoral head centres (RAS) by side ``"L"`` / ``"R"`` where known: the ischial spine is then
            searched below the hip joint centre rather than below the hip bone's centroid.

    Returns:
        ``{"landmarks_ras": {name: [r, a, s] | not_measurable}, "app": {"origin_ras", "right_ras", "anterior_ras",
        "superior_ras"} | not_measurable}`` (APP origin = midpoint of the ASIS).
    """
    hips: dict[str, np.ndarray] = {}
    reasons: dict[str, str] = {}
    structures: dict[str, Structure] = {}
    for side, label in HIP_IDS.items():
        structure = volume.structure(label)
        name = "hip_left" if side == "L" else "hip_right"
        if structure is None:
            reasons[side] = f"{name} absent from the label map"
        elif structure.volume_mm3 < MIN_VOLUME_MM3["hip"]:
            reasons[side] = f"{name} too small ({structure.volume_mm3:.0f} mm^3)"
        else:
            hips[side] = structure.surface_points()
            structures[side] = structure
    frame = np.eye(3)  # rows: right, anterior, superior (RAS)
    landmarks: dict[str, np.ndarray | None] = {}
    tolerance = 0.5 * float(volume.spacing.max())
    for _ in range(_MAX_ITERATIONS):
        new = {}
        for side, points in hips.items():
            new |= _anterior_landmarks(points, frame, side, tolerance)
        if len(hips) < 2 or all(np.array_equal(new[k], landmarks.get(k)) for k in new):
            landmarks = new
            break
        landmarks = new
        frame = _app_frame(landmarks, frame)
    for side, points in hips.items():
        joint = (hip_centers or {}).get(side)
        landmarks |= _posterior_landmarks(points, frame, side, landmarks[f"PT_{side}"], joint, tolerance)
    result: dict[str, object] = {}
    for name in LANDMARKS:
        side = name[-1]
        if side not in hips:
            result[name] = not_measurable(reasons[side])
        elif landmarks[name] is None:
            result[name] = not_measurable(
                f"{name}: no bone behind the hip bone's centroid between the hip joint and the pubic tubercle"
            )
        elif _on_border(landmarks[name], volume):
            result[name] = not_measurable(f"{name} lies on the border of the field of view (truncated)")
        else:
            result[name] = landmarks[name].tolist()
    if len(hips) == 2:
        origin = (landmarks["ASIS_L"] + landmarks["ASIS_R"]) / 2
        app: dict | dict[str, str] = {
            "origin_ras": origin.tolist(),
            "right_ras": frame[0].tolist(),
            "anterior_ras": frame[1].tolist(),
            "superior_ras": frame[2].tolist(),
        }
    else:
        app = not_measurable("the anterior pelvic plane needs both hip bones: " + "; ".join(reasons.values()))
    return {"landmarks_ras": result, "app": app}


def _split(points: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame coordinates ``(N, 3)`` of the points and the centroid in that frame."""
    q = points @ frame.T
    return q, q.mean(axis=0)


def _extreme(points: np.ndarray, height: np.ndarray, tolerance: float) -> np.ndarray:
    """Centroid ``(3,)`` of the points ``(N, 3)`` whose ``height`` ``(N,)`` is within ``tolerance`` of the largest."""
    return points[height >= height.max() - tolerance].mean(axis=0)


def _anterior_landmarks(points: np.ndarray, frame: np.ndarray, side: str, tolerance: float) -> dict[str, np.ndarray]:
    """ASIS and PT of one hip bone: the most anterior points above and below its centroid."""
    q, centre = _split(points, frame)
    upper = q[:, 2] > centre[2]
    asis = _extreme(points[upper], q[upper, 1], tolerance)
    pt = _extreme(points[~upper], q[~upper, 1], tolerance)
    return {f"ASIS_{side}": asis, f"PT_{side}": pt}


def _posterior_landmarks(
    points: np.ndarray,
    frame: np.ndarray,
    side: str,
    landmarks_pt: np.ndarray,
    joint: np.ndarray | None,
    tolerance: float,
) -> dict[str, np.ndarray]:
    """PSIS (most posterior point above the centroid) and IS (extreme point towards medial-posterior behind the
    centroid, between the height of the centroid or of the hip joint centre, whichever is lower, and
    ``IS_BELOW_PT_MM`` below the pubic tubercle: higher lies the ilium, lower the ischial tuberosity and the
    ischiopubic ramus). IS is None when no bone lies in that window."""
    q, centre = _split(points, frame)
    upper = q[:, 2] > centre[2]
    psis = _extreme(points[upper], -q[upper, 1], tolerance)
    floor = (frame @ landmarks_pt)[2] - IS_BELOW_PT_MM
    ceiling = centre[2] if joint is None else min(centre[2], (frame @ joint)[2])
    lower_back = (q[:, 2] < ceiling) & (q[:, 2] > floor) & (q[:, 1] < centre[1])
    if not np.any(lower_back):
        return {f"PSIS_{side}": psis, f"IS_{side}": None}
    medial_posterior = _MEDIAL_SIGN[side] * q[lower_back, 0] - q[lower_back, 1]
    return {f"PSIS_{side}": psis, f"IS_{side}": points[lower_back][np.argmax(medial_posterior)]}


def _app_frame(landmarks: dict[str, np.ndarray], previous: np.ndarray) -> np.ndarray:
    """Rows (right, anterior, superior) of the APP frame through both ASIS and the midpoint of both PT."""
    asis_l, asis_r = landmarks["ASIS_L"], landmarks["ASIS_R"]
    pt_mid = (landmarks["PT_L"] + landmarks["PT_R"]) / 2
    normal = np.cross(asis_r - asis_l, pt_mid - asis_l)
    if np.linalg.norm(normal) < 1e-9:
        return previous
    anterior = unit(normal)
    if anterior @ previous[1] < 0:
        anterior = -anterior
    right = unit((asis_r - asis_l) - ((asis_r - asis_l) @ anterior) * anterior)
    return np.stack([right, anterior, np.cross(right, anterior)])


def _on_border(point: np.ndarray, volume: LabelVolume) -> bool:
    """Whether a RAS surface point belongs to a voxel on a face of the label map (its outer face is at -0.5)."""
    idx = volume.to_index(point)
    return bool(np.any(idx < 0.25) or np.any(idx > np.asarray(volume.shape) - 1.25))
