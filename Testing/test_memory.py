"""Process memory settings: freed memory kept in the heap, huge pages for PyTorch (real allocations, subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# ten "training steps" that allocate, use and free tensors of several sizes; prints each step's page faults
_PROBE = """
import json, resource, sys
sys.path.insert(0, {lib!r})
from SwinX2SLib.memory import retain_freed_memory
accepted = retain_freed_memory() if {retain} else None
import torch
faults = []
for step in range(10):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = torch.ones(16 << 20); b = torch.ones(8 << 20); c = a * 2; del a; d = torch.ones(24 << 20); del b, c, d
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({{"accepted": accepted, "faults": faults}}))
"""


def _probe(retain: bool) -> dict:
    code = _PROBE.format(lib=str(REPO_ROOT / "SwinX2S"), retain=retain)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "THP_"))}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_retained_memory_is_reused_without_page_faults() -> None:
    default, retained = _probe(False), _probe(True)
    assert retained["accepted"] is True
    assert min(default["faults"][5:]) > 30_000  # every step pages in fresh memory (256 MB in 4 KiB pages)
    assert sum(retained["faults"][5:]) < sum(default["faults"][5:]) / 8  # once warm, the heap is reused


def test_huge_pages_setting_respects_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from SwinX2SLib.memory import use_huge_pages

    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    use_huge_pages()
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "1"
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", "0")
    use_huge_pages()
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "0"
