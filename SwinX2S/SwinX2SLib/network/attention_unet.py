"""AttentionUnet baseline (paper Table 3): MONAI's attention U-Net on the two views repeated into a volume.

Published configuration (``get_attunet_config``, after Oktay et al., "Attention U-Net: learning where to look for
the pancreas"): channels 8-16-32-64-128, strides 2-2-2-2, MONAI's defaults otherwise.
"""

from __future__ import annotations

from monai.networks.nets import AttentionUnet as MonaiAttentionUnet
from torch import nn

from .biplanar import VolumeInputModel

__all__ = ["AttentionUnet"]


class AttentionUnet(VolumeInputModel):
    """MONAI ``AttentionUnet`` with the published arguments, fed :func:`~.biplanar.views_as_volume`.

    X, Y and Z must be multiples of 16. See :class:`~.biplanar.VolumeInputModel` for the arguments.
    """

    architecture = "AttentionUnet"

    def build(self, in_channels: int, num_classes: int, dropout: float) -> nn.Module:
        """MONAI ``AttentionUnet(3, 2N, C, (8, 16, 32, 64, 128), (2, 2, 2, 2))``."""
        return MonaiAttentionUnet(spatial_dims=3, in_channels=in_channels, out_channels=num_classes,
                                  channels=(8, 16, 32, 64, 128), strides=(2, 2, 2, 2), dropout=dropout)
