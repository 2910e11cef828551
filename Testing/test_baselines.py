"""The paper's comparison models: published configurations (parameter counts), the two-view interface and layouts,
published checkpoints reproduced (test vectors made with the published code by
``tools/make_baseline_testvectors.py``), model directories and bad inputs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from SwinX2SLib.checkpoints import (
    ModelCard,
    class_names,
    convert_published_state_dict,
    load_model_dir,
    model_from_published,
    save_model_dir,
)
from SwinX2SLib.errors import ModelError
from SwinX2SLib.network import (
    ArchitectureConfig,
    create_model,
    get_variant,
    list_architectures,
    predict_labels,
    variant_name,
)
from SwinX2SLib.network.biplanar import views_as_volume

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "Testing" / "data" / "published_baselines"
TOLERANCE = 1e-4

# the figures: the published code's models at 128 x 128 x 160, 55 classes, one view per side
PUBLISHED_PARAMETERS = {
    "UNet": 1_309_103,
    "AttentionUnet": 1_479_299,
    "UNETR": 96_274_983,
    "SwinUNETR": 62_191_033,
    "OneDConcat": 41_717_239,
    "TwoDPermuteConcat": 1_545_943,
    "MultiScale2DPermuteConcat": 3_165_447,
    "CustomAutoEncoder": 5_441_599,
}
# a small grid every model accepts
SMALL = (32, 32, 64)


def _tool():
    spec = importlib.util.spec_from_file_location("make_baseline_testvectors",
                                                  ROOT / "tools" / "make_baseline_testvectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_registry_lists_every_published_comparison_model() -> None:
    assert list_architectures() == sorted(PUBLISHED_PARAMETERS)
    assert get_variant("unet") == ArchitectureConfig("UNet")  # published names, any case
    assert get_variant({"architecture": "OneDConcatModel"}).architecture == "OneDConcat"
    with pytest.raises(ValueError, match="unknown Swin-X2S variant 'UNet3'.*comparison models: AttentionUnet"):
        get_variant("UNet3")
    with pytest.raises(ValueError, match="only 'architecture'"):
        get_variant({"architecture": "UNet", "feature_size": 8})


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMETERS))
def test_parameter_count_equals_the_published_model(name: str) -> None:
    model = create_model(name, img_size=(128, 128, 160), in_channels=1, num_classes=55)
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED_PARAMETERS[name]
    assert variant_name(model.config) == name


@pytest.mark.parametrize("name", [n for n in sorted(PUBLISHED_PARAMETERS) if n not in ("UNETR", "SwinUNETR")])
@pytest.mark.parametrize("views", [1, 2])
def test_forward_takes_two_views_and_returns_grid_logits(name: str, views: int) -> None:
    if name == "MultiScale2DPermuteConcat":
        size = SMALL  # its channel counts follow X
    elif name == "OneDConcat":
        size = (16, 16, 24)  # a cube of 16 resampled along Z
    else:
        size = (16, 16, 24) if name == "TwoDPermuteConcat" else (32, 32, 48)
    torch.manual_seed(0)
    model = create_model(name, img_size=size, in_channels=views, num_classes=4).eval()
    coronal, sagittal = torch.rand(2, views, size[0], size[2]), torch.rand(2, views, size[1], size[2])
    with torch.no_grad():
        logits = model(coronal, sagittal)
        labels = predict_labels(model, coronal, sagittal)
    assert logits.shape == (2, 4, *size)
    assert torch.equal(labels, logits.argmax(1).to(torch.uint8))
    # each case is computed from its own images (batch statistics are not used in eval mode)
    with torch.no_grad():
        alone = model(coronal[1:], sagittal[1:])
    torch.testing.assert_close(alone, logits[1:], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="sagittal input must be"):
        model(coronal, sagittal[:, :, :-1])


@pytest.mark.parametrize(("name", "size"), [
    ("UNet", (16, 16, 32)), ("AttentionUnet", (16, 16, 32)), ("UNETR", (16, 16, 32)), ("SwinUNETR", (32, 32, 64)),
    ("OneDConcat", (8, 8, 16)), ("TwoDPermuteConcat", (8, 8, 16)), ("MultiScale2DPermuteConcat", (32, 32, 32)),
    ("CustomAutoEncoder", (16, 16, 32)),
])
def test_every_trainable_parameter_gets_a_gradient(name: str, size: tuple[int, int, int]) -> None:
    """What DistributedDataParallel needs: no trainable parameter is left out of the loss."""
    torch.manual_seed(0)
    model = create_model(name, img_size=size, num_classes=3).train()
    logits = model(torch.rand(2, 1, size[0], size[2]), torch.rand(2, 1, size[1], size[2]))
    logits.square().mean().backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []


def test_volume_layout_repeats_each_view_along_its_projection_axis() -> None:
    coronal, sagittal = torch.rand(1, 2, 4, 6), torch.rand(1, 2, 5, 6)  # X = 4, Y = 5, Z = 6
    volume = views_as_volume(coronal, sagittal)
    assert volume.shape == (1, 4, 4, 5, 6)
    # coronal image (x, z) is constant along y; sagittal (y, z) along x; coronal channels first
    torch.testing.assert_close(volume[0, 1, :, 3, :], coronal[0, 1], rtol=0, atol=0)
    torch.testing.assert_close(volume[0, 2, 1, :, :], sagittal[0, 0], rtol=0, atol=0)
    assert torch.equal(volume[:, :2].amax(3), volume[:, :2].amin(3))
    assert torch.equal(volume[:, 2:].amax(2), volume[:, 2:].amin(2))


def test_sizes_a_model_cannot_take_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="OneDConcat needs X = Y a power of two"):
        create_model("OneDConcat", (48, 48, 48))
    with pytest.raises(ValueError, match="needs X = Y"):
        create_model("TwoDPermuteConcat", (16, 32, 24))
    with pytest.raises(ValueError, match="multiples of 32"):
        create_model("MultiScale2DPermuteConcat", (32, 32, 40))
    with pytest.raises(ValueError, match="multiples of 16"):
        create_model("CustomAutoEncoder", (32, 32, 40))


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMETERS))
def test_published_testvector_is_reproduced(name: str) -> None:
    config = json.loads((VECTORS / f"{name}.json").read_text())
    io = load_file(VECTORS / f"{name}.safetensors")
    published = {k: torch.from_numpy(v) for k, v in _tool().synthetic_weights(config["published_shapes"]).items()}
    model = model_from_published(published, variant=name, img_size=config["img_size"])
    assert (model.in_channels, model.num_classes) == (config["in_channels"], config["num_classes"])
    with torch.no_grad():
        logits = model(io["coronal"], io["sagittal"])
    stride = config["stride"]
    expected = io["logits"]
    difference = (logits[:, :, ::stride, ::stride, ::stride] - expected).abs().max()
    assert difference <= TOLERANCE * max(1.0, float(expected.abs().max())), f"{name}: max |difference| {difference}"


def test_published_keys_are_named_when_unknown_or_missing() -> None:
    config = json.loads((VECTORS / "TwoDPermuteConcat.json").read_text())
    published = {k: torch.from_numpy(v) for k, v in _tool().synthetic_weights(config["published_shapes"]).items()}
    with pytest.raises(ModelError, match=r"not a published TwoDPermuteConcat state dict: unknown key\(s\) extra"):
        convert_published_state_dict({**published, "extra.weight": torch.zeros(1)}, "TwoDPermuteConcat")
    incomplete = {k: v for k, v in published.items() if not k.startswith("decoder.3.")}
    with pytest.raises(ModelError, match=r"missing keys: decoder\.3\.conv\.weight"):
        model_from_published(incomplete, variant="TwoDPermuteConcat", img_size=config["img_size"])
    with pytest.raises(ModelError, match="missing keys: coronal_expansion.2"):  # a 16-wide model on a 32-wide grid
        model_from_published(published, variant="TwoDPermuteConcat", img_size=(32, 32, 24))


def test_model_directory_roundtrip_and_import_command(tmp_path: Path, capsys) -> None:
    from SwinX2SLib.cli import main

    shapes = json.loads((VECTORS / "CustomAutoEncoder.json").read_text())["published_shapes"]
    latent = 64 * 8 * 8 * 8  # the linear bottleneck of the published 128^3 grid
    shapes |= {"bottleneck_fcn_encode.1.weight": [64, latent], "bottleneck_fcn_decode.0.weight": [latent, 64],
               "bottleneck_fcn_decode.0.bias": [latent],  # and the 3 classes of the femur task
               "decode.decode_3.conv.conv.weight": [8, 3, 3, 3, 3], "decode.decode_3.conv.conv.bias": [3]}
    published = {k: torch.from_numpy(v) for k, v in _tool().synthetic_weights(shapes).items()}
    checkpoint = tmp_path / "published.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in published.items()}}, checkpoint)
    assert main(["model", "import", str(checkpoint), "--variant", "CustomAutoEncoder", "--task", "femur",
                 "-o", str(tmp_path / "m")]) == 0
    model, card = load_model_dir(tmp_path / "m")
    assert card.variant == "CustomAutoEncoder" and card.config == {"architecture": "CustomAutoEncoder"}
    assert card.classes == ("background", "femur_left", "femur_right") and model.in_channels == 2
    assert card.img_size == (128, 128, 128)  # the published training grid of this model
    reference = model_from_published(published, variant="CustomAutoEncoder", img_size=(128, 128, 128))
    for key, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    assert "CustomAutoEncoder" in capsys.readouterr().out
    # a trained model directory of another comparison model
    unet = create_model("UNet", (32, 32, 48), 1, 55)
    save_model_dir(unet, tmp_path / "unet", ModelCard(classes=tuple(class_names(55))))
    loaded, card = load_model_dir(tmp_path / "unet")
    assert type(loaded).__name__ == "UNet" and card.variant == "UNet"


@pytest.mark.parametrize(("name", "views"), [("TwoDPermuteConcat", 1), ("UNet", 2)])
def test_train_export_and_reconstruct_a_comparison_model(name: str, views: int, tmp_path: Path, capsys) -> None:
    from test_cli_reconstruct import _write_box_ct

    from SwinX2SLib.cli import main
    from SwinX2SLib.training.logging import read_log

    run = tmp_path / "run"
    config = tmp_path / "config.json"  # the model's published recipe at the size and length of the smoke preset
    config.write_text(json.dumps({
        "preset": f"paper_{name.lower()}",
        "model": {"img_size": [32, 32, 64], "in_channels": views},
        "data": {"source": "phantom", "pool_size": 2, "val_count": 1, "holdout_count": 2},
        "augment": {"prob": 0.0, "intensity_prob": 0.0, "rotate180_prob": 0.0},
        "optim": {"epochs": 2, "steps_per_epoch": 2, "warmup_epochs": 0, "batch_size": 1},
        "schedule": {"threads": 1, "deterministic": True},
    }))
    assert main(["train", "--config", str(config), "-o", str(run), "--progress", "none"]) == 0
    steps = [r for r in read_log(run) if r["event"] == "step"]
    assert len(steps) == 4 and all(np.isfinite(r["loss"]) and r["loss_terms"]["mutual"] == 0.0 for r in steps)
    model, card = load_model_dir(run / "model")
    assert type(model).__name__ == name and card.variant == name and card.in_channels == views
    _write_box_ct(tmp_path, label_id=20)
    out = tmp_path / "out"
    assert main(["reconstruct", "--ct", str(tmp_path / "ct.nii.gz"), "--label", str(tmp_path / "label.nii.gz"),
                 "-o", str(out), "--model", str(run / "model"), "--device", "cpu", "--progress", "none"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["variant"] == name
    assert json.loads((out / "metrics.json").read_text())["overall"]["num_classes"] >= 1


@pytest.mark.slow
def test_paper_tables_smoke_run_produces_both_tables(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("paper_tables", ROOT / "benchmarks" / "paper_tables.py")
    paper_tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(paper_tables)
    results = paper_tables.main(["--out", str(tmp_path), "--img-size", "32", "32", "64", "--steps", "1",
                                 "--train-cases", "2", "--test-cases", "1"])
    assert [row["model"] for row in results["table3"]] == ["test", *list_architectures()]
    assert [row["views"] for row in results["table4"]] == [1, 2, 4, 10, 20]
    for row in results["table3"] + results["table4"]:
        assert row["steps"] == 1 and row["metrics"]["cases"] == 1
        assert {f"{m}_{a}" for m in ("dice", "hd95_mm", "localization_error_mm", "identification_rate")
                for a in ("spine", "rib", "pelvis", "femur")} <= set(row["metrics"])
    for row in results["table3"]:
        assert row["parameters"] == sum(p.numel() for p in create_model(row["model"], (32, 32, 64)).parameters())
    table3 = (tmp_path / "table3.md").read_text().splitlines()
    assert len(table3) == 2 + 9 and table3[0].startswith("| model | params (M) | train (s) | spine Dice")
    assert len((tmp_path / "table4.md").read_text().splitlines()) == 2 + 5
    assert json.loads((tmp_path / "results.json").read_text())["settings"]["steps"] == 1
