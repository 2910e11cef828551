"""Model weights: published Swin-X2S checkpoints, the SwinX2S model directory, ImageNet Swin encoder initialisation.

Three sources of weights, three entry points:

* **Published checkpoints** (``torch.save`` dicts with the weights under ``"state_dict"``, key names of the published
  implementation): :func:`load_published_checkpoint` reads one with ``torch.load(weights_only=True)`` only (a file
  carrying pickled code is refused, never executed), :func:`convert_published_state_dict` renames every key to this
  package's module names (a pure function; unknown keys are refused), :func:`model_from_published` infers the
  configuration from the tensor shapes, builds the model and loads it strictly.
* **Own model directory**: ``model.safetensors`` + ``model.json`` (a :class:`ModelCard`: architecture, input size,
  class table, preprocessing preset, training data, metrics, licence and the SHA-256 of the weights).
  :func:`save_model_dir` writes both atomically; :func:`load_model_dir` verifies hash and class table first.
* **ImageNet Swin weights** for the 2-D encoder: :func:`load_pretrained_encoder` (Microsoft ``.pth`` or timm state
  dict), adapting the 4x4 RGB patch kernel to the 2x2 N-channel one and reporting what was loaded.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalogue import CATALOGUE_VERSION, NUM_CLASSES, SUBSET_TASKS, by_id, by_name
from .errors import ModelError
from .network.engine import ENGINES
from .network.registry import VariantConfig, get_variant, variant_name

if TYPE_CHECKING:
    import torch

    from .network import SwinX2S
    from .network.swin_encoder import SwinEncoder2D

__all__ = [
    "FORMAT_VERSION",
    "MODEL_CARD_FILE",
    "WEIGHTS_FILE",
    "ModelCard",
    "PublishedConfig",
    "class_names",
    "convert_published_state_dict",
    "infer_published_config",
    "load_model_dir",
    "load_pretrained_encoder",
    "load_published_checkpoint",
    "load_torch_file",
    "model_from_published",
    "read_model_card",
    "save_model_dir",
]

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
MODEL_CARD_FILE = "model.json"
BACKGROUND_NAME = "background"

# ----------------------------------------------------------------------------------------------- published format

_Rule = tuple["re.Pattern[str]", "str | Callable[[re.Match[str]], str] | None"]
_ENCODER_LEVEL = {"1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "10": 5}
_CROSS_ATTENTION = {"query": "to_q", "key": "to_k", "value": "to_v", "out": "out_proj"}
_SWIN_BLOCK = r"swinViT\.layers\.(\d)\.blocks\.(\d+)\."


def _block(match: re.Match[str], rest: str) -> str:
    return f"encoder.swin.layers{int(match[1]) + 1}.0.blocks.{match[2]}.{rest}"


_PUBLISHED_RULES: tuple[_Rule, ...] = tuple(
    (re.compile(pattern), target)
    for pattern, target in (
        (r"swinViT\.patch_embed\.((?:proj|norm)\.(?:weight|bias))", r"encoder.swin.patch_embed.\1"),
        (r"swinViT\.norm\.(weight|bias)", r"encoder.norms.0.\1"),
        (r"swinViT\.layers\.(\d)\.norm\.(weight|bias)", lambda m: f"encoder.norms.{int(m[1]) + 1}.{m[2]}"),
        (
            r"swinViT\.layers\.(\d)\.downsample\.(reduction\.weight|norm\.weight|norm\.bias)",
            lambda m: f"encoder.swin.layers{int(m[1]) + 1}.0.downsample.{m[2]}",
        ),
        (_SWIN_BLOCK + r"((?:norm1|norm2|attn\.qkv|attn\.proj)\.(?:weight|bias))", lambda m: _block(m, m[3])),
        (
            _SWIN_BLOCK + r"(attn\.relative_position_bias_table|attn\.relative_position_index)",
            lambda m: _block(m, m[3]),
        ),
        (_SWIN_BLOCK + r"mlp\.fc([12])\.(weight|bias)", lambda m: _block(m, f"mlp.linear{m[3]}.{m[4]}")),
        (_SWIN_BLOCK + r"attn_mask", None),  # derived buffer: recomputed on the fly
        (r"expand_\.(\d)\.(weight|bias)", r"dimension_expansion.\1.conv.\2"),
        (
            r"encoder(1|2|3|4|5|10)\.(layer\.conv[123]\.conv\.weight)",
            lambda m: f"encoder_blocks.{_ENCODER_LEVEL[m[1]]}.{m[2]}",
        ),
        (
            r"decoder([1-5])\.(transp_conv\.conv\.weight|conv_block\.conv[123]\.conv\.weight)",
            lambda m: f"decoder_blocks.{5 - int(m[1])}.{m[2]}",
        ),
        (r"out\.conv\.conv\.(weight|bias)", r"head.conv.conv.\1"),
        (r"cross_atte6\.position_embeddings", "cross_view_attention.position_embedding"),
        (r"cross_atte6\.patch_embeddings\.(weight|bias)", r"cross_view_attention.embedding.\1"),
        (r"cross_atte6\.encoder_norm\.(weight|bias)", r"cross_view_attention.norm.\1"),
        (r"cross_atte6\.layer\.(\d+)\.attention_norm\.(weight|bias)", r"cross_view_attention.layers.\1.norm.\2"),
        (
            r"cross_atte6\.layer\.(\d+)\.attn\.(query|key|value|out)\.(weight|bias)",
            lambda m: f"cross_view_attention.layers.{m[1]}.attention.{_CROSS_ATTENTION[m[2]]}.{m[3]}",
        ),
    )
)


def _published_key(key: str) -> str | None:
    """Our name for a published key; None for a derived buffer; KeyError for an unknown key."""
    for pattern, target in _PUBLISHED_RULES:
        match = pattern.fullmatch(key)
        if match is None:
            continue
        if target is None:
            return None
        return target(match) if callable(target) else match.expand(target)
    raise KeyError(key)


def _strip_prefix(state_dict: Mapping[str, Any], prefix: str = "module.") -> dict[str, Any]:
    """Remove a ``module.`` prefix (DistributedDataParallel) when every key has it."""
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix) :]: v for k, v in state_dict.items()}
    return dict(state_dict)


def convert_published_state_dict(
    state_dict: Mapping[str, torch.Tensor], architecture: str | None = None
) -> dict[str, torch.Tensor]:
    """Rename a published Swin-X2S state dict to this package's :class:`~SwinX2SLib.network.SwinX2S` names.

    Tensors are passed through unchanged. The published ``attn_mask`` buffers of shifted-window blocks are dropped
    (MONAI recomputes the mask). A ``module.`` prefix on every key is removed.

    Args:
        state_dict: published key -> tensor (e.g. ``swinViT.layers.0.blocks.0.mlp.fc1.weight``).
        architecture: a comparison model's published name (``UNet``, ``OneDConcat``, ...) for its checkpoint
            (:func:`SwinX2SLib.published_baselines.convert_baseline_state_dict`); None for Swin-X2S.

    Returns:
        Our key -> tensor (e.g. ``encoder.swin.layers1.0.blocks.0.mlp.linear1.weight``).

    Raises:
        ModelError: some keys are not part of the published architecture (they are named).
    """
    if architecture is not None:
        from .published_baselines import convert_baseline_state_dict

        return convert_baseline_state_dict(_strip_prefix(state_dict), architecture)
    converted: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in _strip_prefix(state_dict).items():
        try:
            ours = _published_key(key)
        except KeyError:
            unknown.append(key)
            continue
        if ours is not None:
            converted[ours] = value
    if unknown:
        raise ModelError(f"not a published Swin-X2S state dict: unknown key(s) {_names(unknown)}")
    return converted


@dataclass(frozen=True)
class PublishedConfig:
    """Model arguments recovered from the tensor shapes of a published state dict."""

    variant: VariantConfig
    img_size: tuple[int, int, int]
    in_channels: int
    num_classes: int


def infer_published_config(state_dict: Mapping[str, torch.Tensor]) -> PublishedConfig:
    """Recover architecture, input size, input channels and classes from a published state dict.

    The window size is read from the first stage's relative position bias table (a square window is assumed);
    X = Y from the first dimension-expansion layer and Z from the size of the cross-attention position embedding.

    Raises:
        ModelError: a tensor the inference needs is missing or has an impossible shape.
    """
    sd = _strip_prefix(state_dict)
    try:
        patch = sd["swinViT.patch_embed.proj.weight"]
        feature_size, in_channels = int(patch.shape[0]), int(patch.shape[1])
        depths, num_heads = [], []
        for stage in range(4):
            blocks = {int(m[1]) for k in sd if (m := re.fullmatch(rf"swinViT\.layers\.{stage}\.blocks\.(\d+)\..*", k))}
            depths.append(len(blocks))
            num_heads.append(int(sd[f"swinViT.layers.{stage}.blocks.0.attn.relative_position_bias_table"].shape[1]))
        side = round(sd["swinViT.layers.0.blocks.0.attn.relative_position_bias_table"].shape[0] ** 0.5)
        fusion_depth = len({m[1] for k in sd if (m := re.fullmatch(r"cross_atte6\.layer\.(\d+)\..*", k))})
        size_xy = int(sd["expand_.0.weight"].shape[0])
        tokens = int(sd["cross_atte6.position_embeddings"].shape[1])
        num_classes = int(sd["out.conv.conv.weight"].shape[0])
    except KeyError as exc:
        raise ModelError(f"not a published Swin-X2S state dict: {exc.args[0]!r} is missing") from None
    size_z = tokens * 32 // (size_xy // 32) ** 2
    if side % 2 == 0 or size_xy % 32 or (size_xy // 32) ** 2 * (size_z // 32) != tokens:
        raise ModelError("published state dict has inconsistent window / input-size tensors")
    window = (side + 1) // 2
    variant = VariantConfig(feature_size, tuple(depths), tuple(num_heads), (window, window), fusion_depth)
    return PublishedConfig(variant, (size_xy, size_xy, size_z), in_channels, num_classes)


def load_torch_file(path: Path, what: str) -> Any:
    """``torch.load`` with ``weights_only=True``; pickled code or a broken file becomes a ModelError.

    Every ``.pt`` / ``.pth`` file the project reads goes through here (published checkpoints, ImageNet encoders,
    training-run checkpoints), so no file can execute code when it is loaded.

    Args:
        path: the file.
        what: what the file should be, for the error message (e.g. ``"published checkpoint"``).

    Raises:
        ModelError: missing, unreadable or truncated file, or pickled objects other than tensors and plain data.
    """
    import torch

    if not path.is_file():
        raise ModelError(f"{path}: {what} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{path}: refused to load: the file holds pickled Python objects other than tensors and plain data "
            f"(only weights-only checkpoints are accepted; nothing in it was executed). Details: {first_line}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read {what} ({type(exc).__name__}: {exc})") from None


def load_published_checkpoint(path: str | PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a published checkpoint (``torch.save`` dict with ``"state_dict"``, or a bare state dict).

    Only ``torch.load(weights_only=True)`` is used: a file carrying pickled code is refused, never executed.

    Returns:
        The published state dict (published key names; convert with :func:`convert_published_state_dict`).

    Raises:
        ModelError: missing/unreadable file, pickled code, or no state dict inside.
    """
    path = Path(path)
    checkpoint = load_torch_file(path, "published checkpoint")
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("state_dict"), Mapping):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, Mapping) or not checkpoint:
        raise ModelError(f"{path}: no state dict found (expected a dict with a 'state_dict' entry)")
    return dict(checkpoint)


def model_from_published(
    source: str | PathLike[str] | Mapping[str, torch.Tensor],
    variant: str | Mapping[str, Any] | VariantConfig | None = None,
    **kwargs: Any,
) -> SwinX2S:
    """Build a :class:`~SwinX2SLib.network.SwinX2S` holding the weights of a published checkpoint (eval mode).

    Args:
        source: checkpoint path or published state dict.
        variant: expected variant; a checkpoint of another architecture is refused. A comparison model's
            published name (``UNet``, ``OneDConcat``, ...) loads that model's checkpoint instead
            (:func:`SwinX2SLib.published_baselines.baseline_from_published`).
        **kwargs: further model arguments (e.g. ``drop_path_rate``; ``img_size`` for a comparison model).

    Raises:
        ModelError: unreadable checkpoint, unknown/missing keys, shape mismatch or wrong variant.
    """
    from .network import ArchitectureConfig, SwinX2S

    name = str(source) if not isinstance(source, Mapping) else "published state dict"
    state_dict = load_published_checkpoint(source) if not isinstance(source, Mapping) else dict(source)
    if variant is not None and isinstance(expected := get_variant(variant), ArchitectureConfig):
        from .published_baselines import baseline_from_published

        return baseline_from_published(_strip_prefix(state_dict), expected.architecture, name, **kwargs)
    config = infer_published_config(state_dict)
    if variant is not None and get_variant(variant) != config.variant:
        raise ModelError(
            f"{name}: checkpoint architecture {config.variant.to_dict()} is not variant {variant!r} "
            f"({get_variant(variant).to_dict()})"
        )
    model = SwinX2S(
        img_size=config.img_size,
        in_channels=config.in_channels,
        num_classes=config.num_classes,
        **asdict(config.variant),
        **kwargs,
    )
    _load_strict(model, convert_published_state_dict(state_dict), name)
    return model.eval()


def _names(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def _load_strict(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """``load_state_dict`` that names missing / unexpected / mismatched keys in a ModelError."""
    own = model.state_dict()
    mismatched = [
        f"{k} {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    problems = [
        f"{what}: {_names(keys)}"
        for what, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", mismatched))
        if keys
    ]
    if problems:
        raise ModelError(f"{source}: weights do not fit the model ({'; '.join(problems)})")
    model.load_state_dict(state_dict, strict=True)


# ------------------------------------------------------------------------------------------- own model directory


def class_names(num_classes: int = NUM_CLASSES, task: str | None = None) -> list[str]:
    """Class table (label value -> catalogue name, ``"background"`` first) of a full-catalogue or subset model.

    Raises:
        ValueError: unknown task, or ``num_classes`` does not match the table.
    """
    if task is None:
        ids: tuple[int, ...] = tuple(range(1, NUM_CLASSES))
    elif task in SUBSET_TASKS:
        ids = SUBSET_TASKS[task]
    else:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(SUBSET_TASKS)} (or none for all classes)")
    names = [BACKGROUND_NAME] + [by_id(i).name for i in ids]
    if len(names) != num_classes:
        raise ValueError(
            f"a model with {num_classes} classes does not match the {task or 'full'} class table "
            f"({len(names)} classes incl. background); pass the matching task"
        )
    return names


@dataclass(frozen=True)
class ModelCard:
    """Contents of ``model.json``: what a model directory holds and what the weights expect.

    Attributes:
        variant: registered variant name, or None for a custom configuration.
        config: architecture (:class:`~SwinX2SLib.network.VariantConfig` as a dict).
        img_size: volume size ``(X, Y, Z)`` the model was built for.
        in_channels: X-ray images per view.
        num_classes: output classes, background included.
        classes: label value -> catalogue class name (``"background"`` first).
        catalogue_version: :data:`SwinX2SLib.catalogue.CATALOGUE_VERSION` the class table refers to.
        preprocessing: the DRR / preprocessing preset the model expects (opaque here, e.g.
            ``{"drr_preset": "published", "geometry": "parallel"}``).
        training: free-form description of the training data and run.
        metrics: free-form validation metrics.
        license: licence of the weights.
        description: one line for humans.
        sha256: SHA-256 of ``model.safetensors`` (filled in by :func:`save_model_dir`).
        format_version: version of this file format.
        engine: the float32 inference engine the model runs with when the user asks for ``auto``, one of
            :data:`~SwinX2SLib.network.ENGINES` (``plain`` pins the PyTorch / MONAI forward pass; see
            :mod:`SwinX2SLib.network.engine`).
    """

    variant: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    img_size: tuple[int, int, int] = (128, 128, 160)
    in_channels: int = 1
    num_classes: int = NUM_CLASSES
    classes: tuple[str, ...] = ()
    catalogue_version: str = CATALOGUE_VERSION
    preprocessing: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    license: str = "unknown"
    description: str = ""
    sha256: str = ""
    format_version: int = FORMAT_VERSION
    engine: str = "auto"

    def to_json(self) -> str:
        """Pretty JSON text (tuples as lists)."""
        data = asdict(self)
        data["img_size"], data["classes"] = list(self.img_size), list(self.classes)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "model.json") -> ModelCard:
        """Parse ``model.json`` text.

        Raises:
            ModelError: not JSON, unknown/missing fields, or a newer format version.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"{source}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ModelError(f"{source}: expected a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(f"{source}: unknown field(s) {unknown}")
        version = data.get("format_version", 0)
        if not _is_int(version, 0, 10**6):
            raise ModelError(f"{source}: format_version must be a whole number, got {version!r}")
        if version > FORMAT_VERSION:
            raise ModelError(
                f"{source}: format version {data['format_version']} is newer than this SwinX2S supports "
                f"({FORMAT_VERSION}); update SwinX2S"
            )
        missing = [k for k in ("config", "img_size", "num_classes", "classes", "sha256") if k not in data]
        if missing:
            raise ModelError(f"{source}: missing field(s) {missing}")
        _check_card_fields(data, source)
        if data.get("engine", "auto") not in ENGINES:
            raise ModelError(f"{source}: engine {data['engine']!r} is not one of {', '.join(ENGINES)}")
        data["img_size"] = tuple(data["img_size"])
        data["classes"] = tuple(data["classes"])
        return cls(**data)


MAX_CARD_BYTES = 16 << 20
"""Largest ``model.json`` read (bytes)."""

MAX_IMG_SIZE = 512
"""Largest model grid side a model card may ask for (voxels), checked before anything is allocated."""

MAX_ARCHITECTURE = {"feature_size": 384, "depths": 32, "num_heads": 64}
"""Largest architecture numbers a model card may ask for (feature size; blocks and heads per stage)."""


def _is_int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _check_card_fields(data: dict[str, Any], source: str) -> None:
    """Types and sizes of the ``model.json`` fields, so that a malformed or hostile card fails with one line
    before any tensor is allocated.

    Raises:
        ModelError: naming the field and the problem.
    """
    size = data["img_size"]
    # Swin-X2S halves its grid five times; a comparison model of the paper checks its own grid when it is built
    step = 1 if isinstance(data["config"], dict) and "architecture" in data["config"] else 32
    if not (isinstance(size, list) and len(size) == 3 and all(_is_int(v, step, MAX_IMG_SIZE) and v % step == 0
                                                               for v in size)):
        raise ModelError(f"{source}: img_size must be three multiples of {step} between {step} and {MAX_IMG_SIZE}, "
                         f"got {size!r}")
    if not _is_int(data.get("in_channels", 1), 1, 12):
        raise ModelError(f"{source}: in_channels must be a whole number from 1 to 12, got {data['in_channels']!r}")
    if not _is_int(data["num_classes"], 2, NUM_CLASSES):
        raise ModelError(f"{source}: num_classes must be a whole number from 2 to {NUM_CLASSES}, "
                         f"got {data['num_classes']!r}")
    if not (isinstance(data["classes"], list) and all(isinstance(c, str) for c in data["classes"])):
        raise ModelError(f"{source}: classes must be a list of class names")
    if not isinstance(data["sha256"], str):
        raise ModelError(f"{source}: sha256 must be a string")
    config = data["config"]
    if not isinstance(config, dict):
        raise ModelError(f"{source}: config must be an object with feature_size, depths and num_heads")
    if "architecture" in config:  # a comparison model of the paper: its name says everything
        from .network.registry import list_architectures

        if config["architecture"] not in list_architectures():
            raise ModelError(f"{source}: config.architecture {config['architecture']!r} is not one of "
                             f"{', '.join(list_architectures())}")
        _check_preprocessing(data, source)
        return
    for key, limit in MAX_ARCHITECTURE.items():
        value = config.get(key)
        values = value if isinstance(value, list) else [value]
        if not values or len(values) > 8 or not all(_is_int(v, 1, limit) for v in values):
            raise ModelError(f"{source}: config.{key} must be {'a list of ' if key != 'feature_size' else ''}"
                             f"whole numbers from 1 to {limit}, got {value!r}")
    _check_preprocessing(data, source)


def _check_preprocessing(data: dict[str, Any], source: str) -> None:
    """The card's ``preprocessing`` fields (part of :func:`_check_card_fields`)."""
    preprocessing = data.get("preprocessing", {})
    if not isinstance(preprocessing, dict):
        raise ModelError(f"{source}: preprocessing must be an object")
    if "drr_preset" in preprocessing:
        from .options import DRR_PRESETS

        if preprocessing["drr_preset"] not in DRR_PRESETS:
            raise ModelError(f"{source}: preprocessing.drr_preset {preprocessing['drr_preset']!r} is not one of "
                             f"{sorted(DRR_PRESETS)}")
    quantiles = preprocessing.get("reference_quantiles")
    if quantiles is not None and not (
            isinstance(quantiles, list) and len(quantiles) >= 2
            and all(isinstance(q, int | float) and not isinstance(q, bool) and math.isfinite(q) for q in quantiles)
            and quantiles == sorted(quantiles)):
        raise ModelError(f"{source}: preprocessing.reference_quantiles must be a non-decreasing list of at least two "
                         "finite numbers")
    if preprocessing.get("geometry", "parallel") not in ("parallel", "perspective"):
        raise ModelError(f"{source}: preprocessing.geometry must be 'parallel' or 'perspective', "
                         f"got {preprocessing['geometry']!r}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_model_dir(model: SwinX2S, path: str | PathLike[str], card: ModelCard, overwrite: bool = False) -> Path:
    """Write ``model.safetensors`` and ``model.json`` into the folder ``path`` (together: both or neither).

    Architecture, input size, channels, classes and the weights' SHA-256 are taken from ``model``; the class table
    defaults to the full catalogue (pass ``card.classes`` for a subset model, see :func:`class_names`).

    Returns:
        The folder.

    Raises:
        OutputError: the folder cannot be created / written, or files exist and ``overwrite`` is false.
        ValueError: the card's class table does not match the model's classes.
    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    from .io import atomic_write, staged_outputs  # SimpleITK: only where files are written

    classes = tuple(card.classes) or tuple(class_names(model.num_classes))
    if len(classes) != model.num_classes:
        raise ValueError(f"class table has {len(classes)} names, the model {model.num_classes} classes")
    weights = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with staged_outputs(path, (WEIGHTS_FILE, MODEL_CARD_FILE), overwrite) as stage:  # weights and card together
        with atomic_write(stage / WEIGHTS_FILE) as tmp:
            # One metadata entry only: safetensors writes a metadata map in arbitrary order, which would make the
            # file bytes (and so the SHA-256 in model.json) differ between two saves of the same weights.
            try:
                save_file(weights, str(tmp), metadata={"format": "pt"})
            except SafetensorError as exc:  # how safetensors reports a full disk
                raise OSError(str(exc)) from None
            tmp.chmod(0o644)  # safetensors creates the file owner-only
            digest = _sha256(tmp)
        card = replace(
            card,
            variant=variant_name(model.config),
            config=model.config.to_dict(),
            img_size=tuple(model.img_size),
            in_channels=model.in_channels,
            num_classes=model.num_classes,
            classes=classes,
            sha256=digest,
            format_version=FORMAT_VERSION,
        )
        with atomic_write(stage / MODEL_CARD_FILE) as tmp:
            tmp.write_text(card.to_json(), encoding="utf-8")
    return Path(path)


def read_model_card(path: str | PathLike[str]) -> ModelCard:
    """Read ``model.json`` of a model directory (no weights are loaded, no torch import)."""
    card_path = Path(path) / MODEL_CARD_FILE
    if not card_path.is_file():
        raise ModelError(f"{path}: not a SwinX2S model directory ({MODEL_CARD_FILE} not found)")
    if card_path.stat().st_size > MAX_CARD_BYTES:
        raise ModelError(f"{card_path}: {card_path.stat().st_size} bytes; a model card has at most {MAX_CARD_BYTES}")
    try:
        text = card_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{card_path}: cannot be read as UTF-8 text ({exc})") from None
    return ModelCard.from_json(text, str(card_path))


def _check_classes(card: ModelCard, source: str) -> None:
    """The card's class table must be the catalogue's (all classes or one subset task), for this catalogue."""
    if card.catalogue_version != CATALOGUE_VERSION:
        raise ModelError(
            f"{source}: made for class catalogue version {card.catalogue_version}, this SwinX2S has "
            f"{CATALOGUE_VERSION}; the label values would mean different bones"
        )
    if len(card.classes) != card.num_classes:
        raise ModelError(f"{source}: class table has {len(card.classes)} names for {card.num_classes} classes")
    if not card.classes or card.classes[0] != BACKGROUND_NAME:
        raise ModelError(f"{source}: class 0 must be {BACKGROUND_NAME!r}")
    try:
        ids = [by_name(name).id for name in card.classes[1:]]
    except KeyError as exc:
        raise ModelError(f"{source}: {exc.args[0]}") from None
    tables = [tuple(range(1, NUM_CLASSES)), *SUBSET_TASKS.values()]
    if tuple(ids) not in tables:
        raise ModelError(f"{source}: class table is neither the full catalogue nor a subset task in catalogue order")


def load_model_dir(path: str | PathLike[str], device: str | torch.device = "cpu") -> tuple[SwinX2S, ModelCard]:
    """Load a model directory written by :func:`save_model_dir` (model in eval mode on ``device``).

    Raises:
        ModelError: missing files, modified weights (hash mismatch), class table not matching the catalogue,
            or weights that do not fit the described architecture.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .network import create_model

    folder = Path(path)
    card = read_model_card(folder)
    source = str(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"{source}: {WEIGHTS_FILE} not found")
    digest = _sha256(weights)
    if digest != card.sha256:
        raise ModelError(
            f"{weights}: weights were modified (SHA-256 {digest[:12]}... differs from {card.sha256[:12]}... "
            f"recorded in {MODEL_CARD_FILE})"
        )
    _check_classes(card, source)
    try:
        model = create_model(card.config, card.img_size, card.in_channels, card.num_classes)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{source}: invalid architecture in {MODEL_CARD_FILE} ({exc})") from None
    try:
        state_dict = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"{weights}: cannot read weights ({exc})") from None
    _load_strict(model, state_dict, str(weights))
    return model.to(device).eval(), card


# ---------------------------------------------------------------------------------------- ImageNet Swin encoder

_DERIVED = re.compile(r".*(attn_mask|relative_position_index|relative_coords_table)")


def _imagenet_key(key: str, microsoft: bool) -> str | None:
    """Our encoder key (relative to ``encoder.``) for an ImageNet Swin key, or None when there is no counterpart."""
    if key in ("patch_embed.proj.weight", "patch_embed.proj.bias", "patch_embed.norm.weight", "patch_embed.norm.bias"):
        return f"swin.{key}"
    if match := re.fullmatch(r"layers\.(\d)\.blocks\.(\d+)\.(.+)", key):
        rest = re.sub(r"^mlp\.fc([12])", r"mlp.linear\1", match[3])
        return f"swin.layers{int(match[1]) + 1}.0.blocks.{match[2]}.{rest}"
    if match := re.fullmatch(r"layers\.(\d)\.downsample\.(.+)", key):
        # Microsoft: merging at the end of stage i; timm >= 0.9: at the start of stage i (= end of stage i - 1)
        stage = int(match[1]) + (1 if microsoft else 0)
        return f"swin.layers{stage}.0.downsample.{match[2]}" if stage >= 1 else None
    return None


def load_pretrained_encoder(model: SwinX2S | SwinEncoder2D, path: str | PathLike[str]) -> dict[str, Any]:
    """Initialise the 2-D Swin encoder from a local ImageNet Swin checkpoint (no network access).

    Accepts a Microsoft Swin ``.pth`` (weights under ``"model"``) or a timm ``SwinTransformer`` state dict (bare or
    under ``"state_dict"``; ``.safetensors`` too). Adaptations:

    * patch embedding 4x4 -> 2x2: each 2x2 block of the kernel is summed (2x2 sum pooling), so a 2x2 patch of an
      image at half the resolution gives the same response as the 4x4 patch; the published code instead kept every
      second row and column;
    * 3 RGB input channels -> ``in_channels``: :func:`timm.models.adapt_input_conv` (RGB summed for one channel, as
      a grey image replicated to RGB would see it; repeated and rescaled for more channels);
    * the Microsoft / timm placements of patch merging are both mapped to the end of our stages.

    Tensors without a counterpart (classifier head, final norm, derived buffers) or with another shape (e.g. bias
    tables of stages whose window was shrunk to a small feature map) are left out and reported.

    Returns:
        ``{"loaded": [encoder keys], "not_loaded": {checkpoint key: reason}, "missing": [encoder keys left at
        their initial values]}``.

    Raises:
        ModelError: unreadable file, pickled code, or not a Swin state dict.
    """
    import torch.nn.functional as F
    from timm.models import adapt_input_conv

    from .network.swin_encoder import SwinEncoder2D

    encoder = model if isinstance(model, SwinEncoder2D) else model.encoder
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        checkpoint: Any = load_file(str(path))
    else:
        checkpoint = load_torch_file(path, "ImageNet Swin checkpoint")
    for wrapper in ("model", "state_dict"):
        if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get(wrapper), Mapping):
            checkpoint = checkpoint[wrapper]
    state_dict = _strip_prefix(checkpoint) if isinstance(checkpoint, Mapping) else {}
    if "patch_embed.proj.weight" not in state_dict:
        raise ModelError(f"{path}: not a Swin Transformer state dict (no 'patch_embed.proj.weight')")
    microsoft = any(k.startswith("layers.0.downsample.") for k in state_dict)
    own = encoder.state_dict()
    update: dict[str, torch.Tensor] = {}
    not_loaded: dict[str, str] = {}
    for key, value in state_dict.items():
        if _DERIVED.fullmatch(key):
            not_loaded[key] = "derived buffer (recomputed)"
            continue
        ours = _imagenet_key(key, microsoft)
        if ours is None or ours not in own:
            not_loaded[key] = "no counterpart in the Swin-X2S encoder"
            continue
        if key == "patch_embed.proj.weight":
            value = adapt_input_conv(own[ours].shape[1], F.avg_pool2d(value.float(), 2) * 4).to(value.dtype)
        if tuple(value.shape) != tuple(own[ours].shape):
            not_loaded[key] = f"shape {tuple(value.shape)} != encoder {tuple(own[ours].shape)}"
            continue
        update[ours] = value
    encoder.load_state_dict(update, strict=False)
    missing = [k for k in own if k not in update and not _DERIVED.fullmatch(k)]
    return {"loaded": sorted(update), "not_loaded": not_loaded, "missing": missing}
