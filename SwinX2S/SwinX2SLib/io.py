"""Reading CTs and X-rays, writing images and segmentations safely.

Every reader validates what it reads and raises :class:`~SwinX2SLib.errors.InputError` naming the file and the
problem (unreadable or truncated, wrong dimensionality, empty, NaN/inf, constant, unsupported pixel type). Every
writer goes through :func:`atomic_write`: the file appears complete under its final name or not at all, and an
existing file is only replaced when ``overwrite`` is set.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from . import catalogue
from .errors import InputError, OutputError

__all__ = [
    "DEFAULT_XRAY_SPACING_MM",
    "RASTER_SUFFIXES",
    "XRay",
    "atomic_write",
    "prepare_output_dir",
    "read_volume",
    "read_xray",
    "write_segmentation",
    "write_volume",
]

DEFAULT_XRAY_SPACING_MM = 0.2
"""Pixel spacing assumed for X-ray files that carry none (a typical flat-panel detector pitch); a warning says so."""

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_SUPPORTED_PIXEL_IDS = {
    sitk.sitkUInt8, sitk.sitkInt8, sitk.sitkUInt16, sitk.sitkInt16, sitk.sitkUInt32, sitk.sitkInt32,
    sitk.sitkUInt64, sitk.sitkInt64, sitk.sitkFloat32, sitk.sitkFloat64,
}  # fmt: skip


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise InputError(path, "file does not exist")


def _check_values(path: Path, array: np.ndarray, what: str) -> None:
    if array.size == 0:
        raise InputError(path, f"the {what} is empty (no voxels)")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise InputError(path, f"the {what} contains NaN or infinite values")


def _check_gzip_complete(path: Path) -> None:
    """ITK silently zero-fills a truncated ``.gz`` stream; decompress it once to catch that."""
    if path.suffix.lower() != ".gz":
        return
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 24):
                pass
    except (OSError, EOFError) as exc:
        raise InputError(path, f"cannot be read: corrupt or truncated compressed file ({_reason(exc)})") from None


def _read_itk(path: Path) -> sitk.Image:
    _check_gzip_complete(path)
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(path, f"cannot be read as an image: unsupported, corrupt or truncated ({_reason(exc)})") \
            from None


def _read_dicom_series(path: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(path))
    if not series:
        raise InputError(path, "folder holds no DICOM series")
    files = max((reader.GetGDCMSeriesFileNames(str(path), s) for s in series), key=len)
    if len(series) > 1:
        warnings.warn(f"{path}: {len(series)} DICOM series found; using the largest ({len(files)} files)", stacklevel=3)
    reader.SetFileNames(files)
    try:
        return reader.Execute()
    except RuntimeError as exc:
        raise InputError(path, f"DICOM series cannot be read ({_reason(exc)})") from None


def read_volume(path: str | PathLike[str]) -> sitk.Image:
    """Read a 3-D volume (CT or label map): NIfTI, NRRD, MHA/MHD or a DICOM series folder.

    Raises:
        InputError: missing, unreadable or truncated file; not 3-D; empty; unsupported pixel type; NaN/inf.
    """
    path = Path(path)
    _check_exists(path)
    image = _read_dicom_series(path) if path.is_dir() else _read_itk(path)
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        image = image[:, :, :, 0]
    if image.GetDimension() != 3:
        raise InputError(path, f"expected a 3-D volume, got a {image.GetDimension()}-D image")
    if image.GetPixelID() not in _SUPPORTED_PIXEL_IDS:
        raise InputError(path, f"unsupported pixel type {image.GetPixelIDTypeAsString()} (need one scalar channel)")
    _check_values(path, sitk.GetArrayViewFromImage(image), "volume")
    return image


@dataclass(frozen=True)
class XRay:
    """A radiograph in display orientation (see :mod:`SwinX2SLib.conventions`).

    Attributes:
        pixels: float32 ``(rows, cols)``; higher values = more attenuation (bone bright), as displayed.
        spacing_mm: ``(row, col)`` pixel spacing in mm.
        path: where it was read from.
        spacing_source: ``"file"``, ``"argument"`` or ``"default"``.
    """

    pixels: np.ndarray
    spacing_mm: tuple[float, float]
    path: str
    spacing_source: str


def _read_raster(path: Path) -> tuple[np.ndarray, tuple[float, float] | None]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            if getattr(img, "n_frames", 1) > 1:
                raise InputError(path, "has several frames; an X-ray must be a single 2-D image")
            if img.mode in ("RGB", "RGBA", "P", "LA"):
                img = img.convert("L")
            array = np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(path, f"cannot be read as an image: unsupported, corrupt or truncated ({_reason(exc)})") \
            from None
    return array.astype(np.float32), None


def _read_dicom_xray(path: Path) -> tuple[np.ndarray, tuple[float, float] | None]:
    import pydicom

    try:
        ds = pydicom.dcmread(path)
        array = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for bad files
        raise InputError(path, f"cannot be read as a DICOM image ({_reason(exc)})") from None
    if array.ndim != 2:
        raise InputError(path, f"expected a single 2-D radiograph, got pixel data of shape {array.shape}")
    array = array.astype(np.float32) * float(getattr(ds, "RescaleSlope", 1.0)) + float(
        getattr(ds, "RescaleIntercept", 0.0)
    )
    if str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        array = array.max() - array  # MONOCHROME1: high values are dark; make bone bright
    spacing = None
    for keyword in ("ImagerPixelSpacing", "PixelSpacing"):
        value = getattr(ds, keyword, None)
        if value is not None and len(value) == 2:
            spacing = (float(value[0]), float(value[1]))
            break
    return array, spacing


def _read_itk_xray(path: Path) -> tuple[np.ndarray, tuple[float, float] | None]:
    image = _read_itk(path)
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(path, f"unsupported pixel type {image.GetPixelIDTypeAsString()} (need one channel)")
    if image.GetDimension() == 3:
        if image.GetSize()[2] != 1:
            raise InputError(path, f"is a 3-D volume of size {image.GetSize()}, not an X-ray image "
                                   "(give a CT with --ct, or a 2-D radiograph)")
        image = image[:, :, 0]
    if image.GetDimension() != 2:
        raise InputError(path, f"expected a 2-D X-ray image, got a {image.GetDimension()}-D image")
    spacing = image.GetSpacing()
    return sitk.GetArrayFromImage(image).astype(np.float32), (float(spacing[1]), float(spacing[0]))


def _is_dicom(path: Path) -> bool:
    if path.suffix.lower() in (".dcm", ".dicom"):
        return True
    with contextlib.suppress(OSError), open(path, "rb") as handle:
        handle.seek(128)
        return handle.read(4) == b"DICM"
    return False


def read_xray(path: str | PathLike[str], pixel_spacing_mm: float | None = None) -> XRay:
    """Read a radiograph: PNG/JPEG/TIFF (8 or 16 bit), DICOM DX/CR/DR, 2-D NIfTI/NRRD/MHA or a single-slice volume.

    Args:
        path: the image file, stored in display orientation (superior at the top; AP: patient right on the left).
        pixel_spacing_mm: overrides the file's pixel spacing (isotropic, mm).

    Returns:
        The :class:`XRay`. Files without spacing get :data:`DEFAULT_XRAY_SPACING_MM` and a warning.

    Raises:
        InputError: missing/unreadable/truncated file, not 2-D, empty, NaN/inf, constant image.
    """
    path = Path(path)
    _check_exists(path)
    if path.is_dir():
        raise InputError(path, "is a folder; an X-ray must be a single image file")
    if path.suffix.lower() in RASTER_SUFFIXES:
        pixels, spacing = _read_raster(path)
    elif _is_dicom(path):
        pixels, spacing = _read_dicom_xray(path)
    else:
        pixels, spacing = _read_itk_xray(path)
    if pixels.ndim != 2:
        raise InputError(path, f"expected a 2-D X-ray image, got an array of shape {pixels.shape}")
    _check_values(path, pixels, "image")
    if float(pixels.max()) == float(pixels.min()):
        raise InputError(path, "the image is constant (no contrast): not a radiograph")
    if pixel_spacing_mm is not None:
        if not pixel_spacing_mm > 0:
            raise InputError(path, f"pixel spacing must be positive, got {pixel_spacing_mm}")
        spacing, source = (float(pixel_spacing_mm),) * 2, "argument"
    elif spacing is not None and min(spacing) > 0:
        source = "file"
    else:
        warnings.warn(
            f"{path}: no pixel spacing in the file; assuming {DEFAULT_XRAY_SPACING_MM} mm (use --pixel-spacing)",
            stacklevel=2,
        )
        spacing, source = (DEFAULT_XRAY_SPACING_MM,) * 2, "default"
    return XRay(pixels, (float(spacing[0]), float(spacing[1])), str(path), source)


@contextlib.contextmanager
def atomic_write(path: str | PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    On any exception (including ``KeyboardInterrupt``) the temporary file is removed and ``path`` is untouched.

    Raises:
        OutputError: ``path`` exists and ``overwrite`` is false, or its folder does not exist.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: already exists (use --overwrite to replace it)")
    if not path.parent.is_dir():
        raise OutputError(f"{path}: folder {path.parent} does not exist")
    tmp = path.parent / f".tmp-{uuid.uuid4().hex[:8]}-{path.name}"
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"{path}: nothing was written")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def prepare_output_dir(path: str | PathLike[str]) -> Path:
    """Create ``path`` if needed and check it is a writable folder, before any computation starts."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create output folder ({_reason(exc)})") from None
    probe = path / f".write-test-{uuid.uuid4().hex[:8]}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        raise OutputError(f"{path}: output folder is not writable") from None
    return path


def write_volume(image: sitk.Image, path: str | PathLike[str], overwrite: bool = False) -> Path:
    """Write an image (NIfTI, NRRD, MHA, ...; chosen by suffix) atomically, compressed."""
    path = Path(path)
    with atomic_write(path, overwrite) as tmp:
        sitk.WriteImage(image, str(tmp), True)
    return path


def _segments(labels: np.ndarray) -> list[dict]:
    present = sorted(int(v) for v in np.unique(labels) if v != 0)
    segments = []
    for value in present:
        try:
            cls = catalogue.by_id(value)
        except KeyError:
            raise ValueError(f"label value {value} is not in the SwinX2S catalogue") from None
        term = cls.terminology
        terminology = {
            "contextName": catalogue.TERMINOLOGY_CONTEXT,
            "category": [term.category.scheme, term.category.value, term.category.meaning],
            "type": [term.type.scheme, term.type.value, term.type.meaning],
        }
        if term.type_modifier is not None:
            m = term.type_modifier
            terminology["typeModifier"] = [m.scheme, m.value, m.meaning]
        if term.region is not None:
            terminology["anatomicContextName"] = catalogue.REGION_CONTEXT
            terminology["anatomicRegion"] = [term.region.scheme, term.region.value, term.region.meaning]
        segments.append(
            {
                "id": cls.name,
                "labelValue": value,
                "layer": 0,
                "name": cls.display_name,
                "color": [c / 255.0 for c in cls.color],
                "terminology": terminology,
            }
        )
    return segments


def write_segmentation(labels: sitk.Image, path: str | PathLike[str], overwrite: bool = False) -> Path:
    """Write a 55-class label map as ``.seg.nrrd`` (Slicer segmentation with names, colours, terminology)
    or as a plain label volume (``.nii.gz``, ``.nrrd``, ...), atomically.

    Only the classes present become segments. Label values must be catalogue ids (0-54).
    """
    path = Path(path)
    if not path.name.lower().endswith(".seg.nrrd"):
        return write_volume(sitk.Cast(labels, sitk.sitkUInt8), path, overwrite)
    import slicerio

    from .conventions import array_from_sitk

    voxels = array_from_sitk(labels).astype(np.uint8)
    ijk_to_lps = np.eye(4)
    ijk_to_lps[:3, :3] = np.array(labels.GetDirection()).reshape(3, 3) * np.array(labels.GetSpacing())
    ijk_to_lps[:3, 3] = labels.GetOrigin()
    segmentation = {"voxels": voxels, "ijkToLPS": ijk_to_lps, "encoding": "gzip", "segments": _segments(voxels)}
    with atomic_write(path, overwrite) as tmp:
        slicerio.write_segmentation(str(tmp), segmentation)
    return path
