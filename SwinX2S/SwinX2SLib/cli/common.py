"""Argument helpers shared by the command modules."""

from __future__ import annotations

import argparse

from ..progress import ProgressReporter

__all__ = ["add_overwrite_argument", "add_progress_argument", "reporter_from_args"]


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--progress bar|json|none`` (JSON lines are what the Slicer module reads)."""
    parser.add_argument(
        "--progress",
        choices=("bar", "json", "none"),
        default="bar",
        help="progress display: a bar on the terminal (default), JSON lines on stdout, or nothing",
    )


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--overwrite`` (existing outputs are otherwise never replaced)."""
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def reporter_from_args(args: argparse.Namespace) -> ProgressReporter:
    """The :class:`ProgressReporter` selected by ``--progress`` (``"none"`` when the command has no such option)."""
    return ProgressReporter(getattr(args, "progress", "none") or "none")
