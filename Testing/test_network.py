"""The Swin-X2S network: registry, shapes, axis contract of the dimension expansion, window rule, fast inference."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from SwinX2SLib.network import (
    SwinX2S,
    VariantConfig,
    check_img_size,
    create_model,
    get_variant,
    inference,
    list_variants,
    logit_slabs,
    predict_labels,
    variant_name,
)
from SwinX2SLib.network.cross_view_attention import CrossViewAttention
from SwinX2SLib.network.dimension_expansion import DimensionExpansion
from SwinX2SLib.network.inference import (
    _conv3d,
    _conv_in_place,
    _expanded_block,
    _folded_up_block,
    _instance_norm_,
    _Moments,
)
from SwinX2SLib.network.swin_encoder import SwinEncoder2D

SMALL = (32, 32, 64)


@pytest.fixture(scope="module")
def test_model() -> SwinX2S:
    torch.manual_seed(0)
    model = create_model("test", img_size=SMALL, num_classes=4).eval()
    with torch.no_grad():  # trained expansions are no plain repeat: give every level a profile and an offset
        for expand in model.dimension_expansion:
            expand.conv.weight.uniform_(0.5, 1.5)
            expand.conv.bias.uniform_(-0.5, 0.5)
    return model


def test_registry_names_aliases_and_custom_configs() -> None:
    assert list_variants() == ["base", "large", "small", "test", "tiny"]
    assert get_variant("Swin-X2S-Base") == get_variant("base") == VariantConfig(96, (2, 2, 18, 2), (3, 6, 12, 24))
    assert get_variant("large").num_heads == (4, 8, 16, 32)
    custom = get_variant({"feature_size": 24, "depths": [1, 1, 2, 1], "num_heads": [1, 2, 4, 8]})
    assert custom.depths == (1, 1, 2, 1) and variant_name(custom) is None
    assert variant_name(VariantConfig(32, (2, 2, 6, 2), (1, 2, 4, 8))) == "tiny"
    with pytest.raises(ValueError, match="unknown Swin-X2S variant 'huge'"):
        get_variant("huge")
    with pytest.raises(ValueError, match=r"num_heads\[1\]=5 must divide"):
        VariantConfig(12, (1, 1, 1, 1), (1, 5, 4, 8))
    with pytest.raises(ValueError, match="unknown variant field"):
        get_variant({"feature_size": 12, "depths": (1, 1, 1, 1), "num_heads": (1, 2, 4, 8), "heads": 3})


@pytest.mark.parametrize(
    ("img_size", "message"),
    [
        ((32, 64, 64), "X and Y must be equal"),
        ((40, 40, 64), "X=40, Y=40 must be a positive multiple of 32"),
        ((32, 32, 32), "at least one axis must exceed 32"),
    ],
)
def test_invalid_sizes_are_rejected(img_size: tuple[int, int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_img_size(img_size)


def test_forward_shapes_with_batch_and_several_views() -> None:
    torch.manual_seed(0)
    model = create_model("test", img_size=(32, 32, 64), in_channels=2, num_classes=3).eval()
    with torch.no_grad():
        p, q = model(torch.rand(2, 2, 32, 64), torch.rand(2, 2, 32, 64))
    assert p.shape == q.shape == (2, 3, 32, 32, 64)
    assert not torch.equal(p, q)


def test_wrong_input_shape_names_the_expected_one(test_model: SwinX2S) -> None:
    with pytest.raises(ValueError, match=r"sagittal input must be \[B, 1, 32, 64\].*got \[1, 1, 64, 32\]"):
        test_model(torch.rand(1, 1, 32, 64), torch.rand(1, 1, 64, 32))


def test_dimension_expansion_puts_the_new_axis_where_the_view_projected() -> None:
    features = torch.rand(2, 3, 4, 5)  # coronal [B, C, X, Z] or sagittal [B, C, Y, Z]
    expand = DimensionExpansion(6)
    coronal = expand(features, "coronal")
    sagittal = expand(features, "sagittal")
    assert coronal.shape == (2, 3, 4, 6, 5) and sagittal.shape == (2, 3, 6, 4, 5)
    # initialised as a plain repeat: every y (coronal) / every x (sagittal) holds the 2-D feature
    assert torch.equal(coronal, features[:, :, :, None, :].expand(2, 3, 4, 6, 5))
    assert torch.equal(sagittal, features[:, :, None, :, :].expand(2, 3, 6, 4, 5))
    with torch.no_grad():
        expand.conv.weight.copy_(torch.arange(1.0, 7.0).view(6, 1, 1, 1, 1))
        expand.conv.bias.fill_(0.5)
    assert torch.allclose(expand(features, "coronal")[:, :, :, 2], 3 * features + 0.5)
    assert torch.allclose(expand(features, "sagittal")[:, :, 4], 5 * features + 0.5)
    with pytest.raises(ValueError, match="view must be one of"):
        expand(features, "axial")


def test_encoder_window_rule_follows_the_published_code() -> None:
    encoder = SwinEncoder2D((32, 64), in_channels=1, feature_size=12, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))
    stages = encoder.stages
    # features 16x32 and 8x16 keep 7x7 windows, shifted by 3 in odd blocks
    assert [b.window_size for b in stages[0].blocks] == [(7, 7), (7, 7)]
    assert [b.shift_size for b in stages[1].blocks] == [(0, 0), (3, 3)]
    # features 4x8 and 2x4 (min <= 7) use one unshifted window covering the whole map, with its own bias table
    for stage, feature in ((stages[2], (4, 8)), (stages[3], (2, 4))):
        for block in stage.blocks:
            assert block.window_size == feature and block.shift_size == (0, 0)
            table = block.attn.relative_position_bias_table
            assert table.shape[0] == (2 * feature[0] - 1) * (2 * feature[1] - 1)
    hidden = encoder.forward_intermediates(torch.rand(2, 1, 32, 64))
    assert [tuple(h.shape) for h in hidden] == [
        (2, 12, 16, 32),
        (2, 24, 8, 16),
        (2, 48, 4, 8),
        (2, 96, 2, 4),
        (2, 192, 1, 2),
    ]
    assert [info["num_chs"] for info in encoder.feature_info] == [12, 24, 48, 96, 192]
    # learnable LayerNorm on every hidden state: zero mean / unit variance over channels at initialisation
    assert torch.allclose(hidden[1].mean(dim=1), torch.zeros(1), atol=1e-5)


def test_cross_view_attention_exchanges_information_between_views() -> None:
    torch.manual_seed(0)
    attention = CrossViewAttention(hidden_size=16, num_heads=2, grid_size=(1, 1, 2)).eval()
    a, b = torch.rand(1, 16, 1, 1, 2), torch.rand(1, 16, 1, 1, 2)
    a_out, b_out = attention(a, b)
    a_out2, b_out2 = attention(a, b + 1.0)
    # the coronal output depends on the sagittal input (keys/values), as does the sagittal output on itself
    assert not torch.allclose(a_out, a_out2)
    assert not torch.allclose(b_out, b_out2)
    with pytest.raises(ValueError, match=r"bottleneck size \(1, 1, 3\) does not match"):
        attention(torch.rand(1, 16, 1, 1, 3), torch.rand(1, 16, 1, 1, 3))


def test_lean_inference_equals_the_plain_forward(test_model: SwinX2S) -> None:
    torch.manual_seed(1)
    coronal, sagittal = torch.rand(2, 1, 32, 64), torch.rand(2, 1, 32, 64)
    with torch.no_grad():
        p, q = test_model(coronal, sagittal)
    logits = p + q
    expected = logits.argmax(1)
    top2 = logits.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 1e-4  # ties within rounding may go either way
    slabs = list(logit_slabs(test_model, coronal[:1], sagittal[:1], slab=5))  # 32 = 6 slabs of 5 + one of 2
    assert [(start, stop) for start, stop, _, _ in slabs] == [(i, min(i + 5, 32)) for i in range(0, 32, 5)]
    assert torch.allclose(torch.cat([s[2] for s in slabs], dim=2), p[:1], atol=1e-5)
    assert torch.allclose(torch.cat([s[3] for s in slabs], dim=2), q[:1], atol=1e-5)
    labels = predict_labels(test_model, coronal, sagittal, slab=5)  # a batch of two cases
    assert labels.dtype == torch.uint8 and labels.shape == (2, 32, 32, 64)
    assert torch.equal(labels[clear].long(), expected[clear])
    assert clear.float().mean() > 0.99
    assert len(expected.unique()) > 1
    with pytest.raises(ValueError, match="one case at a time"):
        next(logit_slabs(test_model, coronal, sagittal))
    with pytest.raises(ValueError, match="slab must be >= 1"):
        predict_labels(test_model, coronal, sagittal, slab=0)


@pytest.mark.parametrize("view", ["coronal", "sagittal"])
def test_full_resolution_blocks_match_the_monai_blocks(test_model: SwinX2S, view: str) -> None:
    torch.manual_seed(2)
    image = torch.rand(1, 1, 32, 64)
    half = torch.randn(1, 12, 16, 16, 32)
    with torch.inference_mode():
        skip = test_model.encoder_blocks[0](test_model.dimension_expansion[0](image, view))
        # the level-0 block from outer products of 2-D convolutions of the image (closed-form residual norm)
        fast_skip = _expanded_block(test_model.encoder_blocks[0].layer, test_model.dimension_expansion[0], image,
                                    view, slab=5)
        assert fast_skip.is_contiguous(memory_format=torch.channels_last_3d)
        assert torch.allclose(fast_skip, skip, atol=1e-5)
        # the last up block with the transposed convolution folded into the 3x3x3 and 1x1x1 convolutions
        expected = test_model.decoder_blocks[-1](half, skip)
        for slab in (1, 5, 16):  # slabs of half planes at both ends, in the middle, one slab
            fast = _folded_up_block(test_model.decoder_blocks[-1],
                                    half.contiguous(memory_format=torch.channels_last_3d), fast_skip.clone(), slab)
            assert torch.allclose(fast, expected, atol=1e-5)


def test_fast_path_with_two_views_per_side() -> None:
    torch.manual_seed(4)
    model = create_model("test", img_size=SMALL, in_channels=2, num_classes=4).eval()
    with torch.no_grad():
        for expand in model.dimension_expansion:
            expand.conv.bias.uniform_(-0.5, 0.5)
        coronal, sagittal = torch.rand(1, 2, 32, 64), torch.rand(1, 2, 32, 64)
        p, q = model(coronal, sagittal)
    slabs = list(logit_slabs(model, coronal, sagittal, slab=6))
    assert torch.allclose(torch.cat([s[2] for s in slabs], dim=2), p, atol=1e-5)
    assert torch.allclose(torch.cat([s[3] for s in slabs], dim=2), q, atol=1e-5)


@pytest.mark.parametrize("slab", [1, 5, 32, 40])
def test_in_place_convolution_and_instance_norm(slab: int) -> None:
    torch.manual_seed(3)
    conv = torch.nn.Conv3d(6, 6, 3, padding=1)
    volume = torch.randn(1, 6, 32, 8, 12).contiguous(memory_format=torch.channels_last_3d) * 3 + 2
    with torch.inference_mode():
        expected = _conv3d(volume, conv.weight, conv.bias, padding=1)  # oneDNN, whatever the shape
        assert expected.is_contiguous(memory_format=torch.channels_last_3d)
        assert torch.allclose(expected, conv(volume), atol=1e-5)  # PyTorch's own choice of kernel
        moments = _Moments()
        assert torch.equal(_conv_in_place(volume, conv, slab, moments), expected)  # same planes, same arithmetic
        scale, shift = moments.scale_shift(1e-5)  # statistics taken slab by slab as the slabs were computed
        variance, mean = torch.var_mean(expected.double(), (0, 2, 3, 4), unbiased=False)
        assert torch.allclose(scale.double(), (variance + 1e-5).rsqrt(), rtol=1e-5)
        assert torch.allclose(shift.double(), -mean * (variance + 1e-5).rsqrt(), rtol=1e-5, atol=1e-6)
        pair = torch.cat((expected, 2 * expected + 1)).contiguous(memory_format=torch.channels_last_3d)
        reference = torch.nn.functional.leaky_relu(torch.nn.functional.instance_norm(pair, eps=1e-5), 0.01)
        assert torch.allclose(_instance_norm_(pair, 1e-5, 0.01), reference, atol=1e-5)


@pytest.mark.parametrize(("offset", "spread"), [(2.0, 3.0), (50.0, 0.5), (100.0, 0.01)])
@pytest.mark.parametrize("block", [50, 1 << 20])
def test_instance_norm_merged_over_blocks_is_as_accurate_as_torch(
    monkeypatch: pytest.MonkeyPatch, offset: float, spread: float, block: int
) -> None:
    monkeypatch.setattr(inference, "_CHUNK_ELEMENTS", block)  # 50 values: blocks that split rows of 5 channels
    torch.manual_seed(6)
    volume = (torch.randn(2, 5, 9, 8, 12) * spread + offset).contiguous(memory_format=torch.channels_last_3d)
    exact = torch.nn.functional.instance_norm(volume.double(), eps=1e-5)
    torch_error = (torch.nn.functional.instance_norm(volume, eps=1e-5).double() - exact).abs().max()
    with torch.inference_mode():
        error = (_instance_norm_(volume.clone(), 1e-5).double() - exact).abs().max()
    # float32's own limit: the mean, offset / spread standard deviations away, is known to ~6e-8 of itself
    float32_limit = 4 * torch.finfo(torch.float32).eps * (offset / spread + 4)
    assert error <= max(1.5 * torch_error, float32_limit)


@pytest.mark.parametrize("view", ["coronal", "sagittal"])
def test_expanded_blocks_of_the_deep_levels_match_the_monai_blocks(test_model: SwinX2S, view: str) -> None:
    torch.manual_seed(5)
    expand = DimensionExpansion(6)  # 6 x 6 x 10 voxels at every level: no level's instance norm is degenerate
    with torch.no_grad():
        expand.conv.weight.uniform_(0.5, 1.5)
        expand.conv.bias.uniform_(-0.5, 0.5)
    exact_model, exact_expand = copy.deepcopy(test_model).double(), copy.deepcopy(expand).double()
    with torch.inference_mode():
        for level in range(1, 6):  # as many channels in as out: the residual is the expanded input itself
            block = test_model.encoder_blocks[level]
            assert not hasattr(block.layer, "conv3")
            hidden = torch.randn(1, block.layer.conv1.conv.in_channels, 6, 10)
            fast = _expanded_block(block.layer, expand, hidden, view, slab=4)
            assert fast.is_contiguous(memory_format=torch.channels_last_3d)
            exact = exact_model.encoder_blocks[level](exact_expand(hidden.double(), view))
            # float32 rounding: grows with the fan-in (12 channels at level 1, 192 at level 5: max 1.5e-5 measured)
            assert (fast.double() - exact).abs().max() < 3e-5, level


def test_gradients_reach_both_views_and_the_encoder(test_model: SwinX2S) -> None:
    model = create_model("test", img_size=SMALL, num_classes=3)
    coronal = torch.rand(1, 1, 32, 64, requires_grad=True)
    sagittal = torch.rand(1, 1, 32, 64, requires_grad=True)
    p, _ = model(coronal, sagittal)
    p[:, 1].mean().backward()  # only the coronal branch's output
    assert coronal.grad.abs().sum() > 0
    assert sagittal.grad.abs().sum() > 0  # through the cross-view attention
    assert model.encoder.swin.patch_embed.proj.weight.grad.abs().sum() > 0
    assert model.dimension_expansion[3].conv.weight.grad.abs().sum() > 0


@pytest.mark.slow  # half-precision 3-D convolutions are slow on the CPU (CUDA is where autocast is used)
def test_autocast_overflow_is_computed_again_in_float32(test_model: SwinX2S) -> None:
    torch.manual_seed(2)
    coronal, sagittal = torch.rand(1, 1, 32, 64), torch.rand(1, 1, 32, 64)
    exact = predict_labels(test_model, coronal, sagittal)
    half = predict_labels(test_model, coronal, sagittal, autocast_dtype=torch.float16)
    assert (half == exact).float().mean() > 0.99
    overflowing = copy.deepcopy(test_model)
    with torch.no_grad():  # the same argmax in float32; every logit beyond float16's range (65504)
        overflowing.head.conv.conv.bias.add_(1e5)
    with pytest.warns(UserWarning, match="overflowed in float16; computing this case in float32"):
        labels = predict_labels(overflowing, coronal, sagittal, autocast_dtype=torch.float16)
    assert torch.equal(labels, predict_labels(overflowing, coronal, sagittal))
    with pytest.warns(UserWarning, match="overflowed in float16"):
        slabs = list(logit_slabs(overflowing, coronal, sagittal, slab=8, autocast_dtype=torch.float16))
    assert torch.isfinite(torch.cat([s[2] for s in slabs], dim=2)).all()


_WITHOUT_IMAGE_LIBRARIES = """
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("SimpleITK", "vtk"):
            raise ImportError(f"{name} is not installed here")
sys.meta_path.insert(0, Refuse())
import torch
"""


def test_network_and_model_loading_need_no_image_library() -> None:
    """A GPU machine may have torch, MONAI and timm but no SimpleITK or VTK: the network and a model directory load
    and predict there (only reading and writing images needs SimpleITK)."""
    code = _WITHOUT_IMAGE_LIBRARIES + (
        "from SwinX2SLib.checkpoints import load_model_dir\n"
        "from SwinX2SLib.network import predict_labels\n"
        "from SwinX2SLib.precision import resolve_precision\n"
        "model, card = load_model_dir(sys.argv[1])\n"
        "x, y, z = model.img_size\n"
        "labels = predict_labels(model, torch.rand(1, 1, x, z), torch.rand(1, 1, y, z))\n"
        "assert resolve_precision('auto', torch.device('cpu')) is None\n"
        "print(list(labels.shape) == [1, x, y, z], 'SimpleITK' in sys.modules, 'vtk' in sys.modules)\n"
    )
    model_dir = Path(__file__).resolve().parents[1] / "SwinX2S" / "SwinX2SLib" / "models" / "default"
    env = {**os.environ, "PYTHONPATH": str(model_dir.parents[2])}
    result = subprocess.run([sys.executable, "-c", code, str(model_dir)], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False", "False"]
    # the check itself refuses: reading images does need SimpleITK
    result = subprocess.run([sys.executable, "-c", _WITHOUT_IMAGE_LIBRARIES + "import SwinX2SLib.io\n"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode != 0 and "SimpleITK is not installed here" in result.stderr
