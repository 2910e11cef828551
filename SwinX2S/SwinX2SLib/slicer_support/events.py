"""JSON-lines progress events printed by ``swinx2s ... --progress json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProgressEvent:
    """``{"event": "progress"}``: the whole command is ``fraction`` (0-1) done and is in ``stage``."""

    stage: str
    fraction: float
    message: str = ""


@dataclass(frozen=True)
class WarningEvent:
    """``{"event": "warning"}``: something the user should know; the run goes on."""

    message: str


@dataclass(frozen=True)
class ResultEvent:
    """``{"event": "result"}``: the last line of a successful run; ``payload`` holds the other keys."""

    payload: dict[str, Any]


@dataclass(frozen=True)
class ErrorEvent:
    """``{"event": "error"}``: the command failed (it exits with a non-zero status)."""

    message: str


@dataclass(frozen=True)
class LogLine:
    """A line of output that is not a protocol event (library logging, tracebacks)."""

    text: str


Event = ProgressEvent | WarningEvent | ResultEvent | ErrorEvent | LogLine


def parse_event(line: str) -> Event | None:
    """Parse one line of ``--progress json`` output.

    Args:
        line: one line, with or without its line end.

    Returns:
        The event, a :class:`LogLine` for a line that is not a JSON object with a known ``"event"``, or ``None``
        for a blank line.
    """
    text = line.strip()
    if not text:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return LogLine(text)
    if not isinstance(record, dict):
        return LogLine(text)
    kind = record.get("event")
    try:
        if kind == "progress":
            return ProgressEvent(str(record["stage"]), float(record["fraction"]), str(record.get("message", "")))
        if kind == "warning":
            return WarningEvent(str(record["message"]))
        if kind == "error":
            return ErrorEvent(str(record["message"]))
    except (KeyError, TypeError, ValueError):
        return LogLine(text)
    if kind == "result":
        return ResultEvent({k: v for k, v in record.items() if k != "event"})
    return LogLine(text)


class EventParser:
    """Turns the chunks a process writes on standard output into events.

    ``QProcess.readyReadStandardOutput`` delivers arbitrary chunks: a chunk can end in the middle of a line, or
    of a multi-byte UTF-8 character. The parser keeps the incomplete tail until the rest arrives.

    Examples::

        parser = EventParser()
        parser.feed(b'{"event": "progress", "stage": "load", "fr')   # -> []
        parser.feed(b'action": 0.1}\\n')                              # -> [ProgressEvent("load", 0.1, "")]
        parser.finish()                                              # -> events of an unterminated last line
    """

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes | str) -> list[Event]:
        """Add output and return the events of every line it completes."""
        data = self._pending + (chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk))
        *lines, self._pending = data.split(b"\n")
        return self._parse(lines)

    def finish(self) -> list[Event]:
        """Return the events of the last, unterminated line (call when the process has ended)."""
        lines, self._pending = [self._pending], b""
        return self._parse(lines)

    @staticmethod
    def _parse(lines: list[bytes]) -> list[Event]:
        events = (parse_event(line.decode("utf-8", errors="replace")) for line in lines)
        return [event for event in events if event is not None]
