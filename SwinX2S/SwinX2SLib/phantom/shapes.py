"""Implicit shapes and the rasteriser of the procedural phantom.

Every bone is a union of *parts*, each an approximate signed distance function (SDF, mm, negative inside) of
points in the **body frame**: millimetres along patient left (``l``), anterior (``a``) and superior (``s``),
origin on the midline at the level of the hip joint centres. A part also knows a body-frame bounding box, so the
:class:`Canvas` evaluates it only on the voxels of that box: the cost of a bone grows with its size, not with the
size of the volume.

Points are passed around as a tuple of three equally shaped arrays ``(l, a, s)`` (not a ``(..., 3)`` array), which
keeps the arithmetic on contiguous float32 arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..conventions import ModelGrid

__all__ = [
    "BoneDensity",
    "Canvas",
    "Difference",
    "Ellipsoid",
    "Fan",
    "LocalPart",
    "Part",
    "Points",
    "Structure",
    "Tube",
    "frame_from_axes",
    "rotation_about",
    "smooth_curve",
    "unit",
]

Points = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Three equally shaped arrays: the ``l``, ``a``, ``s`` (or local ``u``, ``v``, ``w``) coordinates in mm."""


_CORNERS = np.array(list(np.ndindex(2, 2, 2)), dtype=np.float64)


def _box_corners(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The 8 corners ``(8, 3)`` of the box ``[lo, hi]``."""
    lo = np.asarray(lo, dtype=np.float64)
    return lo + (np.asarray(hi, dtype=np.float64) - lo) * _CORNERS


def unit(v: Sequence[float] | np.ndarray) -> np.ndarray:
    """``v / |v|`` as float64 ``(3,)``."""
    x, y, z = (float(c) for c in v)
    n = math.sqrt(x * x + y * y + z * z)
    return np.array([x / n, y / n, z / n])


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (faster than ``np.cross`` for single vectors)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def rotation_about(axis: Sequence[float] | np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotation matrix ``(3, 3)`` of ``angle_deg`` about ``axis`` (right-handed, Rodrigues)."""
    k = unit(axis)
    a = np.deg2rad(angle_deg)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(a) * kx + (1 - np.cos(a)) * kx @ kx


def frame_from_axes(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Orthonormal frame ``(3, 3)`` (columns ``e0, e1, e2``) with ``e2 ∥ primary`` and ``e1`` closest to
    ``secondary``; ``e0 = e1 × e2`` makes it right-handed."""
    e2 = unit(primary)
    secondary = unit(secondary)
    if abs(float(secondary @ e2)) > 0.99:  # degenerate: any perpendicular will do
        secondary = np.eye(3)[int(np.argmin(np.abs(e2)))]
    e1 = unit(secondary - float(secondary @ e2) * e2)
    return np.stack([_cross(e1, e2), e1, e2], axis=1)


def smooth_curve(control: np.ndarray, samples: int) -> np.ndarray:
    """Uniform Catmull-Rom curve through ``control`` ``(K, 3)``, resampled to ``samples``
    points ``(samples, 3)`` evenly spaced in the curve parameter; the curve passes through every control point."""
    control = np.asarray(control, dtype=np.float64)
    padded = np.vstack([2 * control[0] - control[1], control, 2 * control[-1] - control[-2]])
    t = np.linspace(0.0, len(control) - 1, samples)
    seg = np.minimum(t.astype(int), len(control) - 2)
    u = (t - seg)[:, None]
    p0, p1, p2, p3 = (padded[seg + k] for k in range(4))
    return 0.5 * (2 * p1 + (p2 - p0) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u**2 + (3 * p1 - p0 - 3 * p2 + p3) * u**3)


def _to_local(points: Points, origin: np.ndarray, axes: np.ndarray) -> Points:
    """Body-frame points → coordinates along the columns of ``axes`` (orthonormal) relative to ``origin``."""
    dl, da, ds = (points[k] - np.float32(origin[k]) for k in range(3))
    return tuple(
        dl * np.float32(axes[0, c]) + da * np.float32(axes[1, c]) + ds * np.float32(axes[2, c]) for c in range(3)
    )


class Part:
    """One implicit piece of a bone: a body-frame bounding box and an SDF."""

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper body-frame corners (mm) of a box holding the whole part."""
        raise NotImplementedError

    def sdf(self, points: Points) -> np.ndarray:
        """Approximate signed distance (mm, negative inside) at body-frame ``points``."""
        raise NotImplementedError


@dataclass
class LocalPart(Part):
    """A part defined in its own orthonormal frame.

    Args:
        origin: body-frame position (mm) of the local origin.
        axes: ``(3, 3)`` body-frame directions of the local axes (columns).
        lo, hi: local-frame box (mm) holding the part.
        fn: SDF of local coordinates ``(u, v, w)``.
    """

    origin: np.ndarray
    axes: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    fn: Callable[[Points], np.ndarray]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        body = self.origin + _box_corners(self.lo, self.hi) @ self.axes.T
        return body.min(axis=0), body.max(axis=0)

    def sdf(self, points: Points) -> np.ndarray:
        return self.fn(_to_local(points, self.origin, self.axes))


@dataclass
class Difference(Part):
    """``part`` minus the union of ``cuts`` (evaluated over the part's box only)."""

    part: Part
    cuts: list[Part]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.part.bounds()

    def sdf(self, points: Points) -> np.ndarray:
        d = self.part.sdf(points)
        for cut in self.cuts:
            np.maximum(d, -cut.sdf(points), out=d)
        return d


class Fan(Part):
    """A sheet ruled between two curves sampled at matching parameters (``base[i]`` to ``top[i]``), e.g. the
    iliac wing between the body of the ilium and the iliac crest.

    The ruling nearest a point is found from its angle about ``axis`` through ``center`` (the rulings must fan
    out monotonically about that axis, over less than 180°); the SDF is the distance to that ruling minus half the
    local thickness.

    Args:
        base, top: ``(N, 3)`` body-frame curves (mm).
        center, axis: the fan axis.
        thickness: sheet thickness (mm) at the base, half-way and at the top (linear in between).
    """

    def __init__(self, base: np.ndarray, top: np.ndarray, center: np.ndarray, axis: np.ndarray, thickness):
        self.base = np.asarray(base, dtype=np.float64)
        self.top = np.asarray(top, dtype=np.float64)
        self.center = np.asarray(center, dtype=np.float64)
        self.thickness = np.asarray(thickness, dtype=np.float64)
        mids = 0.5 * (self.base + self.top) - self.center
        self.frame = frame_from_axes(axis, mids.mean(axis=0))
        angle = np.arctan2(mids @ self.frame[:, 0], mids @ self.frame[:, 1])
        order = np.argsort(angle)
        if not (np.array_equal(order, np.arange(len(angle))) or np.array_equal(order, np.arange(len(angle))[::-1])):
            raise ValueError("fan rulings must turn monotonically about the fan axis")
        self.angle, self.index = angle[order], order.astype(np.float64)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        both = np.vstack([self.base, self.top])
        t = self.thickness.max()
        return both.min(axis=0) - t, both.max(axis=0) + t

    def sdf(self, points: Points) -> np.ndarray:
        x0, x1, _ = _to_local(points, self.center, self.frame)
        idx = np.interp(np.arctan2(x0, x1), self.angle, self.index).astype(np.float32)
        knots = np.arange(len(self.base), dtype=np.float32)
        pb, bc = [], []
        for c in range(3):
            b = np.interp(idx, knots, self.base[:, c].astype(np.float32))
            pb.append(points[c] - b)
            bc.append(np.interp(idx, knots, self.top[:, c].astype(np.float32)) - b)
        w = np.clip((pb[0] * bc[0] + pb[1] * bc[1] + pb[2] * bc[2]) / (bc[0] ** 2 + bc[1] ** 2 + bc[2] ** 2), 0, 1)
        dist = np.sqrt(sum((pb[c] - w * bc[c]) ** 2 for c in range(3)))
        t0, t1, t2 = (np.float32(t / 2) for t in self.thickness)
        half = np.where(w < 0.5, t0 + (t1 - t0) * 2 * w, t1 + (t2 - t1) * (2 * w - 1))
        return dist - half


@dataclass
class Ellipsoid(Part):
    """An ellipsoid with semi-axes ``radii`` along the columns of ``axes`` (identity: body axes)."""

    center: np.ndarray
    radii: np.ndarray
    axes: np.ndarray = field(default_factory=lambda: np.eye(3))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        half = np.abs(self.axes) @ np.asarray(self.radii, dtype=np.float64)
        return self.center - half, self.center + half

    def sdf(self, points: Points) -> np.ndarray:
        u, v, w = _to_local(points, self.center, self.axes)
        r = np.asarray(self.radii, dtype=np.float32)
        q = np.sqrt((u / r[0]) ** 2 + (v / r[1]) ** 2 + (w / r[2]) ** 2)
        return (q - 1.0) * np.float32(r.min())


@dataclass
class Tube(Part):
    """A tube swept along a polyline, with an elliptic cross-section varying linearly between vertices.

    Args:
        points: ``(N, 3)`` body-frame centreline (mm), ``N >= 2``.
        ru: ``(N,)`` semi-axis along the cross-section direction closest to ``up``.
        rv: ``(N,)`` the other semi-axis.
        up: ``(3,)`` or ``(N, 3)`` reference direction(s) orienting the cross-sections.

    Each segment is evaluated on its own box only; the ends are closed by half-ellipsoid caps.
    """

    points: np.ndarray
    ru: np.ndarray
    rv: np.ndarray
    up: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=np.float64)
        n = len(self.points)
        self.ru = np.broadcast_to(np.asarray(self.ru, dtype=np.float64), (n,)).copy()
        self.rv = np.broadcast_to(np.asarray(self.rv, dtype=np.float64), (n,)).copy()
        self.up = np.broadcast_to(np.asarray(self.up, dtype=np.float64), (n, 3)).copy()

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        r = np.maximum(self.ru, self.rv)[:, None]
        return (self.points - r).min(axis=0), (self.points + r).max(axis=0)

    def segments(self) -> list[Part]:
        """One :class:`_Segment` part per polyline segment."""
        out: list[Part] = []
        for i in range(len(self.points) - 1):
            a, b = self.points[i], self.points[i + 1]
            if float(np.abs(b - a).max()) < 1e-6:
                continue
            out.append(_Segment(a, b, self.ru[i : i + 2], self.rv[i : i + 2], self.up[i] + self.up[i + 1]))
        return out

    def sdf(self, points: Points) -> np.ndarray:
        return np.minimum.reduce([seg.sdf(points) for seg in self.segments()])


class _Segment(Part):
    """One segment of a :class:`Tube` (frame and bounds computed once)."""

    def __init__(self, a: np.ndarray, b: np.ndarray, ru: np.ndarray, rv: np.ndarray, up: np.ndarray):
        self.a, self.ru, self.rv = a, ru, rv
        ab = b - a
        self.length = float(np.linalg.norm(ab))
        self.axes = frame_from_axes(ab, up)  # columns: v-direction, u-direction (closest to up), tangent
        r = max(ru.max(), rv.max())
        self._bounds = (np.minimum(a, b) - r, np.maximum(a, b) + r)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self._bounds

    def sdf(self, points: Points) -> np.ndarray:
        pv, pu, pt = _to_local(points, self.a, self.axes)
        length = np.float32(self.length)
        t = np.clip(pt / length, 0.0, 1.0)
        dt = pt - t * length
        ru = np.float32(self.ru[0]) + t * np.float32(self.ru[1] - self.ru[0])
        rv = np.float32(self.rv[0]) + t * np.float32(self.rv[1] - self.rv[0])
        rmin = np.minimum(ru, rv)
        q = np.sqrt((pu / ru) ** 2 + (pv / rv) ** 2 + (dt / rmin) ** 2)
        return (q - 1.0) * rmin


@dataclass(frozen=True)
class BoneDensity:
    """CT numbers (HU) of a bone: cortical shell of ``cortex_mm`` over cancellous interior; ``marrow_hu`` fills
    the :attr:`Structure.marrow` parts (medullary canal)."""

    cortical_hu: float
    cancellous_hu: float
    cortex_mm: float
    marrow_hu: float = 20.0


@dataclass
class Structure:
    """A labelled bone: the union of ``parts`` minus the union of ``cuts``; ``marrow`` parts only change HU.
    Voxels already owned by another bone stay theirs, except those of the labels in ``overwrite``."""

    label: int
    parts: list[Part]
    density: BoneDensity
    cuts: list[Part] = field(default_factory=list)
    marrow: list[Part] = field(default_factory=list)
    overwrite: tuple[int, ...] = ()

    def pieces(self) -> list[Part]:
        """Parts split into their smallest independently bounded pieces (tube segments)."""
        out: list[Part] = []
        for part in self.parts:
            out.extend(part.segments() if isinstance(part, Tube) else [part])
        return out


class Canvas:
    """The volume being drawn: CT (HU) and labels on a model grid, with the body → grid transform.

    Args:
        grid: the model grid.
        rotation: ``(3, 3)`` body frame → patient LAS frame (the patient's rotation on the table).
        translation: ``(3,)`` LAS mm of the body-frame origin.
        background_hu: initial CT value (air).
    """

    def __init__(self, grid: ModelGrid, rotation: np.ndarray, translation: np.ndarray, background_hu: float):
        self.grid = grid
        self.ct = np.full(grid.shape, background_hu, dtype=np.float32, order="F")  # contiguous axial slices
        self.labels = np.zeros(grid.shape, dtype=np.uint8, order="F")
        # index -> LAS world (an affine map read off the grid, so the grid alone decides the axes)
        ijk = np.vstack([np.zeros(3), np.eye(3)])
        las = grid.index_to_ras(ijk) * np.array([-1.0, 1.0, 1.0])
        index_to_las = (las[1:] - las[0]).T
        # index -> body: R^T (M ijk + c - t)
        self._matrix = rotation.T @ index_to_las
        self._offset = rotation.T @ (las[0] - np.asarray(translation, dtype=np.float64))
        self._inverse = np.linalg.inv(self._matrix)

    def body_to_index(self, points: np.ndarray) -> np.ndarray:
        """Body-frame mm ``(..., 3)`` → continuous voxel indices ``(..., 3)``."""
        return (np.asarray(points, dtype=np.float64) - self._offset) @ self._inverse.T

    def index_box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Voxel box (clipped to the grid) covering the body-frame box ``[lo, hi]``; None when outside."""
        idx = self.body_to_index(_box_corners(lo, hi))
        start = np.maximum(np.floor(idx.min(axis=0)).astype(int), 0)
        stop = np.minimum(np.ceil(idx.max(axis=0)).astype(int) + 1, self.grid.shape)
        if np.any(stop <= start):
            return None
        return tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))

    def points(self, box: tuple[slice, slice, slice]) -> Points:
        """Body-frame coordinates of the voxel centres of ``box`` (three float32 arrays of the box's shape)."""
        i, j, k = (np.arange(sl.start, sl.stop, dtype=np.float32) for sl in box)
        i, j, k = i[:, None, None], j[None, :, None], k[None, None, :]
        m = self._matrix.astype(np.float32)
        o = self._offset.astype(np.float32)
        return tuple(m[r, 0] * i + m[r, 1] * j + m[r, 2] * k + o[r] for r in range(3))

    def _evaluate(self, parts: list[Part], box: tuple[slice, slice, slice]) -> np.ndarray:
        shape = tuple(sl.stop - sl.start for sl in box)
        d = np.full(shape, np.inf, dtype=np.float32)
        for part in parts:
            sub = self.index_box(*part.bounds())
            if sub is None:
                continue
            sub = tuple(slice(max(s.start, b.start), min(s.stop, b.stop)) for s, b in zip(sub, box, strict=True))
            if any(s.stop <= s.start for s in sub):
                continue
            local = tuple(slice(s.start - b.start, s.stop - b.start) for s, b in zip(sub, box, strict=True))
            np.minimum(d[local], part.sdf(self.points(sub)), out=d[local])
        return d

    def burn(self, parts: list[Part], hu: float) -> None:
        """Set the CT to ``hu`` inside the union of ``parts`` whatever is there (labels are left unchanged)."""
        pieces = Structure(0, parts, BoneDensity(hu, hu, 0.0)).pieces()
        for piece in pieces:
            box = self.index_box(*piece.bounds())
            if box is not None:
                self.ct[box][piece.sdf(self.points(box)) < 0] = np.float32(hu)

    def paint(self, structure: Structure) -> tuple[tuple[slice, slice, slice] | None, bool]:
        """Draw ``structure`` into voxels not yet owned by another bone.

        Returns:
            The voxel box that was evaluated (None when the bone lies outside the grid) and whether the bone is
            truncated by the grid boundary (it has voxels on a face of the grid where its box was clipped).
        """
        pieces = structure.pieces()
        bounds = [p.bounds() for p in pieces]
        lo = np.min([b[0] for b in bounds], axis=0)
        hi = np.max([b[1] for b in bounds], axis=0)
        box = self.index_box(lo, hi)
        if box is None:
            return None, False
        d = self._evaluate(pieces, box)
        if structure.cuts:
            np.maximum(d, -self._evaluate(structure.cuts, box), out=d)
        labels = self.labels[box]
        ct = self.ct[box]
        free = labels == 0
        for label in structure.overwrite:
            free |= labels == label
        inside = (d < 0) & free
        self._partial_volume(structure, box, d, free, ct)
        labels[inside] = structure.label
        return box, self._touches_clipped_face(inside, box, lo, hi)

    def _partial_volume(self, structure: Structure, box, d: np.ndarray, free: np.ndarray, ct: np.ndarray) -> None:
        """Write the CT numbers of the voxels within half a voxel of the bone (or inside it), averaged over the
        voxel along the surface normal: the window ``[depth - s/2, depth + s/2]`` (depth = -SDF) is split into
        soft tissue (depth < 0: the CT already there), cortex (``0 <= depth < cortex_mm``) and the interior
        (cancellous bone, or marrow inside the :attr:`Structure.marrow` parts). Labels stay binary."""
        s = np.float32(self.grid.spacing)
        dens = structure.density
        target = (d < 0.5 * s) & free
        depth = -d[target]
        a, b = depth - 0.5 * s, depth + 0.5 * s
        t = np.float32(dens.cortex_mm)
        f_soft = np.clip(-a, 0.0, s) / s
        f_cortex = (np.clip(b, 0.0, t) - np.clip(a, 0.0, t)) / s
        f_inner = (np.maximum(b, t) - np.maximum(a, t)) / s
        inner = np.full(depth.shape, np.float32(dens.cancellous_hu))
        if structure.marrow:
            inner[self._evaluate(structure.marrow, box)[target] < 0] = np.float32(dens.marrow_hu)
        ct[target] = f_soft * ct[target] + f_cortex * np.float32(dens.cortical_hu) + f_inner * inner

    def _touches_clipped_face(self, inside: np.ndarray, box: tuple[slice, ...], lo: np.ndarray, hi: np.ndarray):
        """Whether ``inside`` (the drawn voxels of ``box``) reaches a grid face where the bone's box was clipped."""
        idx = self.body_to_index(_box_corners(lo, hi))
        for axis in range(3):
            clipped_low = idx[:, axis].min() < -0.5 and box[axis].start == 0
            if clipped_low and np.take(inside, 0, axis=axis).any():
                return True
            clipped_high = idx[:, axis].max() > self.grid.shape[axis] - 0.5 and box[axis].stop == self.grid.shape[axis]
            if clipped_high and np.take(inside, -1, axis=axis).any():
                return True
        return False
