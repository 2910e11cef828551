"""Which view a radiograph is and how it is stored: DICOM ``ViewPosition`` and ``PatientOrientation``.

The axis conventions themselves (display orientation, the transposes and flips) live in
:mod:`SwinX2SLib.conventions`; this module reads the tags, checks them against the view the user gave the file
as, and says where the orientation came from.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..conventions import DISPLAY_PATIENT_ORIENTATION, View, patient_orientation_to_display
from ..errors import InputError

__all__ = ["FRONTAL_POSITIONS", "LATERAL_POSITIONS", "check_view_position", "orient_to_display"]

FRONTAL_POSITIONS = ("AP", "PA")
"""``ViewPosition`` values of a coronal (frontal) image."""
LATERAL_POSITIONS = ("LL", "RL", "LAT", "LATERAL")
"""``ViewPosition`` values of a sagittal (lateral) image."""

_OPTION = {"coronal": "--coronal (AP)", "sagittal": "--sagittal (lateral)"}


def check_view_position(path: str, view_position: str | None, view: View) -> str | None:
    """Check a DICOM ``ViewPosition`` against the view the file was given as.

    Args:
        path: the file (for messages).
        view_position: the tag's value, or ``None`` / empty when absent.
        view: ``"coronal"`` or ``"sagittal"``.

    Returns:
        The normalised view position (upper case) or ``None`` when the file has none.

    Raises:
        InputError: a lateral given as the AP image or the other way round, or an oblique / unknown position.
    """
    if not view_position or not str(view_position).strip():
        return None
    position = str(view_position).strip().upper()
    expected, other = (FRONTAL_POSITIONS, LATERAL_POSITIONS) if view == "coronal" else (LATERAL_POSITIONS,
                                                                                          FRONTAL_POSITIONS)
    if position in other:
        kind = "a lateral" if view == "coronal" else "a frontal (AP/PA)"
        raise InputError(path, f"ViewPosition is {position}, {kind} view, but the file was given as {_OPTION[view]}")
    if position not in expected:
        raise InputError(path, f"ViewPosition {position} is not supported (need AP or PA for {_OPTION['coronal']}, "
                               f"LL or RL for {_OPTION['sagittal']}; oblique views cannot be used)")
    return position


def orient_to_display(path: str, pixels: np.ndarray, patient_orientation: list[str] | None,
                      view: View) -> tuple[np.ndarray, dict]:
    """Turn stored pixels into the display orientation of :mod:`SwinX2SLib.conventions`.

    Args:
        path: the file (for messages).
        pixels: ``(rows, cols)`` as stored.
        patient_orientation: the DICOM ``PatientOrientation`` pair, or ``None`` when the file has none.
        view: ``"coronal"`` or ``"sagittal"``.

    Returns:
        ``(display pixels, provenance)``; the provenance is ``{"value": [col, row], "source": "tag
        PatientOrientation" | "default"}``. A file without the tag is taken to be in display orientation, with a
        warning naming what was assumed.

    Raises:
        InputError: an orientation that does not belong to the view (e.g. anterior/posterior in an AP image).
    """
    if not patient_orientation:
        target = DISPLAY_PATIENT_ORIENTATION[view]
        shown = "\\".join(target)
        warnings.warn(f"{path}: no PatientOrientation; assuming the display orientation {shown} (superior at the top, "
                      f"{'patient right on the left' if view == 'coronal' else 'anterior on the left'})",
                      UserWarning, stacklevel=3)
        return np.asarray(pixels), {"value": list(target), "source": "default"}
    try:
        display = patient_orientation_to_display(pixels, patient_orientation, view)
    except ValueError as exc:
        raise InputError(path, f"{exc} but the file was given as {_OPTION[view]}") from None
    return display, {"value": [str(v) for v in patient_orientation], "source": "tag PatientOrientation"}
