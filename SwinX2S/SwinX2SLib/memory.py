"""How the process obtains memory for large CPU tensors (Linux; elsewhere these calls change nothing).

A prediction or a training step allocates and frees volumes of hundreds of megabytes many times. By default every
such block is a fresh ``mmap`` whose pages the kernel faults in and zeroes one 4 KiB page at a time, which cost a
Tiny prediction at 128 x 128 x 160 about 1.6 million page faults and 5 s of system time on 2 CPU cores, and a
training step of the default model about 3 s of its 10 s. Two remedies, chosen per command:

* :func:`use_huge_pages` (prediction, the ``swinx2s`` default): PyTorch backs its large tensors with 2 MiB
  transparent huge pages, a few hundred faults per volume; peak memory is unchanged.
* :func:`retain_freed_memory` (training): freed blocks stay in the process heap and are reused without any
  fault; system time drops to almost nothing, at the price of a higher peak (the heap keeps its high-water mark
  and fragments), which suits a long, repetitive training run better than a one-off prediction.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["retain_freed_memory", "use_huge_pages"]

_M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
_M_MMAP_MAX = -4


def use_huge_pages() -> None:
    """Ask PyTorch for transparent huge pages on large CPU tensors (``THP_MEM_ALLOC_ENABLE``).

    PyTorch reads the setting once, at its first CPU allocation: call this before ``import torch``. An explicit
    ``THP_MEM_ALLOC_ENABLE`` in the environment wins.
    """
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


def retain_freed_memory() -> bool:
    """Serve every allocation from the heap and never give freed memory back to the system (glibc ``mallopt``).

    Returns:
        Whether the C library accepted the settings (False on other systems and C libraries).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
