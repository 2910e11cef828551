"""Published checkpoints of the comparison models: key names, sizes, loading.

The published code (``models/get_model.py``) saves each comparison network's bare ``state_dict``. This module maps
its key names onto this package's models (:mod:`SwinX2SLib.network`), recovers the input views and classes from the
tensor shapes and builds the model. :func:`SwinX2SLib.checkpoints.convert_published_state_dict` and
:func:`SwinX2SLib.checkpoints.model_from_published` call it when given a comparison model's name.

The published checkpoints were written with MONAI 1.3.0. Newer MONAI transformer blocks hold a layer norm for
cross-attention (``norm_cross_attn``) that UNETR never uses: it is added with its initial values (ones, zeros).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ModelError
from .network.registry import DEFAULT_IMG_SIZE, ArchitectureConfig

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["PUBLISHED_GRIDS", "baseline_from_published", "convert_baseline_state_dict", "infer_baseline_channels"]

_Rule = tuple[str, "str | Callable[[re.Match[str]], str]"]


def _shifted(prefix: str) -> Callable[[re.Match[str]], str]:
    """Published ModuleLists that start with an Identity: index ``i`` becomes ``i - 1`` under ``prefix``."""
    return lambda m: f"{prefix}.{int(m[1]) - 1}.{m[2]}"


_VOLUME = ((r"(.+)", r"net.\1"),)
_VIEW_ENCODERS = ((r"ap_encoder\.(.+)", r"coronal_encoder.\1"), (r"lat_encoder\.(.+)", r"sagittal_encoder.\1"))


@dataclass(frozen=True)
class _Format:
    """How one architecture's published checkpoint is laid out.

    Attributes:
        rules: ``(published key pattern, our key)`` pairs, first full match wins.
        volume_input: the first convolution reads ``2N`` channels (views as a volume) rather than ``N``.
        transposed_output: the last convolution is transposed (its weight is ``[in, out, ...]``).
    """

    rules: tuple[_Rule, ...]
    volume_input: bool
    transposed_output: bool


_FORMATS: dict[str, _Format] = {
    "UNet": _Format(_VOLUME, True, False),
    "AttentionUnet": _Format(_VOLUME, True, False),
    "UNETR": _Format(_VOLUME, True, False),
    "SwinUNETR": _Format(_VOLUME, True, False),
    "OneDConcat": _Format(
        (*_VIEW_ENCODERS, (r"fully_connected_bottlneck\.(.+)", r"bottleneck.\1"), (r"(decoder\..+)", r"\1")),
        False, True),
    "TwoDPermuteConcat": _Format(
        (*_VIEW_ENCODERS, (r"ap_expansion\.(.+)", r"coronal_expansion.\1"),
         (r"lat_expansion\.(.+)", r"sagittal_expansion.\1"), (r"(decoder\..+)", r"\1")),
        False, True),
    "MultiScale2DPermuteConcat": _Format(
        (*(rule for view, short in (("coronal", "ap"), ("sagittal", "lat")) for rule in (
            (rf"{short}_encoder\.conv1\.(.+)", rf"{view}_encoder.stem.\1"),
            (rf"{short}_encoder\.multiscale_encoder\.(\d+)\.encoders\.(.+)", rf"{view}_encoder.blocks.\1.layers.\2"),
            (rf"{short}_decoder_pipeline\.(.+)", rf"{view}_decoder.\1"),
            (rf"upconv2d_{short}_pipeline\.(\d+)\.(.+)", _shifted(f"{view}_upsample")),
        )),
         (r"fusion_decoder_pipeline\.(.+)", r"fusion.\1"),
         (r"upconv3d_pipeline\.(\d+)\.(.+)", _shifted("fusion_upsample")),
         (r"segmentation_head\.0\.(.+)", r"head.\1")),
        False, False),
    "CustomAutoEncoder": _Format(
        ((r"((?:encode|decode)\..+)", r"autoencoder.\1"), (r"bottleneck_fcn_encode\.1\.(.+)", r"to_latent.\1"),
         (r"bottleneck_fcn_decode\.0\.(.+)", r"from_latent.\1")),
        True, True),
}

PUBLISHED_GRIDS: dict[str, tuple[int, int, int]] = {
    name: (128, 128, 128) if name in ("OneDConcat", "CustomAutoEncoder") else tuple(DEFAULT_IMG_SIZE)
    for name in _FORMATS
}
"""Volume size of the published training runs (``scripts/models``): ``--roi_z=128`` for two models, else 160."""

_CROSS_NORM = re.compile(r"net\.vit\.blocks\.(\d+)\.norm1\.(weight|bias)")


def _architecture(architecture: str) -> str:
    return ArchitectureConfig(architecture).architecture


def convert_baseline_state_dict(
    state_dict: Mapping[str, torch.Tensor], architecture: str
) -> dict[str, torch.Tensor]:
    """Rename a comparison model's published state dict to this package's names (tensors unchanged).

    Args:
        state_dict: published key -> tensor (no ``module.`` prefix).
        architecture: published model name (``UNet``, ``OneDConcat``, ...).

    Returns:
        Our key -> tensor; for UNETR with the ``norm_cross_attn`` entries of newer MONAI added (ones, zeros).

    Raises:
        ModelError: keys that the published architecture does not have (they are named).
    """
    import torch

    name = _architecture(architecture)
    rules = [(re.compile(pattern), target) for pattern, target in _FORMATS[name].rules]
    converted: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        for pattern, target in rules:
            match = pattern.fullmatch(key)
            if match is not None:
                converted[target(match) if callable(target) else match.expand(target)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        shown = ", ".join(unknown[:8]) + (f", ... ({len(unknown)} in all)" if len(unknown) > 8 else "")
        raise ModelError(f"not a published {name} state dict: unknown key(s) {shown}")
    if name == "UNETR":
        for key, value in list(converted.items()):
            match = _CROSS_NORM.fullmatch(key)
            if match is not None:
                filled = torch.ones_like(value) if match[2] == "weight" else torch.zeros_like(value)
                converted.setdefault(f"net.vit.blocks.{match[1]}.norm_cross_attn.{match[2]}", filled)
    return converted


def infer_baseline_channels(state_dict: Mapping[str, torch.Tensor], architecture: str) -> tuple[int, int]:
    """X-ray images per view and output classes of a published comparison-model state dict.

    The first convolution kernel (the first tensor with 4 or more dimensions) reads the views; the last one
    writes the classes.

    Raises:
        ModelError: no convolution kernels, or an odd number of input channels for a model fed both views as one
            volume.
    """
    name = _architecture(architecture)
    layout = _FORMATS[name]
    kernels = [tensor.shape for tensor in state_dict.values() if tensor.ndim >= 4]
    if not kernels:
        raise ModelError(f"not a published {name} state dict: it holds no convolution kernels")
    channels = int(kernels[0][1])
    if layout.volume_input and channels % 2:
        raise ModelError(f"not a published {name} state dict: {channels} input channels (needs two per view)")
    return (channels // 2 if layout.volume_input else channels), int(kernels[-1][1 if layout.transposed_output else 0])


def baseline_from_published(
    state_dict: Mapping[str, torch.Tensor],
    architecture: str,
    source: str,
    img_size: Sequence[int] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a comparison model holding a published state dict's weights (eval mode).

    Args:
        state_dict: published state dict (no ``module.`` prefix).
        architecture: published model name.
        source: what the weights came from (for error messages).
        img_size: volume size; default :data:`PUBLISHED_GRIDS` (the size the published runs trained at). Models
            whose weights depend on the size (UNETR, OneDConcat, CustomAutoEncoder) refuse a wrong one.
        **kwargs: further model arguments (``dropout``).

    Raises:
        ModelError: unknown/missing keys or shapes that do not fit.
    """
    from .checkpoints import _load_strict
    from .network import create_model

    name = _architecture(architecture)
    in_channels, num_classes = infer_baseline_channels(state_dict, name)
    size = tuple(img_size) if img_size is not None else PUBLISHED_GRIDS[name]
    try:
        model = create_model(name, size, in_channels, num_classes, **kwargs)
    except ValueError as exc:
        raise ModelError(f"{source}: cannot build {name} for {size}: {exc}") from None
    _load_strict(model, convert_baseline_state_dict(state_dict, name), source)
    return model.eval()
