"""Fast, memory-lean prediction: ``argmax(p + q)`` computed in another order than :meth:`SwinX2S.forward`.

Nine tenths of a plain forward pass are the two full-resolution residual blocks of each view (the level-0 skip and
the last up block, ``F`` channels at ``X x Y x Z``) and the 55-channel logits. :func:`predict_labels` computes the
same numbers with less arithmetic and far less memory:

* every 3-D convolution runs channels-last through oneDNN on the CPU (also the thin slabs PyTorch would send to its
  slow kernel) and instance norms use one pass for the mean and one batched Gram product for the variance (float64
  merge), in place;
* the level-0 block's input is the raw image repeated along the missing axis (dimension expansion: ``w_t * I + b_t``),
  so its first 3x3x3 convolution and its 1x1x1 projection are sums of outer products of 2-D convolutions of the
  image with 1-D profiles along the new axis; the projection's instance-norm statistics follow in closed form;
* in the last two up blocks (full and half resolution) the 2x2x2 stride-2 transposed convolution is folded into the
  3x3x3 convolution that reads it: each of the 8 output parities is a 2x2x2 convolution of the coarser input (8
  instead of 27 taps at the finer resolution), and its 1x1x1 projection likewise; the concatenation never exists
  (deeper up blocks are too small for the fold to pay);
* the residual projection overwrites the skip slab by slab, the last 3x3x3 convolution its input, each
  view's half-resolution input is freed once decoded, and the two views' last features are summed
  before the shared 1x1x1 head, because ``head(a) + head(b) = W (a + b) + 2 bias``: the 55 logits exist one slab at
  a time.

Only the summation order inside convolutions and normalisation statistics differs from the plain forward pass
(logit differences of order 1e-5); on CUDA the convolutions run in true float32
(:func:`~SwinX2SLib.precision.exact_float32`), not in the TF32 that PyTorch allows cuDNN by default. With an
``autocast_dtype`` both functions run the plain forward pass under ``torch.autocast`` instead (for CUDA).
:func:`logit_slabs` yields both views' logits slab by slab for callers that need them separately (view agreement).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from monai.networks.blocks import UnetResBlock, UnetrUpBlock
from torch import nn

from ..conventions import PROJECTION_AXIS
from ..precision import exact_float32
from .dimension_expansion import VIEWS, DimensionExpansion
from .swin_x2s import SwinX2S

__all__ = ["logit_slabs", "predict_labels"]

_CL = torch.channels_last_3d
# per axis, for output parity a of the stride-2 transposed convolution: (tap e of the folded 2-tap kernel, tap d of
# the 3x3x3 convolution, position p in the 2x2x2 transposed kernel); tap e reads half-resolution index i + a + e - 1
_FOLD = {0: ((0, 0, 1), (1, 1, 0), (1, 2, 1)), 1: ((0, 0, 0), (0, 1, 1), (1, 2, 0))}
_PARITIES = [(a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1)]


def predict_labels(
    model: SwinX2S,
    coronal: torch.Tensor,
    sagittal: torch.Tensor,
    slab: int = 4,
    autocast_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Label volume ``argmax(p + q)`` of a Swin-X2S model, fast and memory-lean (see the module docstring).

    Args:
        model: a :class:`SwinX2S` in eval mode.
        coronal: ``[B, N, X, Z]`` on the model's device.
        sagittal: ``[B, N, Y, Z]`` on the model's device.
        slab: planes along X per step of the slab-wise work (in-place convolution, residual projection, head +
            argmax): smaller slabs, smaller temporaries.
        autocast_dtype: run the plain forward pass under ``torch.autocast`` with this dtype instead (for CUDA,
            where memory is not the constraint; see :mod:`SwinX2SLib.precision`); logits are summed in float32, and
            a case whose logits overflow is computed again in float32 (with a warning).

    Returns:
        ``[B, X, Y, Z]`` labels, ``torch.uint8`` when the model has at most 256 classes, else ``torch.int64``.
    """
    _check_slab(slab)
    dtype = torch.uint8 if model.num_classes <= 256 else torch.int64
    logits = _autocast_forward(model, coronal, sagittal, autocast_dtype)
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
    model: SwinX2S,
    coronal: torch.Tensor,
    sagittal: torch.Tensor,
    slab: int = 4,
    autocast_dtype: torch.dtype | None = None,
) -> Iterator[tuple[int, int, torch.Tensor, torch.Tensor]]:
    """Both views' logits, slab by slab along X, computed as in :func:`predict_labels` (batch size 1).

    For consumers that need ``p`` and ``q`` separately (e.g. view agreement) without two full ``[1, C, X, Y, Z]``
    volumes. Runs in inference mode (also while the consumer handles a slab).

    Args:
        model, coronal, sagittal, slab, autocast_dtype: as in :func:`predict_labels` (with ``autocast_dtype`` the
            plain forward pass runs under ``torch.autocast`` and its logits are handed out slab by slab).

    Yields:
        ``(start, stop, p, q)``: float32 logits ``[1, C, stop - start, Y, Z]`` (channels-last strides) of X planes
        ``start:stop`` of the coronal (p) and sagittal (q) branch; fresh tensors the consumer may modify.
    """
    _check_slab(slab)
    if coronal.shape[0] != 1:
        raise ValueError(f"logit_slabs takes one case at a time, got a batch of {coronal.shape[0]}")
    logits = _autocast_forward(model, coronal, sagittal, autocast_dtype)
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


def _autocast_forward(
    model: SwinX2S, coronal: torch.Tensor, sagittal: torch.Tensor, dtype: torch.dtype | None
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(p, q)`` of the plain forward pass under ``torch.autocast(dtype)``; ``None`` when ``dtype`` is ``None`` or
    (with a warning) when a logit is not finite (float16 overflows above 65504): the caller then computes in float32."""
    if dtype is None:
        return None
    with torch.inference_mode(), torch.autocast(coronal.device.type, dtype=dtype):
        p, q = model(coronal, sagittal)
        if bool(torch.isfinite(p).all() and torch.isfinite(q).all()):
            return p, q
    warnings.warn(f"the network's logits overflowed in {str(dtype).removeprefix('torch.')}; computing this case in "
                  "float32", UserWarning, stacklevel=3)
    return None


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
    features = []
    for h, expand, block in zip(hidden, model.dimension_expansion[1:], model.encoder_blocks[1:], strict=True):
        coronal_h, sagittal_h = h.chunk(2)
        expanded = torch.cat((expand(coronal_h, "coronal"), expand(sagittal_h, "sagittal")))
        features.append(_res_block(block.layer, expanded.contiguous(memory_format=_CL)))
    features[-1] = torch.cat(model.cross_view_attention(*features[-1].chunk(2))).contiguous(memory_format=_CL)
    x = features.pop()
    for block in model.decoder_blocks[:-2]:
        x = _up_block(block, x, features.pop())
    # half resolution: the folded up block (as at full resolution), one view of one case at a time
    skip = features.pop()
    halves = [_folded_up_block(model.decoder_blocks[-2], x[i : i + 1], skip[i : i + 1], slab) for i in range(len(x))]
    batch = coronal.shape[0]
    return [(halves[i], halves[batch + i]) for i in range(batch)]


def _decoded_views(
    model: SwinX2S, halves: list[torch.Tensor], coronal: torch.Tensor, sagittal: torch.Tensor, slab: int
) -> Iterator[torch.Tensor]:
    """Each view's full-resolution features of one case (coronal first), decoded from ``halves`` (that case's two
    half-resolution inputs, as from :func:`_deep_halves`); the list is emptied as it goes, so that each half is freed
    once its view is decoded."""
    for image, view in zip((coronal, sagittal), VIEWS, strict=True):
        yield _full_resolution(model, halves.pop(0), image, view, slab)


def _full_resolution(model: SwinX2S, half: torch.Tensor, image: torch.Tensor, view: str, slab: int) -> torch.Tensor:
    """Output of the last up block for one view of one case, ``[1, F, X, Y, Z]`` channels-last."""
    block, expand = model.encoder_blocks[0].layer, model.dimension_expansion[0]
    if hasattr(block, "conv3"):
        skip = _level0_skip(block, expand, image, view, model.img_size)
    else:  # as many views as features (no projection): the plain block
        skip = _res_block(block, expand(image, view).contiguous(memory_format=_CL))
    return _folded_up_block(model.decoder_blocks[-1], half, skip, slab)


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


def _instance_norm_(x: torch.Tensor, eps: float, negative_slope: float | None = None) -> torch.Tensor:
    """Instance norm (no affine) of a channels-last ``[B, C, X, Y, Z]`` volume in place, then LeakyReLU if given.

    Mean by a plain sum, variance of the centred values by a batched Gram product over the X planes (float32
    per plane, float64 across planes): far faster than a strided variance reduction, as accurate.
    """
    batch, channels, size_x = x.shape[:3]
    flat = x.permute(0, 2, 3, 4, 1).reshape(batch, -1, channels)  # a view: x is channels-last
    count = flat.shape[1]
    flat.sub_(flat.sum(1, keepdim=True).div_(count))
    planes = flat.view(batch * size_x, -1, channels)
    variance = torch.bmm(planes.transpose(1, 2), planes).diagonal(dim1=1, dim2=2)
    variance = variance.double().view(batch, size_x, channels).sum(1).div_(count)
    flat.mul_(variance.add_(eps).rsqrt_().to(x.dtype)[:, None])
    if negative_slope is not None:
        F.leaky_relu_(x, negative_slope)
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


def _level0_skip(
    block: UnetResBlock,
    expand: DimensionExpansion,
    image: torch.Tensor,
    view: str,
    img_size: tuple[int, int, int],
) -> torch.Tensor:
    """``block(expand(image, view))`` for one case without ever convolving the expanded image in 3-D.

    The expanded image is ``E[n, t, u, z] = w_t I[n, u, z] + b_t`` (``t`` the new axis, zero outside the volume), so
    ``conv1(E) = sum_d (w shifted by d) (x) conv2d(I, K[d]) + (b shifted by d) (x) conv2d(1, K[d])`` over the 3 taps
    ``d`` of the kernel along the new axis, and the 1x1x1 projection is ``w (x) K3 I + b (x) K3 1``.
    """
    length = expand.length
    w, b = expand.conv.weight.flatten(), expand.conv.bias
    axis = PROJECTION_AXIS[view]  # the volume axis the view integrated over: the one the expansion adds
    conv1 = block.conv1.conv
    ones = torch.ones_like(image)
    w_pad, b_pad = F.pad(w, (1, 1)), F.pad(b, (1, 1))
    profiles, planes = [], []
    for d in range(3):
        kernel = conv1.weight.select(2 + axis, d)  # [F, N, 3, 3] over the image's two axes
        profiles += [w_pad[d : d + length], b_pad[d : d + length]]
        planes += [F.conv2d(image, kernel, padding=1), F.conv2d(ones, kernel, padding=1)]
    profiles, planes = torch.stack(profiles, 1), torch.cat(planes)
    # instance norm in closed form, written with the outer products (normalised planes and a constant term)
    mean, rstd = (t[None, :, None, None] for t in _outer_statistics(profiles, planes, block.norm1.eps))
    profiles = torch.cat((profiles, torch.ones_like(profiles[:, :1])), 1)
    planes = torch.cat((planes * rstd, (-mean * rstd).expand_as(planes[:1])))
    slope = block.lrelu.negative_slope
    out = F.leaky_relu_(_outer(profiles, planes, axis, img_size), slope)
    out = _instance_norm_(_conv(out, block.conv2.conv), block.norm2.eps)
    # residual: the projection of the expanded image, normalised in closed form, added as outer products
    projection = block.conv3.conv.weight.flatten(1)  # [F, N]
    image_term = torch.einsum("fn,bnuz->bfuz", projection, image)
    constant = projection.sum(1)[None, :, None, None].expand_as(image_term)
    mean, rstd = (t[None, :, None, None] for t in _outer_statistics(torch.stack((w, b), 1),
                                                                    torch.cat((image_term, constant)), block.norm3.eps))
    planes = torch.cat((image_term * rstd, constant * rstd, (-mean * rstd).expand_as(image_term)))
    _outer(torch.stack((w, b, torch.ones_like(w)), 1), planes, axis, img_size, out=out)
    return F.leaky_relu_(out, slope)


def _outer(
    profiles: torch.Tensor,
    planes: torch.Tensor,
    axis: int,
    img_size: tuple[int, int, int],
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``sum_k profiles[:, k] (x) planes[k]``: a volume ``[1, F, X, Y, Z]`` (channels-last) from 1-D profiles along
    volume axis ``axis`` (0 = X, 1 = Y) ``[L, K]`` and 2-D planes over the other two axes ``[K, F, U, Z]``; added to
    ``out`` when given."""
    size_x, size_y, size_z = img_size
    beta = 1.0
    if out is None:
        out = torch.empty((1, planes.shape[1], size_x, size_y, size_z), dtype=planes.dtype, device=planes.device,
                          memory_format=_CL)
        beta = 0.0  # the empty memory is not read
    planes = planes.permute(0, 2, 3, 1)  # [K, U, Z, F]
    if axis == 0:  # out[x, (y, z, f)] = profiles[x, k] @ planes[k, (y, z, f)]
        target, batch1, batch2 = _flat(out).view(1, size_x, -1), profiles[None], planes.reshape(1, len(planes), -1)
    else:  # out[x][y, (z, f)] = profiles[y, k] @ planes[k, x, (z, f)]
        target = _flat(out).view(size_x, size_y, -1)
        batch1 = profiles.expand(size_x, *profiles.shape)
        batch2 = planes.permute(1, 0, 2, 3).reshape(size_x, len(planes), -1)
    target.baddbmm_(batch1, batch2, beta=beta)
    return out


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

    ``x`` ``[1, C_x, n_x, n_y, n_z]``, ``skip`` ``[1, C, 2 n_x, 2 n_y, 2 n_z]`` channels-last (overwritten: it
    becomes the normalised residual); the folded convolutions run in slabs of ``slab`` half-resolution planes and
    the second convolution overwrites the first one's output slab by slab, so the block needs two full-resolution
    volumes and slab temporaries. Returns ``[1, C, 2 n_x, 2 n_y, 2 n_z]`` channels-last.
    """
    res = block.conv_block
    transposed = block.transp_conv.conv.weight  # [C_x, C_up, 2, 2, 2]
    up_channels = transposed.shape[1]
    conv1 = res.conv1.conv.weight
    projection = res.conv3.conv.weight.flatten(1)  # [F, C_up + C_skip]
    folded = _folded_kernels(conv1[:, :up_channels], transposed)
    n_x, n_y, n_z = x.shape[2:]
    out = _conv3d(skip, conv1[:, up_channels:], padding=1).contiguous(memory_format=_CL)
    for (a, b, c), kernel in folded.items():  # padding 1 covers both parities' windows; each keeps its n of n + 1
        for i0, i1 in _slabs(n_x, slab):  # in slabs of half planes: output plane 2 i + a reads x[i + a - 1], x[i + a]
            low, high = max(i0 + a - 1, 0), min(i1 + a, n_x)
            pad = int(i0 + a - 1 < 0 or i1 + a > n_x)  # zero planes along X only where the volume ends
            part = _conv3d(x[:, :, low:high], kernel, padding=(pad, 1, 1))
            rows = slice(i0 + a - 1 - low + pad, i1 + a - 1 - low + pad)
            out[:, :, 2 * i0 + a : 2 * i1 : 2, b::2, c::2] += part[:, :, rows, b : b + n_y, c : c + n_z]
    slope = res.lrelu.negative_slope
    _instance_norm_(out, res.norm1.eps, slope)
    # residual projection of [up, skip] written over the skip, slab by slab (a point-wise map) as matrix products
    # on the channels-last memory; the up part is one product for all 8 parities, interleaved by a strided view
    skip_matrix = projection[:, up_channels:].t()  # [C_skip, F]
    up_matrix = torch.einsum("oc,icabd->iabdo", projection[:, :up_channels], transposed).flatten(1)  # [C_x, 8F]
    skip_memory, x_memory = _flat(skip), _flat(x)  # [X, Y*Z, C], [X/2, Y/2*Z/2, C]
    step = slab + slab % 2  # even: planes start..stop of both parities come from half planes start/2..stop/2
    part_buffer = skip.new_empty((step * skip_memory.shape[1], skip_matrix.shape[1]))  # reused slab temporaries
    up_buffer = x.new_empty((step // 2 * x_memory.shape[1], up_matrix.shape[1]))
    for start, stop in _slabs(skip.shape[2], step):
        rows, half_rows = skip_memory[start:stop].flatten(0, 1), x_memory[start // 2 : stop // 2].flatten(0, 1)
        part = torch.mm(rows, skip_matrix, out=part_buffer[: len(rows)])
        up = torch.mm(half_rows, up_matrix, out=up_buffer[: len(half_rows)])
        interleaved = up.view(-1, n_y, n_z, 2, 2, 2, skip_matrix.shape[1]).permute(0, 3, 1, 4, 2, 5, 6)
        part.view(interleaved.shape).add_(interleaved)
        skip_memory[start:stop] = part.view(stop - start, -1, part.shape[1])
    del part_buffer, up_buffer, part, up, interleaved  # the slab temporaries, before the peak of the convolution
    _instance_norm_(skip, res.norm3.eps)
    out = _conv_in_place(out, res.conv2.conv, slab)
    _instance_norm_(out, res.norm2.eps)
    return F.leaky_relu_(out.add_(skip), slope)


def _conv_in_place(x: torch.Tensor, conv: nn.Conv3d, slab: int) -> torch.Tensor:
    """3x3x3 ``conv`` (stride 1, padding 1, as many output as input channels) overwriting ``x`` slab by slab along X.

    Each slab reads one neighbouring plane on either side; its result is written back once the next slab has
    been computed (which still reads the slab's last plane), so two slabs of temporaries replace a second volume.
    """
    size_x = x.shape[2]
    pending = None
    for start, stop in _slabs(size_x, slab):
        low, high = max(start - 1, 0), min(stop + 1, size_x)
        pad = int(start == 0 or stop == size_x)  # zero planes along X only where the volume ends
        result = _conv3d(x[:, :, low:high], conv.weight, conv.bias, padding=(pad, 1, 1))
        first = start - low - 1 + pad
        result = result[:, :, first : first + stop - start]  # (a plane that saw a zero beyond the slab is dropped)
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


