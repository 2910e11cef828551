"""A clinical radiograph simulator: perspective DX images of a CT at clinical geometry, as a vendor stores them.

The simulator exists to test the radiograph preprocessing (:mod:`SwinX2SLib.radiograph`) against a known truth:
from a CT it renders what an X-ray room would store, with everything that separates such a file from the
published parallel DRR, and writes it as DICOM DX with the geometry tags the preprocessing reads.

Acquisition (:class:`Acquisition`)
----------------------------------
A point source at ``sod_mm`` from the isocentre (the CT grid's centre, moved by ``si_offset_mm`` towards the head
when the patient moved between the two exposures), a flat detector of ``detector_mm`` at ``sid_mm`` from the source,
perpendicular to the central ray. ``view_position`` places the source: ``AP`` anterior, ``PA`` posterior, ``LL``
(left side on the detector) on the patient's right, ``RL`` on the left. The detector pixels are laid out in the
display orientation of :mod:`SwinX2SLib.conventions` (rows towards the feet, AP columns towards the patient's
left, lateral columns towards posterior) for every view position; the stored file is then turned into
``patient_orientation`` with :func:`~SwinX2SLib.conventions.display_to_patient_orientation`.

Physics and processing, in order
--------------------------------
1. Line integral of the attenuation along each ray (:func:`SwinX2SLib.drr.point_source_integrals`).
   ``attenuation="published"`` uses the training DRR's density ``max(HU, 0)`` scaled by
   :data:`MU_WATER_PER_MM` / 1000 (so the log image is exactly the published DRR's line integral, and the
   preprocessing can be measured against it); ``"water"`` uses ``μ_water (1 + HU / 1000)`` (soft tissue and
   fat attenuate too: a domain gap the preprocessing does not remove, see ``docs/conventions.md``).
2. Primary transmission ``heel · exp(-∫μ)`` (anode heel ramp along the superior-inferior axis), plus scatter
   haze (:func:`~SwinX2SLib.radiograph.effects.scatter_haze`), Poisson counts of ``photons_per_mm2`` in the open beam.
3. Vendor processing: ``-ln(counts / photons)``, percentile window, unsharp masking, gamma, 12-bit quantisation.
4. Collimation: a ``collimation_mm`` border painted with the brightest value (an electronic shutter), and a
   burned-in side marker (the letter of the patient side at the image's top right) at the brightest value.
5. Storage: ``MONOCHROME1`` files store ``4095 - value``; pixel values carry ``RescaleIntercept`` -1024.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Literal

import numpy as np

from ..conventions import DISPLAY_PATIENT_ORIENTATION, ModelGrid, display_to_patient_orientation
from . import effects

__all__ = [
    "MU_WATER_PER_MM",
    "VIEW_POSITIONS",
    "Acquisition",
    "SimulatedRadiograph",
    "simulate_radiograph",
    "write_dx",
]

MU_WATER_PER_MM = 0.0193
"""Linear attenuation of water (1/mm, about 70 keV): 1000 HU·mm of line integral attenuate by ``e^-0.0193``."""

VIEW_POSITIONS: dict[str, str] = {"AP": "coronal", "PA": "coronal", "LL": "sagittal", "RL": "sagittal"}
"""DICOM ``ViewPosition`` → the model view it gives."""

MAX_VALUE = 4095
"""Brightest stored value (12-bit detector)."""

_SOURCE_SIDE_LPS = {"AP": (0.0, -1.0, 0.0), "PA": (0.0, 1.0, 0.0), "LL": (-1.0, 0.0, 0.0), "RL": (1.0, 0.0, 0.0)}
_DISPLAY_AXES_LPS = {  # (increasing display row, increasing display column) in LPS
    "coronal": ((0.0, 0.0, -1.0), (1.0, 0.0, 0.0)),
    "sagittal": ((0.0, 0.0, -1.0), (0.0, 1.0, 0.0)),
}
_MARKER = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 1, 1]], dtype=bool)  # a block letter "L"
_MARKER_R = np.array([[1, 1, 0], [1, 0, 1], [1, 1, 0], [1, 0, 1], [1, 0, 1]], dtype=bool)
_DX_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation


@dataclass(frozen=True)
class Acquisition:
    """How one radiograph is taken, processed and stored.

    Args:
        view_position: ``"AP"``, ``"PA"``, ``"LL"`` or ``"RL"`` (DICOM ``ViewPosition``).
        sid_mm: source-to-detector distance (``DistanceSourceToDetector``).
        sod_mm: source-to-isocentre distance (``DistanceSourceToPatient``).
        detector_mm: detector size ``(height, width)``.
        pixel_mm: detector pixel pitch (``ImagerPixelSpacing``).
        si_offset_mm: the patient moved this far towards the feet since the reference exposure, i.e. the
            central ray hits the patient this far further towards the head.
        patient_orientation: ``PatientOrientation`` of the stored file; ``None`` = the display orientation.
        photometric: ``"MONOCHROME2"`` (bright = attenuating) or ``"MONOCHROME1"`` (inverted storage).
        attenuation: ``"published"`` or ``"water"`` (see the module docstring).
        photons_per_mm2: detected photons per mm² of detector in the open (unattenuated) beam (2·10⁴: a
            low-dose exposure).
        scatter_fraction: scatter-to-primary ratio of the haze; scatter_sigma_mm: its width.
        heel: relative tube output difference between the head and the feet ends.
        unsharp_amount, unsharp_sigma_mm: vendor edge enhancement.
        gamma: vendor tone curve exponent.
        collimation_mm: width of the shuttered border on each side.
        marker: burn in a side marker.
    """

    view_position: Literal["AP", "PA", "LL", "RL"] = "AP"
    sid_mm: float = 1150.0
    sod_mm: float = 950.0
    detector_mm: tuple[float, float] = (430.0, 430.0)
    pixel_mm: float = 0.5
    si_offset_mm: float = 0.0
    patient_orientation: tuple[str, str] | None = None
    photometric: Literal["MONOCHROME1", "MONOCHROME2"] = "MONOCHROME2"
    attenuation: Literal["published", "water"] = "published"
    photons_per_mm2: float = 2.0e4
    scatter_fraction: float = 0.3
    scatter_sigma_mm: float = 40.0
    heel: float = 0.15
    unsharp_amount: float = 0.5
    unsharp_sigma_mm: float = 20.0
    gamma: float = 0.8
    collimation_mm: float = 20.0
    marker: bool = True

    def __post_init__(self) -> None:
        if self.view_position not in VIEW_POSITIONS:
            raise ValueError(f"view_position must be one of {sorted(VIEW_POSITIONS)}, not {self.view_position!r}")
        if not 0 < self.sod_mm < self.sid_mm:
            raise ValueError(f"need 0 < sod_mm ({self.sod_mm}) < sid_mm ({self.sid_mm})")
        if self.photometric not in ("MONOCHROME1", "MONOCHROME2"):
            raise ValueError(f"photometric must be MONOCHROME1 or MONOCHROME2, not {self.photometric!r}")
        if self.attenuation not in ("published", "water"):
            raise ValueError(f"attenuation must be 'published' or 'water', not {self.attenuation!r}")
        if not self.pixel_mm > 0 or min(self.detector_mm) < 10 * self.pixel_mm:
            raise ValueError(f"detector {self.detector_mm} mm with {self.pixel_mm} mm pixels is not an image")

    @property
    def view(self) -> str:
        """The model view (``"coronal"`` or ``"sagittal"``)."""
        return VIEW_POSITIONS[self.view_position]

    @property
    def magnification(self) -> float:
        """``sid / sod``: the size of the isocentre plane on the detector."""
        return self.sid_mm / self.sod_mm


@dataclass(frozen=True)
class SimulatedRadiograph:
    """A simulated radiograph.

    Attributes:
        display: float32 ``(rows, cols)`` processed values 0-4095 in display orientation (bright = attenuating).
        stored: uint16 pixels as written (orientation and photometric interpretation of the acquisition).
        acquisition: how it was taken.
        isocentre_lps: LPS position (mm) of the isocentre on the patient.
    """

    display: np.ndarray
    stored: np.ndarray
    acquisition: Acquisition
    isocentre_lps: tuple[float, float, float] = field(default=(0.0, 0.0, 0.0))


def simulate_radiograph(volume_xyz: np.ndarray, grid: ModelGrid, acquisition: Acquisition, seed: int = 0,
                        device: str = "cpu") -> SimulatedRadiograph:
    """Render, degrade, process and store one radiograph of a CT on a model grid.

    Args:
        volume_xyz: ``(X, Y, Z)`` CT numbers in HU on ``grid``.
        grid: the volume's model grid; its centre is the isocentre.
        acquisition: geometry, physics and processing.
        seed: seed of the Poisson noise.
        device: torch device of the projection.

    Returns:
        The :class:`SimulatedRadiograph`.
    """
    from ..drr import point_source_integrals

    acq = acquisition
    isocentre = grid.center_lps + np.array([0.0, 0.0, acq.si_offset_mm])
    source = isocentre + acq.sod_mm * np.array(_SOURCE_SIDE_LPS[acq.view_position])
    towards_detector = (isocentre - source) / acq.sod_mm
    rows, cols = (max(1, round(size / acq.pixel_mm)) for size in acq.detector_mm)
    down, right = (np.array(axis) for axis in _DISPLAY_AXES_LPS[acq.view])
    r = (np.arange(rows) - (rows - 1) / 2.0) * acq.pixel_mm
    c = (np.arange(cols) - (cols - 1) / 2.0) * acq.pixel_mm
    pixels = source + acq.sid_mm * towards_detector + r[:, None, None] * down + c[None, :, None] * right
    if acq.attenuation == "published":
        mu_integral = point_source_integrals(volume_xyz, grid, source, pixels, "published", device)
        mu_integral = mu_integral * (MU_WATER_PER_MM / 1000.0)
    else:
        mu_integral = point_source_integrals(volume_xyz, grid, source, pixels, "physical", device)
    primary = effects.heel_gradient((rows, cols), acq.heel) * np.exp(-mu_integral)
    intensity = effects.scatter_haze(primary, acq.scatter_fraction, acq.scatter_sigma_mm / acq.pixel_mm)
    photons = acq.photons_per_mm2 * acq.pixel_mm**2
    counts = effects.poisson_counts(intensity, photons, np.random.default_rng(seed))
    log_image = -np.log(np.maximum(counts, 1.0) / photons)
    border = min(round(acq.collimation_mm / acq.pixel_mm), min(rows, cols) // 4)
    field_of_view = np.zeros((rows, cols), dtype=bool)
    field_of_view[border:rows - border, border:cols - border] = True
    low, high = np.percentile(log_image[field_of_view], [0.5, 99.5])
    processed = (log_image - low) / max(high - low, 1e-6)
    processed = effects.unsharp_mask(processed, acq.unsharp_amount, acq.unsharp_sigma_mm / acq.pixel_mm)
    display = np.round(effects.gamma(processed, acq.gamma) * MAX_VALUE).astype(np.float32)
    display[~field_of_view] = MAX_VALUE
    if acq.marker:
        _burn_marker(display, border, "L" if acq.view_position in ("AP", "PA", "LL") else "R")
    stored = display if acq.photometric == "MONOCHROME2" else MAX_VALUE - display
    orientation = acq.patient_orientation or DISPLAY_PATIENT_ORIENTATION[acq.view]
    stored = display_to_patient_orientation(stored, orientation, acq.view)
    return SimulatedRadiograph(display, np.ascontiguousarray(stored).astype(np.uint16) + 1024, acq,
                               tuple(float(v) for v in isocentre))


def _burn_marker(display: np.ndarray, border: int, letter: str) -> None:
    """Burn a block letter at the brightest value into the top right corner of the open field (in place)."""
    glyph = _MARKER if letter == "L" else _MARKER_R
    scale = max(2, display.shape[0] // 60)
    mark = np.kron(glyph, np.ones((scale, scale), dtype=bool))
    top, right = border + 2 * scale, display.shape[1] - border - 2 * scale
    display[top:top + mark.shape[0], right - mark.shape[1]:right][mark] = MAX_VALUE


def write_dx(radiograph: SimulatedRadiograph, path: str | PathLike[str], omit: tuple[str, ...] = (),
             patient_id: str = "SIMULATED") -> Path:
    """Write a simulated radiograph as a DICOM DX file (explicit VR little endian).

    Tags: ``ViewPosition``, ``PatientOrientation``, ``ImagerPixelSpacing``, ``DistanceSourceToDetector``,
    ``DistanceSourceToPatient``, ``EstimatedRadiographicMagnificationFactor``, ``PhotometricInterpretation``,
    ``RescaleIntercept`` / ``RescaleSlope``, ``WindowCenter`` / ``WindowWidth``.

    Args:
        radiograph: the image.
        path: output file.
        omit: keywords of tags to leave out (to test files that lack them).
        patient_id: ``PatientID``.

    Returns:
        ``path``.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    acq = radiograph.acquisition
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = _DX_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = _DX_SOP_CLASS, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID, ds.PatientName = "DX", patient_id, "Simulated^Phantom"
    ds.ViewPosition = acq.view_position
    ds.PatientOrientation = list(acq.patient_orientation or DISPLAY_PATIENT_ORIENTATION[acq.view])
    ds.ImagerPixelSpacing = [acq.pixel_mm, acq.pixel_mm]
    ds.DistanceSourceToDetector = acq.sid_mm
    ds.DistanceSourceToPatient = acq.sod_mm
    ds.EstimatedRadiographicMagnificationFactor = round(acq.magnification, 6)
    ds.PhotometricInterpretation = acq.photometric
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "US"
    ds.WindowCenter, ds.WindowWidth = MAX_VALUE / 2, MAX_VALUE + 1  # in rescaled values: the whole range
    ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 16, 13, 12, 0
    ds.Rows, ds.Columns = radiograph.stored.shape
    ds.PixelData = np.ascontiguousarray(radiograph.stored, dtype="<u2").tobytes()
    for keyword in omit:
        if keyword in ds:
            delattr(ds, keyword)
    path = Path(path)
    ds.save_as(path, enforce_file_format=True)
    return path
