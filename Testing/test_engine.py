"""The inference engine choice (``plain`` / ``fast`` / ``auto``): the structural check of the fast path, its fallback,
the model card and ``--engine``; one test per MONAI / PyTorch attribute the fast path reads (each set to an unusual
value, which MONAI's own forward pass and the fast path must both use)."""

from __future__ import annotations

import copy
import json
import shutil
import types
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.networks.blocks import UnetrBasicBlock
from torch import nn

from SwinX2SLib.checkpoints import ModelCard, save_model_dir
from SwinX2SLib.conventions import ModelGrid
from SwinX2SLib.errors import ModelError
from SwinX2SLib.network import (
    SwinX2S,
    create_model,
    fast_path_problems,
    get_variant,
    list_variants,
    logit_slabs,
    predict_labels,
    resolve_engine,
)
from SwinX2SLib.network.blocks import residual_block, up_block
from SwinX2SLib.network.inference import _conv3d, _folded_up_block, _head, _res_block, _up_block

SMALL = (32, 32, 64)
_CL = torch.channels_last_3d


@pytest.fixture(scope="module")
def model() -> SwinX2S:
    torch.manual_seed(0)
    return create_model("test", img_size=SMALL, num_classes=4).eval()


def _views(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    return torch.rand(1, 1, 32, 64), torch.rand(1, 1, 32, 64)


@pytest.mark.parametrize("variant", [  # building the wide variants' weights takes seconds
    pytest.param(name, marks=[pytest.mark.slow] if get_variant(name).feature_size >= 48 else [])
    for name in list_variants()])
def test_every_registered_variant_fits_the_fast_path(variant: str) -> None:
    net = create_model(variant, img_size=(64, 64, 64), num_classes=3)
    assert fast_path_problems(net) == []
    assert resolve_engine(net, "auto") == resolve_engine(net, "fast") == "fast"
    assert resolve_engine(net, "plain") == "plain"
    with pytest.raises(ValueError, match="engine must be one of auto, plain, fast"):
        resolve_engine(net, "quick")


# ------------------------------------------------------------------ one test per attribute the fast path reads


def _res(in_channels: int, out_channels: int) -> UnetrBasicBlock:
    torch.manual_seed(3)
    return residual_block(in_channels, out_channels).eval()


def _set(path: str, value: object) -> Callable[[nn.Module], None]:
    def apply(block: nn.Module) -> None:
        *parents, name = path.split(".")
        target = block
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, name, value)
    return apply


@pytest.mark.parametrize(("attribute", "channels", "change"), [
    ("conv1.conv, conv3 (weights, padding, stride)", (4, 6), None),
    ("norm1.eps", (4, 6), _set("norm1.eps", 0.7)),
    ("norm2.eps", (4, 6), _set("norm2.eps", 0.7)),
    ("norm3.eps", (4, 6), _set("norm3.eps", 0.7)),
    ("lrelu.negative_slope", (4, 6), _set("lrelu.negative_slope", 0.3)),
    ("no conv3 when the channels stay", (6, 6), None),
])
def test_residual_block_attribute_is_what_monai_computes_with(
    attribute: str, channels: tuple[int, int], change: Callable[[nn.Module], None] | None
) -> None:
    """``_res_block`` reads ``UnetrBasicBlock.layer`` (a ``UnetResBlock``) and the attribute named here."""
    block = _res(*channels)
    assert hasattr(block.layer, "conv3") == (channels[0] != channels[1])
    x = torch.randn(1, channels[0], 6, 5, 7) * 0.5
    with torch.inference_mode():
        original = block(x.clone())
        if change is not None:
            change(block.layer)
        expected = block(x.clone())
        fast = _res_block(block.layer, x.clone().contiguous(memory_format=_CL))
    if change is not None:  # the attribute is what MONAI computes with...
        assert not torch.allclose(expected, original, atol=1e-3)
    assert torch.allclose(fast, expected, atol=1e-5), attribute  # ...and what the fast path reads


def test_up_block_transposed_convolution_and_concatenation_order() -> None:
    """``UnetrUpBlock.transp_conv.conv`` (2x2x2, stride 2, no bias), ``conv_block``, ``cat((up, skip))``: the plain
    deep-level block and the folded full-resolution block both reproduce MONAI's forward pass."""
    torch.manual_seed(4)
    block = up_block(8, 4).eval()
    assert block.transp_conv.conv.bias is None and tuple(block.transp_conv.conv.stride) == (2, 2, 2)
    x, skip = torch.randn(1, 8, 4, 3, 5), torch.randn(1, 4, 8, 6, 10)
    with torch.inference_mode():
        expected = block(x, skip)
        assert torch.allclose(_up_block(block, x, skip.contiguous(memory_format=_CL)), expected, atol=1e-5)
        folded = _folded_up_block(block, x.contiguous(memory_format=_CL), skip.contiguous(memory_format=_CL), 2)
        assert torch.allclose(folded, expected, atol=1e-5)


def test_head_is_the_output_block_convolution(model: SwinX2S) -> None:
    """``UnetOutBlock.conv.conv``: weight ``[C, F, 1, 1, 1]`` and bias, as a matrix product."""
    features = torch.randn(1, 12, 3, 4, 5)
    weight, bias = _head(model)
    with torch.inference_mode():
        expected = model.head(features)
    product = torch.einsum("cf,bfxyz->bcxyz", weight, features) + bias[None, :, None, None, None]
    assert torch.allclose(product, expected, atol=1e-5)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="PyTorch built without oneDNN")
def test_onednn_convolution_operator_matches_conv3d() -> None:
    """``torch.ops.aten.mkldnn_convolution(x, w, b, padding, stride, dilation, groups)``, as ``_conv3d`` calls it."""
    torch.manual_seed(5)
    x = torch.randn(1, 3, 9, 8, 7).contiguous(memory_format=_CL)
    weight, bias = torch.randn(5, 3, 3, 3, 3), torch.randn(5)
    for padding, stride in ((1, 1), ((0, 1, 1), 1), (1, 2)):
        assert torch.allclose(_conv3d(x, weight, bias, padding, stride), F.conv3d(x, weight, bias, stride, padding),
                              atol=1e-4)


# ------------------------------------------------------------------ the check and the fallback


class _Subclass(SwinX2S):
    """A model whose forward pass may compute something else."""


def _mutations() -> list[tuple[str, Callable[[SwinX2S], SwinX2S]]]:
    def norm(net: SwinX2S) -> SwinX2S:
        net.decoder_blocks[4].conv_block.norm1 = nn.InstanceNorm3d(12, affine=True)
        return net

    def batch_norm(net: SwinX2S) -> SwinX2S:
        net.encoder_blocks[0].layer.norm2 = nn.BatchNorm3d(12).eval()
        return net

    def activation(net: SwinX2S) -> SwinX2S:
        net.encoder_blocks[2].layer.lrelu = nn.ReLU()
        return net

    def transposed_bias(net: SwinX2S) -> SwinX2S:
        conv = net.decoder_blocks[3].transp_conv.conv
        conv.bias = nn.Parameter(torch.full((conv.out_channels,), 0.3))
        return net

    def dropout(net: SwinX2S) -> SwinX2S:
        net.decoder_blocks[0].conv_block.conv1.add_module("dropout", nn.Dropout(0.1))
        return net

    def dilation(net: SwinX2S) -> SwinX2S:
        conv = net.decoder_blocks[4].conv_block.conv2.conv
        conv.dilation, conv.padding = (2, 2, 2), (2, 2, 2)
        return net

    def subclass(net: SwinX2S) -> SwinX2S:
        net.__class__ = _Subclass
        return net

    return [("decoder_blocks.4.conv_block.norm1", norm), ("encoder_blocks.0.layer.norm2", batch_norm),
            ("encoder_blocks.2.layer.lrelu", activation), ("decoder_blocks.3.transp_conv.conv", transposed_bias),
            ("decoder_blocks.0.conv_block.conv1", dropout), ("decoder_blocks.4.conv_block.conv2.conv", dilation),
            ("model: expected SwinX2S", subclass)]


@pytest.mark.parametrize(("where", "mutate"), _mutations(), ids=[name for name, _ in _mutations()])
def test_a_model_the_fast_path_was_not_written_for_runs_plain(
    model: SwinX2S, where: str, mutate: Callable[[SwinX2S], SwinX2S]
) -> None:
    changed = mutate(copy.deepcopy(model)).eval()
    problems = fast_path_problems(changed)
    assert problems and any(where in problem for problem in problems), problems
    coronal, sagittal = _views()
    with torch.inference_mode():
        p, q = changed(coronal, sagittal)
    with pytest.warns(UserWarning, match=f"engine 'fast' does not fit this model: .*{where.split(':')[0]}"):
        labels = predict_labels(changed, coronal, sagittal, engine="fast")
    assert torch.equal(labels, (p + q).argmax(1).to(labels.dtype))  # the plain forward pass ran
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto falls back quietly
        assert resolve_engine(changed, "auto") == "plain"


def test_a_torch_without_the_onednn_operator_runs_plain(model: SwinX2S, monkeypatch: pytest.MonkeyPatch) -> None:
    if not torch.backends.mkldnn.is_available():
        pytest.skip("PyTorch built without oneDNN: the fast path does not use the operator")
    monkeypatch.setattr(torch.ops, "aten", types.SimpleNamespace())
    assert fast_path_problems(model) == [f"torch {torch.__version__}: no torch.ops.aten.mkldnn_convolution"]
    with pytest.warns(UserWarning, match="mkldnn_convolution"):
        assert resolve_engine(model, "fast") == "plain"


def test_plain_and_fast_engines_give_the_same_logits(model: SwinX2S) -> None:
    coronal, sagittal = _views(2)
    plain = list(logit_slabs(model, coronal, sagittal, slab=8, engine="plain"))
    fast = list(logit_slabs(model, coronal, sagittal, slab=8, engine="fast"))
    assert [(a, b) for a, b, _, _ in plain] == [(a, b) for a, b, _, _ in fast] == [(0, 8), (8, 16), (16, 24), (24, 32)]
    for (_, _, p, q), (_, _, p_fast, q_fast) in zip(plain, fast, strict=True):
        assert torch.allclose(p, p_fast, atol=1e-5) and torch.allclose(q, q_fast, atol=1e-5)
    with torch.inference_mode():
        expected_p, _ = model(coronal, sagittal)
    assert torch.equal(torch.cat([p for _, _, p, _ in plain], dim=2), expected_p)  # plain = the forward pass


# ------------------------------------------------------------------ model card and Reconstructor


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    save_model_dir(create_model("test", img_size=SMALL), folder, ModelCard(engine="plain"))
    return folder


@pytest.mark.filterwarnings("ignore:implausible reconstruction:UserWarning")
def test_the_model_card_chooses_the_engine_unless_the_user_does(model_dir, tmp_path) -> None:
    from SwinX2SLib.inference import Reconstructor

    assert json.loads((model_dir / "model.json").read_text())["engine"] == "plain"
    pinned = Reconstructor(model_dir, device="cpu")
    assert pinned.engine == "plain"
    assert Reconstructor(model_dir, device="cpu", engine="fast").engine == "fast"
    rng = np.random.default_rng(0)
    inputs = rng.random((1, 32, 64), dtype=np.float32), rng.random((1, 32, 64), dtype=np.float32)
    result = pinned.reconstruct(*inputs, ModelGrid(SMALL, 4.0))
    assert result.model["engine"] == "plain"
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    card = json.loads((broken / "model.json").read_text())
    card["engine"] = "turbo"
    (broken / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="model.json: engine 'turbo' is not one of auto, plain, fast"):
        Reconstructor(broken, device="cpu")


def test_engine_flag_of_the_command_line() -> None:
    from SwinX2SLib.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["reconstruct", "--ct", "ct.nii", "-o", "out"]).engine == "auto"
    assert parser.parse_args(["reconstruct", "--ct", "ct.nii", "-o", "out", "--engine", "plain"]).engine == "plain"
    with pytest.raises(SystemExit):
        parser.parse_args(["reconstruct", "--ct", "ct.nii", "-o", "out", "--engine", "turbo"])
