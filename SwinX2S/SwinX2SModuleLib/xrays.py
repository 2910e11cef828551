"""The input volumes of a run → files for the command line, with where each X-ray's pixel spacing came from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import slicer

from SwinX2SLib.errors import InputError
from SwinX2SLib.io import RASTER_SUFFIXES

SpacingSource = Literal["entered", "dicom", "file", "unknown"]
"""Where an X-ray's pixel spacing comes from: entered by the user, DICOM tags, a file format that stores it
(NRRD, NIfTI, MHA, a saved scene), or nowhere (PNG, JPEG, TIFF, BMP: Slicer then shows 1 mm pixels)."""


def _source_file(node: slicer.vtkMRMLVolumeNode) -> str:
    storage = node.GetStorageNode()
    return (storage.GetFileName() or "") if storage is not None else ""


def spacing_source(node: slicer.vtkMRMLVolumeNode, entered_spacing_mm: float = 0.0) -> SpacingSource:
    """Where the pixel spacing of the X-ray ``node`` comes from.

    Args:
        node: the X-ray volume node.
        entered_spacing_mm: the spacing the user entered (0 = "from the images").
    """
    if entered_spacing_mm > 0:
        return "entered"
    if node.GetAttribute("DICOM.instanceUIDs"):
        return "dicom"
    if Path(_source_file(node)).suffix.lower() in RASTER_SUFFIXES:
        return "unknown"
    return "file"


def write_volume(node: slicer.vtkMRMLVolumeNode, path: str | os.PathLike[str]) -> str:
    """Write a volume node (image, spacing, origin, directions) to ``path`` (format by suffix), uncompressed.

    Raises:
        RuntimeError: the file cannot be written.
    """
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(path))
    storage.SetUseCompression(0)
    if not storage.WriteData(node):
        raise RuntimeError(f"could not write '{node.GetName()}' to {path}")
    return str(path)


def xray_file(node: slicer.vtkMRMLVolumeNode, folder: str | os.PathLike[str], stem: str,
              entered_spacing_mm: float = 0.0) -> tuple[str, SpacingSource]:
    """The file to give the command line for the X-ray ``node``, and where its spacing comes from.

    A node read from a PNG/JPEG/TIFF/BMP file without an entered spacing has no real pixel spacing (Slicer shows
    1 mm): its original file is passed on unchanged, so the command line warns about the missing spacing exactly
    as for that file given directly. Any other node is written to ``<folder>/<stem>.nrrd`` with its spacing.

    Raises:
        InputError: the node has no known spacing and was changed since it was read (the change would be lost).
        RuntimeError: the file cannot be written.
    """
    source = spacing_source(node, entered_spacing_mm)
    if source != "unknown":
        return write_volume(node, Path(folder) / f"{stem}.nrrd"), source
    original = _source_file(node)
    if node.GetModifiedSinceRead():
        raise InputError(original, f"'{node.GetName()}' has no pixel spacing (read from an image file) and was "
                                   "changed since; enter the pixel spacing in mm")
    return original, source
