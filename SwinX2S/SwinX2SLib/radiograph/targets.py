"""The model-independent targets of the radiograph pipeline, measured on a simulated clinical pair.

:func:`measure_simulated_pair` simulates an AP (or PA) and a lateral radiograph of a CT
(:mod:`~SwinX2SLib.radiograph.simulate`), writes them as DICOM DX, reads and prepares them like
``swinx2s reconstruct`` does, and compares each prepared view with the ideal model input
(:func:`ideal_model_inputs`: the published parallel DRR of the whole CT on the model pixels of the same field of
view) and the estimated SI offset with the one the simulation's geometry implies. Used by
``Testing/test_radiograph.py`` and ``benchmarks/bench_radiograph.py``.
"""

from __future__ import annotations

import warnings
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ..conventions import VIEWS, ModelGrid, image_to_display
from .alignment import estimate_si_alignment, row_profile
from .geometry import read_radiograph
from .preprocess import PreparedPair, Region, prepare_radiograph_pair
from .simulate import Acquisition, simulate_radiograph, write_dx

__all__ = ["ideal_model_inputs", "measure_simulated_pair"]


def ideal_model_inputs(volume_xyz: np.ndarray, grid: ModelGrid, fov_mm: float, shape: tuple[int, int, int]
                       ) -> dict[str, np.ndarray]:
    """The published parallel DRR pair of a CT on the model pixels of a field of view centred on the grid centre.

    The whole CT is integrated along each beam (as in the published pipeline, whose field-of-view cube holds the
    whole body); the images are then sampled (bilinear) at ``fov_mm / Z`` mm pixels, ``X`` (``Y``) by ``Z``.

    Returns:
        ``{"coronal": (X, Z), "sagittal": (Y, Z)}`` float32 in [0, 1], model image convention.
    """
    from ..drr import render_from_model_grid

    full = render_from_model_grid(volume_xyz, grid, "published")
    step = fov_mm / shape[2] / grid.spacing
    out = {}
    for view, image, n in (("coronal", full.coronal[0], shape[0]), ("sagittal", full.sagittal[0], shape[1])):
        centre = (np.array(image.shape) - 1.0) / 2.0
        first = centre[0] + (np.arange(n) - (n - 1) / 2.0) * step
        second = centre[1] + (np.arange(shape[2]) - (shape[2] - 1) / 2.0) * step
        out[view] = ndimage.map_coordinates(image, np.meshgrid(first, second, indexing="ij"), order=1).astype(
            np.float32)
    return out


def measure_simulated_pair(volume_xyz: np.ndarray, grid: ModelGrid, ap: Acquisition, lateral: Acquisition,
                           folder: str | PathLike[str], fov_mm: float, shape: tuple[int, int, int],
                           seed: int = 0, reference_quantiles: list[float] | None = None,
                           ideal: dict[str, np.ndarray] | None = None) -> tuple[dict[str, Any], PreparedPair]:
    """Simulate, write, read and prepare a pair; measure it against the ideal model input.

    The region is ``fov_mm`` centred on the AP image's centre row (where the isocentre projects).

    Args:
        volume_xyz, grid: the CT (HU) on its model grid; its centre is the isocentre.
        ap, lateral: the two acquisitions (``lateral.si_offset_mm`` is the patient's move between them).
        folder: where the two DICOM files are written.
        fov_mm: SI extent of the model's field of view; shape: the model grid ``(X, Y, Z)``.
        seed: noise seed of the AP image (the lateral uses ``seed + 1``).
        reference_quantiles: passed to :func:`~.preprocess.prepare_radiograph_pair`.
        ideal: :func:`ideal_model_inputs` when already computed.

    Returns:
        ``(measurements, prepared pair)``: ``pearson_r`` per view, ``si_offset_error_mm``, ``si_scale`` per view
        (the prepared image's SI scale relative to the ideal one, fitted on row profiles), ``model_pixel_mm``.

    Raises:
        UserWarning as an error: the files carry complete geometry, so nothing may have to be assumed.
    """
    folder = Path(folder)
    paths = [write_dx(simulate_radiograph(volume_xyz, grid, acq, seed=seed + i), folder / f"{acq.view}.dcm")
             for i, acq in enumerate((ap, lateral))]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        radiographs = [read_radiograph(path, view) for path, view in zip(paths, ("coronal", "sagittal"), strict=True)]
    first = prepare_radiograph_pair(*radiographs, shape, reference_quantiles=reference_quantiles)
    heights = {r.view: r.pixels.shape[0] * r.spacing_mm[0] / first.report["views"][r.view]["spine_depth_factor"][
        "value"] for r in radiographs}
    region = Region(heights["coronal"] / 2.0 - fov_mm / 2.0, heights["coronal"] / 2.0 + fov_mm / 2.0)
    pair = prepare_radiograph_pair(*radiographs, shape, region=region, reference_quantiles=reference_quantiles)
    ideal = ideal if ideal is not None else ideal_model_inputs(volume_xyz, grid, fov_mm, shape)
    # each image's centre row shows its isocentre; the lateral's lies si_offset_mm further towards the head
    expected = heights["sagittal"] / 2.0 - heights["coronal"] / 2.0 + lateral.si_offset_mm - ap.si_offset_mm
    pixel = fov_mm / shape[2]
    measurements = {
        "pearson_r": {view: round(float(np.corrcoef(getattr(pair, view).ravel(), ideal[view].ravel())[0, 1]), 4)
                      for view in VIEWS},
        "si_offset_error_mm": round(pair.alignment.offset_mm - expected, 2),
        "si_scale": {view: round(_si_scale(getattr(pair, view), ideal[view], view, pixel), 4) for view in VIEWS},
        "model_pixel_mm": pixel,
    }
    return measurements, pair


def _si_scale(prepared: np.ndarray, ideal: np.ndarray, view: str, pixel_mm: float) -> float:
    """SI scale of a prepared model image relative to the ideal one (1 = same size), fitted on row profiles."""
    profiles = []
    for image in (ideal, prepared):
        display = image_to_display(image, view)
        profiles.append(row_profile(display, np.ones(display.shape, dtype=bool), pixel_mm))
    return estimate_si_alignment(*profiles, max_offset_mm=0.1 * profiles[0][0].size, max_scale_change=0.06).scale
