"""UNETR baseline (paper Table 3): MONAI's ViT U-Net on the two views repeated into a volume.

Published configuration (``get_unetr_config``): MONAI's defaults (16^3 patches, hidden size 768, 12 layers and
heads, feature size 16) for the model's volume size; the position embedding depends on that size.
"""

from __future__ import annotations

from monai.networks.nets import UNETR as MonaiUNETR
from torch import nn

from .biplanar import VolumeInputModel

__all__ = ["UNETR"]


class UNETR(VolumeInputModel):
    """MONAI ``UNETR`` with the published arguments, fed :func:`~.biplanar.views_as_volume`.

    X, Y and Z must be multiples of 16. See :class:`~.biplanar.VolumeInputModel` for the arguments.
    """

    architecture = "UNETR"

    def build(self, in_channels: int, num_classes: int, dropout: float) -> nn.Module:
        """MONAI ``UNETR(2N, C, img_size, dropout_rate=dropout)``.

        Newer MONAI transformer blocks hold a cross-attention norm that UNETR never calls; it is frozen, so that
        DistributedDataParallel waits for no gradient of it.
        """
        net = MonaiUNETR(in_channels=in_channels, out_channels=num_classes, img_size=self.img_size,
                         dropout_rate=dropout)
        for block in net.vit.blocks:
            if hasattr(block, "norm_cross_attn"):
                block.norm_cross_attn.requires_grad_(False)
        return net
