"""The arithmetic the network runs in: float32, or ``torch.autocast`` to bfloat16 / float16 on CUDA.

Under autocast the convolutions and matrix products run in the half-width type and the two views' logits are summed
in float32 before the same argmax; float32 is exact (it reproduces the published network's numbers).

Measured on an NVIDIA H200 (``benchmarks/bench_forward.py``, 128x128x160, 55 classes, random weights; and
``Testing/test_cuda.py`` on the published test vector): float16 and bfloat16 take the same time and memory (Large
0.15 s and 6.9 GB against 0.19 s and 11.7 GB in float32), but float16 changes 8 times fewer labels (0.17 % of the
voxels against 1.35 % for Tiny; test-vector label agreement 0.9991 against 0.9933), so ``auto`` picks float16 on
CUDA. The activations are instance-normalised throughout, so float16's range suffices; a case that still overflows
is computed again in float32 (:func:`SwinX2SLib.network.predict_labels`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["PRECISIONS", "cpu_has_native_bfloat16", "exact_float32", "resolve_precision"]

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
"""Choices of ``--precision``; ``auto`` = float32 on the CPU, float16 on CUDA."""


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` (one of :data:`PRECISIONS`) on ``device``; ``None`` = plain float32.

    Raises:
        ValueError: ``precision`` is not one of :data:`PRECISIONS`.
        InputError: a half precision was asked for on a device other than CUDA.
    """
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "auto":
        precision = "float16" if device.type == "cuda" else "float32"
    if precision != "float32" and device.type != "cuda":
        # measured: Tiny at 32x32x64 took 108 s under CPU autocast to bfloat16 against 0.9 s in float32
        raise InputError("--precision", f"{precision} is for CUDA devices; on the {device.type} use float32 or auto "
                                        "(half-precision autocast is about a hundred times slower there)")
    return None if precision == "float32" else getattr(torch, precision)


@contextlib.contextmanager
def exact_float32() -> Iterator[None]:
    """cuDNN convolutions in true float32 inside the block.

    PyTorch lets cuDNN convolve float32 tensors in TF32 (10-bit mantissa) on Ampere and newer GPUs unless told
    otherwise; the float32 paths of :mod:`SwinX2SLib.network.inference` promise the plain forward pass's numbers, so
    they turn that off for their duration (no effect on the CPU).
    """
    import torch

    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = saved


def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512_BF16 or AMX tiles), where oneDNN's bfloat16 kernels win.

    Elsewhere bfloat16 is emulated and autocast to it is far slower than float32 (see :func:`resolve_precision`).
    """
    import torch

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a PyTorch without these probes: assume emulation
        return False
