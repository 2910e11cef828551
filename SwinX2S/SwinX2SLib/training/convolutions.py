"""Fast and checked 3-D convolutions for training on the CPU: channels-last layout and bfloat16 kernels verified
against float32 before the first step.

oneDNN convolves channels-last (``torch.channels_last_3d``) bfloat16 tensors several times faster than the default
layout. Measured with PyTorch 2.14 on 2 Zen 4 threads for the built-in recipe's largest convolution (12 -> 12
channels, 3x3x3, 96x96x128): forward 16 / 50 ms, input gradient 18 / 48 ms, kernel gradient 21 / 156 ms
(channels-last / default layout). Two hazards come with it, and both are handled here:

* **Mixed layouts.** A convolution whose input, kernel and incoming gradient differ in layout takes other oneDNN
  paths, which returned garbage gradients under bfloat16 (NaN losses within 3-77 steps). :func:`prepare_convolutions`
  therefore makes all three channels-last at every call: the input before the convolution, the gradient by a hook
  on its output.
* **The output layer.** The heads whose outputs are the model's outputs (55 classes) stay in the default layout: the
  loss reads the logits contiguous, and converting them (and their gradients) costs more than the head's
  convolution gains.
* **Broken kernels.** Some of PyTorch 2.14's bfloat16 kernel-gradient kernels return inf for some shapes, in
  either layout: a 3x3x3 convolution of 24 or more channels over a 2 x 2 x 4 input, for example, the deepest level of
  a 32 x 32 x 64 network. Each convolution of the model is therefore run once, before training, on random data of the
  shape it will see, in the precision and layout it will train in, and compared with float32; one whose output,
  input gradient or kernel gradient is off by more than :data:`TOLERANCE` (relative to float32's largest value)
  runs in float32 instead. Such convolutions are the small, deep ones, so the cost of the fallback is small.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["TOLERANCE", "ConvolutionPlan", "prepare_convolutions"]

TOLERANCE = 0.05
"""Largest error of a half-precision convolution accepted by the check, relative to float32's largest value (a
correct bfloat16 convolution of the built-in recipe is off by 0.3-0.5 %)."""

_CHANNELS_LAST = torch.channels_last_3d


@dataclass(frozen=True)
class ConvolutionPlan:
    """How :func:`prepare_convolutions` set up a model's convolutions.

    Attributes:
        channels_last: kernels, inputs and gradients are channels-last.
        dtype: the half precision checked (None: float32 training, nothing checked).
        float32: names of the convolutions that run in float32 because their half-precision kernels failed the check.
        heads: names of the convolutions whose outputs are the model's outputs (kept in the default layout).
        checked: how many distinct convolutions (shape and parameters) were checked.
    """

    channels_last: bool
    dtype: torch.dtype | None
    float32: tuple[str, ...]
    heads: tuple[str, ...]
    checked: int


def prepare_convolutions(model: nn.Module, example: tuple[torch.Tensor, ...], *, dtype: torch.dtype | None,
                         channels_last: bool) -> ConvolutionPlan:
    """Set up every 3-D (transposed) convolution of ``model`` for training on the CPU, in place.

    Plain ``nn.Conv3d`` and ``nn.ConvTranspose3d`` modules change class to a subclass with the same parameters and
    state dict whose forward pass applies the layout and precision decided here (a deep copy keeps them).

    Args:
        model: the network, before its optimiser is built (kernels may change layout, not values).
        example: inputs of one training batch (any values; only their shapes matter), e.g. ``(coronal, sagittal)``.
        dtype: the autocast type the forward pass will run in on the CPU (``torch.bfloat16``), or None: nothing is
            checked (float32, or a GPU).
        channels_last: run the convolutions channels-last (kernels stored so; exports are written contiguous).

    Returns:
        What was done, for the run's log.
    """
    shapes, heads = _trace(model, example)
    failed: list[str] = []
    verdicts: dict[tuple, bool] = {}
    for name, module in model.named_modules():
        if type(module) not in _GUARDED or name not in shapes:
            continue
        layout = channels_last and name not in heads
        if layout:
            with torch.no_grad():
                module.weight.data = module.weight.data.contiguous(memory_format=_CHANNELS_LAST)
        exact = False
        if dtype is not None:
            key = (type(module), layout, shapes[name], tuple(module.weight.shape), module.stride, module.padding,
                   module.dilation, module.output_padding, module.groups)
            if key not in verdicts:
                verdicts[key] = _half_precision_is_accurate(module, shapes[name], dtype, layout)
            exact = not verdicts[key]
            if exact:
                failed.append(name)
        if channels_last or exact:
            module.__class__ = _GUARDED[type(module)]
            module.channels_last, module.exact = layout, exact
    return ConvolutionPlan(channels_last, dtype, tuple(failed), tuple(sorted(heads)), len(verdicts))


def _trace(model: nn.Module, example: tuple[torch.Tensor, ...]) -> tuple[dict[str, tuple[int, ...]], set[str]]:
    """The input shape of each convolution of ``model`` in one float32 forward pass of ``example``, and the names of
    the convolutions whose outputs are the model's outputs (its heads)."""
    shapes: dict[str, tuple[int, ...]] = {}
    outputs: dict[int, str] = {}

    def record(name: str) -> Callable[[nn.Module, tuple, torch.Tensor], None]:
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            shapes.setdefault(name, tuple(args[0].shape))
            outputs[id(output)] = name

        return hook

    training = model.training
    model.eval()  # the same shapes, and no random draws (dropout, stochastic depth) taken from the run's seed
    handles = [module.register_forward_hook(record(name)) for name, module in model.named_modules()
               if isinstance(module, tuple(_GUARDED))]
    try:
        with torch.no_grad():
            result = model(*example)
    finally:
        for handle in handles:
            handle.remove()
        model.train(training)
    results = result if isinstance(result, tuple | list) else (result,)
    return shapes, {outputs[id(t)] for t in results if id(t) in outputs}


def _half_precision_is_accurate(module: nn.Module, shape: tuple[int, ...], dtype: torch.dtype,
                                channels_last: bool) -> bool:
    """Whether ``module``'s convolution in ``dtype`` (and layout) matches float32 on random data of ``shape``: output,
    input gradient and kernel gradient, each within :data:`TOLERANCE` of float32's largest value."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=generator)
    weight = module.weight.detach().float().cpu().contiguous()
    transposed = isinstance(module, nn.ConvTranspose3d)
    params = (list(module.stride), list(module.padding), list(module.dilation), transposed,
              list(module.output_padding), module.groups)
    y = torch.ops.aten.convolution(x, weight, None, *params)
    grad = torch.randn(y.shape, generator=generator)
    reference = (y, *torch.ops.aten.convolution_backward(grad, x, weight, None, *params, [True, True, False])[:2])
    half = [t.to(dtype) for t in (x, weight, grad)]
    if channels_last:
        half = [t.contiguous(memory_format=_CHANNELS_LAST) for t in half]
    x, weight, grad = half
    with torch.autocast("cpu", enabled=False):
        result = (torch.ops.aten.convolution(x, weight, None, *params),
                  *torch.ops.aten.convolution_backward(grad, x, weight, None, *params, [True, True, False])[:2])
    for got, want in zip(result, reference, strict=True):
        error = (got.float() - want).abs().max() / want.abs().max().clamp_min(1e-12)
        if not bool(error <= TOLERANCE):  # NaN fails too
            return False
    return True


class _Guarded:
    """The forward pass of a checked convolution: input and incoming gradient made channels-last
    (``channels_last``; otherwise the input is made contiguous), and/or the convolution run in float32 outside
    autocast (``exact``)."""

    channels_last: bool
    exact: bool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=_CHANNELS_LAST if self.channels_last else torch.contiguous_format)
        if self.exact:
            with torch.autocast(x.device.type, enabled=False):
                y = super().forward(x.float())
        else:
            y = super().forward(x)
        if self.channels_last and y.requires_grad:
            y.register_hook(lambda g: g.contiguous(memory_format=_CHANNELS_LAST))
        return y


class _GuardedConv3d(_Guarded, nn.Conv3d):
    pass


class _GuardedConvTranspose3d(_Guarded, nn.ConvTranspose3d):
    pass


_GUARDED: dict[type, type] = {nn.Conv3d: _GuardedConv3d, nn.ConvTranspose3d: _GuardedConvTranspose3d}
"""The class a plain convolution becomes (same parameters and state dict, another forward pass)."""
