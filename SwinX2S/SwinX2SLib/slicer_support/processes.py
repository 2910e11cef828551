"""Cancel: ending a subprocess together with every process it started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence


def _parent_map() -> dict[int, list[int]]:
    """``{parent pid: [child pids]}`` of all processes (POSIX ``ps``)."""
    out = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "ppid="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 2:
            children.setdefault(int(fields[1]), []).append(int(fields[0]))
    return children


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, parents before children.

    Collect the tree *before* signalling it: once a parent has died its children are re-parented and can no
    longer be found from it. On Windows only ``pid`` is returned (``taskkill /T`` walks the tree itself).
    """
    if os.name == "nt":
        return [pid]
    children = _parent_map()
    tree, queue = [], [pid]
    while queue:
        current = queue.pop(0)
        tree.append(current)
        queue.extend(child for child in children.get(current, []) if child not in tree)
    return tree


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) counts as ended
        state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout
    except OSError:
        return True
    return bool(state.strip()) and not state.strip().startswith("Z")


def terminate_processes(pids: Sequence[int]) -> None:
    """Ask the processes of a tree (from :func:`process_tree`) to end.

    On POSIX each gets ``SIGTERM``; the ``swinx2s`` command line turns it into ``KeyboardInterrupt``, so partly
    written outputs are removed. On Windows ``taskkill /T /F`` ends the whole tree at once.
    """
    if os.name == "nt":
        for pid in pids:
            subprocess.run(["taskkill", "/PID", str(pid), "/T", "/F"], capture_output=True)
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def kill_processes(pids: Sequence[int]) -> list[int]:
    """Force the processes that are still running to end (``SIGKILL``); returns the pids that had to be killed."""
    killed = []
    for pid in pids:
        if os.name != "nt" and _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    return killed


def wait_for_exit(pids: Sequence[int], timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` seconds for all ``pids`` to end; returns whether they did."""
    deadline = time.monotonic() + timeout_s
    while any(_alive(pid) for pid in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True
