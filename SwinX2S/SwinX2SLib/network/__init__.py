"""The Swin-X2S network (paper: Liu et al., "Swin-X2S") and the paper's comparison models.

Public API::

    from SwinX2SLib.network import create_model, predict_labels
    model = create_model("base", img_size=(128, 128, 160), in_channels=1, num_classes=55).eval()
    p, q = model(coronal, sagittal)          # [B, N, X, Z], [B, N, Y, Z] -> 2 x [B, 55, X, Y, Z]
    labels = predict_labels(model, coronal, sagittal)   # [B, X, Y, Z] = argmax(p + q)
    resolve_engine(model, "auto")            # "fast" (hand-written decoder) if the model fits it, else "plain"
    unet = create_model("UNet", img_size=(128, 128, 160)).eval()
    logits = unet(coronal, sagittal)         # one [B, 55, X, Y, Z] (see view_logits)

:mod:`.registry` and :mod:`.engine` are torch-free at import; the other submodules import torch lazily through this
package's attributes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .engine import ENGINES, fast_path_problems, resolve_engine
from .registry import (
    DEFAULT_IMG_SIZE,
    ArchitectureConfig,
    VariantConfig,
    create_model,
    get_variant,
    list_architectures,
    list_variants,
    register_variant,
    variant_name,
)

if TYPE_CHECKING:
    from .inference import logit_slabs, predict_labels, view_logits
    from .swin_x2s import SwinX2S, check_img_size

__all__ = [
    "DEFAULT_IMG_SIZE",
    "ENGINES",
    "ArchitectureConfig",
    "SwinX2S",
    "VariantConfig",
    "check_img_size",
    "create_model",
    "fast_path_problems",
    "get_variant",
    "list_architectures",
    "list_variants",
    "logit_slabs",
    "predict_labels",
    "register_variant",
    "resolve_engine",
    "variant_name",
    "view_logits",
]

_LAZY = {"SwinX2S": "swin_x2s", "check_img_size": "swin_x2s", "logit_slabs": "inference", "predict_labels": "inference",
         "view_logits": "inference"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
