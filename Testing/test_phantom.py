"""Tests of the procedural phantom: anatomy on the voxels, agreement of the analytic truth with the voxels,
variation, determinism, files and the ``swinx2s phantom`` command."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from scipy import ndimage

from SwinX2SLib import catalogue
from SwinX2SLib.phantom import PhantomConfig, make_phantom, phantom_stream

FULL = PhantomConfig(fov_cut_probability=0.0, l6_probability=1.0, metal_probability=0.0)
ID = {c.name: c.id for c in catalogue.CLASSES}


@pytest.fixture(scope="module")
def full():
    """A phantom whose field of view holds every class (L6 forced), on the default 128 x 128 x 160 grid."""
    return make_phantom(seed=11, config=FULL)


@pytest.fixture(scope="module")
def cut_phantoms():
    """Phantoms with a cut field of view (and the default variation otherwise)."""
    cfg = PhantomConfig(fov_cut_probability=1.0)
    return [make_phantom(seed=s, config=cfg) for s in range(3)]


def _index(phantom, ras) -> np.ndarray:
    return phantom.grid.ras_to_index(np.asarray(ras, dtype=np.float64))


def _centroid(labels: np.ndarray, label: int) -> np.ndarray:
    box = ndimage.find_objects((labels == label).view(np.uint8))[0]
    return (np.argwhere(labels[box] == label) + [b.start for b in box]).mean(axis=0)


_VOXELS: dict[tuple[int, int], np.ndarray] = {}


def _voxels(phantom, label: int) -> np.ndarray:
    """Indices ``(N, 3)`` of the voxels carrying ``label`` (cached per phantom)."""
    key = (id(phantom), label)
    if key not in _VOXELS:
        box = ndimage.find_objects((phantom.labels == label).view(np.uint8))[0]
        _VOXELS[key] = np.argwhere(phantom.labels[box] == label) + [b.start for b in box]
    return _VOXELS[key]


def _distance_to_label(phantom, ras, label: int) -> float:
    """Distance (mm) from a RAS point to the nearest voxel centre carrying ``label``."""
    voxels = _voxels(phantom, label)
    return float(np.min(np.linalg.norm(voxels - _index(phantom, ras), axis=1)) * phantom.grid.spacing)


def test_arrays_and_every_class(full):
    assert full.ct.shape == full.labels.shape == full.grid.shape == (128, 128, 160)
    assert full.ct.dtype == np.float32 and full.labels.dtype == np.uint8
    counts = np.bincount(full.labels.ravel(), minlength=catalogue.NUM_CLASSES)
    assert len(counts) == catalogue.NUM_CLASSES
    missing = [c.name for c in catalogue.CLASSES if counts[c.id] == 0]
    assert missing == []
    for name, entry in full.truth["structures"].items():
        assert entry["voxels"] == counts[ID[name]]


def test_axis_contract(full):
    """+x patient left, +y anterior, +z superior (docs/architecture.md)."""
    lab = full.labels
    assert _centroid(lab, ID["femur_left"])[0] > _centroid(lab, ID["femur_right"])[0]
    assert _centroid(lab, ID["hip_left"])[0] > _centroid(lab, ID["hip_right"])[0]
    assert _centroid(lab, ID["vertebrae_C1"])[2] > _centroid(lab, ID["vertebrae_L5"])[2]
    for name in ("vertebrae_T6", "vertebrae_L3"):  # the spine lies posterior in the trunk
        vertebra = _centroid(lab, ID[name])
        trunk = np.argwhere(full.ct[:, :, int(vertebra[2])] > -500).mean(axis=0)
        assert vertebra[1] < trunk[1] - 20.0 / full.grid.spacing, name
    truth = full.truth["femur"]
    assert truth["left"]["head_center"][0] < truth["right"]["head_center"][0]  # RAS: +R is the patient's right


def test_soft_tissues(full):
    """Air around the body, fat under the skin, muscle/organs, lungs in the chest."""
    ct = full.ct
    assert abs(float(np.median(ct[0, 0, :])) + 1000.0) < 30.0
    t6 = int(_centroid(full.labels, ID["vertebrae_T6"])[2])
    chest = ct[:, :, t6]
    lungs = np.abs(chest + 820.0) < 60.0
    assert lungs.sum() > 0.2 * (lungs | (chest > -500.0)).sum()  # lungs fill much of the chest
    l4 = int(_centroid(full.labels, ID["vertebrae_L4"])[2])
    belly = ct[:, :, l4]
    body = (belly > -500.0).sum()
    assert (np.abs(belly + 100.0) < 40.0).sum() > 0.1 * body  # subcutaneous fat
    assert (np.abs(belly - 45.0) < 40.0).sum() > 0.4 * body  # muscle and organs


def test_each_label_one_component(full, cut_phantoms):
    """A bone inside the field of view is one 6-connected piece; a bone cut by the grid boundary may be split by
    it, and then every piece reaches the boundary."""
    for phantom in [full, *cut_phantoms]:
        boxes = ndimage.find_objects(phantom.labels)
        for name, entry in phantom.truth["structures"].items():
            if entry["voxels"] == 0:
                assert len(boxes) < ID[name] or boxes[ID[name] - 1] is None
                continue
            box = boxes[ID[name] - 1]
            components, n = ndimage.label(phantom.labels[box] == ID[name])
            if entry["status"] == "present":
                assert n == 1, name
                # the safety net for stray pieces only removes a few voxels (thin process tips on 4-7 mm grids)
                assert entry["removed_voxels"] <= max(4, 0.1 * entry["voxels"]), (name, entry)
            elif n > 1:
                pieces = set(range(1, n + 1))
                for axis in range(3):
                    if box[axis].start == 0:
                        pieces -= set(np.unique(np.take(components, 0, axis=axis)).tolist())
                    if box[axis].stop == phantom.grid.shape[axis]:
                        pieces -= set(np.unique(np.take(components, -1, axis=axis)).tolist())
                sizes = np.bincount(components.ravel())
                assert pieces <= {int(np.argmax(sizes[1:])) + 1}, name


def test_vertebrae_ordered_top_to_bottom(full):
    z = [_centroid(full.labels, i)[2] for i in range(1, 26)]
    assert all(a > b for a, b in itertools.pairwise(z))


def test_ribs_on_their_side_and_attached(full):
    lab = full.labels
    mid = _centroid(lab, ID["vertebrae_T6"])[0]
    for k in range(1, 13):
        left, right = ID[f"rib_left_{k}"], ID[f"rib_right_{k}"]
        assert _centroid(lab, left)[0] > mid > _centroid(lab, right)[0], k
        # the rib touches its thoracic vertebra (26-connected contact)
        box = tuple(
            slice(max(b.start - 1, 0), b.stop + 1) for b in ndimage.find_objects((lab == left).view(np.uint8))[0]
        )
        grown = ndimage.binary_dilation(lab[box] == left, structure=np.ones((3, 3, 3)))
        assert np.any(lab[box][grown] == ID[f"vertebrae_T{k}"]), k
    zs = [_centroid(lab, ID[f"rib_left_{k}"])[2] for k in range(1, 13)]
    assert all(a > b for a, b in itertools.pairwise(zs))


def test_femoral_heads_in_acetabula(full):
    s = full.grid.spacing
    for side in ("left", "right"):
        femur = full.truth["femur"][side]
        centre = _index(full, femur["head_center"])
        assert full.labels[tuple(np.round(centre).astype(int))] == ID[f"femur_{side}"]
        # rays from the head centre towards the pelvis (up and medially) meet the hip bone just past the head
        hip = full.labels == ID[f"hip_{side}"]
        medial = -1.0 if side == "left" else 1.0  # index x grows towards the patient's left
        hits = 0
        directions = [(medial * a, b, 1.0) for a in (0.0, 0.5, 1.0) for b in (-0.4, 0.0, 0.4)]
        for d in directions:
            d = np.array(d) / np.linalg.norm(d)
            for t in np.arange(0.0, femur["head_radius"] + 4 * s, s / 2) / s:
                p = tuple(np.round(centre + t * d).astype(int))
                if hip[p]:
                    hits += 1
                    break
        assert hits >= len(directions) - 1, side


def test_head_radius_and_centre_from_voxels(full):
    """The half of the head away from the neck is an exact voxel sphere: its volume and centroid give the truth."""
    s = full.grid.spacing
    for side in ("left", "right"):
        femur = full.truth["femur"][side]
        centre = _index(full, femur["head_center"])
        axis = _index(full, np.add(femur["head_center"], femur["neck_axis"])) - centre  # index units, |.| = 1/s
        voxels = _voxels(full, ID[f"femur_{side}"])
        half = voxels[(voxels - centre) @ axis > 0]
        half = half[np.linalg.norm(half - centre, axis=1) * s < femur["head_radius"] + 3 * s]
        radius = (3.0 * len(half) / (2.0 * np.pi)) ** (1 / 3) * s
        assert radius == pytest.approx(femur["head_radius"], rel=0.05)
        expected = centre + 3.0 / 8.0 * femur["head_radius"] / s * axis * s
        assert np.linalg.norm(half.mean(axis=0) - expected) < 0.5


def test_femoral_axes_and_angles(full):
    s = full.grid.spacing
    for side in ("left", "right"):
        femur = full.truth["femur"][side]
        assert femur["proximal_status"] == "present" and femur["status"] == "truncated"  # cut at mid-thigh
        neck, shaft = np.array(femur["neck_axis"]), np.array(femur["shaft_axis"])
        assert np.degrees(np.arccos(neck @ shaft)) == pytest.approx(femur["neck_shaft_angle"], abs=0.02)
        assert 115.0 <= femur["neck_shaft_angle"] <= 145.0 and 18.0 <= femur["head_radius"] <= 28.0
        # the shaft axis of the voxels (principal axis of the diaphysis) agrees with the truth
        junction = _index(full, femur["neck_shaft_junction"])
        voxels = _voxels(full, ID[f"femur_{side}"]).astype(float)
        direction = (_index(full, np.add(femur["neck_shaft_junction"], shaft)) - junction) * s  # unit, index space
        along = (voxels - junction) @ direction * s  # mm distal of the junction
        diaphysis = voxels[(along > 70) & (along < 170)]
        assert len(diaphysis) > 50
        _, _, vt = np.linalg.svd(diaphysis - diaphysis.mean(axis=0), full_matrices=False)
        measured = full.grid.index_to_ras(vt[0]) - full.grid.index_to_ras(np.zeros(3))
        measured /= np.linalg.norm(measured)
        assert np.degrees(np.arccos(abs(measured @ shaft))) < 3.0
        head = np.array(femur["head_center"])
        j = np.array(femur["neck_shaft_junction"])
        offset = np.linalg.norm(np.cross(head - j, shaft))
        assert offset == pytest.approx(femur["offset"], abs=1e-2)


def test_pelvic_landmarks_on_the_bone(full):
    s = full.grid.spacing
    for side in ("left", "right"):
        marks = full.truth["pelvis"]["landmarks"][side]
        assert set(marks) == {"ASIS", "PSIS", "PT", "IS"}
        for name, point in marks.items():
            assert _distance_to_label(full, point, ID[f"hip_{side}"]) <= 1.5 * s, (side, name)
        # ASIS anterior to PSIS, pubic tubercle below ASIS (RAS: +A, +S)
        assert marks["ASIS"][1] > marks["PSIS"][1] + 50
        assert marks["PT"][2] < marks["ASIS"][2] - 40
    left, right = full.truth["pelvis"]["landmarks"]["left"], full.truth["pelvis"]["landmarks"]["right"]
    assert left["ASIS"][0] < right["ASIS"][0]


@pytest.fixture(scope="module")
def pelvis_close_up():
    """Pelvis and proximal femurs at 2 mm voxels (grid centred on the S1 endplate)."""
    cfg = PhantomConfig(fov_cut_probability=0.0, metal_probability=0.0, center_on="sacrum")
    return make_phantom(seed=11, shape=(200, 130, 200), spacing_mm=2.0, config=cfg)


def _ras_points(phantom, label: int) -> np.ndarray:
    return phantom.grid.index_to_ras(_voxels(phantom, label).astype(float))


def test_femoral_neck_clear_of_the_shaft(pelvis_close_up):
    """Sections perpendicular to the truth neck axis, from the head to 24 mm before the junction, are centred on it
    (no shaft or trochanter bone reaches the neck), so the truth neck axis is the clinical one."""
    p = pelvis_close_up
    s = p.grid.spacing
    for side in ("left", "right"):
        femur = p.truth["femur"][side]
        centre, axis, r = np.array(femur["head_center"]), np.array(femur["neck_axis"]), femur["head_radius"]
        rel = _ras_points(p, ID[f"femur_{side}"]) - centre
        depth = -(rel @ axis)  # mm from the head centre towards the junction
        radial = rel + np.outer(depth, axis)
        near = np.linalg.norm(radial, axis=1) < 1.2 * r
        stations = np.arange(0.8 * r, max(0.8 * r, femur["neck_length"] - 24.0) + 1e-6, s)
        for station in stations:
            section = near & (np.abs(depth - station) < s / 2)
            assert np.count_nonzero(section) > 20
            assert np.linalg.norm(radial[section].mean(axis=0)) < 0.5 * s, (side, station)


def test_pelvic_landmarks_are_app_extremes(pelvis_close_up):
    """In the anterior pelvic plane frame of the truth landmarks, ASIS / PT are the most anterior and PSIS the most
    posterior bone of the hip bone's upper / lower part (split at its centroid), as the clinical definition says."""
    p = pelvis_close_up
    s = p.grid.spacing
    marks = {side: {k: np.array(v) for k, v in m.items()} for side, m in p.truth["pelvis"]["landmarks"].items()}
    left, right = marks["left"], marks["right"]
    anterior = np.cross(right["ASIS"] - left["ASIS"], 0.5 * (left["PT"] + right["PT"]) - left["ASIS"])
    anterior /= np.linalg.norm(anterior) * np.sign(anterior[1])  # RAS: +A
    superior = np.cross(right["ASIS"] - left["ASIS"], anterior)
    superior /= np.linalg.norm(superior) * np.sign(superior[2])
    for side in ("left", "right"):
        points = _ras_points(p, ID[f"hip_{side}"])
        upper = points @ superior > points.mean(axis=0) @ superior
        for name, part, sign in (("ASIS", upper, 1.0), ("PT", ~upper, 1.0), ("PSIS", upper, -1.0)):
            height = sign * points[part] @ anterior
            truth_height = sign * marks[side][name] @ anterior
            # voxel centres lie inside the surface: the frontmost is less than a voxel behind the truth point ...
            assert 0.0 < truth_height - height.max() < s, (side, name)
            # ... and the front of the bone (within one voxel of it) is centred on the truth point
            front = points[part][height > height.max() - s].mean(axis=0)
            assert np.linalg.norm(front - marks[side][name]) < 1.5 * s, (side, name)


def test_vertebra_truth_on_the_voxels():
    """At 1 mm, the analytic vertebral measurements agree with the voxels of the vertebra nearest the centre."""
    best = "vertebrae_L2"
    p = make_phantom(seed=4, shape=(96, 160, 64), spacing_mm=1.0, config=PhantomConfig(center_on=best))
    v = p.truth["vertebrae"][best]
    assert v["status"] == "present"
    label = p.labels == ID[best]
    assert label[tuple(np.round(_index(p, v["body_center"])).astype(int))]
    assert not label[tuple(np.round(_index(p, v["canal_center"])).astype(int))]  # the canal is empty

    def samples(start, direction, limit):
        """Whether the vertebra is present every 0.25 mm along a ray from a RAS point."""
        t = np.arange(0.0, limit, 0.25)
        pts = np.asarray(start) + t[:, None] * np.asarray(direction)
        idx = np.round(_index(p, pts)).astype(int)
        inside = np.all((idx >= 0) & (idx < p.grid.shape), axis=1)
        assert inside[0] and inside[-1], "ray leaves the close-up grid"
        return label[idx[:, 0], idx[:, 1], idx[:, 2]]

    def run_length(start, direction, limit):
        """Labelled length (mm) along the ray."""
        return 0.25 * samples(start, direction, limit).sum()

    def first_hit(start, direction, limit):
        """Distance (mm) along the ray to the first labelled sample."""
        return 0.25 * np.argmax(samples(start, direction, limit))

    up, ant = np.array(v["superior_axis"]), np.array(v["anterior_axis"])
    lower_ant = np.array(v["anterior_inferior_corner"]) - 1.5 * ant + 0.5 * up
    assert run_length(lower_ant - 1.0 * up, up, v["anterior_height"] + 6.0) == pytest.approx(
        v["anterior_height"], abs=1.6
    )
    lower_post = np.array(v["posterior_inferior_corner"]) + 1.5 * ant
    assert run_length(lower_post - 1.0 * up, up, v["posterior_height"] + 6.0) == pytest.approx(
        v["posterior_height"], abs=1.6
    )
    mid = np.array(v["body_center"])
    back = mid - (v["superior_endplate_depth"] / 2 + 3.0) * ant
    assert run_length(back + 3.0 * ant, ant, v["superior_endplate_depth"] + 6.0) == pytest.approx(
        v["superior_endplate_depth"], abs=1.6
    )
    canal_front = mid - v["superior_endplate_depth"] / 2 * ant
    assert first_hit(canal_front - 0.5 * ant, -ant, 40.0) + 0.5 == pytest.approx(v["canal_depth"], abs=1.6)
    canal, left = np.array(v["canal_center"]), np.array(v["left_axis"])
    width = first_hit(canal, left, 30.0) + first_hit(canal, -left, 30.0)
    assert width == pytest.approx(v["canal_width"], abs=1.6)
    # cortical shell denser than the cancellous interior
    bone = p.truth["patient"]["bone_hu"]
    assert 200.0 <= bone["cancellous"] <= 400.0 and 1200.0 <= bone["cortical"] <= 1800.0
    inner = p.ct[tuple(np.round(_index(p, v["body_center"])).astype(int))]
    assert abs(inner - bone["cancellous"]) < 60.0
    wall = np.array(v["body_center"]) + (v["superior_endplate_depth"] / 2 - 0.5) * ant
    assert p.ct[tuple(np.round(_index(p, wall)).astype(int))] > 1000.0
    tip = np.array(v["spinous_tip"])
    assert _distance_to_label(p, tip, ID[best]) <= 1.5


def test_rib_centrelines_inside_their_rib(full):
    s = full.grid.spacing
    for side in ("left", "right"):
        for k in range(1, 13):
            name = f"rib_{side}_{k}"
            line = np.array(full.truth["ribs"][name]["centreline"])[2:]  # from the tubercle on
            near = [_distance_to_label(full, pt, ID[name]) <= s for pt in line]
            assert np.mean(near) >= 0.9, name


def test_same_seed_same_phantom():
    a = make_phantom(seed=5, shape=(48, 48, 64))
    b = make_phantom(seed=5, shape=(48, 48, 64))
    c = make_phantom(seed=6, shape=(48, 48, 64))
    assert np.array_equal(a.ct, b.ct) and np.array_equal(a.labels, b.labels) and a.truth == b.truth
    assert not np.array_equal(a.labels, c.labels)


def test_variation_and_cut_field_of_view(cut_phantoms):
    radii = [p.truth["femur"][s]["head_radius"] for p in cut_phantoms for s in ("left", "right")]
    angles = [p.truth["femur"][s]["neck_shaft_angle"] for p in cut_phantoms for s in ("left", "right")]
    assert all(18.0 <= r <= 28.0 for r in radii) and len(set(radii)) == len(radii)
    assert all(115.0 <= a <= 145.0 for a in angles)
    assert all(abs(p.truth["patient"]["rotation_deg"]) <= 10.0 for p in cut_phantoms)
    statuses = [e["status"] for p in cut_phantoms for e in p.truth["structures"].values()]
    assert "absent" in statuses and "truncated" in statuses
    for p in cut_phantoms:
        for name, entry in p.truth["structures"].items():
            assert (entry["status"] == "absent") == (entry["voxels"] == 0)
            if entry["status"] == "truncated":  # a truncated bone reaches the top or bottom slice
                mask = p.labels == ID[name]
                assert mask[:, :, 0].any() or mask[:, :, -1].any() or mask[0].any() or mask[-1].any()


def test_metal_implant_changes_only_the_ct():
    plain = make_phantom(seed=9, shape=(48, 48, 64), config=PhantomConfig(metal_probability=0.0, noise_hu=0.0))
    metal = make_phantom(seed=9, shape=(48, 48, 64), config=PhantomConfig(metal_probability=1.0, noise_hu=0.0))
    assert plain.truth["patient"]["metal_implant"] is None
    assert metal.truth["patient"]["metal_implant"] in ("nail", "spine")
    assert np.array_equal(plain.labels, metal.labels)
    changed = plain.ct != metal.ct
    assert changed.any() and np.all(metal.ct[changed] == 3000.0)
    assert plain.ct.max() < 2500.0


def test_phantom_stream_is_seeded():
    a = phantom_stream(3, shape=(32, 32, 40))
    b = phantom_stream(3, shape=(32, 32, 40))
    first, second = next(a), next(a)
    assert first.truth["seed"] != second.truth["seed"]
    assert next(b).truth == first.truth


def test_write_and_cli(tmp_path):
    import SimpleITK as sitk
    from PIL import Image

    from SwinX2SLib.cli import main
    from SwinX2SLib.conventions import array_from_sitk
    from SwinX2SLib.errors import OutputError

    p = make_phantom(seed=2, shape=(40, 40, 48))
    paths = p.write(tmp_path / "a")
    ct = sitk.ReadImage(str(paths["ct.nii.gz"]))
    assert np.allclose(array_from_sitk(ct), p.ct)
    assert np.array_equal(array_from_sitk(sitk.ReadImage(str(paths["labels.nii.gz"]))), p.labels)
    assert np.allclose(ct.GetSpacing(), [p.grid.spacing] * 3)
    assert json.loads(paths["truth.json"].read_text()) == p.truth
    with pytest.raises(OutputError):
        p.write(tmp_path / "a")
    out = tmp_path / "cli"
    assert main(["phantom", "-o", str(out), "--seed", "2", "--shape", "40", "40", "48", "--progress", "none"]) == 0
    assert json.loads((out / "truth.json").read_text()) == p.truth
    overview = np.asarray(Image.open(out / "overview.png"))
    assert overview.ndim == 3 and overview.shape[2] == 3
    assert main(["phantom", "-o", str(out), "--shape", "40", "40", "48", "--progress", "none"]) == 2  # exists
