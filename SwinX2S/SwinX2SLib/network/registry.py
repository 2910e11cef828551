"""Registry of the networks: Swin-X2S variants and the paper's comparison models, the one place that knows them.

Torch-free until :func:`create_model` is called, so command lines can list variants instantly::

    >>> list_variants()
    ['base', 'large', 'small', 'test', 'tiny']
    >>> get_variant("Swin-X2S-Tiny").feature_size        # published names keep working
    32
    >>> list_architectures()[:3]                          # the comparison models of the paper's Table 3
    ['AttentionUnet', 'CustomAutoEncoder', 'MultiScale2DPermuteConcat']

A new variant is tested by ``Testing/test_network.py`` (registry) and ``Testing/test_engine.py`` (it must fit the
fast inference engine, or run the plain one).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "DEFAULT_IMG_SIZE",
    "ArchitectureConfig",
    "VariantConfig",
    "create_model",
    "get_variant",
    "list_architectures",
    "list_variants",
    "register_variant",
    "variant_name",
]

DEFAULT_IMG_SIZE = (128, 128, 160)


@dataclass(frozen=True)
class VariantConfig:
    """Architecture hyper-parameters of one Swin-X2S variant (weights depend on them, not on the input size).

    Attributes:
        feature_size: embedding dimension F (channels double at each of the four Swin stages).
        depths: Swin blocks per stage.
        num_heads: attention heads per stage (the cross-view attention uses the last value).
        window_size: Swin attention window.
        fusion_depth: cross-view attention layers at the bottleneck.
    """

    feature_size: int
    depths: tuple[int, int, int, int]
    num_heads: tuple[int, int, int, int]
    window_size: tuple[int, int] = (7, 7)
    fusion_depth: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        object.__setattr__(self, "num_heads", tuple(int(h) for h in self.num_heads))
        object.__setattr__(self, "window_size", tuple(int(w) for w in self.window_size))
        if len(self.depths) != 4 or len(self.num_heads) != 4:
            raise ValueError(f"depths and num_heads need 4 entries (one per stage): {self.depths}, {self.num_heads}")
        bottleneck = self.feature_size * 16
        for stage, heads in enumerate(self.num_heads):
            if heads <= 0 or (self.feature_size * 2**stage) % heads:
                raise ValueError(
                    f"num_heads[{stage}]={heads} must divide the stage width {self.feature_size * 2**stage}"
                )
        if bottleneck % self.num_heads[-1]:
            raise ValueError(f"num_heads[-1]={self.num_heads[-1]} must divide the bottleneck width {bottleneck}")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> VariantConfig:
        """Build from a mapping with ``feature_size``, ``depths``, ``num_heads`` (and optional other fields)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise ValueError(f"unknown variant field(s) {unknown}; allowed: {sorted(known)}")
        missing = [name for name in ("feature_size", "depths", "num_heads") if name not in mapping]
        if missing:
            raise ValueError(f"variant mapping lacks {missing}")
        return cls(**mapping)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists for tuples)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ArchitectureConfig:
    """A comparison model of the paper: its published name fixes the configuration (see :data:`_ARCHITECTURES`).

    Attributes:
        architecture: the published model name (``UNet``, ``OneDConcat``, ...).
    """

    architecture: str

    def __post_init__(self) -> None:
        name = _ARCHITECTURE_NAMES.get(str(self.architecture).lower())
        if name is None:
            raise ValueError(f"unknown architecture {self.architecture!r}; known: {', '.join(list_architectures())}")
        object.__setattr__(self, "architecture", name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (what a model directory's ``config`` holds)."""
        return {"architecture": self.architecture}


# published name -> (module of this package, class); each module holds one model
_ARCHITECTURES: dict[str, tuple[str, str]] = {
    "UNet": ("unet", "UNet"),
    "AttentionUnet": ("attention_unet", "AttentionUnet"),
    "UNETR": ("unetr", "UNETR"),
    "SwinUNETR": ("swin_unetr", "SwinUNETR"),
    "OneDConcat": ("one_d_concat", "OneDConcat"),
    "TwoDPermuteConcat": ("two_d_permute_concat", "TwoDPermuteConcat"),
    "MultiScale2DPermuteConcat": ("multiscale_2d_permute_concat", "MultiScale2DPermuteConcat"),
    "CustomAutoEncoder": ("custom_autoencoder", "CustomAutoEncoder"),
}
_ARCHITECTURE_NAMES = {name.lower(): name for name in _ARCHITECTURES} | {
    "onedconcatmodel": "OneDConcat", "twodpermuteconcatmodel": "TwoDPermuteConcat",  # names get_model.py also takes
}
_VARIANTS: dict[str, VariantConfig] = {}
_ALIASES: dict[str, str] = {}


def register_variant(name: str, config: VariantConfig, aliases: Sequence[str] = ()) -> None:
    """Register a named variant (and lower-case aliases, e.g. the published model names)."""
    if name in _VARIANTS:
        raise ValueError(f"variant {name!r} is already registered")
    _VARIANTS[name] = config
    for alias in aliases:
        _ALIASES[alias.lower()] = name


def list_variants() -> list[str]:
    """Sorted names of the registered Swin-X2S variants."""
    return sorted(_VARIANTS)


def list_architectures() -> list[str]:
    """Sorted published names of the comparison models (the paper's Table 3 besides Swin-X2S)."""
    return sorted(_ARCHITECTURES)


def variant_name(config: VariantConfig | ArchitectureConfig) -> str | None:
    """Name of the registered variant or architecture with exactly this configuration, or None for a custom one."""
    if isinstance(config, ArchitectureConfig):
        return config.architecture
    return next((name for name, registered in _VARIANTS.items() if registered == config), None)


def get_variant(
    variant: str | Mapping[str, Any] | VariantConfig | ArchitectureConfig,
) -> VariantConfig | ArchitectureConfig:
    """Resolve a variant or architecture name, published name, mapping or config to its configuration.

    A mapping with an ``architecture`` entry names a comparison model; any other mapping is a Swin-X2S
    :class:`VariantConfig`.
    """
    if isinstance(variant, (VariantConfig, ArchitectureConfig)):
        return variant
    if isinstance(variant, Mapping):
        if "architecture" in variant:
            if set(variant) != {"architecture"}:
                raise ValueError(f"an architecture mapping holds only 'architecture', got {sorted(variant)}")
            return ArchitectureConfig(variant["architecture"])
        return VariantConfig.from_mapping(variant)
    if variant.lower() in _ARCHITECTURE_NAMES:
        return ArchitectureConfig(variant)
    name = _ALIASES.get(variant.lower(), variant)
    if name not in _VARIANTS:
        raise ValueError(
            f"unknown Swin-X2S variant {variant!r}; known: {', '.join(list_variants())}; comparison models: "
            f"{', '.join(list_architectures())}"
        )
    return _VARIANTS[name]


def create_model(
    variant: str | Mapping[str, Any] | VariantConfig | ArchitectureConfig,
    img_size: Sequence[int] = DEFAULT_IMG_SIZE,
    in_channels: int = 1,
    num_classes: int = 55,
    **kwargs: Any,
) -> nn.Module:
    """Build a randomly initialised network: a :class:`~SwinX2SLib.network.SwinX2S` or a comparison model.

    Args:
        variant: Swin-X2S variant name (``tiny``, ``small``, ``base``, ``large``, ``test``), published name
            (``Swin-X2S-Base``), a mapping / :class:`VariantConfig` with ``feature_size``, ``depths``,
            ``num_heads`` (optional ``window_size``, ``fusion_depth``); or a comparison model's published name
            (:func:`list_architectures`: ``UNet``, ``OneDConcat``, ...) / :class:`ArchitectureConfig`.
        img_size: volume size ``(X, Y, Z)`` (Swin-X2S: X = Y, multiples of 32; see each comparison model).
        in_channels: X-ray images per view.
        num_classes: output classes.
        **kwargs: further model arguments (Swin-X2S: ``drop_rate``, ``drop_path_rate``, ``use_checkpoint``, ...;
            comparison models: ``dropout``).
    """
    config = get_variant(variant)
    if isinstance(config, ArchitectureConfig):
        module, cls = _ARCHITECTURES[config.architecture]
        model_class = getattr(importlib.import_module(f".{module}", __package__), cls)
        return model_class(img_size=img_size, in_channels=in_channels, num_classes=num_classes, **kwargs)
    from .swin_x2s import SwinX2S

    return SwinX2S(img_size=img_size, in_channels=in_channels, num_classes=num_classes, **asdict(config), **kwargs)


register_variant("tiny", VariantConfig(32, (2, 2, 6, 2), (1, 2, 4, 8)), aliases=("Swin-X2S-Tiny", "swin_x2s_tiny"))
register_variant("small", VariantConfig(64, (2, 2, 6, 2), (2, 4, 8, 16)), aliases=("Swin-X2S-Small", "swin_x2s_small"))
register_variant("base", VariantConfig(96, (2, 2, 18, 2), (3, 6, 12, 24)), aliases=("Swin-X2S-Base", "swin_x2s_base"))
register_variant(
    "large", VariantConfig(128, (2, 2, 18, 2), (4, 8, 16, 32)), aliases=("Swin-X2S-Large", "swin_x2s_large")
)
# a few-hundred-thousand-parameter model for tests and CI
register_variant("test", VariantConfig(12, (1, 1, 1, 1), (1, 2, 4, 8)), aliases=("swin_x2s_test",))
