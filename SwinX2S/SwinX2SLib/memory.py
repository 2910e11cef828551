"""How the process obtains memory for large CPU tensors (Linux; elsewhere these calls change nothing).

A prediction or a training step allocates and frees volumes of hundreds of megabytes many times. By default every
such block is a fresh ``mmap`` whose pages the kernel faults in and zeroes one 4 KiB page at a time, which cost a
Tiny prediction at 128 x 128 x 160 about 1.6 million page faults and 5 s of system time on 2 CPU cores, and a
training step of the default model about 3 s of its 10 s. Remedies, chosen per command:

* :func:`use_huge_pages` (every command of the ``swinx2s`` program): PyTorch backs its large tensors with 2 MiB
  transparent huge pages, a few hundred faults per volume; peak memory is unchanged.
* :func:`give_back_large_blocks` (prediction: every ``swinx2s`` command but ``train``): every block of 1 MiB or
  more, the slab temporaries among them, goes back to the system when freed; glibc would otherwise keep many of
  them resident in its heap (a Tiny prediction peaked 0.12 GiB higher with glibc's defaults).
* :func:`retain_freed_memory` (training): freed blocks stay in the process heap and are reused without any
  fault; system time drops to almost nothing, at the price of a higher peak (the heap keeps its high-water mark
  and fragments), which suits a long, repetitive training run better than a one-off prediction.

These settings hold for the whole process and cannot be undone, so only a program's entry point applies them
(:func:`tune_process`, called by the ``swinx2s`` program, ``python -m SwinX2SLib.cli`` and
``benchmarks/bench_forward.py``), never a library function: :func:`SwinX2SLib.cli.main` called from other code
leaves the process as it found it.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["POLICIES", "give_back_large_blocks", "retain_freed_memory", "tune_process", "use_huge_pages"]

_M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4

POLICIES = ("predict", "train")
"""Memory policies of :func:`tune_process`: ``predict`` gives large freed blocks back, ``train`` keeps freed memory."""


def tune_process(policy: str) -> bool:
    """Set this process's memory up for ``policy`` (one of :data:`POLICIES`): huge pages for PyTorch, then
    :func:`give_back_large_blocks` (``predict``) or :func:`retain_freed_memory` (``train``).

    For a program's entry point only, before ``import torch`` (see the module docstring).

    Returns:
        Whether the C library accepted the allocator settings (False on other systems and C libraries).

    Raises:
        ValueError: ``policy`` is not one of :data:`POLICIES`.
    """
    if policy not in POLICIES:
        raise ValueError(f"memory policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    use_huge_pages()
    return give_back_large_blocks() if policy == "predict" else retain_freed_memory()


def use_huge_pages() -> None:
    """Ask PyTorch for transparent huge pages on large CPU tensors (``THP_MEM_ALLOC_ENABLE``).

    PyTorch reads the setting once, at its first CPU allocation: call this before ``import torch``. An explicit
    ``THP_MEM_ALLOC_ENABLE`` in the environment wins.
    """
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


def give_back_large_blocks(threshold: int = 1 << 20, kept_free: int = 32 << 20) -> bool:
    """Allocate every block of at least ``threshold`` bytes by its own ``mmap``, given back to the system when freed;
    smaller blocks come from the heap, which keeps up to ``kept_free`` bytes of freed memory for reuse.

    glibc starts with a 128 KiB threshold but raises it, up to 32 MiB, each time such a block is freed, after which
    freed blocks below it stay resident in the heap: a Tiny prediction then peaked at 2.10 GiB instead of 1.98. A
    fixed threshold also fixes glibc's trim threshold at 128 KiB, so that any free top of the heap above that would
    go back to the system and be faulted in again; ``kept_free`` prevents it (measured per Tiny prediction: 0.46
    million page faults and 2.7-3.0 s of system time with the 128 KiB trim threshold, 0.32-0.37 million and
    1.9-2.1 s with these defaults; a 2 MiB threshold: 0.14 million and 1.4 s, but a 2.00 GiB peak).

    Returns:
        Whether the C library accepted the settings (False on other systems and C libraries).
    """
    return _mallopt((_M_TRIM_THRESHOLD, kept_free), (_M_MMAP_THRESHOLD, threshold))


def retain_freed_memory() -> bool:
    """Serve every allocation from the heap and never give freed memory back to the system (glibc ``mallopt``).

    Returns:
        Whether the C library accepted the settings (False on other systems and C libraries).
    """
    return _mallopt((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))


def _mallopt(*settings: tuple[int, int]) -> bool:
    """Apply glibc ``mallopt`` ``(parameter, value)`` settings in order; whether all were accepted (False on other
    systems and C libraries)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return all(mallopt(parameter, value) for parameter, value in settings)
