"""OneDConcat baseline (paper Table 3): each view encoded to a vector, the two vectors fused and decoded to 3-D.

After Chen and Fang, "Using bi-planar X-ray images to reconstruct vertebra by the convolution neural network"
(2019), as configured by the published ``get_1dconcatmodel_config``::

    coronal  [B, N, X, Z] --6 x (conv 3x3 stride 2)--> [B, 1024, X/64, Z/64] --flatten--+
    sagittal [B, N, Y, Z] --6 x (conv 3x3 stride 2)--> [B, 1024, Y/64, Z/64] --flatten--+--> linear -> BN -> ReLU
        -> [B, 256, 1, 1, 1] --transposed convs 3x3x3 stride 2--> [B, C, X, X, X]  (a cube: X = 2**depth)

The published decoder has 7 layers (a 128^3 cube) and the published runs used 128^3 grids; with X < 128 the
decoder keeps its last log2(X) layers. On a grid with Z != X the cube's logits are resampled along Z (linear).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.layers.convutils import calculate_out_shape, same_padding
from torch import nn

from .biplanar import BiplanarModel

__all__ = ["OneDConcat", "conv_stack"]

_ENCODER_CHANNELS = (32, 64, 128, 256, 512, 1024)
_DECODER_CHANNELS = (1024, 512, 256, 128, 64, 32)
_BOTTLENECK = 256


def conv_stack(
    spatial_dims: int,
    channels: Sequence[int],
    strides: Sequence[int | Sequence[int]],
    kernel_sizes: Sequence[int],
    dropout: float,
    transposed: bool = False,
    last_conv_only: bool = False,
) -> nn.Sequential:
    """MONAI ``Convolution`` layers (conv, then batch norm, dropout, ReLU) from ``channels[i]`` to ``channels[i+1]``.

    Args:
        spatial_dims: 2 or 3.
        channels: ``len(strides) + 1`` channel counts.
        strides: stride of each layer (an int or one per axis).
        kernel_sizes: kernel size of each layer.
        dropout: dropout rate (``0`` adds no dropout).
        transposed: transposed convolutions (a stride of 2 doubles the size exactly).
        last_conv_only: the last layer is a bare convolution (for logits).
    """
    layers = [
        Convolution(spatial_dims, c_in, c_out, strides=stride, kernel_size=kernel, act="RELU", norm="BATCH",
                    dropout=dropout or None, is_transposed=transposed,
                    conv_only=last_conv_only and index == len(strides) - 1)
        for index, (c_in, c_out, stride, kernel) in enumerate(
            zip(channels[:-1], channels[1:], strides, kernel_sizes, strict=True))
    ]
    return nn.Sequential(*layers)


class OneDConcat(BiplanarModel):
    """Two 2-D encoders to one 256-vector, a 3-D transposed-convolution decoder to a cube of logits.

    Args:
        img_size: ``(X, Y, Z)`` with X = Y a power of two from 2 to 128.
        in_channels: images per view (N).
        num_classes: output classes.
        dropout: dropout rate after every convolution (the published runs used 0).
    """

    architecture = "OneDConcat"

    def __init__(self, img_size: Sequence[int] = (128, 128, 128), in_channels: int = 1, num_classes: int = 55,
                 dropout: float = 0.0) -> None:
        super().__init__(img_size, in_channels, num_classes)
        self._require_square()
        side = self.img_size[0]
        depth = round(math.log2(side))
        if 2**depth != side or not 1 <= depth <= len(_DECODER_CHANNELS) + 1:
            raise ValueError(f"OneDConcat needs X = Y a power of two up to 128, got img_size {self.img_size}.")
        encoder = (self.in_channels, *_ENCODER_CHANNELS)
        strides = (2,) * len(_ENCODER_CHANNELS)
        self.coronal_encoder = conv_stack(2, encoder, strides, (3,) * len(strides), dropout)
        self.sagittal_encoder = conv_stack(2, encoder, strides, (3,) * len(strides), dropout)
        encoded = calculate_out_shape((side, self.img_size[2]), 3, strides[0], same_padding(3))
        for stride in strides[1:]:
            encoded = calculate_out_shape(encoded, 3, stride, same_padding(3))
        features = 2 * _ENCODER_CHANNELS[-1] * math.prod(encoded)
        self.bottleneck = nn.Sequential(nn.Linear(features, _BOTTLENECK), nn.BatchNorm1d(_BOTTLENECK), nn.ReLU())
        decoder = (_BOTTLENECK, *_DECODER_CHANNELS[len(_DECODER_CHANNELS) + 1 - depth:], self.num_classes)
        self.decoder = conv_stack(3, decoder, (2,) * depth, (3,) * depth, dropout, transposed=True,
                                  last_conv_only=True)

    def forward(self, coronal: torch.Tensor, sagittal: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, C, X, Y, Z]`` from coronal ``[B, N, X, Z]`` and sagittal ``[B, N, Y, Z]`` images."""
        self.check_views(coronal, sagittal)
        if self.training and coronal.shape[0] < 2:
            raise ValueError("OneDConcat trains with a batch of 2 or more (batch norm of its 256-vector); the "
                             "published runs used 8.")
        vector = torch.cat((self.coronal_encoder(coronal).flatten(1), self.sagittal_encoder(sagittal).flatten(1)), 1)
        cube = self.decoder(self.bottleneck(vector)[:, :, None, None, None])
        if cube.shape[2:] != self.img_size:
            cube = F.interpolate(cube, size=self.img_size, mode="trilinear", align_corners=False)
        return cube
