"""Magnification at the depth of the spine: what one view tells the other about its scale.

A radiograph is a perspective projection: anatomy nearer the source is magnified more than anatomy nearer the
detector. :mod:`.geometry` scales each image to the patient's mid-plane (the isocentre plane), but the bones the
network looks for are not in it: the spine lies 50-100 mm behind the mid-plane of an AP image, so an AP image
at 950 mm source-to-patient distance shows it about 8 % smaller than the mid-plane spacing says, a PA image
about 8 % larger. The other view shows where the spine is: its depth in the AP image is its column position in
the lateral image, and the other way round.

:func:`spine_offset_mm` finds the spine as the brightest column band of a windowed display image;
:func:`depth_factor` turns the other view's spine offset into the ratio ``k`` of the magnification at that depth
to the mid-plane magnification (``SOD / (SOD ± depth)``, the sign from the source side of the ``ViewPosition`` and
the display column direction of :data:`~SwinX2SLib.conventions.DISPLAY_PATIENT_ORIENTATION`). Dividing the
mid-plane spacing by ``k`` gives the spacing at the spine's depth.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..conventions import DISPLAY_PATIENT_ORIENTATION

__all__ = ["SOURCE_SIDE", "SPINE_BAND_MM", "depth_factor", "spine_offset_mm"]

SOURCE_SIDE = {"AP": "A", "PA": "P", "LL": "R", "RL": "L"}
"""The patient side the source is on for each DICOM ``ViewPosition`` (LL: left side on the detector)."""
SPINE_BAND_MM = 30.0
"""Width of the column band whose mean brightness locates the spine (about a vertebral body)."""
_OPPOSITE = {"A": "P", "P": "A", "L": "R", "R": "L"}
_OTHER_VIEW = {"A": "sagittal", "P": "sagittal", "L": "coronal", "R": "coronal"}


def spine_offset_mm(image: np.ndarray, field: np.ndarray, col_spacing_mm: float) -> float:
    """Position of the brightest :data:`SPINE_BAND_MM` column band, in mm from the image's centre column.

    Args:
        image: ``(rows, cols)`` windowed display image; field: its open field; col_spacing_mm: column spacing.

    Returns:
        Signed distance (mm, along increasing display columns) of the band's centre from the image centre.
    """
    counts = field.sum(axis=0)
    means = np.where(counts > 0, (image * field).sum(axis=0) / np.maximum(counts, 1), 0.0)
    smooth = ndimage.uniform_filter1d(means, max(1, round(SPINE_BAND_MM / col_spacing_mm)), mode="constant")
    return (float(np.argmax(smooth)) - (image.shape[1] - 1) / 2.0) * col_spacing_mm


def depth_factor(view_position: str, source_to_patient_mm: float, other_offset_mm: float) -> float:
    """Magnification at the spine's depth relative to the mid-plane, ``k = SOD / (SOD ± depth)``.

    Args:
        view_position: ``"AP"``, ``"PA"``, ``"LL"`` or ``"RL"`` of the image being scaled.
        source_to_patient_mm: its source-to-isocentre distance.
        other_offset_mm: :func:`spine_offset_mm` of the *other* view (its columns run along this view's beam).

    Returns:
        ``k`` (< 1 when the spine is nearer the detector than the mid-plane).
    """
    source = SOURCE_SIDE[view_position]
    column_direction = DISPLAY_PATIENT_ORIENTATION[_OTHER_VIEW[source]][0]
    # a positive offset lies towards column_direction: away from the source when that is the side opposite it
    sign = 1.0 if column_direction == _OPPOSITE[source] else -1.0
    distance = source_to_patient_mm + sign * other_offset_mm
    if not distance > 0.1 * source_to_patient_mm:
        raise ValueError(f"spine {other_offset_mm:.0f} mm from the mid-plane is too close to the source "
                         f"({source_to_patient_mm:.0f} mm away)")
    return source_to_patient_mm / distance
