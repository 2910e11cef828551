"""Sacrum and hip bones.

The pelvis is drawn in a neutral pose (anterior pelvic plane vertical, hip joint centres on the ``l`` axis) and
then rotated by the pelvic tilt about the line through both hip joint centres. Each hip bone is the union of

* an acetabular mass hollowed by a spherical cavity (femoral head radius + joint space) and open laterally,
  anteriorly and inferiorly (inclination 45°, anteversion 20°);
* the iliac wing: a fan of flattened tubes from the body of the ilium to the iliac crest, plus a thick crest tube
  running from the ASIS to the PSIS, anterior and posterior borders and the auricular (sacro-iliac) part;
* the pubis (superior ramus, symphyseal body, inferior ramus), the ischium (body, tuberosity, ramus) closing the
  obturator foramen;
* landmark prominences whose apex is the truth point: ASIS, PSIS, pubic tubercle (PT) and ischial spine (IS).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .shapes import (
    BoneDensity,
    Difference,
    Ellipsoid,
    Fan,
    LocalPart,
    Part,
    Structure,
    Tube,
    frame_from_axes,
    smooth_curve,
    unit,
)

__all__ = ["LANDMARKS", "Pelvis", "build_pelvis"]

LANDMARKS: tuple[str, ...] = ("ASIS", "PSIS", "PT", "IS")
"""Pelvic landmark names (as in the published morphometry: anterior/posterior superior iliac spine, pubic
tubercle, ischial spine)."""

_JOINT_SPACE_MM = 2.0
_CREST = ((118, 45, 58), (132, 18, 105), (126, -22, 135), (104, -58, 138), (74, -84, 110), (48, -96, 68))
_SACRUM = ((0, -35, 105), (0, -52, 82), (0, -64, 55), (0, -66, 28), (0, -58, 5))
_SACRUM_WIDTH = (57.0, 48.0, 33.0, 18.0, 8.0)
_SACRUM_DEPTH = (22.0, 20.0, 16.0, 11.0, 6.0)


@dataclass
class Pelvis:
    """The placed pelvis: drawable structures and analytic truth (body-frame mm)."""

    sacrum: Structure
    hips: dict[str, Structure]
    hip_centers: dict[str, np.ndarray]
    landmarks: dict[str, dict[str, np.ndarray]]
    s1_center: np.ndarray
    s1_normal: np.ndarray
    cavity_radius: dict[str, float] = field(default_factory=dict)


class _Placer:
    """Neutral-pose pelvis coordinates (nominal adult mm, ``l`` given for the left side) → body frame."""

    def __init__(self, scale: float, width: float, tilt_deg: float):
        self.scale = scale
        self.width = width
        t = np.deg2rad(tilt_deg)  # positive: posterior tilt (the top of the pelvis moves backwards)
        self.rotation = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(t), -np.sin(t)], [0.0, np.sin(t), np.cos(t)]])

    def point(self, p, side: int = 1) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64) * self.scale
        p = p * np.array([side * self.width, 1.0, 1.0])
        return p @ self.rotation.T

    def direction(self, d, side: int = 1) -> np.ndarray:
        d = np.asarray(d, dtype=np.float64) * np.array([side, 1.0, 1.0])
        return unit(d @ self.rotation.T)

    def points(self, pts, side: int = 1) -> np.ndarray:
        return np.array([self.point(p, side) for p in pts])


def _tip_tube(points: np.ndarray, ru, rv, up, min_radius: float) -> Tube:
    """A tube whose bony end is exactly ``points[-1]`` (the end-cap centre is pulled back by its radius)."""
    pts = np.array(points, dtype=np.float64)
    ru = np.maximum(np.asarray(ru, dtype=np.float64), min_radius)
    rv = np.maximum(np.asarray(rv, dtype=np.float64), min_radius)
    pts[-1] = pts[-1] - min(ru[-1], rv[-1]) * unit(pts[-1] - pts[-2])
    return Tube(pts, ru, rv, up)


def _bump(apex: np.ndarray, direction: np.ndarray, radius: float, min_radius: float) -> Ellipsoid:
    """A spherical prominence whose most protruding point along ``direction`` is ``apex``."""
    r = max(radius, min_radius)
    return Ellipsoid(apex - r * direction, np.array([r, r, r]))


def _hip(
    place: _Placer, side: int, label: int, head_radius: float, density: BoneDensity, min_radius: float
) -> tuple[Structure, dict[str, np.ndarray]]:
    def tube(pts, ru, rv, up=(0.0, 0.0, 1.0)) -> Tube:
        return Tube(
            place.points(pts, side),
            np.maximum(np.asarray(ru, float) * place.scale, min_radius),
            np.maximum(np.asarray(rv, float) * place.scale, min_radius),
            np.asarray(up, float),
        )

    hip = place.point((88, 0, 0), side)
    opening = place.direction((0.70, 0.25, -0.67), side)
    cavity = head_radius + _JOINT_SPACE_MM
    reach = head_radius + 16.0 * place.scale
    opening_cut = LocalPart(
        hip,
        frame_from_axes(opening, [0.0, 0.0, 1.0]),
        np.array([-reach, -reach, 0.2 * head_radius]),
        np.array([reach, reach, reach]),
        lambda p: 0.2 * head_radius - p[2],
    )
    mass = Ellipsoid(hip - 0.45 * head_radius * opening, np.full(3, head_radius + 14.0 * place.scale))
    parts: list[Part] = [Difference(mass, [opening_cut])]

    crest = smooth_curve(place.points(_CREST, side), 40)
    k = place.scale
    parts.append(Tube(crest, np.maximum(9.0 * k, min_radius), np.maximum(7.5 * k, min_radius), np.array([0, 0, 1.0])))
    base = smooth_curve(place.points(((100, 30, 25), (98, -5, 38), (70, -52, 45)), side), 24)
    top = smooth_curve(place.points(_CREST, side), 24)
    thickness = np.maximum(np.array([16.0, 8.0, 10.0]) * k, 2.0 * min_radius)
    parts.append(Fan(base, top, place.point((40, -10, 60), side), place.direction((0, 0, 1)), thickness))
    parts += [
        tube(((118, 45, 58), (104, 40, 24), (96, 30, 8)), (6, 6, 8), (6, 6, 8)),  # anterior border, AIIS
        tube(((48, -96, 68), (58, -86, 38), (72, -55, 35)), (7, 8, 9), (7, 8, 9)),  # posterior border, PIIS
        tube(((52, -62, 98), (50, -70, 52)), (9, 9), (9, 9)),  # auricular part
        tube(((52, -64, 80), (58, -35, 50), (60, -5, 32), (56, 25, 5), (45, 40, -18)), 5, 4),  # pelvic brim
        tube(((82, 24, -10), (40, 42, -22), (6, 48, -30)), (9, 8, 8), (7, 7, 7)),  # superior pubic ramus
        tube(((6, 48, -22), (8, 44, -52)), (9, 9), (6, 6), up=(0, 1, 0)),  # symphyseal body
        tube(((8, 44, -52), (30, 15, -68), (56, -22, -66)), (7, 6, 7), (6, 5, 6)),  # inferior rami
        tube(((78, -20, -14), (62, -30, -56)), (13, 12), (11, 10), up=(1, 0, 0)),  # ischial body
        Ellipsoid(place.point((60, -32, -62), side), np.array([13.0, 16.0, 12.0]) * k),  # ischial tuberosity
    ]
    # landmark prominences: apex = truth point
    asis_dir = place.direction((0.15, 1.0, 0.35), side)
    psis_dir = place.direction((-0.1, -1.0, 0.1), side)
    pt_dir = place.direction((0.0, 0.6, 0.8), side)
    ramus = place.point((25, 44.6, -25.5), side)
    landmarks = {
        "ASIS": crest[0] + 10.0 * k * asis_dir,
        "PSIS": crest[-1] + 10.0 * k * psis_dir,
        "PT": ramus + 11.0 * k * pt_dir,
        "IS": place.point((54, -54, -16), side),
    }
    parts += [
        _bump(landmarks["ASIS"], asis_dir, 6.0 * k, min_radius),
        _bump(landmarks["PSIS"], psis_dir, 6.0 * k, min_radius),
        _bump(landmarks["PT"], pt_dir, 4.5 * k, min_radius),
        _tip_tube(
            np.array([place.point((74, -30, -14), side), landmarks["IS"]]),
            np.array([7.0, 3.0]) * k,
            np.array([5.0, 2.5]) * k,
            np.array([0.0, 0.0, 1.0]),
            min_radius,
        ),
    ]
    cuts: list[Part] = [Ellipsoid(hip, np.full(3, cavity))]
    return Structure(label, parts, density, cuts=cuts), landmarks


def build_pelvis(
    scale: float,
    width: float,
    tilt_deg: float,
    head_radius: dict[str, float],
    densities: dict[str, BoneDensity],
    min_radius: float,
) -> Pelvis:
    """Place the sacrum and both hip bones.

    Args:
        scale: body size factor; width: extra pelvic width factor (lateral coordinates only).
        tilt_deg: pelvic tilt about the inter-hip axis (positive = posterior tilt).
        head_radius: femoral head radius (mm) per side (``"left"``, ``"right"``); sizes the acetabular cavities.
        densities: bone densities for ``"sacrum"`` and ``"hip"``.
        min_radius: smallest tube radius (mm) drawn (keeps thin parts connected on coarse grids).
    """
    from ..catalogue import by_name

    place = _Placer(scale, width, tilt_deg)
    hips, centres, landmarks, cavity = {}, {}, {}, {}
    for side, name in ((1, "left"), (-1, "right")):
        hips[name], landmarks[name] = _hip(
            place, side, by_name(f"hip_{name}").id, head_radius[name], densities["hip"], min_radius
        )
        centres[name] = place.point((88, 0, 0), side)
        cavity[name] = head_radius[name] + _JOINT_SPACE_MM
    axis = place.points(_SACRUM)
    s1_center = axis[0]
    s1_normal = unit(axis[0] - axis[1])
    line = smooth_curve(axis, 12)
    knots = np.linspace(0.0, 1.0, len(_SACRUM))
    t = np.linspace(0.0, 1.0, len(line))
    tube = Tube(
        line,
        np.maximum(np.interp(t, knots, _SACRUM_WIDTH) * scale * width, min_radius),
        np.maximum(np.interp(t, knots, _SACRUM_DEPTH) * scale, min_radius),
        up=np.array([1.0, 0.0, 0.0]),
    )
    top_cut = LocalPart(
        s1_center,
        frame_from_axes(s1_normal, [0.0, 1.0, 0.0]),
        np.array([-70.0, -40.0, 0.0]) * scale,
        np.array([70.0, 40.0, 30.0]) * scale,
        lambda p: -p[2],
    )
    sacrum = Structure(by_name("sacrum").id, [tube], densities["sacrum"], cuts=[top_cut])
    return Pelvis(sacrum, hips, centres, landmarks, s1_center, s1_normal, cavity)
