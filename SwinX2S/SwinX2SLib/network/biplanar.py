"""Common ground of the comparison models: the two-view interface, the input layouts, the architecture record.

Every comparison model (the paper's Table 3) is called like Swin-X2S, ``model(coronal, sagittal)`` with images
``[B, N, X, Z]`` and ``[B, N, Y, Z]``, and returns one logits tensor ``[B, C, X, Y, Z]`` (Swin-X2S returns one per
view). Inside, the published code fed them one of two layouts, both built here:

* :func:`views_as_volume` (the 3-D networks UNet, AttentionUnet, UNETR, SwinUNETR, CustomAutoEncoder): each view
  repeated along the axis it was projected along (``conventions.PROJECTION_AXIS``) and the two stacked as channels,
  ``[B, 2N, X, Y, Z]``, coronal channels first;
* the 2-D networks (OneDConcat, TwoDPermuteConcat, MultiScale2DPermuteConcat) take the coronal and the sagittal
  images as they are, each through its own encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from ..conventions import PROJECTION_AXIS
from .registry import ArchitectureConfig

__all__ = ["BiplanarModel", "VolumeInputModel", "check_view_shapes", "views_as_volume"]


def check_view_shapes(
    img_size: Sequence[int], in_channels: int, coronal: torch.Tensor, sagittal: torch.Tensor
) -> None:
    """Raise ValueError unless the views are ``[B, N, X, Z]`` and ``[B, N, Y, Z]`` for a model of ``img_size``."""
    size_x, size_y, size_z = img_size
    for name, image, rows in (("coronal", coronal, size_x), ("sagittal", sagittal, size_y)):
        expected = (in_channels, rows, size_z)
        if image.ndim != 4 or tuple(image.shape[1:]) != expected:
            raise ValueError(
                f"{name} input must be [B, {', '.join(map(str, expected))}] for this model (built for volume "
                f"size {tuple(img_size)}), got {list(image.shape)}; resample the image or build the model with "
                "a matching img_size / in_channels."
            )
    if coronal.shape[0] != sagittal.shape[0]:
        raise ValueError(f"batch sizes differ: coronal {coronal.shape[0]}, sagittal {sagittal.shape[0]}.")


def views_as_volume(coronal: torch.Tensor, sagittal: torch.Tensor) -> torch.Tensor:
    """The published 3-D input: each view repeated along its projection axis, views stacked as channels.

    Args:
        coronal: ``[B, N, X, Z]``.
        sagittal: ``[B, N, Y, Z]``.

    Returns:
        ``[B, 2N, X, Y, Z]``: channels ``0..N-1`` the coronal images, ``N..2N-1`` the sagittal ones.
    """
    shape = (*coronal.shape[:2], coronal.shape[2], sagittal.shape[2], coronal.shape[3])
    volumes = [image.unsqueeze(2 + PROJECTION_AXIS[view]).expand(shape)
               for view, image in (("coronal", coronal), ("sagittal", sagittal))]
    return torch.cat(volumes, dim=1)


class BiplanarModel(nn.Module):
    """Base of the comparison models: size bookkeeping, input checks and the :class:`ArchitectureConfig`.

    Args:
        img_size: volume size ``(X, Y, Z)``.
        in_channels: X-ray images per view (N).
        num_classes: output classes (background included).

    Attributes:
        architecture: the published model name (class attribute of each subclass).
        img_size, in_channels, num_classes: as given.
    """

    architecture: ClassVar[str]

    def __init__(self, img_size: Sequence[int], in_channels: int, num_classes: int) -> None:
        super().__init__()
        size = tuple(int(s) for s in img_size)
        if len(size) != 3 or min(size) < 1:
            raise ValueError(f"img_size must be three positive sizes (X, Y, Z), got {tuple(img_size)}.")
        if in_channels < 1 or num_classes < 2:
            raise ValueError(f"need in_channels >= 1 and num_classes >= 2, got {in_channels} and {num_classes}.")
        self.img_size: tuple[int, int, int] = size  # type: ignore[assignment]
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)

    @property
    def config(self) -> ArchitectureConfig:
        """The architecture record stored in model directories (the configuration follows from the name)."""
        return ArchitectureConfig(self.architecture)

    def check_views(self, coronal: torch.Tensor, sagittal: torch.Tensor) -> None:
        """Raise ValueError unless the views are ``[B, N, X, Z]`` and ``[B, N, Y, Z]`` for this model's size."""
        check_view_shapes(self.img_size, self.in_channels, coronal, sagittal)

    def _require_square(self) -> None:
        """The 2-D models share layers between the views: X (coronal rows) must equal Y (sagittal rows)."""
        if self.img_size[0] != self.img_size[1]:
            raise ValueError(f"{self.architecture} needs X = Y, got img_size {self.img_size}.")


class VolumeInputModel(BiplanarModel):
    """A 3-D segmentation network fed :func:`views_as_volume` (``2N`` input channels).

    Subclasses build the network in :meth:`build`; its weights live under ``net.`` (the published checkpoints hold
    the bare MONAI network: :func:`SwinX2SLib.checkpoints.convert_published_state_dict` adds the prefix).

    Args:
        img_size, in_channels, num_classes: see :class:`BiplanarModel`.
        dropout: dropout rate of the network (the published runs used 0).
    """

    def __init__(self, img_size: Sequence[int], in_channels: int = 1, num_classes: int = 55,
                 dropout: float = 0.0) -> None:
        super().__init__(img_size, in_channels, num_classes)
        self.net = self.build(2 * self.in_channels, self.num_classes, float(dropout))

    def build(self, in_channels: int, num_classes: int, dropout: float) -> nn.Module:
        """The 3-D network from ``in_channels`` (= 2N) to ``num_classes`` logits."""
        raise NotImplementedError

    def forward(self, coronal: torch.Tensor, sagittal: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, C, X, Y, Z]`` from coronal ``[B, N, X, Z]`` and sagittal ``[B, N, Y, Z]`` images."""
        self.check_views(coronal, sagittal)
        return self.net(views_as_volume(coronal, sagittal))
