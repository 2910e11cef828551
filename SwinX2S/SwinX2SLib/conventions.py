"""Geometry conventions: the one module that knows axes, orientations and flips.

Model grid
----------
A model-grid volume is a numpy array indexed ``[x, y, z]`` (shape ``(X, Y, Z)``, default ``(128, 128, 160)``)
with isotropic spacing. Increasing index points, in patient terms:

====  ===========================  =========================================
axis  towards                      also
====  ===========================  =========================================
x     patient **left** (R → L)     rows of the coronal (AP) image
y     patient **anterior** (P → A) rows of the sagittal (lateral) image
z     patient **superior** (I → S) columns of both images
====  ===========================  =========================================

That is ITK orientation code ``"LAS"``: ITK/DICOM (LPS) direction matrix ``diag(1, -1, 1)``; NIfTI/Slicer (RAS)
affine ``diag(-s, s, s)`` plus origin. It is what the published Swin-X2S data contain (spine at low y, left femur
at high x, C1 at high z; checked by ``Testing/test_conventions.py`` on ``../shared``).

Published files carry a wrong header: their affine claims ``diag(-s, -s, s)`` (y towards posterior) while their
content has y towards anterior. :func:`read_published_volume` keeps their arrays and origin and attaches the
correct direction. This is recorded as a property of the data, not hidden as a flip.

2-D images
----------
In the model convention a coronal image is ``(X, Z)`` (the volume integrated along y) and a sagittal image is
``(Y, Z)`` (integrated along x), indices running the same way as the grid. Files a person looks at (PNG, DICOM
radiographs, our 2-D NIfTI DRRs) are stored in *display* orientation: rows top → bottom = superior → inferior;
AP image columns left → right = patient right → left (radiological convention); lateral image columns
left → right = patient anterior → posterior. :func:`image_to_display` and :func:`display_to_image` convert.

In DICOM terms the display orientation is ``PatientOrientation`` :data:`DISPLAY_PATIENT_ORIENTATION`: ``L\\F`` for the
AP image and ``P\\F`` for the lateral one (the first letter is the patient direction of increasing column index,
the second that of increasing row index). :func:`patient_orientation_to_display` turns a radiograph stored in any
of the eight axis-aligned orientations into the display orientation; :func:`display_to_patient_orientation` is its
inverse (the realistic simulator uses it to write rotated files).

SimpleITK arrays are ``(z, y, x)``; :func:`array_from_sitk` / :func:`sitk_from_array` transpose (no flip) so
that code elsewhere only sees ``[x, y, z]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Literal

import numpy as np

from .errors import InputError

if TYPE_CHECKING:  # SimpleITK is imported where images are touched: the network needs no image library
    import SimpleITK as sitk

__all__ = [
    "DEFAULT_GRID_SHAPE",
    "DISPLAY_PATIENT_ORIENTATION",
    "GRID_DIRECTION_LPS",
    "GRID_ORIENTATION",
    "PROJECTION_AXIS",
    "VIEWS",
    "ModelGrid",
    "View",
    "array_from_sitk",
    "ct_to_model_grid",
    "display_spacing_to_image",
    "display_to_image",
    "display_to_patient_orientation",
    "image_to_display",
    "label_to_model_grid",
    "lps_to_ras",
    "model_grid_for_ct",
    "model_grid_to_reference",
    "patient_orientation_to_display",
    "physical_bounds_lps",
    "ras_to_lps",
    "read_published_ct_hu",
    "read_published_pair",
    "read_published_volume",
    "rotate_180_about_si",
    "sitk_from_array",
]

View = Literal["coronal", "sagittal"]
VIEWS: tuple[View, ...] = ("coronal", "sagittal")
DEFAULT_GRID_SHAPE: tuple[int, int, int] = (128, 128, 160)
GRID_ORIENTATION = "LAS"
GRID_DIRECTION_LPS = np.diag([1.0, -1.0, 1.0])
PROJECTION_AXIS: dict[str, int] = {"coronal": 1, "sagittal": 0}
"""The model-grid axis each view integrates along: coronal along y (AP beam), sagittal along x (lateral beam)."""

_LPS_TO_RAS = np.array([-1.0, -1.0, 1.0])

DISPLAY_PATIENT_ORIENTATION: dict[str, tuple[str, str]] = {"coronal": ("L", "F"), "sagittal": ("P", "F")}
"""DICOM ``PatientOrientation`` (direction of increasing column, of increasing row) of the display orientation."""

_OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "H": "F", "F": "H"}


def lps_to_ras(points: np.ndarray) -> np.ndarray:
    """Convert LPS (ITK/DICOM) coordinates ``(..., 3)`` to RAS (Slicer/NIfTI); the inverse is the same map."""
    return np.asarray(points, dtype=np.float64) * _LPS_TO_RAS


ras_to_lps = lps_to_ras


@dataclass(frozen=True)
class ModelGrid:
    """Geometry of a model-grid volume.

    Args:
        shape: ``(X, Y, Z)`` voxels.
        spacing: isotropic voxel size in mm.
        origin_lps: LPS position (mm) of the centre of voxel ``[0, 0, 0]``.

    Examples::

        >>> grid = ModelGrid.centered(center_lps=(0, 0, 0), fov_mm=480.0)
        >>> grid.spacing
        3.0
        >>> grid.index_to_ras([[127, 0, 0]])[0, 0] < grid.index_to_ras([[0, 0, 0]])[0, 0]  # +x is patient left
        True
    """

    shape: tuple[int, int, int] = DEFAULT_GRID_SHAPE
    spacing: float = 1.0
    origin_lps: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise ValueError(f"a model grid needs three positive sizes, got {self.shape}")
        if not self.spacing > 0:
            raise ValueError(f"model grid spacing must be positive, got {self.spacing}")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "spacing", float(self.spacing))
        object.__setattr__(self, "origin_lps", tuple(float(o) for o in self.origin_lps))

    @classmethod
    def centered(
        cls, center_lps: tuple[float, float, float] | np.ndarray, fov_mm: float, shape=DEFAULT_GRID_SHAPE
    ) -> ModelGrid:
        """A grid of ``shape`` whose longest side spans ``fov_mm``, centred on ``center_lps``."""
        shape = tuple(int(s) for s in shape)
        spacing = float(fov_mm) / max(shape)
        half = (np.array(shape, dtype=np.float64) - 1.0) / 2.0 * spacing
        origin = np.asarray(center_lps, dtype=np.float64) - GRID_DIRECTION_LPS @ half
        return cls(shape, spacing, tuple(origin))

    @property
    def direction_lps(self) -> np.ndarray:
        """ITK direction matrix (columns = LPS direction of increasing x, y, z index)."""
        return GRID_DIRECTION_LPS.copy()

    @property
    def extent_mm(self) -> tuple[float, float, float]:
        """Physical size (mm) of the grid along x, y, z."""
        return tuple(s * self.spacing for s in self.shape)

    @property
    def center_lps(self) -> np.ndarray:
        """LPS position of the grid centre."""
        return self.index_to_lps((np.array(self.shape, dtype=np.float64) - 1.0) / 2.0)

    def index_to_lps(self, ijk: np.ndarray) -> np.ndarray:
        """Continuous voxel indices ``(..., 3)`` → LPS mm ``(..., 3)``."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return np.asarray(self.origin_lps) + (ijk * self.spacing) @ GRID_DIRECTION_LPS.T

    def index_to_ras(self, ijk: np.ndarray) -> np.ndarray:
        """Continuous voxel indices ``(..., 3)`` → RAS mm ``(..., 3)`` (Slicer coordinates)."""
        return lps_to_ras(self.index_to_lps(ijk))

    def lps_to_index(self, lps: np.ndarray) -> np.ndarray:
        """LPS mm ``(..., 3)`` → continuous voxel indices ``(..., 3)``."""
        lps = np.asarray(lps, dtype=np.float64) - np.asarray(self.origin_lps)
        return (lps @ GRID_DIRECTION_LPS) / self.spacing

    def ras_to_index(self, ras: np.ndarray) -> np.ndarray:
        """RAS mm ``(..., 3)`` → continuous voxel indices ``(..., 3)``."""
        return self.lps_to_index(ras_to_lps(ras))

    def affine_ras(self) -> np.ndarray:
        """4×4 voxel-index → RAS matrix (the NIfTI ``sform`` / Slicer IJKToRAS of this grid)."""
        affine = np.eye(4)
        affine[:3, :3] = np.diag(_LPS_TO_RAS) @ GRID_DIRECTION_LPS * self.spacing
        affine[:3, 3] = lps_to_ras(np.asarray(self.origin_lps))
        return affine

    def reference_image(self) -> sitk.Image:
        """An empty SimpleITK image with this grid's geometry (a resampling target)."""
        import SimpleITK as sitk
        image = sitk.Image([int(s) for s in self.shape], sitk.sitkUInt8)
        _set_geometry(image, self)
        return image

    def to_dict(self) -> dict:
        """JSON-ready description (``shape``, ``spacing_mm``, ``origin_lps``, ``orientation``, ``affine_ras``)."""
        return {
            "shape": list(self.shape),
            "spacing_mm": self.spacing,
            "origin_lps": list(self.origin_lps),
            "orientation": GRID_ORIENTATION,
            "affine_ras": self.affine_ras().tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ModelGrid:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(data["shape"]), float(data["spacing_mm"]), tuple(data["origin_lps"]))


def _set_geometry(image: sitk.Image, grid: ModelGrid) -> None:
    image.SetSpacing([grid.spacing] * 3)
    image.SetOrigin(grid.origin_lps)
    image.SetDirection(GRID_DIRECTION_LPS.flatten().tolist())


def array_from_sitk(image: sitk.Image) -> np.ndarray:
    """The voxel array of a SimpleITK image indexed like the image (``[i, j, k]``, or ``[i, j]`` in 2-D)."""
    import SimpleITK as sitk
    array = sitk.GetArrayFromImage(image)
    return np.ascontiguousarray(array.transpose(tuple(reversed(range(array.ndim)))))


def sitk_from_array(array_xyz: np.ndarray, grid: ModelGrid | None = None) -> sitk.Image:
    """A SimpleITK image from an ``[x, y, z]`` array, with the model grid's geometry when given."""
    import SimpleITK as sitk
    array_xyz = np.asarray(array_xyz)
    if grid is not None and tuple(array_xyz.shape) != grid.shape:
        raise ValueError(f"array shape {array_xyz.shape} does not match the grid shape {grid.shape}")
    image = sitk.GetImageFromArray(np.ascontiguousarray(array_xyz.transpose(tuple(reversed(range(array_xyz.ndim))))))
    if grid is not None:
        _set_geometry(image, grid)
    return image


def physical_bounds_lps(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper LPS corners (mm) of the box holding every voxel centre of ``image``."""
    size = np.array(image.GetSize()) - 1
    corners = [
        image.TransformContinuousIndexToPhysicalPoint([float(c) for c in size * np.array(bits)])
        for bits in np.ndindex(2, 2, 2)
    ]
    corners = np.array(corners)
    return corners.min(axis=0), corners.max(axis=0)


def _image_center_lps(image: sitk.Image) -> np.ndarray:
    center_index = (np.array(image.GetSize(), dtype=np.float64) - 1.0) / 2.0
    return np.array(image.TransformContinuousIndexToPhysicalPoint(center_index.tolist()))


def model_grid_for_ct(
    ct: sitk.Image, shape: tuple[int, int, int] = DEFAULT_GRID_SHAPE, fov_mm: float | None = None
) -> ModelGrid:
    """The model grid a CT is resampled onto (see :func:`ct_to_model_grid`), without resampling anything.

    The field of view follows the published pipeline: a cube whose side is the CT's largest physical extent
    (or ``fov_mm`` when given), centred on the CT's centre, sampled at ``fov_mm / max(shape)`` mm; the shorter
    grid axes (x and y by default) take the central part of the cube.
    """
    if ct.GetDimension() != 3:
        raise ValueError(f"a CT must be 3-D, got a {ct.GetDimension()}-D image")
    if fov_mm is None:
        low, high = physical_bounds_lps(ct)
        fov_mm = float(np.max(high - low + min(ct.GetSpacing())))
    return ModelGrid.centered(_image_center_lps(ct), fov_mm, shape)


def ct_to_model_grid(
    ct: sitk.Image,
    shape: tuple[int, int, int] = DEFAULT_GRID_SHAPE,
    fov_mm: float | None = None,
    default_value: float = -1024.0,
) -> tuple[np.ndarray, ModelGrid]:
    """Resample a CT of any orientation and spacing onto the model grid (linear interpolation).

    Args:
        ct: a 3-D CT (HU), any direction matrix and (anisotropic) spacing.
        shape: grid size ``(X, Y, Z)``.
        fov_mm: side of the field-of-view cube in mm; ``None`` for the CT's largest extent
            (see :func:`model_grid_for_ct`).
        default_value: value outside the CT (air, -1024 HU).

    Returns:
        ``(volume, grid)``: float32 ``[x, y, z]`` array and its :class:`ModelGrid`.
    """
    import SimpleITK as sitk
    grid = model_grid_for_ct(ct, shape, fov_mm)
    resampled = sitk.Resample(
        ct, grid.reference_image(), sitk.Transform(), sitk.sitkLinear, default_value, sitk.sitkFloat32
    )
    return array_from_sitk(resampled), grid


def label_to_model_grid(label: sitk.Image, grid: ModelGrid) -> np.ndarray:
    """Resample a label map onto ``grid`` (nearest neighbour); returns uint8 ``[x, y, z]``."""
    import SimpleITK as sitk
    resampled = sitk.Resample(label, grid.reference_image(), sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                              sitk.sitkUInt8)
    return array_from_sitk(resampled)


def model_grid_to_reference(
    array_xyz: np.ndarray,
    grid: ModelGrid,
    reference: sitk.Image,
    interpolator: Literal["nearest", "linear"] = "nearest",
) -> sitk.Image:
    """Resample a model-grid array onto another image's grid (e.g. the source CT) so it overlays it exactly."""
    import SimpleITK as sitk
    source = sitk_from_array(array_xyz, grid)
    method = {"nearest": sitk.sitkNearestNeighbor, "linear": sitk.sitkLinear}[interpolator]
    return sitk.Resample(source, reference, sitk.Transform(), method, 0, source.GetPixelID())


def read_published_volume(path: str | PathLike[str]) -> tuple[np.ndarray, ModelGrid]:
    """Read a model-grid NIfTI file of the published Swin-X2S data (``ct``, ``*_label``, ``*_pred``, inputs).

    Returns the array as stored (``[x, y, z]``) and a :class:`ModelGrid` with the file's spacing and origin and the
    correct (LAS) direction; see the module docstring for why the file's own direction is not used.
    """
    from .io import read_image

    image = read_image(path)
    if image.GetDimension() != 3:
        raise InputError(path, f"expected a 3-D model-grid volume, got {image.GetDimension()}-D")
    spacing = np.array(image.GetSpacing())
    if not np.allclose(spacing, spacing[0], rtol=1e-4):
        raise InputError(path, f"expected isotropic spacing on the model grid, got {tuple(spacing)}")
    grid = ModelGrid(tuple(image.GetSize()), float(spacing[0]), tuple(image.GetOrigin()))
    return array_from_sitk(image), grid


def read_published_ct_hu(path: str | PathLike[str]) -> tuple[np.ndarray, ModelGrid]:
    """A published sample ``ct.nii.gz`` (rescaled, 0..~190) mapped back to Hounsfield units, on its model grid.

    The published file stores about ``(HU + 1024) / 16`` with a case-dependent offset; the fat peak of the histogram
    (the most common value between 40 and 90) is taken as -100 HU. Our DRRs of the result correlate with the
    published network inputs at r 0.98-0.99 (``Testing/test_drr.py``).
    """
    values, grid = read_published_volume(path)
    fat = 40 + int(np.argmax(np.bincount(values.astype(np.int64).ravel(), minlength=90)[40:90]))
    return (16.0 * (values - fat) - 100.0).astype(np.float32), grid


def _published_image(path: str | PathLike[str], view: View) -> tuple[np.ndarray, ModelGrid]:
    volume, grid = read_published_volume(path)
    axis = PROJECTION_AXIS[view]
    first = np.take(volume, 0, axis=axis)
    if not np.array_equal(np.broadcast_to(np.expand_dims(first, axis), volume.shape), volume):
        raise InputError(path, f"not a published {view} input: the image is not repeated along volume axis {axis}")
    return first, grid


def read_published_pair(
    coronal_path: str | PathLike[str], sagittal_path: str | PathLike[str]
) -> tuple[np.ndarray, np.ndarray, ModelGrid]:
    """Read a published preprocessed input pair (``*_input_cor.nii.gz``, ``*_input_sag.nii.gz``).

    The published files store each 2-D DRR as a 3-D volume repeated along the missing axis.

    Returns:
        ``(coronal (X, Z), sagittal (Y, Z), grid)``; images float32 scaled from 0-255 to [0, 1].
    """
    coronal, grid = _published_image(coronal_path, "coronal")
    sagittal, grid_sag = _published_image(sagittal_path, "sagittal")
    if grid_sag.shape != grid.shape or not np.isclose(grid_sag.spacing, grid.spacing):
        raise InputError(sagittal_path, f"does not match the coronal input's grid {grid.shape} @ {grid.spacing} mm")
    return (coronal.astype(np.float32) / 255.0, sagittal.astype(np.float32) / 255.0, grid)


def image_to_display(image: np.ndarray, view: View) -> np.ndarray:
    """Model-convention image (coronal ``(X, Z)``, sagittal ``(Y, Z)``) → display orientation ``(rows, cols)``.

    Display: rows top → bottom = superior → inferior; coronal columns = patient right → left (x increasing);
    sagittal columns = anterior → posterior (y decreasing).
    """
    _check_view(view)
    display = np.asarray(image).T[::-1, :]
    return display[:, ::-1] if view == "sagittal" else display


def display_to_image(display: np.ndarray, view: View) -> np.ndarray:
    """Inverse of :func:`image_to_display`."""
    _check_view(view)
    display = np.asarray(display)
    if view == "sagittal":
        display = display[:, ::-1]
    return display[::-1, :].T


def display_spacing_to_image(spacing_rows_cols: tuple[float, float]) -> tuple[float, float]:
    """Pixel spacing ``(row, col)`` of a display-oriented image → ``(first, second)`` axis of the model image."""
    return float(spacing_rows_cols[1]), float(spacing_rows_cols[0])


def _orientation_letters(orientation: tuple[str, str] | list[str], view: View) -> tuple[str, str]:
    """The dominant letters of a ``PatientOrientation`` pair, checked against the view's display axes."""
    _check_view(view)
    if len(orientation) != 2 or not all(str(o).strip() for o in orientation):
        raise ValueError(f"PatientOrientation needs two directions, got {list(orientation)}")
    letters = tuple(str(o).strip().upper()[0] for o in orientation)
    if any(letter not in _OPPOSITE for letter in letters):
        raise ValueError(f"PatientOrientation {list(orientation)} uses letters outside L, R, A, P, H, F")
    target = DISPLAY_PATIENT_ORIENTATION[view]
    wanted_axes = {frozenset((t, _OPPOSITE[t])) for t in target}
    if {frozenset((letter, _OPPOSITE[letter])) for letter in letters} != wanted_axes:
        raise ValueError(f"PatientOrientation {list(orientation)} does not describe a {view} image (expected the "
                         f"axes {target[0]}/{_OPPOSITE[target[0]]} and {target[1]}/{_OPPOSITE[target[1]]})")
    return letters


def patient_orientation_to_display(array: np.ndarray, orientation: tuple[str, str] | list[str],
                                   view: View) -> np.ndarray:
    """Turn a radiograph stored with DICOM ``PatientOrientation`` ``orientation`` into display orientation.

    Args:
        array: ``(rows, cols)`` pixels as stored.
        orientation: ``(direction of increasing column, direction of increasing row)``, e.g. ``("R", "H")``;
            only the first letter of each entry counts (``"LF"`` is read as ``"L"``).
        view: ``"coronal"`` (AP/PA image) or ``"sagittal"`` (lateral image).

    Returns:
        The pixels transposed and/or reversed so that the orientation is :data:`DISPLAY_PATIENT_ORIENTATION`.

    Raises:
        ValueError: letters that are not two of the view's display axes (e.g. ``A`` in an AP image).
    """
    col_dir, row_dir = _orientation_letters(orientation, view)
    out = np.asarray(array)
    if col_dir in "HF":  # superior-inferior runs along the columns: swap rows and columns
        out, col_dir, row_dir = out.T, row_dir, col_dir
    target_col, target_row = DISPLAY_PATIENT_ORIENTATION[view]
    if row_dir != target_row:
        out = out[::-1, :]
    if col_dir != target_col:
        out = out[:, ::-1]
    return out


def display_to_patient_orientation(display: np.ndarray, orientation: tuple[str, str] | list[str],
                                   view: View) -> np.ndarray:
    """Inverse of :func:`patient_orientation_to_display`: a display-oriented image stored as ``orientation``."""
    col_dir, row_dir = _orientation_letters(orientation, view)
    target_col, target_row = DISPLAY_PATIENT_ORIENTATION[view]
    out = np.asarray(display)
    transposed = col_dir in "HF"
    stored_col, stored_row = (row_dir, col_dir) if transposed else (col_dir, row_dir)
    if stored_row != target_row:
        out = out[::-1, :]
    if stored_col != target_col:
        out = out[:, ::-1]
    return out.T if transposed else out


def rotate_180_about_si(coronal, sagittal, label_xyz):
    """The same patient turned 180° about the superior–inferior axis: x → −x and y → −y.

    A rotation, not a mirror: the patient's left stays the patient's left (label ids are unchanged), it just lies at
    low x afterwards. The AP image is reversed along x and the lateral image along y. Works on numpy arrays and
    torch tensors alike.

    Args:
        coronal: ``(..., X, Z)`` image(s).
        sagittal: ``(..., Y, Z)`` image(s).
        label_xyz: ``(X, Y, Z)`` (or ``(..., X, Y, Z)``) volume.

    Returns:
        ``(coronal, sagittal, label_xyz)`` rotated.
    """

    def flip(array, axes: tuple[int, ...]):
        return np.flip(array, axes) if isinstance(array, np.ndarray) else array.flip(axes)

    return flip(coronal, (-2,)), flip(sagittal, (-2,)), flip(label_xyz, (-3, -2))


def _check_view(view: str) -> None:
    if view not in VIEWS:
        raise ValueError(f"view must be 'coronal' or 'sagittal', not {view!r}")
