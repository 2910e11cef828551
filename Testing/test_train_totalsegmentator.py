"""A user's path to a real model: the TotalSegmentator download layout -> ``swinx2s train --preset paper`` -> export ->
``swinx2s reconstruct`` and the Slicer module's model list, end to end through the real command line.

The data set is written as TotalSegmentator ships it (``<case>/ct.nii.gz``, ``<case>/segmentations/<structure>.nii.gz``
with its v2 structure names, a ``;``-separated ``meta.csv`` with the ``split`` column), from three small phantoms.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SwinX2SLib import catalogue
from SwinX2SLib.conventions import sitk_from_array
from SwinX2SLib.phantom import make_phantom
from SwinX2SLib.training.data import case_split, read_case_labels

SPLITS = {"s0000": "train", "s0001": "val", "s0002": "test"}
SHAPE = (32, 32, 64)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "SwinX2SLib.cli", *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def totalsegmentator_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three phantom cases in the TotalSegmentator v2 download layout (and one structure the catalogue lacks)."""
    root = tmp_path_factory.mktemp("Totalsegmentator_dataset")
    for seed, name in enumerate(SPLITS):
        phantom = make_phantom(seed=seed, shape=SHAPE)
        masks = root / name / "segmentations"
        masks.mkdir(parents=True)
        sitk.WriteImage(sitk_from_array(phantom.ct, phantom.grid), str(root / name / "ct.nii.gz"))
        for cls in catalogue.CLASSES:
            if not cls.totalseg_names:  # vertebrae_L6: no TotalSegmentator structure
                continue
            mask = (phantom.labels == cls.id).astype(np.uint8)
            sitk.WriteImage(sitk_from_array(mask, phantom.grid), str(masks / f"{cls.totalseg_names[0]}.nii.gz"))
        sitk.WriteImage(sitk_from_array(np.zeros(SHAPE, np.uint8), phantom.grid), str(masks / "liver.nii.gz"))
    rows = [f"{name};{60 + i};m;A;ct;{split}" for i, (name, split) in enumerate(SPLITS.items())]
    (root / "meta.csv").write_text("image_id;age;gender;institute;study_type;split\n" + "\n".join(rows) + "\n")
    return root


def test_meta_csv_splits_and_masks_become_catalogue_labels(totalsegmentator_folder: Path) -> None:
    names = sorted(SPLITS)
    assert case_split(totalsegmentator_folder, names) == {"train": ["s0000"], "val": ["s0001"], "test": ["s0002"]}
    labels = sitk.GetArrayFromImage(read_case_labels(totalsegmentator_folder / "s0000", "totalsegmentator"))
    expected = make_phantom(seed=0, shape=SHAPE).labels
    expected[expected == catalogue.by_name("vertebrae_L6").id] = 0
    np.testing.assert_array_equal(labels.transpose(2, 1, 0), expected)  # the masks merged back, liver ignored


def test_paper_preset_trains_exports_and_reconstructs_from_the_download_layout(
        totalsegmentator_folder: Path, tmp_path: Path) -> None:
    from SwinX2SLib.slicer_support import list_models

    models_dir = tmp_path / "models"
    run = models_dir / "runs" / "paper_totalsegmentator"
    overrides = [f"data.root={totalsegmentator_folder}", "model.variant=test", f"model.img_size={list(SHAPE)}",
                 "optim.epochs=1", "optim.steps_per_epoch=2", "optim.warmup_epochs=0", "schedule.threads=1"]
    trained = _cli("train", "--preset", "paper", "-o", str(run), *[a for o in overrides for a in ("--set", o)])
    assert trained.returncode == 0, trained.stderr
    config = (run / "config.yaml").read_text()
    assert "source: ct" in config and "preset: paper" in config  # "auto" resolved to the CT-folder reader
    assert (run / "model" / "model.safetensors").is_file()  # validation on the 'val' case improved once

    exported = tmp_path / "exported"
    done = _cli("train", "--export", str(run), "-o", str(exported), "--holdout")
    assert done.returncode == 0, done.stderr
    card = json.loads((exported / "model.json").read_text())
    assert card["metrics"]["holdout"]["cases"] == 1 and "meta.csv" in card["metrics"]["holdout_cases"]
    assert card["img_size"] == list(SHAPE) and card["training"]["preset"] == "paper"

    out = tmp_path / "reconstruction"
    ct = totalsegmentator_folder / "s0002" / "ct.nii.gz"
    done = _cli("reconstruct", "--ct", str(ct), "--model", str(exported), "-o", str(out))
    assert done.returncode == 0, done.stderr
    labels = sitk.ReadImage(str(out / "segmentation.nii.gz"))
    assert labels.GetSize() == SHAPE and labels.GetPixelID() == sitk.sitkUInt8
    on_ct = sitk.ReadImage(str(out / "segmentation_ct.nii.gz"))
    assert on_ct.GetSize() == sitk.ReadImage(str(ct)).GetSize()

    listed = {Path(entry.model_argument).resolve(): entry.kind for entry in list_models(models_dir)}
    assert listed[(run / "model").resolve()] == "finetuned"  # the Slicer module offers the run's model
