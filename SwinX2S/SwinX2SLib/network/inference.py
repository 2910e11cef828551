"""Fast, memory-lean prediction: ``argmax(p + q)`` computed in another order than :meth:`SwinX2S.forward`.

Nine tenths of a plain forward pass are the two full-resolution residual blocks of each view (the level-0 skip and
the last up block, ``F`` channels at ``X x Y x Z``) and the 55-channel logits. :func:`predict_labels` computes the
same numbers with less arithmetic and far less memory:

* every 3-D convolution runs channels-last through oneDNN on the CPU (also the thin slabs PyTorch would send to its
  slow kernel); each instance norm takes its statistics block by block while the blocks are in cache (mostly in the
  loop that produces them: :class:`_Moments`, float64 merge) and is applied in place in one pass, fused with the
  residual sum and the LeakyReLU that follow;
* every encoder block's input is a 2-D feature map repeated along the missing axis (dimension expansion:
  ``w_t * I + b_t``), so its first 3x3x3 convolution and its residual (the expanded input, or its 1x1x1 projection at
  level 0) are sums of outer products of 2-D convolutions of the map with 1-D profiles along the new axis, their
  instance-norm statistics follow in closed form, and only the second convolution runs in 3-D;
* in the last two up blocks (full and half resolution) the 2x2x2 stride-2 transposed convolution is folded into the
  3x3x3 convolution that reads it: each of the 8 output parities is a 2x2x2 convolution of the coarser input (8
  instead of 27 taps at the finer resolution), and its 1x1x1 projection likewise; the concatenation never exists
  (deeper up blocks are too small for the fold to pay);
* the residual projection overwrites the skip slab by slab, the second 3x3x3 convolution of every block its
  input, each view's half-resolution input is freed once decoded, and the two views' last features are summed
  before the shared 1x1x1 head, because ``head(a) + head(b) = W (a + b) + 2 bias``: the 55 logits exist one slab at
  a time.

Only the summation order inside convolutions and normalisation statistics differs from the plain forward pass
(logit differences of order 1e-5); on CUDA the convolutions run in true float32
(:func:`~SwinX2SLib.precision.exact_float32`), not in the TF32 that PyTorch allows cuDNN by default. With an
``autocast_dtype`` both functions run the plain forward pass under ``torch.autocast`` instead (for CUDA).
:func:`logit_slabs` yields both views' logits slab by slab for callers that need them separately (view agreement).

This path reads the MONAI blocks' parameters and settings instead of calling them, so it runs only on a model whose
structure :func:`~.engine.fast_path_problems` accepts; ``engine="plain"`` (or a model that fails the check) runs the
plain forward pass (see :mod:`.engine`). Each attribute it reads has a test (``Testing/test_engine.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from monai.networks.blocks import UnetResBlock, UnetrUpBlock
from torch import nn

from ..conventions import PROJECTION_AXIS, VIEWS
from ..precision import exact_float32
from .dimension_expansion import DimensionExpansion
from .engine import resolve_engine
from .swin_x2s import SwinX2S

__all__ = ["logit_slabs", "predict_labels", "view_logits"]

_CL = torch.channels_last_3d
# per axis, for output parity a of the stride-2 transposed convolution: (tap e of the folded 2-tap kernel, tap d of
# the 3x3x3 convolution, position p in the 2x2x2 transposed kernel); tap e reads half-resolution index i + a + e - 1
_FOLD = {0: ((0, 0, 1), (1, 1, 0), (1, 2, 1)), 1: ((0, 0, 0), (0, 1, 1), (1, 2, 0))}
_PARITIES = [(a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1)]
_CHUNK_ELEMENTS = 1 << 20  # values per block of the normalisation loops (4 MB of float32: stays in cache)


def predict_labels(
    model: nn.Module,
    coronal: torch.Tensor,
    sagittal: torch.Tensor,
    slab: int = 4,
    autocast_dtype: torch.dtype | None = None,
    engine: str = "auto",
) -> torch.Tensor:
    """Label volume ``argmax(p + q)`` of a Swin-X2S model, fast and memory-lean (see the module docstring).

    Args:
        model: a :class:`SwinX2S` in eval mode (a comparison model runs its plain forward pass: ``argmax`` of its
            logits).
        coronal: ``[B, N, X, Z]`` on the model's device.
        sagittal: ``[B, N, Y, Z]`` on the model's device.
        slab: planes along X per step of the slab-wise work (in-place convolution, residual projection, head +
            argmax): smaller slabs, smaller temporaries.
        autocast_dtype: run the plain forward pass under ``torch.autocast`` with this dtype instead (for CUDA,
            where memory is not the constraint; see :mod:`SwinX2SLib.precision`); logits are summed in float32, and
            a case whose logits overflow is computed again in float32 (with a warning).
        engine: the float32 computation, one of :data:`~.engine.ENGINES` (see :func:`~.engine.resolve_engine`).

    Returns:
        ``[B, X, Y, Z]`` labels, ``torch.uint8`` when the model has at most 256 classes, else ``torch.int64``.
    """
    _check_slab(slab)
    dtype = torch.uint8 if model.num_classes <= 256 else torch.int64
    logits = _plain_logits(model, coronal, sagittal, autocast_dtype, engine)
    if logits is not None:
        with torch.inference_mode():
            return (logits[0].float() + logits[1].float()).argmax(1).to(dtype)
    batch, _, size_x, size_z = coronal.shape
    labels = torch.empty((batch, size_x, sagittal.shape[2], size_z), dtype=dtype, device=coronal.device)
    weight, bias = _head(model)
    with torch.inference_mode(), exact_float32():
        cases = _deep_halves(model, coronal, sagittal, slab)
        for index in range(batch):
            halves, cases[index] = list(cases[index]), None
            images = coronal[index : index + 1], sagittal[index : index + 1]
            total = None
            for features in _decoded_views(model, halves, *images, slab):
                total = features if total is None else total.add_(features)
                del features
            flat = _flat(total)  # [X, Y*Z, F]
            buffer = flat.new_empty((slab * flat.shape[1], len(bias)))  # one slab of logits, reused
            for start, stop in _slabs(size_x, slab):
                rows = flat[start:stop].flatten(0, 1)
                logits = torch.addmm(bias, rows, weight.t(), beta=2.0, out=buffer[: len(rows)])
                labels[index, start:stop] = logits.argmax(1).view(stop - start, *labels.shape[2:])
    return labels


def logit_slabs(
    model: nn.Module,
    coronal: torch.Tensor,
    sagittal: torch.Tensor,
    slab: int = 4,
    autocast_dtype: torch.dtype | None = None,
    engine: str = "auto",
) -> Iterator[tuple[int, int, torch.Tensor, torch.Tensor]]:
    """Both views' logits, slab by slab along X, computed as in :func:`predict_labels` (batch size 1).

    For consumers that need ``p`` and ``q`` separately (e.g. view agreement) without two full ``[1, C, X, Y, Z]``
    volumes. Runs in inference mode (also while the consumer handles a slab). A comparison model's one logits
    volume is handed out as both ``p`` and ``q`` (:func:`view_logits`).

    Args:
        model, coronal, sagittal, slab, autocast_dtype, engine: as in :func:`predict_labels` (where the plain
            forward pass runs, its logits are handed out slab by slab).

    Yields:
        ``(start, stop, p, q)``: float32 logits ``[1, C, stop - start, Y, Z]`` (channels-last strides) of X planes
        ``start:stop`` of the coronal (p) and sagittal (q) branch; fresh tensors the consumer may modify.
    """
    _check_slab(slab)
    if coronal.shape[0] != 1:
        raise ValueError(f"logit_slabs takes one case at a time, got a batch of {coronal.shape[0]}")
    logits = _plain_logits(model, coronal, sagittal, autocast_dtype, engine)
    if logits is not None:
        with torch.inference_mode():
            for start, stop in _slabs(logits[0].shape[2], slab):
                yield start, stop, *(t[:, :, start:stop].to(torch.float32, copy=True) for t in logits)
        return
    weight, bias = _head(model)
    with torch.inference_mode(), exact_float32():
        halves = list(_deep_halves(model, coronal, sagittal, slab)[0])
        decoded = [_flat(features) for features in _decoded_views(model, halves, coronal, sagittal, slab)]
        size_x, size_y, size_z = model.img_size
        for start, stop in _slabs(size_x, slab):
            yield start, stop, *(
                torch.addmm(bias, d[start:stop].flatten(0, 1), weight.t())
                .view(1, stop - start, size_y, size_z, -1)
                .permute(0, 4, 1, 2, 3)
                for d in decoded
            )


def view_logits(output: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The two views' logits ``(p, q)`` of a network's output.

    Swin-X2S returns one logits volume per view; a comparison model (:func:`~.registry.list_architectures`) returns
    one, which stands for both: its prediction ``argmax(p + q)`` is its own argmax, the cross-view KL term of
    :class:`~SwinX2SLib.loss.SwinX2SLoss` is zero (the published trainer used DiceCE alone for these models) and
    the two views always agree.
    """
    return output if isinstance(output, tuple) else (output, output)


def _plain_logits(
    model: SwinX2S, coronal: torch.Tensor, sagittal: torch.Tensor, dtype: torch.dtype | None, engine: str
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(p, q)`` of the plain forward pass, under ``torch.autocast(dtype)`` when ``dtype`` is given, else in
    float32 when ``engine`` resolves to ``"plain"``; ``None`` when the fast path is to run: in float32 with the
    ``fast`` engine, or after (with a warning) an autocast logit that is not finite (float16 overflows above
    65504) and the fast engine for the float32 recomputation. A comparison model has no fast path (``auto``
    resolves to ``plain`` for it)."""
    if dtype is not None:
        with torch.inference_mode(), torch.autocast(coronal.device.type, dtype=dtype):
            p, q = view_logits(model(coronal, sagittal))
            if bool(torch.isfinite(p).all() and torch.isfinite(q).all()):
                return p, q
        warnings.warn(f"the network's logits overflowed in {str(dtype).removeprefix('torch.')}; computing this "
                      "case in float32", UserWarning, stacklevel=3)
    if resolve_engine(model, engine) == "fast":
        return None
    with torch.inference_mode(), exact_float32():
        return view_logits(model(coronal, sagittal))


def _check_slab(slab: int) -> None:
    if slab < 1:
        raise ValueError(f"slab must be >= 1, got {slab}")


def _slabs(length: int, slab: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of consecutive slabs of ``slab`` planes covering ``range(length)``; the last may be shorter."""
    for start in range(0, length, slab):
        yield start, min(start + slab, length)


def _head(model: SwinX2S) -> tuple[torch.Tensor, torch.Tensor]:
    """The shared 1x1x1 output convolution as a matrix ``[C, F]`` and a bias ``[C]``."""
    conv = model.head.conv.conv
    weight = conv.weight.flatten(1)
    return weight, conv.bias if conv.bias is not None else weight.new_zeros(weight.shape[0])


def _flat(volume: torch.Tensor) -> torch.Tensor:
    """A channels-last ``[1, C, X, Y, Z]`` volume as its memory: ``[X, Y * Z, C]`` (a view)."""
    return volume[0].permute(1, 2, 3, 0).flatten(1, 2)


def _deep_halves(
    model: SwinX2S, coronal: torch.Tensor, sagittal: torch.Tensor, slab: int
) -> list[tuple[torch.Tensor, ...] | None]:
    """Encoder, deep decoder levels and cross-view attention of both views (as :meth:`SwinX2S.encode` and
    :meth:`SwinX2S.decode_deep`, channels-last with the fast blocks below).

    Returns:
        Per case of the batch, the coronal and sagittal inputs of the last up block, ``[1, F, X/2, Y/2, Z/2]``.
    """
    model.check_views(coronal, sagittal)
    hidden = model.encoder(torch.cat((coronal, sagittal)))
    batch = coronal.shape[0]
    features = []
    for h, expand, block in zip(hidden, model.dimension_expansion[1:], model.encoder_blocks[1:], strict=True):
        features.append(torch.cat([
            _expanded_block(block.layer, expand, h[i : i + 1], VIEWS[i // batch], slab) for i in range(2 * batch)]))
    features[-1] = torch.cat(model.cross_view_attention(*features[-1].chunk(2))).contiguous(memory_format=_CL)
    x = features.pop()
    for block in model.decoder_blocks[:-2]:
        x = _up_block(block, x, features.pop())
    # half resolution: the folded up block (as at full resolution), one view of one case at a time
    skip = features.pop()
    halves = [_folded_up_block(model.decoder_blocks[-2], x[i : i + 1], skip[i : i + 1], slab) for i in range(len(x))]
    return [(halves[i], halves[batch + i]) for i in range(batch)]


def _decoded_views(
    model: SwinX2S, halves: list[torch.Tensor], coronal: torch.Tensor, sagittal: torch.Tensor, slab: int
) -> Iterator[torch.Tensor]:
    """Each view's full-resolution features of one case (coronal first), ``[1, F, X, Y, Z]`` channels-last: the
    level-0 block and the last up block, whose half-resolution input comes from ``halves`` (that case's two, as from
    :func:`_deep_halves`); the list is emptied as it goes and nothing else holds a half, so that each is freed as
    soon as its up block no longer needs it."""
    for image, view in zip((coronal, sagittal), VIEWS, strict=True):
        yield _folded_up_block(model.decoder_blocks[-1], halves.pop(0), _expanded_block(
            model.encoder_blocks[0].layer, model.dimension_expansion[0], image, view, slab), slab)


# ---------------------------------------------------------------------------------------------------------------
# generic blocks (deep levels), channels-last


def _conv3d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, padding: int | tuple[int, ...] = 0,
    stride: int | tuple[int, ...] = 1,
) -> torch.Tensor:
    """``F.conv3d`` (no dilation, no groups), always through oneDNN for float32 on the CPU.

    PyTorch's dispatcher sends a batch-1 3x3x3 convolution to its slow im2col kernel when ``C * D * H <= 20480``
    (thin slabs, few channels): a ``[1, 12, 18, 64, 96]`` slab took 103 ms that way and 7.6 ms through oneDNN.
    """
    if x.device.type != "cpu" or x.dtype != torch.float32 or not torch.backends.mkldnn.is_available():
        return F.conv3d(x, weight, bias, stride, padding)
    padding, stride = ([v] * 3 if isinstance(v, int) else list(v) for v in (padding, stride))
    return torch.ops.aten.mkldnn_convolution(x, weight.contiguous(), bias, padding, stride, [1, 1, 1], 1)


def _conv(x: torch.Tensor, conv: nn.Conv3d) -> torch.Tensor:
    return _conv3d(x, conv.weight, conv.bias, conv.padding, conv.stride).contiguous(memory_format=_CL)


def _rows(volume: torch.Tensor) -> torch.Tensor:
    """A channels-last ``[1, C, X, Y, Z]`` volume (or an X slab of one) as its memory: ``[X * Y * Z, C]`` (a view)."""
    return volume[0].permute(1, 2, 3, 0).view(-1, volume.shape[1])


def _chunks(rows: torch.Tensor) -> Iterator[torch.Tensor]:
    """Consecutive blocks of ``rows`` ``[n, C]`` of about :data:`_CHUNK_ELEMENTS` values each (views)."""
    step = max(_CHUNK_ELEMENTS // rows.shape[1], 1)
    return (rows[start:stop] for start, stop in _slabs(len(rows), step))


class _Moments:
    """Per-channel mean and variance of rows seen block by block, for instance norms fused into the loops that
    produce (or last read) the rows, while they are in cache.

    Per block, in float32: the mean ``m``, then the sums of ``x - m`` and of its square (a sum, a subtraction, a
    square and two sums: far faster than a strided variance reduction, and no cancellation); in float64 at the end:
    each block's mean and sum of squared deviations corrected for the rounding of ``m`` (the corrected two-pass
    algorithm), merged across blocks (Chan et al.).
    """

    def __init__(self) -> None:
        self._counts: list[int] = []
        self._sums: list[torch.Tensor] = []  # per block: [m, sum(x - m), sum((x - m)^2)]
        self._buffer: torch.Tensor | None = None

    def update(self, rows: torch.Tensor) -> None:
        """Take in ``rows`` ``[n, C]`` (read only)."""
        for block in _chunks(rows):
            if self._buffer is None or self._buffer.shape[0] < len(block):
                self._buffer = block.new_empty(block.shape)
            mean = block.sum(0).div_(len(block))
            deviation = torch.sub(block, mean, out=self._buffer[: len(block)])
            self._counts.append(len(block))
            self._sums.append(torch.stack((mean, deviation.sum(0), deviation.mul_(deviation).sum(0))))

    def scale_shift(self, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(1 / sqrt(var + eps), -mean / sqrt(var + eps))`` per channel: the norm as ``scale * x + shift``."""
        counts = torch.tensor(self._counts, dtype=torch.float64, device=self._buffer.device)[:, None]
        rounded, deviations, squares = torch.stack(self._sums).double().unbind(1)  # [blocks, C] each
        means = rounded + deviations / counts
        squares = squares - deviations.square() / counts
        total = counts.sum()
        mean = (means * counts).sum(0) / total
        variance = (squares.sum(0) + ((means - mean).square() * counts).sum(0)) / total
        scale = (variance + eps).rsqrt()
        dtype, self._buffer = self._buffer.dtype, None  # the block buffer is no longer needed
        return scale.to(dtype), (-mean * scale).to(dtype)


def _normalize_(
    rows: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, negative_slope: float | None = None
) -> None:
    """``rows = scale * rows + shift`` in place, block by block, then LeakyReLU if given."""
    for block in _chunks(rows):
        torch.addcmul(shift, block, scale, out=block)
        if negative_slope is not None:
            F.leaky_relu_(block, negative_slope)


def _instance_norm_(x: torch.Tensor, eps: float, negative_slope: float | None = None) -> torch.Tensor:
    """Instance norm (no affine) of a channels-last ``[B, C, X, Y, Z]`` volume in place, then LeakyReLU if given:
    one pass for the statistics (:class:`_Moments`), one to apply them."""
    for sample in x.split(1):
        rows, moments = _rows(sample), _Moments()
        moments.update(rows)
        _normalize_(rows, *moments.scale_shift(eps), negative_slope)
    return x


def _res_block(block: UnetResBlock, x: torch.Tensor) -> torch.Tensor:
    """MONAI ``UnetResBlock`` (stride 1) on a channels-last volume."""
    slope = block.lrelu.negative_slope
    out = _instance_norm_(_conv(x, block.conv1.conv), block.norm1.eps, slope)
    out = _instance_norm_(_conv(out, block.conv2.conv), block.norm2.eps)
    if hasattr(block, "conv3"):
        x = _instance_norm_(_conv(x, block.conv3.conv), block.norm3.eps)
    return F.leaky_relu_(out.add_(x), slope)


def _up_block(block: UnetrUpBlock, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """MONAI ``UnetrUpBlock``: transposed convolution, concatenation with the skip, residual block."""
    transp = block.transp_conv.conv
    up = F.conv_transpose3d(x, transp.weight, transp.bias, transp.stride)
    return _res_block(block.conv_block, torch.cat((up, skip), 1).contiguous(memory_format=_CL))


# ---------------------------------------------------------------------------------------------------------------
# full-resolution blocks


def _expanded_block(
    block: UnetResBlock, expand: DimensionExpansion, image: torch.Tensor, view: str, slab: int
) -> torch.Tensor:
    """``block(expand(image, view))`` for one view of one case without ever convolving the expanded image in 3-D.

    The expanded image is ``E[n, t, u, z] = w_t I[n, u, z] + b_t`` (``t`` the new axis, zero outside the volume), so
    ``conv1(E) = sum_d (w shifted by d) (x) conv2d(I, K[d]) + (b shifted by d) (x) conv2d(1, K[d])`` over the 3 taps
    ``d`` of the kernel along the new axis, its instance norm follows in closed form, and the residual (``E``
    itself, or its 1x1x1 projection ``w (x) K3 I + b (x) K3 1`` and that projection's closed-form norm) is added as
    outer products too. Only the second 3x3x3 convolution runs in 3-D (in place, its norm fused).

    Args:
        image: the level's 2-D features ``[1, N, U, Z]`` (the raw views at level 0, an encoder hidden state above).

    Returns:
        ``[1, F, X, Y, Z]`` channels-last.
    """
    length = expand.length
    w, b = expand.conv.weight.flatten(), expand.conv.bias
    axis = PROJECTION_AXIS[view]  # the volume axis the view integrated over: the one the expansion adds
    size = list(image.shape[2:])
    size.insert(axis, length)
    image_and_ones = torch.cat((image, torch.ones_like(image)))  # the terms of w and of b
    w_pad, b_pad = F.pad(w, (1, 1)), F.pad(b, (1, 1))
    profiles, planes = [], []
    for d in range(3):
        kernel = block.conv1.conv.weight.select(2 + axis, d).contiguous()  # [F, N, 3, 3] over the image's axes
        profiles += [w_pad[d : d + length], b_pad[d : d + length]]
        planes.append(F.conv2d(image_and_ones, kernel, padding=1))
    profiles, planes = torch.stack(profiles, 1), torch.cat(planes)
    # instance norm in closed form, written with the outer products (normalised planes and a constant term)
    mean, scale = (t[None, :, None, None] for t in _outer_statistics(profiles, planes, block.norm1.eps))
    profiles = torch.cat((profiles, torch.ones_like(profiles[:, :1])), 1)
    planes = torch.cat((planes * scale, (-mean * scale).expand_as(planes[:1])))
    slope = block.lrelu.negative_slope
    out = torch.empty((1, planes.shape[1], *size), dtype=planes.dtype, device=planes.device, memory_format=_CL)
    first = _OuterSum(profiles, planes, axis)
    for start, stop in _slabs(size[0], slab):
        first.add_to(out, start, stop, accumulate=False)
        F.leaky_relu_(out[:, :, start:stop], slope)
    del first
    convolved = _Moments()
    out = _conv_in_place(out, block.conv2.conv, slab, convolved)
    # residual: the expanded image, or its projection normalised in closed form
    if hasattr(block, "conv3"):
        projection = block.conv3.conv.weight.flatten(1)  # [F, N]
        image_term = torch.einsum("fn,bnuz->bfuz", projection, image)
        constant = projection.sum(1)[None, :, None, None].expand_as(image_term)
        mean, norm = (t[None, :, None, None] for t in _outer_statistics(
            torch.stack((w, b), 1), torch.cat((image_term, constant)), block.norm3.eps))
        residual = _OuterSum(torch.stack((w, b, torch.ones_like(w)), 1), torch.cat(
            (image_term * norm, constant * norm, (-mean * norm).expand_as(image_term))), axis)
    else:  # as many channels in as out: the identity
        residual = _OuterSum(torch.stack((w, b), 1), image_and_ones, axis)
    scale, shift = convolved.scale_shift(block.norm2.eps)
    for start, stop in _slabs(size[0], slab):
        _normalize_(_rows(out[:, :, start:stop]), scale, shift)
        residual.add_to(out, start, stop)
        F.leaky_relu_(out[:, :, start:stop], slope)
    return out


class _OuterSum:
    """``sum_k profiles[:, k] (x) planes[k]``, written X planes at a time into a channels-last ``[1, F, X, Y, Z]``
    volume: 1-D profiles ``[L, K]`` along volume axis ``axis`` (0 = X, 1 = Y), 2-D planes ``[K, F, U, Z]`` over the
    other two axes (laid out once for the batched matrix products)."""

    def __init__(self, profiles: torch.Tensor, planes: torch.Tensor, axis: int) -> None:
        planes = planes.permute(0, 2, 3, 1)  # [K, U, Z, F]
        self.profiles, self.axis = profiles, axis
        if axis == 0:  # out[x, (y, z, f)] = profiles[x, k] @ planes[k, (y, z, f)]
            self.planes = planes.reshape(1, len(planes), -1)
        else:  # out[x][y, (z, f)] = profiles[y, k] @ planes[k, x, (z, f)]
            self.planes = planes.permute(1, 0, 2, 3).reshape(planes.shape[1], len(planes), -1)

    def add_to(self, out: torch.Tensor, start: int, stop: int, accumulate: bool = True) -> None:
        """Add the sum to X planes ``start:stop`` of ``out``, or write it there when not ``accumulate``."""
        target = _flat(out)[start:stop]  # [n, Y*Z, F]
        if self.axis == 0:
            target, batch1, batch2 = target.view(1, stop - start, -1), self.profiles[None, start:stop], self.planes
        else:
            target = target.view(stop - start, out.shape[3], -1)
            batch1, batch2 = self.profiles.expand(stop - start, *self.profiles.shape), self.planes[start:stop]
        target.baddbmm_(batch1, batch2, beta=float(accumulate))


def _outer_statistics(profiles: torch.Tensor, planes: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and ``1 / sqrt(var + eps)`` of ``sum_k profiles[:, k] (x) planes[k]`` in closed form (float64).

    ``profiles`` ``[L, K]``, ``planes`` ``[K, F, U, Z]``: the mean is ``sum_k <p_k> <P_k>`` and the second moment
    ``sum_kl <p_k p_l> <P_k P_l>`` (``<>`` the mean over the line or the plane).
    """
    p = profiles.double()
    v = planes.double().flatten(2)  # [K, F, U*Z]
    mean = torch.einsum("k,kf->f", p.mean(0), v.mean(2))
    second = torch.einsum("kl,kfn,lfn->f", p.t() @ p / p.shape[0], v, v) / v.shape[2]
    rstd = (second - mean.square() + eps).rsqrt()
    return mean.to(planes.dtype), rstd.to(planes.dtype)


def _folded_up_block(
    block: UnetrUpBlock, x: torch.Tensor, skip: torch.Tensor, slab: int
) -> torch.Tensor:
    """``block(x, skip)`` of one view of one case with the transposed convolution folded into its consumers.

    ``x`` ``[1, C_x, n_x, n_y, n_z]`` (released before the second convolution), ``skip`` ``[1, C, 2 n_x, 2 n_y,
    2 n_z]`` channels-last (overwritten by the residual projection); the folded convolutions run in slabs of
    ``slab`` half-resolution planes and the second convolution overwrites the first one's output slab by slab, so
    the block needs two full-resolution volumes and slab temporaries. Each instance norm's statistics are taken while
    its slabs are in cache; the last two norms, the residual sum and the LeakyReLU are one pass.

    Returns ``[1, C, 2 n_x, 2 n_y, 2 n_z]`` channels-last.
    """
    res = block.conv_block
    transposed = block.transp_conv.conv.weight  # [C_x, C_up, 2, 2, 2]
    up_channels = transposed.shape[1]
    conv1 = res.conv1.conv.weight
    projection = res.conv3.conv.weight.flatten(1)  # [F, C_up + C_skip]
    folded = _folded_kernels(conv1[:, :up_channels], transposed)
    n_x, n_y, n_z = x.shape[2:]
    out = _conv3d(skip, conv1[:, up_channels:], padding=1).contiguous(memory_format=_CL)
    convolved = _Moments()
    for i0, i1 in _slabs(n_x, slab):  # in slabs of half planes: output plane 2 i + a reads x[i + a - 1], x[i + a]
        for (a, b, c), kernel in folded.items():  # padding 1 covers both parities' windows; each keeps n of n + 1
            low, high = max(i0 + a - 1, 0), min(i1 + a, n_x)
            pad = int(i0 + a - 1 < 0 or i1 + a > n_x)  # zero planes along X only where the volume ends
            part = _conv3d(x[:, :, low:high], kernel, padding=(pad, 1, 1))
            rows = slice(i0 + a - 1 - low + pad, i1 + a - 1 - low + pad)
            out[:, :, 2 * i0 + a : 2 * i1 : 2, b::2, c::2] += part[:, :, rows, b : b + n_y, c : c + n_z]
        convolved.update(_rows(out[:, :, 2 * i0 : 2 * i1]))
    slope = res.lrelu.negative_slope
    _normalize_(_rows(out), *convolved.scale_shift(res.norm1.eps), slope)
    # residual projection of [up, skip] written over the skip, slab by slab (a point-wise map) as matrix products
    # on the channels-last memory; the up part is one product for all 8 parities, interleaved by a strided view
    skip_matrix = projection[:, up_channels:].t()  # [C_skip, F]
    up_matrix = torch.einsum("oc,icabd->iabdo", projection[:, :up_channels], transposed).flatten(1)  # [C_x, 8F]
    skip_memory, x_memory = _flat(skip), _flat(x)  # [X, Y*Z, C], [X/2, Y/2*Z/2, C]
    step = slab + slab % 2  # even: planes start..stop of both parities come from half planes start/2..stop/2
    part_buffer = skip.new_empty((step * skip_memory.shape[1], skip_matrix.shape[1]))  # reused slab temporaries
    up_buffer = x.new_empty((step // 2 * x_memory.shape[1], up_matrix.shape[1]))
    projected = _Moments()
    for start, stop in _slabs(skip.shape[2], step):
        rows, half_rows = skip_memory[start:stop].flatten(0, 1), x_memory[start // 2 : stop // 2].flatten(0, 1)
        part = torch.mm(rows, skip_matrix, out=part_buffer[: len(rows)])
        up = torch.mm(half_rows, up_matrix, out=up_buffer[: len(half_rows)])
        interleaved = up.view(-1, n_y, n_z, 2, 2, 2, skip_matrix.shape[1]).permute(0, 3, 1, 4, 2, 5, 6)
        part.view(interleaved.shape).add_(interleaved)
        projected.update(part)
        skip_memory[start:stop] = part.view(stop - start, -1, part.shape[1])
    # the slab temporaries and (unless the caller holds it) the half-resolution input, before the convolution's peak
    del part_buffer, up_buffer, part, up, interleaved, half_rows, x_memory, x
    skip_scale, skip_shift = projected.scale_shift(res.norm3.eps)
    convolved = _Moments()
    out = _conv_in_place(out, res.conv2.conv, slab, convolved)
    # leaky(norm2(out) + norm3(skip)) = leaky(scale2 out + scale3 skip + shift2 + shift3), block by block
    scale, shift = convolved.scale_shift(res.norm2.eps)
    shift += skip_shift
    for block_out, block_skip in zip(_chunks(_rows(out)), _chunks(_rows(skip)), strict=True):
        torch.addcmul(shift, block_out, scale, out=block_out).addcmul_(block_skip, skip_scale)
        F.leaky_relu_(block_out, slope)
    return out


def _conv_in_place(x: torch.Tensor, conv: nn.Conv3d, slab: int, moments: _Moments) -> torch.Tensor:
    """3x3x3 ``conv`` (stride 1, padding 1, as many output as input channels) overwriting ``x`` slab by slab along X.

    Each slab reads one neighbouring plane on either side; its result is written back once the next slab has
    been computed (which still reads the slab's last plane), so two slabs of temporaries replace a second volume.
    ``moments`` takes in each result slab while it is in cache (for the instance norm that follows).
    """
    size_x = x.shape[2]
    pending = None
    for start, stop in _slabs(size_x, slab):
        low, high = max(start - 1, 0), min(stop + 1, size_x)
        pad = int(start == 0 or stop == size_x)  # zero planes along X only where the volume ends
        result = _conv3d(x[:, :, low:high], conv.weight, conv.bias, padding=(pad, 1, 1))
        first = start - low - 1 + pad  # a plane that saw a zero beyond the slab is dropped
        result = result[:, :, first : first + stop - start].contiguous(memory_format=_CL)
        moments.update(_rows(result))
        if pending is not None:
            x[:, :, pending[0] : pending[1]] = pending[2]
        pending = (start, stop, result)
    x[:, :, pending[0] : pending[1]] = pending[2]
    return x


def _folded_kernels(conv: torch.Tensor, transposed: torch.Tensor) -> dict[tuple[int, int, int], torch.Tensor]:
    """3x3x3 ``conv`` ``[O, C, 3, 3, 3]`` after a 2x2x2 stride-2 transposed convolution ``[I, C, 2, 2, 2]``, as one
    2x2x2 kernel ``[O, I, 2, 2, 2]`` per output parity (for the half-resolution input padded by one, parity ``a``
    reads the window starting at ``a``)."""
    kernels = {}
    for a, b, c in _PARITIES:
        kernel = conv.new_zeros((conv.shape[0], transposed.shape[0], 2, 2, 2))
        for ex, dx, px in _FOLD[a]:
            for ey, dy, py in _FOLD[b]:
                for ez, dz, pz in _FOLD[c]:
                    kernel[:, :, ex, ey, ez] += conv[:, :, dx, dy, dz] @ transposed[:, :, px, py, pz].t()
        kernels[(a, b, c)] = kernel
    return kernels


