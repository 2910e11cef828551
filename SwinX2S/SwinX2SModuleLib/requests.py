"""The scene's input nodes → the ``swinx2s`` requests of the modules (files written, options filled in)."""

from __future__ import annotations

import os
from pathlib import Path

import slicer

from SwinX2SLib.options import Device, Geometry
from SwinX2SLib.slicer_support import DrrParameters, ReconstructParameters

from .xrays import write_volume, xray_file


def reconstruct_request(folder: str | os.PathLike[str], *, ap: slicer.vtkMRMLVolumeNode | None = None,
                        lateral: slicer.vtkMRMLVolumeNode | None = None, ct: slicer.vtkMRMLVolumeNode | None = None,
                        pixel_spacing_mm: float = 0.0, model: str = "", device: Device = "auto",
                        measure: bool = False) -> ReconstructParameters:
    """Write the inputs into ``folder`` and return the ``reconstruct`` request (results go to ``folder/output``).

    Either a CT (``ct``) or two X-rays (``ap``, ``lateral``). An X-ray read from a PNG/JPEG file without an entered
    spacing is passed on as that file (:func:`~SwinX2SModuleLib.xrays.xray_file`), so that the command line warns
    about the unknown pixel spacing as it does for the file itself.

    Raises:
        InputError: an X-ray without known spacing was changed since it was read.
        RuntimeError: a file cannot be written.
    """
    folder = Path(folder)
    if ct is not None:
        inputs = {"ct": write_volume(ct, folder / "ct.nrrd")}
    else:
        inputs = {"coronal": xray_file(ap, folder, "ap", pixel_spacing_mm)[0],
                  "sagittal": xray_file(lateral, folder, "lateral", pixel_spacing_mm)[0]}
    return ReconstructParameters(output_dir=str(folder / "output"), model=model, device=device,
                                 pixel_spacing_mm=pixel_spacing_mm, measure=measure, **inputs)


def drr_request(folder: str | os.PathLike[str], ct: slicer.vtkMRMLVolumeNode, geometry: Geometry = "parallel",
                source_to_detector_mm: float = 1400.0, source_to_isocenter_mm: float = 1000.0) -> DrrParameters:
    """Write the CT into ``folder`` and return the ``drr`` request (images go to ``folder/drr``).

    Raises:
        RuntimeError: the file cannot be written.
    """
    folder = Path(folder)
    return DrrParameters(ct=write_volume(ct, folder / "ct.nrrd"), output_dir=str(folder / "drr"), geometry=geometry,
                         source_to_detector_mm=source_to_detector_mm, source_to_isocenter_mm=source_to_isocenter_mm)
