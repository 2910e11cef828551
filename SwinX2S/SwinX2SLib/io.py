"""Reading CTs and X-rays, writing images and segmentations safely.

Every reader validates what it reads and raises :class:`~SwinX2SLib.errors.InputError` naming the file and the
problem (unreadable or truncated, wrong dimensionality, empty, NaN/inf, constant, unsupported pixel type). Every
writer goes through :func:`atomic_write`: the file appears complete under its final name or not at all, and an
existing file is only replaced when ``overwrite`` is set.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import os
import shutil
import signal
import struct
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from . import catalogue
from .errors import InputError, OutputError

__all__ = [
    "DEFAULT_XRAY_SPACING_MM",
    "RASTER_SUFFIXES",
    "XRay",
    "atomic_write",
    "check_ct_shows_bone",
    "finite_json",
    "prepare_output_dir",
    "read_image",
    "read_label_map",
    "read_volume",
    "read_xray",
    "staged_outputs",
    "write_json",
    "write_png",
    "write_segmentation",
    "write_volume",
]

DEFAULT_XRAY_SPACING_MM = 0.2
"""Pixel spacing assumed for X-ray files that carry none (a typical flat-panel detector pitch); a warning says so."""

MAX_XRAY_PIXELS = 64_000_000
"""Largest radiograph accepted (pixels; detectors have at most about 4300 x 4300), checked from the header."""

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_SUPPORTED_PIXEL_IDS = {
    sitk.sitkUInt8, sitk.sitkInt8, sitk.sitkUInt16, sitk.sitkInt16, sitk.sitkUInt32, sitk.sitkInt32,
    sitk.sitkUInt64, sitk.sitkInt64, sitk.sitkFloat32, sitk.sitkFloat64,
}  # fmt: skip


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _check_exists(path: Path) -> None:
    if not _is_utf8(path):
        raise InputError(ascii(str(path)), "the path is not valid UTF-8 (the image libraries cannot open it); "
                                           "rename it")
    if not path.exists():
        raise InputError(path, "file does not exist")
    if not (path.is_file() or path.is_dir()):
        raise InputError(path, "is not a regular file (a device or a pipe?)")


def _check_values(path: Path, array: np.ndarray, what: str) -> None:
    if array.size == 0:
        raise InputError(path, f"the {what} is empty (no voxels)")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise InputError(path, f"the {what} contains NaN or infinite values")


MAX_VOXELS = 2**31
"""Largest image a header may describe (voxels); checked before anything is allocated."""


def _check_gzip_complete(path: Path) -> int:
    """ITK silently zero-fills a truncated ``.gz`` stream; decompress it once to catch that.

    Returns:
        The (decompressed) length of the file in bytes.
    """
    if path.suffix.lower() != ".gz":
        return path.stat().st_size
    length = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(1 << 24):
                length += len(chunk)
    except (OSError, EOFError) as exc:
        raise InputError(path, f"cannot be read: corrupt or truncated compressed file ({_reason(exc)})") from None
    return length


_NIFTI_FLOATS = {16: "f4", 64: "f8"}  # NIfTI datatype codes of real floating-point voxels


def _nifti_layout(header: bytes) -> tuple[int, int, int, str | None] | None:
    """``(voxel offset, voxels, bytes per voxel, numpy float dtype or None)`` of a NIfTI-1/2 header (None: not
    NIfTI)."""
    for order in "<>":
        if len(header) >= 348 and struct.unpack(f"{order}i", header[:4])[0] == 348:
            dims = struct.unpack(f"{order}8h", header[40:56])
            datatype, bitpix = struct.unpack(f"{order}2h", header[70:74])
            offset = struct.unpack(f"{order}f", header[108:112])[0]
        elif len(header) >= 540 and struct.unpack(f"{order}i", header[:4])[0] == 540:
            datatype, bitpix = struct.unpack(f"{order}2h", header[12:16])
            dims = struct.unpack(f"{order}8q", header[16:80])
            offset = struct.unpack(f"{order}q", header[168:176])[0]
        else:
            continue
        voxels = math.prod(max(int(d), 1) for d in dims[1:1 + min(max(int(dims[0]), 0), 7)])
        dtype = order + _NIFTI_FLOATS[datatype] if datatype in _NIFTI_FLOATS else None
        return int(offset) if math.isfinite(offset) else -1, voxels, max(int(bitpix), 0) // 8, dtype
    return None


def _check_nifti_complete(path: Path, length: int) -> None:
    """Refuse a NIfTI file whose voxel data is shorter than its header says (ITK reads the rest as zeros)."""
    name = path.name.lower()
    if not name.endswith((".nii", ".nii.gz")):
        return
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        layout = _nifti_layout(handle.read(540))
        if layout is None:
            raise InputError(path, "is not a NIfTI file (no NIfTI-1/2 header)")
        offset, voxels, size, dtype = layout
        if voxels > MAX_VOXELS:
            raise InputError(path, f"the header describes {voxels} voxels, more than the {MAX_VOXELS} accepted")
        if offset < 0 or length < offset + voxels * size:
            raise InputError(path, f"is truncated: the header describes {voxels * size} bytes of voxel data from "
                                   f"byte {offset}, but the file holds {length} bytes")
        if dtype is not None:  # ITK reads NaN voxels of a NIfTI file as 0: look at the stored values
            handle.seek(offset)
            for _ in range(0, voxels, 1 << 22):
                if not np.all(np.isfinite(np.frombuffer(handle.read(size << 22), dtype=dtype))):
                    raise InputError(path, "the voxel data contains NaN or infinite values")


def read_image(path: str | PathLike[str]) -> sitk.Image:
    """Read any image file SimpleITK reads, refusing what it would silently get wrong.

    Raises:
        InputError: missing, unreadable, a truncated gzip stream or NIfTI file, a header describing more than
            :data:`MAX_VOXELS` voxels, NaN / infinite NIfTI voxels (ITK reads those as 0).
    """
    path = Path(path)
    _check_exists(path)
    _check_nifti_complete(path, _check_gzip_complete(path))
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
    _warn_slice_gaps(path, files)
    reader.SetFileNames(files)
    try:
        return reader.Execute()
    except RuntimeError as exc:
        raise InputError(path, f"DICOM series cannot be read ({_reason(exc)})") from None


def _warn_slice_gaps(path: Path, files: Sequence[str]) -> None:
    """Warn when the slices of a DICOM series are not evenly spaced (ITK then averages the spacing silently)."""
    if len(files) < 3:
        return
    info = sitk.ImageFileReader()
    positions = []
    for name in files:
        info.SetFileName(name)
        try:
            info.ReadImageInformation()
        except RuntimeError as exc:
            raise InputError(name, f"DICOM slice cannot be read ({_reason(exc)})") from None
        positions.append(np.array(info.GetOrigin()))
    normal = np.array(info.GetDirection()).reshape(3, 3)[:, 2]
    steps = np.diff([float(p @ normal) for p in positions])
    typical = float(np.median(np.abs(steps)))
    worst = int(np.argmax(np.abs(np.abs(steps) - typical)))
    if typical > 0 and abs(abs(steps[worst]) - typical) > 0.1 * typical:
        warnings.warn(f"{path}: slice gap of {abs(steps[worst]):.3g} mm between {Path(files[worst]).name} and "
                      f"{Path(files[worst + 1]).name} (the other slices are {typical:.3g} mm apart): a slice is "
                      "missing or the series is irregular; the volume uses the average spacing", stacklevel=4)


def read_volume(path: str | PathLike[str]) -> sitk.Image:
    """Read a 3-D volume (CT or label map): NIfTI, NRRD, MHA/MHD or a DICOM series folder.

    Raises:
        InputError: missing, unreadable or truncated file; not 3-D; empty; unsupported pixel type; NaN/inf.
    """
    path = Path(path)
    _check_exists(path)
    image = _read_dicom_series(path) if path.is_dir() else read_image(path)
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        image = image[:, :, :, 0]
    if image.GetDimension() != 3:
        raise InputError(path, f"expected a 3-D volume, got a {image.GetDimension()}-D image")
    if image.GetPixelID() not in _SUPPORTED_PIXEL_IDS:
        raise InputError(path, f"unsupported pixel type {image.GetPixelIDTypeAsString()} (need one scalar channel)")
    _check_values(path, sitk.GetArrayViewFromImage(image), "volume")
    spacing = image.GetSpacing()
    if not all(SPACING_RANGE_MM[0] <= v <= SPACING_RANGE_MM[1] for v in spacing):
        raise InputError(path, f"voxel spacing {tuple(round(v, 6) for v in spacing)} mm is implausible (each must be "
                               f"{SPACING_RANGE_MM[0]}-{SPACING_RANGE_MM[1]} mm): check the file's header")
    return image


SPACING_RANGE_MM = (0.01, 100.0)
"""Voxel spacings accepted by :func:`read_volume` (mm); anything else is a broken header."""

BONE_HU = 200.0
"""A CT with no voxel above this value (HU) shows no bone."""


def read_label_map(path: str | PathLike[str], reference: sitk.Image | None = None) -> sitk.Image:
    """Read a label map (:func:`read_volume`) and check that it is one.

    Args:
        path: the label file.
        reference: the CT it belongs to; the two must overlap in space.

    Raises:
        InputError: non-integer values (an image, not a label map), or no overlap with ``reference``.
    """
    image = read_volume(path)
    values = sitk.GetArrayViewFromImage(image)
    if np.issubdtype(values.dtype, np.floating) and not np.array_equal(values, np.round(values)):
        raise InputError(path, "holds non-integer values: a label map holds whole class ids (is this an image?)")
    if reference is not None:
        low, high = _physical_box(image)
        ref_low, ref_high = _physical_box(reference)
        if np.any(high < ref_low) or np.any(ref_high < low):
            raise InputError(path, "does not overlap the CT in space (another patient, or a different coordinate "
                                   "system?)")
    return image


def _physical_box(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """The LPS bounding box ``(low, high)`` of an image's voxel centres."""
    size = np.array(image.GetSize()) - 1
    corners = [image.TransformContinuousIndexToPhysicalPoint([float(c) for c in size * np.array(bits)])
               for bits in np.ndindex(2, 2, 2)]
    return np.min(corners, axis=0), np.max(corners, axis=0)


def check_ct_shows_bone(ct: sitk.Image, path: str | PathLike[str]) -> None:
    """Refuse a CT without bone (all air, soft tissue only, or not in HU): its segmentation would be invented.

    Raises:
        InputError: no voxel reaches :data:`BONE_HU`.
    """
    highest = float(np.max(sitk.GetArrayViewFromImage(ct)))
    if highest < BONE_HU:
        raise InputError(path, f"no voxel reaches {BONE_HU:g} HU (highest {highest:g}): the CT shows no bone, or it "
                               "is not in Hounsfield units")


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
            if img.width * img.height > MAX_XRAY_PIXELS:
                raise InputError(path, f"is {img.width} x {img.height} pixels, more than the {MAX_XRAY_PIXELS} "
                                       "accepted for a radiograph")
            img.load()
            if getattr(img, "n_frames", 1) > 1:
                raise InputError(path, "has several frames; an X-ray must be a single 2-D image")
            if img.mode in ("RGB", "RGBA", "P", "LA"):
                img = img.convert("L")
            array = np.asarray(img)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(path, f"cannot be read as an image: unsupported, corrupt or truncated ({_reason(exc)})") \
            from None
    return array.astype(np.float32), None


def read_dicom_radiograph(path: str | PathLike[str]) -> tuple[Any, np.ndarray]:
    """A single-frame 2-D DICOM image: ``(pydicom dataset, stored pixel array)``.

    Raises:
        InputError: the file is not a readable DICOM image, or its pixel data is not one 2-D image.
    """
    import pydicom

    try:
        ds = pydicom.dcmread(path)
        array = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for bad files
        raise InputError(path, f"cannot be read as a DICOM image ({_reason(exc)})") from None
    if array.ndim != 2:
        raise InputError(path, f"expected a single 2-D radiograph, got pixel data of shape {array.shape}")
    return ds, array


def _read_dicom_xray(path: Path) -> tuple[np.ndarray, tuple[float, float] | None]:
    ds, array = read_dicom_radiograph(path)
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
    image = read_image(path)
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
        if not all(SPACING_RANGE_MM[0] <= v <= SPACING_RANGE_MM[1] for v in spacing):
            raise InputError(path, f"pixel spacing {spacing} mm in the file is implausible (each must be "
                                   f"{SPACING_RANGE_MM[0]}-{SPACING_RANGE_MM[1]} mm); give --pixel-spacing")
        source = "file"
    else:
        warnings.warn(
            f"{path}: no pixel spacing in the file; assuming {DEFAULT_XRAY_SPACING_MM} mm (use --pixel-spacing)",
            stacklevel=2,
        )
        spacing, source = (DEFAULT_XRAY_SPACING_MM,) * 2, "default"
    return XRay(pixels, (float(spacing[0]), float(spacing[1])), str(path), source)


@contextlib.contextmanager
def atomic_write(path: str | PathLike[str], overwrite: bool = False,
                 verify: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    Before the rename the temporary file is flushed to disk (``fsync``, which reports a full disk that buffered
    writes hid) and checked: it must exist and not be empty, and ``verify`` (e.g. reading it back) must pass. On any
    exception (including ``KeyboardInterrupt``) the temporary file is removed and ``path`` is untouched.

    Args:
        path: the final file.
        overwrite: replace an existing ``path``.
        verify: called with the temporary path; raises when the file is incomplete or unreadable.

    Raises:
        OutputError: ``path`` exists and ``overwrite`` is false, its folder does not exist, or the file could not
            be written completely (full disk, file size limit, I/O error).
    """
    path = Path(path)
    _check_output_name(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, not a file name")
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: already exists (use --overwrite to replace it)")
    if not path.parent.is_dir():
        raise OutputError(f"{path}: folder {path.parent} does not exist")
    tmp = path.parent / f".tmp-{uuid.uuid4().hex[:8]}-{path.name}"
    try:
        try:
            yield tmp
            if not tmp.exists() or tmp.stat().st_size == 0:
                raise OutputError(f"{path}: nothing was written")
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            if verify is not None:
                verify(tmp)
            os.replace(tmp, path)
        except OSError as exc:
            raise OutputError(f"{_shown(path)}: cannot be written ({exc.strerror or _reason(exc)})") from None
        except InputError as exc:
            raise OutputError(f"{_shown(path)}: the written file is incomplete ({exc.reason}); disk full?") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _shown(path: Path) -> Path:
    """The path a user knows: a file in a staging folder (:func:`staged_outputs`) by its final name."""
    if path.parent.name.startswith(PARTIAL_PREFIX):
        return path.parent.parent / path.name
    return path


def _is_utf8(path: Path) -> bool:
    """Whether the path is text the file-format libraries can take (ITK aborts the process on other bytes)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_output_name(path: Path) -> None:
    if not _is_utf8(path):
        raise OutputError(f"{str(path)!a}: the output path is not valid UTF-8; rename it")


PARTIAL_PREFIX = ".swinx2s-partial-"
"""Name prefix of the staging folders of :func:`staged_outputs` (``<prefix><pid>-<random>``)."""


def _process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs (POSIX; on Windows, where ``os.kill`` would end it, always False)."""
    if os.name == "nt" or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # a live process of another user
        return False
    return False


def _remove_stale_stages(folder: Path) -> None:
    """Remove staging folders left by killed processes (the process id in the name no longer runs)."""
    for stage in folder.glob(f"{PARTIAL_PREFIX}*"):
        pid = stage.name[len(PARTIAL_PREFIX):].partition("-")[0]
        if pid.isdigit() and _process_gone(int(pid)):
            shutil.rmtree(stage, ignore_errors=True)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back until the block ends (where the platform can; not on Windows)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def staged_outputs(folder: str | PathLike[str], names: Iterable[str], overwrite: bool = False) -> Iterator[Path]:
    """All outputs of one command appear together or not at all.

    Checks (before anything is computed) that none of ``names`` exists in ``folder`` unless ``overwrite``, then
    yields a hidden staging folder inside ``folder``. When the block succeeds every file written into the
    staging folder is moved to the same relative path in ``folder`` (with SIGINT and SIGTERM held back until the
    last one is in place); on any error or interruption the staging folder is removed and ``folder`` is as
    before. Staging folders of killed processes are removed by :func:`prepare_output_dir`.

    Args:
        folder: the output folder (created if needed).
        names: the outputs, relative to ``folder`` (a folder name counts when it is not empty).
        overwrite: replace existing outputs.

    Raises:
        OutputError: an output exists and ``overwrite`` is false, or the folder is not writable.
    """
    folder = prepare_output_dir(folder)
    if not overwrite:
        for name in names:
            path = folder / name
            if path.exists() and not (path.is_dir() and not any(path.iterdir())):
                raise OutputError(f"{path}: already exists (use --overwrite to replace the outputs)")
    stage = folder / f"{PARTIAL_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:  # (mkdir inside: a signal arriving just after it must still remove the folder)
        stage.mkdir()
        yield stage
        staged = sorted(p for p in stage.rglob("*") if p.is_file())
        if not overwrite:  # names only known after computing (e.g. one image per view) are checked here
            taken = [folder / p.relative_to(stage) for p in staged if (folder / p.relative_to(stage)).exists()]
            if taken:
                raise OutputError(f"{taken[0]}: already exists (use --overwrite to replace the outputs)")
        with _signals_held():
            for path in staged:
                final = folder / path.relative_to(stage)
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, final)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def prepare_output_dir(path: str | PathLike[str]) -> Path:
    """Create ``path`` if needed and check it is a writable folder, before any computation starts.

    Staging folders that killed runs left in it (:func:`staged_outputs`) are removed.
    """
    path = Path(path)
    _check_output_name(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create output folder ({_reason(exc)})") from None
    _remove_stale_stages(path)
    probe = path / f".write-test-{uuid.uuid4().hex[:8]}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        raise OutputError(f"{path}: output folder is not writable") from None
    return path


def _verify_image(image: sitk.Image) -> Callable[[Path], None]:
    """A check for :func:`atomic_write`: the written file holds all of ``image``.

    A NIfTI file is checked from its header and length (for ``.nii.gz`` the gzip trailer's length field, which a
    cut stream does not end with) in constant time; other formats are read back.
    """

    def verify(path: Path) -> None:
        if path.name.lower().endswith((".nii", ".nii.gz")):
            _check_nifti_written(path, math.prod(image.GetSize()))
            return
        written = read_image(path)
        if written.GetSize()[:image.GetDimension()] != image.GetSize():
            raise InputError(path, f"reads back with size {written.GetSize()}, expected {image.GetSize()}")

    return verify


def _check_nifti_written(path: Path, voxels: int) -> None:
    compressed = path.name.lower().endswith(".gz")
    try:
        with (gzip.open if compressed else open)(path, "rb") as handle:
            layout = _nifti_layout(handle.read(540))
        with open(path, "rb") as handle:
            handle.seek(-4, os.SEEK_END)
            trailer = struct.unpack("<I", handle.read(4))[0]
    except (OSError, EOFError, struct.error) as exc:
        raise InputError(path, f"cannot be read back ({_reason(exc)})") from None
    if layout is None or layout[1] != voxels:
        raise InputError(path, "the header written does not describe the image")
    length = layout[0] + layout[1] * layout[2]
    if (trailer != length % 2**32) if compressed else path.stat().st_size < length:
        raise InputError(path, f"is truncated: {length} bytes of image data were not all written")


def _sitk_write(image: sitk.Image, path: Path) -> None:
    try:
        sitk.WriteImage(image, str(path), True)
    except RuntimeError as exc:
        raise OSError(_reason(exc)) from None


def write_volume(image: sitk.Image, path: str | PathLike[str], overwrite: bool = False) -> Path:
    """Write an image (NIfTI, NRRD, MHA, ...; chosen by suffix) atomically, compressed, verified by reading back."""
    path = Path(path)
    with atomic_write(path, overwrite, verify=_verify_image(image)) as tmp:
        _sitk_write(image, tmp)
    return path


def _verify_png(path: Path) -> None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(path, _reason(exc)) from None


def write_png(pixels: np.ndarray, path: str | PathLike[str], overwrite: bool = False) -> Path:
    """Write a uint8 image ``(rows, cols)`` or ``(rows, cols, 3)`` as PNG, atomically, verified by reading back."""
    from PIL import Image

    path = Path(path)
    with atomic_write(path, overwrite, verify=_verify_png) as tmp:
        Image.fromarray(np.ascontiguousarray(pixels)).save(tmp, format="PNG")
    return path


def finite_json(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (strict JSON has no NaN / Infinity)."""
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [finite_json(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_json(document: Any, path: str | PathLike[str], overwrite: bool = False) -> Path:
    """Write ``document`` as strict JSON (NaN / infinite numbers become null, other objects text), atomically."""
    path = Path(path)
    text = json.dumps(finite_json(document), indent=1, allow_nan=False, default=str) + "\n"
    with atomic_write(path, overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
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
    with atomic_write(path, overwrite, verify=_verify_image(labels)) as tmp:
        slicerio.write_segmentation(str(tmp), segmentation)
    return path
