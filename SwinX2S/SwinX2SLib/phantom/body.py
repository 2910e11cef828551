"""Soft tissue around the skeleton: skin/fat/muscle of the trunk, neck, head and thighs, lungs, trachea, organs
and bowel gas; unlabelled bones that appear on radiographs (sternum, costal cartilage, clavicles, scapulae, skull);
metal implants.

The soft tissue is drawn slice by slice (one axial slice of the grid at a time): the patient's rotation is about
the superior axis, so each grid slice is one body-frame level ``s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .femur import Femur
from .pelvis import Pelvis
from .ribs import Rib
from .shapes import BoneDensity, Canvas, Ellipsoid, Part, Structure, Tube, unit
from .spine import Vertebra

__all__ = ["HU", "Arm", "Habitus", "build_arms", "draw_metal", "draw_soft_tissue", "unlabelled_bones"]

HU = {
    "air": -1000.0,
    "lung": -820.0,
    "fat": -100.0,
    "muscle": 45.0,
    "liver": 60.0,
    "kidney": 35.0,
    "spleen": 50.0,
    "heart": 40.0,
    "bladder": 10.0,
    "brain": 35.0,
    "gas": -850.0,
    "cartilage": 150.0,
    "metal": 3000.0,
}
"""Nominal CT numbers (HU) of the soft tissues."""


@dataclass(frozen=True)
class Habitus:
    """Body build: overall size factor, adiposity (0 lean .. 1 obese) and the subcutaneous fat (mm)."""

    scale: float
    adiposity: float

    @property
    def fat_mm(self) -> float:
        return (6.0 + 30.0 * self.adiposity) * self.scale

    @property
    def girth(self) -> float:
        """Extra factor on trunk width and depth from adiposity."""
        return 1.0 + 0.25 * self.adiposity


@dataclass(frozen=True)
class Arm:
    """An arm hanging beside the trunk: shoulder (humeral head centre), elbow and wrist (body-frame mm)."""

    side: int
    shoulder: np.ndarray
    elbow: np.ndarray
    wrist: np.ndarray
    scale: float

    def soft_tissue_at(self, s: float, girth: float) -> tuple[float, float, float] | None:
        """Centre ``(l, a)`` and radius (mm) of the arm's cross-section at level ``s``, None above or below it."""
        k = self.scale
        if s >= self.shoulder[2]:
            r2 = (55.0 * k) ** 2 - (s - self.shoulder[2]) ** 2  # deltoid cap over the humeral head
            return (self.shoulder[0], self.shoulder[1], float(np.sqrt(r2))) if r2 > 0 else None
        for a, b, ra, rb in ((self.shoulder, self.elbow, 52.0, 40.0), (self.elbow, self.wrist, 40.0, 28.0)):
            if b[2] <= s <= a[2]:
                t = (a[2] - s) / (a[2] - b[2])
                c = a + t * (b - a)
                return float(c[0]), float(c[1]), (ra + t * (rb - ra)) * k * girth
        return None

    def bones(self, density: BoneDensity, min_radius: float) -> Structure:
        """Humerus (head and shaft) and forearm bones, unlabelled."""
        k, r = self.scale, min_radius
        down = unit(self.elbow - self.shoulder)
        humerus = Tube(np.array([self.shoulder + 15.0 * k * down, self.elbow]), max(11.0 * k, r), max(10.0 * k, r))
        forearm = Tube(np.array([self.elbow, self.wrist]), max(12.0 * k, r), max(7.0 * k, r))
        head = Ellipsoid(self.shoulder, np.full(3, 23.0 * k))
        return Structure(0, [head, humerus, forearm], density)


def build_arms(vertebrae: list[Vertebra], habitus: Habitus, abduction_deg: float) -> list[Arm]:
    """Both arms hanging at the patient's sides, abducted by ``abduction_deg``, elbows slightly flexed."""
    k = habitus.scale
    t2 = next(v for v in vertebrae if v.name == "vertebrae_T2")
    a = np.deg2rad(abduction_deg)
    arms = []
    for side in (1, -1):
        shoulder = t2.center + np.array([side * 170.0 * k * habitus.girth, 25.0 * k, 10.0 * k])
        elbow = shoulder + 300.0 * k * np.array([side * np.sin(a), 0.0, -np.cos(a)])
        wrist = elbow + 250.0 * k * unit([side * np.sin(a / 2), 0.35, -1.0])
        arms.append(Arm(side, shoulder, elbow, wrist, k))
    return arms


@dataclass
class _Outline:
    """Trunk cross-sections as functions of the level ``s`` (interpolated between key levels)."""

    s: np.ndarray
    centre_l: np.ndarray
    posterior: np.ndarray
    anterior: np.ndarray
    half_width: np.ndarray

    def at(self, s: float) -> tuple[float, float, float, float]:
        """Centre ``(l, a)`` and semi-axes ``(half_width, half_depth)`` at level ``s``."""
        cl, post, ant, hw = (
            float(np.interp(s, self.s, v)) for v in (self.centre_l, self.posterior, self.anterior, self.half_width)
        )
        return cl, 0.5 * (post + ant), hw, 0.5 * (ant - post)


def _outline(
    vertebrae: list[Vertebra], ribs: dict[str, Rib], pelvis: Pelvis, femurs: dict[str, Femur], habitus: Habitus
) -> _Outline:
    k, g = habitus.scale, habitus.girth
    fat = habitus.fat_mm
    rows = []
    for v in vertebrae:
        name = v.name.removeprefix("vertebrae_")
        tip = v.to_body(v.spinous_base_tip()[1])
        post = min(tip[1], v.center[1] - v.depth) - (25.0 * k + fat)
        if name[0] == "C":
            rows.append((v.center[2], v.center[0], post + 10.0 * k, v.center[1] + 45.0 * k + fat, 45.0 * k + fat))
        elif name[0] == "T":
            pts = np.vstack([ribs[f"rib_{s}_{name[1:]}"].centreline for s in ("left", "right")])
            half = np.abs(pts[:, 0] - v.center[0]).max() + 18.0 * k * g + fat
            if int(name[1:]) <= 3:
                half = max(half, 150.0 * k * g)  # shoulders
            rows.append((v.center[2], v.center[0], post, pts[:, 1].max() + 14.0 * k * g + fat, half))
        else:
            rows.append((v.center[2], v.center[0], post, v.center[1] + 95.0 * k * g + fat, 125.0 * k * g + fat))
    gt = max(abs(f.junction[0]) + 30.0 * f.scale for f in femurs.values())
    front = max(p["PT"][1] for p in pelvis.landmarks.values())
    back = min(p["PSIS"][1] for p in pelvis.landmarks.values())
    asis = max(abs(p["ASIS"][0]) for p in pelvis.landmarks.values())
    rows.append((pelvis.s1_center[2], 0.0, back - 20.0 * k - fat, front + 40.0 * k * g + fat, asis + 25.0 * k + fat))
    rows.append((0.0, 0.0, back - 10.0 * k - fat, front + 25.0 * k * g + fat, gt + 20.0 * k + fat))
    rows.append((-45.0 * k, 0.0, back + 5.0 * k - fat, front + 20.0 * k + fat, gt + fat))
    rows.append((-70.0 * k, 0.0, back + 25.0 * k - fat, front - 5.0 * k + fat, 35.0 * k + fat))  # perineum
    rows.sort()
    return _Outline(*(np.array(c, dtype=np.float64) for c in zip(*rows, strict=True)))


def _ellipse(lat, ant, cl, ca, hw, hd) -> np.ndarray:
    return ((lat - cl) / hw) ** 2 + ((ant - ca) / hd) ** 2


class _SliceWriter:
    """Draws filled ellipses into one axial slice, touching only the window of voxels that can be inside."""

    def __init__(self, canvas: Canvas):
        X, Y, _ = canvas.grid.shape
        self.canvas = canvas
        pts = canvas.points((slice(0, X), slice(0, Y), slice(0, 1)))
        self.l2, self.a2 = pts[0][:, :, 0], pts[1][:, :, 0]
        self.ct = canvas.ct[:, :, 0]
        self.s = 0.0

    def window(self, cl: float, ca: float, hw: float, hd: float) -> tuple[slice, slice] | None:
        box = self.canvas.index_box(np.array([cl - hw, ca - hd, self.s]), np.array([cl + hw, ca + hd, self.s]))
        return None if box is None else box[:2]

    def ellipse(self, cl, ca, hw, hd, value: float, above: float | None = None) -> None:
        """Fill the ellipse with ``value`` (only over voxels whose value exceeds ``above``, when given)."""
        win = self.window(cl, ca, hw, hd)
        if win is None or hw <= 0 or hd <= 0:
            return
        mask = _ellipse(self.l2[win], self.a2[win], cl, ca, hw, hd) < 1.0
        ct = self.ct[win]
        if above is not None:
            mask &= ct > above
        ct[mask] = value


def draw_soft_tissue(
    canvas: Canvas,
    vertebrae: list[Vertebra],
    ribs: dict[str, Rib],
    pelvis: Pelvis,
    femurs: dict[str, Femur],
    arms: list[Arm],
    habitus: Habitus,
    rng: np.random.Generator,
) -> None:
    """Fill ``canvas.ct`` with air, fat, muscle, organs, gas and lungs (bones are drawn afterwards)."""
    Z = canvas.grid.shape[2]
    writer = _SliceWriter(canvas)
    levels = canvas.points((slice(0, 1), slice(0, 1), slice(0, Z)))[2][0, 0, :]
    outline = _outline(vertebrae, ribs, pelvis, femurs, habitus)
    k, fat = habitus.scale, habitus.fat_mm
    by = {v.name.removeprefix("vertebrae_"): v for v in vertebrae}
    s_of = {n: float(v.center[2]) for n, v in by.items()}
    top_s = s_of["C1"]
    crotch = -70.0 * k
    organs = _organs(by, outline, pelvis, habitus, rng)
    head = Ellipsoid(by["C1"].center + np.array([0.0, 20.0, 120.0]) * k, np.array([75.0, 92.0, 102.0]) * k)
    lung_top, dome, recess = s_of["T1"] + 12.0 * k, s_of["T10"], s_of["T12"]
    inner_hu = HU["fat"] + 1.0
    for z, s in enumerate(levels):
        s = float(s)
        writer.ct, writer.s = canvas.ct[:, :, z], s
        ellipses = []  # (cl, ca, hw, hd) of the skin outline; fat_mm inside it starts the muscle
        if crotch <= s <= top_s + 40.0 * k:
            ellipses.append(outline.at(s))
        r = (s - head.center[2]) / head.radii[2]
        if s > top_s and abs(r) < 1.0:  # neck into head
            f = np.sqrt(1.0 - r * r)
            ellipses.append((head.center[0], head.center[1], head.radii[0] * f + fat, head.radii[1] * f + fat))
        for femur in femurs.values():
            t = (femur.junction[2] - s) / max(-femur.shaft_axis[2], 1e-3)
            if s < 0.0 and -40.0 < t < femur.shaft_length + 20.0:
                c = femur.along_shaft(t)
                frac = np.clip(t / femur.shaft_length, 0.0, 1.0)
                radius = (70.0 - 25.0 * frac) * k * habitus.girth
                cl = c[0] - femur.side * (20.0 - 15.0 * frac) * k
                ellipses.append((cl, c[1] + 5.0 * k, radius + fat, 0.95 * radius + fat))
        for arm in arms:
            section = arm.soft_tissue_at(s, habitus.girth)
            if section is not None:
                ellipses.append((section[0], section[1], section[2] + 0.5 * fat, section[2] + 0.5 * fat))
        if not ellipses:
            continue
        for cl, ca, hw, hd in ellipses:
            writer.ellipse(cl, ca, hw, hd, HU["fat"])
        for cl, ca, hw, hd in ellipses:
            writer.ellipse(cl, ca, hw - fat, hd - fat, HU["muscle"])
        for organ, hu in organs:
            r = (s - organ.center[2]) / organ.radii[2]
            if abs(r) < 1.0:
                f = np.sqrt(1.0 - r * r)
                writer.ellipse(organ.center[0], organ.center[1], organ.radii[0] * f, organ.radii[1] * f, hu, inner_hu)
        if recess - 20.0 * k < s < lung_top:
            cl, ca, hw, hd = outline.at(s)
            win = writer.window(cl, ca, hw, hd)
            if win is not None:
                ct = writer.ct[win]
                lungs = _lungs(writer.l2[win], writer.a2[win], s, outline, by, lung_top, dome, recess, k)
                ct[lungs & (ct > inner_hu)] = HU["lung"]
        if s_of["T5"] < s < s_of["C6"]:
            v = by["T1"] if s < s_of["T1"] else by["C6"]
            writer.ellipse(v.center[0], v.center[1] + v.depth / 2 + 16.0 * k, 9.0 * k, 8.0 * k, HU["air"], inner_hu)


def _lungs(l2, a2, s, outline: _Outline, by: dict[str, Vertebra], top, dome, recess, k) -> np.ndarray:
    cl, ca, hw, hd = outline.at(s)
    hw, hd = hw - 30.0 * k, hd - 30.0 * k
    taper = np.sqrt(np.clip((top - s) / (top - float(by["T3"].center[2]) + 1e-6), 0.0, 1.0))
    spine = min(by, key=lambda n: abs(float(by[n].center[2]) - s) if n.startswith("T") else np.inf)
    v = by[spine]
    lungs = np.zeros(l2.shape, dtype=bool)
    for side in (1.0, -1.0):
        lc = cl + side * 0.5 * hw
        q2 = _ellipse(l2, a2, lc, ca - 0.05 * hd, 0.5 * hw * max(taper, 0.05), 0.85 * hd * max(taper, 0.05))
        bottom = dome + (10.0 * k if side < 0 else 0.0) - (dome - recess) * np.clip(q2, 0, 1)
        lungs |= (q2 < 1.0) & (s > bottom)
    central = (np.abs(l2 - v.center[0]) < 22.0 * k) | (
        (np.abs(l2 - v.center[0]) < 38.0 * k) & (a2 < v.center[1] + v.depth * 0.6)
    )
    return lungs & ~central


def _organs(
    by: dict[str, Vertebra], outline: _Outline, pelvis: Pelvis, habitus: Habitus, rng: np.random.Generator
) -> list[tuple[Ellipsoid, float]]:
    k = habitus.scale
    t8, t11, l1, l3 = by["T8"], by["T11"], by["L1"], by["L3"]
    _, ca8, _, hd8 = outline.at(float(t8.center[2]))
    _, ca11, _, _ = outline.at(float(t11.center[2]))
    organs = [
        (
            Ellipsoid(
                np.array([t8.center[0] + 20 * k, ca8 + 0.3 * hd8, t8.center[2] - 10 * k]), np.array([65, 50, 60]) * k
            ),
            HU["heart"],
        ),
        (
            Ellipsoid(np.array([t11.center[0] - 60 * k, ca11 + 10 * k, t11.center[2]]), np.array([85, 80, 75]) * k),
            HU["liver"],
        ),
        (
            Ellipsoid(np.array([t11.center[0] + 85 * k, ca11 - 20 * k, t11.center[2]]), np.array([40, 35, 55]) * k),
            HU["spleen"],
        ),
        (
            Ellipsoid(
                np.array([0.0, max(p["PT"][1] for p in pelvis.landmarks.values()) - 35 * k, -5 * k]),
                np.array([40, 35, 30]) * k,
            ),
            HU["bladder"],
        ),
    ]
    for side in (1, -1):
        c = l1.center + np.array([side * 55.0, 8.0, -10.0]) * k
        organs.append((Ellipsoid(c, np.array([28, 25, 55]) * k), HU["kidney"]))
    if rng.random() < 0.5:  # stomach bubble
        c = np.array([t11.center[0] + 60 * k, ca11 + 35 * k, by["T10"].center[2]])
        organs.append((Ellipsoid(c, np.full(3, 28.0 * k)), HU["gas"]))
    for _ in range(int(rng.integers(3, 9))):  # bowel gas
        s = rng.uniform(float(pelvis.s1_center[2]), float(l1.center[2]))
        c = np.array([l3.center[0] + rng.uniform(-90, 90) * k, l3.center[1] + rng.uniform(40, 100) * k, s])
        organs.append((Ellipsoid(c, rng.uniform(8, 25, size=3) * k), HU["gas"] + rng.uniform(0, 150)))
    return organs


def unlabelled_bones(
    vertebrae: list[Vertebra], ribs: dict[str, Rib], habitus: Habitus, density: BoneDensity, min_radius: float
) -> list[Structure]:
    """Bones without a class (label 0) that still shape the radiographs: sternum, costal cartilages, clavicles,
    scapulae and the skull vault."""
    k = habitus.scale
    by = {v.name.removeprefix("vertebrae_"): v for v in vertebrae}
    ends = {(side, n): ribs[f"rib_{side}_{n}"].centreline[-1] for side in ("left", "right") for n in range(1, 13)}
    mid_l = float(by["T4"].center[0])
    front = max(ends[(s, n)][1] for s in ("left", "right") for n in range(1, 8)) + 4.0 * k
    top = 0.5 * (ends[("left", 1)][2] + ends[("right", 1)][2]) + 10.0 * k
    bottom = 0.5 * (ends[("left", 7)][2] + ends[("right", 7)][2]) - 20.0 * k
    r = min_radius
    sternum = Tube(
        np.array([[mid_l, front - 6 * k, top], [mid_l, front, 0.5 * (top + bottom)], [mid_l, front, bottom]]),
        np.maximum(np.array([26.0, 16.0, 12.0]) * k, r),
        np.maximum(6.0 * k, r),
        up=np.array([1.0, 0, 0]),
    )
    cartilage = []
    for (side, n), end in ends.items():
        if n > 10:
            continue
        sign = 1.0 if side == "left" else -1.0
        target_s = top - (top - bottom) * min(n - 1, 6) / 6.0
        target = np.array([mid_l + sign * 14.0 * k, front - 4 * k, target_s])
        cartilage.append(Tube(np.array([end, target]), max(5.0 * k, r), max(4.0 * k, r)))
    parts_bone: list[Part] = [sternum]
    t1 = by["T1"]
    for sign in (1.0, -1.0):
        medial = np.array([mid_l + sign * 20.0 * k, front - 8 * k, top + 5 * k])
        lateral = np.array([mid_l + sign * 160.0 * k, t1.center[1] - 10.0 * k, t1.center[2] + 25.0 * k])
        middle = 0.5 * (medial + lateral) + np.array([0.0, 20.0 * k, 5.0 * k])
        parts_bone.append(Tube(np.array([medial, middle, lateral]), max(7.0 * k, r), max(6.0 * k, r)))
        t4 = by["T4"]
        scap_c = np.array([mid_l + sign * 95.0 * k, t4.center[1] - 45.0 * k, t4.center[2] - 10 * k])
        axes = np.stack([unit([1.0, sign * 0.35, 0.0]), unit([-sign * 0.35, 1.0, 0.0]), [0.0, 0.0, 1.0]], axis=1)
        parts_bone.append(Ellipsoid(scap_c, np.array([45.0 * k, max(4.0 * k, r), 70.0 * k]), axes))
    c1 = by["C1"]
    centre = c1.center + np.array([0.0, 20.0, 120.0]) * k
    radii = np.array([75.0, 92.0, 102.0]) * k - 4.0 * k
    skull = Structure(0, [Ellipsoid(centre, radii)], density, cuts=[Ellipsoid(centre, radii - max(7.0 * k, 2 * r))])
    cart = BoneDensity(HU["cartilage"], HU["cartilage"], 1.0)
    return [Structure(0, parts_bone, density), Structure(0, cartilage, cart), skull]


def draw_metal(canvas: Canvas, kind: str, femur: Femur, vertebrae: list[Vertebra]) -> None:
    """Burn a metal implant into the CT only (labels are unchanged): ``"nail"`` (intramedullary femoral nail with a
    lag screw into the head) or ``"spine"`` (pedicle screws and rods over L2-L5)."""
    parts: list[Part] = []
    if kind == "nail":
        k = femur.scale
        parts.append(
            Tube(
                np.array([femur.along_shaft(-35 * k), femur.along_shaft(250 * k)]),
                5.5 * k,
                5.5 * k,
                up=np.array([0.0, 1.0, 0.0]),
            )
        )
        screw = [
            femur.junction - 10 * k * femur.neck_axis,
            femur.head_center - 0.4 * femur.head_radius * femur.neck_axis,
        ]
        parts.append(Tube(np.array(screw), 4.5 * k, 4.5 * k))
    else:
        by = {v.name: v for v in vertebrae}
        levels = [by[n] for n in ("vertebrae_L2", "vertebrae_L3", "vertebrae_L4", "vertebrae_L5")]
        for side in (1, -1):
            heads = []
            for v in levels:
                entry = v.to_body([side * (v.canal_width / 2 + v.lamina), -v.depth / 2 - v.canal_depth * 0.8, 0])
                target = v.to_body([side * 0.15 * v.width, 0.25 * v.depth, 0])
                parts.append(Tube(np.array([entry, target]), 3.0, 3.0))
                heads.append(entry + (entry - target) / np.linalg.norm(entry - target) * 8.0)
            parts.append(Tube(np.array(heads), 3.0, 3.0))
    canvas.burn(parts, HU["metal"])
