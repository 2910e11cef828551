"""Process memory settings: freed memory kept in the heap, large blocks given back, huge pages for PyTorch, applied
by the ``swinx2s`` program only (real allocations, subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# ten "training steps" that allocate, use and free tensors of several sizes (256 MiB: 65,536 pages of 4 KiB per
# step); prints each step's page faults
_STEP_PAGES = 256 << 8
_PROBE = """
import json, resource, sys
sys.path.insert(0, {lib!r})
from SwinX2SLib.memory import tune_process
accepted = tune_process("train")
import torch
faults = []
for step in range(10):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = torch.ones(16 << 20); b = torch.ones(8 << 20); c = a * 2; del a; d = torch.ones(24 << 20); del b, c, d
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({{"accepted": accepted, "faults": faults}}))
"""


def _probe(template: str, **fields: object) -> dict:
    """Run a probe script in a fresh interpreter free of memory settings from the environment; its last JSON line."""
    code = template.format(lib=str(REPO_ROOT / "SwinX2S"), **fields)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "THP_"))}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_retained_memory_is_reused_without_page_faults() -> None:
    """The ``train`` policy's guarantee: once warm, a step reuses the heap instead of paging in fresh memory (how
    many faults fresh memory would cost depends on the host's huge-page setting, so the bound is on the pages a
    step touches)."""
    retained = _probe(_PROBE)
    assert retained["accepted"] is True
    assert max(retained["faults"][5:]) < _STEP_PAGES / 20


def test_huge_pages_setting_respects_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from SwinX2SLib.memory import use_huge_pages

    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    use_huge_pages()
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "1"
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", "0")
    use_huge_pages()
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "0"


# blocks of 16 MiB, then of 2 MiB (all but the last freed: it pins the top of the heap), allocated and freed after
# glibc raised its threshold (a 24 MiB block was freed first): resident memory (MiB) they leave behind
_RELEASE_PROBE = """
import json, os, sys
sys.path.insert(0, {lib!r})
{setup}
import torch

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

first = torch.ones(24 << 18)
del first
start = rss()
blocks = [torch.ones(16 << 18) for _ in range(4)]
del blocks
large = rss() - start
blocks = [torch.ones(2 << 18) for _ in range(40)]
del blocks[:-1]
print(json.dumps({{"accepted": accepted, "large": large, "small": rss() - start,
                  "huge_pages": os.environ.get("THP_MEM_ALLOC_ENABLE")}}))
"""
_GIVE_BACK = "from SwinX2SLib.memory import give_back_large_blocks; accepted = give_back_large_blocks()"
_CLI = "from SwinX2SLib.cli import main; main(['catalogue', '--json'], tune_memory={tune}); accepted = None"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_freed_blocks_of_a_mebibyte_and_more_go_back_to_the_system() -> None:
    default, given_back = _probe(_RELEASE_PROBE, setup="accepted = None"), _probe(_RELEASE_PROBE, setup=_GIVE_BACK)
    assert given_back["accepted"] is True
    assert default["large"] > 48 and default["small"] > 60  # glibc's raised threshold: freed blocks stay resident
    assert given_back["large"] < 8 and given_back["small"] < 8  # each went back to the system when freed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_only_the_program_entry_point_tunes_the_process() -> None:
    """``main()`` as a library call leaves the allocator and the environment as they were; the program's entry
    (``tune_memory=True``, what ``swinx2s`` and ``python -m SwinX2SLib.cli`` run) sets up the ``predict`` policy."""
    library = _probe(_RELEASE_PROBE, setup=_CLI.format(tune=False))
    program = _probe(_RELEASE_PROBE, setup=_CLI.format(tune=True))
    assert library["huge_pages"] is None and library["large"] > 48  # glibc's defaults: freed blocks stay resident
    assert program["huge_pages"] == "1" and program["large"] < 8 and program["small"] < 8


def test_each_command_names_its_memory_policy() -> None:
    from SwinX2SLib.cli import build_parser
    from SwinX2SLib.memory import POLICIES

    parser = build_parser()
    assert parser.parse_args(["train", "--resume", "run"]).memory == "train"
    assert parser.parse_args(["catalogue"]).memory == "predict"
    assert parser.parse_args(["reconstruct", "--ct", "ct.nii.gz", "-o", "out"]).memory == "predict"
    assert set(POLICIES) == {"predict", "train"}

