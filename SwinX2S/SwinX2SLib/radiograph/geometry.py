"""Reading a clinical radiograph with its geometry, and recording where every number came from.

:func:`read_radiograph` returns a :class:`ClinicalRadiograph`: pixels in the display orientation of
:mod:`SwinX2SLib.conventions` with attenuating structures bright, the pixel spacing in the patient's mid-plane
(the plane through the isocentre, perpendicular to the central ray) and a provenance record
``{quantity: {"value": ..., "source": "tag <Keyword>" | "user" | "default" | "derived"}}``.

Spacing in the mid-plane (magnification corrected), first rule that applies:

1. ``pixel_spacing_mm`` given by the user (taken as mid-plane spacing);
2. ``PixelSpacing`` when the file also has ``ImagerPixelSpacing`` with a different value, or has only
   ``PixelSpacing`` (DICOM DX: the spacing calibrated in the patient);
3. ``ImagerPixelSpacing`` (at the detector) divided by the magnification: the user's, else
   ``EstimatedRadiographicMagnificationFactor``, else ``DistanceSourceToDetector / DistanceSourceToPatient``,
   else :data:`DEFAULT_MAGNIFICATION` with a warning;
4. nothing: :data:`SwinX2SLib.io.DEFAULT_XRAY_SPACING_MM` / :data:`DEFAULT_MAGNIFICATION`, with a warning.

Intensities: the modality LUT (``RescaleSlope`` / ``RescaleIntercept``) and the VOI LUT (``WindowCenter`` /
``WindowWidth`` or a ``VOILUTSequence``) are applied as the file asks; ``MONOCHROME1`` images are negated so that
attenuating structures are bright. Files that are not DICOM (PNG, NIfTI, ...) go through
:func:`SwinX2SLib.io.read_xray` and are taken to be in display orientation.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from ..conventions import DISPLAY_PATIENT_ORIENTATION, View
from ..errors import InputError
from .orientation import check_view_position, orient_to_display

__all__ = ["DEFAULT_MAGNIFICATION", "ClinicalRadiograph", "read_radiograph"]

DEFAULT_MAGNIFICATION = 1.15
"""Magnification assumed when a file gives the detector spacing but no geometry (an assumption, not a
measurement: a patient's mid-plane about 150 mm in front of the detector at 1150 mm source-to-detector distance)."""


@dataclass(frozen=True)
class ClinicalRadiograph:
    """A radiograph ready for the preprocessing of :mod:`SwinX2SLib.radiograph.preprocess`.

    Attributes:
        pixels: float32 ``(rows, cols)`` in display orientation (rows towards the feet; AP: columns towards the
            patient's left; lateral: columns towards posterior); attenuating structures bright.
        spacing_mm: ``(row, col)`` pixel spacing in the patient's mid-plane.
        view: ``"coronal"`` (AP/PA) or ``"sagittal"`` (lateral).
        path: the file.
        provenance: per quantity its value and source (see the module docstring).
        identity: what identifies the exposure (``SOPInstanceUID`` or the file path), to catch a file given twice.
    """

    pixels: np.ndarray
    spacing_mm: tuple[float, float]
    view: View
    path: str
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    identity: str = ""


def read_radiograph(path: str | PathLike[str], view: View, pixel_spacing_mm: float | None = None,
                    magnification: float | None = None) -> ClinicalRadiograph:
    """Read an AP (``view="coronal"``) or lateral (``view="sagittal"``) radiograph with its geometry.

    Args:
        path: DICOM DX/CR file, or any image :func:`SwinX2SLib.io.read_xray` reads.
        view: which image of the pair the file is.
        pixel_spacing_mm: mid-plane pixel spacing (mm) overriding the file.
        magnification: overrides the file's magnification (detector spacing / mid-plane spacing).

    Returns:
        The :class:`ClinicalRadiograph`.

    Raises:
        InputError: unreadable file, a view that contradicts ``view``, non-positive spacing or geometry.
    """
    from ..io import _is_dicom

    path = Path(path)
    if magnification is not None and not magnification >= 1.0:
        raise InputError("--magnification", f"must be at least 1 (the detector is behind the patient), got "
                                            f"{magnification}")
    if path.is_file() and path.suffix.lower() not in (".nii", ".gz", ".nrrd", ".mha", ".mhd") and _is_dicom(path):
        return _read_dicom(path, view, pixel_spacing_mm, magnification)
    return _read_other(path, view, pixel_spacing_mm, magnification)


def _read_other(path: Path, view: View, pixel_spacing_mm: float | None,
                magnification: float | None) -> ClinicalRadiograph:
    """A non-DICOM image: spacing from the file (taken as mid-plane unless ``magnification`` is given)."""
    from ..io import read_xray

    xray = read_xray(path, pixel_spacing_mm)
    source = {"file": "file header", "argument": "user", "default": "default"}[xray.spacing_source]
    spacing = xray.spacing_mm
    provenance: dict[str, dict[str, Any]] = {
        "orientation": {"value": list(DISPLAY_PATIENT_ORIENTATION[view]), "source": "default"},
    }
    if magnification is not None and xray.spacing_source != "argument":
        spacing = (spacing[0] / magnification, spacing[1] / magnification)
        provenance["magnification"] = {"value": magnification, "source": "user"}
    provenance["spacing_mm"] = {"value": list(spacing), "source": source}
    return ClinicalRadiograph(xray.pixels, spacing, view, str(path), provenance, str(path.resolve()))


def _read_dicom(path: Path, view: View, pixel_spacing_mm: float | None,
                magnification: float | None) -> ClinicalRadiograph:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    from ..io import _check_values, read_dicom_radiograph

    ds, stored = read_dicom_radiograph(path)
    provenance: dict[str, dict[str, Any]] = {}
    position = check_view_position(str(path), ds.get("ViewPosition"), view)
    provenance["view_position"] = {"value": position, "source": "tag ViewPosition" if position else "default"}
    pixels = apply_modality_lut(stored, ds).astype(np.float64)
    provenance["rescale"] = {"value": [float(ds.get("RescaleSlope", 1.0)), float(ds.get("RescaleIntercept", 0.0))],
                             "source": "tag RescaleSlope/RescaleIntercept" if "RescaleSlope" in ds else "default"}
    if "VOILUTSequence" in ds or "WindowCenter" in ds:
        pixels = apply_voi_lut(pixels, ds).astype(np.float64)
        provenance["voi"] = {"value": "applied",
                             "source": "tag VOILUTSequence" if "VOILUTSequence" in ds else "tag WindowCenter/Width"}
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise InputError(path, f"PhotometricInterpretation {photometric} is not a grey-scale radiograph")
    if photometric == "MONOCHROME1":
        pixels = -pixels  # high values are dark: negate so that bone is bright
    provenance["photometric"] = {"value": photometric, "source": "tag PhotometricInterpretation"
                                 if "PhotometricInterpretation" in ds else "default"}
    orientation = ds.get("PatientOrientation")
    display, provenance["orientation"] = orient_to_display(str(path), pixels, list(orientation or []), view)
    display = np.ascontiguousarray(display, dtype=np.float32)
    _check_values(path, display, "image")
    if float(display.max()) == float(display.min()):
        raise InputError(path, "the image is constant (no contrast): not a radiograph")
    spacing_mm, spacing_provenance = _midplane_spacing(path, ds, pixel_spacing_mm, magnification)
    if orientation and str(orientation[0]).strip().upper()[:1] in "HF":
        spacing_mm = (spacing_mm[1], spacing_mm[0])  # the image was transposed into display orientation
    provenance.update(spacing_provenance)
    provenance["spacing_mm"]["value"] = list(spacing_mm)
    identity = str(ds.get("SOPInstanceUID", "")) or str(path.resolve())
    return ClinicalRadiograph(display, spacing_mm, view, str(path), provenance, identity)


def _tag_pair(path: Path, ds: Any, keyword: str) -> tuple[float, float] | None:
    value = ds.get(keyword)
    if value is None:
        return None
    try:
        values = [float(v) for v in value]
    except TypeError:  # a single number
        values = [float(value)]
    if len(values) != 2 or min(values) <= 0:
        raise InputError(path, f"{keyword} must be two positive numbers (mm), got {list(value)}")
    return values[0], values[1]


def _tag_number(path: Path, ds: Any, keyword: str) -> float | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    if not float(value) > 0:
        raise InputError(path, f"{keyword} must be positive, got {value}")
    return float(value)


def _midplane_spacing(path: Path, ds: Any, pixel_spacing_mm: float | None, magnification: float | None
                      ) -> tuple[tuple[float, float], dict[str, dict[str, Any]]]:
    """``((row, col) spacing in the mid-plane as stored, provenance)`` following the module docstring's rules."""
    from ..io import DEFAULT_XRAY_SPACING_MM

    if pixel_spacing_mm is not None:
        if not pixel_spacing_mm > 0:
            raise InputError("--pixel-spacing", f"must be positive, got {pixel_spacing_mm}")
        return (pixel_spacing_mm,) * 2, {"spacing_mm": {"value": None, "source": "user"}}
    imager = _tag_pair(path, ds, "ImagerPixelSpacing")
    calibrated = _tag_pair(path, ds, "PixelSpacing")
    if calibrated is not None and (imager is None or not np.allclose(calibrated, imager)):
        return calibrated, {"spacing_mm": {"value": None, "source": "tag PixelSpacing"}}
    provenance: dict[str, dict[str, Any]] = {}
    if imager is None:
        imager = (DEFAULT_XRAY_SPACING_MM,) * 2
        provenance["detector_spacing_mm"] = {"value": list(imager), "source": "default"}
    else:
        provenance["detector_spacing_mm"] = {"value": list(imager), "source": "tag ImagerPixelSpacing"}
    sid = _tag_number(path, ds, "DistanceSourceToDetector")
    sod = _tag_number(path, ds, "DistanceSourceToPatient")
    factor = _tag_number(path, ds, "EstimatedRadiographicMagnificationFactor")
    for keyword, tag, value in (("source_to_detector_mm", "DistanceSourceToDetector", sid),
                                ("source_to_patient_mm", "DistanceSourceToPatient", sod)):
        if value is not None:
            provenance[keyword] = {"value": value, "source": f"tag {tag}"}
    if magnification is not None:
        provenance["magnification"] = {"value": magnification, "source": "user"}
    elif factor is not None:
        provenance["magnification"] = {"value": factor, "source": "tag EstimatedRadiographicMagnificationFactor"}
    elif sid is not None and sod is not None:
        if not sod < sid:
            raise InputError(path, f"DistanceSourceToPatient ({sod} mm) must be shorter than "
                                   f"DistanceSourceToDetector ({sid} mm)")
        provenance["magnification"] = {"value": sid / sod,
                                       "source": "derived DistanceSourceToDetector/DistanceSourceToPatient"}
    else:
        provenance["magnification"] = {"value": DEFAULT_MAGNIFICATION, "source": "default"}
    missing = [name for name, entry in (("ImagerPixelSpacing", provenance["detector_spacing_mm"]),
                                        ("magnification", provenance["magnification"]))
               if entry["source"] == "default"]
    if missing:
        warnings.warn(f"{path}: no {' and no '.join(missing)} in the file; assuming detector spacing "
                      f"{imager[0]:g} mm and magnification {provenance['magnification']['value']:g} "
                      "(use --pixel-spacing for the spacing in the patient)", UserWarning, stacklevel=4)
    m = float(provenance["magnification"]["value"])
    return (imager[0] / m, imager[1] / m), {**provenance, "spacing_mm": {"value": None, "source": "derived"}}
