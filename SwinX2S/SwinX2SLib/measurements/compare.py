"""Compare the measurements of a prediction with those of a reference.

Parameter errors (:func:`compare_measurements`), from two :func:`SwinX2SLib.measurements.measure` results:

- scalars (``*_mm``, ``*_deg``, ``*_per_mm``): absolute difference, same key and unit;
- points (``*_ras``): Euclidean distance, key ``<name>_distance_mm`` (pelvic landmarks: ``landmark_distance_mm``);
- axes (``*_axis_ras``): angle between the two unit vectors, key ``<name>_angle_deg``;
- centrelines: symmetric mean closest-point distance, ``centerline_mean_distance_mm``;
- anything not measurable on either side: ``not_measurable`` naming the side(s) and reason(s).

Rib overlap metrics (:func:`rib_overlap_metrics`) follow the published Swin-X2S evaluation
(``morphometry/xrayto3d_morphometry/rib_utils.py``), on label maps sharing one grid:

- ``dice``: volume Dice of the rib masks;
- ``cldice``: centreline Dice, ``2 Tprec Tsens / (Tprec + Tsens)`` with ``Tprec = |P & S(R)| / |S(R)|`` and
  ``Tsens = |R & S(P)| / |S(P)|``, ``S`` = 3-D skeleton (``skimage.morphology.skeletonize``) of the whole mask;
- ``nldice``: normalised line Dice: both smoothed centrelines are rasterised on the voxel grid, each raster is dilated
  by a ball of radius 3 voxels, ``(|D(P_cl) & R_cl| + |D(R_cl) & P_cl|) / (|R_cl| + |P_cl|)``;
- ``lscd_error``: line-segment chamfer distance error ``|CD(P_cl, R) - CD(R_cl, R)| / CD(R_cl, R)``, with
  ``CD(A, B) = mean_a min_b |a - b| + mean_b min_a |a - b|`` between centreline points and the reference rib's voxel
  centres (a ratio, so the published voxel units and our millimetres agree on an isotropic grid).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.morphology import ball, skeletonize

from ._geometry import LabelVolume, angle_deg, is_measured, not_measurable
from .rib import _resample_step

__all__ = ["compare_measurements", "rib_overlap_metrics"]

NLDICE_RADIUS_VOXELS = 3


def compare_measurements(pred: dict, reference: dict) -> dict:
    """Per-parameter errors between two measurement dictionaries of the same layout.

    Args:
        pred: measurements of the prediction.
        reference: measurements of the reference.

    Returns:
        The same nesting with errors in place of values (see module docstring).
    """
    out: dict = {}
    for key, ref_value in reference.items():
        if key not in pred or key in ("geometry", "app"):
            continue
        out_key, error = _compare_value(key, pred[key], ref_value)
        out[out_key] = error
    return out


def _compare_value(key: str, pred: object, ref: object) -> tuple[str, object]:
    """Error between one predicted and one reference value; returns (output key, error)."""
    if not is_measured(pred) or not is_measured(ref):
        sides = [
            f"{side}: {value['reason']}"
            for side, value in (("prediction", pred), ("reference", ref))
            if not is_measured(value)
        ]
        return _error_key(key), not_measurable("; ".join(sides))
    if key == "centerline_ras":
        return "centerline_mean_distance_mm", centerline_distance(np.asarray(pred), np.asarray(ref))
    if key == "landmarks_ras":
        return "landmark_distance_mm", dict(_compare_value(k, pred[k], ref[k]) for k in ref)
    if isinstance(ref, dict):
        return key, compare_measurements(pred, ref)
    if key.endswith("axis_ras"):
        return _error_key(key), angle_deg(np.asarray(pred), np.asarray(ref))
    if isinstance(ref, list):
        return _error_key(key), float(np.linalg.norm(np.asarray(pred) - np.asarray(ref)))
    return key, float(abs(pred - ref))


def _error_key(key: str) -> str:
    """Output key of the error of a value stored under ``key``."""
    if key.endswith("axis_ras"):
        return key.removesuffix("_ras") + "_angle_deg"
    if key.endswith("_ras"):
        return key.removesuffix("_ras") + "_distance_mm" if key != "centerline_ras" else "centerline_mean_distance_mm"
    return key


def centerline_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric mean closest-point distance (mm) between two polylines ``(N, 3)``, densified to 0.5 mm."""
    da, db = _resample_step(a, 0.5), _resample_step(b, 0.5)
    return float((cKDTree(db).query(da)[0].mean() + cKDTree(da).query(db)[0].mean()) / 2)


def rib_overlap_metrics(
    pred: LabelVolume, reference: LabelVolume, label: int, pred_centerline: list, ref_centerline: list
) -> dict:
    """Dice, clDice, nlDice and LSCD error of one rib (definitions in the module docstring).

    Args:
        pred: predicted label map.
        reference: reference label map on the same grid.
        label: the rib's label id.
        pred_centerline: predicted centreline, RAS ``(N, 3)``.
        ref_centerline: reference centreline, RAS ``(M, 3)``.

    Returns:
        ``{"dice", "cldice", "nldice", "lscd_error"}``.
    """
    p_cl = np.asarray(pred_centerline, dtype=float)
    r_cl = np.asarray(ref_centerline, dtype=float)
    p_idx = np.rint(pred.to_index(p_cl)).astype(int)
    r_idx = np.rint(reference.to_index(r_cl)).astype(int)
    crops = [v.structure(label, largest_component=False) for v in (pred, reference)]
    starts = [c.offset for c in crops] + [p_idx.min(0), r_idx.min(0)]
    stops = [c.offset + c.mask.shape for c in crops] + [p_idx.max(0) + 1, r_idx.max(0) + 1]
    margin = NLDICE_RADIUS_VOXELS + 1
    lo = np.maximum(np.min(starts, axis=0) - margin, 0)
    hi = np.minimum(np.max(stops, axis=0) + margin, pred.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    p_mask, r_mask = pred.labels[box] == label, reference.labels[box] == label
    dice = 2.0 * np.count_nonzero(p_mask & r_mask) / (np.count_nonzero(p_mask) + np.count_nonzero(r_mask))
    p_skel, r_skel = skeletonize(p_mask) > 0, skeletonize(r_mask) > 0
    t_prec = np.count_nonzero(p_mask & r_skel) / max(np.count_nonzero(r_skel), 1)
    t_sens = np.count_nonzero(r_mask & p_skel) / max(np.count_nonzero(p_skel), 1)
    cldice = 0.0 if t_prec + t_sens == 0 else 2 * t_prec * t_sens / (t_prec + t_sens)
    p_line, r_line = _raster(p_idx - lo, p_mask.shape), _raster(r_idx - lo, r_mask.shape)
    footprint = ball(NLDICE_RADIUS_VOXELS)
    p_dil = ndimage.binary_dilation(p_line, structure=footprint)
    r_dil = ndimage.binary_dilation(r_line, structure=footprint)
    nldice = (np.count_nonzero(p_dil & r_line) + np.count_nonzero(r_dil & p_line)) / (
        np.count_nonzero(r_line) + np.count_nonzero(p_line)
    )
    r_points = reference.to_ras(np.argwhere(r_mask) + lo)
    ll = _chamfer(r_cl, r_points)
    lscd = abs(_chamfer(p_cl, r_points) - ll) / ll
    return {"dice": float(dice), "cldice": float(cldice), "nldice": float(nldice), "lscd_error": float(lscd)}


def _raster(idx: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Boolean image of ``shape`` with the voxels ``idx`` ``(N, 3)`` set (indices outside are dropped)."""
    image = np.zeros(shape, dtype=bool)
    ok = np.all((idx >= 0) & (idx < shape), axis=1)
    image[tuple(idx[ok].T)] = True
    return image


def _chamfer(a: np.ndarray, b: np.ndarray) -> float:
    """Chamfer distance ``mean_a min_b |a-b| + mean_b min_a |a-b|`` between point sets ``(N, 3)``, ``(M, 3)``."""
    return float(cKDTree(b).query(a)[0].mean() + cKDTree(a).query(b)[0].mean())
