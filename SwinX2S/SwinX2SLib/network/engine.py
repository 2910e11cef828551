"""Which implementation computes a prediction: the plain forward pass or the hand-written fast path.

* ``plain``: ``model(coronal, sagittal)``, the PyTorch / MONAI modules themselves (the published computation).
* ``fast``: :mod:`.inference`'s memory-lean decoder. It does not call the MONAI blocks: it reads their parameters
  and settings (``conv1.conv.weight``, ``norm1.eps``, ``lrelu.negative_slope``, whether ``conv3`` exists, ...) and
  calls oneDNN (``torch.ops.aten.mkldnn_convolution``) itself, so it is only right for exactly the block structure
  it was written for. :func:`fast_path_problems` checks that structure, module by module; a model that fails the
  check (a new block type, an affine norm, a biased transposed convolution, a MONAI that builds its blocks
  differently, a PyTorch without the oneDNN operator) runs ``plain``.
* ``auto``: ``fast`` when the check passes, else ``plain``.

The engine only matters in float32: under ``torch.autocast`` (half precision on CUDA) the plain forward pass runs.
This module imports torch and MONAI only inside its functions (the command line lists :data:`ENGINES` without them).

Examples::

    >>> from SwinX2SLib.network import create_model
    >>> model = create_model("tiny", img_size=(64, 64, 96), num_classes=5)
    >>> fast_path_problems(model), resolve_engine(model, "auto")
    ([], 'fast')
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ENGINES", "fast_path_problems", "resolve_engine"]

ENGINES = ("auto", "plain", "fast")
"""Choices of ``--engine`` and of a model card's ``engine``."""


def resolve_engine(model: nn.Module, engine: str = "auto") -> str:
    """The engine that will run ``model``: ``"plain"`` or ``"fast"``.

    Args:
        model: the network.
        engine: one of :data:`ENGINES`; ``"fast"`` on a model that fails :func:`fast_path_problems` gives
            ``"plain"`` with a warning naming the first problem, ``"auto"`` gives it quietly.

    Raises:
        ValueError: ``engine`` is not one of :data:`ENGINES`.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "plain":
        return engine
    problems = fast_path_problems(model)
    if not problems:
        return "fast"
    if engine == "fast":
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        warnings.warn(f"engine 'fast' does not fit this model: {problems[0]}{more}; running the plain forward pass",
                      UserWarning, stacklevel=2)
    return "plain"


def fast_path_problems(model: nn.Module) -> list[str]:
    """Every way ``model`` (or this PyTorch) differs from what the fast path was written for; empty when it fits.

    The fast path expects a :class:`~SwinX2SLib.network.swin_x2s.SwinX2S` (that class exactly: a subclass may
    compute something else) with 6 encoder blocks (MONAI ``UnetrBasicBlock`` around a residual ``UnetResBlock``),
    5 MONAI ``UnetrUpBlock`` decoder blocks (2x2x2 stride-2 transposed convolution without bias, then a residual
    block with a 1x1x1 projection), 6 dimension expansions and a MONAI ``UnetOutBlock`` 1x1x1 head. Every residual
    block: two 3x3x3 stride-1 convolutions (padding 1, no dilation or groups, nothing else in their MONAI
    ``Convolution``), instance norms without affine parameters or running statistics, a LeakyReLU, and a 1x1x1
    projection with its instance norm exactly when the channel count changes.

    Returns:
        One line per problem, naming the module (e.g. ``"decoder_blocks.4.conv_block.norm1: ..."``).
    """
    import torch
    from monai.networks.blocks import UnetOutBlock, UnetrBasicBlock, UnetrUpBlock

    from .dimension_expansion import DimensionExpansion
    from .swin_x2s import SwinX2S

    if type(model) is not SwinX2S:
        return [f"model: expected SwinX2S, got {type(model).__name__}"]
    problems = []
    if torch.backends.mkldnn.is_available() and not hasattr(torch.ops.aten, "mkldnn_convolution"):
        problems.append(f"torch {torch.__version__}: no torch.ops.aten.mkldnn_convolution")
    for name, count in (("encoder_blocks", 6), ("decoder_blocks", 5), ("dimension_expansion", 6)):
        if len(getattr(model, name)) != count:
            problems.append(f"{name}: expected {count} modules, got {len(getattr(model, name))}")
    for i, expand in enumerate(model.dimension_expansion):
        if type(expand) is not DimensionExpansion:
            problems.append(f"dimension_expansion.{i}: expected DimensionExpansion, got {type(expand).__name__}")
        else:
            problems += _conv_problems(f"dimension_expansion.{i}.conv", expand.conv, torch.nn.Conv3d, 1, 1, 0)
    for i, block in enumerate(model.encoder_blocks):
        if type(block) is not UnetrBasicBlock:
            problems.append(f"encoder_blocks.{i}: expected MONAI UnetrBasicBlock, got {type(block).__name__}")
        else:
            problems += _res_block_problems(f"encoder_blocks.{i}.layer", block.layer)
    for i, block in enumerate(model.decoder_blocks):
        path = f"decoder_blocks.{i}"
        if type(block) is not UnetrUpBlock:
            problems.append(f"{path}: expected MONAI UnetrUpBlock, got {type(block).__name__}")
            continue
        transposed = _only_conv(f"{path}.transp_conv", block.transp_conv, problems)
        problems += _conv_problems(f"{path}.transp_conv.conv", transposed, torch.nn.ConvTranspose3d, 2, 2, 0)
        if transposed is not None and transposed.bias is not None:
            problems.append(f"{path}.transp_conv.conv: has a bias (the folded convolutions assume none)")
        problems += _res_block_problems(f"{path}.conv_block", block.conv_block)
        if not hasattr(block.conv_block, "conv3"):
            problems.append(f"{path}.conv_block: no conv3 (the folded up block needs the 1x1x1 projection)")
    if type(model.head) is not UnetOutBlock:
        problems.append(f"head: expected MONAI UnetOutBlock, got {type(model.head).__name__}")
    else:
        problems += _conv_problems("head.conv.conv", _only_conv("head.conv", model.head.conv, problems),
                                   torch.nn.Conv3d, 1, 1, 0)
    return problems


def _res_block_problems(path: str, block: nn.Module) -> list[str]:
    """How a MONAI ``UnetResBlock`` differs from what :func:`~.inference._res_block` and the fused blocks compute."""
    from monai.networks.blocks import UnetResBlock
    from torch import nn

    if type(block) is not UnetResBlock:
        return [f"{path}: expected MONAI UnetResBlock, got {type(block).__name__}"]
    problems: list[str] = []
    conv1 = _only_conv(f"{path}.conv1", block.conv1, problems)
    conv2 = _only_conv(f"{path}.conv2", block.conv2, problems)
    problems += _conv_problems(f"{path}.conv1.conv", conv1, nn.Conv3d, 3, 1, 1)
    problems += _conv_problems(f"{path}.conv2.conv", conv2, nn.Conv3d, 3, 1, 1)
    if type(block.lrelu) is not nn.LeakyReLU:
        problems.append(f"{path}.lrelu: expected LeakyReLU, got {type(block.lrelu).__name__}")
    projected = hasattr(block, "conv3")
    norms = ("norm1", "norm2", "norm3") if projected else ("norm1", "norm2")
    for name in norms:
        norm = getattr(block, name, None)
        if type(norm) is not nn.InstanceNorm3d or norm.affine or norm.track_running_stats:
            problems.append(f"{path}.{name}: expected InstanceNorm3d without affine parameters or running "
                            f"statistics, got {norm}")
    if projected:
        problems += _conv_problems(f"{path}.conv3.conv", _only_conv(f"{path}.conv3", block.conv3, problems),
                                   nn.Conv3d, 1, 1, 0)
    elif hasattr(block, "norm3"):
        problems.append(f"{path}: norm3 without conv3")
    if None not in (conv1, conv2):
        if conv2.in_channels != conv2.out_channels:
            problems.append(f"{path}.conv2.conv: {conv2.in_channels} channels in, {conv2.out_channels} out")
        if projected != (conv1.in_channels != conv1.out_channels):
            problems.append(f"{path}: a projection (conv3) {'with' if projected else 'without'} a change of "
                            f"channels ({conv1.in_channels} -> {conv1.out_channels})")
    return problems


def _only_conv(path: str, wrapper: nn.Module, problems: list[str]) -> nn.Module | None:
    """The ``conv`` of a MONAI ``Convolution`` that holds nothing else (no dropout, norm or activation), else None
    with a problem appended."""
    from monai.networks.blocks import Convolution

    children = [name for name, _ in wrapper.named_children()]
    if type(wrapper) is not Convolution or children != ["conv"]:
        problems.append(f"{path}: expected a MONAI Convolution holding only `conv`, got {type(wrapper).__name__} "
                        f"with {children}")
        return None
    return wrapper.conv


def _conv_problems(path: str, conv: nn.Module | None, kind: type, kernel: int, stride: int, padding: int) -> list[str]:
    """How ``conv`` differs from a ``kind`` convolution with this cubic kernel, stride and padding (no dilation, no
    groups, zero padding, no output padding); nothing to add when ``conv`` is None (already reported)."""
    if conv is None:
        return []
    if type(conv) is not kind:
        return [f"{path}: expected {kind.__name__}, got {type(conv).__name__}"]
    expected = {"kernel_size": (kernel,) * 3, "stride": (stride,) * 3, "padding": (padding,) * 3,
                "dilation": (1, 1, 1), "groups": 1, "padding_mode": "zeros",
                "output_padding": (0, 0, 0)}
    found = {key: getattr(conv, key, None) for key in expected}
    wrong = [f"{key}={found[key]}" for key in expected if found[key] != expected[key]]
    return [f"{path}: {', '.join(wrong)} (expected {kernel}x{kernel}x{kernel}, stride {stride}, padding {padding})"
            ] if wrong else []
