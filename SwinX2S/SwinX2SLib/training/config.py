"""Training configuration: typed dataclasses that hold every hyper-parameter, presets, YAML/JSON round trip.

A configuration file (YAML or JSON) is a mapping with the sections of :class:`TrainConfig`. It may name a
``preset`` (``paper``, ``finetune``, ``default_model``, ``smoke``); the file's own keys are then merged onto the
preset, section by section, so a file only states what differs::

    preset: finetune
    finetune: {init_from: /models/swin_x2s_base, freeze_encoder: true}
    data: {source: ct, root: /data/my_cts}

Unknown keys are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import copy
import json
import math
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from SwinX2SLib.errors import InputError

__all__ = [
    "PRESETS",
    "AugmentConfig",
    "DataConfig",
    "FinetuneConfig",
    "ModelConfig",
    "OptimConfig",
    "ScheduleConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "load_config",
    "override_mapping",
    "preset_dict",
    "save_config",
]

DataSource = Literal["phantom", "published", "ct", "auto"]
LabelConvention = Literal["catalogue", "totalsegmentator", "ctpelvic1k", "ctspine1k", "verse", "ribseg"]


@dataclass(frozen=True)
class ModelConfig:
    """Which network to build.

    Args:
        variant: a registered variant of :func:`SwinX2SLib.network.create_model` (``"base"``, ``"test"``...),
            an architecture mapping (``{"feature_size": 12, "depths": [2, 2, 2, 2], "num_heads": [1, 2, 4, 8]}``)
            or a comparison model of the paper (``"UNet"``, ``"OneDConcat"``...; presets ``paper_unet``...).
        options: further network arguments (e.g. ``{"drop_path_rate": 0.1}``; ``{"dropout": 0.1}`` for a
            comparison model).
        img_size: model grid ``(X, Y, Z)``; the images are ``(X, Z)`` and ``(Y, Z)``.
        in_channels: views per direction ``N`` (1 = one coronal + one sagittal X-ray).
        num_classes: output classes including background (55 = the full catalogue).
        prior_bias_samples: a new output layer's bias starts at the log class frequencies of this many training
            labels (see :func:`SwinX2SLib.training.trainer.init_output_bias`); 0 keeps the random initialisation.
    """

    variant: str | dict[str, Any] = "base"
    options: dict[str, Any] = field(default_factory=dict)
    img_size: tuple[int, int, int] = (128, 128, 160)
    in_channels: int = 1
    num_classes: int = 55
    prior_bias_samples: int = 8


@dataclass(frozen=True)
class DataConfig:
    """Where training samples come from.

    Args:
        source: ``"phantom"`` (seeded procedural phantoms rendered to DRRs), ``"published"`` (a folder with
            ``data_list.json`` as published with Swin-X2S), ``"ct"`` (CT + label cases rendered to DRRs, e.g. the
            TotalSegmentator download) or ``"auto"`` (``published`` when ``root`` holds a ``data_list.json``, else
            ``ct``; resolved when the configuration is read, so a run folder records the concrete source).
        root: the data folder (``published`` / ``ct``).
        label_convention: how ``ct`` labels are numbered (see :mod:`SwinX2SLib.training.data`).
        subset_task: for ``published`` data of a subset task (``femur``, ``pelvic``, ``spine``, ``rib``): labels are
            converted to the full 55-class ids.
        preset: DRR preset used to render ``phantom`` / ``ct`` samples.
        cache_dir: where rendered samples are cached (default: ``RUN_DIR/cache``).
        phantom_seed: first training phantom seed.
        pool_size: number of distinct training phantoms, rendered once and cycled with augmentation; 0 = an
            endless stream (a fresh seed for every sample, nothing cached).
        phantom_spacing_mm: phantom voxel spacing (None: the phantom's default).
        val_seed_start, val_count: phantom seeds used for validation (never for training).
        holdout_seed_start, holdout_count: phantom seeds for the held-out metrics of the model card.
        val_fraction: for ``ct`` data without an explicit split, the fraction of cases kept for validation.
        num_workers: DataLoader worker processes.
    """

    source: DataSource = "phantom"
    root: str | None = None
    label_convention: LabelConvention = "totalsegmentator"
    subset_task: str | None = None
    preset: str = "published"
    cache_dir: str | None = None
    phantom_seed: int = 0
    pool_size: int = 200
    phantom_spacing_mm: float | None = None
    val_seed_start: int = 900_000
    val_count: int = 4
    holdout_seed_start: int = 1_000_000
    holdout_count: int = 20
    val_fraction: float = 0.1
    num_workers: int = 0


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation applied identically to both images and the label (see :mod:`SwinX2SLib.training.augment`).

    Args:
        prob: probability that the geometric augmentation (zoom, rotation, shift) is applied to a sample.
        zoom: isotropic zoom range ``(low, high)``.
        rotate_deg: maximum rotation in the coronal plane (about the anterior-posterior axis), degrees.
        shift_fraction: maximum translation along ``(x, y, z)`` as a fraction of the grid size.
        intensity_prob: probability of the intensity augmentation.
        intensity_scale: images are multiplied by ``1 + U(-s, s)``.
        intensity_shift: then ``U(-o, o)`` is added.
        rotate180_prob: probability of the 180-degree rotation about the superior-inferior axis.
        radiograph_prob: probability of the real-radiograph effects of
            :mod:`SwinX2SLib.training.radiograph_effects` (0 = off, the published recipe); their ranges:
            radiograph_haze (scatter fraction), radiograph_blur_px, radiograph_noise (Gaussian sigma),
            radiograph_unsharp (amount), radiograph_gamma (``(low, high)`` exponent).
    """

    prob: float = 0.8
    zoom: tuple[float, float] = (0.9, 1.1)
    rotate_deg: float = 5.0
    shift_fraction: tuple[float, float, float] = (0.05, 0.05, 0.02)
    intensity_prob: float = 0.25
    intensity_scale: float = 0.1
    intensity_shift: float = 0.1
    rotate180_prob: float = 0.5
    radiograph_prob: float = 0.0
    radiograph_haze: float = 0.3
    radiograph_blur_px: float = 1.0
    radiograph_noise: float = 0.03
    radiograph_unsharp: float = 0.6
    radiograph_gamma: tuple[float, float] = (0.7, 1.4)


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and learning-rate schedule.

    AdamW; weight decay applies to weight matrices and kernels only (never to norms, biases or relative-position
    tables). The learning rate rises linearly for ``warmup_epochs`` then follows a cosine down to ``min_lr``.

    Args:
        lr: peak learning rate.
        weight_decay: AdamW decoupled weight decay.
        betas: AdamW betas.
        min_lr: final learning rate of the cosine.
        epochs: number of epochs.
        warmup_epochs: linear warm-up length (may be fractional).
        steps_per_epoch: optimiser steps per epoch (None: one pass over the training set).
        batch_size: samples per step and per process.
        grad_clip: maximum gradient norm (0 disables clipping).
        amp: float16 mixed precision (with gradient scaling) on CUDA when ``precision`` is ``float32``; ignored on
            the CPU.
        precision: ``"float32"``, or ``"bfloat16"``: the forward pass under ``torch.autocast`` to bfloat16 on the CPU
            or CUDA (convolutions and matrix products in bfloat16, the loss, gradients and weights in float32). On
            a CPU without native bfloat16 instructions (AVX512_BF16 or AMX) training falls back to float32 with a
            warning in the log: emulated bfloat16 is far slower there.
        channels_last: run the 3-D convolutions channels-last (kernels, inputs and gradients), which oneDNN
            convolves several times faster on the CPU, above all in bfloat16 (see
            :mod:`SwinX2SLib.training.convolutions`).
        kl_weight: weight of the cross-view KL term of the loss (1 in the paper).
    """

    lr: float = 3e-5
    weight_decay: float = 0.5
    betas: tuple[float, float] = (0.9, 0.999)
    min_lr: float = 0.0
    epochs: int = 250
    warmup_epochs: float = 20.0
    steps_per_epoch: int | None = None
    batch_size: int = 1
    grad_clip: float = 1.0
    amp: bool = True
    precision: Literal["float32", "bfloat16"] = "float32"
    channels_last: bool = False
    kl_weight: float = 1.0


@dataclass(frozen=True)
class FinetuneConfig:
    """Start from trained weights.

    Args:
        init_from: a model directory (project format) or a published ``.pt`` checkpoint; None trains from scratch.
        pretrained_encoder: a checkpoint whose encoder weights initialise the 2-D Swin encoder only.
        freeze_encoder: keep the 2-D Swin encoder fixed.
    """

    init_from: str | None = None
    pretrained_encoder: str | None = None
    freeze_encoder: bool = False


@dataclass(frozen=True)
class ScheduleConfig:
    """Run control.

    Args:
        seed: seed of weights, data order and augmentation.
        deterministic: use deterministic algorithms (bit-exact resume on CPU; slower).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:K"``.
        threads: CPU threads per process (0: torch's default).
        val_every: validate every k epochs (0: never).
        early_stop_patience: stop after this many validations without improvement (0: never).
        checkpoint_every_steps: also write ``last`` every n steps within an epoch (0: at epoch ends only).
        log_every: write a step record every n steps.
        export_best: write the model directory ``RUN_DIR/model`` whenever validation improves.
        export_dir: also write the best model to this model directory whenever validation improves, with the
            full model card. A folder that exists and was not written by this run stops the run before its first
            step unless ``swinx2s train --overwrite`` is given.
        export_holdout: evaluate the held-out cases for the card of ``export_dir``.
    """

    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    threads: int = 0
    val_every: int = 1
    early_stop_patience: int = 0
    checkpoint_every_steps: int = 0
    log_every: int = 1
    export_best: bool = True
    export_dir: str | None = None
    export_holdout: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """Every hyper-parameter of a training run (see the module docstring for the file format)."""

    name: str = "run"
    preset: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dictionary (tuples become lists), ready for YAML/JSON."""
        return _plain(asdict(self))


_SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "augment": AugmentConfig,
    "optim": OptimConfig,
    "finetune": FinetuneConfig,
    "schedule": ScheduleConfig,
}

PRESETS: dict[str, dict[str, Any]] = {
    # The paper's recipe (Sec. 4.2): AdamW lr 3e-5, weight decay 0.5, batch 1, 250 epochs, 20 warm-up epochs.
    "paper": {
        "name": "paper",
        "model": {"variant": "base"},
        "data": {"source": "auto"},  # the published data_list.json layout, or CT case folders (TotalSegmentator)
        "optim": {"lr": 3e-5, "weight_decay": 0.5, "epochs": 250, "warmup_epochs": 20, "batch_size": 1},
    },
    # Fine-tuning on one's own CTs: start from a model, lower learning rate, short schedule.
    "finetune": {
        "name": "finetune",
        "data": {"source": "ct"},
        "optim": {"lr": 1e-5, "weight_decay": 0.05, "epochs": 30, "warmup_epochs": 2, "batch_size": 1},
        "schedule": {"early_stop_patience": 5},
    },
    # The small model shipped with SwinX2S: phantoms only, CPU-trainable on both threads of a 2-core machine
    # (configs/default_model.yaml). No stochastic depth, light augmentation, bfloat16 forward pass.
    "default_model": {
        "name": "default_model",
        "model": {
            "variant": {"feature_size": 12, "depths": [2, 2, 2, 2], "num_heads": [1, 2, 4, 8]},
            "options": {"drop_path_rate": 0.0},
            "img_size": [96, 96, 128],
        },
        "data": {"source": "phantom", "pool_size": 300, "val_count": 4},
        "augment": {"prob": 0.3, "zoom": [0.95, 1.05], "rotate_deg": 3.0, "shift_fraction": [0.03, 0.03, 0.02],
                    "intensity_prob": 0.2, "rotate180_prob": 0.0},
        "optim": {
            "lr": 2e-3, "weight_decay": 0.01, "min_lr": 5e-5, "epochs": 20, "warmup_epochs": 1,
            "steps_per_epoch": 100, "batch_size": 1, "precision": "bfloat16", "channels_last": True,
        },
        "schedule": {"val_every": 2, "threads": 2, "checkpoint_every_steps": 50},
    },
    # Seconds-long configuration for tests and smoke runs.
    "smoke": {
        "name": "smoke",
        "model": {"variant": "test", "options": {"drop_path_rate": 0.0}, "img_size": [32, 32, 64]},
        "data": {"source": "phantom", "pool_size": 2, "val_count": 1, "holdout_count": 2},
        "augment": {"prob": 0.0, "intensity_prob": 0.0, "rotate180_prob": 0.0},
        "optim": {"lr": 2e-3, "weight_decay": 0.0, "epochs": 2, "warmup_epochs": 0, "steps_per_epoch": 2},
        "schedule": {"val_every": 1, "threads": 1},
    },
}  # fmt: skip

# The published recipes of the comparison models (scripts/models/Total_all/*.sh of the published code): AdamW
# without weight decay, lr 2e-3, batch 8, 50 epochs with 5 warm-up epochs, DiceCE on one logits volume; UNETR and
# SwinUNETR lr 2e-4 with batch 1, MultiScale2DPermuteConcat batch 4; OneDConcat and CustomAutoEncoder on a 128^3
# grid (--roi_z=128). Preset names: "paper_" + the lower-case model name (e.g. paper_unet).
_BASELINE_RECIPES: dict[str, dict[str, Any]] = {
    "UNet": {},
    "AttentionUnet": {},
    "UNETR": {"optim": {"lr": 2e-4, "batch_size": 1}},
    "SwinUNETR": {"optim": {"lr": 2e-4, "batch_size": 1}},
    "OneDConcat": {"model": {"img_size": [128, 128, 128]}},
    "TwoDPermuteConcat": {},
    "MultiScale2DPermuteConcat": {"optim": {"batch_size": 4}},
    "CustomAutoEncoder": {"model": {"img_size": [128, 128, 128]}},
}
for _name, _recipe in _BASELINE_RECIPES.items():
    PRESETS[f"paper_{_name.lower()}"] = {
        "name": f"paper_{_name.lower()}",
        "model": {"variant": _name, **_recipe.get("model", {})},
        "data": {"source": "published"},
        "optim": {"lr": 2e-3, "weight_decay": 0.0, "epochs": 50, "warmup_epochs": 5, "batch_size": 8,
                  **_recipe.get("optim", {})},
    }


def preset_dict(name: str) -> dict[str, Any]:
    """A deep copy of preset ``name`` as a config mapping."""
    if name not in PRESETS:
        raise ValueError(f"unknown training preset {name!r}; choose one of {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name])


def config_from_dict(mapping: dict[str, Any], source: str = "config") -> TrainConfig:
    """Build a :class:`TrainConfig` from a mapping, merging it onto its ``preset`` when one is named.

    Args:
        mapping: nested mapping with optional keys ``name``, ``preset`` and the section names.
        source: what to name in error messages (the file path).

    Raises:
        InputError: unknown preset, section or key, or a value of the wrong kind.
    """
    if not isinstance(mapping, dict):
        raise InputError(source, "a training configuration must be a mapping of sections")
    merged: dict[str, Any] = {}
    preset = mapping.get("preset")
    if preset is not None:
        try:
            merged = preset_dict(str(preset))
        except ValueError as exc:
            raise InputError(source, str(exc)) from None
    merged = _merge(merged, mapping)
    top = {"name", "preset", *_SECTIONS}
    unknown = sorted(set(merged) - top)
    if unknown:
        raise InputError(source, f"unknown configuration keys {unknown}; allowed: {sorted(top)}")
    sections = {}
    for key, cls in _SECTIONS.items():
        values = merged.get(key) or {}
        if not isinstance(values, dict):
            raise InputError(source, f"section {key!r} must be a mapping")
        names = {f.name for f in fields(cls)}
        bad = sorted(set(values) - names)
        if bad:
            raise InputError(source, f"unknown keys {bad} in section {key!r}; allowed: {sorted(names)}")
        try:
            hints = typing.get_type_hints(cls)
            sections[key] = cls(**{k: _coerced(hints[k], _tupled(v), f"{key}.{k}") for k, v in values.items()})
        except (TypeError, ValueError) as exc:
            raise InputError(source, f"section {key!r}: {exc}") from None
    if sections["data"].source == "auto":
        sections["data"] = replace(sections["data"], source=_detect_source(sections["data"].root, source))
    config = TrainConfig(name=str(merged.get("name", "run")), preset=preset, **sections)
    _validate(config, source)
    return config


def load_config(path: str | Path) -> TrainConfig:
    """Read a YAML (``.yaml``/``.yml``) or JSON configuration file."""
    import yaml

    path = Path(path)
    if path.exists() and not path.is_file():
        raise InputError(path, "is not a regular file")
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise InputError(path, f"is {path.stat().st_size} bytes; a configuration has at most {MAX_CONFIG_BYTES}")
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read the configuration ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        mapping = json.loads(text) if path.suffix.lower() == ".json" else _load_yaml(text)
    except (ValueError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())
        raise InputError(path, f"not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {reason}") from None
    return config_from_dict(mapping or {}, str(path))


MAX_CONFIG_BYTES = 1 << 20
"""Largest configuration file accepted (bytes)."""


def _load_yaml(text: str) -> Any:
    """``yaml.safe_load`` without aliases: ``*name`` references are refused (an alias bomb of a few hundred bytes
    would otherwise expand to billions of nodes), and so is every ``!!python`` tag (safe_load never runs code)."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise yaml.YAMLError(f"aliases (*{self.peek_event().anchor}) are not accepted in a configuration")
            return super().compose_node(parent, index)

    return yaml.load(text, Loader=NoAliasLoader)  # a SafeLoader subclass: no Python objects


def save_config(config: TrainConfig, path: str | Path, overwrite: bool = True) -> Path:
    """Write ``config`` as YAML or JSON (by suffix), atomically; the file reloads to an equal config."""
    import yaml

    from SwinX2SLib.io import atomic_write

    path = Path(path)
    data = config.to_dict()
    text = json.dumps(data, indent=2) if path.suffix.lower() == ".json" else yaml.safe_dump(data, sort_keys=False)
    with atomic_write(path, overwrite=overwrite) as tmp:
        tmp.write_text(text)
    return path


def apply_overrides(config: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Apply ``section.key=value`` overrides (values parsed as YAML, e.g. ``optim.lr=1e-4``)."""
    return config_from_dict(override_mapping(config.to_dict(), overrides), "overrides")


def override_mapping(mapping: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of a configuration mapping with ``section.key=value`` overrides applied (not yet validated).

    ``swinx2s train --preset NAME --set ...`` builds its configuration from ``{"preset": NAME}`` with the overrides
    before validating, so a preset that needs ``data.root`` can take it from ``--set``.
    """
    import yaml

    mapping = copy.deepcopy(mapping)
    for item in overrides:
        key, sep, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or (dot and section not in _SECTIONS) or (not dot and section not in ("name",)):
            raise InputError(item, "overrides look like section.key=value, e.g. optim.lr=1e-4")
        try:
            value = _load_yaml(raw)
        except yaml.YAMLError as exc:
            raise InputError(item, f"not a valid YAML value ({' '.join(str(exc).split())})") from None
        if dot:
            mapping.setdefault(section, {})[name] = value
        else:
            mapping[section] = value
    return mapping


def _detect_source(root: str | None, source: str) -> str:
    """``data.source: auto``: ``published`` for a folder with ``data_list.json``, else ``ct`` (case folders)."""
    if not root:
        raise InputError(source, "data.root is required for data.source auto (the data folder)")
    if not Path(root).is_dir():
        raise InputError(root, "data.root: no such folder")
    return "published" if (Path(root) / "data_list.json").is_file() else "ct"


def _validate(config: TrainConfig, source: str) -> None:
    checks = [
        (all(math.isfinite(v) for v in _numbers(config.to_dict())), "numbers must be finite (no .inf or .nan)"),
        (config.optim.lr > 0, "optim.lr must be positive"),
        (config.optim.precision in ("float32", "bfloat16"), "optim.precision must be float32 or bfloat16"),
        (config.optim.epochs >= 1, "optim.epochs must be >= 1"),
        (config.optim.batch_size >= 1, "optim.batch_size must be >= 1"),
        (config.optim.warmup_epochs >= 0, "optim.warmup_epochs must be >= 0"),
        (config.optim.steps_per_epoch is None or config.optim.steps_per_epoch >= 1, "optim.steps_per_epoch >= 1"),
        (len(config.model.img_size) == 3, "model.img_size must be (X, Y, Z)"),
        (config.model.prior_bias_samples >= 0, "model.prior_bias_samples must be >= 0"),
        (config.data.source in ("phantom", "published", "ct"), "data.source must be phantom, published, ct or auto"),
        (config.data.source == "phantom" or config.data.root, f"data.root is required for {config.data.source!r}"),
        (0.0 <= config.augment.prob <= 1.0 and 0.0 <= config.augment.rotate180_prob <= 1.0, "probabilities in [0,1]"),
        (config.augment.zoom[0] <= config.augment.zoom[1], "augment.zoom must be (low, high)"),
        (0.0 <= config.augment.radiograph_prob <= 1.0, "augment.radiograph_prob must be in [0, 1]"),
        (0 < config.augment.radiograph_gamma[0] <= config.augment.radiograph_gamma[1],
         "augment.radiograph_gamma must be (low, high), both positive"),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(source, message)


def _numbers(value: Any) -> list[float]:
    """Every float in a nested configuration mapping."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _numbers(v)]
    return [value] if isinstance(value, float) else []


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _coerced(hint: Any, value: Any, name: str) -> Any:
    """Numbers written as text (YAML reads ``3e-4`` as a string) become the field's numeric type."""
    text = str(hint)
    if text.startswith("typing.Literal"):
        return value
    if isinstance(value, str) and ("float" in text or text == "<class 'int'>"):
        try:
            return int(value) if text == "<class 'int'>" else float(value)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, tuple) and "float" in text:
        return tuple(float(v) if isinstance(v, (str, int)) and not isinstance(v, bool) else v for v in value)
    if isinstance(value, int) and not isinstance(value, bool) and text in ("<class 'float'>", "float | None"):
        return float(value)
    return value


def _tupled(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
