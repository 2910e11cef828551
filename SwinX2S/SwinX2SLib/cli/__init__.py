"""The ``swinx2s`` command line (also ``python -m SwinX2SLib.cli``).

Each command lives in its own module of this package and exposes ``register(subparsers)``; heavy libraries
(torch, SimpleITK, VTK) are imported inside the command, so ``swinx2s catalogue`` or ``swinx2s --help`` start
instantly. Errors the user can fix (:class:`~SwinX2SLib.errors.SwinX2SError`) are printed as one line and the
command exits with status 2; Ctrl-C and SIGTERM stop the command with status 130 / 143 after its temporary files
are removed.

The ``swinx2s`` program (:func:`console_main`) also sets the process's memory up for its command
(:func:`SwinX2SLib.memory.tune_process`: ``train`` keeps freed memory, every other command gives large blocks back);
:func:`main` called from other code leaves the process's memory settings alone.
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
from ..progress import ProgressReporter
from .common import warnings_to

__all__ = ["COMMANDS", "build_parser", "console_main", "main"]

COMMANDS: tuple[str, ...] = (
    "catalogue", "model", "drr", "phantom", "reconstruct", "evaluate", "measure", "demo", "train",
)  # fmt: skip
"""Command modules, in the order ``swinx2s --help`` lists them."""


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM (e.g. the Slicer module's Cancel button)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with one sub-command per module in :data:`COMMANDS`.

    Raises:
        ImportError: a command module does not import (a broken install or a bug: never a silently missing command).
    """
    parser = argparse.ArgumentParser(
        prog="swinx2s",
        description="SwinX2S: 3-D bone segmentation (54 bones) from two plain X-rays (Swin-X2S, Liu et al.).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.set_defaults(memory="predict")  # the memory policy console_main applies (`train` sets its own)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, tune_memory: bool = False) -> int:
    """Run the command line in this process; returns the exit status.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).
        tune_memory: set the process's memory up for the command first (:func:`SwinX2SLib.memory.tune_process`);
            for the program's entry point only (:func:`console_main`), as the settings outlive the call.
    """
    args = build_parser().parse_args(argv)
    if tune_memory:
        from ..memory import tune_process

        tune_process(args.memory)  # after parsing (no torch imported yet), before the command imports torch
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


def console_main() -> None:
    """The ``swinx2s`` program (console script, ``python -m SwinX2SLib.cli``): :func:`main` with the process's
    memory set up for the command, then exit with its status."""
    sys.exit(main(tune_memory=True))


if __name__ == "__main__":
    console_main()
