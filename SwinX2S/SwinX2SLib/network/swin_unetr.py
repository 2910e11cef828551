"""SwinUNETR baseline (paper Table 3): MONAI's 3-D Swin U-Net on the two views repeated into a volume.

Published configuration (``get_swinunetr_config``): feature size 48, depths 2-2-2-2, heads 3-6-12-24, instance
norm, patch merging, normalised skip features, no dropout path.
"""

from __future__ import annotations

from monai.networks.nets import SwinUNETR as MonaiSwinUNETR
from torch import nn

from .biplanar import VolumeInputModel

__all__ = ["SwinUNETR"]


class SwinUNETR(VolumeInputModel):
    """MONAI ``SwinUNETR`` with the published arguments, fed :func:`~.biplanar.views_as_volume`.

    X, Y and Z must be multiples of 32. See :class:`~.biplanar.VolumeInputModel` for the arguments.
    """

    architecture = "SwinUNETR"

    def build(self, in_channels: int, num_classes: int, dropout: float) -> nn.Module:
        """MONAI ``SwinUNETR(2N, C, feature_size=48, depths=(2, 2, 2, 2), num_heads=(3, 6, 12, 24), ...)``."""
        return MonaiSwinUNETR(in_channels=in_channels, out_channels=num_classes, depths=(2, 2, 2, 2),
                              num_heads=(3, 6, 12, 24), feature_size=48, norm_name="instance", drop_rate=dropout,
                              attn_drop_rate=0.0, dropout_path_rate=0.0, normalize=True, use_checkpoint=False,
                              spatial_dims=3, downsample="merging")
