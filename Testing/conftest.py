"""Shared pytest fixtures: the reference data folder ``../shared`` and small synthetic images."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path | None:
    candidates = [os.environ.get("SWINX2S_SHARED"), REPO_ROOT.parent / "shared"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "README.md").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The reference data folder (``$SWINX2S_SHARED`` or ``../shared``); skips the test when it is absent."""
    path = _shared_dir()
    if path is None:
        pytest.skip("reference data ../shared (or $SWINX2S_SHARED) is not available")
    return path


@pytest.fixture(scope="session")
def official_samples(shared_dir: Path) -> Path:
    """``../shared/data/official_samples`` (cases published with the Swin-X2S paper)."""
    path = shared_dir / "data" / "official_samples"
    if not path.is_dir():
        pytest.skip(f"{path} is not available")
    return path


def signal_at_stage(command: list[str], stage: str, env: dict[str, str],
                    signum: int = signal.SIGTERM) -> tuple[int, str]:
    """Run a ``--progress json`` command and send it ``signum`` when it reports ``stage``.

    Returns:
        The exit status and the rest of its standard output.
    """
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in process.stdout:
            if json.loads(line).get("stage") == stage:
                process.send_signal(signum)
                break
        remaining, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, remaining
