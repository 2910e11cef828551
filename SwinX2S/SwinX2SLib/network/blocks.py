"""3-D convolutional blocks of the Swin-X2S decoder, configured from MONAI building blocks.

The published implementation re-declares MONAI's ``UnetrBasicBlock`` / ``UnetrUpBlock`` / ``UnetOutBlock``; MONAI's own
classes compute exactly the same thing (and give the same parameter names), so this module only fixes their
hyper-parameters: 3x3x3 convolutions, instance normalisation (no affine), LeakyReLU(0.01), and a 1x1x1 residual
projection whenever the channel count changes.
"""

from __future__ import annotations

from monai.networks.blocks import UnetOutBlock, UnetrBasicBlock, UnetrUpBlock

__all__ = ["output_block", "residual_block", "up_block"]

_KERNEL_SIZE = 3
_NORM = "instance"


def residual_block(in_channels: int, out_channels: int) -> UnetrBasicBlock:
    """Residual block: two 3x3x3 conv + instance norm + LeakyReLU, 1x1x1 projection on the skip path.

    ``[B, in_channels, X, Y, Z]`` -> ``[B, out_channels, X, Y, Z]``.
    """
    return UnetrBasicBlock(
        spatial_dims=3,
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=_KERNEL_SIZE,
        stride=1,
        norm_name=_NORM,
        res_block=True,
    )


def up_block(in_channels: int, out_channels: int) -> UnetrUpBlock:
    """2x2x2 transposed convolution (no bias), concatenation with the skip, then a :func:`residual_block`.

    ``([B, in_channels, X, Y, Z], skip [B, out_channels, 2X, 2Y, 2Z])`` -> ``[B, out_channels, 2X, 2Y, 2Z]``.
    """
    return UnetrUpBlock(
        spatial_dims=3,
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=_KERNEL_SIZE,
        upsample_kernel_size=2,
        norm_name=_NORM,
        res_block=True,
    )


def output_block(in_channels: int, num_classes: int) -> UnetOutBlock:
    """1x1x1 convolution with bias to class logits: ``[B, in_channels, X, Y, Z]`` -> ``[B, num_classes, X, Y, Z]``."""
    return UnetOutBlock(spatial_dims=3, in_channels=in_channels, out_channels=num_classes)
