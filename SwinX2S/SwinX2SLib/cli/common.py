"""Argument helpers shared by the command modules."""

from __future__ import annotations

import argparse
import contextlib
import math
import warnings
from collections.abc import Callable, Iterator, Sequence

from ..network.engine import ENGINES
from ..options import DEVICES, PROGRESS_MODES
from ..precision import PRECISIONS
from ..progress import ProgressReporter

__all__ = [
    "GRID_SIZE",
    "MAX_GRID_VOXELS",
    "MAX_VIEWS",
    "SEED",
    "add_device_arguments",
    "add_overwrite_argument",
    "add_progress_argument",
    "bounded",
    "check_grid",
    "reporter_from_args",
    "warnings_to",
]


MAX_VIEWS = 12
"""Most images per side ``--views`` accepts (7.5-degree steps); each one is a full projection of the CT."""

MAX_GRID_VOXELS = 2**28
"""Largest model / phantom grid a flag may ask for (voxels; 512 x 512 x 1024), checked before allocating."""


def bounded(kind: type[int] | type[float], low: float, high: float, *, above: bool = False,
            unit: str = "") -> Callable[[str], int | float]:
    """An argparse ``type=``: a finite ``kind`` in ``[low, high]`` (``(low, high]`` with ``above``).

    A value out of range becomes argparse's one-line ``error: argument --flag: ...`` (exit status 2).
    """

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not math.isfinite(value) or value < low or value > high or (above and value == low):
            raise argparse.ArgumentTypeError(f"must be {'>' if above else '>='} {low:g} and <= {high:g}{unit}, "
                                             f"got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


SEED = bounded(int, 0, 2**32 - 1)
"""``--seed``: what numpy's generators accept."""

GRID_SIZE = bounded(int, 8, 1024, unit=" voxels")
"""One size of a ``--shape X Y Z`` grid."""


def check_grid(shape: Sequence[int], flag: str = "--shape") -> tuple[int, ...]:
    """A grid no larger than :data:`MAX_GRID_VOXELS` in all (each size is checked by :data:`GRID_SIZE`).

    Raises:
        InputError: the grid is too large.
    """
    from ..errors import InputError

    if math.prod(shape) > MAX_GRID_VOXELS:
        raise InputError(flag, f"{' x '.join(map(str, shape))} is {math.prod(shape)} voxels, more than the "
                               f"{MAX_GRID_VOXELS} accepted")
    return tuple(shape)


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--device auto|cpu|cuda``, ``--precision`` and ``--engine`` (where, in which arithmetic and by which
    implementation the network runs)."""
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="where the network runs (auto: CUDA when available)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="network arithmetic: float32 (exact), or autocast to bfloat16 / float16 (faster on a "
                             "GPU; a few boundary voxels may change); auto = float32 on the CPU, float16 on CUDA")
    parser.add_argument("--engine", choices=ENGINES, default="auto",
                        help="float32 implementation: fast (hand-written, about half the time and memory on the "
                             "CPU; checked against the model's structure, plain when it does not fit) or plain "
                             "(the PyTorch / MONAI forward pass); auto = the model card's choice, else fast")


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
