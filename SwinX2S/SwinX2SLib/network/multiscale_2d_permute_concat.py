"""MultiScale2DPermuteConcat baseline (paper Table 3): multi-scale 2-D decoders fused into a 3-D decoder.

The published model (``MStwoDPC.py``, configured by ``get_multiscale2dconcatmodel_config``)::

    each view [B, N, H, Z] --conv 3x3 to 16 channels--> 6 dense blocks (4 convs each, growth 2, 4, ..., 64 channels),
        max-pooled between blocks --> features at H/32 ... H (coarsest first)
    per level l = 0..5 (coarsest first), per view: 2-D decoder conv on [upsampled previous level, encoder features]
        -> [B, c_l, H/2**(5-l), Z/2**(5-l)] with c_l = H/2**(5-l) channels: the channels become a volume axis
    coronal map [B, c, X, Z] -> [B, 1, c, X, Z]; sagittal map [B, c, Y, Z] -> [B, 1, Y, c, Z]
    3-D fusion conv on [upsampled previous fusion, coronal volume, sagittal volume] -> 32 channels per level
    level-5 fusion --1x1x1 conv--> logits [B, C, X, Y, Z]

The published channel counts (4, 8, ..., 128) fit X = 128; other sizes use c_l = X / 2**(5-l). As in
:mod:`.two_d_permute_concat`, the coronal map fills the first volume axis and the sagittal map the second (the
published layout, kept for its weights).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.blocks import Convolution
from torch import nn

from .biplanar import BiplanarModel

__all__ = ["MultiScale2DPermuteConcat"]

_STEM = 16
_GROWTH = (2, 4, 8, 16, 32, 64)
_DENSE_LAYERS = 4
_FUSION = 32
_UNUSED_FUSION_UPSAMPLERS = 3  # the published model builds three upsamplers its forward pass never calls


def _conv(spatial_dims: int, c_in: int, c_out: int, dropout: float = 0.0, transposed: bool = False) -> Convolution:
    """3x3(x3) MONAI convolution with batch norm and ReLU; transposed ones have stride 2 (double the size)."""
    return Convolution(spatial_dims, c_in, c_out, strides=2 if transposed else 1, kernel_size=3, act="RELU",
                       norm="BATCH", dropout=dropout or None, is_transposed=transposed)


class DenseBlock(nn.Module):
    """Dense 2-D block: each layer sees the concatenation of the input and all earlier layers' outputs.

    Args:
        in_channels: input channels.
        growth: channels each layer adds.
        layers: number of layers; the output has ``in_channels + layers * growth`` channels.
    """

    def __init__(self, in_channels: int, growth: int, layers: int = _DENSE_LAYERS) -> None:
        super().__init__()
        self.layers = nn.ModuleList([_conv(2, in_channels + i * growth, growth) for i in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in, H, W]`` -> ``[B, in + layers * growth, H, W]``."""
        for layer in self.layers:
            x = torch.cat((x, layer(x)), dim=1)
        return x


class MultiScaleEncoder2D(nn.Module):
    """Stem convolution and dense blocks with 2x2 max pooling between them.

    Args:
        in_channels: images per view.
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.stem = _conv(2, in_channels, _STEM)
        widths = [_STEM]
        for growth in _GROWTH[:-1]:
            widths.append(widths[-1] + _DENSE_LAYERS * growth)
        self.blocks = nn.ModuleList([DenseBlock(w, g) for w, g in zip(widths, _GROWTH, strict=True)])
        self.pool = nn.MaxPool2d(2)
        self.out_channels = [w + _DENSE_LAYERS * g for w, g in zip(widths, _GROWTH, strict=True)]

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """``[B, N, H, W]`` -> features of every block, coarsest (``H / 32``) first."""
        x = self.stem(image)
        features = []
        for index, block in enumerate(self.blocks):
            x = block(self.pool(x) if index else x)
            features.insert(0, x)
        return features


class MultiScale2DPermuteConcat(BiplanarModel):
    """Multi-scale 2-D encoder-decoders per view whose decoded maps are fused level by level in 3-D.

    Args:
        img_size: ``(X, Y, Z)`` with X = Y and all three multiples of 32.
        in_channels: images per view (N).
        num_classes: output classes.
        dropout: dropout rate of the decoder convolutions (the published runs used 0).
    """

    architecture = "MultiScale2DPermuteConcat"

    def __init__(self, img_size: Sequence[int] = (128, 128, 160), in_channels: int = 1, num_classes: int = 55,
                 dropout: float = 0.0) -> None:
        super().__init__(img_size, in_channels, num_classes)
        self._require_square()
        levels = len(_GROWTH)
        if any(s % 2 ** (levels - 1) for s in self.img_size):
            raise ValueError(f"MultiScale2DPermuteConcat needs X = Y and Z multiples of 32, got {self.img_size}.")
        maps = [self.img_size[0] // 2 ** (levels - 1 - level) for level in range(levels)]  # c_l = map size
        self.coronal_encoder = MultiScaleEncoder2D(self.in_channels)
        self.sagittal_encoder = MultiScaleEncoder2D(self.in_channels)
        encoded = self.coronal_encoder.out_channels[::-1]
        decoder_in = [encoded[0]] + [e + m for e, m in zip(encoded[1:], maps[:-1], strict=True)]
        for view in ("coronal", "sagittal"):
            self.add_module(f"{view}_decoder", nn.ModuleList(
                [_conv(2, c_in, c_out, dropout) for c_in, c_out in zip(decoder_in, maps, strict=True)]))
            self.add_module(f"{view}_upsample", nn.ModuleList(
                [_conv(2, m, m, transposed=True) for m in maps[:-1]]))
        self.fusion = nn.ModuleList(
            [_conv(3, 2 + (_FUSION if level else 0), _FUSION, dropout) for level in range(levels)])
        self.fusion_upsample = nn.ModuleList(
            [_conv(3, _FUSION, _FUSION, transposed=True) for _ in range(levels - 1 + _UNUSED_FUSION_UPSAMPLERS)])
        for unused in self.fusion_upsample[levels - 1:]:  # frozen: DistributedDataParallel waits for no gradient
            unused.requires_grad_(False)
        self.head = Convolution(3, _FUSION, self.num_classes, kernel_size=1, padding=0, conv_only=True)

    def forward(self, coronal: torch.Tensor, sagittal: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, C, X, Y, Z]`` from coronal ``[B, N, X, Z]`` and sagittal ``[B, N, Y, Z]`` images."""
        self.check_views(coronal, sagittal)
        cor_features, sag_features = self.coronal_encoder(coronal), self.sagittal_encoder(sagittal)
        cor = sag = fused = None
        for level, fusion in enumerate(self.fusion):
            if level == 0:
                cor = self.coronal_decoder[0](cor_features[0])
                sag = self.sagittal_decoder[0](sag_features[0])
                parts = []
            else:
                cor = self.coronal_decoder[level](
                    torch.cat((self.coronal_upsample[level - 1](cor), cor_features[level]), 1))
                sag = self.sagittal_decoder[level](
                    torch.cat((self.sagittal_upsample[level - 1](sag), sag_features[level]), 1))
                parts = [self.fusion_upsample[level - 1](fused)]
            # published layout: coronal channels -> first volume axis, sagittal channels -> second
            fused = fusion(torch.cat((*parts, cor.unsqueeze(1), sag.transpose(1, 2).unsqueeze(1)), 1))
        return self.head(fused)
