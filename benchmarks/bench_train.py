"""Training throughput (samples/s) of the real training engine, on CPU and, where available, on CUDA with AMP.

Runs :class:`SwinX2SLib.training.trainer.Trainer` itself (data from the phantom cache, augmentation, forward,
DiceCE + KL loss, backward, clipping, AdamW, scheduler, logging) for a few steps of a configuration, and measures
the steps after the warm-up from the timestamps of the run's ``log.jsonl``. The phantoms are rendered before the
timing starts. Freed memory stays in the heap as under ``swinx2s train`` (:func:`SwinX2SLib.memory.retain_freed_memory`)
unless ``--release-memory`` is given.

Usage::

    python benchmarks/bench_train.py                                     # configs/default_model.yaml on CPU
    python benchmarks/bench_train.py --device cuda --steps 20            # the same with AMP on a GPU
    python benchmarks/bench_train.py --preset smoke --threads 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from SwinX2SLib.memory import retain_freed_memory
from SwinX2SLib.training.config import apply_overrides, config_from_dict, load_config
from SwinX2SLib.training.data import PhantomCases, SampleCache
from SwinX2SLib.training.logging import read_log
from SwinX2SLib.training.trainer import Trainer

REPO_ROOT = Path(__file__).resolve().parents[1]


def measure(config_path: Path | None, preset: str | None, device: str, steps: int, warmup: int,
            threads: int) -> dict:
    """Train ``warmup + steps`` steps and return the throughput of the last ``steps``."""
    config = load_config(config_path) if config_path else config_from_dict({"preset": preset})
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        config = apply_overrides(config, [
            f"data.cache_dir={cache}", "data.pool_size=2", "optim.epochs=1", f"optim.steps_per_epoch={steps + warmup}",
            "schedule.val_every=0", "schedule.export_best=false", "schedule.checkpoint_every_steps=0",
            f"schedule.device={device}", f"schedule.threads={threads}", f"optim.amp={device != 'cpu'}",
        ])
        for seed in range(2):
            PhantomCases(seed, 1, config.model.img_size, config.model.in_channels, config.data.preset,
                         cache=SampleCache(cache)).load(0)
        Trainer(config, Path(tmp) / "run").fit()
        times = [r["time"] for r in read_log(Path(tmp) / "run") if r["event"] == "step"]
    seconds = times[-1] - times[warmup - 1]
    return {
        "config": str(config_path or preset), "device": device, "amp": device != "cpu", "threads": threads,
        "img_size": list(config.model.img_size), "batch_size": config.optim.batch_size, "steps": steps,
        "seconds_per_step": round(seconds / steps, 3),
        "samples_per_s": round(steps * config.optim.batch_size / seconds, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", type=Path, help="training configuration (default: configs/default_model.yaml)")
    source.add_argument("--preset", help="a built-in preset instead of a file (e.g. smoke)")
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="cpu")
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    parser.add_argument("--release-memory", action="store_true", help="glibc's default: give freed memory back")
    args = parser.parse_args()
    if not args.release_memory:
        print(f"freed memory kept in the heap: {retain_freed_memory()}")
    config = None if args.preset else (args.config or REPO_ROOT / "configs" / "default_model.yaml")
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    results = []
    for device in devices:
        if device == "cuda" and not torch.cuda.is_available():
            print("cuda: not available, skipped")
            continue
        result = measure(config, args.preset, device, args.steps, args.warmup, args.threads)
        print(f"{result['config']} on {device}{' + AMP' if result['amp'] else ''}: "
              f"{result['seconds_per_step']} s/step, {result['samples_per_s']} samples/s")
        results.append(result)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
