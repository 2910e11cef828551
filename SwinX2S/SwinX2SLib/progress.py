"""Progress reporting for long commands: a terminal bar, or JSON lines for the Slicer module.

JSON-lines protocol (``mode="json"``), one object per line on standard output:

=================  ==========================================================================
``event``          other keys
=================  ==========================================================================
``"progress"``     ``stage`` (str), ``fraction`` (overall progress in [0, 1]), ``message`` (str)
``"warning"``      ``message``
``"result"``       the command's result payload (last line of a successful run)
``"error"``        ``message`` (printed by the command line on failure, exit status != 0)
=================  ==========================================================================
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Literal, TextIO

__all__ = ["ProgressMode", "ProgressReporter"]

ProgressMode = Literal["bar", "json", "none"]
_BAR_WIDTH = 30


class ProgressReporter:
    """Reports the progress of a command.

    Args:
        mode: ``"bar"`` draws a bar on standard error (only when it is a terminal; otherwise one line per stage),
            ``"json"`` prints the JSON-lines protocol on standard output, ``"none"`` prints progress nothing
            (warnings still go to standard error).
        stream: where JSON lines go (default: ``sys.stdout``); the bar always uses ``sys.stderr``.
    """

    def __init__(self, mode: ProgressMode = "bar", stream: TextIO | None = None) -> None:
        if mode not in ("bar", "json", "none"):
            raise ValueError(f"progress mode must be 'bar', 'json' or 'none', not {mode!r}")
        self.mode = mode
        self._stream = stream
        self._start = time.monotonic()
        self._last_stage: str | None = None

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def _emit(self, payload: dict[str, Any]) -> None:
        self.stream.write(json.dumps(payload, default=_json_default) + "\n")
        self.stream.flush()

    def update(self, stage: str, fraction: float, message: str = "") -> None:
        """Report that ``stage`` is under way and the whole command is ``fraction`` (0-1) done."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        if self.mode == "json":
            self._emit({"event": "progress", "stage": stage, "fraction": round(fraction, 4), "message": message})
        elif self.mode == "bar":
            err = sys.stderr
            if err.isatty():
                filled = round(fraction * _BAR_WIDTH)
                bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
                elapsed = time.monotonic() - self._start
                err.write(f"\r[{bar}] {fraction * 100:5.1f}% {elapsed:6.1f}s {stage}: {message}"[:160].ljust(100))
                if fraction >= 1.0:
                    err.write("\n")
                err.flush()
            elif stage != self._last_stage:
                err.write(f"{stage}: {message}\n")
                err.flush()
        self._last_stage = stage

    def warn(self, message: str) -> None:
        """Report a warning (the run goes on)."""
        if self.mode == "json":
            self._emit({"event": "warning", "message": message})
        else:
            sys.stderr.write(f"warning: {message}\n")
            sys.stderr.flush()

    def result(self, payload: dict[str, Any]) -> None:
        """Report the final result; in JSON mode this is the last line of output."""
        if self.mode == "json":
            self._emit({"event": "result", **payload})

    def error(self, message: str) -> None:
        """Report a fatal error (the command line calls this before exiting with a non-zero status)."""
        if self.mode == "json":
            self._emit({"event": "error", "message": message})
        else:
            if self.mode == "bar" and sys.stderr.isatty():
                sys.stderr.write("\n")
            sys.stderr.write(f"error: {message}\n")
            sys.stderr.flush()


def _json_default(value: Any) -> Any:
    """Serialise numpy scalars/arrays and paths in progress payloads."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
