"""Training logs: JSON lines (read by the SwinX2STrain Slicer module), a CSV of epochs, PNG curves.

Files in the run folder:

* ``log.jsonl``: one JSON object per line. ``{"event": "step", "epoch", "step", "loss", "loss_terms": {...},
  "lr", "samples_per_s", "eta_s", "time"}`` every ``log_every`` steps; ``{"event": "epoch", "epoch", "step",
  "train_loss", "lr", "samples_per_s", "eta_s", "val": {metric: value} | null, "best": bool, "time"}`` at each
  epoch end; ``{"event": "stop", "reason", "epoch", "step"}`` when the run ends. The file is appended to on resume.
* ``epochs.csv``: one row per epoch (train loss, learning rate, throughput, validation metrics).
* ``curves.png``: training loss per step, learning rate, validation Dice / identification rate per epoch.
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Any

__all__ = ["RunLogger", "plot_curves", "read_log"]

LOG_NAME = "log.jsonl"
CSV_NAME = "epochs.csv"
CURVES_NAME = "curves.png"
_CSV_COLUMNS = ("epoch", "step", "train_loss", "lr", "samples_per_s", "val_dice", "val_localization_error_mm",
                "val_identification_rate", "val_loss", "best")


class RunLogger:
    """Writes the run's logs (rank 0 only; other ranks pass ``enabled=False`` and write nothing).

    Args:
        run_dir: the run folder.
        enabled: whether this process writes.
    """

    def __init__(self, run_dir: str | Path, enabled: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled

    def log(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one record to ``log.jsonl`` and return it."""
        record = {"event": event, **fields, "time": round(time.time(), 3)}
        if self.enabled:
            with (self.run_dir / LOG_NAME).open("a") as handle:
                handle.write(json.dumps(record, default=_plain) + "\n")
        return record

    def epoch(self, **fields: Any) -> dict[str, Any]:
        """Log an epoch record, append its CSV row and redraw the curves."""
        record = self.log("epoch", **fields)
        if self.enabled:
            path = self.run_dir / CSV_NAME
            val = fields.get("val") or {}
            row = {**{k: fields.get(k) for k in _CSV_COLUMNS}, **{f"val_{k}": v for k, v in val.items()
                                                                   if f"val_{k}" in _CSV_COLUMNS}}
            new = not path.exists()
            with path.open("a", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=_CSV_COLUMNS, extrasaction="ignore")
                if new:
                    writer.writeheader()
                writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
            plot_curves(self.run_dir)
        return record


def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """All records of a run's ``log.jsonl`` (an empty list when there is none yet)."""
    path = Path(run_dir) / LOG_NAME
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curves(run_dir: str | Path) -> Path:
    """Draw ``curves.png`` from ``log.jsonl`` (atomically replaced)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from SwinX2SLib.io import atomic_write

    records = read_log(run_dir)
    steps = [r for r in records if r["event"] == "step"]
    epochs = [r for r in records if r["event"] == "epoch"]
    validated = [r for r in epochs if r.get("val")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot([r["step"] for r in steps], [r["loss"] for r in steps], lw=0.6, alpha=0.6, label="step")
    axes[0].plot([r["step"] for r in epochs], [r["train_loss"] for r in epochs], "o-", ms=3, label="epoch mean")
    axes[0].set(xlabel="step", ylabel="loss", title="training loss")
    axes[0].legend()
    axes[1].plot([r["step"] for r in steps], [r["lr"] for r in steps])
    axes[1].set(xlabel="step", ylabel="learning rate", title="learning rate")
    for key, name in (("dice", "mean Dice"), ("identification_rate", "identification rate")):
        values = [(r["epoch"], r["val"].get(key)) for r in validated]
        values = [(e, v) for e, v in values if v is not None and math.isfinite(v)]
        axes[2].plot([e for e, _ in values], [v for _, v in values], "o-", ms=3, label=name)
    axes[2].set(xlabel="epoch", ylim=(0, 1), title="validation")
    axes[2].legend()
    fig.tight_layout()
    path = Path(run_dir) / CURVES_NAME
    with atomic_write(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return path


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
