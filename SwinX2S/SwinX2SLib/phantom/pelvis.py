"""Sacrum and hip bones.

The pelvis is drawn in a neutral pose (anterior pelvic plane vertical, hip joint centres on the ``l`` axis) and
then rotated by the pelvic tilt about the line through both hip joint centres. Each hip bone is the union of

* an acetabular mass hollowed by a spherical cavity (femoral head radius + joint space) and open laterally,
  anteriorly and inferiorly (inclination 45°, anteversion 20°);
* the iliac wing: a fan of flattened tubes from the body of the ilium to the iliac crest, plus a thick crest tube
  running from the ASIS to the PSIS, anterior and posterior borders and the auricular (sacro-iliac) part;
* the pubis (superior ramus, symphyseal body, inferior ramus), the ischium (body, tuberosity, ramus) closing the
  obturator foramen;
* landmark prominences: the anterior superior iliac spine (ASIS) at the anterior end of the iliac crest, the posterior
  superior iliac spine (PSIS) at its posterior end, the pubic tubercle (PT) on the anterior-superior border of the
  superior pubic ramus lateral to the symphysis (which lies behind it), and the ischial spine (IS).

The truth landmarks are defined as clinicians and Fischer et al. (Sci Rep 2019) define them: ASIS and PT are the
most anterior points, PSIS the most posterior point, of their (spherical) prominence in the anterior pelvic plane
(APP) frame, the APP being the plane through both ASIS and the midpoint of both PT; landmarks and plane are solved
together as a fixed point (:func:`app_landmarks`). IS is the tip of the spine.
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

__all__ = ["LANDMARKS", "Pelvis", "app_landmarks", "build_pelvis"]

LANDMARKS: tuple[str, ...] = ("ASIS", "PSIS", "PT", "IS")
"""Pelvic landmark names (as in the published morphometry: anterior/posterior superior iliac spine, pubic
tubercle, ischial spine)."""

_JOINT_SPACE_MM = 2.0
_CREST = ((118, 45, 58), (132, 18, 105), (126, -22, 135), (104, -58, 138), (74, -84, 110), (48, -96, 68))
_PUBIC_TUBERCLE = (22, 45, -26)  # on the superior pubic ramus' centreline, lateral to the symphysis
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


def _prominence(
    base: np.ndarray, direction: np.ndarray, reach: float, radius: float, min_radius: float
) -> tuple[np.ndarray, float]:
    """A spherical prominence ``(centre, radius)`` reaching ``reach`` mm from ``base`` along ``direction``; a radius
    widened to ``min_radius`` moves the centre back so that the reach (and the landmark) stays."""
    r = max(radius, min_radius)
    return base + (reach - r) * direction, r


def app_landmarks(
    prominences: dict[str, dict[str, tuple[np.ndarray, float]]], iterations: int = 50
) -> dict[str, dict[str, np.ndarray]]:
    """ASIS / PT (most anterior) and PSIS (most posterior) points of spherical prominences in the APP frame.

    Args:
        prominences: per side (``"left"``, ``"right"``) ``{"ASIS" | "PSIS" | "PT": (centre (3,), radius)}``, body
            frame (``x`` towards the patient's left, ``y`` anterior).
        iterations: at most this many fixed-point updates (converges in a few).

    Returns:
        ``{side: {name: point (3,)}}``.
    """
    anterior = np.array([0.0, 1.0, 0.0])
    marks: dict[str, dict[str, np.ndarray]] = {}
    for _ in range(iterations):
        marks = {
            side: {
                name: centre + (-radius if name == "PSIS" else radius) * anterior
                for name, (centre, radius) in spheres.items()
            }
            for side, spheres in prominences.items()
        }
        left, right = marks["left"], marks["right"]
        pt_mid = 0.5 * (left["PT"] + right["PT"])
        normal = unit(np.cross(left["ASIS"] - right["ASIS"], pt_mid - right["ASIS"]))
        normal = normal if normal[1] > 0 else -normal
        if np.linalg.norm(normal - anterior) < 1e-9:
            break
        anterior = normal
    return marks


def _hip(
    place: _Placer, side: int, label: int, head_radius: float, density: BoneDensity, min_radius: float
) -> tuple[Structure, dict[str, tuple[np.ndarray, float]], np.ndarray]:
    """One hip bone: the structure, its ASIS / PSIS / PT prominence spheres ``(centre, radius)`` and the IS tip."""

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
        tube(((82, 24, -10), (45, 40, -20), _PUBIC_TUBERCLE, (6, 40, -30)), (9, 8, 7, 7), (7, 7, 6, 6)),  # sup. ramus
        tube(((6, 40, -24), (8, 37, -52)), (9, 9), (6, 6), up=(0, 1, 0)),  # symphyseal body
        tube(((8, 37, -52), (30, 15, -68), (56, -22, -66)), (7, 6, 7), (6, 5, 6)),  # inferior rami
        tube(((78, -20, -14), (62, -30, -56)), (13, 12), (11, 10), up=(1, 0, 0)),  # ischial body
        Ellipsoid(place.point((60, -32, -62), side), np.array([13.0, 16.0, 12.0]) * k),  # ischial tuberosity
    ]
    # landmark prominences (spheres) standing out of the crest ends and the ramus: the ASIS 13 mm anteriorly from
    # the crest's anterior end, the PT 13 mm anterior-superiorly from the centreline of the superior ramus (its
    # anterior surface and the symphysis stay 5-7 mm behind), the PSIS 10 mm posteriorly from the crest's end.
    prominences = {
        "ASIS": _prominence(crest[0], place.direction((0.1, 1.0, 0.25), side), 13.0 * k, 5.0 * k, min_radius),
        "PSIS": _prominence(crest[-1], place.direction((-0.1, -1.0, 0.1), side), 10.0 * k, 6.0 * k, min_radius),
        "PT": _prominence(
            place.point(_PUBIC_TUBERCLE, side), place.direction((0.0, 0.8, 0.6), side), 13.0 * k, 5.0 * k, min_radius
        ),
    }
    ischial_spine = place.point((54, -54, -16), side)
    parts += [Ellipsoid(centre, np.full(3, radius)) for centre, radius in prominences.values()]
    parts += [
        _tip_tube(
            np.array([place.point((74, -30, -14), side), ischial_spine]),
            np.array([7.0, 3.0]) * k,
            np.array([5.0, 2.5]) * k,
            np.array([0.0, 0.0, 1.0]),
            min_radius,
        ),
    ]
    cuts: list[Part] = [Ellipsoid(hip, np.full(3, cavity))]
    return Structure(label, parts, density, cuts=cuts), prominences, ischial_spine


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
    hips, centres, prominences, spines, cavity = {}, {}, {}, {}, {}
    for side, name in ((1, "left"), (-1, "right")):
        hips[name], prominences[name], spines[name] = _hip(
            place, side, by_name(f"hip_{name}").id, head_radius[name], densities["hip"], min_radius
        )
        centres[name] = place.point((88, 0, 0), side)
        cavity[name] = head_radius[name] + _JOINT_SPACE_MM
    landmarks = app_landmarks(prominences)
    for name in landmarks:
        landmarks[name]["IS"] = spines[name]
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
