"""Training throughput (samples/s) of the real training engine, optionally against another checkout in the same run.

Runs :class:`SwinX2SLib.training.trainer.Trainer` itself (data from the phantom cache, augmentation, forward,
DiceCE + KL loss, backward, clipping, AdamW, scheduler, logging) for a few steps of a configuration, and measures
the steps after the warm-up from the timestamps of the run's ``log.jsonl``. The phantoms are rendered before the
timing starts. Freed memory stays in the heap as under ``swinx2s train``
(:func:`SwinX2SLib.memory.retain_freed_memory`).

With ``--baseline DIR`` (a checkout of another version, e.g. ``git worktree add ../base <commit>``) every
measurement runs in a subprocess, alternating between that checkout's engine and this one ``--rounds`` times, on the
same model (grid, architecture, classes, batch) and data; the baseline keeps its own configuration's remaining keys
(it may not know this version's ``optim.precision``). The ratio of the medians is printed.

Usage::

    python benchmarks/bench_train.py                                     # configs/default_model.yaml on CPU
    python benchmarks/bench_train.py --baseline ../base --rounds 3       # against another checkout, one run
    python benchmarks/bench_train.py --set optim.precision=float32       # an override on this engine only
    python benchmarks/bench_train.py --device cuda --steps 20            # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = Path("configs") / "default_model.yaml"
_MODEL_KEYS = ("variant", "img_size", "in_channels", "num_classes")


def measure(config_path: Path, overrides: list[str], device: str, steps: int, warmup: int, threads: int) -> dict:
    """Train ``warmup + steps`` steps of ``config_path`` (with ``overrides``) and return the last ``steps``' rate."""
    import torch

    from SwinX2SLib.memory import retain_freed_memory
    from SwinX2SLib.training.config import apply_overrides, load_config
    from SwinX2SLib.training.data import PhantomCases, SampleCache
    from SwinX2SLib.training.logging import read_log
    from SwinX2SLib.training.trainer import Trainer

    retain_freed_memory()
    config = apply_overrides(load_config(config_path), overrides)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        config = apply_overrides(config, [
            f"data.cache_dir={cache}", "data.pool_size=2", "optim.epochs=1", f"optim.steps_per_epoch={steps + warmup}",
            "schedule.val_every=0", "schedule.export_best=false", "schedule.checkpoint_every_steps=0",
            "schedule.export_dir=null", f"schedule.device={device}", f"schedule.threads={threads}",
        ])
        for seed in range(2):
            PhantomCases(seed, 1, config.model.img_size, config.model.in_channels, config.data.preset,
                         cache=SampleCache(cache)).load(0)
        Trainer(config, Path(tmp) / "run").fit()
        times = [r["time"] for r in read_log(Path(tmp) / "run") if r["event"] == "step"]
    seconds = times[-1] - times[warmup - 1]
    optim = config.optim
    return {
        "device": device, "threads": threads, "img_size": list(config.model.img_size),
        "precision": getattr(optim, "precision", "float32"), "channels_last": getattr(optim, "channels_last", False),
        "amp": bool(optim.amp and device != "cpu"), "batch_size": optim.batch_size, "steps": steps,
        "seconds_per_step": round(seconds / steps, 3),
        "samples_per_s": round(steps * optim.batch_size / seconds, 4),
        "cuda": torch.cuda.is_available(),
    }


def _model_overrides(config_path: Path) -> list[str]:
    """``model.*`` overrides that give another engine's configuration this configuration's network."""
    from SwinX2SLib.training.config import load_config

    model = load_config(config_path).model
    values = {key: getattr(model, key) for key in _MODEL_KEYS}
    values["variant"] = values["variant"] if isinstance(values["variant"], str) else dict(values["variant"])
    overrides = [f"model.{key}={json.dumps(value if not isinstance(value, tuple) else list(value))}"
                 for key, value in values.items()]
    overrides.append(f"model.options={json.dumps(dict(model.options))}")
    return overrides


def _run_worker(checkout: Path, config: Path, overrides: list[str], args: argparse.Namespace) -> dict:
    """One measurement in a fresh process that imports ``SwinX2SLib`` from ``checkout``."""
    env = {**os.environ, "PYTHONPATH": str(checkout / "SwinX2S")}
    command = [sys.executable, __file__, "--worker", "--config", str(config), "--device", args.device,
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
    for item in overrides:
        command += ["--set", item]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark worker in {checkout} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help=f"training configuration (default: {DEFAULT_CONFIG})")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override on this engine's configuration (repeatable)")
    parser.add_argument("--baseline", type=Path, help="another checkout to measure in the same run")
    parser.add_argument("--rounds", type=int, default=2, help="alternations with --baseline")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    config = args.config or REPO_ROOT / DEFAULT_CONFIG
    if args.worker:
        print(json.dumps(measure(config, args.set, args.device, args.steps, args.warmup, args.threads)))
        return
    engines = {"this": (REPO_ROOT, config, args.set)}
    if args.baseline:
        baseline = args.baseline.resolve()
        engines = {"baseline": (baseline, baseline / DEFAULT_CONFIG, _model_overrides(config)), **engines}
    results: dict[str, list[dict]] = {name: [] for name in engines}
    for round_index in range(args.rounds if args.baseline else 1):
        for name, (checkout, engine_config, overrides) in engines.items():
            result = _run_worker(checkout, engine_config, overrides, args)
            results[name].append(result)
            print(f"round {round_index + 1} {name:8s} ({checkout}): {result['seconds_per_step']} s/step, "
                  f"{result['samples_per_s']} samples/s, precision {result['precision']}, "
                  f"channels_last {result['channels_last']}, grid {result['img_size']}", flush=True)
    medians = {name: statistics.median(r["samples_per_s"] for r in rows) for name, rows in results.items()}
    summary = {"config": str(config), "threads": args.threads, "device": args.device, "median_samples_per_s": medians,
               "runs": results}
    if args.baseline:
        summary["speedup"] = round(medians["this"] / medians["baseline"], 3)
        print(f"speed-up (median samples/s, this / baseline): x{summary['speedup']}")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
