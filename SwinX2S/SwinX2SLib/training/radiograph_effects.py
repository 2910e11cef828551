"""Training augmentation with what real radiographs add to a DRR (off in the published recipe).

Each view gets its own draw (two exposures differ), applied to the ``[0, 1]`` DRR after the geometric and
intensity augmentation of :mod:`SwinX2SLib.training.augment`, with the image effects of
:mod:`SwinX2SLib.radiograph.effects` (the ones the clinical radiograph simulator uses), in acquisition order:

1. scatter-like haze: ``(image + h · blur(image, 16 px)) / (1 + h)``, ``h ~ U(0, haze)``;
2. unsharpness: Gaussian blur ``σ ~ U(0, blur_px)`` pixels;
3. noise: Gaussian, ``σ ~ U(0, noise)`` (the preprocessed image's quantum noise);
4. vendor edge enhancement: unsharp masking, amount ``~ U(0, unsharp)``, ``σ`` 8 px;
5. vendor tone curve: gamma ``~ U(gamma)`` (log-uniform), then clipped to ``[0, 1]``.

Enable with ``augment.radiograph_prob`` in the training configuration (:class:`~.config.AugmentConfig`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from SwinX2SLib.radiograph import effects
from SwinX2SLib.training.config import AugmentConfig

__all__ = ["RadiographEffects", "apply_radiograph_effects", "sample_radiograph_effects"]

_HAZE_SIGMA_PX = 16.0
_UNSHARP_SIGMA_PX = 8.0


@dataclass(frozen=True)
class RadiographEffects:
    """One view's draw: haze fraction, blur sigma (pixels), noise sigma, unsharp amount, gamma exponent."""

    haze: float = 0.0
    blur_px: float = 0.0
    noise: float = 0.0
    unsharp: float = 0.0
    gamma: float = 1.0


def sample_radiograph_effects(rng: np.random.Generator, config: AugmentConfig
                              ) -> tuple[RadiographEffects, RadiographEffects] | None:
    """Draw the effects of the two views, or ``None`` (with probability ``1 - radiograph_prob``).

    Draws nothing from ``rng`` when ``radiograph_prob`` is 0, so configurations without it keep their streams.
    """
    if config.radiograph_prob <= 0 or rng.random() >= config.radiograph_prob:
        return None
    low, high = (math.log(g) for g in config.radiograph_gamma)

    def draw() -> RadiographEffects:
        return RadiographEffects(
            haze=float(rng.uniform(0.0, config.radiograph_haze)),
            blur_px=float(rng.uniform(0.0, config.radiograph_blur_px)),
            noise=float(rng.uniform(0.0, config.radiograph_noise)),
            unsharp=float(rng.uniform(0.0, config.radiograph_unsharp)),
            gamma=float(math.exp(rng.uniform(low, high))),
        )

    return draw(), draw()


def apply_radiograph_effects(image: torch.Tensor, draw: RadiographEffects, rng: np.random.Generator
                             ) -> torch.Tensor:
    """Apply one view's effects to ``(N, rows, cols)`` images in ``[0, 1]``; returns a new tensor in ``[0, 1]``."""
    out = image.detach().to("cpu", torch.float32).numpy()
    if draw.haze > 0:
        out = effects.scatter_haze(out, draw.haze, _HAZE_SIGMA_PX) / (1.0 + draw.haze)
    out = effects.blur(out, draw.blur_px)
    if draw.noise > 0:
        out = out + rng.normal(0.0, draw.noise, out.shape).astype(np.float32)
    if draw.unsharp > 0:
        out = effects.unsharp_mask(out, draw.unsharp, _UNSHARP_SIGMA_PX)
    out = effects.gamma(out, draw.gamma)
    return torch.from_numpy(np.ascontiguousarray(out)).to(image.device, image.dtype)
