"""Digitally reconstructed radiographs (DRRs) from a CT, in the exact form the Swin-X2S network expects.

Images live on the model grid of :mod:`SwinX2SLib.conventions` (array ``[x, y, z]``: +x patient left, +y anterior,
+z superior; the grid of :func:`~SwinX2SLib.conventions.ct_to_model_grid`) and are computed with PyTorch, on CPU or
CUDA:

* coronal (AP) view: integrates along y (``PROJECTION_AXIS["coronal"]``), image ``(X, Z)``;
* sagittal (lateral) view: integrates along x, image ``(Y, Z)``.

:func:`render_from_model_grid` projects a volume already on the grid (phantom, training).
:func:`render_model_inputs` takes a CT in HU of any orientation: when its voxel axes are parallel to the grid's
(any order and sign, i.e. every CT without gantry tilt) and one parallel view per side is asked for, it integrates
the CT on its own voxels block by block and resamples the two projections to the grid's pixels (no resampled copy
of the CT: ~40 ms and a few MB for 512 × 512 × 133 voxels, see ``benchmarks/bench_drr.py``); otherwise it resamples
the CT onto the grid first.

Geometry
--------
Views are described by a gantry angle ``θ`` about the superior-inferior (z) axis through the grid centre (the
isocentre). In grid-index coordinates the source lies in direction ``s(θ) = (-sin θ, cos θ, 0)`` from the
isocentre and the detector rows run along ``r(θ) = (cos θ, sin θ, 0)``; detector columns always run along +z.
So ``θ = 0`` is the AP view (source anterior, rows towards patient left: the coronal image ``(X, Z)``) and
``θ = 90`` the lateral view (source on the patient's right, rows towards anterior: the sagittal image ``(Y, Z)``).
An N-view group (paper, Fig. 2) holds N images per side at ``90 / N`` degree steps: coronal ``k · 90 / N``,
sagittal ``90 + k · 90 / N``.

* ``parallel``: rays along ``-s(θ)``; the detector plane passes through the isocentre and its pixels coincide
  with the grid (pixel spacing = grid spacing). At 0° and 90° the image is the exact sum along the grid axis
  times the spacing; other angles sample the rotated volume trilinearly.
* ``perspective``: a point source at ``sid_mm`` from the isocentre, the detector plane at ``sdd_mm`` from the
  source; detector pixels are the grid pixels magnified by ``sdd / sid`` so the isocentre plane is sampled at the
  grid spacing. Rays are sampled trilinearly (``grid_sample``) in chunks that keep the working memory below the
  size of the volume.

Intensity presets (:data:`PRESETS`)
-----------------------------------
A new preset is one entry of :data:`PRESETS` (the command line's choices follow); its tests:
``Testing/test_drr.py::test_presets_and_geometry_metadata`` and ``::test_cli_preset_choices_match_the_registry``.

* ``published``: what the published Swin-X2S pipeline fed its network: the parallel line integral ``L`` of
  ``max(HU, 0)`` (HU·mm) on a fixed window ``clip(L / 34000, 0, 1)`` common to both views. On the three published
  samples (``Testing/test_drr.py``) the network inputs are linear in ``L`` (no log, gamma or inversion: Pearson
  r 0.98-0.99), with one scale for the coronal and the sagittal image of a case and 0.1-4.5 % of the pixels
  saturated at 255, which per-image min-max scaling cannot produce. The fitted saturation is 34,300-35,900 HU·mm
  for the CTPelvic1K and CTSpine1K cases and 24,900-25,900 for the TotalSegmentator case (whose CT intensity
  scale is less certain); :data:`PUBLISHED_SATURATION_HU_MM` takes the former.
* ``published_minmax``: the same line integral, min-max scaled to [0, 1] per image.
* ``physical``: HU → linear attenuation ``μ = μ_water (1 + HU / 1000)`` (air 0, soft tissue included), Beer-Lambert
  transmission ``T = exp(-∫ μ dl)``, shown as ``-ln T`` (the log image of a radiograph) min-max scaled, so bone is
  bright; ``log=False`` shows ``T`` itself and ``invert`` swaps bright and dark.

Examples::

    >>> import SimpleITK as sitk
    >>> ct = sitk.ReadImage("ct.nii.gz")                                   # doctest: +SKIP
    >>> inputs = render_model_inputs(ct, preset="published")               # doctest: +SKIP
    >>> inputs.coronal.shape, inputs.sagittal.shape                        # doctest: +SKIP
    ((1, 128, 160), (1, 128, 160))
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from .conventions import (
    DEFAULT_GRID_SHAPE,
    GRID_DIRECTION_LPS,
    PROJECTION_AXIS,
    VIEWS,
    ModelGrid,
    View,
    ct_to_model_grid,
    image_to_display,
    label_to_model_grid,
    model_grid_for_ct,
)
from .errors import InputError
from .options import DRR_GEOMETRIES, Geometry

__all__ = [
    "DEFAULT_SDD_MM",
    "DEFAULT_SID_MM",
    "GEOMETRIES",
    "PRESETS",
    "PUBLISHED_SATURATION_HU_MM",
    "DRRPreset",
    "Geometry",
    "ModelInputs",
    "Radiograph",
    "get_preset",
    "point_source_integrals",
    "render_from_model_grid",
    "render_model_inputs",
    "render_views",
    "view_angles",
]

GEOMETRIES = DRR_GEOMETRIES  # the ``--geometry`` choices, listed in :mod:`SwinX2SLib.options`
DEFAULT_SID_MM = 1000.0
"""Source-to-isocentre distance (mm) of common radiography (the later published code used 1800)."""
DEFAULT_SDD_MM = 1400.0
"""Source-to-detector distance (mm) of common radiography (the later published code used 2000)."""
PUBLISHED_SATURATION_HU_MM = 34000.0
"""Line integral of ``max(HU, 0)`` (HU·mm) that the published inputs show as 255 (fitted on the shared samples)."""

_BASE_ANGLE: dict[str, float] = {"coronal": 0.0, "sagittal": 90.0}
_STEP_VOXELS = 0.5
"""Ray sampling step of the trilinear paths, in voxels (the 0°/90° parallel views are exact sums)."""
_CHUNK_VOXELS = (1 << 18, 1 << 24)
"""Voxels per block when a CT is projected on its own grid, on CPU (1 MiB of float32: stays in cache) and on CUDA
(few launches)."""


@dataclass(frozen=True)
class DRRPreset:
    """How CT numbers become image intensities in [0, 1].

    Args:
        name: registry key.
        description: one line for ``--help`` and reports.
        model: ``"line_integral"`` integrates ``max(HU - hu_threshold, 0)`` (HU·mm); ``"beer_lambert"`` integrates
            the linear attenuation ``μ_water (1 + HU / 1000)`` (clipped at 0) and forms the transmission
            ``T = exp(-∫ μ dl)``.
        hu_threshold: CT number below which voxels are ignored (``line_integral``).
        mu_water_per_mm: linear attenuation of water in 1/mm (``beer_lambert``; 0.0193 ≈ 70 keV).
        log: ``beer_lambert`` only: show ``-ln T`` (bright bone, log-compressed) instead of ``T`` (raw detector).
        saturation: value shown as 1.0 (fixed window ``clip(v / saturation, 0, 1)``); ``None`` scales each image
            min-max to [0, 1].
        invert: show ``1 - image`` after scaling.
    """

    name: str
    description: str
    model: Literal["line_integral", "beer_lambert"] = "line_integral"
    hu_threshold: float = 0.0
    mu_water_per_mm: float = 0.0193
    log: bool = True
    saturation: float | None = None
    invert: bool = False

    def __post_init__(self) -> None:
        if self.model not in ("line_integral", "beer_lambert"):
            raise ValueError(f"DRR preset {self.name!r}: unknown model {self.model!r}")
        if self.saturation is not None and not self.saturation > 0:
            raise ValueError(f"DRR preset {self.name!r}: saturation must be positive, got {self.saturation}")
        if not self.mu_water_per_mm > 0:
            raise ValueError(f"DRR preset {self.name!r}: mu_water_per_mm must be positive")

    def density(self, hu: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """Per-voxel quantity whose line integral (× mm) is rendered: ``max(HU - t, 0)`` or ``μ`` in 1/mm.

        Args:
            hu: float tensor of CT numbers, any shape.
            inplace: overwrite ``hu`` (saves a copy of a large volume).
        """
        out = hu if inplace else hu.clone()
        if self.model == "line_integral":
            if self.hu_threshold:
                out.sub_(self.hu_threshold)
            return out.clamp_min_(0.0)
        return out.mul_(self.mu_water_per_mm / 1000.0).add_(self.mu_water_per_mm).clamp_min_(0.0)

    def finish(self, integral: torch.Tensor) -> torch.Tensor:
        """Line integrals ``(V, R, C)`` → images ``(V, R, C)`` in [0, 1]."""
        image = integral
        if self.model == "beer_lambert" and not self.log:
            image = torch.exp(-integral)
        if self.saturation is not None:
            image = (image / self.saturation).clamp(0.0, 1.0)
        else:
            low = image.amin(dim=(-2, -1), keepdim=True)
            span = image.amax(dim=(-2, -1), keepdim=True) - low
            image = (image - low) / torch.where(span > 0, span, torch.ones_like(span))
        return 1.0 - image if self.invert else image


PRESETS: dict[str, DRRPreset] = {
    preset.name: preset
    for preset in (
        DRRPreset(
            "published",
            "published Swin-X2S inputs: line integral of max(HU, 0), fixed window common to both views",
            saturation=PUBLISHED_SATURATION_HU_MM,
        ),
        DRRPreset("published_minmax", "line integral of max(HU, 0), each image min-max scaled to [0, 1]"),
        DRRPreset(
            "physical",
            "radiograph-like: Beer-Lambert attenuation (water/air reference), -ln(transmission), min-max scaled",
            model="beer_lambert",
            log=True,
        ),
    )
}


def get_preset(preset: str | DRRPreset) -> DRRPreset:
    """Look a preset up by name (a :class:`DRRPreset` passes through)."""
    if isinstance(preset, DRRPreset):
        return preset
    try:
        return PRESETS[preset]
    except KeyError:
        raise ValueError(f"unknown DRR preset {preset!r}; choose one of {sorted(PRESETS)}") from None


@dataclass(frozen=True)
class Radiograph:
    """One rendered image with the detector geometry needed to place it in 3-D.

    Args:
        image: ``(rows, cols)`` float32 in [0, 1], model image convention: coronal ``(X, Z)``, sagittal ``(Y, Z)``
            (use :func:`SwinX2SLib.conventions.image_to_display` for viewing).
        spacing_mm: detector pixel size ``(row, col)`` in mm.
        view: the group the image belongs to (``"coronal"`` or ``"sagittal"``).
        angle_deg: gantry angle about the superior-inferior axis (0 = AP, 90 = lateral from the right).
        geometry: ``"parallel"`` or ``"perspective"``.
        source_lps: LPS position (mm) of the point source; ``None`` for parallel beams.
        detector_origin_lps: LPS position (mm) of the centre of pixel ``[0, 0]``.
        detector_row_dir_lps: LPS unit vector of increasing first (row) index.
        detector_col_dir_lps: LPS unit vector of increasing second (column) index.
        ray_dir_lps: LPS unit vector of the central ray (source → detector).
    """

    image: np.ndarray
    spacing_mm: tuple[float, float]
    view: View
    angle_deg: float
    geometry: Geometry
    source_lps: tuple[float, float, float] | None
    detector_origin_lps: tuple[float, float, float]
    detector_row_dir_lps: tuple[float, float, float]
    detector_col_dir_lps: tuple[float, float, float]
    ray_dir_lps: tuple[float, float, float]

    def to_dict(self) -> dict:
        """JSON-ready geometry (everything but the pixels)."""
        return {
            "view": self.view,
            "angle_deg": self.angle_deg,
            "geometry": self.geometry,
            "shape": list(self.image.shape),
            "spacing_mm": list(self.spacing_mm),
            "source_lps": None if self.source_lps is None else list(self.source_lps),
            "detector_origin_lps": list(self.detector_origin_lps),
            "detector_row_dir_lps": list(self.detector_row_dir_lps),
            "detector_col_dir_lps": list(self.detector_col_dir_lps),
            "ray_dir_lps": list(self.ray_dir_lps),
            "display": self.display_geometry(),
        }

    def pixel_lps(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """LPS positions (mm) ``(..., 3)`` of continuous pixel indices of :attr:`image` on the detector plane."""
        return (np.asarray(self.detector_origin_lps)
                + np.asarray(rows, dtype=np.float64)[..., None] * self.spacing_mm[0] * np.asarray(
                    self.detector_row_dir_lps)
                + np.asarray(cols, dtype=np.float64)[..., None] * self.spacing_mm[1] * np.asarray(
                    self.detector_col_dir_lps))

    def display_geometry(self) -> dict:
        """Detector geometry of the display-oriented image (:func:`~SwinX2SLib.conventions.image_to_display`).

        Returns:
            ``shape`` (rows, cols), ``spacing_mm`` (row, col), ``origin_lps`` (centre of display pixel
            ``[0, 0]``), ``row_dir_lps`` and ``col_dir_lps`` (unit vectors of increasing display row / column):
            what a viewer needs to place a written 2-D file in 3-D.
        """
        rows, cols = np.indices(self.image.shape, dtype=np.float64)
        shown_rows = image_to_display(rows, self.view)  # model row index under each display pixel
        shown_cols = image_to_display(cols, self.view)
        corner = self.pixel_lps(shown_rows[0, 0], shown_cols[0, 0])
        down = self.pixel_lps(shown_rows[1, 0], shown_cols[1, 0]) - corner
        right = self.pixel_lps(shown_rows[0, 1], shown_cols[0, 1]) - corner
        return {
            "shape": list(shown_rows.shape),
            "spacing_mm": [float(np.linalg.norm(down)), float(np.linalg.norm(right))],
            "origin_lps": [float(v) for v in corner],
            "row_dir_lps": [float(v) for v in down / np.linalg.norm(down)],
            "col_dir_lps": [float(v) for v in right / np.linalg.norm(right)],
        }


@dataclass(frozen=True)
class ModelInputs:
    """The network's input pair on one model grid.

    Args:
        coronal: ``(N, X, Z)`` float32 in [0, 1] (N-view coronal group, first image = AP).
        sagittal: ``(N, Y, Z)`` float32 in [0, 1] (first image = lateral).
        grid: the model grid the images and the label are aligned with.
        label: uint8 ``[x, y, z]`` label map on ``grid``, or ``None`` when no label was given.
        radiographs: per view ``(coronal..., sagittal...)`` the image with its detector geometry.
    """

    coronal: np.ndarray
    sagittal: np.ndarray
    grid: ModelGrid
    label: np.ndarray | None
    radiographs: tuple[Radiograph, ...]


def view_angles(view: View, n_views: int = 1) -> tuple[float, ...]:
    """Gantry angles (degrees) of an N-view group: ``base + k · 90 / N`` with base 0 (coronal) or 90 (sagittal)."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, not {view!r}")
    if int(n_views) != n_views or n_views < 1:
        raise ValueError(f"the number of views per side must be a positive integer, got {n_views}")
    return tuple(_BASE_ANGLE[view] + k * 90.0 / n_views for k in range(int(n_views)))


def render_model_inputs(
    ct: sitk.Image,
    preset: str | DRRPreset = "published",
    shape: tuple[int, int, int] = DEFAULT_GRID_SHAPE,
    views: int = 1,
    label: sitk.Image | None = None,
    fov_mm: float | None = None,
    *,
    geometry: Geometry = "parallel",
    sid_mm: float = DEFAULT_SID_MM,
    sdd_mm: float = DEFAULT_SDD_MM,
    device: str | torch.device = "cpu",
) -> ModelInputs:
    """Render the network's input pair (and the aligned model-grid label) from a CT in HU.

    Args:
        ct: 3-D CT in HU, any orientation and spacing.
        preset: intensity preset name or :class:`DRRPreset`.
        shape: model grid ``(X, Y, Z)``; images are ``(X, Z)`` and ``(Y, Z)``.
        views: N images per side (N-view groups at ``90 / N`` degree steps).
        label: optional label map on the CT's geometry, resampled (nearest) onto the same grid.
        fov_mm: side of the field-of-view cube; ``None`` = the CT's largest extent (published pipeline).
        geometry: ``"parallel"`` (published) or ``"perspective"``.
        sid_mm: source-to-isocentre distance (perspective).
        sdd_mm: source-to-detector distance (perspective).
        device: torch device for the projection.

    Returns:
        :class:`ModelInputs` with coronal ``(N, X, Z)``, sagittal ``(N, Y, Z)``, the grid and the label.
    """
    if not isinstance(ct, sitk.Image):
        raise TypeError(f"ct must be a SimpleITK image, got {type(ct).__name__}")
    if ct.GetDimension() != 3:
        raise InputError("CT", f"expected a 3-D CT, got a {ct.GetDimension()}-D image")
    if label is not None and label.GetDimension() != 3:
        raise InputError("label map", f"expected a 3-D label map, got a {label.GetDimension()}-D image")
    preset = get_preset(preset)
    axes = _native_projection_axes(ct)
    if geometry == "parallel" and views == 1 and axes is not None:
        grid = model_grid_for_ct(ct, shape, fov_mm)
        with _single_threaded(torch.device(device)):
            inputs = _render_native(ct, grid, axes, preset, torch.device(device))
    else:
        volume, grid = ct_to_model_grid(ct, shape=shape, fov_mm=fov_mm)
        inputs = render_from_model_grid(
            volume, grid, preset, views, geometry=geometry, sid_mm=sid_mm, sdd_mm=sdd_mm, device=device
        )
    if label is None:
        return inputs
    return ModelInputs(inputs.coronal, inputs.sagittal, grid, label_to_model_grid(label, grid), inputs.radiographs)


def render_from_model_grid(
    volume_xyz: np.ndarray | torch.Tensor,
    grid: ModelGrid,
    preset: str | DRRPreset = "published",
    views: int = 1,
    *,
    geometry: Geometry = "parallel",
    sid_mm: float = DEFAULT_SID_MM,
    sdd_mm: float = DEFAULT_SDD_MM,
    device: str | torch.device = "cpu",
) -> ModelInputs:
    """Render the input pair from a volume already on the model grid (the phantom and training use this).

    Args:
        volume_xyz: ``(X, Y, Z)`` CT numbers in HU on ``grid``.
        grid: the volume's model grid.
        preset: intensity preset name or :class:`DRRPreset`.
        views: N images per side.
        geometry, sid_mm, sdd_mm, device: as in :func:`render_model_inputs`.

    Returns:
        :class:`ModelInputs` (``label`` is ``None``).
    """
    preset = get_preset(preset)
    volume = _prepare_volume(volume_xyz, grid, preset, device)
    groups = {
        view: _render_group(volume, grid, view, view_angles(view, views), preset, geometry, sid_mm, sdd_mm)
        for view in VIEWS
    }
    return ModelInputs(
        coronal=np.stack([r.image for r in groups["coronal"]]),
        sagittal=np.stack([r.image for r in groups["sagittal"]]),
        grid=grid,
        label=None,
        radiographs=(*groups["coronal"], *groups["sagittal"]),
    )


def render_views(
    volume_xyz: np.ndarray | torch.Tensor,
    grid: ModelGrid,
    view: View,
    angles_deg: Sequence[float] | None = None,
    *,
    preset: str | DRRPreset = "published",
    geometry: Geometry = "parallel",
    sid_mm: float = DEFAULT_SID_MM,
    sdd_mm: float = DEFAULT_SDD_MM,
    device: str | torch.device = "cpu",
) -> list[Radiograph]:
    """Render images of one view group at arbitrary gantry angles.

    Args:
        volume_xyz: ``(X, Y, Z)`` CT numbers in HU on ``grid``.
        grid: the volume's model grid.
        view: ``"coronal"`` (images ``(X, Z)``) or ``"sagittal"`` (images ``(Y, Z)``); sets the detector size.
        angles_deg: gantry angles; ``None`` = the view's base angle (0 or 90).
        preset, geometry, sid_mm, sdd_mm, device: as in :func:`render_model_inputs`.

    Returns:
        One :class:`Radiograph` per angle.
    """
    angles = view_angles(view) if angles_deg is None else tuple(float(a) for a in angles_deg)
    preset = get_preset(preset)
    volume = _prepare_volume(volume_xyz, grid, preset, device)
    return _render_group(volume, grid, view, angles, preset, geometry, sid_mm, sdd_mm)


def _native_projection_axes(ct: sitk.Image) -> dict[str, int] | None:
    """For a CT whose voxel axes are parallel to the model grid's (any order and sign), the CT index axis along
    each grid axis (``{"x": i, "y": j, "z": k}``); ``None`` for an oblique CT."""
    direction = np.abs(np.array(ct.GetDirection(), dtype=np.float64).reshape(3, 3))
    rows = np.argmax(direction, axis=1)  # for LPS axis a, the CT index axis nearest to it
    if sorted(rows) != [0, 1, 2] or not np.allclose(direction[np.arange(3), rows], 1.0, atol=1e-6):
        return None
    if min(ct.GetSize()) < 2:
        return None
    return dict(zip("xyz", (int(r) for r in rows), strict=True))


def _render_native(
    ct: sitk.Image, grid: ModelGrid, axes: dict[str, int], preset: DRRPreset, device: torch.device
) -> ModelInputs:
    """Axis-aligned parallel AP and lateral views integrated on the CT's own voxels, then resampled to the grid.

    Sums the preset's density along the CT index axis parallel to grid y (coronal) and x (sagittal) block by block
    (working memory: one block, see :data:`_CHUNK_VOXELS`), box-filters the projections to the grid's pixel size
    and samples them bilinearly at the grid's pixel centres. Equivalent to resampling the CT onto the grid and
    summing, without a resampled copy of the CT and with the CT's full resolution along the rays.
    """
    voxels = sitk.GetArrayViewFromImage(ct)  # (k, j, i): numpy axis of CT index axis n is 2 - n
    spacing = np.array(ct.GetSpacing(), dtype=np.float64)
    along = {"coronal": 2 - axes["y"], "sagittal": 2 - axes["x"]}  # numpy axis each view sums over
    sums = {
        view: torch.zeros([n for i, n in enumerate(voxels.shape) if i != axis], dtype=torch.float32, device=device)
        for view, axis in along.items()
    }
    for chunk_index in _chunks(voxels.shape, _CHUNK_VOXELS[device.type == "cuda"]):
        chunk = torch.from_numpy(np.array(voxels[chunk_index], dtype=np.float32)).to(device)
        density = preset.density(chunk, inplace=True)
        for view, axis in along.items():
            sums[view][tuple(c for i, c in enumerate(chunk_index) if i != axis)] += density.sum(dim=axis)
    if not all(bool(torch.isfinite(total).all()) for total in sums.values()):
        raise InputError("CT", "contains NaN or infinite values")
    integrals, layouts = [], []
    for view in VIEWS:
        projection = sums[view] * float(spacing[2 - along[view]])
        across = "x" if view == "coronal" else "y"
        layout = _DetectorLayout.build(grid, _BASE_ANGLE[view], _detector_rows(grid, view), "parallel",
                                       DEFAULT_SID_MM, DEFAULT_SDD_MM)
        integrals.append(_sample_projection(projection, ct, grid, layout, (axes[across], axes["z"]), spacing))
        layouts.append(layout)
    images = [preset.finish(integral[None])[0].to("cpu", torch.float32).numpy() for integral in integrals]
    radiographs = tuple(layout.radiograph(image, grid, view) for image, layout, view in
                        zip(images, layouts, VIEWS, strict=True))
    return ModelInputs(images[0][None], images[1][None], grid, None, radiographs)


@contextlib.contextmanager
def _single_threaded(device: torch.device) -> Iterator[None]:
    """Run CPU tensor operations on one thread inside the block.

    The native projection streams the CT through cache-sized blocks: memory-bound work that one core does in
    ~40 ms for a 512 × 512 × 133 CT, while a thread-pool barrier per operation costs milliseconds as soon as the
    cores are shared with other processes (measured: 0.04 s of CPU on one thread against 0.7-1.4 s on two).
    """
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _chunks(shape: tuple[int, ...], max_voxels: int) -> list[tuple[slice, slice, slice]]:
    """Index tuples that tile a ``(k, j, i)`` array in contiguous blocks of at most ``max_voxels`` (whole rows)."""
    k, j, i = shape
    if j * i <= max_voxels:
        step = max(1, max_voxels // (j * i))
        return [(slice(a, a + step), slice(None), slice(None)) for a in range(0, k, step)]
    step = max(1, max_voxels // i)
    return [(slice(a, a + 1), slice(b, b + step), slice(None)) for a in range(k) for b in range(0, j, step)]


def _sample_projection(
    projection: torch.Tensor,
    ct: sitk.Image,
    grid: ModelGrid,
    layout: _DetectorLayout,
    kept_axes: tuple[int, int],
    spacing: np.ndarray,
) -> torch.Tensor:
    """Resample a projection on the CT's index plane (numpy order of ``kept_axes``) at the detector pixels.

    Args:
        projection: 2-D line integrals indexed by the two kept CT index axes in numpy (descending) order.
        ct: the CT (for its geometry).
        grid: the model grid; ``layout``: the detector (parallel, in the grid's index space).
        kept_axes: CT index axes along the detector rows and columns.
        spacing: CT voxel spacing.

    Returns:
        ``(rows, cols)`` line integrals.
    """
    lps = grid.index_to_lps(layout.pixel_centres())
    direction = np.array(ct.GetDirection(), dtype=np.float64).reshape(3, 3)
    ct_index = ((lps - np.array(ct.GetOrigin())) @ direction) / spacing  # (rows, cols, 3) continuous CT index
    order = sorted(kept_axes, reverse=True)  # numpy order of the projection's two axes
    # box filter of about one detector pixel in CT voxels (anti-aliasing before point sampling)
    kernel = [max(1, round(layout.pixel * grid.spacing / spacing[a])) | 1 for a in order]
    image = F.avg_pool2d(projection[None, None], kernel, stride=1, padding=[k // 2 for k in kernel],
                         count_include_pad=False)[0, 0]
    size = torch.tensor([image.shape[1], image.shape[0]], dtype=torch.float64)
    coords = torch.as_tensor(ct_index[..., [order[1], order[0]]])  # grid_sample wants (width, height)
    coords = coords * (2.0 / (size - 1.0)) - 1.0
    sampled = F.grid_sample(image[None, None], coords[None].to(image), mode="bilinear", padding_mode="zeros",
                            align_corners=True)
    return sampled[0, 0]


def _prepare_volume(
    volume_xyz: np.ndarray | torch.Tensor, grid: ModelGrid, preset: DRRPreset, device: str | torch.device
) -> torch.Tensor:
    """HU array on ``grid`` → the preset's density as a float32 tensor ``(X, Y, Z)`` on ``device``."""
    source = torch.as_tensor(volume_xyz)
    if tuple(source.shape) != grid.shape:
        raise ValueError(f"volume shape {tuple(source.shape)} does not match the grid shape {grid.shape}")
    if min(grid.shape) < 2:
        raise ValueError(f"every grid axis needs at least 2 voxels, got {grid.shape}")
    volume = source.to(device=device, dtype=torch.float32)
    if not bool(torch.isfinite(volume).all()):
        raise InputError("CT volume", "contains NaN or infinite values")
    # work in place only on our own copy, never on the caller's array
    return preset.density(volume, inplace=volume.data_ptr() != source.data_ptr())


def _render_group(
    density: torch.Tensor,
    grid: ModelGrid,
    view: View,
    angles: Sequence[float],
    preset: DRRPreset,
    geometry: Geometry,
    sid_mm: float,
    sdd_mm: float,
) -> list[Radiograph]:
    """Project ``density`` at each angle and turn the line integrals into :class:`Radiograph` s."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, not {view!r}")
    if geometry not in GEOMETRIES:
        raise ValueError(f"geometry must be one of {GEOMETRIES}, not {geometry!r}")
    if geometry == "perspective" and not 0 < sid_mm < sdd_mm:
        raise ValueError(f"perspective geometry needs 0 < sid_mm < sdd_mm, got sid {sid_mm}, sdd {sdd_mm}")
    integrals, layouts = [], []
    for angle in angles:
        layout = _DetectorLayout.build(grid, angle, _detector_rows(grid, view), geometry, sid_mm, sdd_mm)
        integrals.append(_project(density, layout) * grid.spacing)
        layouts.append(layout)
    images = preset.finish(torch.stack(integrals)).to("cpu", torch.float32).numpy()
    return [layout.radiograph(image, grid, view) for image, layout in zip(images, layouts, strict=True)]


def _detector_rows(grid: ModelGrid, view: View) -> int:
    """Detector rows of a view group: the grid axis the view does *not* integrate along (x for coronal, y for
    sagittal); the columns are always z."""
    other = "sagittal" if view == "coronal" else "coronal"
    return grid.shape[PROJECTION_AXIS[other]]


@dataclass(frozen=True)
class _DetectorLayout:
    """One view's source and detector in continuous grid-index coordinates (isotropic voxels)."""

    angle_deg: float
    geometry: Geometry
    source: np.ndarray | None  # (3,) index coordinates, perspective only
    ray_dir: np.ndarray  # (3,) central ray, source → detector
    origin: np.ndarray  # (3,) centre of detector pixel [0, 0]
    row_dir: np.ndarray  # (3,) unit vector of increasing row index
    pixel: float  # detector pixel size in voxels
    shape: tuple[int, int]  # (rows, cols)

    @classmethod
    def build(
        cls, grid: ModelGrid, angle_deg: float, n_rows: int, geometry: Geometry, sid_mm: float, sdd_mm: float
    ) -> _DetectorLayout:
        theta = math.radians(angle_deg)
        towards_source = np.array([-math.sin(theta), math.cos(theta), 0.0])
        row_dir = np.array([math.cos(theta), math.sin(theta), 0.0])
        centre = (np.array(grid.shape, dtype=np.float64) - 1.0) / 2.0
        shape = (int(n_rows), grid.shape[2])
        half = (np.array(shape, dtype=np.float64) - 1.0) / 2.0
        if geometry == "parallel":
            source, plane_centre, pixel = None, centre, 1.0
        else:
            source = centre + towards_source * (sid_mm / grid.spacing)
            plane_centre = source - towards_source * (sdd_mm / grid.spacing)
            pixel = sdd_mm / sid_mm
        origin = plane_centre - pixel * (half[0] * row_dir + half[1] * np.array([0.0, 0.0, 1.0]))
        return cls(angle_deg, geometry, source, -towards_source, origin, row_dir, pixel, shape)

    def pixel_centres(self) -> np.ndarray:
        """Detector pixel centres ``(rows, cols, 3)`` in grid index coordinates."""
        rows = np.arange(self.shape[0], dtype=np.float64)[:, None, None] * self.pixel * self.row_dir
        cols = np.arange(self.shape[1], dtype=np.float64)[None, :, None] * self.pixel * np.array([0.0, 0.0, 1.0])
        return self.origin + rows + cols

    def radiograph(self, image: np.ndarray, grid: ModelGrid, view: View) -> Radiograph:
        spacing = self.pixel * grid.spacing

        def lps_dir(vector: np.ndarray) -> tuple[float, float, float]:
            return tuple(float(v) for v in GRID_DIRECTION_LPS @ vector)

        return Radiograph(
            image=image,
            spacing_mm=(spacing, spacing),
            view=view,
            angle_deg=float(self.angle_deg),
            geometry=self.geometry,
            source_lps=None if self.source is None else tuple(float(v) for v in grid.index_to_lps(self.source)),
            detector_origin_lps=tuple(float(v) for v in grid.index_to_lps(self.origin)),
            detector_row_dir_lps=lps_dir(self.row_dir),
            detector_col_dir_lps=lps_dir(np.array([0.0, 0.0, 1.0])),
            ray_dir_lps=lps_dir(self.ray_dir),
        )


def _project(density: torch.Tensor, layout: _DetectorLayout) -> torch.Tensor:
    """Line integrals (in voxel units) of ``density`` ``(X, Y, Z)`` over the detector pixels → ``(rows, cols)``."""
    if layout.geometry == "parallel":
        exact = _axis_aligned_sum(density, layout)
        if exact is not None:
            return exact
    targets = torch.as_tensor(layout.pixel_centres().reshape(-1, 3), dtype=torch.float32, device=density.device)
    if layout.source is None:
        directions = torch.as_tensor(layout.ray_dir, dtype=torch.float32, device=density.device).expand_as(targets)
        anchors = targets
    else:
        anchors = torch.as_tensor(layout.source, dtype=torch.float32, device=density.device).expand_as(targets)
        directions = targets - anchors
        directions = directions / directions.norm(dim=1, keepdim=True)
    return _integrate_rays(density, anchors, directions).reshape(layout.shape)


def _axis_aligned_sum(density: torch.Tensor, layout: _DetectorLayout) -> torch.Tensor | None:
    """Exact parallel projection at 0° (sum over y) or 90° (sum over x) when the detector matches the grid."""
    angle = layout.angle_deg % 360.0
    if math.isclose(angle, 0.0, abs_tol=1e-9) and layout.shape[0] == density.shape[0]:
        return density.sum(dim=PROJECTION_AXIS["coronal"])
    if math.isclose(angle, 90.0, abs_tol=1e-9) and layout.shape[0] == density.shape[1]:
        return density.sum(dim=PROJECTION_AXIS["sagittal"])
    return None


def _integrate_rays(density: torch.Tensor, anchors: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Trilinear line integrals through ``density`` ``(X, Y, Z)``, in voxel units.

    Each ray ``anchor + t · direction`` (index coordinates, unit directions) is sampled every
    :data:`_STEP_VOXELS` over the part of the line that can meet the volume (its bounding sphere); samples outside
    the volume count as 0. Rays are processed in chunks whose coordinates take at most half the volume's memory.

    Args:
        density: ``(X, Y, Z)`` float32.
        anchors: ``(R, 3)`` a point on each ray.
        directions: ``(R, 3)`` unit directions.

    Returns:
        ``(R,)`` integrals.
    """
    shape = torch.tensor(density.shape, dtype=torch.float32, device=density.device)
    centre = (shape - 1.0) / 2.0
    radius = float(torch.linalg.vector_norm(shape)) / 2.0 + 1.0
    n_samples = math.ceil(2.0 * radius / _STEP_VOXELS) + 1
    # the point of each ray nearest the centre, minus the radius: the first sample
    nearest = ((centre - anchors) * directions).sum(dim=1, keepdim=True)
    starts = anchors + (nearest - radius) * directions
    # index (x, y, z) → grid_sample's normalised (z, y, x) with align_corners=True
    scale = (2.0 / (shape - 1.0)).flip(0)
    starts = starts.flip(1) * scale - 1.0
    steps = directions.flip(1) * (scale * _STEP_VOXELS)
    volume = density[None, None]
    t = torch.arange(n_samples, dtype=torch.float32, device=density.device)
    chunk = max(1, density.numel() // (2 * 3 * n_samples))
    out = torch.empty(anchors.shape[0], dtype=torch.float32, device=density.device)
    for begin in range(0, anchors.shape[0], chunk):
        end = min(begin + chunk, anchors.shape[0])
        points = starts[begin:end, None, :] + t[None, :, None] * steps[begin:end, None, :]
        samples = F.grid_sample(
            volume, points[None, :, :, None, :], mode="bilinear", padding_mode="zeros", align_corners=True
        )
        out[begin:end] = samples.reshape(end - begin, n_samples).sum(dim=1)
    return out * _STEP_VOXELS


def point_source_integrals(
    volume_xyz: np.ndarray | torch.Tensor,
    grid: ModelGrid,
    source_lps: Sequence[float],
    targets_lps: np.ndarray,
    preset: str | DRRPreset = "published",
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Line integrals of the preset's density from one point source to arbitrary detector points.

    The building block of detectors that are not the model grid's (e.g. the clinical radiograph simulator of
    :mod:`SwinX2SLib.radiograph.simulate`): rays are sampled as in the ``perspective`` geometry.

    Args:
        volume_xyz: ``(X, Y, Z)`` CT numbers in HU on ``grid``.
        grid: the volume's model grid.
        source_lps: LPS position (mm) of the point source.
        targets_lps: ``(..., 3)`` LPS positions (mm) of the detector pixel centres.
        preset: whose :meth:`DRRPreset.density` is integrated (``line_integral``: HU·mm; ``beer_lambert``: the
            dimensionless ``∫ μ dl``); the preset's window is not applied.
        device: torch device.

    Returns:
        ``targets_lps.shape[:-1]`` float32 line integrals (×mm, i.e. HU·mm or dimensionless).
    """
    density = _prepare_volume(volume_xyz, grid, get_preset(preset), device)
    targets = np.asarray(targets_lps, dtype=np.float64)
    ijk = torch.as_tensor(grid.lps_to_index(targets.reshape(-1, 3)), dtype=torch.float32, device=density.device)
    source = torch.as_tensor(grid.lps_to_index(np.asarray(source_lps, dtype=np.float64)), dtype=torch.float32,
                             device=density.device)
    directions = ijk - source
    directions = directions / directions.norm(dim=1, keepdim=True)
    integrals = _integrate_rays(density, source.expand_as(ijk), directions) * grid.spacing
    return integrals.to("cpu", torch.float32).numpy().reshape(targets.shape[:-1])
