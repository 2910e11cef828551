"""Training engine: configuration, augmentation, data readers, trainer behaviour (stop, resume, overfit), CLI."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from SwinX2SLib import catalogue
from SwinX2SLib.conventions import ModelGrid, sitk_from_array
from SwinX2SLib.errors import InputError
from SwinX2SLib.precision import cpu_has_native_bfloat16
from SwinX2SLib.radiograph.intensity import N_QUANTILES
from SwinX2SLib.training.augment import AugmentParams, augment_sample, sample_params
from SwinX2SLib.training.config import (
    PRESETS,
    AugmentConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    load_config,
    save_config,
)
from SwinX2SLib.training.data import (
    PublishedCases,
    SampleCache,
    convert_labels,
    labels_from_mask_folder,
    read_case_labels,
    split_binary_ribs,
)
from SwinX2SLib.training.trainer import epoch_indices, lr_factor, parameter_groups

REPO_ROOT = Path(__file__).resolve().parents[1]
FEMUR_LEFT = catalogue.by_name("femur_left").id
FEMUR_RIGHT = catalogue.by_name("femur_right").id


# ------------------------------------------------------------------------------------------------ configuration
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_round_trip(tmp_path: Path, suffix: str) -> None:
    config = apply_overrides(config_from_dict({"preset": "default_model"}), ["optim.lr=3e-4", "data.pool_size=7"])
    path = save_config(config, tmp_path / f"cfg{suffix}")
    again = load_config(path)
    assert again == config
    assert again.optim.lr == 3e-4 and again.data.pool_size == 7
    assert again.model.img_size == (96, 96, 128) and isinstance(again.augment.zoom, tuple)


def test_config_presets_and_merging(tmp_path: Path) -> None:
    for name in PRESETS:
        assert config_from_dict({"preset": name, "data": {"root": str(tmp_path)}}).preset == name
    paper = config_from_dict({"preset": "paper", "data": {"root": str(tmp_path)}})
    assert paper.data.source == "ct"  # "auto": no data_list.json in the folder
    (tmp_path / "data_list.json").write_text("{}")
    assert config_from_dict({"preset": "paper", "data": {"root": str(tmp_path)}}).data.source == "published"
    with pytest.raises(InputError, match="no such folder"):
        config_from_dict({"preset": "paper", "data": {"root": str(tmp_path / "missing")}})
    assert (paper.optim.lr, paper.optim.weight_decay, paper.optim.epochs, paper.optim.warmup_epochs) == (
        3e-5, 0.5, 250, 20)
    # a file states only what differs; the rest of the section comes from the preset
    path = tmp_path / "ft.yaml"
    path.write_text("preset: finetune\ndata: {root: /data/cts}\nfinetune: {freeze_encoder: true}\n")
    ft = load_config(path)
    assert ft.finetune.freeze_encoder and ft.data.root == "/data/cts" and ft.optim.lr == 1e-5
    committed = load_config(REPO_ROOT / "configs" / "default_model.yaml")
    assert committed.data.source == "phantom" and committed.augment.rotate180_prob == 0.0
    assert committed == config_from_dict({"preset": "default_model"})  # the file spells the preset out


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"optim": {"learning_rate": 1}}, "unknown keys ['learning_rate'] in section 'optim'"),
        ({"optimiser": {}}, "unknown configuration keys ['optimiser']"),
        ({"preset": "nope"}, "unknown training preset 'nope'"),
        ({"data": {"source": "published"}}, "data.root is required"),
        ({"optim": {"lr": -1.0}}, "optim.lr must be positive"),
    ],
)
def test_config_errors_name_the_problem(tmp_path: Path, mapping: dict, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(mapping))
    with pytest.raises(InputError, match=re.escape(message)) as info:
        load_config(path)
    assert info.value.path == str(path)


def test_lr_schedule_warmup_then_cosine() -> None:
    factors = [lr_factor(s, warmup_steps=10, total_steps=110, min_factor=0.1) for s in range(110)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert np.all(np.diff(factors[:10]) > 0) and np.all(np.diff(factors[10:]) < 0)
    assert factors[60] == pytest.approx(0.1 + 0.9 * 0.5)  # half way through the cosine
    assert lr_factor(110, 10, 110, 0.1) == pytest.approx(0.1)


def test_no_weight_decay_on_norms_biases_and_position_tables() -> None:
    from SwinX2SLib.network import create_model

    model = create_model("test", img_size=(32, 32, 64), num_classes=5)
    decay, no_decay = parameter_groups(model, 0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay_names = [names[id(p)] for p in no_decay["params"]]
    decay_names = [names[id(p)] for p in decay["params"]]
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert any("relative_position_bias_table" in n for n in no_decay_names)
    assert any("norm" in n for n in no_decay_names) and any(n.endswith(".bias") for n in no_decay_names)
    assert not any("relative_position" in n or n.endswith(".bias") for n in decay_names)
    assert all(p.ndim > 1 for p in decay["params"]) and len(decay_names) + len(no_decay_names) == len(names)


def test_epoch_order_is_a_deterministic_partition_across_ranks() -> None:
    ranks = [epoch_indices(10, epoch=3, seed=1, rank=r, world_size=2, count=5) for r in range(2)]
    assert sorted(ranks[0] + ranks[1]) == list(range(10))
    assert ranks[0] == epoch_indices(10, epoch=3, seed=1, rank=0, world_size=2, count=5)
    assert ranks[0] != epoch_indices(10, epoch=4, seed=1, rank=0, world_size=2, count=5)
    assert len(epoch_indices(3, 0, 0, 0, 1, count=8)) == 8  # more steps than samples: further permutations


# ------------------------------------------------------------------------------------------------- augmentation
def _blob_volume(shape: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """A left femur-like bar at high x and a right one at low x, plus a spine-like bar at low y (posterior)."""
    label = torch.zeros(shape, dtype=torch.long)
    x, y, z = shape
    label[int(0.6 * x):int(0.9 * x), int(0.35 * y):int(0.75 * y), int(0.1 * z):int(0.45 * z)] = FEMUR_LEFT
    label[int(0.1 * x):int(0.4 * x), int(0.35 * y):int(0.75 * y), int(0.1 * z):int(0.45 * z)] = FEMUR_RIGHT
    label[int(0.4 * x):int(0.6 * x), int(0.05 * y):int(0.3 * y), int(0.3 * z):int(0.9 * z)] = 1
    bone = (label > 0).float()
    return label, bone


def _projections(bone: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return bone.sum(1)[None], bone.sum(0)[None]  # coronal (1, X, Z): along y; sagittal (1, Y, Z): along x


def test_augmented_images_are_projections_of_the_augmented_label() -> None:
    shape = (64, 56, 64)
    label, bone = _blob_volume(shape)
    coronal, sagittal = _projections(bone)
    cases = {
        "shift": AugmentParams(shift=(4.0, 2.0, 5.0)),
        "zoom": AugmentParams(zoom=1.15),
        "rotate": AugmentParams(angle_rad=math.radians(5.0)),
        "all": AugmentParams(zoom=0.9, angle_rad=math.radians(-4.0), shift=(2.0, 3.0, -4.0), rotate180=True),
    }
    for name, params in cases.items():
        cor, sag, lab = augment_sample(coronal, sagittal, label, params)
        assert cor.shape == coronal.shape and sag.shape == sagittal.shape and lab.dtype == label.dtype
        cor_true, sag_true = _projections((lab > 0).float())
        # zoom changes the number of voxels a ray crosses, a physical DRR (HU*mm) does not: compare in voxels
        cor_err = (cor * params.zoom - cor_true).abs().sum() / cor_true.sum()
        sag_err = (sag * params.zoom - sag_true).abs().sum() / sag_true.sum()
        moved = (cor - coronal).abs().sum() / coronal.sum()
        assert cor_err < 0.1, name
        assert cor_err < 0.5 * moved, name  # the images follow the label, not just stay close to the original
        # the sagittal view ignores the small coronal-plane rotation (see augment's docstring): a larger, bounded error
        assert sag_err < (0.08 if name in ("shift", "zoom") else 0.15), name
        assert set(torch.unique(lab).tolist()) <= {0, 1, FEMUR_LEFT, FEMUR_RIGHT}
    exact = augment_sample(coronal, sagittal, label, cases["shift"])
    assert torch.allclose(_projections((exact[2] > 0).float())[0], exact[0], atol=1e-4)  # integer shifts: exact


def test_rotation_about_si_axis_keeps_left_and_right_ids() -> None:
    shape = (32, 24, 40)
    label, bone = _blob_volume(shape)
    coronal, sagittal = _projections(bone)
    cor, sag, lab = augment_sample(coronal, sagittal, label, AugmentParams(rotate180=True))
    assert torch.equal(lab, torch.flip(label, (0, 1)))
    assert torch.equal(cor, torch.flip(coronal, (-2,))) and torch.equal(sag, torch.flip(sagittal, (-2,)))
    # the patient's left femur keeps its id and now lies at low x; the spine moved to the anterior half (high y)
    left_x = torch.nonzero(lab == FEMUR_LEFT)[:, 0].float().mean()
    right_x = torch.nonzero(lab == FEMUR_RIGHT)[:, 0].float().mean()
    spine_y = torch.nonzero(lab == 1)[:, 1].float().mean()
    assert left_x < shape[0] / 2 < right_x and spine_y > shape[1] / 2
    # a rotation is not a mirror: left stays to the right-hand side of the spine when seen from the front
    # (x-y orientation preserved: det of the map (x, y) -> (-x, -y) is +1)
    assert torch.bincount(lab.flatten(), minlength=55).tolist() == torch.bincount(label.flatten(),
                                                                                   minlength=55).tolist()


def test_intensity_augmentation_and_parameter_draws() -> None:
    image = torch.full((1, 8, 8), 0.5)
    cor, sag, _ = augment_sample(image, image.clone(), torch.zeros(8, 8, 8, dtype=torch.long),
                                 AugmentParams(intensity=(0.1, -0.05)))
    assert torch.allclose(cor, torch.full_like(cor, 0.5 * 1.1 - 0.05)) and torch.equal(cor, sag)
    config = AugmentConfig(prob=1.0, intensity_prob=1.0, rotate180_prob=0.5)
    draws = [sample_params(np.random.default_rng(seed), config, (64, 64, 96)) for seed in range(200)]
    assert all(0.9 <= d.zoom <= 1.1 and abs(d.angle_rad) <= math.radians(5) for d in draws)
    assert all(abs(d.shift[0]) <= 0.05 * 64 and abs(d.shift[2]) <= 0.02 * 96 for d in draws)
    assert 60 < sum(d.rotate180 for d in draws) < 140
    assert sample_params(np.random.default_rng(3), config, (64, 64, 96)) == draws[3]  # reproducible


# ------------------------------------------------------------------------------------------------- data readers
def _write(array_xyz: np.ndarray, path: Path, grid: ModelGrid) -> Path:
    sitk.WriteImage(sitk_from_array(array_xyz, grid), str(path))
    return path


def test_published_layout_reader(tmp_path: Path) -> None:
    grid = ModelGrid((16, 16, 24), 2.0, (0.0, 0.0, 0.0))
    rng = np.random.default_rng(0)
    cor = rng.integers(0, 256, (16, 24)).astype(np.uint8)
    sag = rng.integers(0, 256, (16, 24)).astype(np.uint8)
    label = np.zeros(grid.shape, np.uint8)
    label[2:6, 3:9, 4:10] = 2  # pelvic subset: 2 = hip_right
    _write(np.repeat(cor[:, None, :], 16, axis=1), tmp_path / "a_input_cor.nii.gz", grid)
    _write(np.repeat(sag[None, :, :], 16, axis=0), tmp_path / "a_input_sag.nii.gz", grid)
    _write(label, tmp_path / "a_label.nii.gz", grid)
    entry = {"image": ["a_input_cor.nii.gz", "a_input_sag.nii.gz"], "label": "a_label.nii.gz"}
    (tmp_path / "data_list.json").write_text(json.dumps({"training": [entry], "validation": [], "test": []}))
    cases = PublishedCases(tmp_path, "training", subset_task="pelvic", cache=SampleCache(tmp_path / "cache"))
    sample = cases.load(0)
    cached = cases.load(0)  # from the cache this time
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1 and np.array_equal(cached.label, sample.label)
    assert sample.coronal.shape == (1, 16, 24) and sample.sagittal.shape == (1, 16, 24)
    np.testing.assert_allclose(sample.coronal[0], cor / 255.0, atol=1e-6)
    np.testing.assert_allclose(sample.sagittal[0], sag / 255.0, atol=1e-6)
    assert set(np.unique(sample.label)) == {0, catalogue.by_name("hip_right").id}
    assert sample.spacing_mm == 2.0
    with pytest.raises(InputError, match="has no 'testing' list"):
        PublishedCases(tmp_path, "testing")


def test_published_reader_on_official_sample(official_samples: Path, tmp_path: Path) -> None:
    folder = official_samples / "TotalSegAll_s0308" / "Totalsegmentator_all"
    files = sorted(folder.iterdir())
    cor = next(f for f in files if f.name.endswith("_input_cor.nii.gz"))
    sag = next(f for f in files if f.name.endswith("_input_sag.nii.gz"))
    lab = next(f for f in files if f.name.endswith("_label.nii.gz"))
    entry = {"image": [str(cor), str(sag)], "label": str(lab)}  # absolute paths are allowed
    (tmp_path / "data_list.json").write_text(json.dumps({"training": [entry]}))
    sample = PublishedCases(tmp_path, "training").load(0)
    assert sample.coronal.shape == (1, 128, 160) and sample.label.shape == (128, 128, 160)
    femur_left_x = np.nonzero(sample.label == FEMUR_LEFT)[0].mean()
    femur_right_x = np.nonzero(sample.label == FEMUR_RIGHT)[0].mean()
    assert femur_left_x > femur_right_x  # x grows towards the patient's left
    assert sample.coronal.min() >= 0.0 and sample.coronal.max() <= 1.0


def _ct_case(folder: Path, label_xyz: np.ndarray, grid: ModelGrid) -> None:
    folder.mkdir(parents=True)
    _write(np.where(label_xyz > 0, 1000.0, -1000.0).astype(np.float32), folder / "ct.nii.gz", grid)


def test_totalsegmentator_mask_folder(tmp_path: Path) -> None:
    grid = ModelGrid((12, 12, 16), 3.0, (0.0, 0.0, 0.0))
    masks = tmp_path / "case" / "segmentations"
    masks.mkdir(parents=True)
    expected = np.zeros(grid.shape, np.uint8)
    for name, region in {"femur_left": np.s_[7:10, 4:8, 1:6], "vertebrae_S1": np.s_[5:7, 2:4, 8:10],
                         "vertebrae_L5": np.s_[5:7, 2:4, 11:13], "liver": np.s_[1:4, 6:10, 10:14]}.items():
        mask = np.zeros(grid.shape, np.uint8)
        mask[region] = 1
        _write(mask, masks / f"{name}.nii.gz", grid)
        class_id = catalogue.totalseg_name_to_id(name)
        if class_id is not None:
            expected[region] = class_id
    labels = sitk.GetArrayFromImage(labels_from_mask_folder(masks)).transpose(2, 1, 0)
    np.testing.assert_array_equal(labels, expected)
    assert set(np.unique(labels)) == {0, FEMUR_LEFT, catalogue.by_name("sacrum").id,
                                      catalogue.by_name("vertebrae_L5").id}  # liver ignored, S1 -> sacrum
    _write(np.zeros(grid.shape, np.float32), tmp_path / "case" / "ct.nii.gz", grid)
    read = read_case_labels(tmp_path / "case", "totalsegmentator")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read).transpose(2, 1, 0), expected)


def test_dataset_label_conventions() -> None:
    pelvic = convert_labels(np.array([0, 1, 2, 3, 4]), "ctpelvic1k")
    assert [catalogue.by_id(int(i)).name if i else "bg" for i in pelvic] == [
        "bg", "sacrum", "hip_right", "hip_left", "bg"]
    verse = convert_labels(np.array([1, 7, 8, 19, 20, 24, 25, 26, 27, 28]), "verse")
    assert [catalogue.by_id(int(i)).name if i else "bg" for i in verse] == [
        "vertebrae_C1", "vertebrae_C7", "vertebrae_T1", "vertebrae_T12", "vertebrae_L1", "vertebrae_L5",
        "vertebrae_L6", "sacrum", "bg", "bg"]
    np.testing.assert_array_equal(convert_labels(np.array([75, 76, 77, 78]), "totalsegmentator"),
                                  [FEMUR_LEFT, FEMUR_RIGHT, catalogue.by_name("hip_left").id,
                                   catalogue.by_name("hip_right").id])
    with pytest.raises(InputError, match="cannot be converted value by value"):
        convert_labels(np.zeros(3, int), "ribseg")


def test_ribseg_binary_ribs_split_into_24(tmp_path: Path) -> None:
    grid = ModelGrid((40, 20, 60), 4.0, (0.0, 0.0, 0.0))
    mask = np.zeros(grid.shape, np.uint8)
    heights = {}
    for k in range(12):  # rib k+1 (k=0 highest) on both sides, a little noise blob that must be dropped
        z = 56 - 4 * k
        mask[24:36, 5:15, z:z + 2] = 1  # patient left: high x
        mask[4:16, 5:15, z:z + 2] = 1  # patient right: low x
        heights[k] = z
    mask[20, 10, 2] = 1  # noise: one voxel
    path = _write(mask, tmp_path / "ribs.nii.gz", grid)
    labels = sitk.GetArrayFromImage(split_binary_ribs(sitk.ReadImage(str(path)))).transpose(2, 1, 0)
    for k, z in heights.items():
        assert set(np.unique(labels[24:36, 5:15, z:z + 2])) == {catalogue.by_name(f"rib_left_{k + 1}").id}
        assert set(np.unique(labels[4:16, 5:15, z:z + 2])) == {catalogue.by_name(f"rib_right_{k + 1}").id}
    assert labels[20, 10, 2] == 0
    assert len(np.unique(labels)) == 25
    # the same through a case folder with the RibSeg convention
    case = tmp_path / "case"
    _ct_case(case, mask, grid)
    _write(mask, case / "label.nii.gz", grid)
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(read_case_labels(case, "ribseg")).transpose(2, 1, 0), labels)


def test_train_config_defaults_are_the_paper_recipe() -> None:
    config = TrainConfig()
    assert (config.optim.lr, config.optim.weight_decay, config.optim.grad_clip) == (3e-5, 0.5, 1.0)
    assert config.model.img_size == (128, 128, 160) and config.model.num_classes == 55


# ------------------------------------------------------------------------------------------------------ trainer
def _smoke(tmp_path: Path, cache: Path, **sections: dict) -> TrainConfig:
    """The ``smoke`` preset (test variant, 32 x 32 x 64, two phantoms) with a shared phantom cache."""
    mapping: dict = {"preset": "smoke", "data": {"cache_dir": str(cache)}, "schedule": {"deterministic": True}}
    for key, values in sections.items():
        mapping[key] = {**mapping.get(key, {}), **values}
    return config_from_dict(mapping)


@pytest.fixture(scope="module")
def phantom_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("phantom_cache")


def _weights(run_dir: Path, name: str = "last") -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / f"{name}.pt", map_location="cpu", weights_only=True)["model"]


def test_training_run_writes_logs_checkpoints_and_model(tmp_path: Path, phantom_cache: Path) -> None:
    from SwinX2SLib.checkpoints import load_model_dir
    from SwinX2SLib.training.logging import read_log
    from SwinX2SLib.training.trainer import Trainer

    records: list[dict] = []
    run = tmp_path / "run"
    shipped = tmp_path / "shipped"
    config = _smoke(tmp_path, phantom_cache, schedule={"export_dir": str(shipped), "export_holdout": True})
    result = Trainer(config, run, callback=records.append).fit()
    assert (result.stop_reason, result.epoch, result.step) == ("completed", 2, 4)
    for name in ("config.yaml", "log.jsonl", "epochs.csv", "curves.png", "checkpoints/last.pt", "checkpoints/best.pt",
                 "model/model.json", "model/model.safetensors"):
        assert (run / name).is_file(), name
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = read_log(run)
    steps = [r for r in log if r["event"] == "step"]
    epochs = [r for r in log if r["event"] == "epoch"]
    assert [r["step"] for r in steps] == [1, 2, 3, 4] and len(epochs) == 2 and log[-1]["event"] == "stop"
    assert {"loss", "loss_terms", "lr", "samples_per_s", "eta_s"} <= set(steps[0])
    assert {"supervised", "mutual"} == set(steps[0]["loss_terms"]) and steps[0]["samples_per_s"] > 0
    assert {"dice", "identification_rate", "localization_error_mm", "dice_femur"} <= set(epochs[-1]["val"])
    assert [r["event"] for r in records] == ["step", "step", "epoch", "step", "step", "epoch"]
    assert (run / "epochs.csv").read_text().splitlines()[0].startswith("epoch,step,train_loss,lr")
    assert load_config(run / "config.yaml") == result_config(run)
    model, card = load_model_dir(run / "model")
    assert card.training["step"] >= 2 and card.metrics["dice"] is not None and card.img_size == (32, 32, 64)
    quantiles = card.preprocessing["reference_quantiles"]  # the training images' appearance, for radiographs
    assert len(quantiles) == N_QUANTILES and quantiles == sorted(quantiles) and 0 <= quantiles[0] < quantiles[-1]
    best = _weights(run, "best")
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())
    shipped_model, shipped_card = load_model_dir(shipped)  # written on improvement, with held-out metrics
    assert shipped_card.metrics["holdout"]["cases"] == 2 and shipped_card.training["step"] == card.training["step"]
    assert shipped_card.preprocessing["reference_quantiles"] == quantiles
    assert all(torch.equal(best[k], v) for k, v in shipped_model.state_dict().items())


def result_config(run: Path) -> TrainConfig:
    return config_from_dict(torch.load(run / "checkpoints" / "last.pt", weights_only=True)["config"])


def test_loss_falls_when_fitting_one_phantom(tmp_path: Path, phantom_cache: Path) -> None:
    from SwinX2SLib.training.logging import read_log
    from SwinX2SLib.training.trainer import Trainer

    # a random output layer (no class prior): the first steps then visibly learn the class frequencies
    config = _smoke(tmp_path, phantom_cache, data={"pool_size": 1}, model={"prior_bias_samples": 0},
                    optim={"epochs": 1, "steps_per_epoch": 14, "lr": 5e-3, "min_lr": 5e-3},
                    schedule={"val_every": 0, "export_best": False})
    Trainer(config, tmp_path / "run").fit()
    losses = [r["loss"] for r in read_log(tmp_path / "run") if r["event"] == "step"]
    assert np.mean(losses[-4:]) < 0.85 * np.mean(losses[:4]), losses


@pytest.mark.skipif(not cpu_has_native_bfloat16(), reason="this CPU has no native bfloat16 (AVX512_BF16 / AMX)")
def test_fast_cpu_options_train_the_same_model_as_float32(tmp_path: Path, phantom_cache: Path) -> None:
    """The fast CPU options (bfloat16 autocast, channels-last convolutions, both, also with deterministic algorithms)
    train the same model as float32.

    Same seed and data, one thread: each run's losses stay within 2 % of plain float32 step by step and fall, the
    kernels are channels-last while training with that option (the output head excepted), and every export is an
    ordinary contiguous float32 model. The smoke network's deepest level is 2 x 2 x 4 voxels, where PyTorch 2.14's
    bfloat16 kernel gradients are inf: the convolution check must catch them for bfloat16 to train at all.
    """
    from SwinX2SLib.checkpoints import load_model_dir
    from SwinX2SLib.training.logging import read_log
    from SwinX2SLib.training.trainer import Trainer

    losses = {}
    for name, precision, channels_last, deterministic in (
            ("plain", "float32", False, False), ("channels_last", "float32", True, False),
            ("bfloat16", "bfloat16", False, False), ("both", "bfloat16", True, False),
            ("deterministic", "bfloat16", True, True)):
        config = _smoke(tmp_path, phantom_cache, data={"pool_size": 1}, model={"prior_bias_samples": 0},
                        optim={"epochs": 1, "steps_per_epoch": 12, "lr": 5e-3, "min_lr": 5e-3,
                               "precision": precision, "channels_last": channels_last},
                        schedule={"val_every": 1, "deterministic": deterministic, "threads": 1})
        trainer = Trainer(config, tmp_path / name)
        trainer.fit()
        log = read_log(tmp_path / name)
        plan = [r for r in log if r["event"] == "convolutions"]
        assert len(plan) == (name != "plain") and all(r["channels_last"] == channels_last for r in plan)
        kernels = {n: m.weight for n, m in trainer.model.named_modules() if isinstance(m, torch.nn.Conv3d)}
        layouts = {k.is_contiguous(memory_format=torch.channels_last_3d) for n, k in kernels.items()
                   if k.shape[1] > 1 and k.shape[2:].numel() > 1}  # (one channel or 1x1x1: both layouts at once)
        assert layouts == {channels_last}
        if channels_last:
            assert plan[0]["heads"] and all(kernels[n].is_contiguous() for n in plan[0]["heads"])
        assert not any(r["event"] == "skipped_step" for r in log)
        losses[name] = np.array([r["loss"] for r in log if r["event"] == "step"])
        model, card = load_model_dir(tmp_path / name / "model")
        assert card.training["config"]["optim"]["precision"] == precision
        assert all(v.dtype == torch.float32 and v.is_contiguous() for v in model.state_dict().values()
                   if v.is_floating_point())
    for name in ("channels_last", "bfloat16", "both", "deterministic"):
        assert np.isfinite(losses[name]).all() and losses[name][-3:].mean() < 0.9 * losses[name][:3].mean()
        np.testing.assert_allclose(losses[name], losses["plain"], rtol=0.02, err_msg=name)


@pytest.mark.skipif(not cpu_has_native_bfloat16(), reason="this CPU has no native bfloat16 (AVX512_BF16 / AMX)")
def test_checked_convolutions_give_float32_gradients_in_bfloat16() -> None:
    """After :func:`prepare_convolutions`, a bfloat16 forward and backward pass of the smoke network gives finite
    gradients close to float32's, with the same state dict; a deep copy of the model behaves the same."""
    import copy

    from SwinX2SLib.loss import SwinX2SLoss
    from SwinX2SLib.network import create_model, view_logits
    from SwinX2SLib.training.convolutions import prepare_convolutions

    torch.manual_seed(0)
    model = create_model("test", img_size=(32, 32, 64), in_channels=1, num_classes=55)
    reference = copy.deepcopy(model)
    example = (torch.rand(1, 1, 32, 64), torch.rand(1, 1, 32, 64))
    label = torch.randint(0, 55, (1, 1, 32, 32, 64))
    plan = prepare_convolutions(model, example, dtype=torch.bfloat16, channels_last=True)
    state, want_state = model.state_dict(), reference.state_dict()
    assert state.keys() == want_state.keys() and all(torch.equal(state[k], v) for k, v in want_state.items())
    assert plan.checked >= 20 and plan.heads and set(plan.float32) <= set(dict(model.named_modules()))

    def gradients(net: torch.nn.Module, half: bool) -> torch.Tensor:
        net.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=half):
            p, q = view_logits(net(*example))
        SwinX2SLoss().terms(p.float(), q.float(), label).total.backward()
        return torch.cat([param.grad.flatten() for param in net.parameters()])

    want = gradients(reference, half=False)
    for net in (model, copy.deepcopy(model)):
        got = gradients(net, half=True)
        assert torch.isfinite(got).all()
        assert float((got - want).norm() / want.norm()) < 0.1


def test_steps_with_non_finite_gradients_are_skipped_and_a_run_of_them_stops(tmp_path: Path,
                                                                            phantom_cache: Path) -> None:
    from SwinX2SLib.training.logging import read_log
    from SwinX2SLib.training.trainer import MAX_SKIPPED_STEPS, Trainer

    poisoned: dict[str, torch.Tensor] = {}

    def poison(record: dict) -> None:  # after the first step, every gradient is infinite
        if not poisoned:
            for name, param in trainer.model.named_parameters():
                poisoned[name] = param.detach().clone()
                param.register_hook(lambda g: torch.full_like(g, math.inf))

    # (a checkpoint every step: a new run folder that fails before its first checkpoint is removed)
    config = _smoke(tmp_path, phantom_cache, optim={"epochs": 1, "steps_per_epoch": 20},
                    schedule={"val_every": 0, "export_best": False, "checkpoint_every_steps": 1})
    trainer = Trainer(config, tmp_path / "run", callback=poison)
    with pytest.raises(InputError, match=f"not finite in {MAX_SKIPPED_STEPS} steps in a row"):
        trainer.fit()
    log = read_log(tmp_path / "run")
    skipped = [r["step"] for r in log if r["event"] == "skipped_step"]
    assert skipped == list(range(2, 2 + MAX_SKIPPED_STEPS))
    assert log[-1] == {**log[-1], "event": "stop", "reason": "non_finite_gradients"}
    assert all(torch.equal(p, poisoned[n]) for n, p in trainer.model.named_parameters())  # skipped: untouched
    assert all(torch.equal(v, poisoned[k]) for k, v in _weights(tmp_path / "run").items() if k in poisoned)


def test_bfloat16_falls_back_to_float32_with_a_warning_where_the_cpu_lacks_it(
        tmp_path: Path, phantom_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from SwinX2SLib import precision
    from SwinX2SLib.training.logging import read_log
    from SwinX2SLib.training.trainer import Trainer

    monkeypatch.setattr(precision, "cpu_has_native_bfloat16", lambda: False)
    dtypes: list[torch.dtype] = []
    monkeypatch.setattr(Trainer, "_step", lambda self, net, batch, *rest: dtypes.append(rest[4]) or (1.0, {}, True))
    config = _smoke(tmp_path, phantom_cache, optim={"epochs": 1, "precision": "bfloat16"},
                    schedule={"val_every": 0, "export_best": False, "deterministic": False})
    Trainer(config, tmp_path / "run").fit()
    warnings = [r["message"] for r in read_log(tmp_path / "run") if r["event"] == "warning"]
    assert dtypes == [None, None] and len(warnings) == 1 and "training in float32" in warnings[0]


def test_precision_is_checked_in_the_configuration() -> None:
    assert config_from_dict({"optim": {"precision": "bfloat16"}}).optim.precision == "bfloat16"
    with pytest.raises(InputError, match="optim.precision must be float32 or bfloat16"):
        config_from_dict({"optim": {"precision": "float16"}})
    assert config_from_dict({"optim": {"precision": "bfloat16", "channels_last": True}}).optim.channels_last


def test_a_new_output_layer_starts_at_the_class_prior(tmp_path: Path, phantom_cache: Path) -> None:
    from SwinX2SLib.training.data import PhantomCases
    from SwinX2SLib.training.trainer import Trainer

    def head_bias(model: torch.nn.Module) -> torch.Tensor:
        return [m for m in model.modules() if isinstance(m, torch.nn.Conv3d) and m.out_channels == 55][-1].bias

    # a learning rate of 1e-12 leaves the weights as they were initialised
    sections = {"data": {"pool_size": 1}, "optim": {"epochs": 1, "steps_per_epoch": 1, "lr": 1e-12},
                "schedule": {"val_every": 0, "export_best": False}}
    trainer = Trainer(_smoke(tmp_path, phantom_cache, **sections), tmp_path / "prior")
    trainer.fit()
    sample = PhantomCases(0, 1, (32, 32, 64), 1, "published", cache=SampleCache(phantom_cache)).load(0)
    counts = torch.bincount(torch.from_numpy(sample.label.astype(np.int64)).flatten(), minlength=55).double() + 1
    bias = head_bias(trainer.model).detach().double()
    torch.testing.assert_close(bias, torch.log(counts / counts.sum()), atol=1e-6, rtol=0)
    with torch.no_grad():  # from the first step on, the network predicts mostly background, as the labels hold
        p, _ = trainer.model.eval()(torch.from_numpy(sample.coronal)[None], torch.from_numpy(sample.sagittal)[None])
    assert float(p.softmax(1)[0, 0].mean()) > 0.9
    plain = Trainer(_smoke(tmp_path, phantom_cache, model={"prior_bias_samples": 0}, **sections), tmp_path / "plain")
    plain.fit()
    random_bias = head_bias(plain.model).detach()
    assert float(random_bias[0] - random_bias[1:].mean()) < 1.0 < 5.0 < float(bias[0] - bias[1:].mean())


def test_resume_after_stop_gives_identical_weights(tmp_path: Path, phantom_cache: Path) -> None:
    from SwinX2SLib.training.logging import read_log
    from SwinX2SLib.training.trainer import Trainer

    config = _smoke(tmp_path, phantom_cache, optim={"epochs": 3, "steps_per_epoch": 2},
                    augment={"prob": 1.0, "intensity_prob": 0.5},  # augmentation draws must resume too
                    model={"options": {"drop_path_rate": 0.2}},  # and the dropout RNG stream
                    schedule={"val_every": 2, "export_best": False})
    straight = Trainer(config, tmp_path / "straight").fit()
    assert straight.step == 6

    stopped_run = tmp_path / "stopped"

    def stop_mid_epoch(record: dict) -> None:
        if record["event"] == "step" and record["step"] == 3:  # inside epoch 2
            (stopped_run / "STOP").touch()

    first = Trainer(config, stopped_run, callback=stop_mid_epoch).fit()
    assert (first.stop_reason, first.step) == ("stop_file", 3)
    state = torch.load(stopped_run / "checkpoints" / "last.pt", weights_only=True)
    assert (state["epoch"], state["step_in_epoch"], state["step"]) == (1, 1, 3)
    (stopped_run / "STOP").unlink()
    with pytest.raises(InputError, match="already holds a run"):
        Trainer(config, stopped_run).fit()
    resumed = Trainer(None, stopped_run, resume=True).fit()
    assert (resumed.stop_reason, resumed.step, resumed.epoch) == ("completed", 6, 3)
    a, b = _weights(tmp_path / "straight"), _weights(stopped_run)
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps_a = [r["loss"] for r in read_log(tmp_path / "straight") if r["event"] == "step"]
    steps_b = [r["loss"] for r in read_log(stopped_run) if r["event"] == "step"]
    assert steps_a == steps_b


def test_sigterm_stops_cleanly_with_a_final_checkpoint(tmp_path: Path, phantom_cache: Path) -> None:
    from SwinX2SLib.training.logging import read_log

    config = _smoke(tmp_path, phantom_cache, optim={"epochs": 50, "steps_per_epoch": 2})
    save_config(config, tmp_path / "cfg.yaml")
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "SwinX2S")}
    process = subprocess.Popen([sys.executable, "-m", "SwinX2SLib.cli", "train", "--config", str(tmp_path / "cfg.yaml"),
                                "-o", str(run), "--progress", "json"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 300
        while not any(r["event"] == "step" for r in read_log(run)):
            assert time.monotonic() < deadline and process.poll() is None, "training did not start"
            time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert events[-1]["event"] == "result" and events[-1]["stop_reason"] == "sigterm"
    assert any(e["event"] == "progress" and e["stage"] == "train" for e in events)
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == events[-1]["step"] >= 1 and read_log(run)[-1]["reason"] == "sigterm"
    assert not list((run / "checkpoints").glob(".tmp-*"))


def test_export_from_run_with_holdout_metrics(tmp_path: Path, phantom_cache: Path) -> None:
    from SwinX2SLib.checkpoints import load_model_dir
    from SwinX2SLib.cli import main

    run = tmp_path / "run"
    config = _smoke(tmp_path, phantom_cache, optim={"epochs": 1, "steps_per_epoch": 1})
    save_config(config, tmp_path / "cfg.yaml")
    assert main(["train", "--config", str(tmp_path / "cfg.yaml"), "-o", str(run), "--progress", "none"]) == 0
    assert main(["train", "--export", str(run), "-o", str(tmp_path / "model"), "--checkpoint", "last",
                 "--holdout", "--progress", "none"]) == 0
    _, card = load_model_dir(tmp_path / "model")
    assert card.metrics["holdout"]["cases"] == 2 and "dice_femur" in card.metrics["holdout"]
    assert card.training["command"] == f"swinx2s train --config {tmp_path / 'cfg.yaml'} -o {run}"
    assert card.training["data"].startswith("a pool of 2 phantoms")
    assert main(["train", "--export", str(run), "-o", str(tmp_path / "model"), "--progress", "none"]) == 2  # exists
    assert main(["train", "--resume", str(tmp_path / "nothing"), "--progress", "none"]) == 2


@pytest.mark.slow
def test_overfit_one_phantom_reaches_dice_08(tmp_path: Path, phantom_cache: Path) -> None:
    from SwinX2SLib.training.trainer import Trainer

    config = _smoke(tmp_path, phantom_cache, data={"pool_size": 1, "val_seed_start": 0, "val_count": 1},
                    model={"num_classes": 55}, optim={"epochs": 4, "steps_per_epoch": 50, "lr": 3e-3,
                                                      "warmup_epochs": 0.2, "min_lr": 3e-4},
                    schedule={"val_every": 4, "export_best": False})
    result = Trainer(config, tmp_path / "run").fit()
    assert result.last_validation["dice"] >= 0.8, result.last_validation


@pytest.mark.slow
def test_overfit_one_real_case_reaches_dice_08(tmp_path: Path, official_samples: Path) -> None:
    from SwinX2SLib.training.trainer import Trainer

    folder = official_samples / "CTPelvic1K_0243" / "swinx2sbase"
    files = sorted(folder.iterdir())
    entry = {"image": [str(next(f for f in files if f.name.endswith(s))) for s in ("_cor.nii.gz", "_sag.nii.gz")],
             "label": str(next(f for f in files if f.name.endswith("_label.nii.gz")))}
    (tmp_path / "data_list.json").write_text(json.dumps({"training": [entry], "validation": [entry]}))
    config = _smoke(tmp_path, tmp_path / "cache", data={"source": "published", "root": str(tmp_path),
                                                         "subset_task": "pelvic"},
                    model={"img_size": [32, 32, 64]},
                    optim={"epochs": 3, "steps_per_epoch": 40, "lr": 3e-3, "warmup_epochs": 0.2, "min_lr": 1e-4},
                    schedule={"val_every": 3, "export_best": False})
    result = Trainer(config, tmp_path / "run").fit()
    assert result.last_validation["dice"] >= 0.8, result.last_validation


def test_ct_cases_render_once_then_come_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from SwinX2SLib import drr
    from SwinX2SLib.training.data import CTCases, SampleCache

    grid = ModelGrid((24, 24, 32), 4.0, (0.0, 0.0, 0.0))
    label = np.zeros(grid.shape, np.uint8)
    label[14:20, 8:16, 4:14] = 3  # CTPelvic1K: 3 = left hip
    case = tmp_path / "data" / "case_a"
    _ct_case(case, label, grid)
    _write(label, case / "seg.nii.gz", grid)
    cache = SampleCache(tmp_path / "cache")
    cases = CTCases(tmp_path / "data", "ctpelvic1k", "published", (32, 32, 32), 1, cache)
    first = cases.load(0)
    assert first.coronal.shape == (1, 32, 32) and first.label.shape == (32, 32, 32)
    assert set(np.unique(first.label)) == {0, catalogue.by_name("hip_left").id}
    assert first.coronal.max() > 0.0 and len(list((tmp_path / "cache").glob("*.npz"))) == 1

    def no_rendering(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached case was rendered again")

    monkeypatch.setattr(drr, "render_model_inputs", no_rendering)
    again = cases.load(0, epoch=1)
    np.testing.assert_array_equal(again.coronal, first.coronal)
    np.testing.assert_array_equal(again.label, first.label)
    with pytest.raises(InputError, match="no case folders"):
        CTCases(tmp_path / "cache", "ctpelvic1k", "published", (32, 32, 32), 1, cache)


def test_endless_phantom_stream_never_repeats_a_seed() -> None:
    from SwinX2SLib.training.data import PhantomCases

    pool = PhantomCases(10, 4, (32, 32, 64), 1, "published")
    stream = PhantomCases(10, 4, (32, 32, 64), 1, "published", endless=True)
    assert [pool.seed(i, epoch=e) for e in range(2) for i in range(4)] == [10, 11, 12, 13] * 2
    seeds = [stream.seed(i, epoch=e) for e in range(3) for i in range(4)]
    assert len(set(seeds)) == 12 and seeds[:4] == [10, 11, 12, 13]


def test_finetune_from_a_model_directory_with_frozen_encoder(tmp_path: Path, phantom_cache: Path) -> None:
    from SwinX2SLib.checkpoints import load_model_dir
    from SwinX2SLib.training.trainer import Trainer

    base = _smoke(tmp_path, phantom_cache, optim={"epochs": 1, "steps_per_epoch": 1})
    Trainer(base, tmp_path / "base").fit()
    start, _ = load_model_dir(tmp_path / "base" / "model")
    tuned = _smoke(tmp_path, phantom_cache, optim={"epochs": 1, "steps_per_epoch": 2, "lr": 1e-2},
                   finetune={"init_from": str(tmp_path / "base" / "model"), "freeze_encoder": True},
                   schedule={"export_best": False, "val_every": 0})
    trainer = Trainer(tuned, tmp_path / "tuned")
    trainer.fit()
    after = trainer.model.state_dict()
    encoder = [k for k in after if k.startswith("encoder.")]
    others = [k for k in after if not k.startswith("encoder.") and after[k].is_floating_point()]
    assert encoder and all(torch.equal(after[k], start.state_dict()[k]) for k in encoder)
    assert any(not torch.equal(after[k], start.state_dict()[k]) for k in others)
    with pytest.raises(InputError, match="neither a model directory nor a checkpoint"):
        Trainer(config_from_dict({**tuned.to_dict(), "finetune": {"init_from": str(tmp_path / "none")}}),
                tmp_path / "bad").fit()


def test_early_stopping_after_validations_without_improvement(tmp_path: Path, phantom_cache: Path) -> None:
    from SwinX2SLib.training.trainer import Trainer

    # a learning rate of 1e-12 leaves the predictions, hence the validation Dice, unchanged: no improvement
    config = _smoke(tmp_path, phantom_cache, optim={"epochs": 5, "steps_per_epoch": 1, "lr": 1e-12},
                    schedule={"early_stop_patience": 1, "export_best": False})
    result = Trainer(config, tmp_path / "run").fit()
    assert (result.stop_reason, result.epoch, result.best_epoch) == ("early_stopping", 2, 1)
