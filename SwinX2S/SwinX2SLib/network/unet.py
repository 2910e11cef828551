"""UNet baseline (paper Table 3): MONAI's residual 3-D U-Net on the two views repeated into a volume.

Published configuration (``get_unet_config``, after Kasten et al., "End-to-end convolutional neural network for
3D reconstruction of knee bones from bi-planar X-ray images"): channels 8-16-32-64-128, strides 2-2-2-2, ReLU,
batch norm, two residual units per level.
"""

from __future__ import annotations

from monai.networks.nets import UNet as MonaiUNet
from torch import nn

from .biplanar import VolumeInputModel

__all__ = ["UNet"]


class UNet(VolumeInputModel):
    """MONAI ``UNet`` with the published arguments, fed :func:`~.biplanar.views_as_volume`.

    X, Y and Z must be multiples of 16. See :class:`~.biplanar.VolumeInputModel` for the arguments.
    """

    architecture = "UNet"

    def build(self, in_channels: int, num_classes: int, dropout: float) -> nn.Module:
        """MONAI ``UNet(3, 2N, C, (8, 16, 32, 64, 128), (2, 2, 2, 2), act=RELU, norm=BATCH, num_res_units=2)``."""
        return MonaiUNet(spatial_dims=3, in_channels=in_channels, out_channels=num_classes,
                         channels=(8, 16, 32, 64, 128), strides=(2, 2, 2, 2), act="RELU", norm="BATCH",
                         num_res_units=2, dropout=dropout)
