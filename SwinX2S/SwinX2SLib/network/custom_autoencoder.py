"""CustomAutoEncoder baseline (paper Table 3, the TL-embedding model): a 3-D autoencoder with a 64-vector bottleneck.

The published ``TLP.py`` (after Girdhar et al.'s TL-embedding network, via the xrayto3D benchmark) extends MONAI's
``AutoEncoder`` with a fully connected bottleneck; ``get_autoencoder_config`` sets::

    views as a volume [B, 2N, X, Y, Z] --4 convs stride 2 (8, 16, 32, 64 channels, instance norm, ReLU)-->
        [B, 64, X/16, Y/16, Z/16] --flatten, linear--> latent [B, 64] --linear, reshape-->
        [B, 64, X/16, Y/16, Z/16] --4 transposed convs stride 2--> logits [B, C, X, Y, Z]

The published runs trained it on 128^3 grids; the linear layers depend on the grid size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from monai.networks.nets import AutoEncoder
from torch import nn

from .biplanar import BiplanarModel, views_as_volume

__all__ = ["CustomAutoEncoder"]

_CHANNELS = (8, 16, 32, 64)
_LATENT = 64


class CustomAutoEncoder(BiplanarModel):
    """MONAI ``AutoEncoder`` encoder and decoder around a linear ``latent``-vector bottleneck.

    Args:
        img_size: ``(X, Y, Z)``, each a multiple of 16.
        in_channels: images per view (N).
        num_classes: output classes.
        dropout: dropout rate of the convolutions (the published runs used 0).
    """

    architecture = "CustomAutoEncoder"

    def __init__(self, img_size: Sequence[int] = (128, 128, 128), in_channels: int = 1, num_classes: int = 55,
                 dropout: float = 0.0) -> None:
        super().__init__(img_size, in_channels, num_classes)
        reduction = 2 ** len(_CHANNELS)
        if any(s % reduction for s in self.img_size):
            raise ValueError(f"CustomAutoEncoder needs X, Y, Z multiples of {reduction}, got {self.img_size}.")
        self.latent_grid = tuple(s // reduction for s in self.img_size)
        self.autoencoder = AutoEncoder(spatial_dims=3, in_channels=2 * self.in_channels, out_channels=num_classes,
                                       channels=_CHANNELS, strides=(2,) * len(_CHANNELS), act="RELU",
                                       norm="INSTANCE", dropout=dropout)
        features = _CHANNELS[-1] * math.prod(self.latent_grid)
        self.to_latent = nn.Linear(features, _LATENT)
        self.from_latent = nn.Linear(_LATENT, features)
        self._init_weights()

    def _init_weights(self) -> None:
        """The published initialisation: convolutions N(0, 2 / fan-out), linear weights U(+-1 / sqrt(fan-out))."""
        for module in self.modules():
            if isinstance(module, (nn.Conv3d, nn.ConvTranspose3d)):
                fan_out = math.prod(module.kernel_size) * module.out_channels
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                bound = 1.0 / math.sqrt(module.out_features)
                nn.init.uniform_(module.weight, -bound, bound)

    def forward(self, coronal: torch.Tensor, sagittal: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, C, X, Y, Z]`` from coronal ``[B, N, X, Z]`` and sagittal ``[B, N, Y, Z]`` images."""
        self.check_views(coronal, sagittal)
        encoded = self.autoencoder.encode(views_as_volume(coronal, sagittal))
        latent = self.to_latent(encoded.flatten(1))
        return self.autoencoder.decode(self.from_latent(latent).view(-1, _CHANNELS[-1], *self.latent_grid))
