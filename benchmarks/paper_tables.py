"""The form of the paper's Table 3 (every model) and Table 4 (N views per side), from models trained by the engine.

Every model is trained by :class:`SwinX2SLib.training.trainer.Trainer` on the same data with the same budget
(steps, batch size, optimiser: AdamW, one learning rate, no weight decay, no augmentation, cosine schedule), then
evaluated on the held-out cases by :func:`SwinX2SLib.training.trainer.evaluate_model`: per anatomy (spine, rib,
pelvis, femur) and overall, the mean Dice, HD95 (mm), localisation error (mm) and identification rate. Table 3 has
one row per model (the Swin-X2S variant of ``--swin-variant`` and the eight comparison models of
:func:`SwinX2SLib.network.list_architectures`), with parameters and training time next to the accuracy; Table 4
trains the Swin-X2S variant with N = ``--views`` images per side (phantom or CT data: DRRs are rendered with N
views; the published preprocessed pairs have one). Held-out cases: the held-out phantoms, the published ``test``
list, or for CT data the validation split (never trained on; no model selection happens here).

Writes ``results.json`` (every figure of every run), ``table3.md`` and ``table4.md`` into ``--out`` and prints both
tables.

Usage::

    # smoke size on a CPU (the test suite's slow test runs a smaller one)
    python benchmarks/paper_tables.py --img-size 64 64 96 --steps 20 --train-cases 8 --test-cases 4 \
        --swin-variant test --out runs/paper_tables_small
    # the paper's setting on a GPU: the full model grid and Swin-X2S-Base, CT + label cases rendered to DRRs
    python benchmarks/paper_tables.py --data ct --data-root /data/TotalSegmentator_cases --img-size 128 128 160 \
        --steps 20000 --batch-size 2 --lr 2e-4 --swin-variant base --device cuda --threads 8 --out runs/paper_tables
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

ANATOMY_COLUMNS = ("spine", "rib", "pelvis", "femur")
METRICS = (("dice", "Dice", 3), ("hd95_mm", "HD95", 1), ("localization_error_mm", "LE", 1),
           ("identification_rate", "IR", 2))


def train_config(args: argparse.Namespace, name: str, views: int, cache: Path):
    """The training configuration of one model: the same data, budget and optimiser for every model."""
    from SwinX2SLib.network import list_variants
    from SwinX2SLib.training.config import config_from_dict

    data: dict[str, Any] = {"source": args.data, "cache_dir": str(cache), "pool_size": args.train_cases,
                            "val_count": 0, "holdout_count": args.test_cases}
    if args.data_root:
        data["root"] = args.data_root
    return config_from_dict({
        "name": f"{name}_view{views}",
        "model": {"variant": name, "img_size": list(args.img_size), "in_channels": views,
                  "options": {"drop_path_rate": 0.0} if name in list_variants() else {}},
        "data": data,
        "augment": {"prob": 0.0, "intensity_prob": 0.0, "rotate180_prob": 0.0},
        "optim": {"lr": args.lr, "weight_decay": 0.0, "epochs": 1, "steps_per_epoch": args.steps,
                  "warmup_epochs": 0, "batch_size": args.batch_size, "amp": args.device != "cpu"},
        "schedule": {"val_every": 0, "export_best": False, "device": args.device, "threads": args.threads,
                     "seed": args.seed},
    }, "paper_tables")


def train_and_evaluate(args: argparse.Namespace, name: str, views: int) -> dict[str, Any]:
    """Train one model with the engine, evaluate it on the held-out cases; returns the row of the tables."""
    import torch

    from SwinX2SLib.training.data import build_datasets
    from SwinX2SLib.training.trainer import Trainer, evaluate_model, holdout_dataset

    out = Path(args.out)
    config = train_config(args, name, views, out / "cache")
    start = time.perf_counter()
    trainer = Trainer(config, out / "runs" / config.name)
    result = trainer.fit()
    seconds = time.perf_counter() - start
    device = torch.device("cuda" if args.device.startswith("cuda") else "cpu")
    holdout = holdout_dataset(config, out / "cache")
    if holdout is None:  # CT data: the validation split, never trained on (and no model selection here)
        holdout = build_datasets(config, out / "cache")[1]
    metrics = evaluate_model(trainer.model, holdout, device)
    return {"model": name, "views": views, "parameters": sum(p.numel() for p in trainer.model.parameters()),
            "train_seconds": round(seconds, 1), "steps": result.step, "metrics": metrics}


def markdown_table(rows: list[dict[str, Any]], first: str) -> str:
    """One line per row: parameters, training time and every metric per anatomy and overall."""
    groups = [*ANATOMY_COLUMNS, "overall"]
    header = [first, "params (M)", "train (s)"] + [f"{g} {label}" for g in groups for _, label, _ in METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(row["model"] if first == "model" else row["views"]), f"{row['parameters'] / 1e6:.2f}",
                 f"{row['train_seconds']:.0f}"]
        for group in groups:
            for key, _, digits in METRICS:
                value = row["metrics"].get(key if group == "overall" else f"{key}_{group}")
                cells.append("-" if value is None else f"{value:.{digits}f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run both tables; returns what ``results.json`` holds."""
    from SwinX2SLib.network import list_architectures

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for runs, phantom cache, results.json, table*.md")
    parser.add_argument("--models", nargs="+", help="Table 3 models (default: --swin-variant and every comparison "
                        "model)")
    parser.add_argument("--swin-variant", default="test", help="the Swin-X2S variant of both tables")
    parser.add_argument("--views", nargs="+", type=int, default=[1, 2, 4, 10, 20], help="Table 4: N per side")
    parser.add_argument("--img-size", nargs=3, type=int, default=[64, 64, 96])
    parser.add_argument("--data", choices=("phantom", "published", "ct"), default="phantom")
    parser.add_argument("--data-root", help="data folder for published / ct data")
    parser.add_argument("--train-cases", type=int, default=8, help="training phantoms (phantom data)")
    parser.add_argument("--test-cases", type=int, default=4, help="held-out phantoms (phantom data)")
    parser.add_argument("--steps", type=int, default=20, help="optimiser steps of every model")
    parser.add_argument("--batch-size", type=int, default=2, help="2 or more (OneDConcat's batch norm)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models = args.models or [args.swin_variant, *list_architectures()]
    table3 = []
    for name in models:
        table3.append(train_and_evaluate(args, name, 1))
        print(f"table 3: {name} done ({table3[-1]['train_seconds']:.0f} s)", flush=True)
    table4 = [row for row in table3 if row["model"] == args.swin_variant and 1 in args.views]
    for views in args.views:
        if views != 1 or not table4:
            table4.append(train_and_evaluate(args, args.swin_variant, views))
            print(f"table 4: N = {views} done ({table4[-1]['train_seconds']:.0f} s)", flush=True)
    results = {"settings": {k: v for k, v in vars(args).items() if k != "out"}, "table3": table3, "table4": table4}
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    for file, rows, first in (("table3.md", table3, "model"), ("table4.md", table4, "N")):
        text = markdown_table(rows, first)
        (out / file).write_text(text, encoding="utf-8")
        print(f"\n{file}\n{text}")
    return results


if __name__ == "__main__":
    main()
