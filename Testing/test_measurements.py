"""Clinical measurements (SwinX2SLib.measurements): analytic shapes with known answers, robustness cases,
prediction-vs-reference comparison, the ``swinx2s measure`` command, and the published real cases."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial import cKDTree

from SwinX2SLib import catalogue
from SwinX2SLib.cli import main
from SwinX2SLib.conventions import read_published_volume, sitk_from_array
from SwinX2SLib.measurements import (
    LabelVolume,
    compare,
    is_measured,
    label_volume_from_image,
    measure,
    measure_volume,
)
from SwinX2SLib.measurements.femur import measure_femur
from SwinX2SLib.measurements.pelvis import measure_pelvis
from SwinX2SLib.measurements.rib import measure_ribs
from SwinX2SLib.measurements.vertebra import measure_vertebrae

ID = {c.name: c.id for c in catalogue.CLASSES}
RIGHT, ANTERIOR, SUPERIOR = np.eye(3)


# ----------------------------------------------------------------------------------------------- analytic shapes
def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _capsule(p: np.ndarray, a, b, r: float) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = b - a
    t = np.clip(((p - a) @ d) / (d @ d), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * d), axis=1) <= r


def _ball(p: np.ndarray, c, r: float) -> np.ndarray:
    return np.linalg.norm(p - np.asarray(c, float), axis=1) <= r


def _grid(lo, hi, spacing: float) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """An axis-aligned RAS grid covering [lo, hi] (mm): (points (N, 3), 4x4 index->RAS, shape)."""
    lo = np.asarray(lo, float) + 0.37  # keep shapes off voxel centres
    shape = tuple(int(v) for v in np.ceil((np.asarray(hi, float) - lo) / spacing) + 1)
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = lo
    idx = np.indices(shape).reshape(3, -1).T
    return idx @ affine[:3, :3].T + lo, affine, shape


def _volume(parts: list[tuple[int, np.ndarray]], affine: np.ndarray, shape) -> LabelVolume:
    labels = np.zeros(shape, np.uint8)
    flat = labels.reshape(-1)
    for label, mask in parts:
        flat[mask] = label
    return LabelVolume(labels, affine)


def _image(volume: LabelVolume) -> sitk.Image:
    """The label map as a SimpleITK image carrying its geometry (RAS affine -> LPS header)."""
    image = sitk.GetImageFromArray(volume.labels.transpose(2, 1, 0))  # [x, y, z] -> sitk (z, y, x)
    flip = np.diag([-1.0, -1.0, 1.0])
    image.SetSpacing(volume.spacing.tolist())
    image.SetDirection((flip @ volume.affine[:3, :3] / volume.spacing).ravel().tolist())
    image.SetOrigin((flip @ volume.affine[:3, 3]).tolist())
    return image


def _femur(
    side: str,
    head_r: float,
    nsa: float,
    offset: float,
    spacing: float = 1.0,
    tilt=(0.05, -0.1, 1.0),
    top_cut: float | None = None,
    shaft_mm: float = 140.0,
):
    """A femur: tubular shaft, neck capsule, spherical head, greater trochanter. RAS mm; truth dict."""
    s = _unit(np.asarray(tilt, float))  # proximal shaft direction
    medial = RIGHT if side == "left" else -RIGHT  # left femur lies at -x (RAS), its medial side is +x
    medial = _unit(medial - (medial @ s) * s)
    neck = np.cos(np.radians(nsa)) * (-s) + np.sin(np.radians(nsa)) * medial
    junction = np.zeros(3)
    head = junction + offset / np.sin(np.radians(nsa)) * neck
    x_lo, x_hi = (-35.0, 75.0) if side == "left" else (-75.0, 35.0)
    p, affine, shape = _grid([x_lo, -40.0, -shaft_mm - 10], [x_hi, 40.0, 85.0 if top_cut is None else top_cut], spacing)
    mask = (
        _capsule(p, junction - shaft_mm * s, junction + 10 * s, 14.0)
        | _capsule(p, junction, head, 0.65 * head_r)
        | _ball(p, head, head_r)
        | _ball(p, junction + 15 * s - 14 * medial, 16.0)
    )
    volume = _volume([(ID[f"femur_{side}"], mask)], affine, shape)
    return volume, {"head_center": head, "head_radius": head_r, "nsa": nsa, "offset": offset}


def _vertebra_parts(p: np.ndarray, centre: np.ndarray, sup: np.ndarray, ant: np.ndarray) -> np.ndarray:
    """Body (elliptic cylinder 30 deep, 40 wide, 24 high), canal ring (hole 15 deep, 16 wide), spinous process."""
    right = np.cross(ant, sup)
    rel = p - centre
    u, w, x = rel @ ant, rel @ sup, rel @ right
    body = ((u / 15.0) ** 2 + (x / 20.0) ** 2 <= 1.0) & (np.abs(w) <= 12.0)
    ring_r = np.hypot(u + 22.0, x)
    ring = (ring_r <= 13.0) & (ring_r >= 8.0) & (np.abs(w) <= 6.0)
    start = centre - 35.0 * ant
    end = start + 27.0 * _unit(-np.cos(np.radians(30)) * ant - np.sin(np.radians(30)) * sup)
    return body | ring | _capsule(p, start, end, 3.0)


VERTEBRA_TRUTH = {
    "anterior_body_height_mm": 24.0,
    "posterior_body_height_mm": 24.0,
    "superior_endplate_depth_mm": 30.0,
    "inferior_endplate_depth_mm": 30.0,
    "endplate_width_mm": 40.0,
    "canal_depth_mm": 15.0,
    "canal_width_mm": 16.0,
}


def _spine(spacing: float = 1.0, fuse: bool = False, bridge: bool = False, tilt_deg: float = 10.0):
    """L1-L3 stacked 32 mm apart along an axis tilted forward by ``tilt_deg``; L2 and L3 share a label if ``fuse``,
    and their bodies are joined by bone across the disc if ``bridge``."""
    t = np.radians(tilt_deg)
    sup = np.array([0.0, np.sin(t), np.cos(t)])
    ant = np.array([0.0, np.cos(t), -np.sin(t)])
    p, affine, shape = _grid([-30.0, -80.0, -70.0], [30.0, 40.0, 70.0], spacing)
    parts = []
    for k, name in enumerate(("vertebrae_L1", "vertebrae_L2", "vertebrae_L3")):
        label = ID["vertebrae_L2"] if fuse and name == "vertebrae_L3" else ID[name]
        parts.append((label, _vertebra_parts(p, (1 - k) * 32.0 * sup, sup, ant)))
    if bridge:
        rel = p + 16.0 * sup  # centre of the L2-L3 disc
        u, w, x = rel @ ant, rel @ sup, rel @ np.cross(ant, sup)
        parts.append((ID["vertebrae_L2"], ((u / 15.0) ** 2 + (x / 20.0) ** 2 <= 1.0) & (np.abs(w) <= 5.0)))
    # spinous process base: posterior canal border at w = 0; tip: farthest point of the capsule's end sphere
    start = np.array([-35.0, 0.0])  # (anterior, superior) in the vertebra's mid-sagittal plane
    end = start + 27.0 * np.array([-np.cos(np.radians(30)), -np.sin(np.radians(30))])
    base = np.array([-30.0, 0.0])
    tip = end + 3.0 * (end - base) / np.linalg.norm(end - base)  # the voxel farthest from the base
    vec = tip - base
    truth = VERTEBRA_TRUTH | {
        "spinous_process_length_mm": float(np.hypot(*vec)),
        "spinous_process_angle_deg": float(np.degrees(np.arctan2(-vec[1], -vec[0]))),
    }
    return _volume(parts, affine, shape), truth


def _rib(spacing: float = 1.0, radius: float = 4.0, shift=(0.0, 0.0, 0.0)):
    """An elliptic, rising arc of 4 mm radius: (volume, dense truth centreline (M, 3), truth length)."""
    t = np.linspace(0.2, 2.6, 4000)
    arc = np.stack([80 * np.cos(t), 60 * np.sin(t), 20 + 10 * t], axis=1) + np.asarray(shift)
    p, affine, shape = _grid([-100.0, -20.0, 0.0], [100.0, 80.0, 60.0], spacing)
    inside = cKDTree(arc).query(p, distance_upper_bound=radius + 1)[0] <= radius
    length = float(np.linalg.norm(np.diff(arc, axis=0), axis=1).sum()) + 2 * radius  # + rounded caps
    return _volume([(ID["rib_left_5"], inside)], affine, shape), arc, length


def _pelvis(rotation_deg=(8.0, 0.0, 5.0), spacing: float = 2.0):
    """Two hip bones with knobs whose apices are the landmarks, rotated; (volume, truth landmarks RAS)."""
    rx, _, rz = np.radians(rotation_deg)
    rot = np.array([[np.cos(rz), -np.sin(rz), 0], [np.sin(rz), np.cos(rz), 0], [0, 0, 1]]) @ np.array(
        [[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]]
    )
    p, affine, shape = _grid([-115.0, -85.0, -60.0], [115.0, 85.0, 110.0], spacing)
    q = p @ rot  # body-frame coordinates of the grid points (rot maps body -> RAS)
    parts, truth = [], {}
    for side, sign in (("L", -1.0), ("R", 1.0)):

        def at(x, y, z, sign=sign):
            return np.array([sign * x, y, z])

        shape_mask = (((q - at(65, 0, 50)) / [12.0, 40.0, 35.0]) ** 2).sum(axis=1) <= 1.0  # ilium
        shape_mask |= _capsule(q, at(70, 20, 70), at(85, 50, 80), 6.0) | _ball(q, at(85, 50, 80), 6.0)  # ASIS
        shape_mask |= _capsule(q, at(60, -25, 65), at(45, -50, 75), 6.0) | _ball(q, at(45, -50, 75), 6.0)  # PSIS
        shape_mask |= _ball(q, at(75, 5, 10), 20.0)  # acetabular mass
        shape_mask |= _capsule(q, at(75, 5, 10), at(20, 48, 0), 7.0) | _ball(q, at(20, 48, 0), 8.0)  # pubis, PT
        shape_mask |= _capsule(q, at(75, 5, 10), at(65, -25, -40), 10.0)  # ischium
        shape_mask |= _capsule(q, at(70, -12, 5), at(40, -25, 5), 4.0)  # ischial spine
        parts.append((ID["hip_left" if side == "L" else "hip_right"], shape_mask))
        body_truth = {"ASIS": at(85, 56, 80), "PSIS": at(45, -56, 75), "PT": at(20, 56, 0), "IS": at(36, -25, 5)}
        truth |= {f"{k}_{side}": rot @ v for k, v in body_truth.items()}
    return _volume(parts, affine, shape), truth


# ----------------------------------------------------------------------------------------------- accuracy
@pytest.mark.parametrize(
    ("side", "head_r", "nsa", "offset"), [("left", 22.0, 130.0, 40.0), ("right", 25.0, 120.0, 45.0)]
)
def test_femur_analytic(side, head_r, nsa, offset):
    volume, truth = _femur(side, head_r, nsa, offset)
    m = measure_femur(volume, side)
    assert abs(m["head_radius_mm"] - head_r) < 1.0
    assert np.linalg.norm(np.asarray(m["head_center_ras"]) - truth["head_center"]) < 1.0
    assert abs(m["neck_shaft_angle_deg"] - nsa) < 3.0
    assert abs(m["offset_mm"] - offset) < 2.0
    assert np.linalg.norm(m["shaft_axis_ras"]) == pytest.approx(1.0)


def test_femur_truncation():
    # shaft cut by the field of view: still measurable; head cut: not measurable, with the reason
    volume, truth = _femur("left", 23.0, 128.0, 42.0, spacing=1.5, shaft_mm=90.0)
    m = measure_femur(volume, "left")
    assert abs(m["head_radius_mm"] - 23.0) < 1.0 and abs(m["neck_shaft_angle_deg"] - 128.0) < 4.0
    volume, _ = _femur("left", 23.0, 128.0, 42.0, spacing=1.5, top_cut=truth["head_center"][2])
    m = measure_femur(volume, "left")
    assert m["status"] == "not_measurable" and "truncated" in m["reason"]


def test_vertebrae_analytic():
    volume, truth = _spine()
    m = measure_vertebrae(volume, {n: ID[n] for n in ("vertebrae_L1", "vertebrae_L2", "vertebrae_L3")})
    for name in ("vertebrae_L1", "vertebrae_L2", "vertebrae_L3"):
        v = m[name]
        for key in ("anterior_body_height_mm", "posterior_body_height_mm"):
            assert abs(v[key] - truth[key]) < 1.5, (name, key, v[key])
        for key in (
            "superior_endplate_depth_mm",
            "inferior_endplate_depth_mm",
            "endplate_width_mm",
            "canal_depth_mm",
            "canal_width_mm",
            "spinous_process_length_mm",
        ):
            assert abs(v[key] - truth[key]) < 2.5, (name, key, v[key], truth[key])
        assert abs(v["spinous_process_angle_deg"] - truth["spinous_process_angle_deg"]) < 4.0


def test_fused_vertebrae_not_measurable():
    names = {n: ID[n] for n in ("vertebrae_L1", "vertebrae_L2", "vertebrae_L3")}
    m = measure_vertebrae(_spine(spacing=1.5, fuse=True, bridge=True)[0], names)  # one bony block, one label
    assert m["vertebrae_L2"]["anterior_body_height_mm"]["status"] == "not_measurable"
    assert "fused" in m["vertebrae_L2"]["anterior_body_height_mm"]["reason"]
    assert "absent" in m["vertebrae_L3"]["reason"]
    assert abs(m["vertebrae_L1"]["anterior_body_height_mm"] - 24.0) < 2.0
    m = measure_vertebrae(_spine(spacing=1.5, fuse=True)[0], names)  # two separate vertebrae with one label
    assert "several large pieces" in m["vertebrae_L2"]["reason"]


def test_rib_centerline_analytic():
    volume, arc, length = _rib()
    m = measure_ribs(volume, {"rib_left_5": ID["rib_left_5"], "rib_left_6": ID["rib_left_6"]})
    rib = m["rib_left_5"]
    centerline = np.asarray(rib["centerline_ras"])
    assert centerline.shape == (100, 3)
    assert cKDTree(arc).query(centerline)[0].mean() < 1.5
    assert abs(rib["length_mm"] - length) < 0.03 * length
    # curvature of the ellipse x = 80 cos t, y = 60 sin t lies between 60/80^2 and 80/60^2
    assert 60 / 80**2 < rib["mean_curvature_per_mm"] < rib["max_curvature_per_mm"] < 80 / 60**2
    assert m["rib_left_6"] == {"status": "not_measurable", "reason": "rib_left_6 absent from the label map"}


def test_pelvis_analytic():
    volume, truth = _pelvis()
    m = measure_pelvis(volume)
    for name, point in truth.items():
        assert np.linalg.norm(np.asarray(m["landmarks_ras"][name]) - point) < 4.0, name
    assert np.asarray(m["app"]["anterior_ras"]) @ (np.array([0.0, 1.0, 0.0])) > 0.98


# ----------------------------------------------------------------------------------------------- geometry
def test_any_orientation_gives_the_same_answer():
    """The same femur stored with permuted, flipped, anisotropic axes in a SimpleITK image: same numbers."""
    volume, truth = _femur("right", 24.0, 125.0, 42.0, spacing=1.5)
    image = _image(volume)
    # resample onto a grid with permuted, flipped axes and 1.2 x 1.6 x 2 mm voxels (nearest keeps the labels)
    ref = sitk.Image([70, 100, 130], sitk.sitkUInt8)
    ref.SetSpacing([1.2, 1.6, 2.0])
    ref.SetDirection((0, 1, 0, -1, 0, 0, 0, 0, -1))  # i -> anterior, j -> left, k -> inferior
    ref.SetOrigin((-40.0, 42.0, 90.0))  # LPS
    resampled = sitk.Resample(image, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    assert sitk.GetArrayFromImage(resampled).sum() > 0.9 * volume.labels.sum() * 1.5**3 / (1.2 * 1.6 * 2.0)
    a = measure_femur(label_volume_from_image(image), "right")
    b = measure_femur(label_volume_from_image(resampled), "right")
    assert np.linalg.norm(np.asarray(a["head_center_ras"]) - truth["head_center"]) < 1.0
    assert np.linalg.norm(np.asarray(a["head_center_ras"]) - np.asarray(b["head_center_ras"])) < 1.5
    assert abs(a["neck_shaft_angle_deg"] - b["neck_shaft_angle_deg"]) < 3.0


# ----------------------------------------------------------------------------------------------- whole map
def test_one_anatomy_only_and_comparison():
    volume, _, _ = _rib(spacing=1.5)
    m = measure_volume(volume)
    assert all(m["femur"][side]["status"] == "not_measurable" for side in ("left", "right"))
    assert all(v["status"] == "not_measurable" for v in m["pelvis"]["landmarks_ras"].values())
    assert m["pelvis"]["app"]["status"] == "not_measurable"
    assert all(v["status"] == "not_measurable" for v in m["vertebrae"].values())
    assert sum(is_measured(v) for v in m["ribs"].values()) == 1
    json.dumps(m)  # plain JSON types only

    same = compare(volume, volume, m, m)
    rib = same["ribs"]["rib_left_5"]
    assert rib["dice"] == 1.0 and rib["cldice"] == 1.0 and rib["nldice"] == 1.0 and rib["lscd_error"] == 0.0
    assert rib["length_mm"] == 0.0 and rib["centerline_mean_distance_mm"] == 0.0
    moved, _, _ = _rib(spacing=1.5, shift=(0.0, 3.0, 0.0))
    diff = compare(moved, volume)["ribs"]["rib_left_5"]
    assert 0.2 < diff["dice"] < 0.9 and diff["lscd_error"] > 0.05
    assert 2.0 < diff["centerline_mean_distance_mm"] < 4.0
    assert "absent" in diff["length_mm"]["reason"] if not is_measured(diff["length_mm"]) else diff["length_mm"] < 2


def test_cli_writes_report(tmp_path: Path):
    volume, _ = _spine(spacing=2.0)
    path = tmp_path / "labels.nii.gz"
    sitk.WriteImage(_image(volume), str(path))
    out = tmp_path / "out"
    assert main(["measure", str(path), "--against", str(path), "-o", str(out), "--progress", "none"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "comparison.json",
        "landmarks.json",
        "measurements.csv",
        "measurements.json",
    ]
    measurements = json.loads((out / "measurements.json").read_text())
    assert measurements["vertebrae"]["vertebrae_L2"]["anterior_body_height_mm"] > 20
    assert json.loads((out / "comparison.json").read_text())["vertebrae"]["vertebrae_L2"]["canal_depth_mm"] == 0.0
    assert {p["name"] for p in json.loads((out / "landmarks.json").read_text())} >= {"vertebrae_L2_body"}
    assert "vertebrae_L2,anterior_body_height_mm," in (out / "measurements.csv").read_text()
    # existing outputs are kept unless --overwrite; a non-label image is refused with its name
    assert main(["measure", str(path), "-o", str(out), "--progress", "none"]) == 2
    bad = tmp_path / "bad.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.full((4, 5, 6), 200, np.int16)), str(bad))
    assert main(["measure", str(bad), "-o", str(tmp_path / "o2"), "--progress", "none"]) == 2


# ----------------------------------------------------------------------------------------------- real cases
def _published(folder: Path, kind: str) -> tuple[np.ndarray, object]:
    labels, grid = read_published_volume(next(folder.glob(f"*_{kind}.nii.gz")))
    return labels.astype(np.int16), grid


def test_real_case_ranges_symmetry_and_determinism(official_samples: Path):
    labels, grid = _published(official_samples / "TotalSegAll_s0308" / "Totalsegmentator_all", "label")
    m = measure(labels, grid)
    assert m == measure(labels, grid)
    left, right = m["femur"]["left"], m["femur"]["right"]
    for femur in (left, right):
        assert 18 < femur["head_radius_mm"] < 30 and 110 < femur["neck_shaft_angle_deg"] < 150
        assert 25 < femur["offset_mm"] < 60
    assert abs(left["head_radius_mm"] - right["head_radius_mm"]) < 3
    assert left["head_center_ras"][0] < right["head_center_ras"][0]  # patient left is -x in RAS
    lm = m["pelvis"]["landmarks_ras"]
    for side in "LR":
        assert lm[f"ASIS_{side}"][1] > lm[f"PSIS_{side}"][1]  # anterior
        assert lm[f"ASIS_{side}"][2] > lm[f"PT_{side}"][2]  # superior
    asis_width = abs(lm["ASIS_L"][0] - lm["ASIS_R"][0])
    assert 180 < asis_width < 300
    labelled = [n for n, i in ID.items() if n.startswith("rib_") and np.count_nonzero(labels == i) > 10]
    assert all(is_measured(m["ribs"][n]) for n in labelled)
    for name in labelled:
        length = m["ribs"][name]["length_mm"]
        assert not is_measured(length) or 40 < length < 400
    measured = [v for v in m["vertebrae"].values() if is_measured(v) and is_measured(v["anterior_body_height_mm"])]
    assert len(measured) >= 6
    for v in measured:
        assert 12 < v["anterior_body_height_mm"] < 40 and 20 < v["superior_endplate_depth_mm"] < 60


def test_real_case_prediction_vs_label(official_samples: Path):
    folder = official_samples / "TotalSegAll_s0308" / "Totalsegmentator_all"
    pred, grid = _published(folder, "pred")
    label, _ = _published(folder, "label")
    from SwinX2SLib.measurements import label_volume

    result = compare(label_volume(pred, grid), label_volume(label, grid))
    published = json.loads(
        (official_samples / "TotalSegAll_s0308" / "official_morphometry_swinx2sbase_s0308.json").read_text()
    )
    spacing = grid.spacing
    for key, side in (("53", "left"), ("54", "right")):
        ours = result["femur"][side]
        assert ours["head_radius_mm"] / spacing < 5 * max(published["femur"][key]["fhr"], 0.5)
        assert ours["neck_shaft_angle_deg"] < 15
    for label_id, theirs in published["rib"].items():
        name = catalogue.by_id(int(label_id)).name
        ours = result["ribs"][name]
        if is_measured(ours) and is_measured(ours.get("dice", {"status": "not_measurable"})):
            assert ours["dice"] == pytest.approx(theirs["Dice"], abs=1e-3)


def test_sitk_round_trip_of_model_grid(official_samples: Path):
    """measure(array, grid) and measuring the same map written as an image with the grid's header agree."""
    labels, grid = _published(official_samples / "TotalSegAll_s0308" / "Totalsegmentator_femur", "label")
    labels = catalogue.subset_to_full(labels, "femur")
    direct = measure(labels, grid)["femur"]
    via_image = measure_volume(label_volume_from_image(sitk_from_array(labels, grid)))["femur"]
    assert direct == via_image


# ----------------------------------------------------------------------------------------------- phantoms
N_PHANTOMS = 20
PHANTOM_SHAPE_1MM = (400, 290, 900)  # C1 to mid-thigh at 1 mm voxels, wide enough for both greater trochanters
#: Issue targets (mm, degrees; max over all phantoms at 1 mm voxels).
PHANTOM_TARGETS = {
    "head_radius": 1.0,
    "neck_shaft_angle": 3.0,
    "ASIS": 4.0,
    "PSIS": 4.0,
    "PT": 4.0,
    "IS": 4.0,
    "body_height": 1.5,
    "rib_centerline": 1.5,
}
#: What the quick check at 2 mm voxels adds to the targets (vertebral heights: one voxel).
QUICK_SLACK = {
    "head_radius": 0.5,
    "neck_shaft_angle": 1.0,
    "ASIS": 1.0,
    "PSIS": 1.0,
    "PT": 1.0,
    "IS": 1.0,
    "body_height": 2.0,
    "rib_centerline": 0.5,
}


def _phantom_errors(seed: int, shape: tuple[int, int, int], spacing: float) -> dict[str, list[float]]:
    """Errors of every measured item of one phantom (no FOV cut) against its analytic truth.

    Every femur and pelvic landmark the truth has in full view must be measured (a missing value fails here).
    """
    from SwinX2SLib.measurements.rib import resample
    from SwinX2SLib.phantom import PhantomConfig, make_phantom

    # no CT noise and no unlabelled bones: same labels and truth as the default phantom, a third faster
    config = PhantomConfig(fov_cut_probability=0.0, noise_hu=0.0, unlabelled_bones=False)
    phantom = make_phantom(seed, shape, spacing, config)
    m, truth = measure(phantom.labels, phantom.grid), phantom.truth
    errors: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        errors.setdefault(key, []).append(float(value))

    for side in ("left", "right"):
        ours, true = m["femur"][side], truth["femur"][side]
        assert true["proximal_status"] == "present", (seed, side)
        add("head_radius", ours["head_radius_mm"] - true["head_radius"])
        add("neck_shaft_angle", ours["neck_shaft_angle_deg"] - true["neck_shaft_angle"])
        add("offset", ours["offset_mm"] - true["offset"])
        for name, point in truth["pelvis"]["landmarks"][side].items():
            add(name, np.linalg.norm(np.subtract(m["pelvis"]["landmarks_ras"][f"{name}_{side[0].upper()}"], point)))
    for name, true in truth["vertebrae"].items():
        if true["status"] == "present" and "anterior_height" in true and name != "vertebrae_C2":
            ours = m["vertebrae"][name]
            add("body_height", ours["anterior_body_height_mm"] - true["anterior_height"])
            add("body_height", ours["posterior_body_height_mm"] - true["posterior_height"])
    for name, true in truth["ribs"].items():
        if true["status"] == "present":
            dense = resample(np.asarray(true["centreline"]), 3000)
            add("rib_centerline", cKDTree(dense).query(np.asarray(m["ribs"][name]["centerline_ras"]))[0].mean())
    return errors


def _pooled_errors(seeds: range, shape: tuple[int, int, int], spacing: float) -> dict[str, np.ndarray]:
    """Absolute errors per item pooled over phantoms; prints the largest per phantom and max / mean per item
    (``pytest -s`` shows them)."""
    pooled: dict[str, list[float]] = {}
    for seed in seeds:
        errors = _phantom_errors(seed, shape, spacing)
        print(f"seed {seed}: " + ", ".join(f"{key} {np.abs(v).max():.2f}" for key, v in errors.items()), flush=True)
        for key, values in errors.items():
            pooled.setdefault(key, []).extend(values)
    errors = {key: np.abs(values) for key, values in pooled.items()}
    for key, values in errors.items():
        summary = f"n={len(values)}, max {values.max():.3f}, mean {values.mean():.3f}"
        print(f"{spacing:g} mm, {len(seeds)} phantoms, {key}: {summary}")
    return errors


def _assert_targets(
    errors: dict[str, np.ndarray], n_phantoms: int, items: Iterable[str], slack: dict[str, float]
) -> None:
    """Every femur and landmark measured; the largest error of each item below its target plus ``slack``."""
    for name in ("head_radius", "neck_shaft_angle", "ASIS", "PSIS", "PT", "IS"):
        assert len(errors[name]) == 2 * n_phantoms, name  # both sides of every phantom measured
    for key in items:
        assert errors[key].max() < PHANTOM_TARGETS[key] + slack.get(key, 0.0), (key, errors[key].max())


@pytest.fixture(scope="module")
def phantom_errors() -> dict[str, np.ndarray]:
    """Errors over :data:`N_PHANTOMS` seeded 1 mm phantoms (30-90 s per phantom on 2 shared cores)."""
    return _pooled_errors(range(N_PHANTOMS), PHANTOM_SHAPE_1MM, 1.0)


@pytest.mark.slow
def test_phantom_accuracy(phantom_errors):
    """Issue targets for the femurs, the pelvic landmarks and the rib centrelines over the 1 mm phantoms."""
    _assert_targets(phantom_errors, N_PHANTOMS, [k for k in PHANTOM_TARGETS if k != "body_height"], {})


@pytest.mark.slow
def test_phantom_vertebral_body_heights(phantom_errors):
    """Issue target for the vertebral body heights over the 1 mm phantoms (C2 excluded: dens)."""
    _assert_targets(phantom_errors, N_PHANTOMS, ["body_height"], {})


def test_phantom_accuracy_quick():
    """All the items on 3 phantoms at 2 mm voxels, with slightly looser bounds for the coarser voxels."""
    shape = tuple(s // 2 for s in PHANTOM_SHAPE_1MM)
    _assert_targets(_pooled_errors(range(3), shape, 2.0), 3, PHANTOM_TARGETS, QUICK_SLACK)


def _phantom_close_up(seed: int, name: str, shape: tuple[int, int, int]):
    """A 1 mm phantom grid centred on one vertebral body (no FOV cut, noise or unlabelled bones)."""
    from SwinX2SLib.phantom import PhantomConfig, make_phantom

    config = PhantomConfig(fov_cut_probability=0.0, noise_hu=0.0, unlabelled_bones=False, center_on=name)
    return make_phantom(seed, shape, 1.0, config)


def _height_errors(m: dict, truth: dict, names: Iterable[str]) -> np.ndarray:
    """Signed (anterior, posterior) body height errors (mm) ``(len(names), 2)``."""
    return np.array(
        [
            [
                m[n]["anterior_body_height_mm"] - truth[n]["anterior_height"],
                m[n]["posterior_body_height_mm"] - truth[n]["posterior_height"],
            ]
            for n in names
        ]
    )


@pytest.mark.parametrize("seed", [0, 5])
def test_phantom_vertebra_below_a_truncated_neighbour(seed):
    """A neighbour cut by the field of view must not tilt the frame: the top of the grid leaves 15 % of C3 (its
    lower body and spinous tip, whose centroid tilted C4's superior axis by ~18 deg and made its heights 2-4 mm
    wrong); C4's heights stay within the issue target."""
    phantom = _phantom_close_up(seed, "vertebrae_C4", (96, 96, 96))
    c3 = np.cumsum(np.count_nonzero(phantom.labels == ID["vertebrae_C3"], axis=(0, 1)))
    cut = phantom.labels[:, :, : int(np.searchsorted(c3, 0.15 * c3[-1]))]
    names = ("vertebrae_C3", "vertebrae_C4", "vertebrae_C5")
    m = measure_vertebrae(LabelVolume(cut, phantom.grid.affine_ras()), {n: ID[n] for n in names})
    assert m["vertebrae_C3"]["status"] == "not_measurable"  # truncated (in two pieces: body and spinous tip)
    assert np.abs(_height_errors(m, phantom.truth["vertebrae"], ["vertebrae_C4"])).max() < 1.5


def test_phantom_tilted_vertebrae_heights_unbiased():
    """Thoracolumbar bodies tilted ~20 deg from the grid axes (seed 4: kyphosis, lordosis and a 20 deg scoliosis):
    heights are edge-to-edge without a footprint bias (a fixed oblique voxel footprint made them 1.2-1.4 mm too
    tall)."""
    phantom = _phantom_close_up(4, "vertebrae_T12", (120, 160, 140))
    names = ("vertebrae_T11", "vertebrae_T12", "vertebrae_L1")
    m = measure_vertebrae(LabelVolume(phantom.labels, phantom.grid.affine_ras()), {n: ID[n] for n in names})
    errors = _height_errors(m, phantom.truth["vertebrae"], names)
    assert np.abs(errors).max() < 1.0 and abs(errors.mean()) < 0.5, errors


def test_real_spine_only_case(official_samples: Path):
    """The spine-only published case: plausible vertebrae, everything else reported as absent.

    (CTPelvic1K_0243 is not used: its pelvis lies upside down with the hip labels on the opposite sides in the model
    convention, which extreme-point landmarks cannot survive; see docs/measurements.md.)
    """
    labels, grid = _published(official_samples / "CTSpine1K_0646" / "swinx2sbase", "label")
    m = measure(labels, grid)
    assert all("absent" in m["femur"][side]["reason"] for side in ("left", "right"))
    assert m["pelvis"]["app"]["status"] == "not_measurable"
    measured = [v for v in m["vertebrae"].values() if is_measured(v) and is_measured(v["anterior_body_height_mm"])]
    assert len(measured) >= 5
    for v in measured:
        assert 15 < v["anterior_body_height_mm"] < 40 and 8 < v["canal_depth_mm"] < 30


def test_random_blobs_give_values_or_reasons():
    """A fragmented map (what an untrained network produces) never raises: every item is a value or a reason."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    shape = (48, 48, 64)
    smooth = ndimage.gaussian_filter(rng.standard_normal(shape), 2)
    ids = ndimage.zoom(rng.integers(1, catalogue.NUM_CLASSES, size=(6, 6, 8)), 8, order=0)
    labels = np.where(smooth > 0.05, ids, 0).astype(np.uint8)
    m = measure(labels, np.diag([4.0, 4.0, 4.0, 1.0]))
    json.dumps(m)

    def leaves(node):
        if isinstance(node, dict) and node.get("status") == "not_measurable":
            assert isinstance(node["reason"], str) and node["reason"]
        elif isinstance(node, dict):
            for value in node.values():
                leaves(value)

    leaves(m)
