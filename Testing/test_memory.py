"""Process memory settings: freed memory kept in the heap, large blocks given back, huge pages for PyTorch, applied
by the ``swinx2s`` program only (real allocations, subprocesses)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# ten "training steps" that allocate, use and free tensors of several sizes (256 MiB: 65,536 pages of 4 KiB per
# step); prints each step's page faults, the bytes glibc had mmapped at the step's peak and the freed bytes its heap
# kept afterwards (MiB, ``mallinfo2``)
_STEP_PAGES = 256 << 8
_PROBE = """
import ctypes, json, resource, sys
sys.path.insert(0, {lib!r})
from SwinX2SLib.memory import tune_process
accepted = {setup}
import torch

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
faults, mmapped, kept = [], [], []
for step in range(10):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = torch.ones(16 << 20); b = torch.ones(8 << 20); c = a * 2; del a; d = torch.ones(24 << 20)
    mmapped.append(libc.mallinfo2().hblkhd >> 20)
    del b, c, d
    kept.append(libc.mallinfo2().fordblks >> 20)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({{"accepted": accepted, "faults": faults, "mmapped": mmapped, "kept": kept}}))
"""


def _probe(template: str, **fields: object) -> dict:
    """Run a probe script in a fresh interpreter free of memory settings from the environment; its last JSON line."""
    code = template.format(lib=str(REPO_ROOT / "SwinX2S"), **fields)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "THP_"))}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_retained_memory_is_reused_from_the_heap() -> None:
    """The ``train`` policy's guarantee: a step's large tensors come from the heap, which keeps them when they are
    freed, so that a warm step reuses memory instead of paging in fresh ``mmap`` blocks as glibc's defaults do.

    How many faults a step then costs depends on the host (huge pages, how the heap fragments: 0-2,000 per step
    here, up to 14,000 seen on a CI host), so the fault bound is relative to the same host's fresh blocks."""
    retained, default = _probe(_PROBE, setup='tune_process("train")'), _probe(_PROBE, setup="None")
    assert retained["accepted"] is True
    assert max(retained["mmapped"]) == 0 and min(default["mmapped"]) >= 128  # glibc mmaps blocks of 32 MiB and more
    assert min(retained["kept"]) >= 256 and max(default["kept"]) < 64  # the freed step stays in the heap
    fresh = statistics.median(default["faults"][2:])
    if fresh > _STEP_PAGES / 2:  # fresh memory is faulted in page by page on this host (no system-wide huge pages)
        assert statistics.median(retained["faults"][2:]) < fresh / 4


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
