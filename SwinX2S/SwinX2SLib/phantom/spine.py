"""Vertebrae C1-L5 (and the rare L6): stacked on the sacrum along a sagittal/coronal curve.

Each vertebra (C2 and below) is built in its own frame ``(e_l, e_a, e_s)`` centred on the vertebral body:

* body: an elliptic cylinder (width ``W``, depth ``D``) with a flat posterior wall, a flat inferior endplate and a
  superior endplate tilted so that the anterior wall is ``h_ant`` high and the posterior wall ``h_post``;
* arch: the band between the canal ellipse (``canal_width`` × ``canal_depth``, its front touching the posterior
  body wall) and a wider ellipse, i.e. pedicles and laminae;
* spinous process: a tapered tube from the posterior canal margin, ``spl`` long, pointing ``spa`` degrees below
  the posterior direction; transverse and articular processes as short tubes.

C1 is a ring (anterior and posterior arches, lateral masses, transverse processes); C2 carries the dens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .shapes import BoneDensity, LocalPart, Part, Points, Structure, Tube, frame_from_axes, unit

__all__ = ["LEVELS", "Vertebra", "VertebraDims", "build_spine"]


@dataclass(frozen=True)
class VertebraDims:
    """Nominal adult dimensions (mm, degrees) of one level; see the module docstring for their meaning."""

    name: str
    height: float
    depth: float
    width: float
    disc_below: float
    canal_depth: float
    canal_width: float
    spl: float
    spa: float
    tp_length: float
    tp_angle: float
    lamina: float


def _dims(table: str) -> tuple[VertebraDims, ...]:
    rows = []
    for line in table.strip().splitlines():
        name, *values = line.split()
        rows.append(VertebraDims(f"vertebrae_{name}", *(float(v) for v in values)))
    return tuple(rows)


#    name height depth width disc canal_d canal_w spl spa tp_len tp_angle lamina
LEVELS: tuple[VertebraDims, ...] = _dims(
    """
    C1  10 15 22  2 30 28  0  0 16 -10  7
    C2  18 15 18  5 15 22 28 20 10 -10  7
    C3  14 15 20  5 14 23 20 15 12 -10  6
    C4  14 15 21  5 14 24 20 15 12 -10  6
    C5  14 16 22  5 14 24 22 15 12 -10  6
    C6  14 16 23  5 14 24 26 15 13 -10  7
    C7  15 16 25  5 14 24 40 20 18  0  7
    T1  17 17 28  5 15 20 45 35 22 20  8
    T2  18 18 29  5 15 17 45 45 22 25  8
    T3  18 19 30  5 15 16 45 55 21 30  8
    T4  19 20 31  5 15 16 45 60 21 30  8
    T5  19 22 32  5 15 16 45 62 20 30  8
    T6  20 24 33  5 15 16 44 63 20 30  8
    T7  20 26 34  6 15 16 44 62 20 30  8
    T8  21 27 35  6 15 16 42 58 19 30  8
    T9  22 28 36  6 16 17 40 50 18 30 10
    T10 23 29 38  7 16 17 36 40 17 25 10
    T11 24 30 40  7 16 18 33 25 14 20 10
    T12 25 31 42  8 17 20 30 15 12 15 10
    L1  26 33 43 10 18 22 28 10 20 10 11
    L2  27 34 45 11 18 22 29  8 24 10 11
    L3  27 35 47 11 17 23 30  6 28 10 11
    L4  27 35 49 12 17 24 30  5 25 10 11
    L5  27 35 50 12 17 25 28  5 22 10 11
    L6  27 35 50 12 17 25 28  5 22 10 11
    """
)
_BY_NAME = {d.name: d for d in LEVELS}


@dataclass
class Vertebra:
    """One placed vertebra: dimensions (mm, after scaling), body centre and frame in the body coordinates.

    ``axes`` columns are ``e_l`` (towards patient left), ``e_a`` (anterior) and ``e_s`` (superior, the axis of
    the vertebral body).
    """

    name: str
    label: int
    center: np.ndarray
    axes: np.ndarray
    h_ant: float
    h_post: float
    depth: float
    width: float
    canal_depth: float
    canal_width: float
    lamina: float
    spl: float
    spa: float
    tp_length: float
    tp_angle: float

    @property
    def is_atlas(self) -> bool:
        return self.name == "vertebrae_C1"

    @property
    def h_center(self) -> float:
        """Body height on the vertebral axis (mid-depth)."""
        return 0.5 * (self.h_ant + self.h_post)

    def to_body(self, local: np.ndarray) -> np.ndarray:
        """Local ``(u, v, w)`` mm ``(..., 3)`` → body-frame mm."""
        return self.center + np.asarray(local, dtype=np.float64) @ self.axes.T

    def canal_center(self) -> np.ndarray:
        """Local coordinates of the canal ellipse centre."""
        if self.is_atlas:
            return np.array([0.0, self.depth / 2 - 6.0 - self.canal_depth / 2, 0.0])
        return np.array([0.0, -self.depth / 2 - self.canal_depth / 2, 0.0])

    def spinous_base_tip(self) -> tuple[np.ndarray, np.ndarray]:
        """Local coordinates of the spinous process base (posterior canal margin, midline) and bony tip."""
        base = self.canal_center() - np.array([0.0, self.canal_depth / 2, 0.0])
        a = np.deg2rad(self.spa)
        return base, base + self.spl * np.array([0.0, -np.cos(a), -np.sin(a)])

    def transverse_tip(self, side: int) -> np.ndarray:
        """Local coordinates of the tip of the transverse process on ``side`` (+1 left, -1 right)."""
        base = self.canal_center() + np.array([side * (self.canal_width / 2 + self.lamina / 2), 0.0, 0.0])
        a = np.deg2rad(self.tp_angle)
        return base + self.tp_length * np.array([side * np.cos(a), -np.sin(a), 0.0])

    def structures(self, density: BoneDensity, min_radius: float) -> tuple[Structure, Structure]:
        """The vertebra as two drawable :class:`Structure` s with its label, radii below ``min_radius`` widened:
        the core (body, arch, pedicles; C1 lateral masses; C2 dens) and the processes (transverse, articular,
        spinous). Ribs are drawn between the two so that their necks pass in front of the transverse processes."""
        core: list[Part] = [self._core_part(min_radius)]
        processes: list[Part] = []
        r = min_radius
        cc = self.canal_center()
        for side in (1, -1):
            base = cc + np.array([side * (self.canal_width / 2 + self.lamina / 2), 0.0, 0.0])
            processes.append(self._tube([base, self.transverse_tip(side)], [6.0, 4.5], [5.0, 3.5], r))
            if self.is_atlas:
                mass = cc + np.array([side * (self.canal_width / 2 + 2.0), 0.2 * self.canal_depth, 0.0])
                ends = [mass - np.array([0.0, 6.0, 0.0]), mass + np.array([0.0, 6.0, 0.0])]
                core.append(self._tube(ends, [6.0, 6.0], [7.0, 7.0], r))
                continue
            pedicle = [
                [side * 0.36 * self.width, -0.3 * self.depth, 0.0],
                [side * (self.canal_width / 2 + self.lamina / 2), cc[1], 0.0],
            ]
            core.append(self._tube(pedicle, [4.5, 4.5], [4.0, 4.0], r, tip=False))
            x = side * (self.canal_width / 2 + self.lamina * 0.3)
            facet = [
                [x, cc[1] + 0.1 * self.canal_depth, -0.6 * self.h_post],
                [x, cc[1] + 0.1 * self.canal_depth, 0.6 * self.h_post],
            ]
            processes.append(self._tube(facet, [6.0, 6.0], [6.0, 6.0], r))
        if not self.is_atlas:
            base, tip = self.spinous_base_tip()
            height = [max(0.38 * self.h_post, 4.0), max(0.28 * self.h_post, 3.0)]
            processes.append(self._tube([base, tip], height, [4.5, 3.0], r))
        if self.name == "vertebrae_C2":
            top = self.h_center / 2
            core.append(self._tube([[0, -1.0, top - 3.0], [0, -1.0, top + 14.0]], [5.0, 4.5], [5.0, 4.5], r))
        half = self.canal_width / 2, self.canal_depth / 2
        reach = max(self.h_ant, self.h_post) + 20.0
        canal = LocalPart(
            self.center,
            self.axes,
            np.array([-half[0], cc[1] - half[1], -reach]),
            np.array([half[0], cc[1] + half[1], reach]),
            lambda p: (np.sqrt((p[0] / half[0]) ** 2 + ((p[1] - cc[1]) / half[1]) ** 2) - 1.0) * min(half),
        )
        return Structure(self.label, core, density, cuts=[canal]), Structure(
            self.label, processes, density, cuts=[canal]
        )

    def _tube(self, local_points, ru, rv, min_radius: float, tip: bool = True) -> Tube:
        """A tube given in local coordinates. With ``tip``, its far end (last point) is the bony tip: the end-cap
        centre is pulled back by its radius so that the bone ends exactly at the last point."""
        pts = np.asarray(local_points, dtype=np.float64)
        ru = np.maximum(ru, min_radius)
        rv = np.maximum(rv, min_radius)
        if tip:
            pts[-1] = pts[-1] - min(ru[-1], rv[-1]) * unit(pts[-1] - pts[-2])
        return Tube(self.to_body(pts), ru, rv, up=self.axes[:, 2])

    def _core_part(self, min_radius: float) -> LocalPart:
        d, w, h_ant, h_post = self.depth, self.width, self.h_ant, self.h_post
        cd, cw = self.canal_depth, self.canal_width
        lam = max(self.lamina, 2.0 * min_radius)
        cc = self.canal_center()
        atlas = self.is_atlas
        h_arch = max(self.h_center if atlas else 0.7 * h_post, 2.0 * min_radius)
        hc = self.h_center

        def ellipse(u, v, cu, cv, ru, rv):
            return (np.sqrt(((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2) - 1.0) * min(ru, rv)

        def fn(p: Points) -> np.ndarray:
            u, v, s = p
            inner = ellipse(u, v, 0.0, cc[1], cw / 2, cd / 2)
            if atlas:  # anterior arch 6 mm, posterior arch 8 mm (at least two voxels)
                front, back = max(6.0, 2.0 * min_radius), max(8.0, 2.0 * min_radius)
                outer = ellipse(u, v, 0.0, cc[1] + (front - back) / 2, cw / 2 + lam, cd / 2 + (front + back) / 2)
                return np.maximum.reduce([outer, -inner, np.abs(s) - h_arch / 2])
            outer = ellipse(u, v, 0.0, cc[1], cw / 2 + lam, cd / 2 + lam)
            ring = np.maximum.reduce([outer, -inner, np.abs(s) - h_arch / 2, v - (-d / 2 + 3.0)])
            body = np.maximum.reduce(
                [
                    ellipse(u, v, 0.0, -0.1 * d, w / 2, 0.6 * d),
                    -(v + d / 2),
                    -(s + hc / 2),
                    s - (hc / 2 + v * (h_ant - h_post) / d),
                ]
            )
            return np.minimum(body, ring)

        reach = max(w / 2, cw / 2 + lam) + 2.0
        lo = np.array([-reach, cc[1] - cd / 2 - lam - 8.0, -max(h_ant, h_post, h_arch) / 2 - 2.0])
        hi = np.array([reach, d / 2 + 2.0 * min_radius + 2.0, max(h_ant, h_post, h_arch) / 2 + 2.0])
        return LocalPart(self.center, self.axes, lo, hi, fn)

    def truth(self) -> dict:
        """Analytic measurements in the vertebra's own frame (lengths mm, angles degrees) and key local points
        (converted to RAS by the caller): ``points`` maps a name to body-frame mm."""
        base, tip = self.spinous_base_tip()
        hc = self.h_center
        points = {
            "body_center": self.center,
            "superior_endplate_center": self.to_body([0.0, 0.0, hc / 2]),
            "inferior_endplate_center": self.to_body([0.0, 0.0, -hc / 2]),
            "canal_center": self.to_body(self.canal_center()),
        }
        values: dict = {
            "canal_depth": self.canal_depth,
            "canal_width": self.canal_width,
        }
        if not self.is_atlas:
            points["spinous_base"] = self.to_body(base)
            points["spinous_tip"] = self.to_body(tip)
            points["anterior_superior_corner"] = self.to_body([0.0, self.depth / 2, hc / 2 + (self.h_ant - hc)])
            points["anterior_inferior_corner"] = self.to_body([0.0, self.depth / 2, -hc / 2])
            points["posterior_superior_corner"] = self.to_body([0.0, -self.depth / 2, hc / 2 - (hc - self.h_post)])
            points["posterior_inferior_corner"] = self.to_body([0.0, -self.depth / 2, -hc / 2])
            values.update(
                anterior_height=self.h_ant,
                posterior_height=self.h_post,
                superior_endplate_depth=self.depth,
                inferior_endplate_depth=self.depth,
                superior_endplate_width=self.width,
                inferior_endplate_width=self.width,
                spinous_length=self.spl,
                spinous_angle=self.spa,
            )
        directions = {"superior_axis": self.axes[:, 2], "anterior_axis": self.axes[:, 1], "left_axis": self.axes[:, 0]}
        return {"values": values, "points": points, "directions": directions}


def _segment_weights(n: int, shape: str) -> np.ndarray:
    if shape == "lumbar":  # lordosis concentrated low (L5/S1 most)
        w = np.linspace(1.0, 0.3, n)
    elif shape == "thoracic":  # kyphosis peaking mid-thoracic
        w = np.sin(np.linspace(0.15, np.pi - 0.15, n))
    else:
        w = np.ones(n)
    return w / w.sum()


def _scoliosis_tilt(x: np.ndarray, cobb: float, apex: float, span: float) -> np.ndarray:
    """Coronal tilt (degrees) at level positions ``x`` of a curve of ``span`` levels centred on ``apex``.

    The lateral displacement follows ``sin²`` over the curve, so the spine above the curve returns over the pelvis
    and the tilt is 0 at both ends; the end vertebrae (at a quarter span from the ends) are tilted ±cobb/2, so the
    Cobb angle is ``cobb``.
    """
    r = (x - apex) / span + 0.5
    tilt = np.arctan(np.tan(np.deg2rad(cobb / 2)) * np.sin(2 * np.pi * r))
    return np.where((r >= 0) & (r <= 1), np.rad2deg(tilt), 0.0)


def build_spine(
    s1_center: np.ndarray,
    s1_normal: np.ndarray,
    scale: float,
    lordosis: float,
    kyphosis: float,
    cervical_lordosis: float,
    scoliosis: tuple[float, float, float],
    has_l6: bool,
    jitter: np.ndarray,
) -> list[Vertebra]:
    """Stack the vertebrae from the S1 endplate upwards.

    Args:
        s1_center: body-frame centre (mm) of the S1 superior endplate.
        s1_normal: unit normal of that endplate (its tilt from vertical is the sacral slope).
        scale: body size factor applied to all dimensions.
        lordosis: L1-S1 lordosis (degrees); kyphosis: T1-T12 (more exactly T1-L1 segments); cervical_lordosis: C2-T1.
        scoliosis: ``(cobb_deg, apex_level_position, span_levels)``; positive cobb bends the apex to the left.
        has_l6: add a sixth lumbar vertebra.
        jitter: ``(25, 4)`` random numbers in [0, 1) (per level, bottom-up): size, canal depth, canal width and
            spinous angle variation.

    Returns:
        Vertebrae from C1 down to L5 (or L6), i.e. in label order.
    """
    from ..catalogue import by_name

    names = [d.name for d in LEVELS if d.name != "vertebrae_L6"]
    if has_l6:
        names.append("vertebrae_L6")
    bottom_up = names[::-1]
    n_lumbar = 6 if has_l6 else 5
    # segment angle change (sagittal, + = axis turning anterior going up) below each vertebra, bottom-up
    seg = np.concatenate(
        [
            -lordosis * _segment_weights(n_lumbar, "lumbar"),
            kyphosis * _segment_weights(12, "thoracic"),
            -cervical_lordosis * _segment_weights(6, "cervical"),
            [0.0],  # C1 sits parallel to C2
        ]
    )
    sacral_slope = np.rad2deg(np.arctan2(s1_normal[1], s1_normal[2]))
    theta = sacral_slope + np.cumsum(seg)
    x = np.arange(len(bottom_up), dtype=np.float64)
    psi = _scoliosis_tilt(x, *scoliosis)
    cursor = np.asarray(s1_center, dtype=np.float64)
    axis_prev = unit(s1_normal)
    vertebrae: list[Vertebra] = []
    for i, name in enumerate(bottom_up):
        dims = _BY_NAME[name]
        rand = jitter[i]
        size = scale * (0.95 + 0.1 * rand[0])
        axis = unit([np.tan(np.deg2rad(psi[i])), np.tan(np.deg2rad(theta[i])), 1.0])
        axes = frame_from_axes(axis, [0.0, 1.0, 0.0])
        seg_above = seg[i + 1] if i + 1 < len(seg) else 0.0
        wedge = np.deg2rad(-0.35 * seg_above)
        depth, height = dims.depth * size, dims.height * size
        delta = depth * np.tan(wedge)
        h_ant, h_post = height + delta / 2, height - delta / 2
        disc = (dims.disc_below if name != "vertebrae_C1" else 2.0) * scale
        mid = unit(axis_prev + axis)
        center = cursor + mid * disc + axis * (0.25 * (h_ant + h_post))
        v = Vertebra(
            name=name,
            label=by_name(name).id,
            center=center,
            axes=axes,
            h_ant=h_ant,
            h_post=h_post,
            depth=depth,
            width=dims.width * size,
            canal_depth=dims.canal_depth * scale * (0.95 + 0.1 * rand[1]),
            canal_width=dims.canal_width * scale * (0.95 + 0.1 * rand[2]),
            lamina=dims.lamina * scale,
            spl=dims.spl * size,
            spa=dims.spa + 10.0 * (rand[3] - 0.5) if dims.spl > 0 else 0.0,
            tp_length=dims.tp_length * size,
            tp_angle=dims.tp_angle,
        )
        vertebrae.append(v)
        cursor = center + axis * (0.5 * v.h_center)
        axis_prev = axis
    return vertebrae[::-1]
