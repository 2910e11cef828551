"""Registry of Swin-X2S variants: the one place that knows their configurations.

Torch-free until :func:`create_model` is called, so command lines can list variants instantly::

    >>> list_variants()
    ['base', 'large', 'small', 'test', 'tiny']
    >>> get_variant("Swin-X2S-Tiny").feature_size        # published names keep working
    32

A new variant is tested by ``Testing/test_network.py`` (registry) and ``Testing/test_engine.py`` (it must fit the
fast inference engine, or run the plain one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .swin_x2s import SwinX2S

__all__ = [
    "DEFAULT_IMG_SIZE",
    "VariantConfig",
    "create_model",
    "get_variant",
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
    """Sorted names of the registered variants."""
    return sorted(_VARIANTS)


def variant_name(config: VariantConfig) -> str | None:
    """Name of the registered variant with exactly this configuration, or None for a custom one."""
    return next((name for name, registered in _VARIANTS.items() if registered == config), None)


def get_variant(variant: str | Mapping[str, Any] | VariantConfig) -> VariantConfig:
    """Resolve a variant name, published name, mapping or config to a :class:`VariantConfig`."""
    if isinstance(variant, VariantConfig):
        return variant
    if isinstance(variant, Mapping):
        return VariantConfig.from_mapping(variant)
    name = _ALIASES.get(variant.lower(), variant)
    if name not in _VARIANTS:
        raise ValueError(f"unknown Swin-X2S variant {variant!r}; known: {', '.join(list_variants())}")
    return _VARIANTS[name]


def create_model(
    variant: str | Mapping[str, Any] | VariantConfig,
    img_size: Sequence[int] = DEFAULT_IMG_SIZE,
    in_channels: int = 1,
    num_classes: int = 55,
    **kwargs: Any,
) -> SwinX2S:
    """Build a randomly initialised :class:`~SwinX2SLib.network.SwinX2S`.

    Args:
        variant: registered name (``tiny``, ``small``, ``base``, ``large``, ``test``), published name
            (``Swin-X2S-Base``), or a mapping / :class:`VariantConfig` with ``feature_size``, ``depths``,
            ``num_heads`` (optional ``window_size``, ``fusion_depth``).
        img_size: volume size ``(X, Y, Z)``, X = Y, multiples of 32.
        in_channels: X-ray images per view.
        num_classes: output classes.
        **kwargs: further :class:`SwinX2S` arguments (``drop_rate``, ``drop_path_rate``, ``use_checkpoint``, ...).
    """
    from .swin_x2s import SwinX2S

    config = get_variant(variant)
    return SwinX2S(img_size=img_size, in_channels=in_channels, num_classes=num_classes, **asdict(config), **kwargs)


register_variant("tiny", VariantConfig(32, (2, 2, 6, 2), (1, 2, 4, 8)), aliases=("Swin-X2S-Tiny", "swin_x2s_tiny"))
register_variant("small", VariantConfig(64, (2, 2, 6, 2), (2, 4, 8, 16)), aliases=("Swin-X2S-Small", "swin_x2s_small"))
register_variant("base", VariantConfig(96, (2, 2, 18, 2), (3, 6, 12, 24)), aliases=("Swin-X2S-Base", "swin_x2s_base"))
register_variant(
    "large", VariantConfig(128, (2, 2, 18, 2), (4, 8, 16, 32)), aliases=("Swin-X2S-Large", "swin_x2s_large")
)
# a few-hundred-thousand-parameter model for tests and CI
register_variant("test", VariantConfig(12, (1, 1, 1, 1), (1, 2, 4, 8)), aliases=("swin_x2s_test",))
