"""Checkpoints: the published test vector, key mapping for all four variants, refusing bad or unsafe files,
the SwinX2S model directory, ImageNet Swin encoder initialisation and the ``swinx2s model`` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from SwinX2SLib.catalogue import NUM_CLASSES
from SwinX2SLib.checkpoints import (
    MODEL_CARD_FILE,
    WEIGHTS_FILE,
    ModelCard,
    class_names,
    convert_published_state_dict,
    infer_published_config,
    load_model_dir,
    load_pretrained_encoder,
    load_published_checkpoint,
    model_from_published,
    save_model_dir,
)
from SwinX2SLib.cli import main
from SwinX2SLib.errors import ModelError, OutputError
from SwinX2SLib.network import create_model, get_variant, logit_slabs
from SwinX2SLib.network.swin_encoder import SwinEncoder2D

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def reference(shared_dir: Path) -> Path:
    path = shared_dir / "reference" / "official_model"
    if not path.is_dir():
        pytest.skip(f"{path} is not available")
    return path


@pytest.fixture(scope="module")
def testvector(reference: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Published-name weights and eval-mode inputs/outputs of the published implementation (F=12, 32x32x64)."""
    return load_file(reference / "testvector_f12_weights.safetensors"), load_file(
        reference / "testvector_f12_io.safetensors"
    )


def test_published_testvector_is_reproduced(reference: Path, testvector: tuple[dict, dict]) -> None:
    weights, io = testvector
    config = json.loads((reference / "testvector_f12_config.json").read_text())
    model = model_from_published(weights, variant={k: config[k] for k in ("feature_size", "depths", "num_heads")})
    assert model.img_size == tuple(config["img_size"]) and model.num_classes == config["out_channels"]
    assert not model.training
    p, q = model(io["xa"], io["xb"])  # autograd on: the reference attention path
    assert (p - io["p"]).abs().max() < TOLERANCE
    assert (q - io["q"]).abs().max() < TOLERANCE
    with torch.inference_mode():  # autograd off: MONAI's scaled-dot-product attention path
        p, q = model(io["xa"], io["xb"])
    assert (p - io["p"]).abs().max() < TOLERANCE
    assert (q - io["q"]).abs().max() < TOLERANCE
    # the fast inference path (folded transposed convolution, closed-form level-0 block) on the published weights
    slabs = list(logit_slabs(model, io["xa"][:1], io["xb"][:1], slab=8))
    assert (torch.cat([s[2] for s in slabs], dim=2) - io["p"][:1]).abs().max() < TOLERANCE
    assert (torch.cat([s[3] for s in slabs], dim=2) - io["q"][:1]).abs().max() < TOLERANCE


def _published_meta_state_dict(tsv: Path) -> dict[str, torch.Tensor]:
    rows = [line.split("\t") for line in tsv.read_text().splitlines()[1:] if line.strip()]
    return {key: torch.empty([int(n) for n in shape.split("x")], device="meta") for key, shape in rows}


@pytest.mark.parametrize("variant", ["tiny", "small", "base", "large"])
def test_every_published_key_maps_onto_the_model(
    variant: str, reference: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published = _published_meta_state_dict(reference / f"keys_{variant}_128x128x160_55.tsv")
    config = infer_published_config(published)
    assert config.variant == get_variant(variant)
    assert (config.img_size, config.in_channels, config.num_classes) == ((128, 128, 160), 1, NUM_CLASSES)
    converted = convert_published_state_dict(published)
    assert len(converted) == len(published) - sum("attn_mask" in k for k in published)
    # build on the meta device (no memory); MONAI reads the stochastic-depth schedule with .item()
    linspace = torch.linspace
    monkeypatch.setattr(torch, "linspace", lambda *a, **k: linspace(*a, **{**k, "device": "cpu"}))
    with torch.device("meta"):
        model = create_model(variant)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == {k: tuple(v.shape) for k, v in converted.items()}


def test_unknown_and_missing_keys_are_refused_by_name(testvector: tuple[dict, dict]) -> None:
    weights, _ = testvector
    with pytest.raises(ModelError, match=r"unknown key\(s\) swinViT.head.weight"):
        convert_published_state_dict({**weights, "swinViT.head.weight": torch.zeros(1)})
    incomplete = {k: v for k, v in weights.items() if k != "decoder3.conv_block.conv2.conv.weight"}
    with pytest.raises(ModelError, match=r"missing keys: decoder_blocks.2.conv_block.conv2.conv.weight"):
        model_from_published(incomplete)
    with pytest.raises(ModelError, match="is not variant 'tiny'"):
        model_from_published(weights, variant="tiny")


def test_checkpoint_file_roundtrip_and_module_prefix(tmp_path: Path, testvector: tuple[dict, dict]) -> None:
    weights, _ = testvector
    path = tmp_path / "published.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in weights.items()}, "epoch": 12, "best_acc": 0.8}, path)
    state_dict = load_published_checkpoint(path)
    assert set(state_dict) == {f"module.{k}" for k in weights}
    from_file = model_from_published(path).state_dict()
    from_dict = model_from_published(weights).state_dict()  # reproduces the test vector (test above)
    assert from_file.keys() == from_dict.keys() and all(torch.equal(from_file[k], from_dict[k]) for k in from_dict)


class _Payload:
    """Unpickling this would create a file: a stand-in for arbitrary code in a malicious checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def test_checkpoint_with_pickled_code_is_refused_and_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hook": _Payload(marker)}, path)
    with pytest.raises(ModelError, match="refused to load.*nothing in it was executed"):
        load_published_checkpoint(path)
    assert not marker.exists()
    with pytest.raises(ModelError, match="not found"):
        load_published_checkpoint(tmp_path / "absent.pt")


def test_model_directory_roundtrip_and_integrity_checks(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("test", img_size=(32, 32, 64), num_classes=3).eval()
    card = ModelCard(
        classes=tuple(class_names(3, "femur")),
        preprocessing={"drr_preset": "published", "geometry": "parallel"},
        training={"dataset": "synthetic"},
        metrics={"dice": 0.5},
        license="Apache-2.0",
    )
    folder = save_model_dir(model, tmp_path / "model", card)
    assert sorted(p.name for p in folder.iterdir()) == [MODEL_CARD_FILE, WEIGHTS_FILE]
    loaded, read = load_model_dir(folder)
    assert (
        read.variant == "test" and read.img_size == (32, 32, 64) and read.classes[1:] == ("femur_left", "femur_right")
    )
    assert read.preprocessing == card.preprocessing and read.metrics == {"dice": 0.5} and len(read.sha256) == 64
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys() and all(torch.equal(original[k], restored[k]) for k in original)

    with pytest.raises(OutputError, match="already exists"):
        save_model_dir(model, folder, card)
    with pytest.raises(ValueError, match="full class table"):
        class_names(3)

    wrong_table = json.loads((folder / MODEL_CARD_FILE).read_text())
    wrong_table["classes"] = ["background", "femur_right", "femur_left"]
    (folder / MODEL_CARD_FILE).write_text(json.dumps(wrong_table))
    with pytest.raises(ModelError, match="neither the full catalogue nor a subset task"):
        load_model_dir(folder)
    wrong_table["classes"], wrong_table["catalogue_version"] = read.classes, "0.1"
    (folder / MODEL_CARD_FILE).write_text(json.dumps(wrong_table))
    with pytest.raises(ModelError, match="catalogue version 0.1"):
        load_model_dir(folder)

    save_model_dir(model, folder, card, overwrite=True)
    again = save_model_dir(model, tmp_path / "again", card)
    assert (again / WEIGHTS_FILE).read_bytes() == (folder / WEIGHTS_FILE).read_bytes(), "saving must be deterministic"
    data = bytearray((folder / WEIGHTS_FILE).read_bytes())
    data[-1] ^= 0xFF
    (folder / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="weights were modified"):
        load_model_dir(folder)


def test_imagenet_swin_initialises_the_encoder(tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    swin = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False)
    state_dict = swin.state_dict()
    path = tmp_path / "swin_tiny_timm.pth"
    torch.save(state_dict, path)
    encoder = SwinEncoder2D((128, 160), in_channels=1, feature_size=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24))
    report = load_pretrained_encoder(encoder, path)
    assert len(report["loaded"]) == len(state_dict) - 4  # all but the final norm and classifier
    assert sorted(report["not_loaded"]) == ["head.fc.bias", "head.fc.weight", "norm.bias", "norm.weight"]
    assert len(report["missing"]) == 13  # 5 hidden-state norms (10) + merging of the last stage (3)
    block = encoder.swin.layers3[0].blocks[5]
    assert torch.equal(block.mlp.linear1.weight, state_dict["layers.2.blocks.5.mlp.fc1.weight"])
    # timm merges at the start of stages 1-3, i.e. at the end of our stages 0-2
    assert torch.equal(
        encoder.swin.layers1[0].downsample.reduction.weight, state_dict["layers.1.downsample.reduction.weight"]
    )
    # 4x4 RGB kernel -> 2x2 grey kernel: 2x2 sum pooling, then RGB summed
    rgb = state_dict["patch_embed.proj.weight"]
    expected = rgb.reshape(96, 3, 2, 2, 2, 2).sum(dim=(1, 3, 5)).unsqueeze(1)
    assert torch.allclose(encoder.swin.patch_embed.proj.weight, expected, atol=1e-6)

    # the same weights in Microsoft's layout (merging at the end of stages 0-2, under "model")
    microsoft = {}
    for key, value in state_dict.items():
        if ".downsample." in key:
            stage = int(key.split(".")[1])
            key = key.replace(f"layers.{stage}.", f"layers.{stage - 1}.", 1)
        microsoft[key] = value
    torch.save({"model": microsoft}, tmp_path / "swin_tiny_microsoft.pth")
    fresh = SwinEncoder2D((128, 160), in_channels=2, feature_size=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24))
    assert sorted(load_pretrained_encoder(fresh, tmp_path / "swin_tiny_microsoft.pth")["loaded"]) == sorted(
        report["loaded"]
    )
    assert torch.equal(
        fresh.swin.layers1[0].downsample.reduction.weight, encoder.swin.layers1[0].downsample.reduction.weight
    )
    assert fresh.swin.patch_embed.proj.weight.shape == (96, 2, 2, 2)


def test_model_command_list_import_info(tmp_path: Path, testvector: tuple[dict, dict], capsys) -> None:
    weights, _ = testvector
    femur = dict(weights)  # the test vector's architecture with the 3 classes of the femur task
    femur["out.conv.conv.weight"] = weights["out.conv.conv.weight"][:3].clone()
    femur["out.conv.conv.bias"] = weights["out.conv.conv.bias"][:3].clone()
    checkpoint = tmp_path / "femur.pt"
    torch.save({"state_dict": femur}, checkpoint)

    assert main(["model", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["base"]["depths"] == [2, 2, 18, 2]
    out = tmp_path / "imported"
    assert main(["model", "import", str(checkpoint), "-o", str(out), "--task", "femur", "--license", "CC-BY-4.0"]) == 0
    assert main(["model", "info", str(out), "--json"]) == 0
    card = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert card["classes"] == ["background", "femur_left", "femur_right"] and card["license"] == "CC-BY-4.0"
    assert card["img_size"] == [32, 32, 64] and card["variant"] is None
    assert main(["model", "import", str(checkpoint), "-o", str(tmp_path / "x"), "--variant", "base"]) == 2
    assert main(["model", "import", str(checkpoint), "-o", str(tmp_path / "y")]) == 2  # 3 classes need --task
    errors = capsys.readouterr().err
    assert "is not variant 'base'" in errors and "does not match the full class table" in errors
