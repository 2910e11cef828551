"""SwinUNETR baseline (paper Table 3): MONAI's 3-D Swin U-Net on the two views repeated into a volume.

Published configuration (``get_swinunetr_config``): feature size 48, depths 2-2-2-2, heads 3-6-12-24, instance
norm, patch merging, normalised skip features, no dropout path.

The published runs used MONAI 1.3.0, whose 3-D patch merging (``downsample="merging"``) gathered the 2x2x2
neighbours in an order that repeats two of them and leaves out two (``x[0::2, 1::2, 1::2]`` and
``x[1::2, 1::2, 0::2]``); later MONAI versions take all eight. The published weights were trained with the
MONAI 1.3.0 merging, so :class:`PublishedPatchMerging` keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets import SwinUNETR as MonaiSwinUNETR
from monai.networks.nets.swin_unetr import PatchMergingV2
from torch import nn

from .biplanar import VolumeInputModel

__all__ = ["PublishedPatchMerging", "SwinUNETR"]

# the 2x2x2 neighbours (offsets along D, H, W) concatenated by MONAI 1.3.0's 3-D PatchMerging, in its order
_PUBLISHED_NEIGHBOURS = ((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (0, 1, 0), (0, 0, 1), (1, 1, 1))


class PublishedPatchMerging(PatchMergingV2):
    """3-D patch merging as MONAI 1.3.0 did it (see the module docstring); same weights as MONAI's merging.

    Args:
        dim, norm_layer, spatial_dims: as :class:`monai.networks.nets.swin_unetr.PatchMergingV2` (3-D only).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, D, H, W, C]`` (even sizes) -> ``[B, D/2, H/2, W/2, 2C]``."""
        if x.ndim != 5 or any(s % 2 for s in x.shape[1:4]):
            raise ValueError(f"expecting [B, D, H, W, C] with even D, H, W, got {list(x.shape)}.")
        neighbours = [x[:, d::2, h::2, w::2, :] for d, h, w in _PUBLISHED_NEIGHBOURS]
        return self.reduction(self.norm(torch.cat(neighbours, -1)))


class SwinUNETR(VolumeInputModel):
    """MONAI ``SwinUNETR`` with the published arguments, fed :func:`~.biplanar.views_as_volume`.

    X, Y and Z must be multiples of 32. See :class:`~.biplanar.VolumeInputModel` for the arguments.
    """

    architecture = "SwinUNETR"

    def __init__(self, img_size: Sequence[int], in_channels: int = 1, num_classes: int = 55,
                 dropout: float = 0.0) -> None:
        if any(int(s) % 32 for s in img_size):
            raise ValueError(f"SwinUNETR needs X, Y, Z multiples of 32, got img_size {tuple(img_size)}.")
        super().__init__(img_size, in_channels, num_classes, dropout)

    def build(self, in_channels: int, num_classes: int, dropout: float) -> nn.Module:
        """MONAI ``SwinUNETR(2N, C, feature_size=48, depths=(2, 2, 2, 2), num_heads=(3, 6, 12, 24), ...)``."""
        return MonaiSwinUNETR(in_channels=in_channels, out_channels=num_classes, depths=(2, 2, 2, 2),
                              num_heads=(3, 6, 12, 24), feature_size=48, norm_name="instance", drop_rate=dropout,
                              attn_drop_rate=0.0, dropout_path_rate=0.0, normalize=True, use_checkpoint=False,
                              spatial_dims=3, downsample=PublishedPatchMerging)
