"""Argument helpers shared by the command modules."""

from __future__ import annotations

import argparse
import contextlib
import warnings
from collections.abc import Iterator

from ..options import DEVICES, PROGRESS_MODES
from ..precision import PRECISIONS
from ..progress import ProgressReporter

__all__ = [
    "add_device_arguments",
    "add_overwrite_argument",
    "add_progress_argument",
    "reporter_from_args",
    "warnings_to",
]


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--device auto|cpu|cuda`` and ``--precision`` (where and in which arithmetic the network runs)."""
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="where the network runs (auto: CUDA when available)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="network arithmetic: float32 (exact), or autocast to bfloat16 / float16 (faster on a "
                             "GPU; a few boundary voxels may change); auto = float32 on the CPU, float16 on CUDA")


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--progress bar|json|none`` (JSON lines are what the Slicer module reads)."""
    parser.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        default="bar",
        help="progress display: a bar on the terminal (default), JSON lines on stdout, or nothing",
    )


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--overwrite`` (existing outputs are otherwise never replaced)."""
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def reporter_from_args(args: argparse.Namespace) -> ProgressReporter:
    """The :class:`ProgressReporter` selected by ``--progress`` (``"none"`` when the command has no such option)."""
    return ProgressReporter(getattr(args, "progress", "none") or "none")


@contextlib.contextmanager
def warnings_to(reporter: ProgressReporter) -> Iterator[None]:
    """Report ``UserWarning``s through ``reporter`` as they happen (so that a JSON result stays the last line)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = lambda message, *args, **kwargs: reporter.warn(str(message))
        yield
