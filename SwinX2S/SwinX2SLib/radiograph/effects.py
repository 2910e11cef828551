"""Image effects that real radiographs add to an ideal projection, shared by the simulator and training.

Every function takes a float array whose last two axes are an image (``(..., rows, cols)``), returns a new array
and leaves its input untouched. Sizes are in pixels; the caller converts from mm.

* :func:`scatter_haze`: ``image + fraction · G_σ(image)``: scattered photons, a wide blur of the primary.
* :func:`heel_gradient`: the anode heel effect, a linear ramp of the tube output along one image axis.
* :func:`poisson_counts`: quantum noise of a detector that counts ``photons`` per pixel at ``image == 1``.
* :func:`unsharp_mask`: vendor edge enhancement ``image + amount · (image - G_σ(image))``.
* :func:`gamma`: a tone curve on [0, 1].
* :func:`blur`: detector / focal-spot unsharpness.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["blur", "gamma", "heel_gradient", "poisson_counts", "scatter_haze", "unsharp_mask"]


def blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur of the last two axes (``sigma_px`` ≤ 0 returns a copy)."""
    image = np.asarray(image, dtype=np.float32)
    if sigma_px <= 0:
        return image.copy()
    return ndimage.gaussian_filter(image, [0.0] * (image.ndim - 2) + [sigma_px, sigma_px], mode="nearest")


def scatter_haze(image: np.ndarray, fraction: float, sigma_px: float) -> np.ndarray:
    """Add scatter: ``image + fraction · blur(image, sigma_px)`` (``fraction`` = scatter-to-primary ratio)."""
    return np.asarray(image, dtype=np.float32) + np.float32(fraction) * blur(image, sigma_px)


def heel_gradient(shape: tuple[int, ...], strength: float, axis: int = -2) -> np.ndarray:
    """Relative tube output ``1 ± strength / 2`` varying linearly along ``axis`` (``(..., rows, cols)`` shape)."""
    n = shape[axis]
    ramp = np.linspace(1.0 + strength / 2.0, 1.0 - strength / 2.0, n, dtype=np.float32)
    view = [1] * len(shape)
    view[axis] = n
    return np.broadcast_to(ramp.reshape(view), shape).astype(np.float32)


def poisson_counts(image: np.ndarray, photons: float, rng: np.random.Generator) -> np.ndarray:
    """Photon counts: Poisson draws of mean ``photons · image`` (``image`` ≥ 0, relative intensity)."""
    return rng.poisson(np.clip(np.asarray(image, dtype=np.float64), 0.0, None) * photons).astype(np.float32)


def unsharp_mask(image: np.ndarray, amount: float, sigma_px: float) -> np.ndarray:
    """Edge enhancement ``image + amount · (image - blur(image, sigma_px))``."""
    image = np.asarray(image, dtype=np.float32)
    return image + np.float32(amount) * (image - blur(image, sigma_px))


def gamma(image: np.ndarray, exponent: float) -> np.ndarray:
    """Tone curve ``clip(image, 0, 1) ** exponent``."""
    return np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0) ** np.float32(exponent)
