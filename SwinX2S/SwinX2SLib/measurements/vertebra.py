"""Vertebra morphometry (after Di Angelo & Di Stefano 2015), deterministic, in RAS millimetres.

For each vertebra (largest connected component of its label):

1. **Local frame**: superior axis along the spine, from the centroids of the nearest present neighbours (the
   vertebra's own centroid replaces a missing neighbour or one cut by the field of view, whose centroid is
   displaced; patient superior when it has neither; the principal axes of a vertebral body are too ambiguous at
   3-4 mm voxels, where bodies are about as tall as deep); anterior axis from the canal centre to the body
   centroid; right = anterior x superior.
2. **Canal**: the voxels are projected along the superior axis onto an axial raster; the vertebral foramen is the
   largest hole of that raster (``binary_fill_holes``). Canal depth / width = its anterior-posterior / left-right
   extents. The body is everything in front of the canal. Steps 1-2 run twice so the raster follows the frame.
3. **Mid-sagittal profile**: the body voxels within 2 mm of the mid-sagittal plane are binned into anterior-posterior
   columns; each column gives the superior and inferior endplate heights. A column's height is measured on the
   trilinearly interpolated mask along lines across the slab, between the outermost crossings of its 0.5 level
   (sub-voxel and unbiased however the frame is tilted against the grid). Anterior / posterior body height = mean
   of the two tallest columns (the tallest alone if the other is 20 % shorter) within the anterior / posterior
   fifth of the body (at least 3 mm; the outermost column is shortened by the rounded rim); superior / inferior
   endplate depth = distance between the endplate's first and last column; endplate width = left-right extent of
   the body within 3 mm of its superior endplate.
4. **Spinous process**: base = posterior border of the canal on the mid-sagittal plane (at the laminae's height);
   tip = the voxel of the mid-sagittal slab behind the canal farthest from the base. Length = |tip - base|;
   angle = inclination of base -> tip below the posterior axis (positive when the tip points caudally; the published
   pipeline reports 180 deg minus the angle to the superior endplate line).

Other extents are voxel-centre extents plus one voxel footprint along the measured direction. Vertebrae that are
absent, too small, truncated by the field of view, split into several large pieces, or taller than 1.5 times their
depth (fused pair / merged labels) are not measurable; C1 has no body, so only its canal is measured, and the height of
the C2 body (which carries the dens) is not reported.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from ..connected import components
from ._geometry import MIN_VOLUME_MM3, LabelVolume, Structure, not_measurable, unit

__all__ = ["VERTEBRA_PARAMETERS", "measure_vertebrae"]

VERTEBRA_PARAMETERS = (
    "anterior_body_height_mm",
    "posterior_body_height_mm",
    "superior_endplate_depth_mm",
    "inferior_endplate_depth_mm",
    "endplate_width_mm",
    "spinous_process_length_mm",
    "spinous_process_angle_deg",
    "canal_depth_mm",
    "canal_width_mm",
)
_BODY_PARAMETERS = VERTEBRA_PARAMETERS[:5]
_POSTERIOR_PARAMETERS = VERTEBRA_PARAMETERS[5:7]
SUPERIOR = np.array([0.0, 0.0, 1.0])
ANTERIOR = np.array([0.0, 1.0, 0.0])
MIN_CANAL_MM2 = 20.0
SLAB_HALF_MM = 2.0
SLAB_LINES = 5
BAND_MM = 3.0
MAX_HEIGHT_TO_DEPTH = 1.5
MAX_SECOND_PIECE = 0.3


def measure_vertebrae(volume: LabelVolume, ids: dict[str, int]) -> dict[str, dict]:
    """Measure every vertebra.

    Args:
        volume: the label map with its geometry.
        ids: vertebra name -> label id, ordered from cranial to caudal (e.g. ``vertebrae_C1`` -> 1).

    Returns:
        name -> ``{parameter: value | not_measurable, "body_center_ras": [r, a, s]}`` (parameters
        :data:`VERTEBRA_PARAMETERS`) or one ``not_measurable`` dict.
    """
    structures = {name: volume.structure(label) for name, label in ids.items() if volume.present(label)}
    centroids = {name: None if s.touches_border else s.points().mean(axis=0) for name, s in structures.items()}
    names = list(ids)
    return {
        name: _measure_one(volume, name, ids[name], _spine_direction(names.index(name), names, centroids))
        for name in names
    }


def _spine_direction(index: int, names: list[str], centroids: dict[str, np.ndarray | None]) -> np.ndarray:
    """Unit cranial direction of the spine at a vertebra from the centroids of its nearest present neighbours.

    ``centroids`` maps the present vertebrae to their centroid, or to None when the field of view cuts them: such a
    centroid is displaced (up to 18 deg of tilt for a cervical neighbour), so the vertebra's own centroid replaces
    it, as it does for a missing neighbour at either end of the spine.
    """

    def nearest(others: list[str]) -> list[np.ndarray]:
        found = next((centroids[n] for n in others if n in centroids), None)
        return [found] if found is not None else []

    own = [centroids[names[index]]] if centroids.get(names[index]) is not None else []
    ends = (nearest(names[:index][::-1]) or own) + (nearest(names[index + 1 :]) or own)
    if len(ends) == 2 and np.linalg.norm(ends[0] - ends[1]) > 1e-6:
        direction = unit(ends[0] - ends[1])
        return direction if direction @ SUPERIOR > 0 else -direction
    return SUPERIOR


def _measure_one(volume: LabelVolume, name: str, label: int, cranial: np.ndarray) -> dict:
    """All parameters of one vertebra (see module docstring)."""
    whole = volume.structure(label, largest_component=False)
    if whole is None:
        return not_measurable(f"{name} absent from the label map")
    _, counts = components(whole.mask)
    counts = np.sort(counts)[::-1]
    if len(counts) > 1 and counts[1] > MAX_SECOND_PIECE * counts[0]:
        return not_measurable(f"{name} is split into several large pieces (ambiguous labelling)")
    structure = volume.structure(label)
    if structure.volume_mm3 < MIN_VOLUME_MM3["vertebra"]:
        return not_measurable(f"{name} too small ({structure.volume_mm3:.0f} mm^3)")
    if structure.touches_border:
        return not_measurable(f"{name} truncated by the field of view")
    points = structure.points()
    centre = points.mean(axis=0)
    superior = cranial
    anterior = unit(ANTERIOR - (ANTERIOR @ superior) * superior)
    canal = None
    for _ in range(2):
        found = _canal(points, centre, np.cross(anterior, superior), anterior, volume)
        if found is None:
            break
        body = points[(points - centre) @ anterior > found["anterior_edge"]]
        if len(body) < 10:
            break
        canal, frame = found, anterior
        anterior = body.mean(axis=0) - canal["centre"]
        anterior = unit(anterior - (anterior @ superior) * superior)
    if canal is not None:
        anterior = frame  # the frame the canal was measured in
    result: dict[str, object] = {}
    if canal is None:
        reason = f"no vertebral canal found in {name} (open or filled ring)"
        return {"body_center_ras": centre.tolist()} | {k: not_measurable(reason) for k in VERTEBRA_PARAMETERS}
    right = np.cross(anterior, superior)
    result["canal_depth_mm"] = canal["depth"]
    result["canal_width_mm"] = canal["width"]
    rel = points - centre
    u, w, x = rel @ anterior, rel @ superior, rel @ right
    in_body = u > canal["anterior_edge"]
    result["body_center_ras"] = points[in_body].mean(axis=0).tolist()
    if label == 1:
        reason = "C1 has no vertebral body"
        return result | {k: not_measurable(reason) for k in (*_BODY_PARAMETERS, *_POSTERIOR_PARAMETERS)}
    slab = (float(np.median(x[in_body])), max(SLAB_HALF_MM, 0.5 * volume.footprint_mm(right)))
    mid = np.abs(x - slab[0]) < slab[1]
    body, (edge_u, edge_w) = _body_profile(
        u[in_body & mid],
        w[in_body & mid],
        lambda at, low, high: _heights(structure, centre, (anterior, superior, right), slab, at, low, high),
        anterior,
        superior,
        volume,
    )
    # endplate width: left-right extent of the body within a band under the superior endplate (mid-sagittal edge)
    band = max(BAND_MM, volume.footprint_mm(superior))
    near_endplate = in_body & (w >= np.interp(u, edge_u, edge_w) - band)
    body["endplate_width_mm"] = float(np.ptp(x[near_endplate]) + volume.footprint_mm(right))
    height = (body["anterior_body_height_mm"] + body["posterior_body_height_mm"]) / 2
    depth = (body["superior_endplate_depth_mm"] + body["inferior_endplate_depth_mm"]) / 2
    if label > 2 and height > MAX_HEIGHT_TO_DEPTH * depth:
        reason = f"{name} body is {height / depth:.1f} times taller than deep (fused or merged vertebrae?)"
        return {"body_center_ras": result["body_center_ras"]} | {k: not_measurable(reason) for k in VERTEBRA_PARAMETERS}
    if label == 2:
        reason = "the C2 body carries the dens: its height is not a vertebral body height"
        body |= {k: not_measurable(reason) for k in ("anterior_body_height_mm", "posterior_body_height_mm")}
    result |= body
    result |= _spinous_process(u[mid], w[mid], canal)
    return result


def _canal(
    points: np.ndarray, centre: np.ndarray, right: np.ndarray, anterior: np.ndarray, volume: LabelVolume
) -> dict | None:
    """The vertebral foramen as the largest hole of the axial projection, or None.

    Returns:
        ``{"centre": RAS (3,), "anterior_edge", "posterior_edge" (mm along anterior from the vertebra centroid),
        "depth", "width" (mm)}``.
    """
    pixel = float(volume.spacing.min())
    rel = points - centre
    xy = np.stack([rel @ right, rel @ anterior], axis=1)
    lo = xy.min(axis=0) - pixel
    ij = np.floor((xy - lo) / pixel).astype(int)
    raster = np.zeros(ij.max(axis=0) + 2, dtype=bool)
    raster[ij[:, 0], ij[:, 1]] = True
    raster = ndimage.binary_closing(raster, iterations=1) | raster
    holes = ndimage.binary_fill_holes(raster) & ~raster
    lab, n = ndimage.label(holes)
    if n == 0:
        return None
    sizes = np.bincount(lab.ravel())[1:]
    biggest = int(np.argmax(sizes)) + 1
    if sizes[biggest - 1] * pixel**2 < MIN_CANAL_MM2:
        return None
    hole = np.argwhere(lab == biggest) * pixel + lo + pixel / 2
    mid = hole.mean(axis=0)
    return {
        "centre": centre + mid[0] * right + mid[1] * anterior,
        "anterior_edge": float(hole[:, 1].max() + pixel / 2),
        "posterior_edge": float(hole[:, 1].min() - pixel / 2),
        "depth": float(np.ptp(hole[:, 1]) + pixel),
        "width": float(np.ptp(hole[:, 0]) + pixel),
    }


def _body_profile(
    u: np.ndarray,
    w: np.ndarray,
    heights_at: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    anterior: np.ndarray,
    superior: np.ndarray,
    volume: LabelVolume,
) -> tuple[dict[str, float], tuple[np.ndarray, np.ndarray]]:
    """Heights and endplate depths from the body's mid-sagittal voxels (``u`` anterior, ``w`` superior, mm), and the
    superior edge ``(column positions, heights)`` of that profile. ``heights_at(positions, lowest, highest)`` gives
    the edge-to-edge heights of the columns ``(n,)`` whose voxel centres span ``lowest..highest`` (see
    :func:`_heights`)."""
    step = volume.footprint_mm(anterior)
    columns = np.round((u - u.min()) / step).astype(int)
    n = columns.max() + 1
    top = np.full(n, -np.inf)
    bottom = np.full(n, np.inf)
    np.maximum.at(top, columns, w)
    np.minimum.at(bottom, columns, w)
    cols = np.flatnonzero(np.isfinite(top))
    pos = u.min() + cols * step
    band = max(BAND_MM, 0.2 * float(np.ptp(pos)), step)
    front, back = pos >= pos.max() - band + 1e-6, pos <= pos.min() + band - 1e-6
    walls = front | back
    heights = np.zeros(len(cols))
    heights[walls] = heights_at(pos[walls], bottom[cols][walls], top[cols][walls])
    ends = np.array([cols[0], cols[-1]])
    ends_pos = u.min() + ends * step

    def chord(edge: np.ndarray) -> float:
        return float(np.hypot(np.ptp(ends_pos), edge[ends[1]] - edge[ends[0]]) + step)

    return {
        "anterior_body_height_mm": _tallest_two(heights[front]),
        "posterior_body_height_mm": _tallest_two(heights[back]),
        "superior_endplate_depth_mm": chord(top),
        "inferior_endplate_depth_mm": chord(bottom),
    }, (pos, top[cols])


def _heights(
    structure: Structure,
    origin: np.ndarray,
    axes: tuple[np.ndarray, np.ndarray, np.ndarray],
    slab: tuple[float, float],
    at: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
) -> np.ndarray:
    """Edge-to-edge body heights along the superior axis at anterior positions ``at`` ``(n,)``.

    Each height is the mean, over :data:`SLAB_LINES` lines across the middle of the mid-sagittal slab, of the
    distance between the outermost crossings of the 0.5 level of the trilinearly interpolated mask along the
    superior axis: half a voxel beyond the boundary voxel centres on an axis-aligned frame, as the footprint
    convention, and unbiased on an oblique one, where boundary voxel centres lie anywhere from 0 to a whole
    footprint inside the surface (a fixed footprint made tilted bodies up to 1.5 mm too tall at 1 mm voxels).

    Args:
        structure: the vertebra.
        origin: RAS origin (mm) of the frame ``axes = (anterior, superior, right)`` (unit RAS vectors).
        slab: ``(centre, half width)`` of the mid-sagittal slab, mm along ``right``.
        at: column positions (mm along ``anterior``).
        low, high: lowest / highest voxel centre (mm along ``superior``) of each column ``(n,)``.

    Returns:
        Heights in mm ``(n,)``.
    """
    anterior, superior, right = axes
    margin = 2.0 * float(structure.volume.spacing.max())
    t = np.arange(float(low.min()) - margin, float(high.max()) + margin, 0.1 * float(structure.volume.spacing.min()))
    x = slab[0] + np.linspace(-0.5, 0.5, SLAB_LINES) * slab[1]
    uu, xx, tt = np.meshgrid(at, x, t, indexing="ij")
    ras = origin + uu[..., None] * anterior + xx[..., None] * right + tt[..., None] * superior
    ijk = structure.volume.to_index(ras) - structure.offset
    f = ndimage.map_coordinates(structure.mask.astype(np.float32), np.moveaxis(ijk, -1, 0), order=1, cval=0.0)
    inside = f >= 0.5
    n = len(t)
    first = np.argmax(inside, axis=-1)
    last = n - 1 - np.argmax(inside[..., ::-1], axis=-1)

    def crossing(i: np.ndarray, outer: np.ndarray) -> np.ndarray:
        """Position of the 0.5 level between sample ``i`` (inside) and its outer neighbour ``outer``."""
        fi = np.take_along_axis(f, i[..., None], -1)[..., 0]
        fo = np.take_along_axis(f, outer[..., None], -1)[..., 0]
        return t[i] + (fi - 0.5) / np.maximum(fi - fo, 1e-6) * (t[outer] - t[i])

    lengths = crossing(last, np.minimum(last + 1, n - 1)) - crossing(first, np.maximum(first - 1, 0))
    return np.where(inside.any(axis=-1), lengths, 0.0).mean(axis=1)  # a line missing the body: a partial column


def _tallest_two(heights: np.ndarray) -> float:
    """Mean of the two tallest columns (the tallest alone is biased upwards by voxelisation noise), or the tallest
    when the second is shorter than 80 % of it (a rounded rim on a coarse grid)."""
    top = np.sort(heights)[-2:]
    return float(top.mean() if top[0] >= 0.8 * top[-1] else top[-1])


def _spinous_process(u: np.ndarray, w: np.ndarray, canal: dict) -> dict[str, object]:
    """Spinous process length and angle from the mid-sagittal voxels behind the canal (``u`` anterior, ``w``
    superior, mm): base = posterior canal border at the height of the laminae, tip = the voxel farthest from it."""
    behind = u < canal["posterior_edge"]
    if np.count_nonzero(behind) < 3:
        reason = "no posterior elements behind the canal on the mid-sagittal plane"
        return {k: not_measurable(reason) for k in _POSTERIOR_PARAMETERS}
    near = behind & (u > canal["posterior_edge"] - BAND_MM)
    base = np.array([canal["posterior_edge"], float(np.mean(w[near])) if np.any(near) else float(np.mean(w[behind]))])
    offsets = np.stack([u[behind], w[behind]], axis=1) - base
    vec = offsets[np.argmax(np.einsum("ij,ij->i", offsets, offsets))]
    return {
        "spinous_process_length_mm": float(np.hypot(*vec)),
        "spinous_process_angle_deg": float(np.degrees(np.arctan2(-vec[1], -vec[0]))),
    }
