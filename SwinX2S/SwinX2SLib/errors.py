"""Project exceptions.

Every error a user can cause (bad file, bad model, unwritable output) is raised as a :class:`SwinX2SError`
subclass with a message that names the file and the problem; the command line prints it and exits with status 2.
"""

from __future__ import annotations

from os import PathLike

__all__ = ["InputError", "ModelError", "OutputError", "SwinX2SError"]


class SwinX2SError(Exception):
    """Base class of all errors SwinX2S reports to the user."""


class InputError(SwinX2SError):
    """An input file or array cannot be used.

    Args:
        path: the offending file (or a short description of an in-memory input, e.g. ``"coronal image"``).
        reason: what is wrong with it, phrased so the user knows what to fix.
    """

    def __init__(self, path: str | PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelError(SwinX2SError):
    """A model directory or checkpoint is missing, incompatible or has been tampered with."""


class OutputError(SwinX2SError):
    """An output cannot be written (not writable, exists without ``overwrite``)."""
