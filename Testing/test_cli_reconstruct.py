"""Tests of ``swinx2s reconstruct`` and ``swinx2s demo`` (tiny random-weight model; files in, files out)."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import signal_at_stage
from PIL import Image
from test_inference import IMG_SIZE, model_dir  # noqa: F401  (shared model fixture)

from SwinX2SLib.cli import main
from SwinX2SLib.conventions import ModelGrid, sitk_from_array

OUTPUTS = {"segmentation.nii.gz", "segmentation.seg.nrrd", "confidence.nii.gz", "summary.json"}


def _radiograph(rows: int, cols: int, seed: int) -> np.ndarray:
    """A radiograph-like image: a bright vertical 'spine' band and a couple of blobs, plus noise."""
    rng = np.random.default_rng(seed)
    image = rng.random((rows, cols)) * 0.2
    image[:, cols // 2 - cols // 10: cols // 2 + cols // 10] += 0.6
    image[rows // 3: rows // 3 + rows // 8, cols // 5: cols // 3] += 0.5 + 0.3 * seed
    return image / image.max()


@pytest.fixture()
def xray_pair(tmp_path):
    """An 8-bit AP PNG and a 16-bit lateral PNG (no spacing in either file)."""
    ap, lat = tmp_path / "ap.png", tmp_path / "lateral.png"
    Image.fromarray((_radiograph(320, 240, 0) * 255).astype(np.uint8)).save(ap)
    Image.fromarray((_radiograph(320, 200, 1) * 65535).astype(np.uint16)).save(lat)
    assert Image.open(lat).mode.startswith("I")
    return ap, lat


def _run_json(argv, capsys) -> tuple[int, list[dict], str]:
    status = main([*argv, "--progress", "json"])
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
    return status, events, captured.err


def test_reconstruct_xray_pair_json_progress(model_dir, xray_pair, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "out"
    status, events, _ = _run_json(["reconstruct", "--ap", str(xray_pair[0]), "--lateral", str(xray_pair[1]),
                                   "-o", str(out), "--model", str(model_dir), "--device", "cpu"], capsys)
    assert status == 0
    progress = [e for e in events if e["event"] == "progress"]
    assert {"load", "predict", "write"} <= {e["stage"] for e in progress}
    fractions = [e["fraction"] for e in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(e["event"] == "warning" and "pixel spacing" in e["message"] for e in events)
    assert events[-1]["event"] == "result"
    assert set(events[-1]["outputs"]) == OUTPUTS
    assert {p.name for p in out.iterdir()} == OUTPUTS
    summary = json.loads((out / "summary.json").read_text())
    assert summary["source"]["kind"] == "xray" and summary["source"]["spacing_source"]["coronal"] == "default"
    assert summary["grid"]["shape"] == list(IMG_SIZE)
    assert summary["model"]["precision"] == "float32"  # --precision auto on the CPU


def test_reconstruct_refuses_half_precision_on_the_cpu(model_dir, xray_pair, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "out"
    argv = ["reconstruct", "--ap", str(xray_pair[0]), "--lateral", str(xray_pair[1]), "-o", str(out),
            "--model", str(model_dir), "--device", "cpu", "--precision", "bfloat16", "--progress", "none"]
    assert main(argv) == 2
    assert "--precision: bfloat16 is for CUDA devices; on the cpu use float32 or auto" in capsys.readouterr().err
    assert not any(out.iterdir())  # nothing written


def _write_box_ct(folder, label_id: int) -> sitk.Image:
    """``ct.nii.gz`` (a bone box in air, 2.5 mm voxels) and ``label.nii.gz`` (the box as ``label_id``) in ``folder``."""
    ct_array = np.full((36, 30, 44), -1000.0, np.float32)
    ct_array[10:26, 8:22, 4:40] = 900.0
    ct = sitk_from_array(ct_array, ModelGrid(ct_array.shape, 2.5, (5.0, 5.0, -50.0)))
    sitk.WriteImage(ct, str(folder / "ct.nii.gz"))
    sitk.WriteImage(sitk.Cast(ct > 0, sitk.sitkUInt8) * label_id, str(folder / "label.nii.gz"))
    return ct


def test_reconstruct_ct_with_label_evaluates(model_dir, tmp_path, capsys):  # noqa: F811
    ct = _write_box_ct(tmp_path, label_id=20)
    out = tmp_path / "out"
    status = main(["reconstruct", "--ct", str(tmp_path / "ct.nii.gz"), "--label", str(tmp_path / "label.nii.gz"),
                   "-o", str(out), "--model", str(model_dir), "--device", "cpu", "--progress", "none"])
    assert status == 0
    assert {p.name for p in out.iterdir()} == OUTPUTS | {"segmentation_ct.nii.gz", "metrics.json", "metrics.csv"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert "20" in metrics["per_class"] and metrics["per_class"]["20"]["name"] == "vertebrae_L1"
    assert sitk.ReadImage(str(out / "segmentation_ct.nii.gz")).GetSize() == ct.GetSize()
    assert "overall Dice" in capsys.readouterr().out


def test_reconstruct_measure_writes_measurements_and_comparison(model_dir, tmp_path, capsys):  # noqa: F811
    _write_box_ct(tmp_path, label_id=53)
    out = tmp_path / "out"
    (out).mkdir()
    (out / "landmarks.json").write_text("{}")  # an existing output is detected before computing
    argv = ["reconstruct", "--ct", str(tmp_path / "ct.nii.gz"), "--label", str(tmp_path / "label.nii.gz"),
            "-o", str(out), "--model", str(model_dir), "--device", "cpu", "--measure"]
    status, events, _ = _run_json(argv, capsys)
    assert status == 2 and "landmarks.json: already exists" in events[-1]["message"]
    status, events, _ = _run_json([*argv, "--overwrite"], capsys)
    assert status == 0
    names = {p.name for p in out.iterdir()}
    assert {"measurements.json", "measurements.csv", "landmarks.json", "comparison.json"} <= names
    assert {"measurements.json", "landmarks.json"} <= set(events[-1]["outputs"])
    measurements = json.loads((out / "measurements.json").read_text())
    assert {"femur", "pelvis", "vertebrae", "ribs"} <= set(measurements)
    assert "left" in measurements["femur"] and "right" in measurements["femur"]


def _published_pair(folder, shape=IMG_SIZE):
    """Files in the published format: 2-D DRRs stored as uint8 volumes repeated along the projection axis."""
    rng = np.random.default_rng(5)
    grid = ModelGrid(shape, 3.0)
    cor = (rng.random((shape[0], shape[2])) * 255).astype(np.uint8)
    sag = (rng.random((shape[1], shape[2])) * 255).astype(np.uint8)
    paths = folder / "case_input_cor.nii.gz", folder / "case_input_sag.nii.gz", folder / "case_label.nii.gz"
    sitk.WriteImage(sitk_from_array(np.repeat(cor[:, None, :], shape[1], 1), grid), str(paths[0]))
    sitk.WriteImage(sitk_from_array(np.repeat(sag[None], shape[0], 0), grid), str(paths[1]))
    label = np.zeros(shape, np.uint8)
    label[4:12, 10:20, 10:50] = 53
    sitk.WriteImage(sitk_from_array(label, grid), str(paths[2]))
    return paths


def test_reconstruct_published_pair(model_dir, tmp_path, capsys):  # noqa: F811
    cor, sag, label = _published_pair(tmp_path)
    out = tmp_path / "out"
    base = ["reconstruct", "-o", str(out), "--model", str(model_dir), "--device", "cpu", "--progress", "none"]
    assert main([*base, "--coronal", str(sag), "--sagittal", str(cor)]) == 2
    assert "wrong order" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    wrong_size = _published_pair(other, shape=(32, 32, 96))  # made for another model's input size
    assert main([*base, "--coronal", str(wrong_size[0]), "--sagittal", str(wrong_size[1])]) == 2
    assert "model expects (32, 32, 64)" in capsys.readouterr().err
    assert main([*base, "--coronal", str(cor), "--sagittal", str(sag), "--label", str(label)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["source"]["kind"] == "published"
    assert json.loads((out / "metrics.json").read_text())["per_class"]["53"]["name"] == "femur_left"


def _write_bad(kind: str, folder) -> str:
    if kind == "volume":
        path = folder / "volume.nii.gz"
        sitk.WriteImage(sitk.GetImageFromArray(np.random.default_rng(0).random((8, 40, 30)).astype(np.float32)),
                        str(path))
    elif kind == "nan":
        path = folder / "nan.mha"
        array = np.random.default_rng(0).random((40, 30)).astype(np.float32)
        array[3, 4] = np.nan
        sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    elif kind == "constant":
        path = folder / "constant.png"
        Image.fromarray(np.full((40, 30), 128, np.uint8)).save(path)
    elif kind == "truncated":
        path = folder / "truncated.png"
        full = folder / "full.png"
        Image.fromarray((_radiograph(120, 90, 2) * 255).astype(np.uint8)).save(full)
        path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    else:
        path = folder / "missing.png"
    return str(path)


@pytest.mark.parametrize(("kind", "message"), [
    ("volume", "3-D volume"), ("nan", "NaN"), ("constant", "constant"), ("truncated", "truncated"),
    ("missing", "does not exist"),
])
def test_reconstruct_bad_coronal_input(kind, message, model_dir, xray_pair, tmp_path, capsys):  # noqa: F811
    bad = _write_bad(kind, tmp_path)
    out = tmp_path / "out"
    status, events, _ = _run_json(["reconstruct", "--coronal", bad, "--sagittal", str(xray_pair[1]), "-o", str(out),
                                   "--model", str(model_dir), "--device", "cpu"], capsys)
    assert status == 2
    assert events[-1]["event"] == "error" and message in events[-1]["message"]
    assert os.path.basename(bad) in events[-1]["message"]
    assert list(out.iterdir()) == []


def test_reconstruct_identical_or_mismatched_views(model_dir, xray_pair, tmp_path, capsys):  # noqa: F811
    base = ["-o", str(tmp_path / "out"), "--model", str(model_dir), "--device", "cpu", "--progress", "none"]
    assert main(["reconstruct", "--coronal", str(xray_pair[0]), "--sagittal", str(xray_pair[0]), *base]) == 2
    assert "same exposure" in capsys.readouterr().err
    copy = tmp_path / "copy.png"  # the same image under another name
    copy.write_bytes(xray_pair[0].read_bytes())
    assert main(["reconstruct", "--coronal", str(xray_pair[0]), "--sagittal", str(copy), *base]) == 2
    assert "same exposure" in capsys.readouterr().err
    # the lateral placed 1 m below the AP image: the two views cannot overlap
    assert main(["reconstruct", "--coronal", str(xray_pair[0]), "--sagittal", str(xray_pair[1]), "--si-offset",
                 "1000", *base]) == 2
    assert "overlaps the AP image" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_reconstruct_output_checks_come_before_computing(xray_pair, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    inputs = ["reconstruct", "--coronal", str(xray_pair[0]), "--sagittal", str(xray_pair[1]),
              "--model", str(tmp_path / "no-model"), "--progress", "none"]
    argv = [*inputs, "-o", str(out)]
    assert main(argv) == 2  # the existing output is reported, not the missing model
    assert "overwrite" in capsys.readouterr().err
    assert (out / "summary.json").read_text() == "{}"
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main([*inputs, "-o", str(blocker / "out")]) == 2  # not creatable: reported before the model
    assert "cannot create output folder" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 2  # now the model is looked for
    assert "no trained model" in capsys.readouterr().err


def test_sigterm_during_run_leaves_no_outputs(model_dir, xray_pair, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    command = [sys.executable, "-m", "SwinX2SLib.cli", "reconstruct", "--coronal", str(xray_pair[0]),
               "--sagittal", str(xray_pair[1]), "-o", str(out), "--model", str(model_dir), "--device", "cpu",
               "--meshes", "stl", "--progress", "json"]
    status, remaining = signal_at_stage(command, "write", {**os.environ, "OMP_NUM_THREADS": "1"})
    assert status == 143
    assert json.loads(remaining.splitlines()[-1])["event"] == "error"
    assert list(out.iterdir()) == []


def test_demo_runs_the_whole_pipeline(model_dir, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "demo"
    status, events, _ = _run_json(["demo", "-o", str(out), "--model", str(model_dir), "--device", "cpu"], capsys)
    assert status == 0
    assert events[-1]["event"] == "result"
    assert {"phantom", "drr", "predict", "evaluate", "measure", "write"} <= {e.get("stage") for e in events}
    assert OUTPUTS | {"metrics.json", "metrics.csv", "overview.png", "report.json", "report.md"} == {
        p.name for p in out.iterdir()}
    report = json.loads((out / "report.json").read_text())
    # the random-weight test model has no held-out metrics on its card: the demo says its quality is unknown
    assert any(e["event"] == "warning" and "quality of this model is unknown" in e["message"] for e in events)
    assert "unknown" in report["model_quality_note"] and "quality of this model" in (out / "report.md").read_text()
    assert set(report["metrics"]["per_anatomy"]) == {"spine", "rib", "pelvis", "femur"}
    assert report["metrics"]["overall"]["num_classes"] > 0
    # measured, or (random weights give fragmented bones) a stated failure
    assert "femur" in report["measurements"].get("truth", {}) or report["measurements"]["status"] == "failed"
    with Image.open(out / "overview.png") as png:
        assert png.size == (1000, 800)
    assert main(["demo", "-o", str(out), "--model", str(model_dir), "--progress", "none"]) == 2  # no --overwrite


def test_demo_says_plainly_when_the_model_is_not_trained_enough():
    from SwinX2SLib.checkpoints import ModelCard
    from SwinX2SLib.cli.demo import model_quality_note

    poor = ModelCard(classes=(), metrics={"holdout": {"cases": 20, "dice": 0.12}})
    assert "NOT trained enough" in model_quality_note(poor) and "0.120" in model_quality_note(poor)
    assert model_quality_note(ModelCard(classes=(), metrics={"holdout": {"cases": 20, "dice": 0.83}})) == ""


def test_demo_default_seed_is_unseen_and_seen_seeds_are_named():
    from SwinX2SLib.checkpoints import ModelCard, read_model_card
    from SwinX2SLib.cli.demo import DEMO_SEED, seed_seen_in_training
    from SwinX2SLib.inference import DEFAULT_MODEL_DIR
    from SwinX2SLib.training.config import config_from_dict

    recipe = config_from_dict({"preset": "default_model"}).to_dict()
    card = read_model_card(DEFAULT_MODEL_DIR)
    for candidate in (card, ModelCard(classes=(), training={"config": recipe})):
        assert seed_seen_in_training(candidate, DEMO_SEED) == ""
    trained = ModelCard(classes=(), training={"config": recipe})
    data = recipe["data"]
    assert "training phantoms (seeds 0..299)" in seed_seen_in_training(trained, data["pool_size"] - 1)
    assert "validation phantoms" in seed_seen_in_training(trained, data["val_seed_start"])
    assert seed_seen_in_training(trained, data["holdout_seed_start"]) == ""  # scored on, never trained on


def test_demo_without_default_model_says_so(tmp_path, capsys, monkeypatch):
    import SwinX2SLib.inference

    monkeypatch.setattr(SwinX2SLib.inference, "DEFAULT_MODEL_DIR", tmp_path / "models" / "default")
    assert main(["demo", "-o", str(tmp_path / "demo"), "--progress", "none"]) == 2
    assert "no trained default model is present" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()
