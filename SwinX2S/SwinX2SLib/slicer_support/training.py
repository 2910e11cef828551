"""Training runs from the SwinX2STrain module: parameters, stop requests, live curves and ETA."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from SwinX2SLib.options import DEVICES, TRAIN_PRESETS, Device

from .commands import _progress_args

STOP_FILE = "STOP"
"""File whose appearance in the run folder stops a training run cleanly (``training.trainer.STOP_FILE``)."""

RUN_MODEL_DIR = "model"
"""Sub-folder of a run that holds its best model (``training.trainer.MODEL_DIR``)."""


@dataclass(frozen=True)
class TrainParameters:
    """What the SwinX2STrain module asks for, turned into a training configuration and a ``swinx2s train`` call.

    Args:
        run_dir: the run folder (``unique_model_dir(models_dir, name, "finetuned")``); its ``model`` sub-folder
            becomes a fine-tuned entry of the model list.
        dataset_dir: training data: a folder with ``data_list.json`` (published layout) or one folder per CT case
            (``ct.nii.gz`` + labels); empty = procedural phantoms.
        base_model: model folder whose weights and architecture the run starts from; empty = train from scratch.
        preset: ``"finetune"`` (short schedule, low learning rate) or ``"paper"`` (the paper's recipe).
        epochs: number of epochs.
        learning_rate: peak learning rate.
        batch_size: samples per step.
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
        model_name: name of the run and of its model (default: the run folder's name).
        phantom_count: number of distinct phantoms when ``dataset_dir`` is empty.
    """

    run_dir: str
    dataset_dir: str = ""
    base_model: str = ""
    preset: str = "finetune"
    epochs: int = 30
    learning_rate: float = 1e-5
    batch_size: int = 1
    device: Device = "auto"
    model_name: str = ""
    phantom_count: int = 2

    @property
    def data_source(self) -> Literal["phantom", "published", "ct"]:
        """How the training engine reads ``dataset_dir``."""
        if not self.dataset_dir:
            return "phantom"
        return "published" if (Path(self.dataset_dir) / "data_list.json").is_file() else "ct"

    def is_valid(self) -> tuple[bool, str]:
        """Whether training can start, and if not, what the user has to fix."""
        checks = [
            (bool(self.run_dir), "choose an output model name"),
            (self.preset in TRAIN_PRESETS, f"preset must be one of {', '.join(TRAIN_PRESETS)}"),
            (not self.dataset_dir or Path(self.dataset_dir).is_dir(), f"{self.dataset_dir}: dataset folder not found"),
            (not self.base_model or Path(self.base_model).is_dir(), f"{self.base_model}: base model not found"),
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.learning_rate > 0, "the learning rate must be positive"),
            (self.batch_size >= 1, "the batch size must be at least 1"),
            (self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}"),
            (self.phantom_count >= 1, "at least one phantom is needed"),
        ]
        for ok, reason in checks:
            if not ok:
                return False, reason
        return True, ""

    def config(self) -> dict[str, Any]:
        """The training configuration mapping (``preset`` plus the user's values; see ``training.config``).

        With a base model its architecture (variant, input size, classes) is copied from its model card, so the
        run builds the network the weights belong to.
        """
        data: dict[str, Any] = {"source": self.data_source}
        if self.dataset_dir:
            data["root"] = self.dataset_dir
        else:
            data.update(pool_size=self.phantom_count, val_count=1, holdout_count=1)
        mapping: dict[str, Any] = {
            "name": self.model_name or Path(self.run_dir).name,
            "preset": self.preset,
            "data": data,
            "optim": {"epochs": self.epochs, "lr": self.learning_rate, "batch_size": self.batch_size},
            "schedule": {"device": self.device, "export_best": True},
        }
        if self.base_model:
            from SwinX2SLib.checkpoints import read_model_card

            card = read_model_card(self.base_model)
            mapping["model"] = {"variant": card.variant or dict(card.config), "img_size": list(card.img_size),
                                "in_channels": card.in_channels, "num_classes": card.num_classes}
            mapping["finetune"] = {"init_from": self.base_model}
        return mapping

    def write_config(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`config` as JSON (atomically) and return the path."""
        from SwinX2SLib.io import atomic_write

        path = Path(path)
        with atomic_write(path, overwrite=True) as tmp:
            tmp.write_text(json.dumps(self.config(), indent=2), encoding="utf-8")
        return path

    def as_arg_list(self, config_path: str | os.PathLike[str], progress: bool = True) -> list[str]:
        """The ``swinx2s train`` arguments for a new run with the configuration file ``config_path``.

        Raises:
            ValueError: when :meth:`is_valid` says training cannot start.
        """
        ok, reason = self.is_valid()
        if not ok:
            raise ValueError(f"cannot train: {reason}")
        return ["train", "--config", str(config_path), "-o", self.run_dir, *_progress_args(progress)]


def resume_arg_list(run_dir: str | os.PathLike[str], progress: bool = True) -> list[str]:
    """The ``swinx2s train`` arguments that continue the run in ``run_dir`` from its last checkpoint."""
    return ["train", "--resume", str(run_dir), *_progress_args(progress)]


def request_stop(run_dir: str | os.PathLike[str]) -> Path:
    """Ask a running training to stop cleanly after its current step (creates ``RUN_DIR/STOP``)."""
    path = Path(run_dir) / STOP_FILE
    path.touch()
    return path


def clear_stop_request(run_dir: str | os.PathLike[str]) -> None:
    """Remove a stop request left by an earlier Stop, so that a resumed run does not stop at once."""
    (Path(run_dir) / STOP_FILE).unlink(missing_ok=True)


@dataclass(frozen=True)
class TrainingCurves:
    """What the training plot and the ETA label show, read from ``RUN_DIR/log.jsonl``.

    Attributes:
        steps, step_losses: loss of every logged step.
        epochs, epoch_losses: mean training loss of every finished epoch.
        val_epochs, val_steps, val_dice: epoch, step count and mean validation Dice of every validated epoch.
        eta_s: the trainer's latest estimate of the remaining time in seconds (None before the first step).
        epoch: the last epoch reported (0 before the first).
        stop_reason: why the run ended (``""`` while it runs).
    """

    steps: tuple[int, ...] = ()
    step_losses: tuple[float, ...] = ()
    epochs: tuple[int, ...] = ()
    epoch_losses: tuple[float, ...] = ()
    val_epochs: tuple[int, ...] = ()
    val_steps: tuple[int, ...] = ()
    val_dice: tuple[float, ...] = ()
    eta_s: float | None = None
    epoch: int = 0
    stop_reason: str = ""


def read_training_curves(run_dir: str | os.PathLike[str]) -> TrainingCurves:
    """Read the run's JSON-lines log while the run is writing it (an incomplete last line is ignored).

    Args:
        run_dir: the run folder.
    """
    from SwinX2SLib.training.logging import LOG_NAME

    path = Path(run_dir) / LOG_NAME
    if not path.is_file():
        return TrainingCurves()
    steps, epochs, validations = [], [], []
    eta, epoch, reason = None, 0, ""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        kind = record.get("event") if isinstance(record, dict) else None
        if kind in ("step", "epoch") and record.get("eta_s") is not None:
            eta = float(record["eta_s"])
        if kind == "step" and record.get("loss") is not None:
            steps.append((int(record["step"]), float(record["loss"])))
        elif kind == "epoch":
            epoch = int(record["epoch"])
            if record.get("train_loss") is not None:
                epochs.append((epoch, float(record["train_loss"])))
            dice = (record.get("val") or {}).get("dice")
            if dice is not None:
                validations.append((epoch, int(record.get("step", 0)), float(dice)))
        elif kind == "stop":
            reason = str(record.get("reason", "stopped"))
    return TrainingCurves(
        steps=tuple(s for s, _ in steps), step_losses=tuple(v for _, v in steps),
        epochs=tuple(e for e, _ in epochs), epoch_losses=tuple(v for _, v in epochs),
        val_epochs=tuple(e for e, _, _ in validations), val_steps=tuple(s for _, s, _ in validations),
        val_dice=tuple(v for _, _, v in validations),
        eta_s=eta, epoch=epoch, stop_reason=reason,
    )  # fmt: skip


def format_duration(seconds: float | None) -> str:
    """``"2 h 05 min"``, ``"4 min 10 s"``, ``"12 s"``; ``"unknown"`` for None."""
    if seconds is None:
        return "unknown"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"
