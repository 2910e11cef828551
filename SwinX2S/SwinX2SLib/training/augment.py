"""Augmentation applied consistently to the two X-ray images and the 3-D label.

A sample is ``coronal (N, X, Z)``, ``sagittal (N, Y, Z)`` (float images in [0, 1], each the projection of the
volume along ``y`` and along ``x``) and ``label (X, Y, Z)`` (axes as in :mod:`SwinX2SLib.conventions`). Because the
images are projections, a geometric change of the volume maps to a 2-D change of each image:

* **zoom** by ``s`` about the grid centre: the label is scaled in 3-D, both images by ``s`` in 2-D.
* **translation** ``(tx, ty, tz)`` voxels: the label moves in 3-D, the coronal image by ``(tx, tz)``, the sagittal
  image by ``(ty, tz)``.
* **rotation in the coronal plane** by a small angle about the anterior-posterior (``y``) axis: the label and
  the coronal image rotate exactly. The sagittal image, a projection along the rotated left-right axis, is left as
  it is; its true change is a blur along ``z`` of at most ``half-width * sin(angle)`` (about 3 voxels for 5 degrees
  on a 64-voxel-wide grid), negligible next to the rotation the coronal view sees.
* **180-degree rotation about the superior-inferior (z) axis**: ``(x, y) -> (-x, -y)`` of the volume, i.e. the
  label is reversed along ``x`` and ``y``; the coronal image is reversed along ``x`` and the sagittal image along
  ``y``. Label ids are **not** swapped: a rotation is a proper motion (determinant +1), so the rotated patient is
  still the same patient, whose left femur is still ``femur_left`` (now lying at low ``x`` and seen from behind).
  Only a mirror (determinant -1) would turn a left femur into something that looks like a right one; the
  augmentation never mirrors (as the paper says, it "does not mirror left and right"). The network learns to read
  the patient's orientation from the images (e.g. the spine in front of the body in the lateral view).
* **intensity**: ``image * (1 + a) + b`` then clipped to [0, 1], the same ``a, b`` for both images.
* **real-radiograph effects** (off unless ``radiograph_prob`` > 0): haze, blur, noise, unsharp masking and gamma,
  drawn per view (:mod:`SwinX2SLib.training.radiograph_effects`).

For ``N > 1`` views per direction every channel gets the same 2-D change: exact for zoom, ``z`` translation and the
180-degree rotation; an approximation for ``x``/``y`` translation of the oblique views.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from monai.networks.layers import AffineTransform

from SwinX2SLib.conventions import rotate_180_about_si
from SwinX2SLib.training.config import AugmentConfig
from SwinX2SLib.training.radiograph_effects import (
    RadiographEffects,
    apply_radiograph_effects,
    sample_radiograph_effects,
)

__all__ = ["AugmentParams", "augment_sample", "sample_params"]


@dataclass(frozen=True)
class AugmentParams:
    """One draw of augmentation parameters.

    Args:
        zoom: isotropic scale factor (> 1 enlarges the anatomy).
        angle_rad: rotation in the coronal (x-z) plane, radians.
        shift: translation ``(tx, ty, tz)`` in voxels.
        rotate180: apply the 180-degree rotation about the superior-inferior axis.
        intensity: ``(scale_offset a, shift b)`` or None.
        radiograph: per view (coronal, sagittal) real-radiograph effects, or None.
        seed: seed of the effects' noise.
    """

    zoom: float = 1.0
    angle_rad: float = 0.0
    shift: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotate180: bool = False
    intensity: tuple[float, float] | None = None
    radiograph: tuple[RadiographEffects, RadiographEffects] | None = None
    seed: int = 0

    @property
    def is_geometric(self) -> bool:
        return self.zoom != 1.0 or self.angle_rad != 0.0 or any(s != 0.0 for s in self.shift)


def sample_params(rng: np.random.Generator, config: AugmentConfig, shape: tuple[int, int, int]) -> AugmentParams:
    """Draw augmentation parameters for a grid of ``shape`` ``(X, Y, Z)``."""
    zoom, angle, shift = 1.0, 0.0, (0.0, 0.0, 0.0)
    if rng.random() < config.prob:
        zoom = float(rng.uniform(*config.zoom))
        angle = math.radians(float(rng.uniform(-config.rotate_deg, config.rotate_deg)))
        shift = tuple(float(rng.uniform(-f, f) * n) for f, n in zip(config.shift_fraction, shape, strict=True))
    intensity = None
    if rng.random() < config.intensity_prob:
        intensity = (
            float(rng.uniform(-config.intensity_scale, config.intensity_scale)),
            float(rng.uniform(-config.intensity_shift, config.intensity_shift)),
        )
    rotate180 = bool(rng.random() < config.rotate180_prob)
    radiograph = sample_radiograph_effects(rng, config)
    seed = int(rng.integers(1 << 31)) if radiograph is not None else 0
    return AugmentParams(zoom=zoom, angle_rad=angle, shift=shift, rotate180=rotate180, intensity=intensity,
                         radiograph=radiograph, seed=seed)


def augment_sample(
    coronal: torch.Tensor, sagittal: torch.Tensor, label: torch.Tensor, params: AugmentParams
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Apply ``params`` to one sample.

    Args:
        coronal: ``(N, X, Z)`` float image(s), projection along ``y``.
        sagittal: ``(N, Y, Z)`` float image(s), projection along ``x``.
        label: ``(X, Y, Z)`` integer label map.
        params: from :func:`sample_params`.

    Returns:
        ``(coronal, sagittal, label)`` with the same shapes and dtypes.
    """
    if params.is_geometric:
        tx, ty, tz = params.shift
        label = _warp(label[None].float(), params.zoom, params.angle_rad, (tx, ty, tz), "nearest")[0].to(label.dtype)
        coronal = _warp(coronal, params.zoom, params.angle_rad, (tx, tz), "bilinear")
        sagittal = _warp(sagittal, params.zoom, 0.0, (ty, tz), "bilinear")
    if params.rotate180:
        coronal, sagittal, label = rotate_180_about_si(coronal, sagittal, label)
    if params.intensity is not None:
        scale, offset = params.intensity
        coronal = (coronal * (1.0 + scale) + offset).clamp(0.0, 1.0)
        sagittal = (sagittal * (1.0 + scale) + offset).clamp(0.0, 1.0)
    if params.radiograph is not None:
        rng = np.random.default_rng(params.seed)
        coronal, sagittal = (apply_radiograph_effects(image, draw, rng)
                             for image, draw in zip((coronal, sagittal), params.radiograph, strict=True))
    return coronal, sagittal, label


def _warp(
    image: torch.Tensor, zoom: float, angle: float, shift: tuple[float, ...], mode: str
) -> torch.Tensor:
    """Resample ``image`` ``(C, *spatial)`` (2-D or 3-D) under ``p' = c + zoom * R (p - c) + shift``.

    ``R`` rotates by ``angle`` in the plane of the first and last spatial axes (x-z; for 2-D images the only
    plane). Outside the input is 0 (background / no attenuation). MONAI's ``AffineTransform`` takes the inverse map
    in voxel indices and does the rest (normalised coordinates, ``grid_sample``'s reversed axis order): measured
    25.5 ms against 24.1 ms for the hand-written ``affine_grid`` it replaced (median of 40 alternated calls, one
    64 x 64 x 96 label and two images, one thread), identical labels, images within 1.3e-5.
    """
    spatial = image.shape[1:]
    dims = len(spatial)
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = torch.eye(dims, dtype=torch.float64)
    rotation[0, 0], rotation[0, -1], rotation[-1, 0], rotation[-1, -1] = cos, -sin, sin, cos
    centre = (torch.tensor(spatial, dtype=torch.float64) - 1) / 2
    # inverse map, index coordinates: p = c + R^T (p' - c - t) / zoom
    inverse = torch.eye(dims + 1, dtype=torch.float64)
    inverse[:dims, :dims] = rotation.T / zoom
    inverse[:dims, dims] = centre - rotation.T @ (centre + torch.tensor(shift, dtype=torch.float64)) / zoom
    warp = AffineTransform(normalized=False, mode=mode, padding_mode="zeros", align_corners=True)
    return warp(image[None].float(), inverse[None].float(), spatial_size=spatial)[0]
