"""The training engine: one loop for training from scratch, fine-tuning, resuming and distributed runs.

Run folder layout (``RUN_DIR``):

* ``config.yaml``: the full configuration of the run (written at the start, read by ``--resume``).
* ``checkpoints/last.pt``, ``checkpoints/best.pt``: training state (model, optimiser, scheduler, AMP scaler,
  epoch, position inside the epoch, best metric, RNG states), written atomically by rank 0.
* ``model/``: the best model in the project's model-directory format (when ``schedule.export_best``).
* ``log.jsonl``, ``epochs.csv``, ``curves.png``: see :mod:`SwinX2SLib.training.logging`.
* ``cache/``: rendered DRR samples (unless ``data.cache_dir`` points elsewhere).
* ``STOP``: create this file to stop the run cleanly after the current step (the Slicer module's Stop button);
  SIGTERM does the same. Either way a final ``last.pt`` is written and ``--resume`` continues exactly there.

Data order: in epoch ``e`` the sample order is that of :class:`torch.utils.data.DistributedSampler` with
``set_epoch(e)`` (one shard per rank), repeated with further seeds when ``steps_per_epoch`` asks for more
samples than the data set holds; augmentation draws depend only on ``(seed, epoch, index)``. A resumed run skips
the batches already done in its epoch, so on CPU with ``deterministic: true`` an interrupted and resumed run ends
with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import math
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from SwinX2SLib.errors import InputError, ModelError, OutputError, SwinX2SError
from SwinX2SLib.network import view_logits
from SwinX2SLib.progress import ProgressReporter
from SwinX2SLib.training import distributed
from SwinX2SLib.training.config import TrainConfig, load_config, save_config
from SwinX2SLib.training.data import TrainingDataset, build_datasets
from SwinX2SLib.training.logging import RunLogger, read_log

__all__ = [
    "STOP_FILE",
    "TrainResult",
    "Trainer",
    "build_model",
    "class_frequencies",
    "evaluate_model",
    "export_from_run",
    "holdout_dataset",
    "init_output_bias",
    "lr_factor",
    "parameter_groups",
    "reference_image_quantiles",
]

STOP_FILE = "STOP"
CONFIG_NAME = "config.yaml"
CHECKPOINT_DIR = "checkpoints"
MODEL_DIR = "model"
MAX_SKIPPED_STEPS = 10
"""Consecutive steps with non-finite gradients (each skipped) after which a run stops as diverged."""
_NO_DECAY_KEYS = ("relative_position", "position_embedding", "pos_embed", "norm")
_METRICS = ("dice", "hd95_mm", "localization_error_mm", "identification_rate")  # evaluate_model's, per anatomy too


@dataclass(frozen=True)
class TrainResult:
    """How a run ended.

    Args:
        run_dir: the run folder.
        epoch: epochs completed.
        step: optimiser steps completed.
        stop_reason: ``"completed"``, ``"early_stopping"``, ``"stop_file"`` or ``"sigterm"``.
        best_metric: best validation mean Dice (None without validation).
        best_epoch: the epoch that reached it.
        last_validation: metrics of the last validation.
    """

    run_dir: Path
    epoch: int
    step: int
    stop_reason: str
    best_metric: float | None
    best_epoch: int | None
    last_validation: dict[str, Any] | None


def build_model(config: TrainConfig) -> nn.Module:
    """The network a configuration describes (random initialisation, on CPU)."""
    from SwinX2SLib.network import create_model

    model_cfg = config.model
    try:
        return create_model(model_cfg.variant, img_size=tuple(model_cfg.img_size), in_channels=model_cfg.in_channels,
                            num_classes=model_cfg.num_classes, **model_cfg.options)
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError("model", f"cannot build {model_cfg.variant!r} with {model_cfg.options}: {exc}") from None


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay on weight matrices and kernels; none on norms, biases and relative-position tables."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.endswith(".bias") or any(key in name for key in _NO_DECAY_KEYS):
            no_decay.append(param)
        else:
            decay.append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_factor: float) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up from ~0 to 1, then cosine from 1 to ``min_factor``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def evaluate_model(model: nn.Module, dataset: TrainingDataset, device: torch.device) -> dict[str, Any]:
    """Mean metrics of ``model`` over ``dataset`` (un-augmented), computed by :func:`SwinX2SLib.metrics.evaluate`.

    Returns:
        ``{"dice", "hd95_mm", "localization_error_mm", "identification_rate", "<metric>_<anatomy>"..., "cases"}``:
        means over the cases of the per-case figures (each over the classes present in the case), overall and per
        anatomy (e.g. ``dice_spine``, ``hd95_mm_rib``: the paper's Table 3).
    """
    from SwinX2SLib import catalogue, metrics
    from SwinX2SLib.network import predict_labels

    was_training = model.training
    model.eval()
    per_case: list[dict[str, float | None]] = []
    try:
        for index in range(len(dataset)):
            item = dataset[index]
            pred = predict_labels(model, item["coronal"][None].to(device), item["sagittal"][None].to(device))[0]
            spacing = dataset.source.load(index, dataset.epoch).spacing_mm
            result = metrics.evaluate(pred.cpu().numpy(), item["label"].numpy(), (spacing,) * 3)
            row = {metric: getattr(result.overall, metric) for metric in _METRICS}
            row.update({f"{metric}_{a}": getattr(result.per_anatomy[a], metric)
                        for a in catalogue.ANATOMIES for metric in _METRICS})
            per_case.append(row)
    finally:
        model.train(was_training)
    summary: dict[str, Any] = {}
    for key in per_case[0] if per_case else ():
        values = [r[key] for r in per_case if r[key] is not None]
        summary[key] = float(np.mean(values)) if values else None
    summary["cases"] = len(per_case)
    return summary


def holdout_dataset(config: TrainConfig, cache_dir: str | Path) -> TrainingDataset | None:
    """Cases never used for training or model selection: the held-out phantom seeds, a published ``test`` list, or
    the ``test`` split of a CT folder's ``meta.csv`` (TotalSegmentator).

    Returns None for CT data without such a split (keep a separate folder of test cases and evaluate it with
    ``swinx2s evaluate``).
    """
    from SwinX2SLib.training.data import CTCases, PhantomCases, PublishedCases, SampleCache, case_split

    data, shape = config.data, tuple(config.model.img_size)
    cache = SampleCache(data.cache_dir or cache_dir)
    if data.source == "phantom":
        source = PhantomCases(data.holdout_seed_start, data.holdout_count, shape, config.model.in_channels,
                              data.preset, data.phantom_spacing_mm, cache)
    elif data.source == "published":
        source = PublishedCases(data.root, "test", data.subset_task, cache)
    else:
        every = CTCases(data.root, data.label_convention, data.preset, shape, config.model.in_channels, cache)
        split = case_split(data.root, every.names)
        if split is None or not split["test"]:
            return None
        source = CTCases(data.root, data.label_convention, data.preset, shape, config.model.in_channels, cache,
                         split["test"])
    return TrainingDataset(source, shape)


def export_from_run(
    run_dir: str | Path, output: str | Path, checkpoint: str = "best", holdout: bool = False,
    overwrite: bool = False, reporter: ProgressReporter | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Write a model directory (project format) from a run's checkpoint, optionally with held-out metrics.

    Args:
        run_dir: the run folder.
        output: the model directory to write.
        checkpoint: ``"best"`` or ``"last"``.
        holdout: evaluate on :func:`holdout_dataset` and record it on the card (``metrics["holdout"]``).
        overwrite: replace an existing model directory.
        reporter: progress display.

    Returns:
        ``(model directory, the card's metrics)``.
    """
    run_dir = Path(run_dir)
    reporter = reporter or ProgressReporter("none")
    path = run_dir / CHECKPOINT_DIR / f"{checkpoint}.pt"
    if not path.exists():
        raise InputError(path, "no such checkpoint (has the run validated or finished an epoch yet?)")
    from SwinX2SLib.checkpoints import load_torch_file

    state = load_torch_file(path, "training checkpoint")
    config = load_config(run_dir / CONFIG_NAME)
    model = build_model(config)
    model.load_state_dict(state["model"])
    metrics: dict[str, Any] = {"validation": state.get("validation")}
    if holdout:
        reporter.update("holdout", 0.0, "evaluating held-out cases")
        dataset = holdout_dataset(config, run_dir / "cache")
        if dataset is None:
            raise InputError(run_dir, f"no held-out cases are defined for {config.data.source!r} data")
        metrics["holdout"] = evaluate_model(model, dataset, torch.device("cpu"))
        metrics["holdout_cases"] = _describe_holdout(config)
    started = [r for r in read_log(run_dir) if r["event"] == "start"]
    extra: dict[str, Any] = {"command": started[0].get("command") if started else None}
    extra["resumed_with"] = [r.get("command") for r in started[1:] if r.get("command")]
    extra["wall_time_s"] = round(sum(_session_times(read_log(run_dir))), 1)
    train_set, _ = build_datasets(config, run_dir / "cache")
    reporter.update("export", 1.0, f"writing {output}")
    return _save_model_dir(model, config, Path(output), state, metrics, extra, overwrite,
                           reference_image_quantiles(train_set)), metrics


def _describe_holdout(config: TrainConfig) -> str:
    data = config.data
    if data.source == "phantom":
        return f"phantom seeds {data.holdout_seed_start}..{data.holdout_seed_start + data.holdout_count - 1}"
    return f"the 'test' {'list' if data.source == 'published' else 'split in meta.csv'} of {data.root}"


def _session_times(records: list[dict[str, Any]]) -> list[float]:
    """Wall time of each training session (start record to its last record) in a run's log."""
    times, begin, last = [], None, None
    for record in records:
        if record["event"] == "start":
            if begin is not None and last is not None:
                times.append(last - begin)
            begin = record["time"]
        last = record["time"]
    if begin is not None and last is not None:
        times.append(last - begin)
    return times


def reference_image_quantiles(dataset: TrainingDataset, samples: int = 8) -> list[float]:
    """Intensity quantiles of the training images (both views of the first ``samples`` cases, not augmented).

    A model card carries them (``preprocessing["reference_quantiles"]``) so that a radiograph is mapped to the
    appearance of the images the model was trained on (:func:`SwinX2SLib.radiograph.intensity.match_quantiles`).
    """
    from SwinX2SLib.radiograph.intensity import reference_quantiles

    plain = TrainingDataset(dataset.source, dataset.shape)
    images = []
    for index in range(min(samples, len(plain))):
        item = plain[index]
        images += [np.asarray(item["coronal"]), np.asarray(item["sagittal"])]
    return reference_quantiles(images)


def _save_model_dir(model: nn.Module, config: TrainConfig, output: Path, state: dict[str, Any],
                    metrics: dict[str, Any], extra_training: dict[str, Any], overwrite: bool,
                    quantiles: list[float]) -> Path:
    from SwinX2SLib.checkpoints import ModelCard, save_model_dir

    training = {
        "config": config.to_dict(),
        "epoch": state["epoch"],
        "step": state["step"],
        "data": _describe_data(config),
        "preset": config.preset,
        **extra_training,
    }
    card = ModelCard(
        img_size=tuple(config.model.img_size),
        in_channels=config.model.in_channels,
        num_classes=config.model.num_classes,
        preprocessing={"drr_preset": config.data.preset, "grid_shape": list(config.model.img_size),
                       "reference_quantiles": quantiles},
        training=training,
        metrics=metrics,
        license="Apache-2.0" if config.data.source == "phantom" else "see the training data's licence",
        description=f"{config.name}: trained with `swinx2s train` on {config.data.source} data",
    )
    return save_model_dir(model, output, card, overwrite=overwrite)


def _describe_data(config: TrainConfig) -> str:
    data = config.data
    if data.source == "phantom":
        pool = f"a pool of {data.pool_size} phantoms" if data.pool_size else "an endless phantom stream"
        return (f"{pool} from seed {data.phantom_seed} (SwinX2SLib.phantom), DRR preset {data.preset!r}; "
                f"validation seeds {data.val_seed_start}..{data.val_seed_start + data.val_count - 1}")
    return f"{data.source} data in {data.root} (labels: {data.label_convention}), DRR preset {data.preset!r}"


class Trainer:
    """Trains a model as a :class:`TrainConfig` says, writing everything into ``run_dir``.

    Args:
        config: the configuration (ignored with ``resume=True``: the run folder's own ``config.yaml`` is used).
        run_dir: the run folder (created if needed).
        resume: continue the run in ``run_dir`` from ``checkpoints/last.pt``.
        reporter: progress display (rank 0).
        callback: called with every step and epoch record (rank 0), e.g. to drive a GUI.
        stop_file: path whose existence requests a clean stop (default ``RUN_DIR/STOP``).
        command: the command line that started this session (logged; exported to the model card).
        overwrite: let ``schedule.export_dir`` replace a model directory this run did not write (otherwise an
            existing one stops the run before its first step).

    Examples::

        >>> from SwinX2SLib.training.config import config_from_dict
        >>> result = Trainer(config_from_dict({"preset": "smoke"}), "runs/smoke").fit()   # doctest: +SKIP
        >>> result.stop_reason                                                            # doctest: +SKIP
        'completed'
    """

    def __init__(self, config: TrainConfig | None, run_dir: str | Path, *, resume: bool = False,
                 reporter: ProgressReporter | None = None,
                 callback: Callable[[dict[str, Any]], None] | None = None,
                 stop_file: str | Path | None = None, command: str | None = None, overwrite: bool = False) -> None:
        self.run_dir = Path(run_dir)
        if resume:
            if not (self.run_dir / CHECKPOINT_DIR / "last.pt").exists():
                raise InputError(self.run_dir, "nothing to resume: no checkpoints/last.pt in this run folder")
            config = load_config(self.run_dir / CONFIG_NAME)
        elif config is None:
            raise ValueError("a configuration is required unless resuming")
        self.config = config
        self.resume = resume
        self.reporter = reporter or ProgressReporter("none")
        self.callback = callback
        self.stop_file = Path(stop_file) if stop_file else self.run_dir / STOP_FILE
        self.command = command
        self.overwrite = overwrite
        self.model: nn.Module | None = None
        """The (unwrapped) model being trained, available once :meth:`fit` has built it."""
        self._signal_stop = threading.Event()

    # ----------------------------------------------------------------------------------------------- public
    def fit(self) -> TrainResult:
        """Run (or continue) training until the last epoch, early stopping, the stop file or SIGTERM.

        A new run folder is removed again when the run fails (:class:`SwinX2SError`) before its first checkpoint.
        """
        cfg = self.config
        ctx = distributed.init_distributed(cfg.schedule.device)
        created = not self.run_dir.exists()
        try:
            with self._sigterm_handler(), _deterministic_algorithms(cfg.schedule.deterministic):
                return self._fit(ctx)
        except SwinX2SError:
            if created and ctx.is_main and not (self.run_dir / CHECKPOINT_DIR / "last.pt").exists():
                shutil.rmtree(self.run_dir, ignore_errors=True)  # a new run that failed before its first checkpoint
            raise
        finally:
            distributed.cleanup()

    # ------------------------------------------------------------------------------------------------ setup
    def _fit(self, ctx: distributed.DistContext) -> TrainResult:
        cfg = self.config
        self._check_export_dir()
        if cfg.schedule.threads > 0:
            torch.set_num_threads(cfg.schedule.threads)
        if ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if self.stop_file.exists() and not self.resume:
                self.stop_file.unlink()
            if not self.resume:
                if (self.run_dir / CHECKPOINT_DIR / "last.pt").exists():
                    raise InputError(self.run_dir, "already holds a run; use --resume or another folder")
                save_config(cfg, self.run_dir / CONFIG_NAME)
        distributed.barrier()
        logger = RunLogger(self.run_dir, enabled=ctx.is_main)

        _seed_everything(cfg.schedule.seed)
        train_set, val_set = build_datasets(cfg, self.run_dir / "cache")
        model = self.model = self._initial_model(ctx, train_set)
        optimizer = torch.optim.AdamW(parameter_groups(model, cfg.optim.weight_decay), lr=cfg.optim.lr,
                                      betas=tuple(cfg.optim.betas))
        per_rank = len(train_set) // ctx.world_size
        steps_per_epoch = cfg.optim.steps_per_epoch or max(per_rank // cfg.optim.batch_size, 1)
        if per_rank < 1:
            raise InputError(self.run_dir, f"{len(train_set)} training samples cannot feed {ctx.world_size} processes")
        total = cfg.optim.epochs * steps_per_epoch
        warmup = round(cfg.optim.warmup_epochs * steps_per_epoch)
        min_factor = cfg.optim.min_lr / cfg.optim.lr
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, warmup, total, min_factor))
        autocast_dtype = _autocast_dtype(cfg, ctx.device, logger, self.reporter)
        self._prepare_convolutions(model, autocast_dtype, ctx.device, logger)
        scaler = torch.amp.GradScaler("cuda", enabled=autocast_dtype == torch.float16)
        loss_fn = _loss(cfg)

        state = {"epoch": 0, "step_in_epoch": 0, "step": 0, "best_metric": None, "best_epoch": None,
                 "bad_validations": 0, "validation": None}
        if self.resume:
            state = self._load_last(model, optimizer, scheduler, scaler, ctx.device, state)
        net: nn.Module = model
        if ctx.distributed:
            net = nn.parallel.DistributedDataParallel(model, device_ids=[ctx.device] if ctx.device.type == "cuda"
                                                      else None)
        logger.log("start", command=self.command, resume=self.resume, epoch=state["epoch"], step=state["step"],
                   world_size=ctx.world_size, device=str(ctx.device), steps_per_epoch=steps_per_epoch,
                   epochs=cfg.optim.epochs)

        stop_reason, skipped = "completed", 0
        quantiles = reference_image_quantiles(train_set) if ctx.is_main and cfg.schedule.export_best else []
        start_time, start_step = time.monotonic(), state["step"]
        for epoch in range(state["epoch"], cfg.optim.epochs):
            train_set.set_epoch(epoch)
            skip = state["step_in_epoch"]
            loader = self._loader(train_set, epoch, steps_per_epoch, skip, ctx)
            net.train()
            losses: list[float] = []
            epoch_start = time.monotonic()
            for position, batch in enumerate(loader, start=skip):
                loss, terms, finite = self._step(net, batch, loss_fn, optimizer, scheduler, scaler, autocast_dtype,
                                                 ctx)
                losses.append(loss)
                state["step"] += 1
                state["step_in_epoch"] = position + 1
                skipped = 0 if finite else skipped + 1
                if skipped:
                    logger.log("skipped_step", reason="non_finite_gradients", epoch=epoch, step=state["step"])
                if skipped >= MAX_SKIPPED_STEPS:
                    logger.log("stop", reason="non_finite_gradients", epoch=epoch, step=state["step"])
                    raise InputError(self.run_dir, f"the gradients were not finite in {skipped} steps in a row (up to "
                                                   f"step {state['step']}): training diverged (lower optim.lr, or "
                                                   "optim.precision float32?); checkpoints/last.pt keeps the last "
                                                   "good state")
                if not math.isfinite(loss):
                    logger.log("stop", reason="non_finite_loss", epoch=epoch, step=state["step"])
                    raise InputError(self.run_dir, f"the loss became {loss} at step {state['step']}: training "
                                                   "diverged (lower optim.lr?); checkpoints/last.pt keeps the last "
                                                   "good state")
                rate = (state["step"] - start_step) * cfg.optim.batch_size * ctx.world_size / max(
                    time.monotonic() - start_time, 1e-9)
                eta = (total - state["step"]) * cfg.optim.batch_size * ctx.world_size / max(rate, 1e-9)
                if state["step"] % cfg.schedule.log_every == 0:
                    record = logger.log("step", epoch=epoch, step=state["step"], loss=loss, loss_terms=terms,
                                        lr=optimizer.param_groups[0]["lr"], samples_per_s=round(rate, 4),
                                        eta_s=round(eta, 1))
                    self._notify(record, ctx)
                self.reporter.update("train", state["step"] / total,
                                     f"epoch {epoch + 1}/{cfg.optim.epochs} loss {loss:.4f} eta {eta / 60:.1f} min")
                reason = self._stop_requested(ctx)
                if reason:
                    stop_reason = reason
                    break
                every = cfg.schedule.checkpoint_every_steps
                if every and state["step"] % every == 0 and state["step_in_epoch"] < steps_per_epoch:
                    self._save(ctx, "last", model, optimizer, scheduler, scaler, {**state, "epoch": epoch})
            if stop_reason != "completed":
                self._save(ctx, "last", model, optimizer, scheduler, scaler, {**state, "epoch": epoch})
                break
            state["epoch"], state["step_in_epoch"] = epoch + 1, 0
            train_loss = distributed.all_reduce_mean(float(np.mean(losses)) if losses else float("nan"), ctx.device)
            samples = len(losses) * cfg.optim.batch_size * ctx.world_size
            val, improved = None, False
            last_epoch = epoch + 1 == cfg.optim.epochs
            if val_set is not None and cfg.schedule.val_every and ((epoch + 1) % cfg.schedule.val_every == 0
                                                                   or last_epoch):
                val, improved = self._validate(model, val_set, ctx, state, epoch)
            self._save(ctx, "last", model, optimizer, scheduler, scaler, state)
            if improved:
                self._save(ctx, "best", model, optimizer, scheduler, scaler, state)
                if ctx.is_main and cfg.schedule.export_best:
                    _save_model_dir(model, cfg, self.run_dir / MODEL_DIR, state, val or {}, {}, True, quantiles)
                if ctx.is_main and cfg.schedule.export_dir:
                    exported, _ = export_from_run(self.run_dir, cfg.schedule.export_dir, "best",
                                                  holdout=cfg.schedule.export_holdout, overwrite=True)
                    logger.log("export", path=str(exported.resolve()), epoch=epoch + 1, step=state["step"])
                distributed.barrier()
            record = logger.epoch(epoch=epoch + 1, step=state["step"], train_loss=train_loss,
                                  lr=optimizer.param_groups[0]["lr"],
                                  samples_per_s=round(samples / max(time.monotonic() - epoch_start, 1e-9), 4),
                                  eta_s=round((total - state["step"]) * (time.monotonic() - start_time)
                                              / max(state["step"] - start_step, 1), 1),
                                  val=val, best=improved)
            self._notify(record, ctx)
            patience = cfg.schedule.early_stop_patience
            if patience and state["bad_validations"] >= patience:
                stop_reason = "early_stopping"
                break
            reason = self._stop_requested(ctx)
            if reason:
                stop_reason = reason
                break
        logger.log("stop", reason=stop_reason, epoch=state["epoch"], step=state["step"])
        if stop_reason == "completed":
            self.reporter.update("train", 1.0, "done")
        return TrainResult(self.run_dir, state["epoch"], state["step"], stop_reason, state["best_metric"],
                           state["best_epoch"], state["validation"])

    def _initial_model(self, ctx: distributed.DistContext, train_set: TrainingDataset) -> nn.Module:
        """The model with its starting weights (fine-tuning sources are loaded before any DDP wrapping).

        A new output layer (training from scratch, or from a pretrained encoder only) starts at the class prior
        (:func:`init_output_bias`) unless ``model.prior_bias_samples`` is 0; a resumed run loads its checkpoint
        instead, so nothing is estimated then.
        """
        cfg = self.config
        model = build_model(cfg)
        ft = cfg.finetune
        if ft.init_from:
            _load_initial_weights(model, Path(ft.init_from))
        elif cfg.model.prior_bias_samples and not self.resume:
            init_output_bias(model, train_set, cfg.model.num_classes, cfg.model.prior_bias_samples)
        if ft.pretrained_encoder:
            from SwinX2SLib.checkpoints import load_pretrained_encoder

            load_pretrained_encoder(model, ft.pretrained_encoder)
        if ft.freeze_encoder:
            encoder = getattr(model, "encoder", None)
            if encoder is None:
                raise ModelError(f"{cfg.model.variant}: the model has no 'encoder' to freeze")
            for param in encoder.parameters():
                param.requires_grad_(False)
        return model.to(ctx.device)

    def _prepare_convolutions(self, model: nn.Module, autocast_dtype: torch.dtype | None, device: torch.device,
                              logger: RunLogger) -> None:
        """Channels-last convolutions (``optim.channels_last``) and, under bfloat16 on the CPU, each convolution's
        half-precision kernels checked against float32 (see :mod:`SwinX2SLib.training.convolutions`)."""
        cfg = self.config
        dtype = autocast_dtype if device.type == "cpu" else None
        if not (cfg.optim.channels_last or dtype is not None):
            return
        from SwinX2SLib.training.convolutions import prepare_convolutions

        x, y, z = cfg.model.img_size
        shape = (cfg.optim.batch_size, cfg.model.in_channels)
        example = (torch.zeros(*shape, x, z, device=device), torch.zeros(*shape, y, z, device=device))
        plan = prepare_convolutions(model, example, dtype=dtype, channels_last=cfg.optim.channels_last)
        logger.log("convolutions", channels_last=plan.channels_last, checked=plan.checked,
                   float32=list(plan.float32), heads=list(plan.heads))

    # ------------------------------------------------------------------------------------------- one step
    def _step(self, net: nn.Module, batch: dict[str, torch.Tensor], loss_fn: Any, optimizer: torch.optim.Optimizer,
              scheduler: Any, scaler: torch.amp.GradScaler, autocast_dtype: torch.dtype | None,
              ctx: distributed.DistContext) -> tuple[float, dict[str, float], bool]:
        """One optimiser step; the loss, its terms and whether the gradients were finite (a step whose gradients
        are not is skipped: the weights stay as they were; under float16 the gradient scaler decides)."""
        coronal = batch["coronal"].to(ctx.device, non_blocking=True)
        sagittal = batch["sagittal"].to(ctx.device, non_blocking=True)
        label = batch["label"].to(ctx.device, non_blocking=True)
        autocast = torch.autocast(ctx.device.type, dtype=autocast_dtype) if autocast_dtype else nullcontext()
        with autocast:
            p, q = view_logits(net(coronal, sagittal))  # a comparison model's logits stand for both views
        loss, terms = _loss_value(loss_fn, p.float(), None if q is p else q.float(), label)  # one output: DiceCE
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        clip = self.config.optim.grad_clip
        norm = torch.nn.utils.clip_grad_norm_(net.parameters(), clip if clip > 0 else math.inf)
        # the float16 scaler skips a non-finite step itself and lowers its scale (expected in the first steps)
        finite = scaler.is_enabled() or bool(torch.isfinite(norm))
        if finite:
            scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        return float(loss.detach()), terms, finite

    def _loader(self, dataset: TrainingDataset, epoch: int, steps: int, skip: int,
                ctx: distributed.DistContext) -> DataLoader:
        indices = epoch_indices(len(dataset), epoch, self.config.schedule.seed, ctx.rank, ctx.world_size,
                                steps * self.config.optim.batch_size)
        return DataLoader(dataset, batch_size=self.config.optim.batch_size,
                          sampler=indices[skip * self.config.optim.batch_size:],
                          num_workers=self.config.data.num_workers, drop_last=True,
                          generator=torch.Generator().manual_seed(self.config.schedule.seed + epoch),
                          pin_memory=ctx.device.type == "cuda")

    # ------------------------------------------------------------------------------------------ validation
    def _validate(self, model: nn.Module, val_set: TrainingDataset, ctx: distributed.DistContext,
                  state: dict[str, Any], epoch: int) -> tuple[dict[str, Any] | None, bool]:
        val = evaluate_model(model, val_set, ctx.device) if ctx.is_main else None
        metric = val["dice"] if val and val.get("dice") is not None else -1.0
        metric = distributed.all_reduce_max(metric, ctx.device)  # rank 0's value reaches every rank
        improved = state["best_metric"] is None or metric > state["best_metric"]
        if improved:
            state["best_metric"], state["best_epoch"], state["bad_validations"] = metric, epoch + 1, 0
        else:
            state["bad_validations"] += 1
        state["validation"] = val
        return val, improved

    def _check_export_dir(self) -> None:
        """Refuse to start when ``schedule.export_dir`` holds something this run has not written itself.

        Raises:
            OutputError: the folder exists, no ``export`` record of this run names it, and ``overwrite`` is false.
        """
        target = self.config.schedule.export_dir
        if not target or self.overwrite or not Path(target).exists():
            return
        ours = {r.get("path") for r in read_log(self.run_dir) if r["event"] == "export"}
        if str(Path(target).resolve()) not in ours:
            raise OutputError(f"{target}: schedule.export_dir already exists and this run would replace it "
                              "(use --overwrite, another export_dir, or export later with swinx2s train --export)")

    # ----------------------------------------------------------------------------------------- checkpoints
    def _save(self, ctx: distributed.DistContext, name: str, model: nn.Module, optimizer: Any, scheduler: Any,
              scaler: Any, state: dict[str, Any]) -> None:
        if ctx.is_main:
            from SwinX2SLib.io import atomic_write

            folder = self.run_dir / CHECKPOINT_DIR
            folder.mkdir(parents=True, exist_ok=True)
            payload = {
                **state,
                "model": distributed.unwrap(model).state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": _rng_state(),
                "config": self.config.to_dict(),
            }
            with atomic_write(folder / f"{name}.pt", overwrite=True) as tmp:
                try:
                    torch.save(payload, tmp)
                except RuntimeError as exc:  # how torch's writer reports a full disk
                    raise OSError(str(exc).strip().splitlines()[0]) from None
        distributed.barrier()

    def _load_last(self, model: nn.Module, optimizer: Any, scheduler: Any, scaler: Any, device: torch.device,
                   state: dict[str, Any]) -> dict[str, Any]:
        from SwinX2SLib.checkpoints import load_torch_file

        payload = load_torch_file(self.run_dir / CHECKPOINT_DIR / "last.pt", "training checkpoint")
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        scaler.load_state_dict(payload["scaler"])
        _set_rng_state(payload["rng"])
        return {key: payload[key] for key in state}

    # ------------------------------------------------------------------------------------------ stopping
    def _stop_requested(self, ctx: distributed.DistContext) -> str | None:
        local = 2.0 if self._signal_stop.is_set() else 1.0 if self.stop_file.exists() else 0.0
        agreed = distributed.all_reduce_max(local, ctx.device) if ctx.distributed else local
        return {2.0: "sigterm", 1.0: "stop_file"}.get(agreed)

    @contextmanager
    def _sigterm_handler(self) -> Iterator[None]:
        """While training, SIGTERM requests a clean stop after the current step instead of aborting it."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: self._signal_stop.set())
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _notify(self, record: dict[str, Any], ctx: distributed.DistContext) -> None:
        if ctx.is_main and self.callback is not None:
            self.callback(record)


def epoch_indices(size: int, epoch: int, seed: int, rank: int, world_size: int, count: int) -> list[int]:
    """The ``count`` sample indices of rank ``rank`` in ``epoch`` (DistributedSampler order, repeated as needed)."""
    indices: list[int] = []
    repeat = 0
    while len(indices) < count:
        sampler = DistributedSampler(range(size), num_replicas=world_size, rank=rank, shuffle=True,
                                     seed=seed + 7919 * repeat, drop_last=size >= world_size)
        sampler.set_epoch(epoch)
        indices.extend(sampler)
        repeat += 1
    return indices[:count]


def class_frequencies(dataset: TrainingDataset, num_classes: int, samples: int) -> torch.Tensor:
    """Fraction of voxels of each class in the labels of the first ``samples`` items of ``dataset``.

    Every class gets one extra voxel (Laplace smoothing), so no frequency is 0.
    """
    counts = torch.ones(num_classes, dtype=torch.float64)
    for index in range(min(samples, len(dataset))):
        counts += torch.bincount(dataset[index]["label"].flatten(), minlength=num_classes)[:num_classes]
    return counts / counts.sum()


def init_output_bias(model: nn.Module, dataset: TrainingDataset, num_classes: int, samples: int) -> None:
    """Set the bias of the model's output convolution to the log class frequencies of the training labels.

    With 55 classes and a few percent of bone voxels, a head that starts at uniform class probabilities spends its
    first hundreds of steps learning the class prior, and the cross-entropy that does it drives every bone class
    into softmax saturation on the way (the Dice gradient of a class is proportional to its probability), so the
    network settles on "background everywhere" before it learns any shape. Starting at the prior (the usual
    initialisation for rare classes) skips that phase. The bias is set once, before training, for both views (they
    share the head).

    Raises:
        ModelError: the model has no output convolution with one channel per class.
    """
    heads = [m for m in model.modules() if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d))
             and m.out_channels == num_classes and m.bias is not None]
    if not heads:
        raise ModelError(f"{type(model).__name__}: no output convolution with {num_classes} channels and a bias")
    prior = class_frequencies(dataset, num_classes, samples)
    with torch.no_grad():
        heads[-1].bias.copy_(torch.log(prior).to(heads[-1].bias))


def _load_initial_weights(model: nn.Module, source: Path) -> None:
    """Fine-tuning start: a model directory (project format) or a published checkpoint file."""
    from SwinX2SLib import checkpoints

    if source.is_dir():
        loaded, _card = checkpoints.load_model_dir(source, "cpu")
        state = loaded.state_dict()
    elif source.is_file():
        state = checkpoints.convert_published_state_dict(checkpoints.load_published_checkpoint(source),
                                                         getattr(model.config, "architecture", None))
    else:
        raise InputError(source, "fine-tuning source is neither a model directory nor a checkpoint file")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"{source}: does not fit the configured model ({str(exc).splitlines()[0]})") from None


def _autocast_dtype(config: TrainConfig, device: torch.device, logger: RunLogger,
                    reporter: ProgressReporter) -> torch.dtype | None:
    """The autocast dtype of the training forward pass (None: float32); see :class:`OptimConfig` ``precision``."""
    from SwinX2SLib.precision import cpu_has_native_bfloat16

    if config.optim.precision == "bfloat16":
        if device.type == "cpu" and not cpu_has_native_bfloat16():
            message = ("optim.precision bfloat16: this CPU has no native bfloat16 (AVX512_BF16 or AMX); "
                       "training in float32")
            logger.log("warning", message=message)
            reporter.warn(message)
            return None
        return torch.bfloat16
    return torch.float16 if config.optim.amp and device.type == "cuda" else None


def _loss(config: TrainConfig) -> Any:
    from SwinX2SLib.loss import SwinX2SLoss

    return SwinX2SLoss(kl_weight=config.optim.kl_weight)


def _loss_value(loss_fn: Any, p: torch.Tensor, q: torch.Tensor | None,
                label: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """The total loss and its logged terms (supervised DiceCE and cross-view KL, each averaged over the views)."""
    terms = loss_fn.terms(p, q, label)
    return terms.total, {"supervised": float(terms.supervised.detach()), "mutual": float(terms.mutual.detach())}


@contextmanager
def _deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """PyTorch's deterministic-algorithm mode as the run asks, and the caller's mode again afterwards.

    The mode is process-wide: a deterministic run must not leave it on for a later run in the same process (under
    bfloat16 autocast it gives NaN gradients; see the configuration's checks).
    """
    saved = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    """All random generator states as tensors and plain data (loadable with ``torch.load(weights_only=True)``)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
             "python": [version, list(internal), gauss_next]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
