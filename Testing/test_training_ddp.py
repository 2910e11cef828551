"""Distributed data parallel training on two CPU processes (gloo backend)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from SwinX2SLib.training.config import config_from_dict, save_config

REPO_ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(cache: Path, epochs: int = 1):
    return config_from_dict({
        "preset": "smoke",
        "data": {"cache_dir": str(cache), "pool_size": 4},
        "optim": {"epochs": epochs, "steps_per_epoch": 2},
        "schedule": {"deterministic": True, "threads": 1, "val_every": 1},
    })


def _worker(rank: int, world_size: int, port: int, run_dir: str, cache: str, out: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world_size), "LOCAL_RANK": str(rank)})
    from SwinX2SLib.training.trainer import Trainer

    trainer = Trainer(_config(Path(cache)), run_dir)
    result = trainer.fit()
    torch.save({"model": trainer.model.state_dict(), "step": result.step, "reason": result.stop_reason},
               Path(out) / f"rank{rank}.pt")


def test_ddp_two_cpu_processes_keep_identical_weights_and_one_checkpoint_set(tmp_path: Path) -> None:
    from SwinX2SLib.training.data import PhantomCases, SampleCache
    from SwinX2SLib.training.logging import read_log

    cache = tmp_path / "cache"
    config = _config(cache)
    for seed in range(4):  # render once here so the two ranks do not race to render the same phantoms
        PhantomCases(seed, 1, config.model.img_size, 1, config.data.preset, cache=SampleCache(cache)).load(0)
    run, out = tmp_path / "run", tmp_path / "out"
    out.mkdir()
    mp.start_processes(_worker, args=(2, _free_port(), str(run), str(cache), str(out)), nprocs=2, join=True,
                       start_method="spawn")
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert ranks[0]["step"] == ranks[1]["step"] == 2 and ranks[0]["reason"] == "completed"
    initial = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
    for key, value in ranks[0]["model"].items():
        assert torch.equal(value, ranks[1]["model"][key]), key  # all-reduced gradients: same update everywhere
        assert torch.equal(value, initial[key]), key  # rank 0 checkpointed exactly these weights
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    log = read_log(run)
    assert sum(r["event"] == "start" for r in log) == 1 and log[0]["world_size"] == 2  # rank 0 logs alone
    assert [r["step"] for r in log if r["event"] == "step"] == [1, 2]


@pytest.mark.slow
def test_torchrun_launches_the_train_command(tmp_path: Path) -> None:
    save_config(_config(tmp_path / "cache"), tmp_path / "cfg.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "SwinX2S")}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
         "-m", "SwinX2SLib.cli", "train", "--config", str(tmp_path / "cfg.yaml"), "-o", str(tmp_path / "run"),
         "--progress", "none"], env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-2000:]
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 2 and state["epoch"] == 1
