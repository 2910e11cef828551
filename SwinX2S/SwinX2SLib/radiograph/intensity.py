"""From a processed clinical radiograph to the intensities of the training DRRs.

Method (all steps on the display-oriented image of :class:`~SwinX2SLib.radiograph.geometry.ClinicalRadiograph`):

1. **Collimation** (:func:`collimation_mask`): border rows and columns whose values barely vary (shutters, the
   unexposed rim) are cut, walking in from each side while a line's spread stays below
   :data:`FLAT_LINE_FRACTION` of the image's 1-99 percentile range; flat lines as dark as air
   (:data:`DARK_FRACTION`) are kept: air beside the patient is image content (0 in a DRR as well).
2. **Burned-in markers and text** (:func:`marker_mask`): connected groups of pixels at exactly the open field's
   extreme value (text is burned in at the brightest or darkest stored value), between :data:`MIN_MARKER_PIXELS`
   and :data:`MAX_MARKER_FRACTION` of the open field each, are replaced by the nearest other value.
3. **Window** (:func:`percentile_window`): the open field's ``(0.5, 99.5)`` percentiles map to ``(0, 1)``;
   everything outside the open field becomes 0 (air, as outside the body in a DRR).
4. **Histogram matching** (:func:`match_quantiles`), when reference statistics are known: the image's
   :data:`N_QUANTILES` quantiles are mapped piecewise-linearly onto the reference DRR quantiles
   (:func:`reference_quantiles` of the training images; a model card carries them as
   ``preprocessing["reference_quantiles"]``). It undoes monotone vendor curves (log/linear, gamma, LUTs).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = [
    "DARK_FRACTION",
    "FLAT_LINE_FRACTION",
    "MAX_MARKER_FRACTION",
    "MIN_MARKER_PIXELS",
    "N_QUANTILES",
    "collimation_mask",
    "fill_masked",
    "marker_mask",
    "match_quantiles",
    "percentile_window",
    "reference_quantiles",
]

FLAT_LINE_FRACTION = 0.02
"""A border line whose 5-95 percentile spread is below this fraction of the image's range is collimated ..."""
DARK_FRACTION = 0.1
"""... unless its median lies in the darkest tenth of that range: a flat dark line is air, part of the image."""
MAX_MARKER_FRACTION = 0.01
"""Largest marker (connected pixels at the extreme value) as a fraction of the open field."""
MIN_MARKER_PIXELS = 6
"""Smallest marker: a stroke of text is a few pixels wide; single saturated pixels are noise, not markers."""
N_QUANTILES = 101
"""Quantiles (0, 1, ..., 100 %) that describe an intensity distribution."""


def collimation_mask(pixels: np.ndarray) -> np.ndarray:
    """The open field: ``True`` inside the rectangle left when flat border lines are cut (``(rows, cols)`` bool)."""
    low, high = np.percentile(pixels, [1.0, 99.0])
    tolerance = FLAT_LINE_FRACTION * max(float(high - low), 1e-12)
    dark = low + DARK_FRACTION * (high - low)
    rows, cols = pixels.shape

    def flat(line: np.ndarray) -> bool:
        spread = np.percentile(line, [5.0, 50.0, 95.0])
        return float(spread[2] - spread[0]) < tolerance and spread[1] > dark

    top, bottom, left, right = 0, rows, 0, cols
    while top < bottom - 1 and flat(pixels[top, left:right]):
        top += 1
    while bottom - 1 > top and flat(pixels[bottom - 1, left:right]):
        bottom -= 1
    while left < right - 1 and flat(pixels[top:bottom, left]):
        left += 1
    while right - 1 > left and flat(pixels[top:bottom, right - 1]):
        right -= 1
    mask = np.zeros(pixels.shape, dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def marker_mask(pixels: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Burned-in markers inside the open ``field``: blobs of :data:`MIN_MARKER_PIXELS` or more pixels at exactly
    its brightest or darkest value, each at most :data:`MAX_MARKER_FRACTION` of the field, grown by one pixel."""
    values = pixels[field]
    markers = np.zeros(pixels.shape, dtype=bool)
    limit = MAX_MARKER_FRACTION * field.sum()
    for extreme in (pixels == values.max(), pixels == values.min()):
        labels, count = ndimage.label(extreme & field)
        if count == 0:
            continue
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        keep = np.flatnonzero((sizes >= MIN_MARKER_PIXELS) & (sizes <= limit))
        markers |= np.isin(labels, keep[keep > 0])
    return ndimage.binary_dilation(markers, iterations=1) & field


def fill_masked(pixels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Replace the pixels outside ``keep`` by the nearest kept pixel's value."""
    if keep.all():
        return pixels.copy()
    _, (rows, cols) = ndimage.distance_transform_edt(~keep, return_indices=True)
    return pixels[rows, cols]


def percentile_window(pixels: np.ndarray, field: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5)
                      ) -> np.ndarray:
    """Map the open field's ``percentiles`` to 0 and 1 (clipped); pixels outside ``field`` become 0."""
    low, high = np.percentile(pixels[field], percentiles)
    image = np.clip((pixels - low) / max(float(high - low), 1e-12), 0.0, 1.0).astype(np.float32)
    image[~field] = 0.0
    return image


def reference_quantiles(images: np.ndarray | list[np.ndarray]) -> list[float]:
    """The :data:`N_QUANTILES` quantiles of the pixels of training DRRs (any shapes), for :func:`match_quantiles`."""
    values = np.concatenate([np.asarray(image, dtype=np.float64).ravel() for image in images])
    return [round(float(q), 5) for q in np.quantile(values, np.linspace(0.0, 1.0, N_QUANTILES))]


def match_quantiles(image: np.ndarray, reference: list[float] | np.ndarray) -> np.ndarray:
    """Map ``image`` so that its quantiles become ``reference`` (piecewise linear between quantiles)."""
    reference = np.asarray(reference, dtype=np.float64)
    if reference.ndim != 1 or reference.size < 2 or np.any(np.diff(reference) < 0):
        raise ValueError("reference quantiles must be a non-decreasing list of at least two values")
    own = np.quantile(image, np.linspace(0.0, 1.0, reference.size))
    own = own + np.arange(own.size) * 1e-9  # strictly increasing for interpolation over flat stretches
    return np.interp(image, own, reference).astype(np.float32)
