"""Procedural torso-pelvis-thigh phantom: a CT in HU, the 55-class label map and analytic ground truth.

The anatomy is built in millimetres in a body frame (patient left, anterior, superior; origin on the midline at
the level of the hip joint centres), from seeded random parameters within anatomical ranges, and rasterised on a
model grid (``[x, y, z]`` = patient left, anterior, superior; see ``docs/architecture.md``) with implicit shapes
evaluated on a bounding box per bone.

Field of view: from above C1 (or, by chance, a cut level between C3 and T6) down to mid-thigh (or a cut between
S1 and mid-thigh). Without ``spacing_mm`` the grid's z axis spans it exactly, like the published data (an adult
C1-to-mid-thigh is about 0.9-1 m, so 160 slices give 4-6.5 mm voxels; T1 to mid-thigh about 5 mm).

A voxel belongs to the first bone drawn into it: femurs (the head is an exact sphere), hips, sacrum, vertebral
cores, ribs, vertebral processes. Thin parts are widened to 0.9 voxel so that every bone stays one connected
piece on coarse grids (a widened rib keeps its projected mass); the CT is partial-volume averaged at bone
surfaces, the labels are not.

Examples::

    >>> from SwinX2SLib.phantom import make_phantom
    >>> p = make_phantom(seed=3)
    >>> p.ct.shape, p.labels.shape, p.ct.dtype, p.labels.dtype
    ((128, 128, 160), (128, 128, 160), dtype('float32'), dtype('uint8'))
    >>> p.truth["femur"]["left"]["head_radius"]  # doctest: +SKIP
    22.7

Modules: :mod:`.spine`, :mod:`.ribs`, :mod:`.pelvis`, :mod:`.femur` (bones), :mod:`.body` (soft tissue,
unlabelled bones, metal), :mod:`.shapes` (implicit shapes and rasteriser), :mod:`.truth` (truth dict).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np

from ..conventions import DEFAULT_GRID_SHAPE, ModelGrid
from .body import HU, Habitus, build_arms, draw_metal, draw_soft_tissue, unlabelled_bones
from .femur import Femur, build_femur
from .pelvis import build_pelvis
from .ribs import build_ribs
from .shapes import BoneDensity, Canvas, rotation_about
from .spine import build_spine
from .truth import TruthWriter

__all__ = ["Phantom", "PhantomConfig", "make_phantom", "phantom_stream"]

TRUTH_FORMAT = "swinx2s-phantom-truth"
TRUTH_VERSION = 1


@dataclass(frozen=True)
class PhantomConfig:
    """Ranges of the random variation (all draws come from one ``numpy.random.Generator`` seeded by the seed).

    Args:
        size_range: overall body size factor (all lengths).
        rotation_deg: patient rotation about the superior axis is uniform in ``±rotation_deg`` (positive turns
            the patient's left side anteriorly).
        pelvic_tilt_deg: pelvic tilt uniform in ``±pelvic_tilt_deg`` (positive = posterior tilt).
        head_radius_mm: femoral head radius range.
        neck_shaft_angle_deg: neck-shaft angle range.
        scoliosis_probability: chance of a scoliotic curve; ``max_cobb_deg`` its largest Cobb angle.
        l6_probability: chance of a sixth lumbar vertebra.
        fov_cut_probability: chance that the field of view starts below C1 (C3..T6) and/or ends above mid-thigh,
            so that structures are absent or truncated; otherwise it spans C1 to mid-thigh.
        noise_hu: standard deviation of the Gaussian CT noise.
        metal_probability: chance of a metal implant (femoral nail or lumbar screws and rods).
        arms_probability: chance that the arms hang beside the trunk (in the field of view; unlabelled bones)
            rather than being raised out of it.
        unlabelled_bones: draw sternum, costal cartilage, clavicles, scapulae and skull (label 0).
        center_on: catalogue name of a bone to centre the grid on (femur: head centre; hip: acetabulum; sacrum:
            S1 endplate; vertebra: body centre; rib: middle of its centreline), e.g. for a 1 mm close-up with
            ``spacing_mm``; None centres the grid on the field of view.
    """

    size_range: tuple[float, float] = (0.88, 1.08)
    rotation_deg: float = 10.0
    pelvic_tilt_deg: float = 10.0
    head_radius_mm: tuple[float, float] = (18.0, 28.0)
    neck_shaft_angle_deg: tuple[float, float] = (115.0, 145.0)
    scoliosis_probability: float = 0.3
    max_cobb_deg: float = 30.0
    l6_probability: float = 0.03
    fov_cut_probability: float = 0.5
    noise_hu: float = 10.0
    metal_probability: float = 0.1
    arms_probability: float = 0.3
    unlabelled_bones: bool = True
    center_on: str | None = None


@dataclass
class Phantom:
    """A phantom CT with its labels, geometry and analytic truth.

    Attributes:
        ct: float32 ``[x, y, z]`` HU.
        labels: uint8 ``[x, y, z]`` catalogue ids (0 background, 1-54).

    Both arrays are Fortran-ordered (each axial slice ``[:, :, z]`` contiguous, the memory layout of NIfTI and
    SimpleITK), so writing them needs no transposing copy; use ``np.ascontiguousarray`` where C order matters.
        grid: the model grid (geometry of both arrays).
        truth: JSON-ready analytic ground truth (see :mod:`SwinX2SLib.phantom.truth`).
    """

    ct: np.ndarray
    labels: np.ndarray
    grid: ModelGrid
    truth: dict = field(repr=False)

    def to_sitk(self):
        """``(ct, labels)`` as SimpleITK images with the grid geometry (float32 HU, uint8 ids)."""
        from ..conventions import sitk_from_array

        return sitk_from_array(self.ct, self.grid), sitk_from_array(self.labels, self.grid)

    def overview(self) -> np.ndarray:
        """Side-by-side AP and lateral DRRs (published preset, display orientation) with the outlines of the
        labelled bones in their catalogue colours: ``(k·Z, k·(X + Y), 3)`` uint8 RGB, enlarged by the integer
        ``k`` that makes it about 480 pixels high."""
        from ..catalogue import CLASSES
        from ..conventions import PROJECTION_AXIS, image_to_display
        from ..drr import render_from_model_grid

        inputs = render_from_model_grid(self.ct, self.grid, preset="published", views=1)
        colours = np.zeros((len(CLASSES) + 1, 3), dtype=np.uint8)
        for c in CLASSES:
            colours[c.id] = c.color
        panels = []
        for view, image in (("coronal", inputs.coronal[0]), ("sagittal", inputs.sagittal[0])):
            gray = np.round(255.0 * np.clip(image_to_display(image, view), 0.0, 1.0)).astype(np.uint8)
            rgb = np.repeat(gray[:, :, None], 3, axis=2)
            footprint = image_to_display(_front_label(self.labels, PROJECTION_AXIS[view]), view)
            edge = np.zeros(footprint.shape, dtype=bool)
            edge[1:, :] |= footprint[1:, :] != footprint[:-1, :]
            edge[:, 1:] |= footprint[:, 1:] != footprint[:, :-1]
            edge &= footprint > 0
            rgb[edge] = colours[footprint[edge]]
            panels.append(rgb)
        zoom = max(1, round(480 / self.grid.shape[2]))  # about 480 pixels high
        return np.concatenate(panels, axis=1).repeat(zoom, axis=0).repeat(zoom, axis=1)

    def write(self, directory: str | PathLike[str], overwrite: bool = False) -> dict[str, Path]:
        """Write ``ct.nii.gz``, ``labels.nii.gz`` and ``truth.json`` into ``directory`` (each atomically).

        Raises:
            OutputError: a file exists and ``overwrite`` is false, or the folder cannot be written.
        """
        from ..io import atomic_write, prepare_output_dir, write_segmentation, write_volume

        out = prepare_output_dir(directory)
        paths = {name: out / name for name in ("ct.nii.gz", "labels.nii.gz", "truth.json")}
        if not overwrite:
            from ..errors import OutputError

            for path in paths.values():
                if path.exists():
                    raise OutputError(f"{path}: already exists (use --overwrite to replace it)")
        ct, labels = self.to_sitk()
        write_volume(ct, paths["ct.nii.gz"], overwrite)
        write_segmentation(labels, paths["labels.nii.gz"], overwrite)
        with atomic_write(paths["truth.json"], overwrite) as tmp:
            tmp.write_text(json.dumps(self.truth, indent=1))
        return paths


@dataclass(frozen=True)
class _Params:
    """Everything drawn from the random generator before the anatomy is placed."""

    scale: float
    adiposity: float
    rotation_deg: float
    translation_mm: tuple[float, float]
    pelvic_tilt_deg: float
    pelvic_width: float
    rib_cage: float
    head_radius: dict
    neck_shaft_angle: dict
    anteversion: dict
    neck_length: dict
    adduction: dict
    flexion: dict
    sagittal_offset: float
    spine_jitter: np.ndarray
    kyphosis: float
    cervical_balance: float
    scoliosis: tuple[float, float, float]
    has_l6: bool
    cortical_hu: float
    cancellous_hu: float
    metal: str | None
    metal_side: str
    arms: bool
    arm_abduction_deg: float


def _draw(rng: np.random.Generator, cfg: PhantomConfig) -> _Params:
    scale = rng.uniform(*cfg.size_range)
    r_lo, r_hi = cfg.head_radius_mm
    n_lo, n_hi = cfg.neck_shaft_angle_deg
    head = np.clip(rng.normal(0.5 * (r_lo + r_hi) * scale, 0.2 * (r_hi - r_lo)), r_lo + 0.5, r_hi - 0.5)
    nsa = np.clip(rng.normal(0.5 * (n_lo + n_hi), 0.2 * (n_hi - n_lo)), n_lo + 1.0, n_hi - 1.0)
    sides = ("left", "right")
    scoliotic = rng.random() < cfg.scoliosis_probability
    cobb = rng.uniform(5.0, cfg.max_cobb_deg) if scoliotic else rng.uniform(0.0, 3.0)
    metal = rng.random() < cfg.metal_probability
    metal_kind = str(rng.choice(["nail", "spine"]))  # drawn either way: the metal flag changes nothing else
    return _Params(
        scale=scale,
        adiposity=float(rng.beta(2.0, 3.0)),
        rotation_deg=rng.uniform(-cfg.rotation_deg, cfg.rotation_deg),
        translation_mm=(rng.uniform(-15, 15), rng.uniform(-15, 15)),
        pelvic_tilt_deg=rng.uniform(-cfg.pelvic_tilt_deg, cfg.pelvic_tilt_deg),
        pelvic_width=rng.uniform(0.93, 1.07),
        rib_cage=rng.uniform(0.93, 1.07),
        head_radius={s: float(np.clip(head + rng.normal(0, 0.4), r_lo, r_hi)) for s in sides},
        neck_shaft_angle={s: float(np.clip(nsa + rng.normal(0, 1.5), n_lo, n_hi)) for s in sides},
        anteversion={s: rng.uniform(5.0, 25.0) for s in sides},
        neck_length={s: rng.uniform(46.0, 58.0) * scale for s in sides},
        adduction={s: rng.uniform(3.0, 10.0) for s in sides},
        flexion={s: rng.uniform(-3.0, 8.0) for s in sides},
        sagittal_offset=rng.uniform(-20.0, 40.0),
        spine_jitter=rng.random((26, 4)),
        kyphosis=rng.uniform(20.0, 55.0),
        cervical_balance=rng.uniform(-10.0, 10.0),
        scoliosis=(cobb * rng.choice([-1.0, 1.0]), rng.uniform(3.0, 13.0), rng.uniform(6.0, 12.0)),
        has_l6=bool(rng.random() < cfg.l6_probability),
        cortical_hu=rng.uniform(1200.0, 1800.0),
        cancellous_hu=rng.uniform(200.0, 400.0),
        metal=metal_kind if metal else None,
        metal_side=str(rng.choice(sides)),
        arms=bool(rng.random() < cfg.arms_probability),
        arm_abduction_deg=rng.uniform(3.0, 20.0),
    )


class _Anatomy:
    """The placed skeleton for one set of parameters (independent of the grid)."""

    def __init__(self, p: _Params, rng: np.random.Generator):
        from ..catalogue import by_name

        k = p.scale
        self.densities = {
            "hip": BoneDensity(p.cortical_hu, p.cancellous_hu, 1.5),
            "sacrum": BoneDensity(p.cortical_hu, p.cancellous_hu, 1.2),
            "vertebra": BoneDensity(p.cortical_hu, p.cancellous_hu, 1.0),
            "rib": BoneDensity(p.cortical_hu, 0.9 * p.cancellous_hu, 1.2),
            "femur": BoneDensity(p.cortical_hu, p.cancellous_hu, 3.5),
            "other": BoneDensity(0.8 * p.cortical_hu, p.cancellous_hu, 1.2),
        }
        self.params = p
        self.pelvis = build_pelvis(k, p.pelvic_width, p.pelvic_tilt_deg, p.head_radius, self.densities, 0.0)
        n = self.pelvis.s1_normal
        self.sacral_slope = float(np.rad2deg(np.arctan2(n[1], n[2])))
        s1_back = self.pelvis.s1_center[1] - 18.0 * k * n[2]  # posterior-superior corner of S1 (a coordinate)

        def spine(lordosis: float) -> list:
            cervical = max(0.0, p.kyphosis - (lordosis - self.sacral_slope) + p.cervical_balance)
            return build_spine(
                self.pelvis.s1_center, n, k, lordosis, p.kyphosis, cervical, p.scoliosis, p.has_l6, p.spine_jitter
            )

        def sagittal_offset(lordosis: float) -> float:  # C7 plumb line ahead of S1 (mm); falls as lordosis grows
            return float(spine(lordosis)[6].center[1] - s1_back) - p.sagittal_offset * k

        lo, hi = self.sacral_slope - 5.0, self.sacral_slope + 45.0
        for _ in range(16):  # bisection: global sagittal balance as drawn
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if sagittal_offset(mid) > 0 else (lo, mid)
        self.lordosis = 0.5 * (lo + hi)
        self.cervical_lordosis = max(0.0, p.kyphosis - (self.lordosis - self.sacral_slope) + p.cervical_balance)
        self.vertebrae = spine(self.lordosis)
        by = {v.name: v for v in self.vertebrae}
        self.ribs = build_ribs(by, k, p.rib_cage, rng)
        self.femurs: dict[str, Femur] = {
            side: build_femur(
                f"femur_{side}",
                by_name(f"femur_{side}").id,
                sign,
                self.pelvis.hip_centers[side],
                p.head_radius[side],
                p.neck_shaft_angle[side],
                p.anteversion[side],
                p.neck_length[side],
                p.adduction[side],
                p.flexion[side],
                k,
            )
            for side, sign in (("left", 1), ("right", -1))
        }

    def widen(self, min_radius: float) -> None:
        """Redraw the pelvis with thin parts widened to ``min_radius`` (the geometry and truth are unchanged)."""
        p = self.params
        self.pelvis = build_pelvis(
            p.scale, p.pelvic_width, p.pelvic_tilt_deg, p.head_radius, self.densities, min_radius
        )

    def anchor(self, name: str) -> np.ndarray:
        """Body-frame point (mm) of the bone ``name`` that :attr:`PhantomConfig.center_on` centres on."""
        side = name.rsplit("_", 1)[-1]
        if name.startswith("femur_"):
            return self.femurs[side].head_center
        if name.startswith("hip_"):
            return self.pelvis.hip_centers[side]
        if name == "sacrum":
            return self.pelvis.s1_center
        for bone in (*self.vertebrae, *self.ribs):
            if bone.name == name:
                return bone.center if hasattr(bone, "center") else bone.centreline[len(bone.centreline) // 2]
        raise ValueError(f"center_on: {name!r} is not a bone of this phantom (e.g. 'femur_left', 'vertebrae_L3')")

    def top(self) -> float:
        """Body-frame level (mm) of the top of C1."""
        c1 = self.vertebrae[0]
        return float(c1.center[2] + c1.h_center / 2)

    def mid_thigh(self) -> float:
        return float(min(f.along_shaft(0.5 * f.shaft_length)[2] for f in self.femurs.values()))


def _field_of_view(anatomy: _Anatomy, cfg: PhantomConfig, rng: np.random.Generator) -> tuple[float, float, bool]:
    """Superior and inferior body levels (mm) of the field of view, and whether it was cut."""
    k = anatomy.femurs["left"].scale
    top = anatomy.top() + rng.uniform(10.0, 40.0) * k
    bottom = anatomy.mid_thigh() - rng.uniform(0.0, 40.0) * k
    cut = rng.random() < cfg.fov_cut_probability
    if cut:
        by = {v.name: v for v in anatomy.vertebrae}
        choice = rng.integers(0, 3)
        if choice in (0, 2):  # superior cut between C3 and T6
            names = ["C3", "C4", "C5", "C6", "C7", "T1", "T2", "T3", "T4", "T5", "T6"]
            top = float(by[f"vertebrae_{names[rng.integers(len(names))]}"].center[2]) + rng.uniform(-10, 10)
        if choice in (1, 2):  # inferior cut between S1 and mid-thigh
            bottom = rng.uniform(bottom, float(anatomy.pelvis.s1_center[2]))
    return top, bottom, bool(cut)


def make_phantom(
    seed: int = 0,
    shape: tuple[int, int, int] = DEFAULT_GRID_SHAPE,
    spacing_mm: float | None = None,
    config: PhantomConfig | None = None,
) -> Phantom:
    """Build one phantom.

    Args:
        seed: seed of the random generator; the same seed (and arguments) gives identical arrays and truth.
        shape: grid size ``(X, Y, Z)``.
        spacing_mm: isotropic voxel size. None: the field of view (C1 or a cut level down to mid-thigh or a cut
            level) spans the ``Z`` axis exactly, as in the published data (typically 4-6.5 mm for 160 slices).
            Given: the grid is centred on that field of view and the anatomy outside it is cropped.
        config: ranges of the random variation (default :class:`PhantomConfig`).

    Returns:
        The :class:`Phantom` (ct float32 HU, labels uint8, both ``[x, y, z]``; grid; truth).
    """
    from ..catalogue import CLASSES

    cfg = config or PhantomConfig()
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 8:
        raise ValueError(f"phantom shape must be three sizes of at least 8 voxels, got {shape}")
    if spacing_mm is not None and not spacing_mm > 0:
        raise ValueError(f"spacing_mm must be positive, got {spacing_mm}")
    rng = np.random.default_rng(seed)
    params = _draw(rng, cfg)
    anatomy = _Anatomy(params, np.random.default_rng([seed, 1]))
    top, bottom, cut = _field_of_view(anatomy, cfg, rng)
    width_needed = 2.0 * 260.0 * params.scale
    spacing = spacing_mm or max((top - bottom) / shape[2], width_needed / min(shape[0], shape[1]))
    anatomy.widen(0.9 * spacing)

    rotation = rotation_about([0.0, 0.0, 1.0], params.rotation_deg)
    translation = np.array([*params.translation_mm, 0.0])
    if cfg.center_on is None:
        spine_a = float(np.median([v.center[1] for v in anatomy.vertebrae]))
        centre_body = np.array([0.0, spine_a + 50.0 * params.scale, 0.5 * (top + bottom)])
    else:
        centre_body = anatomy.anchor(cfg.center_on)
    centre_las = rotation @ centre_body + translation
    grid = ModelGrid.centered(centre_las * np.array([1.0, -1.0, 1.0]), spacing * max(shape), shape)
    canvas = Canvas(grid, rotation, translation, HU["air"])

    habitus = Habitus(params.scale, params.adiposity)
    ribs_by = {r.name: r for r in anatomy.ribs}
    arms = build_arms(anatomy.vertebrae, habitus, params.arm_abduction_deg) if params.arms else []
    draw_soft_tissue(canvas, anatomy.vertebrae, ribs_by, anatomy.pelvis, anatomy.femurs, arms, habitus, rng)

    boxes, truncated = _draw_skeleton(canvas, anatomy, 0.9 * spacing, habitus, cfg.unlabelled_bones)
    for arm in arms:
        canvas.paint(arm.bones(anatomy.densities["other"], 0.9 * spacing))
    if params.metal:
        draw_metal(canvas, params.metal, anatomy.femurs[params.metal_side], anatomy.vertebrae)
    counts, removed = _keep_largest_components(canvas, boxes, truncated)
    if cfg.noise_hu > 0:
        _add_noise(canvas.ct, cfg.noise_hu, rng)

    names = {c.id: c.name for c in CLASSES}
    status = {}
    for cid, name in names.items():
        status[name] = "absent" if counts.get(cid, 0) == 0 else ("truncated" if truncated.get(cid) else "present")
    writer = TruthWriter(canvas, grid, status)
    truth = {
        "format": TRUTH_FORMAT,
        "version": TRUTH_VERSION,
        "seed": int(seed),
        "grid": grid.to_dict(),
        "patient": {
            "size_factor": round(params.scale, 4),
            "adiposity": round(params.adiposity, 4),
            "rotation_deg": round(params.rotation_deg, 4),
            "pelvic_tilt_deg": round(params.pelvic_tilt_deg, 4),
            "sacral_slope_deg": round(anatomy.sacral_slope, 4),
            "lumbar_lordosis_deg": round(anatomy.lordosis, 4),
            "thoracic_kyphosis_deg": round(params.kyphosis, 4),
            "cervical_lordosis_deg": round(anatomy.cervical_lordosis, 4),
            "scoliosis_cobb_deg": round(params.scoliosis[0], 4),
            "has_l6": params.has_l6,
            "metal_implant": params.metal,
            "metal_side": params.metal_side if params.metal else None,
            "arms_in_view": params.arms,
            "noise_hu": cfg.noise_hu,
            "fov_cut": cut,
            "bone_hu": {"cortical": round(params.cortical_hu, 1), "cancellous": round(params.cancellous_hu, 1)},
        },
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
        "structures": {
            name: {
                "id": cid,
                "status": status[name],
                "voxels": counts.get(cid, 0),
                "removed_voxels": removed.get(cid, 0),
            }
            for cid, name in names.items()
        },
        "femur": writer.femurs(anatomy.femurs),
        "pelvis": writer.pelvis(anatomy.pelvis),
        "vertebrae": writer.vertebrae(anatomy.vertebrae),
        "ribs": writer.ribs(anatomy.ribs),
    }
    return Phantom(canvas.ct, canvas.labels, grid, truth)


def _add_noise(ct: np.ndarray, sigma: float, rng: np.random.Generator) -> None:
    """Add Gaussian noise of ``sigma`` HU: each axial slice takes a randomly offset window of a pool of
    ``4 · X · Y`` draws (as good as independent per voxel, at a fraction of the cost of drawing every voxel)."""
    plane = ct.shape[0] * ct.shape[1]
    pool = rng.standard_normal(4 * plane, dtype=np.float32) * np.float32(sigma)
    offsets = rng.integers(0, 3 * plane, size=ct.shape[2])
    for z, offset in enumerate(offsets):
        ct[:, :, z] += pool[offset : offset + plane].reshape(ct.shape[0], ct.shape[1], order="F")


def _draw_skeleton(
    canvas: Canvas, anatomy: _Anatomy, min_radius: float, habitus: Habitus, unlabelled: bool
) -> tuple[dict[int, tuple[slice, ...] | None], dict[int, bool]]:
    """Draw the bones in priority order (a voxel keeps the first bone drawn into it): femurs (exact head
    spheres), hips, sacrum, vertebral cores, ribs, vertebral processes, then the unlabelled bones.

    Returns:
        The voxel box and whether the bone is truncated by the grid, per label.
    """
    dens = anatomy.densities
    vertebrae = [v.structures(dens["vertebra"], min_radius) for v in anatomy.vertebrae]
    structures = [f.structure(dens["femur"], min_radius) for f in anatomy.femurs.values()]
    structures += [anatomy.pelvis.hips["left"], anatomy.pelvis.hips["right"], anatomy.pelvis.sacrum]
    structures += [core for core, _ in vertebrae]
    structures += [r.structure(dens["rib"], min_radius) for r in anatomy.ribs]
    structures += [processes for _, processes in vertebrae]
    boxes: dict[int, tuple[slice, ...] | None] = {}
    truncated: dict[int, bool] = {}
    for structure in structures:
        box, cut_off = canvas.paint(structure)
        boxes[structure.label] = _union(boxes.get(structure.label), box)
        truncated[structure.label] = truncated.get(structure.label, False) or cut_off
    if unlabelled:
        ribs = {r.name: r for r in anatomy.ribs}
        for structure in unlabelled_bones(anatomy.vertebrae, ribs, habitus, dens["other"], min_radius):
            canvas.paint(structure)
    return boxes, truncated


def _union(a: tuple[slice, ...] | None, b: tuple[slice, ...] | None) -> tuple[slice, ...] | None:
    """The smallest box holding the voxel boxes ``a`` and ``b`` (either may be None)."""
    if a is None or b is None:
        return a or b
    return tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b, strict=True))


def _front_label(labels: np.ndarray, axis: int) -> np.ndarray:
    """The label nearest the viewer along ``axis`` (anterior for the coronal view, patient left for the
    sagittal view: the highest index that is labelled), 0 where the ray meets no bone. ``(X|Y, Z)`` uint8."""
    flipped = np.flip(labels, axis=axis)
    first = np.argmax(flipped > 0, axis=axis)
    return np.take_along_axis(flipped, np.expand_dims(first, axis), axis=axis).squeeze(axis)


def _keep_largest_components(
    canvas: Canvas, boxes: dict, truncated: dict[int, bool]
) -> tuple[dict[int, int], dict[int, int]]:
    """Make every label one 6-connected component: a safety net for thin parts on coarse grids. Smaller pieces
    become background, except, for a bone truncated by the grid, pieces that reach the grid boundary (they are
    joined outside the field of view). Returns the voxel count of each label and the voxels taken from it."""
    from ..connected import components

    removed = {}
    for label, box in boxes.items():
        if box is None:
            continue
        labels = canvas.labels[box]
        pieces, sizes = components(labels == label, connectivity=1)
        if len(sizes) <= 1:
            continue
        keep = {int(np.argmax(sizes)) + 1}
        if truncated.get(label):
            keep |= _pieces_on_grid_boundary(pieces, box, canvas.grid.shape)
        drop = ~np.isin(pieces, [0, *keep])
        labels[drop] = 0
        removed[label] = int(np.count_nonzero(drop))
    counts = {label: int(np.count_nonzero(canvas.labels[box] == label)) for label, box in boxes.items() if box}
    return counts, removed


def _pieces_on_grid_boundary(components: np.ndarray, box: tuple[slice, ...], shape: tuple[int, ...]) -> set[int]:
    """Component ids (of a label map over ``box``) with voxels on a face of the whole grid."""
    found: set[int] = set()
    for axis in range(3):
        if box[axis].start == 0:
            found |= set(np.unique(np.take(components, 0, axis=axis)).tolist())
        if box[axis].stop == shape[axis]:
            found |= set(np.unique(np.take(components, -1, axis=axis)).tolist())
    return found - {0}


def phantom_stream(seed: int, **kwargs) -> Iterator[Phantom]:
    """Endless phantoms for training: the ``i``-th is ``make_phantom(seed=...)`` with a seed drawn from a
    generator seeded by ``seed``; ``kwargs`` go to :func:`make_phantom` (shape, spacing_mm, config)."""
    seeds = np.random.default_rng(seed)
    while True:
        yield make_phantom(seed=int(seeds.integers(0, 2**31 - 1)), **kwargs)
