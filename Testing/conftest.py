"""Shared pytest fixtures: the reference data folder ``../shared`` and small synthetic images."""

from __future__ import annotations

import os
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
