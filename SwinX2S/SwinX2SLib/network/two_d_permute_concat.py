"""TwoDPermuteConcat baseline (paper Table 3): 2-D view features expanded to 3-D, concatenated and decoded.

After Bayat et al., "Inferring the 3D standing spine posture from 2D radiographs" (TransVert, 2020), as configured
by the published ``get_2dconcatmodel_config``::

    coronal  [B, N, X, Z] --6 x conv 7x7 (strides 2, 2, 1, 1, 1, 1)--> [B, 32, X/4, Z/4]
        --new axis in front, log2(X) - 2 transposed convs stride (2, 1, 1)--> [B, 32, X/4, X/4, Z/4]
    sagittal [B, N, Y, Z] --its own encoder--> [B, 32, Y/4, Z/4]
        --new second axis, transposed convs stride (1, 2, 1)--> [B, 32, Y/4, Y/4, Z/4]
    concatenated [B, 64, ...] --7 transposed convs (strides 1, 1, 1, 1, 2, 2, 1)--> logits [B, C, X, Y, Z]

As published, the coronal features gain the *first* volume axis and the sagittal features the *second*: the
volume the network assembles has the view rows the other way round from the label grid (``[x, y, z]``), which
the published training asked the decoder to learn. This layout is kept so that published weights load and run
unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .biplanar import BiplanarModel
from .one_d_concat import conv_stack

__all__ = ["TwoDPermuteConcat"]

_ENCODER = (16, 32, 32, 32, 32, 32)
_ENCODER_STRIDES = (2, 2, 1, 1, 1, 1)
_DECODER = (64, 64, 64, 64, 64, 32, 16)
_DECODER_STRIDES = (1, 1, 1, 1, 2, 2, 1)
_DECODER_KERNELS = (3, 3, 3, 3, 3, 3, 7)


class TwoDPermuteConcat(BiplanarModel):
    """Per-view 2-D encoders, per-view expansion to 3-D, concatenation and a 3-D transposed-convolution decoder.

    Args:
        img_size: ``(X, Y, Z)`` with X = Y a power of two from 8 to 128, Z a multiple of 4.
        in_channels: images per view (N).
        num_classes: output classes.
        dropout: dropout rate after every convolution (the published runs used 0).
    """

    architecture = "TwoDPermuteConcat"

    def __init__(self, img_size: Sequence[int] = (128, 128, 160), in_channels: int = 1, num_classes: int = 55,
                 dropout: float = 0.0) -> None:
        super().__init__(img_size, in_channels, num_classes)
        self._require_square()
        depth = round(math.log2(self.img_size[0])) - 2
        if 2 ** (depth + 2) != self.img_size[0] or not 1 <= depth <= 5 or self.img_size[2] % 4:
            raise ValueError(f"TwoDPermuteConcat needs X = Y a power of two from 8 to 128 and Z a multiple of 4, "
                             f"got img_size {self.img_size}.")
        encoder = (self.in_channels, *_ENCODER)
        self.coronal_encoder = conv_stack(2, encoder, _ENCODER_STRIDES, (7,) * 6, dropout)
        self.sagittal_encoder = conv_stack(2, encoder, _ENCODER_STRIDES, (7,) * 6, dropout)
        expansion = (_ENCODER[-1],) * (depth + 1)
        self.coronal_expansion = conv_stack(3, expansion, ((2, 1, 1),) * depth, (3,) * depth, dropout,
                                            transposed=True)
        self.sagittal_expansion = conv_stack(3, expansion, ((1, 2, 1),) * depth, (3,) * depth, dropout,
                                             transposed=True)
        self.decoder = conv_stack(3, (*_DECODER, self.num_classes), _DECODER_STRIDES, _DECODER_KERNELS, dropout,
                                  transposed=True, last_conv_only=True)

    def forward(self, coronal: torch.Tensor, sagittal: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, C, X, Y, Z]`` from coronal ``[B, N, X, Z]`` and sagittal ``[B, N, Y, Z]`` images."""
        self.check_views(coronal, sagittal)
        coronal_volume = self.coronal_expansion(self.coronal_encoder(coronal).unsqueeze(2))  # published layout
        sagittal_volume = self.sagittal_expansion(self.sagittal_encoder(sagittal).unsqueeze(3))
        return self.decoder(torch.cat((coronal_volume, sagittal_volume), dim=1))
