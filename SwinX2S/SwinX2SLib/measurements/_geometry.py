"""Small geometry helpers shared by the measurement modules.

Everything here works on a label map indexed ``[x, y, z]`` (:mod:`SwinX2SLib.conventions`) together with a 4x4
index -> RAS affine (millimetres). Structures are cropped to their bounding box first (one
:func:`scipy.ndimage.find_objects` pass for all labels) so that full-resolution CT label maps stay fast, and their
voxels are turned into RAS points; every measurement is then made on points in patient space, so anisotropic
spacing and any direction matrix are handled without ever interpreting array axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .. import connected
from ..measurement_records import is_measured, not_measurable

__all__ = [
    "LabelVolume",
    "Structure",
    "angle_deg",
    "fit_sphere",
    "is_measured",
    "line_distance",
    "not_measurable",
    "pca",
    "unit",
]

#: Minimum physical volume (mm^3) below which a structure counts as "too small to measure".
MIN_VOLUME_MM3 = {"femur": 20000.0, "hip": 20000.0, "vertebra": 1500.0, "rib": 150.0}


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to unit length (shape kept; ``(..., 3)``)."""
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def angle_deg(u: np.ndarray, v: np.ndarray) -> float:
    """Angle between two 3-vectors in degrees, in [0, 180]."""
    c = float(np.dot(unit(u), unit(v)))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def line_distance(points: np.ndarray, origin: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Distance of points ``(N, 3)`` (or one point ``(3,)``) to the infinite line ``origin + t * direction``."""
    d = unit(direction)
    rel = points - origin
    return np.linalg.norm(rel - np.outer(rel @ d, d).reshape(rel.shape), axis=-1)


def pca(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Principal axes of a point cloud.

    Args:
        points: ``(N, 3)``.

    Returns:
        ``(mean (3,), axes (3, 3) with one unit axis per row sorted by decreasing variance, variances (3,))``.
    """
    mean = points.mean(axis=0)
    cov = np.cov((points - mean).T)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    return mean, vectors[:, order].T, values[order]


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Algebraic least-squares sphere through points (``|p|^2 = 2 c.p + (r^2 - |c|^2)``, solved linearly).

    Args:
        points: ``(N, 3)``, N >= 4, not coplanar.

    Returns:
        ``(centre (3,), radius)``.
    """
    a = np.column_stack([2.0 * points, np.ones(len(points))])
    b = np.einsum("ij,ij->i", points, points)
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    centre = sol[:3]
    return centre, float(np.sqrt(max(sol[3] + centre @ centre, 0.0)))


@dataclass(frozen=True)
class Structure:
    """One labelled structure cropped to its bounding box.

    Attributes:
        mask: boolean crop ``[x, y, z]`` with a one-voxel margin (where the volume allows it).
        offset: index of ``mask[0, 0, 0]`` in the full label map.
        volume: the label map it came from (geometry and shape).
        touches_border: the structure has voxels on a face of the full label map (truncated by the field of view).
    """

    mask: np.ndarray
    offset: np.ndarray
    volume: LabelVolume
    touches_border: bool

    @property
    def voxel_count(self) -> int:
        """Number of voxels of the structure."""
        return int(np.count_nonzero(self.mask))

    @property
    def volume_mm3(self) -> float:
        """Physical volume of the structure."""
        return self.voxel_count * self.volume.voxel_volume_mm3

    def indices(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Full-volume voxel indices ``(N, 3)`` of ``mask`` (default: the structure's own mask)."""
        return np.argwhere(self.mask if mask is None else mask) + self.offset

    def points(self, mask: np.ndarray | None = None) -> np.ndarray:
        """RAS coordinates (mm) ``(N, 3)`` of the voxel centres of ``mask`` (default: the structure)."""
        return self.volume.to_ras(self.indices(mask))

    def surface_points(self) -> np.ndarray:
        """RAS coordinates ``(N, 3)`` of the centres of the voxel faces between the structure and the outside.

        These lie on the surface of the voxelised shape itself, so a sphere fitted to them has no half-voxel bias
        (boundary voxel centres sit about half a voxel inside the surface).
        """
        padded = np.pad(self.mask, 1)
        inner = padded[1:-1, 1:-1, 1:-1]
        faces = []
        for axis in range(3):
            for step in (-1, 1):
                neighbour = np.roll(padded, -step, axis=axis)[1:-1, 1:-1, 1:-1]
                idx = np.argwhere(inner & ~neighbour).astype(float)
                idx[:, axis] += 0.5 * step
                faces.append(idx)
        return self.volume.to_ras(np.concatenate(faces) + self.offset)

    def border_points(self) -> np.ndarray:
        """RAS coordinates ``(N, 3)`` of the structure's voxels that lie on a face of the full label map."""
        idx = self.indices()
        shape = np.asarray(self.volume.shape)
        on_face = np.any((idx == 0) | (idx == shape - 1), axis=1)
        return self.volume.to_ras(idx[on_face])


class LabelVolume:
    """A label map ``[x, y, z]`` with its index -> RAS geometry, and per-label bounding boxes.

    Args:
        labels_xyz: integer label array ``(X, Y, Z)`` (55-class scheme).
        affine_ras: 4x4 matrix mapping ``(i, j, k, 1)`` to RAS millimetres.
    """

    def __init__(self, labels_xyz: np.ndarray, affine_ras: np.ndarray) -> None:
        if labels_xyz.ndim != 3:
            raise ValueError(f"labels must be a 3-D [x, y, z] array, got shape {labels_xyz.shape}")
        affine_ras = np.asarray(affine_ras, dtype=float)
        if affine_ras.shape != (4, 4) or abs(np.linalg.det(affine_ras[:3, :3])) < 1e-12:
            raise ValueError(f"affine_ras must be an invertible 4x4 index->RAS matrix, got {affine_ras!r}")
        self.labels = np.asarray(labels_xyz)
        if not np.issubdtype(self.labels.dtype, np.integer):
            self.labels = np.rint(self.labels).astype(np.int16)
        self.affine = affine_ras
        self.shape: tuple[int, int, int] = tuple(int(s) for s in self.labels.shape)
        self.spacing = np.linalg.norm(affine_ras[:3, :3], axis=0)
        self.voxel_volume_mm3 = float(abs(np.linalg.det(affine_ras[:3, :3])))
        self._slices = ndimage.find_objects(self.labels)

    def to_ras(self, ijk: np.ndarray) -> np.ndarray:
        """Voxel indices (fractional allowed) ``(..., 3)`` -> RAS mm ``(..., 3)``."""
        return np.asarray(ijk, dtype=float) @ self.affine[:3, :3].T + self.affine[:3, 3]

    def to_index(self, ras: np.ndarray) -> np.ndarray:
        """RAS mm ``(..., 3)`` -> fractional voxel indices ``(..., 3)``."""
        inv = np.linalg.inv(self.affine)
        return np.asarray(ras, dtype=float) @ inv[:3, :3].T + inv[:3, 3]

    def footprint_mm(self, direction: np.ndarray) -> float:
        """Extent of one voxel along a RAS direction (used to turn centre-to-centre extents into edge-to-edge)."""
        return float(np.sum(np.abs(self.affine[:3, :3].T @ unit(np.asarray(direction, dtype=float)))))

    def present(self, label: int) -> bool:
        """Whether ``label`` has at least one voxel."""
        return 0 < label <= len(self._slices) and self._slices[label - 1] is not None

    def structure(self, labels: int | tuple[int, ...], largest_component: bool = True) -> Structure | None:
        """Crop one structure (or the union of several labels) to its bounding box.

        Args:
            labels: one label id or several (their union).
            largest_component: keep only the largest 26-connected component.

        Returns:
            The :class:`Structure`, or None when none of the labels is present.
        """
        ids = (labels,) if isinstance(labels, int) else tuple(labels)
        boxes = [self._slices[i - 1] for i in ids if self.present(i)]
        if not boxes:
            return None
        lo = np.min([[s.start for s in b] for b in boxes], axis=0)
        hi = np.max([[s.stop for s in b] for b in boxes], axis=0)
        touches = bool(np.any(lo == 0) or np.any(hi == np.asarray(self.shape)))
        lo = np.maximum(lo - 1, 0)
        hi = np.minimum(hi + 1, self.shape)
        crop = self.labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        mask = np.isin(crop, ids)
        if largest_component:
            mask = connected.largest_component(mask)
        return Structure(mask=mask, offset=lo, volume=self, touches_border=touches)


