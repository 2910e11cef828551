"""The ``swinx2s`` command line (also ``python -m SwinX2SLib.cli``).

Each command lives in its own module of this package and exposes ``register(subparsers)``; heavy libraries
(torch, SimpleITK, VTK) are imported inside the command, so ``swinx2s catalogue`` or ``swinx2s --help`` start
instantly. Errors the user can fix (:class:`~SwinX2SLib.errors.SwinX2SError`) are printed as one line and the
command exits with status 2; Ctrl-C and SIGTERM stop the command with status 130 / 143 after its temporary files
are removed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import SwinX2SError
from ..memory import give_back_large_blocks, use_huge_pages
from ..progress import ProgressReporter
from .common import warnings_to

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: tuple[str, ...] = (
    "catalogue", "model", "drr", "phantom", "reconstruct", "evaluate", "measure", "demo", "train",
)  # fmt: skip
"""Command modules, in the order ``swinx2s --help`` lists them."""


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM (e.g. the Slicer module's Cancel button)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with one sub-command per module in :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="swinx2s",
        description="SwinX2S: 3-D bone segmentation (54 bones) from two plain X-rays (Swin-X2S, Liu et al.).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    use_huge_pages()  # before the commands import torch
    give_back_large_blocks()  # (`train` keeps freed memory instead: retain_freed_memory)
    parser = build_parser()
    args = parser.parse_args(argv)
    reporter = ProgressReporter(getattr(args, "progress", "none") or "none")
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with warnings_to(reporter):
            status = args.func(args)
        return int(status or 0)
    except SwinX2SError as exc:
        reporter.error(str(exc))
        return 2
    except Terminated:
        reporter.error("terminated (SIGTERM); no partial outputs were left")
        return 143
    except KeyboardInterrupt:
        reporter.error("interrupted; no partial outputs were left")
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
