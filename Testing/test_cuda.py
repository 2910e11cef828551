"""The network on a CUDA device: float32 exactness against the published test vector, and the autocast precisions.

Skipped where no CUDA device is present (CI). Imports nothing beyond torch, MONAI, timm and safetensors, so it runs
on a GPU machine that has no SimpleITK or VTK.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from SwinX2SLib.checkpoints import model_from_published
from SwinX2SLib.network import create_model, logit_slabs, predict_labels
from SwinX2SLib.precision import exact_float32

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def published(shared_dir: Path) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """The published test vector's network on the GPU (eval mode) and its inputs / outputs (on the GPU)."""
    reference = shared_dir / "reference" / "official_model"
    config = json.loads((reference / "testvector_f12_config.json").read_text())
    weights = load_file(reference / "testvector_f12_weights.safetensors")
    model = model_from_published(weights, variant={k: config[k] for k in ("feature_size", "depths", "num_heads")})
    io = {k: v.cuda() for k, v in load_file(reference / "testvector_f12_io.safetensors").items()}
    return model.cuda(), io


def _slab_logits(model: torch.nn.Module, io: dict, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    slabs = list(logit_slabs(model, io["xa"][:1], io["xb"][:1], slab=8, **kwargs))
    return torch.cat([s[2] for s in slabs], dim=2), torch.cat([s[3] for s in slabs], dim=2)


def test_float32_paths_reproduce_the_published_test_vector(published) -> None:
    model, io = published
    p, q = _slab_logits(model, io)
    print(f"\nfast float32: max |p - p_ref| {(p - io['p'][:1]).abs().max():.2e}, "
          f"max |q - q_ref| {(q - io['q'][:1]).abs().max():.2e}")
    assert (p - io["p"][:1]).abs().max() < TOLERANCE
    assert (q - io["q"][:1]).abs().max() < TOLERANCE
    with torch.inference_mode():  # the plain forward pass under PyTorch's defaults (cuDNN may use TF32)
        p, q = model(io["xa"], io["xb"])
    print(f"plain forward, PyTorch defaults (cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}): "
          f"max |p - p_ref| {(p - io['p']).abs().max():.2e}")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_keeps_the_published_labels(published, dtype: torch.dtype) -> None:
    model, io = published
    p, q = _slab_logits(model, io, autocast_dtype=dtype)
    assert p.dtype == q.dtype == torch.float32
    reference = (io["p"][:1] + io["q"][:1]).argmax(1)
    agreement = ((p + q).argmax(1) == reference).float().mean().item()
    print(f"\n{dtype}: max |p - p_ref| {(p - io['p'][:1]).abs().max():.2e}, label agreement {agreement:.5f}")
    labels = predict_labels(model, io["xa"][:1], io["xb"][:1], autocast_dtype=dtype)
    assert torch.equal(labels.long(), (p + q).argmax(1))
    assert agreement > 0.99


def test_fast_labels_match_the_plain_forward_pass_in_float32() -> None:
    torch.manual_seed(0)
    model = create_model({"feature_size": 12, "depths": (2, 2, 2, 2), "num_heads": (1, 2, 4, 8)},
                         img_size=(64, 64, 96), num_classes=55).eval().cuda()
    coronal, sagittal = torch.rand(2, 1, 64, 96, device="cuda"), torch.rand(2, 1, 64, 96, device="cuda")
    with torch.inference_mode(), exact_float32():
        p, q = model(coronal, sagittal)
    labels = predict_labels(model, coronal, sagittal)
    differ = (labels.long() != (p + q).argmax(1)).sum().item()
    print(f"\nfast vs plain (true float32): labels differ in {differ} of {labels.numel()} voxels")
    assert differ <= labels.numel() * 1e-5
