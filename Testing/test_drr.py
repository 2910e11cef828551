"""DRR renderer: analytic line integrals, geometry, orientation, the published samples and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from SwinX2SLib import drr
from SwinX2SLib.cli import main
from SwinX2SLib.conventions import (
    GRID_DIRECTION_LPS,
    ModelGrid,
    ct_to_model_grid,
    display_to_image,
    image_to_display,
    read_published_ct_hu,
    read_published_pair,
)
from SwinX2SLib.errors import InputError
from SwinX2SLib.io import read_xray

BONE_HU = 1000.0
RAW = drr.DRRPreset("raw", "line integral of max(HU, 0), divided by 1e6 (no clipping in these tests)", saturation=1e6)


N_SUB = 16
_SUB = (np.arange(N_SUB) + 0.5) / N_SUB - 0.5
"""Sub-voxel (sub-pixel) offsets of the supersampling."""


def _occupancy(shape: tuple[int, int, int], centre: np.ndarray, radius: float, axes: tuple[int, ...]) -> np.ndarray:
    """Fraction of each voxel inside a ball (``axes`` = all three) or a cylinder (two axes).

    The last axis in ``axes`` is integrated exactly (overlap of the voxel with the chord); the others are
    supersampled ``N_SUB`` times per voxel.
    """
    *sampled, exact = axes
    grids = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    fraction = np.zeros(shape)
    for offsets in np.ndindex(*(N_SUB,) * len(sampled)):
        dist2 = sum((grids[a] + _SUB[o] - centre[a]) ** 2 for a, o in zip(sampled, offsets, strict=True))
        half = np.sqrt(np.clip(radius**2 - dist2, 0.0, None))
        low = np.maximum(grids[exact] - 0.5, centre[exact] - half)
        high = np.minimum(grids[exact] + 0.5, centre[exact] + half)
        fraction += np.clip(high - low, 0.0, None)
    return fraction / N_SUB ** len(sampled)


def _raw(radiograph: drr.Radiograph) -> np.ndarray:
    """Undo the RAW preset's scaling: line integral of max(HU, 0) in HU·mm."""
    assert radiograph.image.max() < 1.0, "RAW preset saturated"
    return radiograph.image.astype(np.float64) * RAW.saturation


def _body_ct(shape=(60, 50, 30), spacing=(1.5, 1.5, 3.0)) -> tuple[np.ndarray, list[float]]:
    """An LPS-indexed CT array [i, j, k] (i → patient left, j → posterior, k → superior): air, a water body."""
    hu = np.full(shape, -1000.0, dtype=np.float32)
    hu[8:-8, 6:-6, :] = 0.0
    return hu, list(spacing)


def _image(array_ijk: np.ndarray, spacing, direction=None, origin=(0.0, 0.0, 0.0)) -> sitk.Image:
    """A SimpleITK image from an ``[i, j, k]`` array (LPS direction matrix ``direction``, identity by default)."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array_ijk.transpose(2, 1, 0)))
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection(np.asarray(np.eye(3) if direction is None else direction, float).flatten().tolist())
    image.SetOrigin([float(o) for o in origin])
    return image


def test_parallel_cylinder_equals_chord_times_mu():
    grid = ModelGrid((40, 40, 12), 2.0, (0.0, 0.0, 0.0))
    centre, radius = (np.array(grid.shape) - 1.0) / 2.0, 14.0
    volume = BONE_HU * _occupancy(grid.shape, centre, radius, axes=(0, 1))
    # the voxelised cylinder's projection: the chord averaged over the pixel (sub-rays, as _occupancy)
    offsets = np.arange(grid.shape[0])[:, None] - centre[0] + _SUB[None, :]
    chord_mm = 2.0 * np.sqrt(np.clip(radius**2 - offsets**2, 0.0, None)).mean(axis=1) * grid.spacing
    # trilinear sampling (oblique views) blurs by about a voxel, which lowers the steep rim of the profile:
    # compare where the chord is at least 60 % of the diameter; the axis-aligned sums are exact everywhere
    inner = chord_mm > 0.6 * 2 * radius * grid.spacing
    expected = BONE_HU * chord_mm
    for view, angles in (("coronal", (0.0, 30.0, 180.0)), ("sagittal", (90.0, 135.0))):
        for radiograph in drr.render_views(volume, grid, view, angles, preset=RAW):
            profile = _raw(radiograph)[:, 6]
            if radiograph.angle_deg % 90 == 0:
                np.testing.assert_allclose(profile, expected, rtol=2e-3, atol=1.0, err_msg=f"{view} {angles}")
            np.testing.assert_allclose(profile[inner], expected[inner], rtol=0.01, err_msg=f"{view} {angles}")
            assert np.ptp(_raw(radiograph), axis=1).max() < 1e-3 * expected.max()  # uniform along z


def test_perspective_sphere_equals_chord_times_mu_along_diverging_rays():
    grid = ModelGrid((40, 40, 40), 2.5, (10.0, -20.0, 30.0))
    centre, radius = (np.array(grid.shape) - 1.0) / 2.0, 14.0
    volume = BONE_HU * _occupancy(grid.shape, centre, radius, axes=(0, 1, 2))
    centre_lps, radius_mm = grid.index_to_lps(centre), radius * grid.spacing
    for view, angle in (("coronal", 0.0), ("sagittal", 90.0), ("coronal", 20.0)):
        (radiograph,) = drr.render_views(volume, grid, view, [angle], preset=RAW, geometry="perspective",
                                         sid_mm=150.0, sdd_mm=250.0)
        assert radiograph.spacing_mm[0] == pytest.approx(grid.spacing * 250.0 / 150.0)
        rows, cols = np.meshgrid(*[np.arange(n) for n in radiograph.image.shape], indexing="ij")
        chord_mm = np.zeros(radiograph.image.shape)
        for dr, dc in np.ndindex(N_SUB, N_SUB):  # analytic chord averaged over the pixel's sub-rays
            pixels = radiograph.pixel_lps(rows + _SUB[dr], cols + _SUB[dc])
            rays = pixels - np.asarray(radiograph.source_lps)
            rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
            to_centre = centre_lps - np.asarray(radiograph.source_lps)
            miss2 = np.sum(to_centre**2) - np.sum(rays * to_centre, axis=-1) ** 2
            chord_mm += 2.0 * np.sqrt(np.clip(radius_mm**2 - miss2, 0.0, None)) / N_SUB**2
        # diverging rays cross the voxels off-centre: trilinear blur (< 1 voxel) in two directions lowers the rim
        inner = chord_mm > 0.7 * 2 * radius_mm
        assert inner.sum() > 200
        np.testing.assert_allclose(_raw(radiograph)[inner], BONE_HU * chord_mm[inner], rtol=0.01, err_msg=view)
        # the central ray passes through the isocentre and hits the detector plane at SDD from the source
        hit = np.asarray(radiograph.source_lps) + 250.0 * np.asarray(radiograph.ray_dir_lps)
        plane_normal_offset = np.dot(radiograph.pixel_lps(0, 0) - hit, radiograph.ray_dir_lps)
        assert abs(plane_normal_offset) < 1e-6
        assert np.linalg.norm(np.asarray(radiograph.source_lps) + 150.0 * np.asarray(radiograph.ray_dir_lps)
                              - grid.center_lps) < 1e-6


def test_perspective_converges_to_parallel_as_the_source_recedes():
    rng = np.random.default_rng(3)
    grid = ModelGrid((32, 32, 24), 3.0, (0.0, 0.0, 0.0))
    blobs = np.zeros(grid.shape)
    for _ in range(6):
        c = rng.uniform(8, 24, 3) * [1, 1, 0.75]
        blobs += BONE_HU * _occupancy(grid.shape, c, rng.uniform(3, 6), axes=(0, 1, 2))
    for view in ("coronal", "sagittal"):
        (parallel,) = drr.render_views(blobs, grid, view, preset=RAW)
        errors = []
        for sid in (150.0, 600.0, 6000.0, 60000.0):
            (persp,) = drr.render_views(blobs, grid, view, preset=RAW, geometry="perspective", sid_mm=sid,
                                        sdd_mm=1.4 * sid)
            errors.append(np.abs(_raw(persp) - _raw(parallel)).mean() / _raw(parallel).mean())
        assert errors == sorted(errors, reverse=True), errors
        assert errors[0] > 0.05 and errors[-1] < 0.01, errors


def test_rotating_the_ct_about_the_vertical_axis_swaps_the_views():
    rng = np.random.default_rng(0)
    hu, spacing = _body_ct(shape=(40, 40, 20), spacing=(2.0, 2.0, 3.0))
    for _ in range(5):
        hu += BONE_HU * _occupancy(hu.shape, rng.uniform(10, 30, 3) * [1, 1, 0.5], 4.0, axes=(0, 1, 2))
    ct = _image(hu, spacing)
    # the same voxels, turned by +90° about the superior axis: patient left → posterior, anterior → left
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    centre = np.array(ct.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in ct.GetSize()]))
    turned = _image(hu, spacing, direction=turn, origin=centre - turn @ centre)
    shape = (48, 48, 40)
    before = drr.render_model_inputs(ct, "published_minmax", shape)
    after = drr.render_model_inputs(turned, "published_minmax", shape)
    np.testing.assert_allclose(after.grid.center_lps, before.grid.center_lps, atol=1e-6)
    np.testing.assert_allclose(after.coronal[0], before.sagittal[0], atol=1e-4)  # left of the new AP = old anterior
    np.testing.assert_allclose(after.sagittal[0], before.coronal[0][::-1], atol=1e-4)  # old right = new anterior
    assert np.abs(after.coronal[0] - before.coronal[0]).mean() > 0.02


def test_a_left_anterior_superior_bone_appears_where_documented():
    hu, spacing = _body_ct()
    # LPS index: i → left, j → posterior, k → superior; bone on the patient's left, anterior, superior
    bone = _occupancy(hu.shape, np.array([44.0, 14.0, 22.0]), 5.0, axes=(0, 1, 2)) > 0.5
    hu[bone] = BONE_HU
    lps = _image(hu, spacing)
    # the same patient stored as RAS-ordered voxels (x and y indices reversed, direction diag(-1, -1, 1))
    extent = (np.array(hu.shape) - 1) * np.array(spacing)
    ras = _image(hu[::-1, ::-1, :], spacing, direction=np.diag([-1.0, -1.0, 1.0]), origin=(extent[0], extent[1], 0))
    tilt = np.radians(15.0)  # an oblique CT (gantry tilt about the left-right axis) takes the resampling route
    tilted = [[1.0, 0.0, 0.0], [0.0, np.cos(tilt), -np.sin(tilt)], [0.0, np.sin(tilt), np.cos(tilt)]]
    oblique = _image(hu, spacing, direction=tilted)
    for ct in (lps, ras, oblique):
        inputs = drr.render_model_inputs(ct, "published", (64, 64, 64))
        ap = image_to_display(inputs.coronal[0], "coronal")
        lateral = image_to_display(inputs.sagittal[0], "sagittal")
        for image in (ap, lateral):
            row = np.unravel_index(np.argmax(image), image.shape)[0]
            assert row < image.shape[0] / 2, "superior bone must be in the upper half"
        # AP (radiological convention): the patient's left is on the viewer's right
        assert np.unravel_index(np.argmax(ap), ap.shape)[1] > ap.shape[1] / 2
        # lateral: anterior on the viewer's left
        assert np.unravel_index(np.argmax(lateral), lateral.shape)[1] < lateral.shape[1] / 2
    np.testing.assert_allclose(drr.render_model_inputs(ras, "published", (64, 64, 64)).coronal,
                               drr.render_model_inputs(lps, "published", (64, 64, 64)).coronal, atol=1e-4)


def test_ct_projected_on_its_own_voxels_matches_the_resampled_grid():
    """render_model_inputs integrates axis-aligned CTs on their own voxels; the result must equal the model-grid
    route (resample, then sum) up to interpolation, on the same grid, for any axis order and sign."""
    rng = np.random.default_rng(5)
    hu, spacing = _body_ct(shape=(64, 48, 36), spacing=(1.2, 1.5, 2.5))
    ijk = np.indices(hu.shape).transpose(1, 2, 3, 0)
    for _ in range(6):
        hu[np.linalg.norm(ijk - rng.uniform(12, 40, 3) * [1, 0.8, 0.6], axis=-1) < 5.0] = BONE_HU
    permuted = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # a sagittally stored CT
    for direction in (np.eye(3), permuted):
        ct = _image(hu, spacing, direction=direction, origin=(-40.0, 25.0, 100.0))
        for shape, fov in (((48, 48, 64), None), ((32, 40, 48), 150.0)):
            native = drr.render_model_inputs(ct, "published_minmax", shape, fov_mm=fov)
            volume, grid = ct_to_model_grid(ct, shape, fov)
            assert native.grid == grid
            resampled = drr.render_from_model_grid(volume, grid, "published_minmax")
            for ours, reference in ((native.coronal, resampled.coronal), (native.sagittal, resampled.sagittal)):
                assert np.corrcoef(ours.ravel(), reference.ravel())[0, 1] > 0.99
                assert np.abs(ours - reference).mean() < 0.02


def test_render_model_inputs_returns_the_aligned_label_and_view_groups():
    hu, spacing = _body_ct()
    bone = _occupancy(hu.shape, np.array([20.0, 30.0, 12.0]), 6.0, axes=(0, 1, 2)) > 0.5
    hu[bone] = BONE_HU
    label = sitk.Cast(_image(bone.astype(np.float32) * 53, spacing), sitk.sitkUInt8)
    inputs = drr.render_model_inputs(_image(hu, spacing), "published", (32, 32, 40), views=3, label=label)
    assert inputs.coronal.shape == (3, 32, 40) and inputs.sagittal.shape == (3, 32, 40)
    assert inputs.coronal.dtype == np.float32 and inputs.coronal.min() >= 0.0 and inputs.sagittal.max() <= 1.0
    assert [r.angle_deg for r in inputs.radiographs] == [0.0, 30.0, 60.0, 90.0, 120.0, 150.0]
    assert inputs.label.dtype == np.uint8 and inputs.label.shape == inputs.grid.shape
    assert set(np.unique(inputs.label)) == {0, 53}
    # the label's projection is where the bone is bright
    for image, axis in ((inputs.coronal[0], 1), (inputs.sagittal[0], 0)):
        footprint = inputs.label.any(axis=axis)
        assert image[footprint].mean() > 3 * image[~footprint].mean()


def test_presets_and_geometry_metadata():
    grid = ModelGrid((24, 20, 16), 2.0, (5.0, 6.0, 7.0))
    volume = np.full(grid.shape, -1000.0)
    volume[6:18, 5:15, 4:12] = 40.0
    volume[10:13, 8:11, 4:12] = BONE_HU
    published = drr.render_from_model_grid(volume, grid, "published")
    minmax = drr.render_from_model_grid(volume, grid, "published_minmax")
    physical = drr.render_from_model_grid(volume, grid, "physical")
    assert minmax.coronal.min() == 0.0 and minmax.coronal.max() == pytest.approx(1.0)
    # published: one fixed window for both views, so the longer lateral paths are brighter
    expected_bone = (BONE_HU * 3 + 40.0 * 7) * grid.spacing / drr.PUBLISHED_SATURATION_HU_MM
    assert published.coronal[0, 11, 8] == pytest.approx(expected_bone, rel=1e-5)
    # physical: soft tissue is visible (below-zero HU counts), bone brightest
    assert physical.coronal[0, 7, 8] > 0.1 and physical.coronal[0].argmax() == minmax.coronal[0].argmax()
    assert published.coronal[0, 7, 8] == pytest.approx(40.0 * 10 * grid.spacing / drr.PUBLISHED_SATURATION_HU_MM)
    coronal, sagittal = published.radiographs
    np.testing.assert_allclose(coronal.detector_origin_lps, grid.index_to_lps([0, 9.5, 0]))
    np.testing.assert_allclose(coronal.detector_row_dir_lps, GRID_DIRECTION_LPS[:, 0])
    np.testing.assert_allclose(sagittal.detector_row_dir_lps, GRID_DIRECTION_LPS[:, 1], atol=1e-12)
    np.testing.assert_allclose(coronal.ray_dir_lps, -GRID_DIRECTION_LPS[:, 1], atol=1e-12)  # AP: anterior → posterior
    np.testing.assert_allclose(sagittal.ray_dir_lps, GRID_DIRECTION_LPS[:, 0], atol=1e-12)  # right → left
    assert coronal.source_lps is None and coronal.spacing_mm == (2.0, 2.0)
    assert json.loads(json.dumps(sagittal.to_dict()))["shape"] == [20, 16]


def test_bad_inputs_are_reported():
    grid = ModelGrid((8, 8, 8), 1.0)
    with pytest.raises(ValueError, match="unknown DRR preset"):
        drr.render_from_model_grid(np.zeros(grid.shape), grid, "bogus")
    with pytest.raises(ValueError, match="does not match the grid"):
        drr.render_from_model_grid(np.zeros((8, 8, 9)), grid)
    with pytest.raises(ValueError, match="positive integer"):
        drr.render_from_model_grid(np.zeros(grid.shape), grid, views=0)
    with pytest.raises(ValueError, match="sid_mm < sdd_mm"):
        drr.render_views(np.zeros(grid.shape), grid, "coronal", geometry="perspective", sid_mm=900, sdd_mm=800)
    with pytest.raises(ValueError, match="geometry"):
        drr.render_views(np.zeros(grid.shape), grid, "coronal", geometry="fan")
    nan = np.zeros(grid.shape)
    nan[1, 2, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        drr.render_from_model_grid(nan, grid)
    with pytest.raises(InputError, match="3-D CT"):
        drr.render_model_inputs(sitk.Image([8, 8], sitk.sitkFloat32))
    for views in (1, 2):  # both routes: projected on the CT's voxels, and resampled onto the grid
        with pytest.raises(InputError, match="NaN"):
            drr.render_model_inputs(_image(nan.astype(np.float32), (1.0, 1.0, 1.0)), shape=(8, 8, 8), views=views)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    grid = ModelGrid((32, 32, 24), 3.0)
    volume = BONE_HU * _occupancy(grid.shape, np.array([12.0, 18.0, 11.0]), 6.0, axes=(0, 1, 2))
    for geometry in drr.GEOMETRIES:
        cpu = drr.render_from_model_grid(volume, grid, views=2, geometry=geometry)
        gpu = drr.render_from_model_grid(volume, grid, views=2, geometry=geometry, device="cuda")
        np.testing.assert_allclose(gpu.coronal, cpu.coronal, atol=1e-4)
        np.testing.assert_allclose(gpu.sagittal, cpu.sagittal, atol=1e-4)


_CANDIDATES = {
    "identity": lambda a: a,
    "flip_rows": lambda a: a[::-1],
    "flip_cols": lambda a: a[:, ::-1],
    "flip_both": lambda a: a[::-1, ::-1],
    "transpose_resized": lambda a: np.asarray(
        torch.nn.functional.interpolate(torch.as_tensor(a.T.copy())[None, None], size=a.shape, mode="bilinear")[0, 0]
    ),
}
_MIRRORED = {("CTSpine1K_0646", "coronal")}
"""Published inputs that are mirrored left-right relative to the published ct.nii.gz (their label follows the DRR)."""


def test_published_samples_correlate_with_our_drrs_better_than_any_flip(official_samples, capsys):
    cases = sorted(p.parent for p in official_samples.glob("*/ct.nii.gz"))
    assert cases, f"no */ct.nii.gz in {official_samples}"
    lines = []
    for case in cases:
        coronal_path = sorted(case.glob("*/*_input_cor.nii.gz"))[0]
        published = dict(zip(("coronal", "sagittal"), read_published_pair(
            coronal_path, coronal_path.with_name(coronal_path.name.replace("_cor", "_sag")))[:2], strict=False))
        hu, grid = read_published_ct_hu(case / "ct.nii.gz")
        ours = drr.render_from_model_grid(hu, grid, "published")
        minmax = drr.render_from_model_grid(hu, grid, "published_minmax")
        for view, image, alternative in (("coronal", ours.coronal[0], minmax.coronal[0]),
                                         ("sagittal", ours.sagittal[0], minmax.sagittal[0])):
            r = {name: float(np.corrcoef(f(image).ravel(), published[view].ravel())[0, 1])
                 for name, f in _CANDIDATES.items()}
            best = max(r, key=r.get)
            aligned = _CANDIDATES[best]
            r_minmax = float(np.corrcoef(aligned(alternative).ravel(), published[view].ravel())[0, 1])
            lines.append(f"{case.name:18s} {view:8s} " + " ".join(f"{k}={v:.4f}" for k, v in r.items())
                         + f" | mean |diff| published {np.abs(aligned(image) - published[view]).mean():.3f}"
                         f" minmax {np.abs(aligned(alternative) - published[view]).mean():.3f} (r {r_minmax:.4f})")
            expected = "flip_rows" if (case.name, view) in _MIRRORED else "identity"
            assert best == expected, lines[-1]
            assert r[best] > 0.97, lines[-1]
            assert r[best] - max(v for k, v in r.items() if k != best) > 0.2, lines[-1]
            assert r[best] >= r_minmax - 1e-3, lines[-1]  # the fixed window fits at least as well as min-max
    with capsys.disabled():
        print("\nPearson r of our published-preset DRRs with the published network inputs:\n" + "\n".join(lines))


def test_cli_writes_display_oriented_images_that_read_back(tmp_path, capsys):
    hu, spacing = _body_ct()
    hu[40:48, 10:18, 20:26] = BONE_HU  # patient left, anterior, superior
    ct_path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(_image(hu, spacing), str(ct_path))
    out = tmp_path / "drr"
    assert main(["drr", str(ct_path), "-o", str(out), "--views", "2", "--shape", "40", "40", "48",
                 "--progress", "json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    result = events[-1]
    assert result["event"] == "result" and result["preset"] == "published" and len(result["images"]) == 4
    assert {Path(f).name for f in result["files"]} == {
        "coronal.nii.gz", "coronal.png", "coronal_45deg.nii.gz", "coronal_45deg.png", "sagittal.nii.gz",
        "sagittal.png", "sagittal_135deg.nii.gz", "sagittal_135deg.png", "geometry.json"}
    expected = drr.render_model_inputs(_image(hu, spacing), "published", (40, 40, 48), views=2)
    for view, images in (("coronal", expected.coronal), ("sagittal", expected.sagittal)):
        xray = read_xray(out / f"{view}.nii.gz")
        assert xray.spacing_mm == pytest.approx((expected.grid.spacing,) * 2)
        np.testing.assert_allclose(display_to_image(xray.pixels, view), images[0], atol=1e-6)
        assert xray.pixels.shape == (48, 40)
    ap = read_xray(out / "coronal.png", pixel_spacing_mm=1.0).pixels
    assert np.unravel_index(np.argmax(ap), ap.shape)[1] > ap.shape[1] / 2  # patient left on the viewer's right
    images = json.loads((out / "geometry.json").read_text())["images"]
    assert images[1]["angle_deg"] == 45.0
    # the display geometry places the written files: AP pixel [0, 0] is superior and on the patient's right,
    # lateral pixel [0, 0] superior and anterior (LPS: x towards left, y towards posterior, z towards superior)
    ap_display, lateral_display = images[0]["display"], images[2]["display"]
    assert ap_display["shape"] == [48, 40] and ap_display["spacing_mm"] == pytest.approx([expected.grid.spacing] * 2)
    np.testing.assert_allclose(ap_display["row_dir_lps"], [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(ap_display["col_dir_lps"], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(lateral_display["col_dir_lps"], [0, 1, 0], atol=1e-12)
    top_right = expected.grid.index_to_lps([0, 19.5, 47])  # grid x = 0 is the patient's right, z = 47 the top
    np.testing.assert_allclose(ap_display["origin_lps"], top_right, atol=1e-9)
    # no overwrite without --overwrite; perspective needs sid < sdd
    assert main(["drr", str(ct_path), "-o", str(out), "--progress", "none"]) == 2
    assert main(["drr", str(ct_path), "-o", str(out), "--geometry", "perspective", "--sid", "900", "--sdd", "800",
                 "--overwrite", "--progress", "none"]) == 2
    assert main(["drr", str(tmp_path / "missing.nii.gz"), "-o", str(out), "--progress", "none"]) == 2


def test_cli_preset_choices_match_the_registry():
    from SwinX2SLib.cli import build_parser
    from SwinX2SLib.options import DRR_PRESETS

    assert tuple(drr.PRESETS) == DRR_PRESETS
    commands = {a.dest: a for a in build_parser()._actions if a.dest == "command"}["command"].choices
    assert {a.dest: a.choices for a in commands["drr"]._actions}["preset"] is DRR_PRESETS
