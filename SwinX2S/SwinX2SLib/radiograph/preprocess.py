"""Two clinical radiographs → the network's input pair on one model grid.

Steps (:func:`prepare_radiograph_pair`), each recorded in :attr:`PreparedPair.report`:

1. the two files must be two different exposures (``SOPInstanceUID`` / file, and pixels);
2. per view (:mod:`~SwinX2SLib.radiograph.intensity`): open field (collimation cut), burned-in markers filled,
   percentile window to [0, 1];
   the mid-plane spacing is brought to the depth of the spine seen in the other view (:mod:`.depth`) when the
   view position and the source distance are known;
3. SI alignment of the lateral to the AP image (:mod:`~SwinX2SLib.radiograph.alignment`), estimated or given;
4. the region to reconstruct, chosen once on the AP image (``Region``: top and bottom edge in mid-plane mm from
   the AP image's top edge; default: the SI overlap of both open fields) and carried to the lateral image by the
   alignment. Its SI length is the model grid's ``Z`` extent, so the grid spacing is ``length / Z``; across,
   each view takes ``X`` (resp. ``Y``) pixels centred on its image centre (the central ray, where the isocentre
   projects);
5. both views are resampled onto the model pixels (Gaussian anti-aliasing, bilinear) in display orientation and
   turned into the model image convention with :func:`~SwinX2SLib.conventions.display_to_image`;
6. histogram matching to the model card's reference DRR quantiles when the card carries them.

The perspective of a real radiograph is corrected only to first order (each image scaled to its mid-plane); the
residual (anatomy in front of or behind the mid-plane is magnified a little more or less) is part of what the
measured targets quantify (``Testing/test_radiograph.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ..conventions import ModelGrid, display_to_image
from ..errors import InputError
from .alignment import MIN_OVERLAP_MM, SIAlignment, estimate_si_alignment, row_profile
from .depth import SOURCE_SIDE, depth_factor, spine_offset_mm
from .geometry import ClinicalRadiograph
from .intensity import collimation_mask, fill_masked, marker_mask, match_quantiles, percentile_window

__all__ = ["SCALE_SEARCH", "PreparedPair", "Region", "prepare_radiograph_pair", "prepare_view"]

SCALE_SEARCH = 0.06
"""SI scales searched (``1 ± SCALE_SEARCH``) when a view's magnification is an assumed default; with both
magnifications from the files (or spacings from the user) the scale is 1 and only the offset is searched."""


@dataclass(frozen=True)
class Region:
    """The superior-inferior extent to reconstruct, in mid-plane mm from the AP image's top edge."""

    top_mm: float
    bottom_mm: float

    def __post_init__(self) -> None:
        if not self.bottom_mm > self.top_mm:
            raise InputError("--region", f"the bottom ({self.bottom_mm} mm) must lie below the top "
                                         f"({self.top_mm} mm)")


@dataclass(frozen=True)
class PreparedPair:
    """The network input pair prepared from two radiographs.

    Attributes:
        coronal: float32 ``(X, Z)`` in [0, 1]; sagittal: float32 ``(Y, Z)`` in [0, 1].
        grid: the model grid (centred at the origin: radiographs carry no patient position).
        region: the region on the AP image; alignment: the lateral-to-AP SI map.
        report: JSON-ready record of every step and where its numbers came from.
    """

    coronal: np.ndarray
    sagittal: np.ndarray
    grid: ModelGrid
    region: Region
    alignment: SIAlignment
    report: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _View:
    image: np.ndarray  # windowed display image in [0, 1]
    field: np.ndarray  # open field
    spacing: tuple[float, float]
    report: dict[str, Any]


def prepare_view(radiograph: ClinicalRadiograph) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Open field, markers filled, percentile window of one radiograph.

    Returns:
        ``(windowed display image (rows, cols) in [0, 1], open field mask, report)``.
    """
    pixels = radiograph.pixels.astype(np.float64)
    open_field = collimation_mask(pixels)
    markers = marker_mask(pixels, open_field)
    windowed = percentile_window(fill_masked(pixels, ~markers), open_field)
    report = {"open_field_fraction": round(float(open_field.mean()), 4),
              "marker_pixels": int(markers.sum()), "window_percentiles": [0.5, 99.5]}
    return windowed, open_field, report


def prepare_radiograph_pair(coronal: ClinicalRadiograph, sagittal: ClinicalRadiograph,
                            img_size: tuple[int, int, int], region: Region | None = None,
                            si_offset_mm: float | None = None,
                            reference_quantiles: list[float] | None = None) -> PreparedPair:
    """Prepare the network inputs from an AP and a lateral radiograph (see the module docstring).

    Args:
        coronal: the AP (or PA) radiograph.
        sagittal: the lateral radiograph.
        img_size: the model's ``(X, Y, Z)``.
        region: SI extent to reconstruct on the AP image; ``None`` = the overlap of both views.
        si_offset_mm: lateral SI position of the AP image's top edge (``v`` at ``u = 0``); ``None`` = estimated.
        reference_quantiles: the model's reference DRR quantiles; ``None`` = no histogram matching.

    Returns:
        The :class:`PreparedPair`.

    Raises:
        InputError: one exposure given twice, views that do not overlap, a region outside the AP image's field.
    """
    if coronal.view != "coronal" or sagittal.view != "sagittal":
        raise ValueError("prepare_radiograph_pair needs a coronal and a sagittal ClinicalRadiograph")
    if coronal.identity == sagittal.identity or (coronal.pixels.shape == sagittal.pixels.shape
                                                 and np.array_equal(coronal.pixels, sagittal.pixels)):
        raise InputError(sagittal.path, f"is the same exposure as the AP image {coronal.path}: give an AP and a "
                                        "lateral radiograph")
    prepared = {r.view: prepare_view(r) for r in (coronal, sagittal)}
    spine = {view: spine_offset_mm(image, open_field, radiograph.spacing_mm[1])
             for (view, (image, open_field, _)), radiograph in zip(prepared.items(), (coronal, sagittal), strict=True)}
    views = {}
    for radiograph, other in ((coronal, "sagittal"), (sagittal, "coronal")):
        image, open_field, report = prepared[radiograph.view]
        factor = _spine_depth_factor(radiograph, spine[other])
        report["spine_offset_mm"] = round(spine[radiograph.view], 2)
        report["spine_depth_factor"] = {"value": round(factor, 5), "source": "derived" if factor != 1.0 else
                                        "default (needs ViewPosition and DistanceSourceToPatient)"}
        spacing = (radiograph.spacing_mm[0] / factor, radiograph.spacing_mm[1] / factor)
        views[radiograph.view] = _View(image, open_field, spacing, report)
    ap, lat = views["coronal"], views["sagittal"]
    if si_offset_mm is None:
        known = all(r.provenance.get("magnification", {}).get("source", "default") != "default"
                    or r.provenance.get("spacing_mm", {}).get("source") in ("user", "tag PixelSpacing")
                    for r in (coronal, sagittal))
        try:
            alignment = estimate_si_alignment(row_profile(ap.image, ap.field, ap.spacing[0]),
                                              row_profile(lat.image, lat.field, lat.spacing[0]),
                                              max_scale_change=0.0 if known else SCALE_SEARCH)
        except ValueError as exc:
            raise InputError(sagittal.path, f"cannot be aligned with the AP image {coronal.path}: {exc}") from None
    else:
        alignment = SIAlignment(float(si_offset_mm), 1.0, None, "user")
    region = _check_region(region, ap, lat, alignment, coronal.path, sagittal.path)
    size_x, size_y, size_z = img_size
    spacing = (region.bottom_mm - region.top_mm) / size_z
    u = region.top_mm + (np.arange(size_z) + 0.5) * spacing
    images = {
        "coronal": _resample(ap, u, size_x, spacing),
        "sagittal": _resample(lat, alignment.scale * u + alignment.offset_mm, size_y, spacing * alignment.scale),
    }
    intensity = "percentile window"
    if reference_quantiles is not None:
        images = {view: match_quantiles(image, reference_quantiles) for view, image in images.items()}
        intensity += " + histogram matching to the model's reference DRR quantiles"
    model = {view: np.ascontiguousarray(display_to_image(image, view), dtype=np.float32)
             for view, image in images.items()}
    grid = ModelGrid.centered((0.0, 0.0, 0.0), spacing * max(img_size), img_size)
    report = {
        "views": {r.view: {"file": r.path, "geometry": r.provenance, **views[r.view].report}
                  for r in (coronal, sagittal)},
        "alignment": alignment.to_dict(),
        "region_mm": {"top": round(float(region.top_mm), 3), "bottom": round(float(region.bottom_mm), 3),
                      "frame": "mid-plane mm from the AP image's top edge"},
        "grid_spacing_mm": round(float(spacing), 6),
        "intensity": intensity,
    }
    return PreparedPair(model["coronal"], model["sagittal"], grid, region, alignment, report)


def _spine_depth_factor(radiograph: ClinicalRadiograph, other_spine_mm: float) -> float:
    """:func:`~.depth.depth_factor` of a view, or 1 when its view position or source distance is unknown."""
    position = radiograph.provenance.get("view_position", {}).get("value")
    distance = radiograph.provenance.get("source_to_patient_mm", {}).get("value")
    if position not in SOURCE_SIDE or distance is None:
        return 1.0
    try:
        return depth_factor(position, float(distance), other_spine_mm)
    except ValueError as exc:
        raise InputError(radiograph.path, str(exc)) from None


def _field_rows_mm(view: _View) -> tuple[float, float]:
    rows = np.flatnonzero(view.field.any(axis=1))
    return rows[0] * view.spacing[0], (rows[-1] + 1) * view.spacing[0]


def _check_region(region: Region | None, ap: _View, lat: _View, alignment: SIAlignment, ap_path: str,
                  lat_path: str) -> Region:
    """The region (default: the SI overlap of both open fields), checked to lie inside both."""
    ap_top, ap_bottom = _field_rows_mm(ap)
    lat_top, lat_bottom = ((v - alignment.offset_mm) / alignment.scale for v in _field_rows_mm(lat))
    top, bottom = max(ap_top, lat_top), min(ap_bottom, lat_bottom)
    if bottom - top < MIN_OVERLAP_MM:
        raise InputError(lat_path, f"overlaps the AP image {ap_path} by {max(bottom - top, 0.0):.0f} mm along the "
                                   f"superior-inferior axis (at SI offset {alignment.offset_mm:.0f} mm); at least "
                                   f"{MIN_OVERLAP_MM:g} mm are needed")
    if region is None:
        return Region(float(top), float(bottom))
    if region.top_mm < top - 1.0 or region.bottom_mm > bottom + 1.0:
        raise InputError("--region", f"{region.top_mm:g}-{region.bottom_mm:g} mm leaves the part both views show "
                                     f"({top:.0f}-{bottom:.0f} mm from the AP image's top edge)")
    return region


def _resample(view: _View, rows_mm: np.ndarray, n_cols: int, col_spacing_mm: float) -> np.ndarray:
    """Sample a view at SI positions ``rows_mm`` and ``n_cols`` columns centred on the image centre.

    Returns:
        ``(len(rows_mm), n_cols)`` display image; outside the open field 0.
    """
    row_px, col_px = view.spacing
    width_mm = view.image.shape[1] * col_px
    cols_mm = width_mm / 2.0 + (np.arange(n_cols) - (n_cols - 1) / 2.0) * col_spacing_mm
    step = float(rows_mm[1] - rows_mm[0]) if rows_mm.size > 1 else col_spacing_mm
    sigma = [max(0.0, 0.5 * (step / row_px - 1.0)), max(0.0, 0.5 * (col_spacing_mm / col_px - 1.0))]
    smooth = ndimage.gaussian_filter(view.image * view.field, sigma) if max(sigma) > 0 else view.image
    rr, cc = np.meshgrid(rows_mm / row_px - 0.5, cols_mm / col_px - 0.5, indexing="ij")
    sampled = ndimage.map_coordinates(smooth, [rr, cc], order=1, mode="constant", cval=0.0)
    inside = ndimage.map_coordinates(view.field.astype(np.float32), [rr, cc], order=0, mode="constant", cval=0.0)
    return (sampled * inside).astype(np.float32)
