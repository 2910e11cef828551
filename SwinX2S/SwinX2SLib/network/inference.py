"""Memory-lean prediction: ``argmax(p + q)`` without the full-resolution tensors a plain forward pass keeps.

A plain ``model(coronal, sagittal)`` holds, per view, the full-resolution skip, the transposed-convolution output,
their concatenation, every intermediate of the last residual block and the 55-channel logits, then sums ``p + q``.
:func:`predict_labels` computes the same numbers in another order:

* the deep levels (1/2 ... 1/32 resolution) and the cross-view attention run as in :meth:`SwinX2S.forward`
  (both views as one batch);
* the two full-resolution residual blocks (level-0 skip and last up block) run in slabs along X: 3x3x3
  convolutions read a one-plane halo, convolutions whose input and output have the same width overwrite their
  input slab by slab (keeping one saved plane), instance-norm statistics are merged over slabs (float64) and
  applied in place, the transposed convolution and the 1x1x1 residual projections are recomputed per slab
  instead of being stored;
* the 1x1x1 head and the argmax run slab by slab on the two decoded views (:func:`logit_slabs` yields those
  slabs for callers that need both views' logits).

At most about three ``F``-channel full-resolution volumes are alive at once (about 1 GB for Tiny at
128 x 128 x 160) instead of the dozen a plain pass needs. The arithmetic is the model's; only the summation order
inside convolutions and normalisation statistics differs (differences of order 1e-6 in the logits).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from monai.networks.blocks import UnetResBlock, UnetrUpBlock

from .dimension_expansion import VIEWS
from .swin_x2s import SwinX2S

__all__ = ["logit_slabs", "predict_labels"]

_Source = Callable[[int, int], torch.Tensor]


def predict_labels(
    model: SwinX2S,
    coronal: torch.Tensor,
    sagittal: torch.Tensor,
    slab: int = 16,
    autocast_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Label volume ``argmax(p + q)`` of a Swin-X2S model, memory-lean (see the module docstring).

    Args:
        model: a :class:`SwinX2S` in eval mode.
        coronal: ``[B, N, X, Z]`` on the model's device.
        sagittal: ``[B, N, Y, Z]`` on the model's device.
        slab: planes along X processed at a time in the full-resolution stages (16 was fastest on a 2-core CPU).
        autocast_dtype: run under ``torch.autocast`` with this dtype (e.g. ``torch.bfloat16`` on CUDA); logits are
            summed in float32.

    Returns:
        ``[B, X, Y, Z]`` labels, ``torch.uint8`` when the model has at most 256 classes, else ``torch.int64``.
    """
    batch, _, size_x, size_z = coronal.shape
    dtype = torch.uint8 if model.num_classes <= 256 else torch.int64
    labels = torch.empty((batch, size_x, sagittal.shape[2], size_z), dtype=dtype, device=coronal.device)
    for start, stop, p, q in logit_slabs(model, coronal, sagittal, slab, autocast_dtype):
        p += q
        labels[:, start:stop] = p.argmax(1)
    return labels


def logit_slabs(
    model: SwinX2S,
    coronal: torch.Tensor,
    sagittal: torch.Tensor,
    slab: int = 16,
    autocast_dtype: torch.dtype | None = None,
) -> Iterator[tuple[int, int, torch.Tensor, torch.Tensor]]:
    """Both views' logits, slab by slab along X, computed memory-lean (see the module docstring).

    For consumers that need ``p`` and ``q`` separately (e.g. view agreement) without holding two full
    ``[B, C, X, Y, Z]`` volumes. Runs in inference mode (also while the consumer handles a slab).

    Args:
        model, coronal, sagittal, slab, autocast_dtype: as in :func:`predict_labels`.

    Yields:
        ``(start, stop, p, q)``: float32 logits ``[B, C, stop - start, Y, Z]`` of X planes ``start:stop`` of the
        coronal (p) and sagittal (q) branch; fresh tensors the consumer may modify.
    """
    if slab < 1:
        raise ValueError(f"slab must be >= 1, got {slab}")
    device_type = coronal.device.type
    amp = torch.autocast(device_type, dtype=autocast_dtype) if autocast_dtype is not None else contextlib.nullcontext()
    with torch.inference_mode(), amp:
        halves = model.decode_deep(model.encode(coronal, sagittal)).chunk(2)
        expand = model.dimension_expansion[0]
        decoded = []
        for half, image, view in zip(halves, (coronal, sagittal), VIEWS, strict=True):
            skip = _residual_block(model.encoder_blocks[0].layer, expand(image, view), slab)
            decoded.append(_up_block(model.decoder_blocks[-1], half, skip, slab))
            del skip
        del halves
        size_x = decoded[0].shape[2]
        for start in range(0, size_x, slab):
            stop = min(start + slab, size_x)
            yield start, stop, *(model.head(d[:, :, start:stop]).float() for d in decoded)


def _residual_block(block: UnetResBlock, inp: torch.Tensor, slab: int) -> torch.Tensor:
    """``UnetResBlock`` on a small input (the expanded image) with a full-resolution output, one output buffer."""
    out = _conv_slabs(block.conv1.conv, lambda a, b: inp[:, :, a:b], inp.shape[2], slab)
    _normalise_(out, block.norm1.eps, block.lrelu.negative_slope)
    _conv_in_place(block.conv2.conv, out, slab)
    _normalise_(out, block.norm2.eps, None)
    residual = (lambda a, b: block.conv3(inp[:, :, a:b])) if hasattr(block, "conv3") else (lambda a, b: inp[:, :, a:b])
    _add_normalised(out, residual, block.norm3.eps if hasattr(block, "norm3") else None, slab)
    return F.leaky_relu_(out, block.lrelu.negative_slope)


def _up_block(block: UnetrUpBlock, x: torch.Tensor, skip: torch.Tensor, slab: int) -> torch.Tensor:
    """``UnetrUpBlock`` (transposed conv, concatenation with ``skip``, residual block) computed in slabs.

    The transposed convolution (kernel 2, stride 2) is recomputed per slab from the half-resolution ``x``; the
    concatenation only ever exists for one slab.
    """
    res = block.conv_block
    size_x = skip.shape[2]

    def concatenated(start: int, stop: int) -> torch.Tensor:
        first, last = start // 2, (stop + 1) // 2
        up = block.transp_conv(x[:, :, first:last])[:, :, start - 2 * first : stop - 2 * first]
        return torch.cat((up, skip[:, :, start:stop]), dim=1)

    out = _conv_slabs(res.conv1.conv, concatenated, size_x, slab)
    _normalise_(out, res.norm1.eps, res.lrelu.negative_slope)
    _conv_in_place(res.conv2.conv, out, slab)
    _normalise_(out, res.norm2.eps, None)
    _add_normalised(out, lambda a, b: res.conv3(concatenated(a, b)), res.norm3.eps, slab)
    return F.leaky_relu_(out, res.lrelu.negative_slope)


def _with_halo(source: _Source, start: int, stop: int, size_x: int) -> torch.Tensor:
    """Planes ``start - 1 .. stop`` of the source along X, zero planes outside ``[0, size_x)``."""
    planes = source(max(start - 1, 0), min(stop + 1, size_x))
    left, right = int(start == 0), int(stop == size_x)
    return F.pad(planes, (0, 0, 0, 0, left, right)) if left or right else planes


def _conv3d(conv: torch.nn.Conv3d, planes: torch.Tensor) -> torch.Tensor:
    """``conv`` on planes that already carry their X halo: padding only along Y and Z."""
    return F.conv3d(planes, conv.weight, conv.bias, conv.stride, (0, *conv.padding[1:]), conv.dilation, conv.groups)


def _conv_slabs(conv: torch.nn.Conv3d, source: _Source, size_x: int, slab: int) -> torch.Tensor:
    """3x3x3 ``conv`` (stride 1, padding 1) of a virtual input given by ``source(start, stop)``, slab by slab."""
    out = None
    for start in range(0, size_x, slab):
        stop = min(start + slab, size_x)
        result = _conv3d(conv, _with_halo(source, start, stop, size_x))
        if out is None:
            out = result.new_empty((*result.shape[:2], size_x, *result.shape[3:]))
        out[:, :, start:stop] = result
    return out


def _conv_in_place(conv: torch.nn.Conv3d, buffer: torch.Tensor, slab: int) -> None:
    """3x3x3 ``conv`` with as many output as input channels, overwriting ``buffer`` slab by slab.

    Before a slab is overwritten its last plane is saved: it is the left halo of the next slab.
    """
    size_x = buffer.shape[2]
    previous = None
    for start in range(0, size_x, slab):
        stop = min(start + slab, size_x)
        parts = [previous if previous is not None else torch.zeros_like(buffer[:, :, :1]), buffer[:, :, start:stop]]
        parts.append(buffer[:, :, stop : stop + 1] if stop < size_x else torch.zeros_like(buffer[:, :, :1]))
        planes = torch.cat(parts, dim=2)
        previous = buffer[:, :, stop - 1 : stop].clone()
        buffer[:, :, start:stop] = _conv3d(conv, planes)


def _normalise_(x: torch.Tensor, eps: float, negative_slope: float | None) -> None:
    """Instance norm (no affine) in place, then LeakyReLU in place when ``negative_slope`` is given."""
    var, mean = torch.var_mean(x.flatten(2), dim=2, correction=0)  # one contiguous reduction per channel
    x.sub_(mean[..., None, None, None]).mul_(torch.rsqrt(var + eps)[..., None, None, None])
    if negative_slope is not None:
        F.leaky_relu_(x, negative_slope)


def _add_normalised(out: torch.Tensor, source: _Source, eps: float | None, slab: int) -> None:
    """``out += instance_norm(source)`` (or ``+= source`` when ``eps`` is None), the source computed per slab twice.

    The first pass merges per-slab means and variances in float64, the second adds the normalised slabs.
    """
    size_x = out.shape[2]
    mean = rstd = None
    if eps is not None:
        count, mean64, m2 = 0, 0.0, 0.0  # per-slab statistics merged exactly (Chan et al.) in float64
        for start in range(0, size_x, slab):
            part = source(start, min(start + slab, size_x))
            var_k, mean_k = torch.var_mean(part.flatten(2), dim=2, correction=0)
            n_k = part[0, 0].numel()
            delta = mean_k.double() - mean64
            mean64 = mean64 + delta * (n_k / (count + n_k))
            m2 = m2 + var_k.double() * n_k + delta.square() * (count * n_k / (count + n_k))
            count += n_k
        mean = mean64.to(out.dtype)[..., None, None, None]
        rstd = torch.rsqrt(m2 / count + eps).to(out.dtype)[..., None, None, None]
    for start in range(0, size_x, slab):
        stop = min(start + slab, size_x)
        part = source(start, stop)
        out[:, :, start:stop] += (part - mean) * rstd if mean is not None else part
